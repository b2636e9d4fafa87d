"""Every primitive, through the conformance kit's own case table and checks, on numpy and
torch in float64: one test per row of ``polygrad_conformance.op_table.OP_CASES``.

Each row runs on polygrad.ops (``case.run(ns, *xs)``) and, as the oracle, on real torch
tensors (``case.torch``, or the same call on ``array_api_compat.torch``). The kit's checks
compare the value and VJP with the float64 numpy reference and with torch.autograd, second
order (create_graph) with torch's double backward, the gradient with central finite
differences (first and second order), the JVP with the VJP (dot-product test), and the two
backends with each other; the VJP check also asserts the gradients live on the inputs'
backend. This file asks that every check the row allows actually ran, and holds the core
table tighter than the kit's tolerances, which are written for third-party backends.
"""

import pytest
from conftest import BACKENDS

import polygrad
from polygrad.primitives import PRIMITIVES
from polygrad_conformance.op_table import OP_CASES
from polygrad_conformance.runner import Session, execute

pytest.importorskip("torch")

#: fractions of the kit's tolerance these checks stay within on polygrad's own backends:
#: finite differences at 1/100 of gradcheck's rtol=1e-3 (float64 with eps=1e-6 does far
#: better), torch at 1/100 of atol=1e-9, rtol=1e-7
TIGHTER = {"fd": 0.01, "torch": 0.01}
#: rows whose forward is an approximation by design, held to the kit's tolerance only
APPROXIMATE = {"special.erf": "a rational approximation (relative error < 1.2e-7) where the "
                              "backend has no native erf"}


def expected_checks(name):
    """The checks a row must pass: what its primitive and its case allow."""
    prim, case = PRIMITIVES[name], OP_CASES[name]
    if not prim.differentiable:
        return {"value", "torch", "cross"}
    kinds = {"value", "vjp", "torch", "cross"}
    if case.second_order:
        kinds.add("grad2")
    if case.fd:
        kinds.add("fd")
    if prim.jvp is not None:
        kinds.add("jvp")
    return kinds


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_primitive_against_reference_torch_and_finite_differences(name):
    session = Session(BACKENDS, dtypes=["float64"], cases=[f"op:{name}"])
    records = [execute(check) for check in session.checks()]
    # "unsupported": a declared gap (Backend.unsupported), verified to raise
    bad = [f"{r['id']}: {r['outcome']}: {r['reason']}" for r in records
           if r["outcome"] not in ("pass", "skip", "unsupported")]
    assert not bad, "\n".join(bad)
    passed = {(r["backend"], r["check"]) for r in records if r["outcome"] == "pass"}
    runs = [b for b in BACKENDS if name not in polygrad.get_backend(b).unsupported]
    missing = {(b, k) for b in runs for k in expected_checks(name)} - passed
    skipped = {r["id"]: r["reason"] for r in records if r["outcome"] == "skip"}
    assert not missing, f"checks that did not run: {sorted(missing)}; skips: {skipped}"
    if name in APPROXIMATE:
        return
    loose = [f"{r['id']}: {r['tol_ratio']:.3g} x the kit's tolerance ({r['worst']})"
             for r in records if r["check"] in TIGHTER and r["outcome"] == "pass"
             and r["tol_ratio"] > TIGHTER[r["check"]]]
    assert not loose, "\n".join(loose)
