"""Forward-mode AD (autograd.forward_ad): tangents through the primitives' JVP rules,
against torch.autograd.forward_ad on the same inputs; forward-over-reverse; errors.

Each function uses only what polygrad and torch share (methods, ``lib.cat`` …), so one
definition runs on both: ``lib`` is ``polygrad`` or ``torch``.
"""

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as tfw

import polygrad as pg
import polygrad.autograd.forward_ad as fw
from polygrad.autograd import functional as F
from polygrad.graph.engine import forward_ad_state

RNG = np.random.default_rng(1)
# torch's forward_ad warns about its own internals (torch.jit.script) on this version
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")

# name, function(lib, x, y), shapes of x and y
OPS = [
    ("exp_sin", lambda lib, x, y: x.exp() * x.sin() + y, (2, 3), (2, 3)),
    ("div_pow", lambda lib, x, y: x / y + x ** 3 + x.pow(y), (2, 3), (2, 3)),
    ("broadcast", lambda lib, x, y: x * y + y, (2, 3), (3,)),
    ("log_sqrt_tanh", lambda lib, x, y: x.log() + y.sqrt() * x.tanh(), (4,), (4,)),
    ("reductions", lambda lib, x, y: x.sum(1) * y.mean() + x.prod(), (2, 3), (3,)),
    ("matmul", lambda lib, x, y: x @ y, (2, 3), (3, 4)),
    ("matvec", lambda lib, x, y: x @ y, (2, 3), (3,)),
    ("shapes", lambda lib, x, y: x.t().reshape(6) * y.flip(0).expand(2, 3).reshape(6),
     (2, 3), (3,)),
    ("indexing", lambda lib, x, y: x[0] * y + x[:, 1:].sum(), (2, 3), (3,)),
    ("cat_stack", lambda lib, x, y: lib.stack([lib.cat([x, x * 2], 0), x.flip(0)[[0, 1, 0, 1]]]),
     (2, 3), (1,)),
    ("gated", lambda lib, x, y: lib.where(x > 0.5, x, y) + x.clamp(min=0.4) + x.relu(),
     (5,), (5,)),
    ("softmax_lse", lambda lib, x, y: x.softmax(-1) * x.logsumexp(1, keepdim=True), (2, 3),
     (1,)),
    ("cumsum_var", lambda lib, x, y: x.cumsum(1) + x.var() + x.sigmoid(), (2, 3), (1,)),
    ("norm", lambda lib, x, y: x.norm() * y, (4,), (2,)),
]


def _pair(lib, data):
    if lib is torch:
        return [torch.tensor(d, dtype=torch.float64) for d in data]
    return [pg.tensor(d, dtype=pg.float64) for d in data]


@pytest.mark.parametrize("name,fn,sx,sy", OPS, ids=[o[0] for o in OPS])
def test_tangents_match_torch_forward_ad(backend, name, fn, sx, sy):
    data = [RNG.uniform(0.2, 1.0, sx), RNG.uniform(0.2, 1.0, sy)]
    tangents = [RNG.standard_normal(sx), RNG.standard_normal(sy)]
    results = []
    for lib, mod in ((pg, fw), (torch, tfw)):
        (x, y), (tx, ty) = _pair(lib, data), _pair(lib, tangents)
        with mod.dual_level():
            out = fn(lib, mod.make_dual(x, tx), mod.make_dual(y, ty))
            primal, tangent = mod.unpack_dual(out)
            results.append((primal, tangent))
    (p, t), (rp, rt) = results
    np.testing.assert_allclose(p.to("numpy").numpy(), rp.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.to("numpy").numpy(), rt.numpy(), rtol=1e-10, atol=1e-12)


def test_unpack_dual_api_and_level_lifetime(backend):
    x, t = pg.tensor([1.0, 2.0]), pg.tensor([3.0, 4.0])
    with fw.dual_level():
        d = fw.make_dual(x, t)
        y = d * d
        primal, tangent = fw.unpack_dual(y)
        assert type(fw.unpack_dual(y)).__name__ == "UnpackedDualTensor"
        assert tangent.tolist() == [6.0, 16.0] and primal.tolist() == [1.0, 4.0]
        assert fw.unpack_dual(x).tangent is None        # the primal itself carries none
        assert primal._tangent is None
    # leaving the level drops every tangent made in it
    assert fw.unpack_dual(d).tangent is None and d._tangent is None and y._tangent is None
    assert y.grad_fn is None and (y * 1.0)._tangent is None


def test_no_grad_does_not_stop_forward_mode(backend):
    with fw.dual_level(), pg.no_grad():
        d = fw.make_dual(pg.tensor([0.5]), pg.tensor([2.0]))
        assert fw.unpack_dual(d.exp()).tangent.item() == pytest.approx(2 * np.exp(0.5))


def test_reverse_mode_through_a_dual_reaches_the_primal(backend):
    x = pg.tensor([0.3, 0.6], dtype=pg.float64, requires_grad=True)
    with fw.dual_level():
        d = fw.make_dual(x, pg.ones(2, dtype=pg.float64))
        (d.sin() * d).sum().backward()
    xn = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(xn) * xn + np.sin(xn), rtol=1e-12)


def test_forward_over_reverse_matches_torch_hvp(backend):
    data, v = RNG.uniform(0.2, 1.0, 4), RNG.standard_normal(4)

    def f(x):
        return (x.exp() * x.sin()).sum() + (x[:2] * x[2:]).prod()

    x = pg.tensor(data, dtype=pg.float64, requires_grad=True)
    with fw.dual_level():
        d = fw.make_dual(x, pg.tensor(v, dtype=pg.float64))
        (g,) = pg.autograd.grad(f(d), d, create_graph=True)
        hv = fw.unpack_dual(g).tangent
    _, ref = torch.autograd.functional.hvp(f, torch.tensor(data), torch.tensor(v))
    np.testing.assert_allclose(hv.detach().to("numpy").numpy(), ref.numpy(), rtol=1e-10)


def test_tangent_is_differentiable(backend):
    """A tangent computed from inputs that require grad has a graph (reverse-over-forward):
    d/dx of the tangent of exp(x)*x along v is v*(exp(x)*(x+2))."""
    x = pg.tensor([0.2, 0.7], dtype=pg.float64, requires_grad=True)
    v = pg.tensor([1.0, -2.0], dtype=pg.float64)
    with fw.dual_level():
        t = fw.unpack_dual(fw.make_dual(x, v).exp() * fw.make_dual(x, v)).tangent
    (g,) = pg.autograd.grad(t.sum(), x)
    xn = x.detach().numpy()
    np.testing.assert_allclose(g.numpy(), v.numpy() * np.exp(xn) * (xn + 2), rtol=1e-12)


def test_jvp_is_native_forward_mode(backend):
    """functional.jvp builds no reverse graph: its outputs never needed one."""
    x = pg.tensor([0.1, 0.2], dtype=pg.float64, requires_grad=True)
    seen = []
    out, t = F.jvp(lambda z: seen.append(z.requires_grad) or z.exp(), x, pg.ones(2))
    assert seen == [False] and not t.requires_grad


BAD = [
    (lambda: fw.make_dual(pg.ones(2), pg.ones(2)), RuntimeError, "no level exists"),
    (lambda: _in_level(lambda: fw.make_dual(pg.ones(3), pg.ones(2))), RuntimeError,
     "Tensor is of size [3] while the given forward gradient is of size [2]"),
    (lambda: _in_level(lambda: fw.make_dual(pg.ones(2), [1.0, 2.0])), TypeError,
     "two polygrad Tensors"),
    (lambda: _in_level(lambda: fw.make_dual(pg.arange(2), pg.ones(2))), ValueError,
     "floating point"),
    (lambda: _in_level(lambda: _in_level(lambda: None)), RuntimeError, "Nested forward mode"),
    (lambda: fw.exit_dual_level(), RuntimeError, "no forward AD level is open"),
]


def _in_level(fn):
    with fw.dual_level():
        return fn()


@pytest.mark.parametrize("call,exc,words", BAD, ids=[b[2][:20] for b in BAD])
def test_errors(call, exc, words):
    with pytest.raises(exc, match=words.replace("[", r"\[").replace("]", r"\]")):
        call()
    assert forward_ad_state.level == 0     # a failure leaves no level open


def test_tangent_on_other_backend_is_refused():
    with fw.dual_level():
        with pytest.raises(RuntimeError, match="move it first"):
            fw.make_dual(pg.ones(2, backend="numpy"), pg.ones(2, backend="torch"))


def test_in_place_ops_carry_tangents_like_torch(backend):
    results = []
    for lib, mod in ((pg, fw), (torch, tfw)):
        with mod.dual_level():
            d = mod.make_dual(lib.tensor([1.0, 2.0], dtype=lib.float64),
                              lib.tensor([1.0, -1.0], dtype=lib.float64))
            e = d * 1.0
            e.mul_(3.0)
            e.add_(d)
            plain = lib.ones(2, dtype=lib.float64)
            plain.mul_(d)              # a tensor without tangent takes one from its operand
            with lib.no_grad():
                n = d.exp()
                n.mul_(d)
            results.append([mod.unpack_dual(t).tangent.tolist() for t in (e, plain, n)])
    assert np.allclose(results[0], results[1], rtol=1e-12)


def _dual_facts(lib, mod):
    """What a user can observe of make_dual / unpack_dual results (torch: views of the primal)."""
    f64 = lib.float64
    facts = {}
    x = lib.tensor([1.0, 2.0], dtype=f64, requires_grad=True)
    with mod.dual_level() as level:
        facts["level"] = level
        d = mod.make_dual(x, lib.ones(2, dtype=f64))
        facts["dual"] = (d.is_leaf, d.requires_grad, type(d.grad_fn).__name__)
        primal = mod.unpack_dual(d).primal
        facts["primal"] = (primal.is_leaf, primal.requires_grad)
        with lib.no_grad():
            nd = mod.make_dual(x, lib.ones(2, dtype=f64))
            facts["no_grad"] = (nd.requires_grad, nd.grad_fn is None)
        facts["non_leaf"] = type(mod.make_dual(x * 2, lib.ones(2, dtype=f64)).grad_fn).__name__
        z = lib.ones(2, dtype=f64)
        dz = mod.make_dual(z, lib.ones(2, dtype=f64))
        mod.unpack_dual(dz).primal.mul_(3)          # one buffer: z, dz and its primal
        dz.add_(1)
        facts["shared"] = (z.tolist(), dz.tolist(), mod.unpack_dual(dz).tangent.tolist())
        tt = lib.ones(2, dtype=f64, requires_grad=True)
        dd = mod.make_dual(lib.ones(2, dtype=f64), tt)
        facts["tangent"] = (mod.unpack_dual(dd).tangent is tt,
                            mod.unpack_dual(dd * dd).tangent.requires_grad)
    return facts


def test_make_dual_is_a_view_as_in_torch():
    assert _dual_facts(pg, fw) == _dual_facts(torch, tfw)


def _tangent_grads(lib, mod, xd, vd):
    """Backward through a tangent: d/dx and d/dv of the JVP of f at x along v."""
    x = lib.tensor(xd, dtype=lib.float64, requires_grad=True)
    v = lib.tensor(vd, dtype=lib.float64, requires_grad=True)
    with mod.dual_level():
        d = mod.make_dual(x, v)
        t = mod.unpack_dual((d.sin() * d.exp()).sum() + (d @ d) * d[0]).tangent
    return [g.detach().numpy() for g in lib.autograd.grad(t, (x, v))]


def _jvp_in_backward(lib, mod, xd):
    """A custom Function whose backward computes its gradient in forward mode."""
    class SinSum(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin().sum()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            with mod.dual_level():
                d = mod.make_dual(x.detach(), lib.ones_like(x))
                return g * mod.unpack_dual(d.sin()).tangent

    x = lib.tensor(xd, dtype=lib.float64, requires_grad=True)
    (SinSum.apply(x) * 3).backward()
    return x.grad.numpy()


@pytest.mark.parametrize("data", [RNG.uniform(-1, 1, 3), np.zeros(3)], ids=["random", "zeros"])
def test_backward_of_a_tangent_and_forward_mode_in_backward_match_torch(backend, data):
    v = RNG.standard_normal(3)
    for ours, ref in zip(_tangent_grads(pg, fw, data, v), _tangent_grads(torch, tfw, data, v)):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_jvp_in_backward(pg, fw, data), _jvp_in_backward(torch, tfw, data),
                               rtol=1e-12)
