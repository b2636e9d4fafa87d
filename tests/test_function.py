"""Custom ops (autograd.Function), with the same Function written for torch as the oracle.

Each Function body uses only what polygrad and torch share, so one body is defined twice
(``_pair``): once on polygrad's Function and once on torch's.
"""

import numpy as np
import pytest
import torch

import polygrad as pg
import polygrad.autograd.forward_ad as fw
from polygrad.autograd import Function, once_differentiable


def _pair(name, forward, backward, jvp=None, decorate=None):
    """The same custom op as a polygrad Function and as a torch Function."""
    out = []
    for base in (Function, torch.autograd.Function):
        body = {"forward": staticmethod(forward),
                "backward": staticmethod(decorate(backward) if decorate else backward)}
        if jvp is not None:
            body["jvp"] = staticmethod(jvp)
        out.append(type(name, (base,), body))
    return out


def _exp_fwd(ctx, x):
    out = x.exp()
    ctx.save_for_backward(out)
    return out


def _exp_bwd(ctx, g):
    (out,) = ctx.saved_tensors
    return g * out


def _exp_jvp(ctx, t):
    (out,) = ctx.saved_tensors
    return t * out


MyExp, TorchExp = _pair("MyExp", _exp_fwd, _exp_bwd, _exp_jvp)


def _scale_fwd(ctx, x, k, y):
    ctx.k = k
    ctx.save_for_backward(x, y)
    ctx.needs = ctx.needs_input_grad
    return x * y * k


def _scale_bwd(ctx, g):
    x, y = ctx.saved_tensors
    return (g * y * ctx.k if ctx.needs_input_grad[0] else None, None,
            g * x * ctx.k if ctx.needs_input_grad[2] else None)


Scale, TorchScale = _pair("Scale", _scale_fwd, _scale_bwd)


def _sort_fwd(ctx, x):
    idx = (pg if isinstance(x, pg.Tensor) else torch).argsort(x)
    ctx.mark_non_differentiable(idx)
    ctx.save_for_backward(idx)
    return x[idx], idx


def _sort_bwd(ctx, g_values, g_idx):
    (idx,) = ctx.saved_tensors
    ctx.g_idx = g_idx
    grad = g_values * 0.0
    grad[idx] = g_values
    return grad


Sort, TorchSort = _pair("Sort", _sort_fwd, _sort_bwd)


def _two_fwd(ctx, x):
    ctx.save_for_backward(x)
    return x * 2, x * x


def _two_bwd(ctx, ga, gb):
    (x,) = ctx.saved_tensors
    ctx.got_none = gb is None
    ga = ga if ga is not None else x * 0
    gb = gb if gb is not None else x * 0
    return ga * 2 + gb * 2 * x


Two, TorchTwo = _pair("Two", _two_fwd, _two_bwd)
OnceExp, TorchOnceExp = _pair("OnceExp", _exp_fwd, _exp_bwd, decorate=once_differentiable)


def _t(lib, data, requires_grad=False):
    if lib is torch:
        return torch.tensor(data, dtype=torch.float64, requires_grad=requires_grad)
    return pg.tensor(data, dtype=pg.float64, requires_grad=requires_grad)


def _np(t):
    return t.detach().to("numpy").numpy() if isinstance(t, pg.Tensor) else t.detach().numpy()


def test_exp_with_saved_output(backend):
    data = [0.1, -0.5, 1.2]
    grads, outs = [], []
    for lib, fn in ((pg, MyExp), (torch, TorchExp)):
        x = _t(lib, data, requires_grad=True)
        y = fn.apply(x)
        (y * y).sum().backward()
        grads.append(_np(x.grad))
        outs.append(y)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    y = outs[0]
    assert repr(y.grad_fn).startswith("<MyExpBackward object")
    assert "grad_fn=<MyExpBackward>" in repr(y)
    assert type(y.grad_fn.next_functions[0][0]).__name__ == "AccumulateGrad"
    assert not y.is_leaf and y.requires_grad


def test_second_backward_raises_retain_graph_error(backend):
    x = pg.tensor([0.3], requires_grad=True)
    y = MyExp.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.grad_fn.saved_tensors  # noqa: B018  (the access itself raises)
    z = MyExp.apply(x)
    z.sum().backward(retain_graph=True)
    z.sum().backward()              # retained: a second pass works and accumulates
    assert x.grad.item() == pytest.approx(3 * np.exp(0.3))


def test_create_graph_through_backward_written_in_ops(backend):
    data = [0.2, 0.9]
    results = []
    for lib, fn in ((pg, MyExp), (torch, TorchExp)):
        x = _t(lib, data, requires_grad=True)
        (g,) = lib.autograd.grad((fn.apply(x) * x).sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x)
        results.append((_np(g), _np(g2)))
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_non_tensor_args_needs_input_grad_and_next_functions(backend):
    xd, yd = [1.0, 2.0], [3.0, -1.0]
    for need_y in (False, True):
        results = []
        for lib, fn in ((pg, Scale), (torch, TorchScale)):
            x, y = _t(lib, xd, requires_grad=True), _t(lib, yd, requires_grad=need_y)
            out = fn.apply(x, 2.5, y)
            out.sum().backward()
            nf = out.grad_fn.next_functions
            results.append((_np(x.grad), None if y.grad is None else _np(y.grad), len(nf),
                            nf[1][0] is None))
        (gx, gy, n, none), (rgx, rgy, rn, rnone) = results
        np.testing.assert_allclose(gx, rgx)
        assert (gy is None) == (rgy is None) and (n, none) == (rn, rnone) == (2, not need_y)
        if gy is not None:
            np.testing.assert_allclose(gy, rgy)


def test_non_differentiable_output(backend):
    data, w = [3.0, 1.0, 2.0], [1.0, 2.0, 3.0]
    results = []
    for lib, fn in ((pg, Sort), (torch, TorchSort)):
        x = _t(lib, data, requires_grad=True)
        values, idx = fn.apply(x)
        assert values.requires_grad and not idx.requires_grad and idx.grad_fn is None
        (values * _t(lib, w)).sum().backward()
        results.append((_np(values), _np(x.grad), values.grad_fn.ctx.g_idx
                        if lib is pg else None))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])
    assert results[0][2].tolist() == [0, 0, 0]      # materialized zeros for the index output


@pytest.mark.parametrize("use", ["both", "first", "second"])
def test_two_differentiable_outputs(backend, use):
    data = [1.0, 3.0]
    grads = []
    for lib, fn in ((pg, Two), (torch, TorchTwo)):
        x = _t(lib, data, requires_grad=True)
        a, b = fn.apply(x)
        loss = {"both": a.sum() + (b * b).sum(), "first": a.sum(), "second": b.sum()}[use]
        loss.backward()
        grads.append(_np(x.grad))
    np.testing.assert_allclose(grads[0], grads[1])


def test_set_materialize_grads_false_passes_none(backend):
    class NoMat(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x * 2, x * x

        backward = staticmethod(_two_bwd)

    x = pg.tensor([1.0, 3.0], requires_grad=True)
    a, b = NoMat.apply(x)
    a.sum().backward()
    assert a.grad_fn.parents[0].ctx.got_none is True and x.grad.tolist() == [2.0, 2.0]


def test_once_differentiable(backend):
    x = pg.tensor([0.1, 0.4], dtype=pg.float64, requires_grad=True)
    y = OnceExp.apply(x)
    (g,) = pg.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(_np(g), np.exp([0.1, 0.4]), rtol=1e-12)
    with pytest.raises(RuntimeError, match="differentiate twice a function that was marked "
                                           "with @once_differentiable"):
        pg.autograd.grad(g.sum(), x)
    z = pg.tensor([0.1, 0.4], dtype=pg.float64, requires_grad=True)
    OnceExp.apply(z).sum().backward()        # plain backward is unaffected
    np.testing.assert_allclose(_np(z.grad), np.exp([0.1, 0.4]), rtol=1e-12)


def test_forward_mode_uses_jvp(backend):
    with fw.dual_level():
        d = fw.make_dual(pg.tensor([0.0, 1.0], dtype=pg.float64),
                         pg.tensor([1.0, 2.0], dtype=pg.float64))
        t = fw.unpack_dual(MyExp.apply(d)).tangent
        np.testing.assert_allclose(_np(t), [1.0, 2 * np.e], rtol=1e-12)
        with pytest.raises(NotImplementedError, match="implement the jvp"):
            Scale.apply(d, 2.0, d)


def test_no_graph_without_requires_grad_or_in_no_grad(backend):
    x = pg.tensor([0.5], requires_grad=True)
    assert MyExp.apply(pg.tensor([0.5])).grad_fn is None
    with pg.no_grad():
        assert MyExp.apply(x).grad_fn is None


def _bad_count(ctx, g):
    return g, g


def _bad_shape(ctx, g):
    return g[:1]


def _bad_type(ctx, g):
    return 1.0


BAD = [
    (_bad_count, RuntimeError,
     "function BadBackward returned an incorrect number of gradients (expected 1, got 2)"),
    (_bad_shape, RuntimeError, "Function BadBackward returned an invalid gradient at index 0 "
                               "- got [1] but expected shape compatible with [2]"),
    (_bad_type, TypeError, "returned a float as the gradient at index 0"),
]


@pytest.mark.parametrize("bwd,exc,msg", BAD, ids=["count", "shape", "type"])
def test_bad_backward_errors_leave_grad_unchanged(backend, bwd, exc, msg):
    Bad = type("Bad", (Function,), {"forward": staticmethod(lambda ctx, x: x * 2),
                                    "backward": staticmethod(bwd)})
    x = pg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(exc) as err:
        Bad.apply(x).sum().backward()
    assert msg in str(err.value)
    assert x.grad is None
    if exc is RuntimeError:          # torch says the same, word for word
        TBad = type("Bad", (torch.autograd.Function,), {
            "forward": staticmethod(lambda ctx, x: x * 2), "backward": staticmethod(bwd)})
        with pytest.raises(exc) as ref:
            TBad.apply(torch.ones(2, requires_grad=True)).sum().backward()
        assert str(ref.value) == msg


def test_broadcast_gradient_is_summed_back(backend):
    class Bcast(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g.expand(3, 2)      # a broadcast of the right gradient, as torch allows

    x = pg.tensor([1.0, 2.0], requires_grad=True)
    Bcast.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_misuse_errors():
    with pytest.raises(RuntimeError, match=r"MyExp.apply\(...\)"):
        MyExp()
    with pytest.raises(TypeError, match="save_for_backward can only save"):
        type("S", (Function,), {"forward": staticmethod(
            lambda ctx, x: ctx.save_for_backward(3.0) or x)}).apply(pg.ones(1))
