"""polygrad.func against torch.func: every transform, composed transforms, pytrees, vmap's
in_dims/out_dims, functional_call, and the outer graph (a transform of inputs that require
grad stays differentiable), on the numpy and torch backends.

Each case is one function ``case(lib, F, *inputs)`` that uses only what both libraries have
(``lib`` is ``polygrad`` or ``torch``, ``F`` its ``func`` module); it runs on both and the
results must agree in structure, shape, dtype, requires_grad and value. Inputs are random
(including negative values), all zeros, or 0-d.
"""

import numpy as np
import pytest
import torch
import torch.func as TF

import polygrad as pg
import polygrad.func as PF

RNG = np.random.default_rng(7)
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")


def f_scalar(x, y):
    return ((y @ x).sin() * x.sum()).sum() + (x * x).sum()


def f_vec(x, y):
    return (y @ x).exp() * x[:2]


def f_two(x, y):
    return x.tanh() * y.sum(), (y * y).sum(0)


def _outer(lib, F, x, y):
    """grad of inputs that require grad: the result has a graph back to them."""
    xr = x.clone().requires_grad_()
    g = F.grad(lambda a: (a.sin() ** 2 * y.sum()).sum())(xr)
    return g, g.requires_grad, lib.autograd.grad(g.sum(), xr)[0]


def _closure(lib, F, x, y):
    """An inner transform whose function closes over the outer transform's input."""
    return F.grad(lambda a: F.grad(lambda b: (a * b.sin()).sum())(x).pow(2).sum())(x)


def _aux(lib, F, x, y):
    g, aux = F.grad(lambda a: ((a ** 2).sum(), {"m": a.mean()}), has_aux=True)(x)
    gv = F.grad_and_value(lambda a: ((a ** 2).sum(), a.max()), has_aux=True)(x)
    return g, aux, gv


def _vjp(lib, F, x, y):
    out, fn = F.vjp(f_two, x, y)
    ct = (lib.ones_like(out[0]), lib.ones_like(out[1]) * 2)
    out2, fn2, aux = F.vjp(lambda a: (a.exp(), a.sum()), x, has_aux=True)
    return out, fn(ct), out2, fn2(lib.ones_like(x)), aux


def _pytree(lib, F, x, y):
    params = {"w": y, "b": [x, x * 2]}
    return F.grad(lambda p: (p["w"] @ p["b"][0]).sum() * p["b"][1].sin().sum())(params)


def _linear(lib, F, x, y):
    lin = lib.nn.Linear(3, 2).double()
    params = {"weight": y, "bias": y[:, 0]}
    out = F.functional_call(lin, params, (x,))
    g = F.grad(lambda p, v: F.functional_call(lin, p, (v,)).pow(2).sum())(params, x)
    jac = F.jacrev(lambda p: F.functional_call(lin, p, x))(params)
    return out, g, jac


def _functionalize(lib, F, x, y):
    """Same results and the same input mutation as torch's functionalize."""
    def f(a):
        b = a.clone()
        b.mul_(2)
        a.add_(1)
        return b.reshape(-1) * y.sum()
    a = x.clone()
    out = F.functionalize(f, remove="mutations_and_views")(a)
    return out, a, F.grad(lambda t: F.functionalize(f)(t.clone()).sum())(x)


def _compositions(lib, F, x, y):
    """Deeper compositions, over a function that closes over a tensor requiring grad."""
    w = y[0].clone().requires_grad_()

    def f(a):
        return (a.sin() * w).sum() * (a * a).sum()

    h = F.hessian(f)(x)
    return (F.jvp(F.jacrev(f), (x,), (x.cos(),)), F.jacfwd(F.grad(f))(x), h,
            lib.autograd.grad(h.sum(), w)[0], F.grad(f)(x).requires_grad,
            F.vmap(lambda t: F.jvp(f, (x,), (t,))[1])(lib.eye(3, dtype=lib.float64)),
            F.jacrev(lambda a: F.vmap(lambda r: (r * a).sum())(a.reshape(3, 1) * a))(x),
            F.vjp(lambda a: F.jvp(lambda b: b.sin() * w, (a,), (a,))[1], x)[1](y[1]),
            F.jacfwd(F.jacfwd(F.jacrev(lambda a: (a ** 4).sum())))(x))


def _nested_jvp(lib, F, x, y):
    """Forward over forward over forward: nested levels, as torch.func.jvp nests them."""
    def f(a):
        return a.sin() * a.exp() * y[0]

    def inner(a):
        return F.jvp(f, (a,), (a.cos(),))[1]

    return (F.jvp(inner, (x,), (y[1],)),
            F.jvp(lambda a: F.jvp(inner, (a,), (a,))[1], (x,), (x,)))


def _vmap(lib, F, x, y):
    return (F.vmap(lambda r, a: (r * a).sum(), in_dims=(0, None))(y, x),
            F.vmap(lambda c: c.cumsum(0), in_dims=1, out_dims=1)(y),
            F.vmap(lambda r: (r, r.sum()), out_dims=(1, 0))(y),
            F.vmap(F.vmap(lambda a, b: a * b))(y, y),
            F.vmap(lambda d: d["a"] * d["b"], in_dims=({"a": 0, "b": None},))(
                {"a": y, "b": x}),
            F.vmap(F.grad(f_scalar), in_dims=(None, 0))(x, y.unsqueeze(1).expand(2, 2, 3)),
            F.vmap(lambda r: r.sum())(y[:0]))


# name, case(lib, F, x, y); x has shape (3,), y (2, 3)
CASES = [
    ("grad", lambda lib, F, x, y: F.grad(f_scalar)(x, y)),
    ("grad_argnums", lambda lib, F, x, y: F.grad(f_scalar, argnums=(0, 1))(x, y)),
    ("grad_argnum_neg", lambda lib, F, x, y: F.grad(f_scalar, argnums=-1)(x, y)),
    ("grad_and_value", lambda lib, F, x, y: F.grad_and_value(f_scalar, argnums=1)(x, y)),
    ("has_aux", _aux),
    ("grad_grad", lambda lib, F, x, y: F.grad(lambda a: F.grad(f_scalar)(a, y).sum())(x)),
    ("closure", _closure),
    ("outer_graph", _outer),
    ("no_outer_graph", lambda lib, F, x, y: F.grad(f_scalar)(x, y).requires_grad),
    ("unused_input", lambda lib, F, x, y: F.grad(lambda a, b: a.sum(), argnums=1)(x, y)),
    ("vjp", _vjp),
    ("jvp", lambda lib, F, x, y: F.jvp(f_two, (x, y), (x.cos(), y * 2))),
    ("jvp_aux", lambda lib, F, x, y: F.jvp(lambda a: (a.sin(), a.sum()), (x,), (y[0],),
                                           has_aux=True)),
    ("jacrev", lambda lib, F, x, y: F.jacrev(f_vec, argnums=(0, 1))(x, y)),
    ("jacrev_tuple_out", lambda lib, F, x, y: F.jacrev(f_two)(x, y)),
    ("jacfwd", lambda lib, F, x, y: F.jacfwd(f_vec, argnums=(0, 1))(x, y)),
    ("jacfwd_tuple_out", lambda lib, F, x, y: F.jacfwd(f_two, argnums=1)(x, y)),
    ("jac_aux", lambda lib, F, x, y: (F.jacrev(lambda a: (a.exp(), a.sum()), has_aux=True)(x),
                                      F.jacfwd(lambda a: (a.exp(), a.sum()), has_aux=True)(x))),
    ("hessian", lambda lib, F, x, y: F.hessian(f_scalar)(x, y)),
    ("hessian_argnums", lambda lib, F, x, y: F.hessian(f_scalar, argnums=(0, 1))(x, y)),
    ("jacrev_jacrev", lambda lib, F, x, y: F.jacrev(F.jacrev(f_vec))(x, y)),
    ("jacfwd_jacfwd", lambda lib, F, x, y: F.jacfwd(F.jacfwd(f_vec))(x, y)),
    ("jacrev_jacfwd", lambda lib, F, x, y: F.jacrev(F.jacfwd(f_vec))(x, y)),
    ("jvp_of_grad", lambda lib, F, x, y: F.jvp(F.grad(lambda a: f_scalar(a, y)), (x,),
                                               (x.cos(),))),
    ("grad_of_jvp", lambda lib, F, x, y: F.grad(
        lambda a: F.jvp(lambda b: (b.sin() * y).sum(), (a,), (a,))[1])(x)),
    ("jacfwd_of_jvp", lambda lib, F, x, y: F.jacfwd(
        lambda a: F.jvp(lambda b: b.exp() * y, (a,), (a.cos(),))[1])(x)),
    ("pytree", _pytree),
    ("functional_call", _linear),
    ("vmap", _vmap),
    ("functionalize", _functionalize),
    ("compositions", _compositions),
    ("nested_jvp", _nested_jvp),
]


def _data(kind):
    if kind == "zeros":
        return np.zeros(3), np.zeros((2, 3))
    return RNG.uniform(-1.5, 1.5, 3), RNG.uniform(-1.5, 1.5, (2, 3))


def _compare(a, b, where="result"):
    if isinstance(b, torch.Tensor):
        assert isinstance(a, pg.Tensor), f"{where}: {type(a).__name__} instead of a Tensor"
        assert tuple(a.shape) == tuple(b.shape), f"{where}: shape {a.shape} vs {b.shape}"
        assert a.dtype.name == str(b.dtype).removeprefix("torch."), f"{where}: dtype"
        assert a.requires_grad == b.requires_grad, f"{where}: requires_grad"
        np.testing.assert_allclose(a.detach().to("numpy").numpy(), b.detach().numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=where)
    elif isinstance(b, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (p, q) in enumerate(zip(a, b)):
            _compare(p, q, f"{where}[{i}]")
    elif isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for k in b:
            _compare(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.mark.parametrize("kind", ["random", "zeros"])
@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_func(backend, name, case, kind):
    xd, yd = _data(kind)
    ours = case(pg, PF, pg.tensor(xd, dtype=pg.float64), pg.tensor(yd, dtype=pg.float64))
    ref = case(torch, TF, torch.tensor(xd), torch.tensor(yd))
    _compare(ours, ref)


ZERO_D = [
    ("grad", lambda F, s: F.grad(lambda a: a.sin() * a)(s)),
    ("jacrev", lambda F, s: F.jacrev(lambda a: a.exp())(s)),
    ("jacfwd", lambda F, s: F.jacfwd(lambda a: a.exp())(s)),
    ("hessian", lambda F, s: F.hessian(lambda a: a ** 3)(s)),
    ("jvp", lambda F, s: F.jvp(lambda a: a.cos(), (s,), (s,))),
    ("vmap_of_0d_rows", lambda F, s: F.vmap(lambda r: r * 2)(s.reshape(1))),
]


@pytest.mark.parametrize("name,case", ZERO_D, ids=[c[0] for c in ZERO_D])
def test_zero_d_matches_torch(backend, name, case):
    _compare(case(PF, pg.tensor(0.7, dtype=pg.float64)),
             case(TF, torch.tensor(0.7, dtype=torch.float64)))


def test_torch_func_namespace():
    assert pg.func is PF
    assert set(PF.__all__) <= set(dir(TF))


def _err_cases(lib, F):
    one = lib.ones(2, dtype=lib.float64)
    lin = lib.nn.Linear(2, 1)
    return [
        lambda: F.grad(lambda a: a * 2)(one),
        lambda: F.grad(lambda a: 3.0)(one),
        lambda: F.grad(lambda a: a.sum(), has_aux=True)(one),
        lambda: F.vmap(lambda a, b: a + b)(one, lib.ones(3)),
        lambda: F.vmap(lambda a: a, in_dims=None)(one),
        lambda: F.vmap(lambda a: a, in_dims=2)(one),
        lambda: F.vmap(lambda a: 3)(one),
        lambda: F.vmap(lambda a, b: a, in_dims=(0,))(one, one),
        lambda: F.jvp(lambda a: a, one, one),
        lambda: F.jvp(lambda a: a, (one,), (lib.ones(3),)),
        lambda: F.functional_call(lin, {"weight": lib.ones(1, 2)}, (lib.ones(1, 2),),
                                  strict=True),
        lambda: F.stack_module_state([]),
        lambda: F.functionalize(lambda a: a, remove="views"),
        lambda: F.stack_module_state([lin, lib.nn.Linear(2, 1).eval()]),
    ]


@pytest.mark.parametrize("i", range(len(_err_cases(pg, PF))))
def test_errors_as_torch(i):
    """The same bad call raises the same exception type (and, where polygrad copies torch's
    wording, the same first words) in both, and leaves the module's parameters as they were."""
    caught = []
    for lib, F in ((pg, PF), (torch, TF)):
        with pytest.raises(Exception) as info:
            _err_cases(lib, F)[i]()
        caught.append(info.value)
    ours, ref = caught
    assert type(ours).__name__ == type(ref).__name__, (ours, ref)
    assert str(ours).split(":")[0][:12] == str(ref).split(":")[0][:12], (str(ours), str(ref))


def test_functional_call_restores_and_ties():
    for lib, F in ((pg, PF), (torch, TF)):
        lin = lib.nn.Linear(2, 2)
        lin.other = lin.weight                      # tied: one tensor, two names
        w = lin.weight
        out = F.functional_call(lin, {"weight": lib.zeros(2, 2)}, (lib.ones(1, 2),))
        assert lin.weight is w and lin.other is w
        assert np.allclose(out.detach().numpy(), lin.bias.detach().numpy())
        with pytest.raises(ValueError, match="tied"):
            F.functional_call(lin, {"weight": lib.zeros(2, 2), "other": lib.ones(2, 2)},
                              (lib.ones(1, 2),))
        assert lin.weight is w


try:
    from hypothesis import assume, given
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:           # a test dependency; without it these tests skip
    given = None

HYPO_TRANSFORMS = [
    ("grad", lambda F: F.grad(lambda x: (x.sin() * x).sum())),
    ("hessian", lambda F: F.hessian(lambda x: (x.sin() * x).sum())),
    ("jacrev", lambda F: F.jacrev(lambda x: x.exp() * x.sum())),
    ("jacfwd", lambda F: F.jacfwd(lambda x: x.exp() * x.sum())),
    ("vjp", lambda F: lambda x: F.vjp(lambda t: t.tanh() * 2, x)[1](x)),
    ("jvp", lambda F: lambda x: F.jvp(lambda t: t.tanh() * t, (x,), (x.cos(),))),
    ("vmap", lambda F: lambda x: F.vmap(lambda r: r * r.sum())(x) if x.ndim else x),
    ("vmap_grad", lambda F: lambda x: F.vmap(F.grad(lambda r: (r.exp() * r).sum()))(x)
     if x.ndim else x),
]

if given is not None:
    @pytest.mark.parametrize("name,make", HYPO_TRANSFORMS, ids=[h[0] for h in HYPO_TRANSFORMS])
    @given(data=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0,
                                                        max_side=3),
                           elements=st.floats(-2, 2)))
    def test_transforms_match_torch_on_any_shape(name, make, data):
        """0-d, empty and small shapes, any values (zeros and ties included). Where torch
        itself fails (its jacfwd and vmap index into an empty mapped dimension: IndexError),
        polygrad returns the empty result; those draws are not compared."""
        try:
            ref = make(TF)(torch.tensor(data, dtype=torch.float64))
        except IndexError:
            assume(False)
        _compare(make(PF)(pg.tensor(data, dtype=pg.float64)), ref)


REARRANGE = [
    ("b h w c -> b h w c", {}), ("b h w c -> (b h) w c", {}), ("b h w c -> h (b w) c", {}),
    ("b h w c -> b c h w", {}), ("b h w c -> b (c h w)", {}),
    ("b (h1 h) (w1 w) c -> (b h1 w1) h w c", {"h1": 2, "w1": 2}),
    ("b (h h1) (w w1) c -> b h w (c h1 w1)", {"h1": 2, "w1": 2}),
    ("b ... c -> c b ...", {}), ("... c -> (... c)", {}), ("b h w c -> (b h w c)", {}),
]


@pytest.mark.parametrize("pattern,lengths", REARRANGE, ids=[p for p, _ in REARRANGE])
def test_rearrange_matches_torch(pattern, lengths, backend):
    from torch.func import rearrange as torch_rearrange
    a = np.random.default_rng(0).standard_normal((4, 6, 8, 3))
    want = torch_rearrange(torch.tensor(a, requires_grad=True), pattern, **lengths)
    x = pg.tensor(a, requires_grad=True)
    got = pg.func.rearrange(x, pattern, **lengths)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    w = np.random.default_rng(1).standard_normal(tuple(want.shape))
    t = torch.tensor(a, requires_grad=True)
    (torch_rearrange(t, pattern, **lengths) * torch.tensor(w)).sum().backward()
    (got * pg.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("pattern,lengths,match", [
    ("b h w c -> b h w d", {}, "same axes"),
    ("b h -> b h", {}, "has 2 axes"),
    ("b (h1 h) w c -> b h w c", {}, "infer"),
    ("b (h1 h) w c -> b h1 h w c", {"h1": 5}, "can't be split"),
    ("b h w c", {}, "no '->'"),
])
def test_rearrange_errors_say_what_is_wrong(pattern, lengths, match):
    with pytest.raises(ValueError, match=match):
        pg.func.rearrange(pg.zeros(4, 6, 8, 3), pattern, **lengths)
