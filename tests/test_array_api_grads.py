"""Gradients of the Array API functions this issue added (linalg and fft extensions, sort,
cumulative_prod, take_along_axis, tril/triu, and the compositions), against torch.autograd,
on the numpy and torch backends.

Each row: numpy inputs, the polygrad call (on ``polygrad.ops``), the same computation in
torch. The loss is ``sum(f(x) * w)`` with a random ``w``, so one backward pass checks the
whole Jacobian in one direction. JVP rules are checked against the VJP by the dot-product
identity ``<w, J t> == <J^T w, t>``; second order runs the rules on polygrad.ops.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import polygrad
import polygrad.autograd.forward_ad as fwAD
import polygrad.ops as pg
from polygrad.primitives import NONDIFFERENTIABLE, PRIMITIVES

torch = pytest.importorskip("torch")


@dataclass
class GradCase:
    name: str
    args: Callable            # rng -> list of numpy float64 arrays
    ours: Callable            # (pg, *tensors) -> Tensor
    theirs: Callable          # (torch, *tensors) -> torch.Tensor
    second_order: bool = True
    jvp: bool = True
    rtol: float = 1e-8      # polygrad's special.erf is an approximation (error < 1.2e-7)


def r(*shape):
    return lambda rng: rng.uniform(-1.5, 1.5, size=shape)


def regular(n, batch=()):
    def make(rng):
        a = rng.uniform(-1, 1, size=batch + (n, n))
        return a + (n + 1.0) * np.eye(n)
    return make


def spd(n):
    def make(rng):
        a = rng.uniform(-1, 1, size=(n, n))
        return a @ a.T + n * np.eye(n)
    return make


def distinct(*shape):
    return lambda rng: rng.permutation(np.linspace(-2, 2, int(np.prod(shape)))).reshape(shape)


def args(*makers):
    return lambda rng: [m(rng) for m in makers]


def _sym(x):
    return 0.5 * (x + x.mT)


def _eigh_loss(ns, x):
    w, v = ns.linalg.eigh(x)
    return ns.concat([w, ns.reshape(v * v, (-1,))], axis=0)      # v * v: sign-invariant


def _torch_eigh_loss(t, x):
    w, v = t.linalg.eigh(x)
    return t.cat([w, (v * v).reshape(-1)])


def _qr_loss(ns, a):
    # q * d and r * d (d: r's diagonal) do not depend on the factorisation's sign convention
    q, r = ns.linalg.qr(a)
    d = ns.expand_dims(ns.linalg.diagonal(r), axis=-2)
    return ns.concat([ns.reshape(q * d, (-1,)), ns.reshape(r * ns.matrix_transpose(d), (-1,))],
                     axis=0)


def _torch_qr_loss(t, a):
    q, r = t.linalg.qr(a)
    d = t.diagonal(r, dim1=-2, dim2=-1).unsqueeze(-2)
    return t.cat([(q * d).reshape(-1), (r * d.mT).reshape(-1)])


def _svd_loss(ns, a, full=False):
    u, s, vh = ns.linalg.svd(a, full_matrices=full)
    # u * vh^T per singular pair is sign-invariant; so are u*u and vh*vh
    k = s.shape[-1]
    u, vh = u[..., :, :k], vh[..., :k, :]     # full_matrices: torch ignores the rest
    uv = ns.matmul(u * ns.expand_dims(s, axis=-2), vh)
    return ns.concat([ns.reshape(s, (-1,)), ns.reshape(uv, (-1,)), ns.reshape(u * u, (-1,)),
                      ns.reshape(vh * vh, (-1,))], axis=0)


def _torch_svd_loss(t, a):
    u, s, vh = t.linalg.svd(a, full_matrices=False)
    uv = (u * s.unsqueeze(-2)) @ vh
    return t.cat([s.reshape(-1), uv.reshape(-1), (u * u).reshape(-1), (vh * vh).reshape(-1)])


def _fft_parts(ns, y):
    return ns.stack([ns.real(y), ns.imag(y)], axis=0)


def _t_parts(t, y):
    return t.stack([y.real, y.imag], 0)


IDX = np.array([[2, 0, 1, 1], [0, 0, 3, 2], [1, 3, 3, 0]])

CASES = [
    # linalg primitives
    GradCase("linalg.det", args(regular(3, (2,))), lambda ns, a: ns.linalg.det(a),
             lambda t, a: t.linalg.det(a)),
    GradCase("linalg.logabsdet", args(regular(3)), lambda ns, a: ns.linalg.slogdet(a).logabsdet,
             lambda t, a: t.linalg.slogdet(a)[1]),
    GradCase("linalg.inv", args(regular(3, (2,))), lambda ns, a: ns.linalg.inv(a),
             lambda t, a: t.linalg.inv(a)),
    GradCase("linalg.solve", args(regular(3), r(3, 2)), lambda ns, a, b: ns.linalg.solve(a, b),
             lambda t, a, b: t.linalg.solve(a, b)),
    GradCase("linalg.solve vector", args(regular(3, (2,)), r(3)),
             lambda ns, a, b: ns.linalg.solve(a, b),
             lambda t, a, b: t.linalg.solve(a, t.broadcast_to(b, (2, 3)))),
    GradCase("linalg.cholesky", args(spd(3)), lambda ns, a: ns.linalg.cholesky(_sym(a)),
             lambda t, a: t.linalg.cholesky(_sym(a))),
    GradCase("linalg.cholesky upper", args(spd(3)),
             lambda ns, a: ns.linalg.cholesky(_sym(a), upper=True),
             lambda t, a: t.linalg.cholesky(_sym(a), upper=True)),
    GradCase("linalg.eigh", args(spd(3)), lambda ns, a: _eigh_loss(ns, _sym(a)),
             lambda t, a: _torch_eigh_loss(t, _sym(a))),
    GradCase("linalg.eigvalsh", args(spd(4)), lambda ns, a: ns.linalg.eigvalsh(_sym(a)),
             lambda t, a: t.linalg.eigvalsh(_sym(a))),
    GradCase("linalg.svdvals", args(r(4, 3)), lambda ns, a: ns.linalg.svdvals(a),
             lambda t, a: t.linalg.svdvals(a)),
    GradCase("linalg.svd tall", args(r(4, 3)), lambda ns, a: _svd_loss(ns, a),
             lambda t, a: _torch_svd_loss(t, a)),
    GradCase("linalg.svd wide", args(r(2, 3, 5)), lambda ns, a: _svd_loss(ns, a, full=True),
             lambda t, a: _torch_svd_loss(t, a)),
    GradCase("linalg.svd square full", args(r(3, 3)),
             lambda ns, a: _svd_loss(ns, a, full=True), lambda t, a: _torch_svd_loss(t, a)),
    GradCase("linalg.qr", args(r(2, 4, 3)), lambda ns, a: _qr_loss(ns, a),
             lambda t, a: _torch_qr_loss(t, a)),
    GradCase("linalg.qr square", args(regular(3)), lambda ns, a: _qr_loss(ns, a),
             lambda t, a: _torch_qr_loss(t, a)),
    GradCase("linalg.pinv", args(r(4, 3)), lambda ns, a: ns.linalg.pinv(a),
             lambda t, a: t.linalg.pinv(a)),
    GradCase("linalg.vector_norm", args(r(3, 4)), lambda ns, x: ns.linalg.vector_norm(x, axis=1),
             lambda t, x: t.linalg.vector_norm(x, dim=1)),
    GradCase("linalg.vector_norm ord=3", args(r(3, 4)),
             lambda ns, x: ns.linalg.vector_norm(x, ord=3, keepdims=True),
             lambda t, x: t.linalg.vector_norm(x, ord=3).reshape(1, 1)),
    GradCase("linalg.vector_norm ord=inf", args(distinct(3, 4)),
             lambda ns, x: ns.linalg.vector_norm(x, axis=0, ord=float("inf")),
             lambda t, x: t.linalg.vector_norm(x, dim=0, ord=float("inf"))),
    GradCase("linalg.vector_norm ord=1", args(r(5)),
             lambda ns, x: ns.linalg.vector_norm(x, ord=1),
             lambda t, x: t.linalg.vector_norm(x, ord=1)),
    # linalg compositions
    GradCase("linalg.matrix_norm fro", args(r(2, 3, 4)), lambda ns, x: ns.linalg.matrix_norm(x),
             lambda t, x: t.linalg.matrix_norm(x)),
    GradCase("linalg.matrix_norm nuc", args(r(3, 4)),
             lambda ns, x: ns.linalg.matrix_norm(x, ord="nuc"),
             lambda t, x: t.linalg.matrix_norm(x, ord="nuc")),
    GradCase("linalg.matrix_norm 1", args(distinct(3, 4)),
             lambda ns, x: ns.linalg.matrix_norm(x, ord=1),
             lambda t, x: t.linalg.matrix_norm(x, ord=1)),
    GradCase("linalg.trace", args(r(2, 3, 3)), lambda ns, x: ns.linalg.trace(x, offset=1),
             lambda t, x: t.diagonal(x, offset=1, dim1=-2, dim2=-1).sum(-1)),
    GradCase("linalg.diagonal", args(r(3, 4)), lambda ns, x: ns.linalg.diagonal(x, offset=-1),
             lambda t, x: t.diagonal(x, offset=-1)),
    GradCase("linalg.outer", args(r(3), r(4)), lambda ns, x, y: ns.linalg.outer(x, y),
             lambda t, x, y: t.outer(x, y)),
    GradCase("linalg.cross", args(r(2, 3), r(2, 3)), lambda ns, x, y: ns.linalg.cross(x, y),
             lambda t, x, y: t.linalg.cross(x, y)),
    GradCase("linalg.matrix_power", args(regular(3)), lambda ns, x: ns.linalg.matrix_power(x, 3),
             lambda t, x: t.linalg.matrix_power(x, 3)),
    GradCase("linalg.matrix_power -2", args(regular(3)),
             lambda ns, x: ns.linalg.matrix_power(x, -2),
             lambda t, x: t.linalg.matrix_power(x, -2)),
    # the rest of the standard
    GradCase("cumulative_prod", args(lambda rng: rng.uniform(0.5, 1.5, (3, 4))),
             lambda ns, x: ns.cumulative_prod(x, axis=1),
             lambda t, x: t.cumprod(x, dim=1)),
    GradCase("cumulative_prod include_initial", args(lambda rng: rng.uniform(0.5, 1.5, (4,))),
             lambda ns, x: ns.cumulative_prod(x, include_initial=True),
             lambda t, x: t.cat([t.ones(1, dtype=x.dtype), t.cumprod(x, 0)])),
    GradCase("take_along_axis", args(r(3, 4)),
             lambda ns, x: ns.take_along_axis(x, ns.asarray(IDX, device=x.device), axis=1),
             lambda t, x: t.take_along_dim(x, t.tensor(IDX), dim=1)),
    GradCase("sort", args(distinct(3, 4)), lambda ns, x: ns.sort(x, axis=0, descending=True),
             lambda t, x: t.sort(x, dim=0, descending=True).values),
    GradCase("tril", args(r(3, 4)), lambda ns, x: ns.tril(x, k=1), lambda t, x: t.tril(x, 1)),
    GradCase("triu", args(r(2, 3, 3)), lambda ns, x: ns.triu(x, k=-1),
             lambda t, x: t.triu(x, -1)),
    GradCase("repeat", args(r(3, 2)), lambda ns, x: ns.repeat(x, 2, axis=0),
             lambda t, x: t.repeat_interleave(x, 2, dim=0)),
    GradCase("tile", args(r(2, 3)), lambda ns, x: ns.tile(x, (2, 1, 2)),
             lambda t, x: t.tile(x, (2, 1, 2))),
    GradCase("roll", args(r(3, 4)), lambda ns, x: ns.roll(x, (1, -1), axis=(0, 1)),
             lambda t, x: t.roll(x, (1, -1), (0, 1))),
    GradCase("moveaxis", args(r(2, 3, 4)), lambda ns, x: ns.moveaxis(x, 0, -1),
             lambda t, x: t.movedim(x, 0, -1)),
    GradCase("diff", args(r(3, 5), r(3, 1)),
             lambda ns, x, p: ns.diff(x, axis=1, n=2, prepend=p),
             lambda t, x, p: t.diff(x, n=2, dim=1, prepend=p)),
    GradCase("unstack", args(r(3, 2)), lambda ns, x: ns.stack(ns.unstack(x, axis=1)[::-1]),
             lambda t, x: t.stack(t.unbind(x, 1)[::-1])),
    GradCase("meshgrid", args(r(3), r(2)),
             lambda ns, x, y: ns.stack(ns.meshgrid(x, y)),
             lambda t, x, y: t.stack(t.meshgrid(x, y, indexing="xy"))),
    GradCase("broadcast_arrays", args(r(3, 1), r(4)),
             lambda ns, x, y: ns.stack(ns.broadcast_arrays(x, y)),
             lambda t, x, y: t.stack(t.broadcast_tensors(x, y))),
    GradCase("clip with array bounds", args(r(3, 4), r(4), r(3, 1)),
             lambda ns, x, lo, hi: ns.clip(x, lo - 1.0, hi + 1.0),
             lambda t, x, lo, hi: t.clamp(x, lo - 1.0, hi + 1.0)),
    GradCase("special.erf", args(r(3, 4)), lambda ns, x: ns.special.erf(x),
             lambda t, x: t.erf(x), rtol=3e-7),
    GradCase("special.erfinv", args(lambda rng: rng.uniform(-0.9, 0.9, size=(3, 4))),
             lambda ns, x: ns.special.erfinv(x), lambda t, x: t.erfinv(x)),
    # the poles of lgamma and psi (0, -1, -2 ...) kept away from; torch's trigamma is off by
    # up to 5e-10, the tolerance of the polygamma rows' second order
    GradCase("lgamma", args(lambda rng: np.where(rng.random((3, 4)) < 0.7,
                                                 rng.uniform(0.2, 4.0, size=(3, 4)),
                                                 rng.uniform(-0.8, -0.2, size=(3, 4)))),
             lambda ns, x: ns.lgamma(x), lambda t, x: t.lgamma(x), rtol=1e-6),
    GradCase("polygamma", args(lambda rng: rng.uniform(0.2, 4.0, size=(3, 4))),
             lambda ns, x: ns.polygamma(x, n=1), lambda t, x: t.polygamma(1, x), rtol=1e-6),
    # fft (real leaves; complex values in between)
    GradCase("fft.fft", args(r(3, 5)), lambda ns, x: _fft_parts(ns, ns.fft.fft(x, n=6)),
             lambda t, x: _t_parts(t, t.fft.fft(x, n=6))),
    GradCase("fft.ifft ortho", args(r(5)),
             lambda ns, x: _fft_parts(ns, ns.fft.ifft(x, n=4, norm="ortho")),
             lambda t, x: _t_parts(t, t.fft.ifft(x, n=4, norm="ortho"))),
    GradCase("fft.fftn", args(r(3, 4)),
             lambda ns, x: _fft_parts(ns, ns.fft.fftn(x, s=(4, 3), norm="forward")),
             lambda t, x: _t_parts(t, t.fft.fftn(x, s=(4, 3), norm="forward"))),
    GradCase("fft.ifftn", args(r(2, 3, 4)),
             lambda ns, x: _fft_parts(ns, ns.fft.ifftn(x, axes=(0, 2))),
             lambda t, x: _t_parts(t, t.fft.ifftn(x, dim=(0, 2)))),
    GradCase("fft.rfft", args(r(3, 6)), lambda ns, x: _fft_parts(ns, ns.fft.rfft(x, n=5)),
             lambda t, x: _t_parts(t, t.fft.rfft(x, n=5))),
    GradCase("fft.irfft", args(r(3, 6)),
             lambda ns, x: ns.fft.irfft(ns.fft.rfft(x), n=7),
             lambda t, x: t.fft.irfft(t.fft.rfft(x), n=7)),
    GradCase("fft.irfft even", args(r(6)),
             lambda ns, x: ns.fft.irfft(ns.fft.fft(x)[:4], norm="ortho"),
             lambda t, x: t.fft.irfft(t.fft.fft(x)[:4], norm="ortho")),
    GradCase("fft.hfft", args(r(5)), lambda ns, x: ns.fft.hfft(ns.fft.fft(x)[:3], n=4),
             lambda t, x: t.fft.hfft(t.fft.fft(x)[:3], n=4)),
    GradCase("fft.ihfft", args(r(5)), lambda ns, x: _fft_parts(ns, ns.fft.ihfft(x)),
             lambda t, x: _t_parts(t, t.fft.ihfft(x).resolve_conj())),
    GradCase("fft.rfftn irfftn", args(r(3, 4)),
             lambda ns, x: ns.fft.irfftn(ns.fft.rfftn(x) * 2.0, s=(3, 4)),
             lambda t, x: t.fft.irfftn(t.fft.rfftn(x) * 2.0, s=(3, 4))),
    GradCase("fft.fftshift", args(r(3, 4)), lambda ns, x: ns.fft.fftshift(x),
             lambda t, x: t.fft.fftshift(x)),
]
BY_NAME = {c.name: c for c in CASES}


def _np(t):
    return t.numpy(force=True)      # polygrad and torch alike (torch: ZeroTensor, conj views)


def _setup(case, backend):
    rng = np.random.default_rng(7)
    xs_np = case.args(rng)
    xs = [polygrad.from_numpy(a, backend=backend, requires_grad=True) for a in xs_np]
    txs = [torch.tensor(a, requires_grad=True) for a in xs_np]
    return rng, xs_np, xs, txs


@pytest.mark.parametrize("name", list(BY_NAME))
def test_value_and_gradient_match_torch(name, backend):
    case = BY_NAME[name]
    rng, xs_np, xs, txs = _setup(case, backend)
    out, tout = case.ours(pg, *xs), case.theirs(torch, *txs)
    np.testing.assert_allclose(_np(out), _np(tout), rtol=case.rtol, atol=case.rtol * 1e-2)
    w = rng.standard_normal(tuple(tout.shape))
    grads = polygrad.autograd.grad(pg.sum(out * polygrad.from_numpy(w, backend=backend)), xs)
    tgrads = torch.autograd.grad((tout * torch.tensor(w)).sum(), txs)
    for g, tg in zip(grads, tgrads):
        assert g.dtype == polygrad.float64
        np.testing.assert_allclose(_np(g), _np(tg), rtol=case.rtol * 10, atol=case.rtol * 1e-1)


@pytest.mark.parametrize("name", [c.name for c in CASES if c.second_order])
def test_second_order_matches_torch(name, backend):
    case = BY_NAME[name]
    rng, xs_np, xs, txs = _setup(case, backend)
    out, tout = case.ours(pg, *xs), case.theirs(torch, *txs)
    w = rng.standard_normal(tuple(tout.shape))
    (g,) = polygrad.autograd.grad(pg.sum(out * polygrad.from_numpy(w, backend=backend)), xs[:1],
                                  create_graph=True)
    (tg,) = torch.autograd.grad((tout * torch.tensor(w)).sum(), txs[:1], create_graph=True)
    if not tg.requires_grad:        # linear in x: the second derivative is zero
        assert not g.requires_grad or np.allclose(_np(g.grad_fn and g), _np(tg))
        return
    v = rng.standard_normal(g.shape)
    gg = polygrad.autograd.grad(pg.sum(g * polygrad.from_numpy(v, backend=backend)), xs,
                                allow_unused=True)
    tgg = torch.autograd.grad((tg * torch.tensor(v)).sum(), txs, allow_unused=True)
    for a, b in zip(gg, tgg):
        if b is None:
            assert a is None or np.allclose(_np(a), 0.0)
        else:
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", [c.name for c in CASES if c.jvp])
def test_jvp_agrees_with_vjp(name, backend):
    """Forward mode: <w, J t> == <J^T w, t> for a random tangent t and cotangent w."""
    case = BY_NAME[name]
    rng, xs_np, xs, _ = _setup(case, backend)
    tangents = [rng.standard_normal(a.shape) for a in xs_np]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach(), polygrad.from_numpy(t, backend=backend).astype(x.dtype))
                 if x.dtype.is_floating_point or x.dtype.is_complex else x.detach()
                 for x, t in zip(xs, tangents)]
        out = case.ours(pg, *duals)
        jt = fwAD.unpack_dual(out).tangent
    assert jt is not None, f"{name}: no tangent came out"
    w = rng.standard_normal(tuple(out.shape))
    loss = pg.sum(case.ours(pg, *xs) * polygrad.from_numpy(w, backend=backend))
    vjp = polygrad.autograd.grad(loss, xs)
    lhs = float(np.sum(w * np.real(_np(jt))))
    rhs = sum(float(np.sum(_np(g) * t)) for g, t in zip(vjp, tangents))
    assert np.isclose(lhs, rhs, rtol=1e-7, atol=1e-9), (lhs, rhs)


def test_every_new_primitive_has_a_gradient_case():
    """Adding a primitive to these modules costs a row here (as op_cases does for the core)."""
    covered = {c.name.split(" ")[0] for c in CASES}
    mine = ("linalg", "fft", "special")
    missing = [n for n, p in PRIMITIVES.items()
               if p.module.rsplit(".", 1)[-1] in mine and n not in NONDIFFERENTIABLE
               and n not in covered and n != "imag"]
    assert not missing, f"primitives without a gradient case: {missing}"


def test_qr_gradient_of_a_wide_matrix_is_refused_with_the_reason(backend):
    x = polygrad.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0]], requires_grad=True)
    q, r = pg.linalg.qr(x)                   # forward is fine
    assert q.shape == (2, 2) and r.shape == (2, 3)
    with pytest.raises(NotImplementedError, match="m >= n"):
        pg.sum(r).backward()
    assert x.grad is None


def test_svd_full_matrices_ignores_the_extra_singular_vectors_as_torch(backend):
    x_np = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0]])
    x = polygrad.from_numpy(x_np, backend=backend, requires_grad=True)
    u, s, vh = pg.linalg.svd(x)              # full_matrices=True: vh is 3 x 3
    assert vh.shape == (3, 3)
    w = np.arange(9.0).reshape(3, 3)          # squares: singular vectors' signs are free
    loss = pg.sum(s * s) + pg.sum(vh * vh * polygrad.from_numpy(w, backend=backend))
    loss.backward()
    tx = torch.tensor(x_np, requires_grad=True)
    tu, ts, tvh = torch.linalg.svd(tx)
    ((ts * ts).sum() + (tvh * tvh * torch.tensor(w)).sum()).backward()
    np.testing.assert_allclose(_np(x.grad), _np(tx.grad), atol=1e-10)
