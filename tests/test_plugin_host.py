"""The plugin host, tested with real installed distributions.

Each test writes throwaway distributions into a temp dir (a ``<name>-0.1.dist-info``
with METADATA and entry_points.txt, beside the plugin module) and runs polygrad in a
``python -c`` subprocess with PYTHONPATH pointing there, so importlib.metadata finds
them exactly as it finds pip-installed plugins.
"""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

# A working backend: numpy's namespace under another name, imported lazily.
GOOD = '''
import polygrad

def _load():
    import numpy
    return numpy

backend = polygrad.Backend(
    name="{backend}", module="{module}", load=_load,
    array_types=lambda: (__import__("numpy").ndarray,),
    to_numpy=lambda a: a, from_numpy=lambda a, device=None: a.copy())

@polygrad.hookimpl
def register_backends(register):
    register(backend)
'''

PLUGINS = {
    "good": GOOD.format(backend="good", module="numpy"),
    "broken": "import frobnicate_not_installed\n",
    "twin_a": GOOD.format(backend="twin", module="numpy"),
    "twin_b": GOOD.format(backend="twin", module="numpy"),
    "misspelt": GOOD.format(backend="misspelt", module="numpy").replace(
        "def register_backends", "def register_backend"),
    "heavy": "import heavylib  # imported at import time: the check must flag it\n"
             + GOOD.format(backend="heavy", module="heavylib"),
    "absent": GOOD.format(backend="absent", module="absentlib_not_installed"),
    "marker": "import os\nopen(os.environ['MARKER'], 'w').close()\n"
              + GOOD.format(backend="marker", module="numpy"),
    # sorts first and registers the backend that entry point "good" provides
    "aaa_squat": GOOD.format(backend="good", module="numpy"),
    "exiter": "import sys\nsys.exit(3)\n",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory of installed throwaway distributions, one per plugin above."""
    root = tmp_path_factory.mktemp("site")
    (root / "heavylib").mkdir()
    (root / "heavylib" / "__init__.py").write_text("from numpy import *  # noqa\n")
    for name, source in PLUGINS.items():
        dist = f"polygrad-{name.replace('_', '-')}"
        (root / f"polygrad_{name}.py").write_text(source)
        info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[polygrad]\n{name} = polygrad_{name}\n")
    return root


def run(site, code, **env):
    """Run ``code`` in a fresh interpreter that sees the throwaway distributions;
    returns the JSON it prints last (or the CompletedProcess when ``raw``)."""
    raw = env.pop("raw", False)
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    base["PYTHONPATH"] = os.pathsep.join([str(site), base.get("PYTHONPATH", "")])
    base.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=base, timeout=120)
    if raw:
        return proc
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


LOAD_AND_WARN = """
    import json, warnings
    import polygrad
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = polygrad.backends()
        polygrad.backends()
        x = polygrad.ones(3, backend="good").sum().item()
    rows = {r["plugin"]: r["status"] for r in polygrad.plugins.describe()}
    print(json.dumps({"names": names, "warnings": [str(w.message) for w in caught],
                      "status": rows, "x": x}))
"""


@pytest.mark.parametrize("bad, needle", [
    ("broken", "ModuleNotFoundError: No module named 'frobnicate_not_installed'"),
    ("misspelt", "register_backend"),
    ("twin_b", "registers backend 'twin', which plugin 'twin_a' already registered"),
])
def test_a_bad_plugin_warns_once_and_the_others_keep_working(site, bad, needle):
    out = run(site, LOAD_AND_WARN, POLYGRAD_LOAD_PLUGINS=f"numpy,good,twin_a,{bad}")
    assert out["x"] == 3.0 and {"numpy", "good"} <= set(out["names"])
    assert len(out["warnings"]) == 1, out["warnings"]
    msg = out["warnings"][0]
    dist = f"polygrad-{bad.replace('_', '-')} 0.1"
    assert f"plugin {bad!r} ({dist}) failed to load" in msg and needle in msg
    assert out["status"][bad].startswith("failed: ") and needle in out["status"][bad]
    assert out["status"]["good"] == "loaded"


@pytest.mark.parametrize("bad, needle", [
    ("broken", "frobnicate_not_installed"),
    ("misspelt", "unknown hook 'register_backend'"),
    ("twin_b", "'twin_b'.*'twin'.*'twin_a'"),
])
def test_strict_mode_raises_plugin_error(site, bad, needle):
    proc = run(site, "import polygrad; polygrad.backends()", raw=True,
               POLYGRAD_LOAD_PLUGINS=f"numpy,twin_a,{bad}", POLYGRAD_STRICT_PLUGINS="1")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("polygrad.PluginError: polygrad: plugin ")
    assert pytest.importorskip("re").search(needle, last), last


USE_ONE_BACKEND = """
    import json, os, sys, warnings
    import polygrad
    name = os.environ["BACKEND"] or None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            x = float(polygrad.ones(3, backend=name).sum())
        except Exception as exc:
            x = f"{type(exc).__name__}: {exc}"
    plugins = json.loads(os.environ["PLUGINS"])
    print(json.dumps({"x": x, "warnings": [str(w.message) for w in caught],
                      "imported": sorted(p for p in plugins if f"polygrad_{p}" in sys.modules)}))
"""

# backend asked for -> what it gives, which third-party plugins were imported, warnings
LAZY = [
    ("", 3.0, [], 0),                               # the default, numpy
    ("numpy", 3.0, [], 0),
    ("good", 3.0, ["good"], 0),
    ("broken", "UnknownBackendError: backend 'broken' is unavailable: its plugin "
               "(polygrad-broken 0.1) failed to load: ModuleNotFoundError", [], 1),
    ("exiter", "UnknownBackendError: backend 'exiter' is unavailable: its plugin "
               "(polygrad-exiter 0.1) failed to load: SystemExit: 3", [], 1),
]


@pytest.mark.parametrize("name, x, imported, warned", LAZY)
def test_a_backend_imports_only_the_plugin_of_its_name(site, name, x, imported, warned):
    """Every throwaway plugin installed and enabled, broken ones too: using one backend
    imports only the entry point of that name; a broken plugin fails only its own."""
    out = run(site, USE_ONE_BACKEND, BACKEND=name, PLUGINS=json.dumps(sorted(PLUGINS)))
    assert out["x"] == x if isinstance(x, float) else out["x"].startswith(x), out["x"]
    assert out["imported"] == imported
    assert len(out["warnings"]) == warned, out["warnings"]


def test_a_backend_named_after_no_entry_point_is_found_by_full_discovery(site):
    out = run(site, USE_ONE_BACKEND, BACKEND="twin", PLUGINS=json.dumps(sorted(PLUGINS)))
    assert out["x"] == 3.0
    assert {"twin_a", "twin_b", "good", "aaa_squat"} <= set(out["imported"])


@pytest.mark.parametrize("first", ["get_backend", "describe"])
def test_a_backend_belongs_to_the_entry_point_of_its_name(site, first):
    """'aaa_squat' sorts first and registers backend 'good': it fails whichever is asked
    first, the backend (lazy, loads entry point 'good') or the listing (loads them all)."""
    out = run(site, """
        import json, os, warnings
        warnings.simplefilter("ignore")
        from polygrad.plugins import describe, get_backend
        if os.environ["FIRST"] == "get_backend":
            owner = get_backend("good")._plugin
        rows = {r["plugin"]: r["status"] for r in describe()}
        print(json.dumps({"owner": get_backend("good")._plugin, "squat": rows["aaa_squat"]}))
    """, FIRST=first)
    assert out["owner"] == "good"
    assert out["squat"].startswith("failed: PluginError: plugin 'aaa_squat' (polygrad-aaa-squat)"
                                   " registers backend 'good', which is the name of "
                                   "polygrad-good's entry point"), out["squat"]


@pytest.mark.parametrize("env, needle", [
    ({"POLYGRAD_DISABLE_PLUGINS": "good"}, "backend 'good' is disabled"),
    ({"POLYGRAD_LOAD_PLUGINS": "numpy"}, "backend 'good' is disabled"),
])
def test_a_disabled_backend_says_so(site, env, needle):
    out = run(site, USE_ONE_BACKEND, BACKEND="good", PLUGINS=json.dumps(sorted(PLUGINS)), **env)
    assert out["x"].startswith(f"UnknownBackendError: {needle}"), out["x"]


def test_import_time_array_library_is_flagged(site):
    out = run(site, """
        import json
        from polygrad.plugins import check_import_is_light
        print(json.dumps([check_import_is_light(n) for n in ("heavy", "good", "nope")]))
    """)
    heavy, good, nope = out
    assert "plugin 'heavy' (polygrad_heavy) imports 'heavylib' at import time" in heavy
    assert "Backend.load" in heavy
    assert good is None
    assert nope == "no entry point named 'nope' in group 'polygrad'"


@pytest.mark.parametrize("env, loaded, disabled", [
    ({"POLYGRAD_DISABLE_PLUGINS": "good,broken,twin_b,misspelt"}, {"numpy", "twin_a"},
     {"good", "broken", "twin_b", "misspelt"}),
    ({"POLYGRAD_LOAD_PLUGINS": "numpy,good"}, {"numpy", "good"}, {"broken", "twin_a", "heavy"}),
    # numpy is the default and the reference: it stays loaded whatever the lists say
    ({"POLYGRAD_LOAD_PLUGINS": "", "POLYGRAD_DISABLE_PLUGINS": "numpy"}, {"numpy"},
     {"good", "broken", "twin_a", "heavy"}),
])
def test_disable_and_load_lists(site, env, loaded, disabled):
    out = run(site, """
        import json, warnings
        warnings.simplefilter("ignore")
        import polygrad
        rows = polygrad.plugins.describe()
        print(json.dumps({r["plugin"]: r["status"] for r in rows}))
    """, **env)
    assert all(out[name] == "disabled" for name in disabled), out
    assert all(out[name] == "loaded" for name in loaded), out


def test_listing_json_shows_every_status(site):
    out = run(site, """
        import json, subprocess, sys
        p = subprocess.run([sys.executable, "-m", "polygrad", "plugins", "--json"],
                           capture_output=True, text=True, check=True)
        print(json.dumps(json.loads(p.stdout)))
    """, POLYGRAD_DISABLE_PLUGINS="twin_b,misspelt")
    rows = {r["name"]: r for r in out}
    expected = {
        "good": ("polygrad-good", "0.1", "loaded"),
        "twin_b": ("polygrad-twin-b", "0.1", "disabled"),
        "absent": ("polygrad-absent", "0.1", "not installed"),
        "numpy": ("polygrad-xp", rows["numpy"]["version"], "loaded"),
    }
    for name, (dist, version, status) in expected.items():
        assert (rows[name]["distribution"], rows[name]["version"], rows[name]["status"]) == \
            (dist, version, status), rows[name]
    assert rows["broken"]["status"].startswith("failed: ModuleNotFoundError")
    assert rows["broken"]["distribution"] == "polygrad-broken"
    assert "absentlib_not_installed" in rows["absent"]["reason"]


def test_import_polygrad_is_light_and_runs_no_discovery(site, tmp_path):
    marker = tmp_path / "imported"
    out = run(site, """
        import json, os, sys
        import polygrad
        heavy = [m for m in ("torch", "cupy", "dask", "array_api_strict", "numpy")
                 if m in sys.modules]
        print(json.dumps({"heavy": heavy, "loaded": polygrad.plugins._host.loaded,
                          "plugin_imported": os.path.exists(os.environ["MARKER"])}))
    """, MARKER=str(marker))
    assert out == {"heavy": [], "loaded": False, "plugin_imported": False}
    out = run(site, """
        import json, os, sys, warnings
        warnings.simplefilter("ignore")
        import polygrad
        polygrad.backends()
        print(json.dumps({"plugin_imported": os.path.exists(os.environ["MARKER"]),
                          "heavy": [m for m in ("torch", "cupy", "dask") if m in sys.modules]}))
    """, MARKER=str(marker))
    assert out == {"plugin_imported": True, "heavy": []}


def test_discovery_order_is_deterministic(site):
    code = """
        import json, warnings
        warnings.simplefilter("ignore")
        import polygrad
        print(json.dumps([polygrad.backends(), [r["plugin"] for r in polygrad.plugins.describe()]]))
    """
    runs = [run(site, code, PYTHONHASHSEED=str(seed)) for seed in (0, 1, 2)]
    assert runs[0] == runs[1] == runs[2]
    names, plugins = runs[0]
    assert names == sorted(names) and plugins == sorted(plugins)
    assert "twin" in names and plugins.index("twin_a") < plugins.index("twin_b")


def test_installed_plugins_are_listed(site):
    """The repository's own plugins, when pip-installed, show their distribution and version."""
    out = run(site, """
        import json, subprocess, sys
        p = subprocess.run([sys.executable, "-m", "polygrad", "plugins", "--json"],
                           capture_output=True, text=True, check=True)
        print(p.stdout)
    """.replace("print(p.stdout)", "print(json.dumps(json.loads(p.stdout)))"))
    rows = {r["name"]: r for r in out}
    missing = [n for n in ("strict", "dask") if n not in rows]
    if missing:
        pytest.skip(f"plugins not installed: pip install -e ./plugins/polygrad-{missing[0]}")
    for name in ("strict", "dask"):
        assert (rows[name]["distribution"], rows[name]["status"]) == (f"polygrad-{name}", "loaded")


def _guide_steps(text):
    """The files (``# file: NAME`` blocks), runnable snippets and ``$`` commands of the guide."""
    files, snippets, commands = {}, [], []
    for block in text.split("```")[1::2]:
        lang, _, body = block.partition("\n")
        first = body.splitlines()[0] if body.strip() else ""
        if first.startswith("# file: "):
            files[first[len("# file: "):].strip()] = body
        elif lang.strip() == "python" and first.startswith(("import ", "from ")):
            snippets.append(body)
        elif lang.strip() == "console":
            commands += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
    return files, snippets, commands


def test_the_plugin_guide_step_by_step(tmp_path):
    """docs/plugins.md, followed literally in a fresh venv: write its files, run its commands."""
    guide = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "plugins.md")
    with open(guide) as f:
        files, snippets, commands = _guide_steps(f.read())
    assert {"pyproject.toml", "polygrad_mynp.py", "mynp.py"} <= set(files)
    assert any("conformance --backend mynp" in c for c in commands)
    project = tmp_path / "polygrad-mynp"
    project.mkdir()
    for name, body in files.items():
        (project / name).write_text(body)
    venv = tmp_path / "venv"
    # pip itself comes from the system site-packages: no network, no ensurepip
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    # --system-site-packages reaches the base interpreter, not the environment running this
    # test (where polygrad, pip and a setuptools that builds wheels are installed): chain it in.
    nested = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(nested, "_polygrad_test_parent_env.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}

    def sh(argv, ok=(0,)):
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode in ok, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    # the guide's order, except that the conformance run (which may not exist yet) goes last
    commands.sort(key=lambda c: "conformance" in c)
    for command in commands:
        argv = command.split()
        if argv[0] == "pip":
            argv = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--quiet"] + argv[2:]
        else:
            argv = [python] + argv[1:]
        if "conformance" in argv:
            for snippet in snippets:
                sh([python, "-c", snippet])
            sh([python, "-c", "import polygrad, pytest\n"
                "with pytest.raises(polygrad.UnsupportedOperation, match='has no unique_all'):\n"
                "    polygrad.unique_all(polygrad.ones(3, backend='mynp'))"])
            probe = [python, "-c", "import importlib.util as u; "
                     "print(u.find_spec('polygrad_conformance.cli') is not None)"]
            if sh(probe).strip() != "True":
                pytest.skip("the guide's steps pass up to the conformance command; "
                            "polygrad_conformance.cli does not exist yet")
            sh(argv, ok=(0, 1))          # 1: some check failed; which ones is asked below
            report = json.loads((tmp_path / "report.json").read_text())
            assert "mynp" in (tmp_path / "report.md").read_text()
            outcomes = {r["id"]: r for r in report["results"] if r["backend"] == "mynp"}
            assert any(r["outcome"] == "pass" for r in outcomes.values())
            assert {r["outcome"] for r in outcomes.values()
                    if r["case"] == "op:unique_all"} == {"unsupported"}
            _failures_are_the_suites_own(python, sh, tmp_path, outcomes)
            continue
        out = sh(argv)
        if argv[-2:] == ["plugins", "--json"]:
            rows = {r["name"]: r for r in json.loads(out)}
            assert (rows["mynp"]["distribution"], rows["mynp"]["version"],
                    rows["mynp"]["status"]) == ("polygrad-mynp", "0.1.0", "loaded")
        if "demo" in argv:
            assert "mynp: a.grad == 2cos(a)" in out and out.rstrip().endswith("ok")


def _failures_are_the_suites_own(python, sh, tmp_path, outcomes):
    """A renamed numpy must conform exactly as the built-in numpy backend does: every check
    that fails on mynp fails on numpy too (the suite's own open failures, not the plugin's)."""
    bad = {"fail", "error", "xpass", "xpass-unsupported"}
    failing = {r["case"] for r in outcomes.values() if r["outcome"] in bad}
    if not failing:
        return
    argv = [python, "-m", "polygrad", "conformance", "--backend", "numpy", "--json", "np.json"]
    for case in sorted(failing):
        argv += ["--case", case]
    sh(argv, ok=(0, 1))
    numpy_bad = {r["id"].replace("-numpy-", "-mynp-")
                 for r in json.loads((tmp_path / "np.json").read_text())["results"]
                 if r["outcome"] in bad}
    only_mynp = sorted(i for i, r in outcomes.items() if r["outcome"] in bad and i not in numpy_bad)
    assert not only_mynp, f"checks that fail on the guide's backend only: {only_mynp[:10]}"
