"""autograd.functional (YT-14, YT-15) against torch.autograd.functional on the same inputs.

Every case runs the same Python function on polygrad tensors and on torch tensors (it uses
only methods both have) and compares structure (tensor / tuple / tuple of tuples, shapes)
and values, in float64, on the numpy and torch backends.
"""

import math
import re

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import polygrad as pg
from polygrad.autograd import functional as F

RNG = np.random.default_rng(0)


def exp_adder(x, y):
    return 2 * x.exp() + 3 * y


def do_some_doubling(x):
    y = x * 2
    while y.detach().norm() < 1000:
        y = y * 2
    return y


def exp_sin_sum(x):
    return (x.exp() * x.sin()).sum()


def pow_adder_reducer(x, y):
    return (2 * x.pow(2) + 3 * y.pow(2)).sum()


def cubic_2d(x):
    return (x ** 3).sum() + (x[0] * x[1]).sum()


def two_outputs(x, y):
    return x * y, x.sin()


def tanh_matmul(x, w):
    return (x @ w).tanh()


# name, function, input shapes (a list means a tuple of inputs), scalar output
CASES = [
    ("exp_adder", exp_adder, [(3,), (3,)], False),
    ("doubling", do_some_doubling, (3,), False),
    ("exp_sin_sum", exp_sin_sum, (4,), True),
    ("pow_adder_reducer", pow_adder_reducer, [(2,), (2,)], True),
    ("cubic_2d", cubic_2d, (2, 3), True),
    ("two_outputs", two_outputs, [(3,), (3,)], False),
    ("tanh_matmul", tanh_matmul, [(2, 3), (3, 2)], False),
]
APIS = ["jacobian", "vjp", "jvp", "hessian", "hvp", "vhp"]


def _inputs(shapes):
    if isinstance(shapes, list):
        return tuple(RNG.uniform(0.2, 1.0, s) for s in shapes)
    return RNG.uniform(0.2, 1.0, shapes)


def _to(lib, data, requires_grad=False):
    if isinstance(data, tuple):
        return tuple(_to(lib, d, requires_grad) for d in data)
    if lib == "torch":
        return torch.tensor(data, dtype=torch.float64, requires_grad=requires_grad)
    return pg.tensor(data, dtype=pg.float64, requires_grad=requires_grad)


def _like(x):
    """A direction shaped like the inputs (for jvp, hvp, vhp) or the outputs (vjp)."""
    return tuple(RNG.standard_normal(np.shape(a)) for a in x) if isinstance(x, tuple) \
        else RNG.standard_normal(np.shape(x))


def assert_same(ours, ref, rtol=1e-9, atol=1e-12):
    """Same nesting, shapes and values (polygrad result vs torch result)."""
    if isinstance(ref, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(ref), (type(ours), ours)
        for a, b in zip(ours, ref):
            assert_same(a, b, rtol, atol)
        return
    assert isinstance(ours, pg.Tensor), type(ours)
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(ours.detach().to("numpy").numpy(), ref.detach().numpy(),
                               rtol=rtol, atol=atol)


def _run(api, fn, data, v=None, **kw):
    args = [fn, _to("pg", data)] + ([] if v is None else [_to("pg", v)])
    targs = [fn, _to("torch", data)] + ([] if v is None else [_to("torch", v)])
    return getattr(F, api)(*args, **kw), getattr(TF, api)(*targs, **kw)


def _v_for(api, fn, data):
    if api in ("jvp", "hvp", "vhp"):
        return _like(data)
    if api == "vjp":
        out = fn(*_to("torch", data)) if isinstance(data, tuple) else fn(_to("torch", data))
        return tuple(RNG.standard_normal(tuple(o.shape)) for o in out) \
            if isinstance(out, tuple) else RNG.standard_normal(tuple(out.shape))
    return None


# hessian, hvp and vhp take scalar functions only
MATCH = [(api, name, fn, shapes) for api in APIS for name, fn, shapes, scalar in CASES
         if scalar or api not in ("hessian", "hvp", "vhp")]


@pytest.mark.parametrize("api,name,fn,shapes", MATCH, ids=[f"{m[0]}-{m[1]}" for m in MATCH])
def test_matches_torch(backend, api, name, fn, shapes):
    data = _inputs(shapes)
    ours, ref = _run(api, fn, data, _v_for(api, fn, data))
    assert_same(ours, ref)


def test_yt14_closed_forms(backend):
    x, y = pg.rand(1, dtype=pg.float64), pg.rand(1, dtype=pg.float64)
    jx, jy = F.jacobian(exp_adder, (x, y))
    assert jx.shape == (1, 1) and jy.shape == (1, 1)
    assert math.isclose(jx.item(), 2 * math.exp(x.item()), rel_tol=1e-12)
    assert jy.item() == 3.0
    x, y = pg.rand(3, dtype=pg.float64), pg.rand(3, dtype=pg.float64)
    jx, jy = F.jacobian(exp_adder, (x, y))
    np.testing.assert_allclose(jx.numpy(), np.diag(2 * np.exp(x.numpy())), rtol=1e-12)
    np.testing.assert_array_equal(jy.numpy(), np.diag([3.0, 3.0, 3.0]))


def test_yt15_closed_forms_and_hvp_equals_vhp(backend):
    data = RNG.uniform(0.2, 1.0, 5)
    x, v = _to("pg", data), _to("pg", RNG.standard_normal(5))
    h = F.hessian(exp_sin_sum, x).numpy()
    np.testing.assert_allclose(h, np.diag(2 * np.exp(data) * np.cos(data)), rtol=1e-12)
    out_h, hv = F.hvp(exp_sin_sum, x, v)
    out_v, vh = F.vhp(exp_sin_sum, x, v)
    np.testing.assert_allclose(hv.numpy(), vh.numpy(), rtol=1e-12)
    np.testing.assert_allclose(hv.numpy(), h @ v.numpy(), rtol=1e-12)
    assert out_h.item() == out_v.item() and not out_h.requires_grad


@pytest.mark.parametrize("name,fn,shapes,scalar", CASES, ids=[c[0] for c in CASES])
def test_jacobian_strategies_agree(backend, name, fn, shapes, scalar):
    x = _to("pg", _inputs(shapes))
    ref = F.jacobian(fn, x)
    assert_same(F.jacobian(fn, x, vectorize=True), _torch_like(ref))
    assert_same(F.jacobian(fn, x, strategy="forward-mode"), _torch_like(ref))
    assert_same(F.jacobian(fn, x, vectorize=True, strategy="forward-mode"), _torch_like(ref))
    if scalar:
        h = F.hessian(fn, x)
        assert_same(F.hessian(fn, x, outer_jacobian_strategy="forward-mode"), _torch_like(h))
        assert_same(F.hessian(fn, x, vectorize=True), _torch_like(h))


def _torch_like(res):
    if isinstance(res, tuple):
        return tuple(_torch_like(r) for r in res)
    return torch.from_numpy(res.to("numpy").numpy().copy())


@pytest.mark.parametrize("api", APIS)
def test_create_graph_is_differentiable(backend, api):
    """With create_graph=True the result has a graph: differentiating its sum again
    matches torch (a third derivative for hessian/hvp/vhp)."""
    data, v = RNG.uniform(0.2, 1.0, 3), RNG.standard_normal(3)
    fn = exp_sin_sum if api in ("hessian", "hvp", "vhp") else (lambda x: x.exp() * x.sin())
    results = []
    for lib, mod in (("pg", F), ("torch", TF)):
        x, vv = _to(lib, data, requires_grad=True), _to(lib, v)
        args = (fn, x) if api in ("jacobian", "hessian") else (fn, x, vv)
        res = getattr(mod, api)(*args, create_graph=True)
        res = res if api in ("jacobian", "hessian") else res[1]
        assert res.requires_grad
        (g,) = (pg if lib == "pg" else torch).autograd.grad(res.sum(), x)
        results.append(g)
    assert_same(results[0], results[1].detach())


@pytest.mark.parametrize("api", ["jvp", "vjp", "hvp", "vhp"])
def test_create_graph_keeps_the_vector_in_the_graph(backend, api):
    """With create_graph=True the product is differentiable in the vector too (torch's
    double-backward pattern): gradients with respect to x and v match torch's."""
    data, v = RNG.uniform(0.2, 1.0, 3), RNG.standard_normal(3)
    fn = exp_sin_sum if api in ("hvp", "vhp") else (lambda x: x.exp() * x.sin())
    results = []
    for lib, mod, ns in (("pg", F, pg), ("torch", TF, torch)):
        x, vv = _to(lib, data, requires_grad=True), _to(lib, v, requires_grad=True)
        out, prod = getattr(mod, api)(fn, x, vv, create_graph=True)
        assert prod.requires_grad and out.requires_grad
        results.append(tuple(g.detach() for g in ns.autograd.grad((prod * prod).sum(), (x, vv))))
    assert_same(results[0], results[1])


def test_results_detached_without_create_graph(backend):
    x = pg.rand(3, dtype=pg.float64, requires_grad=True)
    out, g = F.vjp(lambda t: t * t, x, pg.ones(3, dtype=pg.float64))
    assert not out.requires_grad and not g.requires_grad
    assert not F.jacobian(lambda t: t.exp(), x).requires_grad
    assert x.grad is None


def _indep(x, y):
    return x * 2


def _linear_sum(x, y):
    return (x * x).sum() + y.sum()


def _constant(x):
    return pg.ones(2) if isinstance(x, pg.Tensor) else torch.ones(2)


# api, function, input shapes, v shapes; the error must be torch's, word for word
STRICT = [
    ("vjp", _indep, [(2,), (2,)], (2,)),
    ("jacobian", _indep, [(2,), (2,)], None),
    ("jvp", _indep, [(2,), (2,)], [(2,), (2,)]),
    ("jvp", _constant, (2,), (2,)),
    ("vhp", _linear_sum, [(2,), (2,)], [(2,), (2,)]),
    ("hvp", _linear_sum, [(2,), (2,)], [(2,), (2,)]),
    ("hessian", _linear_sum, [(2,), (2,)], None),
]


@pytest.mark.parametrize("api,fn,shapes,vshapes", STRICT,
                         ids=[f"{s[0]}-{s[1].__name__}" for s in STRICT])
def test_strict_errors_like_torch(backend, api, fn, shapes, vshapes):
    data = _inputs(shapes)
    v = None if vshapes is None else _inputs(vshapes)
    extra = [] if v is None else [v]
    with pytest.raises(RuntimeError) as ref:
        getattr(TF, api)(fn, *(_to("torch", a) for a in [data] + extra), strict=True)
    with pytest.raises(RuntimeError) as ours:
        getattr(F, api)(fn, *(_to("pg", a) for a in [data] + extra), strict=True)
    assert str(ours.value) == str(ref.value)
    # without strict, the independent part is zeros, as torch gives
    ours_ok, ref_ok = _run(api, fn, data, v)
    assert_same(ours_ok, ref_ok)


# api, arguments as a function of (pg-or-torch tensor maker); errors must match torch's
BAD = [
    ("jacobian", lambda T: (exp_sin_sum, [T(np.ones(2))]), TypeError),
    ("vjp", lambda T: (exp_sin_sum, (T(np.ones(2)), 3.0)), TypeError),
    ("vjp", lambda T: (lambda x: x * 2, T(np.ones(2))), RuntimeError),
    ("vjp", lambda T: (lambda x: x * 2, T(np.ones(2)), T(np.ones(3))), RuntimeError),
    ("jvp", lambda T: (lambda x: x * 2, T(np.ones(2)), (T(np.ones(2)),) * 2), RuntimeError),
    ("jvp", lambda T: (lambda x, y: x * y, (T(np.ones(2)),) * 2, (T(np.ones(3)),) * 2),
     RuntimeError),
    ("hvp", lambda T: (lambda x: x * 2, T(np.ones(2)), T(np.ones(2))), RuntimeError),
    ("vhp", lambda T: (lambda x: (x * 2, x.sum()), T(np.ones(2)), T(np.ones(2))),
     RuntimeError),
    ("hessian", lambda T: (lambda x: x * 2, T(np.ones(2))), RuntimeError),
    ("hvp", lambda T: (exp_sin_sum, T(np.ones(2))), RuntimeError),
]


@pytest.mark.parametrize("api,make,exc", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments_like_torch(backend, api, make, exc):
    with pytest.raises(exc) as ref:
        getattr(TF, api)(*make(lambda a: _to("torch", a)))
    with pytest.raises(exc) as ours:
        getattr(F, api)(*make(lambda a: _to("pg", a)))
    assert str(ours.value) == _torch_sizes_as_tuples(str(ref.value))


def _torch_sizes_as_tuples(msg):
    """torch names shapes torch.Size([2]); polygrad's shapes are tuples, (2,)."""
    return re.sub(r"torch\.Size\(\[([0-9, ]*)\]\)",
                  lambda m: str(tuple(int(d) for d in m.group(1).split(",") if d.strip())), msg)


def test_v_defaults_to_one_for_single_element_input(backend):
    x = pg.tensor([0.5], dtype=pg.float64)
    tx = torch.tensor([0.5], dtype=torch.float64)
    assert_same(F.jvp(lambda t: t.exp(), x), TF.jvp(lambda t: t.exp(), tx))
    assert_same(F.hvp(lambda t: (t ** 3).sum(), x), TF.hvp(lambda t: (t ** 3).sum(), tx))


def test_both_module_paths():
    assert pg.functional is pg.autograd.functional is F
    assert pg.functional.hessian is F.hessian


# vectorize=True: one backward pass with a batch axis where every rule can be batched
# (the table of test_forward_ad: elementwise, reductions, shapes, matmul ...); the row
# loop elsewhere. Same numbers either way.
from test_forward_ad import OPS  # noqa: E402

LOOPED = {"indexing", "cat_stack"}      # index-array VJPs (scatter) have no batching rule
MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((2, 2, 3), (3, 2)), ((3,), (2, 3, 4)), ((2, 3), (2, 3, 2))]


@pytest.mark.parametrize("name,fn,sx,sy", OPS + [
    (f"matmul{a}{b}", lambda lib, x, y: x @ y, a, b) for a, b in MATMUL_SHAPES],
    ids=[o[0] for o in OPS] + [f"matmul{a}{b}" for a, b in MATMUL_SHAPES])
def test_vectorize_batches_and_agrees(backend, name, fn, sx, sy):
    x = pg.tensor(RNG.uniform(0.2, 1.0, sx), dtype=pg.float64, requires_grad=True)
    y = pg.tensor(RNG.uniform(0.2, 1.0, sy), dtype=pg.float64, requires_grad=True)
    loop = F.jacobian(lambda a, b: fn(pg, a, b), (x, y))
    vec = F.jacobian(lambda a, b: fn(pg, a, b), (x, y), vectorize=True)
    assert_same(vec, _torch_like(loop))
    batched = F._jac_batched(fn(pg, x, y), (x, y))
    assert (batched is None) == (name in LOOPED)
    ref = TF.jacobian(lambda a, b: fn(torch, a, b),
                      (_to("torch", x.detach().to("numpy").numpy()),
                       _to("torch", y.detach().to("numpy").numpy())), vectorize=True)
    assert_same(vec, ref)


def test_vectorize_falls_back_for_custom_nodes_and_hooks(backend):
    class Cube(pg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

    x = pg.tensor([0.5, 2.0], dtype=pg.float64, requires_grad=True)
    assert F._jac_batched(Cube.apply(x), (x,)) is None
    expected = np.diag(3 * np.array([0.5, 2.0]) ** 2)
    np.testing.assert_allclose(F.jacobian(Cube.apply, x, vectorize=True).numpy(), expected)
    seen = []

    def hooked(t):
        y = t * t
        y.register_hook(lambda g: seen.append(tuple(g.shape)))
        return y.exp()

    np.testing.assert_allclose(F.jacobian(hooked, x, vectorize=True).numpy(),
                               np.diag(2 * x.detach().numpy() * np.exp(x.detach().numpy()
                                                                       ** 2)))
    assert seen == [(2,), (2,)]          # the hook saw one row at a time


# combinations torch refuses too (its messages name torch; ours name polygrad)
UNSUPPORTED = [
    (dict(strict=True, vectorize=True), "`strict=True` and `vectorized=True`"),
    (dict(strategy="forward-mode", strict=True), '`strategy="forward-mode"`'),
    (dict(strategy="forward-mode", create_graph=True), "`create_graph=True`"),
]


@pytest.mark.parametrize("kw,words", UNSUPPORTED, ids=["strict-vec", "fwd-strict", "fwd-cg"])
def test_unsupported_combinations_raise_like_torch(kw, words):
    with pytest.raises(RuntimeError, match=re.escape(words)):
        TF.jacobian(exp_adder, (torch.ones(2), torch.ones(2)), **kw)
    with pytest.raises(RuntimeError, match=re.escape(words)):
        F.jacobian(exp_adder, (pg.ones(2), pg.ones(2)), **kw)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="forward-mode"):
        F.jacobian(exp_adder, (pg.ones(2), pg.ones(2)), strategy="sideways")
