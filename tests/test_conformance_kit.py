"""The conformance kit as a third party gets it: public API only, one declaration of its
options, and a non-zero exit when it tested nothing (as real subprocesses, in this venv and
in a venv without torch).
"""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from polygrad_conformance.options import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "conformance"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
NOTHING_TESTED = 5          # the kit's (and pytest's) status for "nothing was tested"

# -- public API only -------------------------------------------------------------------------

#: what a third party cannot reach: Tensor and Backend internals, the plugin host's state,
#: graph nodes, the forward-AD state and the engine
PRIVATE = re.compile(r"(?<![A-Za-z0-9])_(?:st|backend|host|node|tangent|plugin)\b|"
                     r"forward_ad_state|polygrad\.engine|from polygrad import engine")


def private_uses(text):
    return [line.strip() for line in text.splitlines() if PRIVATE.search(line)]


@pytest.mark.parametrize("line", ["return x._backend.xp", "s = t._st.array",
                                  "from polygrad.plugins import _host; _host.pm",
                                  "parent = t._node", "engine.forward_ad_state.level",
                                  "from polygrad.engine import apply",
                                  "xs[i]._tangent = t", "name = b._plugin"])
def test_the_private_access_pattern_finds_each_kind(line):
    assert private_uses(line) == [line]


def test_the_kit_uses_only_public_polygrad_api():
    files = sorted(KIT.glob("*.py"))
    assert len(files) > 8
    found = {f.name: private_uses(f.read_text()) for f in files}
    found = {name: lines for name, lines in found.items() if lines}
    assert not found, f"private polygrad access in the conformance kit: {found}"


# -- one declaration of the options ------------------------------------------------------------

def _help(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=120,
                          cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stderr
    return " ".join(proc.stdout.split())         # argparse and pytest wrap differently


def test_cli_and_pytest_options_come_from_one_table():
    cli = _help([sys.executable, "-m", "polygrad", "conformance", "--help"])
    plugin = _help([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"])
    names = {opt.name for opt in OPTIONS}
    assert {"backend", "device", "dtype", "case", "allow-empty", "json", "markdown",
            "html"} <= names
    for opt in OPTIONS:
        help_text = " ".join(opt.help.split())
        if opt.cli:
            assert f"--{opt.name}" in cli and help_text in cli, opt.name
        if opt.pytest:
            assert f"--polygrad-{opt.name}" in plugin and help_text in plugin, opt.name
    declared = re.compile(r"\.add_argument\(|\.addoption\(")
    for front_end in ("cli.py", "pytest_plugin.py"):
        assert not declared.search((KIT / front_end).read_text()), front_end


# -- tested nothing: a non-zero exit, unless --allow-empty ---------------------------------------

# only the plugins these runs name: a default run would import torch and dask, seconds each
PLUGINS = "numpy,cupy"


def _cli(*args, python=sys.executable, cwd=None, plugins=PLUGINS):
    return subprocess.run([str(python), "-m", "polygrad", "conformance", *args, "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=dict(ENV, POLYGRAD_LOAD_PLUGINS=plugins))


def _pytest(*args, python=sys.executable, cwd, plugins=PLUGINS):
    return subprocess.run([str(python), "-m", "pytest", "--pyargs", "polygrad_conformance",
                           "-p", "no:cacheprovider", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=dict(ENV, POLYGRAD_LOAD_PLUGINS=plugins))


EMPTY = [  # (CLI arguments, what stderr says)
    (["--case", "QS-99"], "case 'QS-99' matches nothing"),
    (["--backend", "numpy", "--case", "QS-99"], "case 'QS-99' matches nothing"),
    (["--backend", "numpy", "--device", "cuda:0", "--case", "YT-1"],
     "backend 'numpy' ran no check: all 8 skipped (8 x no CUDA device visible"),
    (["--backend", "cupy", "--case", "YT-1"],
     "backend 'cupy' ran no check: all 8 skipped (8 x 'cupy' is not installed"),
]


@pytest.mark.parametrize("args,says", EMPTY, ids=["no-such-case", "no-such-case-on-numpy",
                                                  "no-cuda-on-numpy", "cupy-not-installed"])
def test_cli_exits_non_zero_when_it_tested_nothing(args, says):
    if "cupy" in args and _importable("cupy"):
        pytest.skip("cupy is installed here: it is not a missing backend")
    proc = _cli(*args)
    assert proc.returncode == NOTHING_TESTED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"nothing tested: {says}" in proc.stderr
    assert "pass --allow-empty if that is what you mean" in proc.stderr
    allowed = _cli(*args, "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert f"tested less than asked: {says}" in allowed.stderr


def test_cli_counts_skips_by_reason():
    proc = _cli("--backend", "numpy", "--case", "op:sin", "--case", "op:equal")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("numpy: 1 skipped: finite differences run in float64 only (eps=1e-6 is below "
            "float32 resolution)") in proc.stdout
    assert "numpy: 1 skipped: no other requested backend runs this dtype" not in proc.stdout
    assert "numpy: 4 skipped: no other requested backend runs this dtype" in proc.stdout


def test_a_default_backend_that_skips_whole_does_not_fail_the_run():
    """A GPU backend without a GPU is in the default run, skipping; asked for, it fails it."""
    import dataclasses

    import polygrad
    from polygrad_conformance.runner import Session, execute
    gpu_only = dataclasses.replace(polygrad.get_backend("numpy"), name="nogpunp",
                                   devices=lambda: ())

    class Plugin:
        @polygrad.hookimpl
        def register_backends(self, register):
            register(gpu_only)

    polygrad.plugins.register_plugin(Plugin(), name="test-nogpunp")
    try:
        by_default = Session(cases=["YT-1"], dtypes=["float64"])
        asked = Session(["numpy", "nogpunp"], cases=["YT-1"], dtypes=["float64"])
        assert "nogpunp" in [b.name for b in by_default.backends]
        results = {s: [execute(c) for c in s.checks()] for s in (by_default, asked)}
    finally:
        polygrad.plugins.unregister_plugin("test-nogpunp")
    assert by_default.untested(results[by_default]) == []
    (problem,) = asked.untested(results[asked])
    assert problem.startswith("backend 'nogpunp' ran no check: all 4 skipped (4 x backend "
                              "'nogpunp' declares no device usable here")


def test_pytest_exits_non_zero_when_it_tested_nothing(tmp_path):
    proc = _pytest("--polygrad-backend=numpy", "--polygrad-case=QS-99", cwd=tmp_path)
    assert proc.returncode == NOTHING_TESTED, proc.stdout[-3000:]
    assert "nothing tested: case 'QS-99' matches nothing" in proc.stdout
    proc = _pytest("--polygrad-backend=numpy", "--polygrad-device=cuda:0",
                   "--polygrad-case=YT-1", cwd=tmp_path)
    assert proc.returncode == NOTHING_TESTED, proc.stdout[-3000:]
    assert "numpy: 8 skipped: no CUDA device visible" in proc.stdout
    assert "pass --polygrad-allow-empty if that is what you mean" in proc.stdout
    allowed = _pytest("--polygrad-backend=numpy", "--polygrad-device=cuda:0",
                      "--polygrad-case=YT-1", "--polygrad-allow-empty", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stdout[-3000:]


def test_pytest_counts_skips_by_reason_and_passes_when_something_ran(tmp_path):
    proc = _pytest("--polygrad-backend=numpy", "--polygrad-case=YT-1",
                   "--polygrad-dtype=float64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "numpy: 1 skipped: no other requested backend runs this dtype" in proc.stdout


def _importable(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def python_without_torch(tmp_path_factory):
    """A real venv holding everything this one has except torch (linked, not copied)."""
    venv = tmp_path_factory.mktemp("notorch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("torch", "functorch")):
            (Path(site) / entry.name).symlink_to(entry)
    probe = subprocess.run([str(python), "-c", "import importlib.util, polygrad_conformance; "
                            "print(importlib.util.find_spec('torch'))"],
                           capture_output=True, text=True, env=ENV)
    assert probe.stdout.strip() == "None", probe.stdout + probe.stderr
    return python


def test_backend_torch_without_torch_fails_cli_and_pytest(python_without_torch, tmp_path):
    says = "backend 'torch' ran no check: all 8 skipped (8 x 'torch' is not installed"
    run = {"python": python_without_torch, "cwd": tmp_path, "plugins": "numpy,torch"}
    proc = _cli("--backend", "torch", "--case", "YT-1", **run)
    assert proc.returncode == NOTHING_TESTED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"nothing tested: {says}" in proc.stderr
    proc = _pytest("--polygrad-backend=torch", "--polygrad-case=YT-1", **run)
    assert proc.returncode == NOTHING_TESTED, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"nothing tested: {says}" in proc.stdout
    proc = _pytest("--polygrad-backend=torch", "--polygrad-case=YT-1", "--polygrad-allow-empty",
                   **run)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_private_access_pattern_leaves_public_names_alone():
    assert private_uses("to_host(x); my_node = 1; polygrad.plugins.backend_names()") == []
