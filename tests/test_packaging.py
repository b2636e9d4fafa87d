"""The distribution as users get it: its name, its metadata, and the built wheel.

The fast tests read the checkout: no doc installs the unrelated PyPI project ``polygrad``,
the version is written once, test dependencies stay out of the published metadata, and
every package folder under ``polygrad/`` is packaged. The slow ones build the wheel from
a copy of the checkout, install it into a fresh virtual environment outside the checkout
(numpy, pluggy and array-api-compat come from the package index), and run polygrad's main
job and ``load_schema()`` there.
"""

from __future__ import annotations

import ast
import email.parser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import polygrad

ROOT = Path(__file__).resolve().parent.parent
DIST = "polygrad-xp"
# folders of the checkout and the names they install under (pyproject's package-dir)
INSTALLED_AS = {"polygrad": "polygrad", "backends": "polygrad_backends",
                "conformance": "polygrad_conformance"}
tomllib = pytest.importorskip("tomllib")        # Python 3.11+


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# --- no doc tells users to install the unrelated PyPI project "polygrad" -------------------

# `polygrad[torch]` as a requirement (not `.[torch]`, not `/path/to/polygrad[...]`)
_EXTRA = re.compile(r"(?<![\w/.\\-])polygrad\[")
# a requirement token naming the distribution polygrad: polygrad, polygrad[x], polygrad>=1
_REQ = re.compile(r"polygrad(\[[^\]]*\])?(\s*[=<>!~]=?.*)?")
# dependencies = ["polygrad", ...] in a pyproject sample
_DEP = re.compile(r"""dependencies\s*=\s*\[[^\]]*["']polygrad(\[[^\]]*\])?\s*([=<>!~][^"']*)?["']""")


def wrong_install_advice(text):
    """The places in ``text`` that install the distribution ``polygrad`` (not polygrad-xp)."""
    found = [text[max(0, m.start() - 30):m.end() + 20].replace("\n", " ") for m in _EXTRA.finditer(text)]
    found += [m.group(0) for m in _DEP.finditer(text)]
    for m in re.finditer(r"pip3?\s+install\s+([^\n`]*)", text):
        args = re.split(r"&&|\|\||[;|]", m.group(1))[0]      # this command only
        try:
            tokens = shlex.split(args, comments=True)
        except ValueError:
            tokens = args.split()
        for tok in tokens:
            if _REQ.fullmatch(tok.strip("'\"")):
                found.append(m.group(0))
    return found


@pytest.mark.parametrize("text, bad", [
    ('pip install "polygrad[torch]"', True),
    ("pip install polygrad", True),
    ("pip install -U polygrad==0.2 numpy", True),
    ("install polygrad[cupy] on a GPU machine", True),
    ('dependencies = ["numpy", "polygrad>=0.1"]', True),
    ('pip install ".[torch]"', False),
    ('pip install ".[conformance]" && python -m polygrad conformance', False),
    ("pip install -e . ./plugins/polygrad-strict", False),
    ('pip install "/path/to/polygrad[conformance]" ./my-plugin', False),
    ("pip install polygrad-xp", False),
    ('dependencies = ["polygrad-xp"]', False),
    ("import polygrad  # pip install numpy", False),
])
def test_the_install_advice_check_itself(text, bad):
    assert bool(wrong_install_advice(text)) is bad, text


def _doc_files():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "plugins").glob("*/README.md"))]
    files += sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".py", ".md", ".txt"))
    return files


def _polygrad_sources():
    return sorted(p for p in (ROOT / "polygrad").rglob("*.py") if "__pycache__" not in p.parts)


def _docstrings(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def test_no_doc_installs_the_unrelated_pypi_polygrad():
    """README, docs, plugin READMEs, examples and docstrings install polygrad-xp, never
    ``polygrad``: the PyPI project of that name is another library."""
    files = _doc_files()
    assert ROOT / "README.md" in files and len(files) >= 8
    bad = []
    for path in files:
        for hit in wrong_install_advice(path.read_text(encoding="utf-8")):
            bad.append(f"{path.relative_to(ROOT)}: {hit}")
    for path in _polygrad_sources():
        for line, doc in _docstrings(path):
            for hit in wrong_install_advice(doc):
                bad.append(f"{path.relative_to(ROOT)}:{line} (docstring): {hit}")
    assert not bad, "docs that install the unrelated PyPI project 'polygrad':\n" + "\n".join(bad)


def test_no_message_under_polygrad_installs_the_unrelated_pypi_polygrad():
    """Error messages are advice too: no string in the library says to install ``polygrad[...]``."""
    bad = []
    for path in _polygrad_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for hit in wrong_install_advice(node.value):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {hit}")
    assert not bad, "messages that install the unrelated PyPI project 'polygrad':\n" + "\n".join(bad)


def test_readme_says_the_pypi_polygrad_is_another_project():
    text = re.sub(r"\s+", " ", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert f"`{DIST}`" in text
    assert re.search(r"PyPI project named `polygrad` is a different", text), \
        "the README must say that the PyPI project named polygrad is a different one"


# --- metadata in the checkout ---------------------------------------------------------------

def test_distribution_name_license_and_classifiers():
    project = _pyproject()["project"]
    assert project["name"] == DIST
    assert project["license"] == "MIT"                    # an SPDX expression, not a table
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Framework :: Pytest" in project["classifiers"]
    for plugin in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        deps = tomllib.loads(plugin.read_text(encoding="utf-8"))["project"]["dependencies"]
        names = [re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0] for d in deps]
        assert DIST in names and "polygrad" not in names, (plugin, deps)


def test_version_is_written_once():
    """pyproject reads the version from polygrad/__init__.py; nothing else repeats it."""
    cfg = _pyproject()
    assert "version" not in cfg["project"] and "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "polygrad.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([.\-+]?\w+)*", polygrad.__version__)
    init = (ROOT / "polygrad" / "__init__.py").read_text(encoding="utf-8")
    # setuptools reads the attribute statically only from a literal assignment
    assert re.search(r'^__version__\s*=\s*["\'][^"\']+["\']', init, flags=re.M)


def test_test_dependencies_are_not_published():
    extras = _pyproject()["project"].get("optional-dependencies", {})
    assert "test" not in extras, "the test dependencies belong in requirements-test.txt"
    for name, reqs in extras.items():
        assert not any("==" in r for r in reqs), f"extra {name!r} pins a version: {reqs}"
    reqs = (ROOT / "requirements-test.txt").read_text(encoding="utf-8")
    for needed in ("pytest", "pytest-xdist", "hypothesis", "torch"):
        assert re.search(rf"^{re.escape(needed)}\b", reqs, flags=re.M), needed


def _package_folders():
    """Every folder under polygrad/ that holds Python files, as a dotted package name."""
    out = set()
    for path in _polygrad_sources():
        out.add(".".join(path.parent.relative_to(ROOT).parts))
    return out


def test_every_package_folder_under_polygrad_is_packaged():
    packages = _pyproject()["tool"]["setuptools"].get("packages")
    if isinstance(packages, dict):      # automatic discovery: the wheel test checks the result
        pytest.skip("packages are discovered automatically")
    missing = sorted(_package_folders() - set(packages))
    assert not missing, (f"add {missing} to [tool.setuptools] packages in pyproject.toml, "
                         "or they are left out of the wheel")
    assert {"polygrad_backends", "polygrad_conformance"} <= set(packages)


# --- the wheel, installed into a fresh venv outside the checkout ----------------------------

_TOP_LEVEL_JUNK = {".git", "build", "dist", "out", "docs", "benchmarks", "tests", "scripts",
                   "examples"}
_ANY_LEVEL_JUNK = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv*", ".pytest_cache",
                                         ".hypothesis", ".ruff_cache", ".mypy_cache")


def _ignore(folder, names):
    ignored = set(_ANY_LEVEL_JUNK(folder, names))
    if Path(folder) == ROOT:
        ignored |= _TOP_LEVEL_JUNK & set(names)
    return ignored


def _run(argv, cwd, env=None, timeout=900, ok=(0,)):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode in ok, (f"{argv} exited {proc.returncode}:\n"
                                   f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the checkout (the build leaves nothing in the tree)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    # the build backend is the setuptools of this environment (requirements-test.txt pins
    # setuptools>=77): no download for an isolated build
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    (whl,) = (tmp / "dist").glob("*.whl")
    return whl


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POLYGRAD_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh venv with the wheel and its conformance extra, and a work dir outside the checkout."""
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    env = _clean_env()
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          f"{wheel}[conformance]"], cwd=tmp, env=env, timeout=1200)
    work = tmp / "work"
    work.mkdir()
    return python, work, env


@pytest.mark.slow
def test_wheel_contents_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    assert wheel.name.startswith("polygrad_xp-")
    assert meta["Name"] == DIST and meta["Version"] == polygrad.__version__
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Framework :: Pytest" in meta.get_all("Classifier")
    extras = set(meta.get_all("Provides-Extra") or ())
    assert "test" not in extras and {"torch", "conformance"} <= extras
    assert not any('extra == "test"' in r for r in meta.get_all("Requires-Dist") or ())
    # every file of the three packages, whatever subpackages the tree grows
    expected = set()
    for folder, name in INSTALLED_AS.items():
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in rel.parts and (
                    path.suffix == ".py" or path.name in ("schema.json", "SCENARIOS.md", "py.typed")):
                expected.add("/".join((name, *rel.parts)))
    assert "polygrad_conformance/schema.json" in expected
    missing = sorted(expected - names)
    assert not missing, f"files of the checkout missing from the wheel: {missing}"


@pytest.mark.slow
def test_wheel_runs_the_main_job_outside_the_checkout(installed):
    python, work, env = installed
    where = _run([str(python), "-c",
                  "import polygrad, polygrad_conformance, polygrad_backends; "
                  "print(polygrad.__file__); print(polygrad_conformance.__file__)"],
                 cwd=work, env=env).stdout.split()
    for path in where:
        assert "site-packages" in path and not Path(path).is_relative_to(ROOT), where
    version = _run([str(python), "-m", "polygrad", "--version"], cwd=work, env=env).stdout
    assert polygrad.__version__ in version
    meta = _run([str(python), "-c", "import importlib.metadata as m, polygrad; "
                 f"print(m.version({DIST!r}) == polygrad.__version__)"], cwd=work, env=env)
    assert meta.stdout.strip() == "True"
    rows = json.loads(_run([str(python), "-m", "polygrad", "plugins", "--json"],
                           cwd=work, env=env).stdout)
    numpy_row = next(r for r in rows if r["name"] == "numpy")
    assert (numpy_row["distribution"], numpy_row["status"]) == (DIST, "loaded")
    # the main job, on the one backend a bare install has
    proc = _run([str(python), "-m", "polygrad", "conformance", "--backend", "numpy",
                 "--quiet", "--json", str(work / "report.json")], cwd=work, env=env)
    report = json.loads((work / "report.json").read_text())
    outcomes = [r["outcome"] for r in report["results"] if r["backend"] == "numpy"]
    assert outcomes.count("pass") > 100, proc.stdout[-2000:]
    # the public schema loads from the installed package and accepts the report
    check = _run([str(python), "-c",
                  "import json, sys, jsonschema\n"
                  "from polygrad_conformance.report import load_schema\n"
                  "schema = load_schema()\n"
                  "jsonschema.validate(json.load(open(sys.argv[1])), schema)\n"
                  "print(schema.get('title', 'ok'))", str(work / "report.json")],
                 cwd=work, env=env)
    assert check.stdout.strip()


@pytest.mark.slow
def test_wheel_numpy_backend_stays_essential_under_the_new_name(installed):
    """The built-in numpy backend cannot be disabled: the plugin host must recognise it as
    polygrad's own under the distribution name polygrad-xp."""
    python, work, env = installed
    out = _run([str(python), "-m", "polygrad", "plugins", "--json"], cwd=work,
               env=_clean_env(POLYGRAD_DISABLE_PLUGINS="numpy")).stdout
    numpy_row = next(r for r in json.loads(out) if r["name"] == "numpy")
    assert numpy_row["status"] == "loaded", numpy_row


# --- examples say what to install instead of crashing on an import ---------------------------

@pytest.mark.parametrize("example, needs", [
    ("autograd_fundamentals.py", "matplotlib"),
    ("differentiate_scipy.py", "scipy"),
    ("dask_cluster.py", "distributed"),
])
def test_examples_name_what_to_install_when_a_library_is_missing(example, needs):
    blocked = ("matplotlib", "scipy", "torch", "distributed")
    code = ("import runpy, sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None     # as if not installed\n"
            f"sys.argv = [{example!r}]\n"
            f"runpy.run_path({str(ROOT / 'examples' / example)!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=_clean_env())
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needs in proc.stderr and "pip install" in proc.stderr, proc.stderr
    if example != "dask_cluster.py":
        assert "'.[examples]'" in proc.stderr
        assert "examples" in _pyproject()["project"]["optional-dependencies"]
