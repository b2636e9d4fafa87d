"""`import polygrad` stays light: no torch, cupy or dask import and no plugin discovery
until a backend is used (checked in fresh subprocesses). Its time is measured in
benchmarks/bench_import.py, not asserted here."""

import json
import subprocess
import sys

CHECK = """
import json, sys
import polygrad
state = {"after_import": sorted(m for m in ("torch", "cupy", "dask", "jax", "array_api_strict")
                                if m in sys.modules),
         "discovered": polygrad.plugins._host.loaded}
x = polygrad.ones(3, requires_grad=True)
(x * 2).sum().backward()
state["after_numpy_use"] = sorted(m for m in ("torch", "cupy", "dask") if m in sys.modules)
print(json.dumps(state))
"""


def test_import_is_light_and_discovery_is_lazy():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout)
    assert state == {"after_import": [], "discovered": False, "after_numpy_use": []}


def test_core_names_no_array_library():
    """Nothing in polygrad/ imports numpy, torch or cupy: backends are plugins."""
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1] / "polygrad"
    heavy = {"numpy", "torch", "cupy"}

    def imports(path):     # import statements only: templates in strings do not count
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from (a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0]

    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if heavy & set(imports(p))]
    assert not offenders, f"core modules importing an array library: {offenders}"
