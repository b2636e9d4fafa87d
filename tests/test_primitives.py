"""Every primitive of the core table, on numpy and torch, in float64: values and gradients
against torch.autograd, the gradient against central finite differences, and second order
(create_graph) against torch's double backward."""

import numpy as np
import pytest

import polygrad
from polygrad import ops
from polygrad.primitives import NONDIFFERENTIABLE, PRIMITIVES

from conftest import BACKENDS, HAS_TORCH
from op_cases import CASES

torch = pytest.importorskip("torch") if HAS_TORCH else None
IDS = [c.name for c in CASES]


def _inputs(case, seed=0):
    return case.args(np.random.default_rng(seed))


def _pg_call(case, xs):
    if case.call is not None:
        return case.call(ops, *xs)
    return getattr(ops, case.name)(*xs, **case.opts)


def _pg_inputs(case, host, backend):
    xs = []
    for i, h in enumerate(host):
        t = polygrad.asarray(np.array(h), backend=backend)
        if i in case.grad:
            t.requires_grad_(True)
        xs.append(t)
    return xs


def _torch_inputs(case, host):
    xs = []
    for i, h in enumerate(host):
        t = torch.tensor(np.array(h))
        if i in case.grad:
            t.requires_grad_(True)
        xs.append(t)
    return xs


def _np(t):
    if t is None:
        return None
    # force=True: torch returns a ZeroTensor for some constant second derivatives
    return t.detach().numpy(force=True) if hasattr(t, "detach") else np.asarray(t)


def _close(a, b, tol=1e-9):
    a = np.zeros(()) if a is None else a
    b = np.zeros(()) if b is None else b
    np.testing.assert_allclose(a, np.broadcast_to(b, np.shape(a)) if np.ndim(b) == 0 else b,
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_gradient_match_torch(case, backend):
    host = _inputs(case)
    xs = _pg_inputs(case, host, backend)
    out = _pg_call(case, xs)
    txs = _torch_inputs(case, host)
    tout = case.torch(torch, *txs)
    _close(_np(out), _np(tout))
    u = np.random.default_rng(1).standard_normal(tuple(out.shape))
    grads = polygrad.autograd.grad(out, [xs[i] for i in case.grad],
                                   grad_outputs=polygrad.asarray(u, backend=backend),
                                   allow_unused=True)
    tgrads = torch.autograd.grad(tout, [txs[i] for i in case.grad], grad_outputs=torch.tensor(u),
                                 allow_unused=True)
    for g, tg in zip(grads, tgrads):
        _close(_np(g), _np(tg))
        if g is not None:
            assert g.backend == backend


FD_CASES = [c for c in CASES if c.fd]


@pytest.mark.parametrize("case", FD_CASES, ids=[c.name for c in FD_CASES])
def test_gradient_matches_finite_differences(case):
    """The dot-product test: one random direction checks the whole Jacobian."""
    host = [np.array(h) for h in _inputs(case)]
    xs = _pg_inputs(case, host, "numpy")
    out = _pg_call(case, xs)
    rng = np.random.default_rng(2)
    u = rng.standard_normal(tuple(out.shape))
    grads = polygrad.autograd.grad(out, [xs[i] for i in case.grad], polygrad.asarray(u),
                                   allow_unused=True)
    dirs = {i: rng.standard_normal(host[i].shape) for i in case.grad}
    eps = 1e-6

    def f(sign):
        shifted = [h + sign * eps * dirs[i] if i in dirs else h for i, h in enumerate(host)]
        with polygrad.no_grad():
            return _np(_pg_call(case, [polygrad.asarray(s) for s in shifted]))

    numeric = float(np.sum((f(1) - f(-1)) / (2 * eps) * u))
    analytic = sum(float(np.sum(_np(g) * dirs[i])) for i, g in zip(case.grad, grads)
                   if g is not None)
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [c for c in CASES if c.second_order],
                         ids=[c.name for c in CASES if c.second_order])
def test_second_order_matches_torch(case, backend):
    host = _inputs(case)
    rng = np.random.default_rng(3)
    xs = _pg_inputs(case, host, backend)
    txs = _torch_inputs(case, host)
    out, tout = _pg_call(case, xs), case.torch(torch, *txs)
    u = rng.standard_normal(tuple(out.shape))
    wrt, twrt = [xs[i] for i in case.grad], [txs[i] for i in case.grad]
    g1 = polygrad.autograd.grad(out, wrt, polygrad.asarray(u, backend=backend), create_graph=True,
                                allow_unused=True)
    tg1 = torch.autograd.grad(tout, twrt, torch.tensor(u), create_graph=True, allow_unused=True)
    ws = [rng.standard_normal(tuple(x.shape)) for x in wrt]
    s = sum((g * polygrad.asarray(w, backend=backend)).sum() for g, w in zip(g1, ws)
            if g is not None and g.requires_grad)
    ts = sum((g * torch.tensor(w)).sum() for g, w in zip(tg1, ws)
             if g is not None and g.requires_grad)
    if isinstance(s, int) or isinstance(ts, int):   # first derivative is constant
        assert isinstance(s, int) and isinstance(ts, int)
        return
    g2 = polygrad.autograd.grad(s, wrt, allow_unused=True)
    tg2 = torch.autograd.grad(ts, twrt, allow_unused=True)
    for a, b in zip(g2, tg2):
        _close(_np(a), _np(b), tol=1e-8)


def test_every_core_primitive_has_a_case():
    """Adding a primitive costs a row in the table and a case here."""
    from op_cases import CASE_BY_NAME
    from polygrad_conformance.op_table import OP_CASES
    extra = {"to"}       # moving between backends is tested in test_backends.py
    core_modules = ("elementwise", "reductions", "shape", "linalg", "indexing")
    missing = []
    for name, prim in PRIMITIVES.items():
        if name in NONDIFFERENTIABLE or name in extra or name in CASE_BY_NAME or name in OP_CASES:
            continue
        if getattr(prim, "module", "").rsplit(".", 1)[-1] in core_modules:
            missing.append(name)
    assert not missing, f"primitives without a test case: {missing}"
