"""One registry: adding an op is one row in the rule table and one conformance case.

In a scratch copy of the packages, a new elementwise primitive (``exp2``) is added as one
row; the copy's ``polygrad.ops``, Tensor methods and torch-style names all have it, and the
meta-test sees it has no case. Adding one case then makes the conformance suite test it
(values and gradients against numpy's float64 reference, finite differences, torch).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import polygrad
from polygrad.primitives import PRIMITIVES

ROOT = Path(__file__).resolve().parents[1]

ROW = '\new("exp2", lambda ns, out, x: out * 0.6931471805599453, saves=("out",))\n'
CASE = '\nregister_case(OpCase("exp2", args(r(2, 3))))\n'

PROBE = """
import inspect, json
import polygrad, polygrad.ops as pg
from polygrad.primitives import PRIMITIVES
from polygrad_conformance.op_table import OP_CASES
x = polygrad.tensor([0.0, 1.0, 3.0], dtype=polygrad.float64, requires_grad=True)
y = x.exp2()
y.sum().backward()
out = {
    "ops": str(inspect.signature(pg.exp2)), "method": hasattr(polygrad.Tensor, "exp2"),
    "inplace": hasattr(polygrad.Tensor, "exp2_"), "torch": polygrad.exp2(x).tolist(),
    "value": y.tolist(), "grad": x.grad.tolist(), "node": type(y.grad_fn).__name__,
    "missing": sorted(set(PRIMITIVES) - set(OP_CASES)),
}
if "exp2" in OP_CASES:
    import polygrad_conformance
    backends = [b for b in ("numpy", "torch") if b in polygrad.backends()]
    report = polygrad_conformance.run(backends, cases=["op:exp2"], dtypes=["float64"])
    out["checks"] = sorted({f"{r['check']}:{r['backend']}:{r['outcome']}"
                            for r in report.data["results"]})
print(json.dumps(out))
"""


def _scratch(tmp_path, case):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(ROOT / "polygrad", site / "polygrad")
    shutil.copytree(ROOT / "backends", site / "polygrad_backends")
    shutil.copytree(ROOT / "conformance", site / "polygrad_conformance")
    with open(site / "polygrad" / "primitives" / "elementwise.py", "a") as f:
        f.write(ROW)
    if case:
        with open(site / "polygrad_conformance" / "op_table.py", "a") as f:
            f.write(CASE)
    return site


def _probe(site):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    env["PYTHONPATH"] = str(site)      # the scratch copy shadows the installed packages
    env["POLYGRAD_LOAD_PLUGINS"] = "numpy,torch"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE)], cwd=site, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_exp2_is_not_in_the_checkout():
    """The scratch test below means something only while exp2 is not already there."""
    if "exp2" in PRIMITIVES:
        pytest.skip("exp2 is a row of the real table now: pick another new op for this test")
    assert not hasattr(polygrad.ops, "exp2") or "exp2" in PRIMITIVES


@pytest.mark.slow
def test_one_row_makes_the_function_the_method_and_the_torch_name(tmp_path):
    out = _probe(_scratch(tmp_path, case=False))
    assert out["ops"] == "(x, /)"                              # the standard's signature
    assert out["method"] and out["inplace"]
    assert out["value"] == [1.0, 2.0, 8.0] == out["torch"]
    assert out["grad"] == pytest.approx([0.6931471805599453 * v for v in (1.0, 2.0, 8.0)])
    assert out["node"] == "Exp2Backward0"
    assert "exp2" in out["missing"]        # the meta-test names the row that has no case


@pytest.mark.slow
def test_one_case_puts_it_under_the_conformance_suite(tmp_path):
    out = _probe(_scratch(tmp_path, case=True))
    assert "exp2" not in out["missing"]
    assert out["checks"], "the suite ran no check for the new op"
    assert all(c.endswith(":pass") for c in out["checks"]), out["checks"]
    kinds = {c.split(":")[0] for c in out["checks"]}
    assert {"value", "vjp", "fd", "jvp", "grad2"} <= kinds, kinds
    if "torch" in polygrad.backends():      # real torch installed: it is the oracle too
        assert "torch" in kinds and any(c.startswith("vjp:torch") for c in out["checks"])
