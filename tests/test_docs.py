"""The documentation: every docstring example in polygrad runs and prints what it shows,
and the API reference (mkdocs.yml, MkDocs with mkdocstrings) builds with warnings as
errors."""

import doctest
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys

import pytest

import polygrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules():
    """polygrad and its submodules, once each (polygrad.profiler is autograd.profiler)."""
    seen, out = set(), []
    names = ["polygrad"] + [m.name for m in pkgutil.walk_packages(polygrad.__path__,
                                                                  "polygrad.")]
    for name in sorted(names):
        if name == "polygrad.__main__":
            continue
        module = importlib.import_module(name)
        if id(module) not in seen:
            seen.add(id(module))
            out.append(module)
    return out


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = {}
    for module in _modules():
        for test in finder.find(module):
            if test.examples and test.name.startswith(module.__name__):
                tests.setdefault(test.name, test)
    return [tests[k] for k in sorted(tests)]


DOCTESTS = _doctests()


def test_there_are_docstring_examples():
    assert len(DOCTESTS) >= 5


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)


@pytest.mark.slow
def test_the_api_reference_builds_with_warnings_as_errors(tmp_path):
    mkdocs = os.path.join(os.path.dirname(sys.executable), "mkdocs")
    mkdocs = mkdocs if os.path.exists(mkdocs) else shutil.which("mkdocs")
    try:
        import material  # noqa: F401
        import mkdocstrings_handlers.python  # noqa: F401
    except ImportError:
        mkdocs = None
    if mkdocs is None:
        pytest.skip("MkDocs, mkdocs-material or mkdocstrings[python] is not installed "
                    "(pip install -r requirements-docs.txt)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("polygrad", "ops", "nn", "optim", "autograd", "plugins", "primitives"):
        html = (tmp_path / "site" / "api" / page / "index.html").read_text()
        assert "doc doc-heading" in html, page
    html = (tmp_path / "site" / "api" / "nn" / "index.html").read_text()
    assert "Linear" in html
