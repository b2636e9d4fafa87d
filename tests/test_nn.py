"""polygrad.nn against torch.nn: functional ops and losses (values, gradients, second
order, JVP rules), the fused torch kernel, Module's API, Parameter and nn.init.

Every comparison runs on the same inputs in polygrad (numpy and torch backends) and in
real torch, the oracle.
"""

import copy
import math
import pickle

import numpy as np
import pytest

import polygrad
import polygrad.nn as nn
import polygrad.nn.functional as F
from polygrad.primitives.raw import raw_namespace

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)


def arr(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape)


def probs(*shape):
    p = RNG.uniform(0.1, 1.0, size=shape)
    return p / p.sum(axis=1, keepdims=True)


def labels(n, c, *rest):
    return RNG.integers(0, c, size=(n, *rest))


def pg_of(a, backend, grad=True):
    t = polygrad.from_numpy(np.asarray(a), backend=backend)
    if grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def th_of(a, grad=True):
    t = torch.from_numpy(np.array(a))
    if grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def host(t):
    return t.detach().numpy() if isinstance(t, polygrad.Tensor) else t.detach().numpy()


# name, polygrad function, torch function, input makers (first ones get gradients), kwargs
FUNCTIONAL = [
    ("relu", F.relu, TF.relu, [lambda: arr(4, 5)], {}),
    ("sigmoid", F.sigmoid, torch.sigmoid, [lambda: arr(4, 5, low=-30, high=30)], {}),
    ("tanh", F.tanh, torch.tanh, [lambda: arr(4, 5)], {}),
    ("linear", F.linear, TF.linear, [lambda: arr(3, 4), lambda: arr(2, 4), lambda: arr(2)], {}),
    ("linear-nobias", F.linear, TF.linear, [lambda: arr(3, 4), lambda: arr(2, 4)], {}),
    ("linear-3d", F.linear, TF.linear, [lambda: arr(2, 3, 4), lambda: arr(5, 4), lambda: arr(5)],
     {}),
    ("linear-1d", F.linear, TF.linear, [lambda: arr(4), lambda: arr(5, 4), lambda: arr(5)], {}),
    ("softmax-1", F.softmax, TF.softmax, [lambda: arr(3, 5)], {"dim": 1}),
    ("softmax-0", F.softmax, TF.softmax, [lambda: arr(3, 5)], {"dim": 0}),
    ("softmax-big", F.softmax, TF.softmax, [lambda: arr(3, 5, low=-500, high=500)], {"dim": -1}),
    ("log_softmax", F.log_softmax, TF.log_softmax, [lambda: arr(3, 5)], {"dim": 1}),
    ("log_softmax-big", F.log_softmax, TF.log_softmax, [lambda: arr(2, 3, 4, low=-500, high=500)],
     {"dim": 2}),
]
for _r in ("mean", "sum", "none"):
    FUNCTIONAL += [
        (f"mse-{_r}", F.mse_loss, TF.mse_loss, [lambda: arr(3, 4), lambda: arr(3, 4)],
         {"reduction": _r}),
        (f"bce-{_r}", F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
         [lambda: arr(3, 4, low=-50, high=50), lambda: arr(3, 4, low=0, high=1)],
         {"reduction": _r}),
        (f"bce-weights-{_r}", F.binary_cross_entropy_with_logits,
         TF.binary_cross_entropy_with_logits,
         [lambda: arr(3, 4), lambda: arr(3, 4, low=0, high=1), lambda: arr(4, low=0, high=2),
          lambda: arr(4, low=0.5, high=3)],
         {"reduction": _r, "_names": ("input", "target", "weight", "pos_weight"), "_ngrad": 2}),
        (f"ce-index-{_r}", F.cross_entropy, TF.cross_entropy,
         [lambda: arr(4, 5), lambda: labels(4, 5)], {"reduction": _r}),
        (f"ce-index-4d-{_r}", F.cross_entropy, TF.cross_entropy,
         [lambda: arr(2, 3, 2, 2), lambda: labels(2, 3, 2, 2)], {"reduction": _r}),
        (f"ce-weight-ignore-{_r}", F.cross_entropy, TF.cross_entropy,
         [lambda: arr(6, 4), lambda: np.array([0, 3, -100, 2, 1, 3]),
          lambda: arr(4, low=0.1, high=2)],
         {"reduction": _r, "ignore_index": -100, "_names": ("input", "target", "weight"),
          "_ngrad": 1}),
        (f"ce-smoothing-{_r}", F.cross_entropy, TF.cross_entropy,
         [lambda: arr(6, 4), lambda: np.array([0, 3, 7, 2, 1, 3]), lambda: arr(4, low=0.1, high=2)],
         {"reduction": _r, "ignore_index": 7, "label_smoothing": 0.2,
          "_names": ("input", "target", "weight"), "_ngrad": 1}),
        (f"ce-probs-{_r}", F.cross_entropy, TF.cross_entropy,
         [lambda: arr(4, 5), lambda: probs(4, 5)], {"reduction": _r, "label_smoothing": 0.1}),
        (f"nll-{_r}", F.nll_loss, TF.nll_loss, [lambda: arr(4, 5), lambda: labels(4, 5)],
         {"reduction": _r}),
    ]
FUNCTIONAL.append(("ce-unbatched", F.cross_entropy, TF.cross_entropy,
                   [lambda: arr(5), lambda: np.array(3)], {}))


def _call(fn, inputs, kwargs):
    kwargs = dict(kwargs)
    kwargs.pop("_ngrad", None)
    names = kwargs.pop("_names", None)
    if names is None:
        return fn(*inputs, **kwargs)
    return fn(**dict(zip(names, inputs)), **kwargs)


@pytest.mark.parametrize("name,pg_fn,th_fn,makers,kwargs", FUNCTIONAL,
                         ids=[case[0] for case in FUNCTIONAL])
def test_functional_matches_torch(backend, name, pg_fn, th_fn, makers, kwargs):
    data = [m() for m in makers]
    ngrad = kwargs.get("_ngrad", len(data))    # torch refuses gradients for loss weights
    pg_in = [pg_of(a, backend, grad=i < ngrad) for i, a in enumerate(data)]
    th_in = [th_of(a, grad=i < ngrad) for i, a in enumerate(data)]
    out = _call(pg_fn, pg_in, kwargs)
    expected = _call(th_fn, th_in, kwargs)
    assert out.backend == backend
    np.testing.assert_allclose(host(out), host(expected), rtol=1e-10, atol=1e-12)
    cot = arr(*expected.shape)
    out.backward(pg_of(cot, backend, grad=False))
    expected.backward(th_of(cot, grad=False))
    for i, (p, t) in enumerate(zip(pg_in, th_in)):
        if t.grad is None:
            assert not p.requires_grad or p.grad is None or not np.any(host(p.grad)), i
            continue
        np.testing.assert_allclose(host(p.grad), host(t.grad), rtol=1e-9, atol=1e-12,
                                   err_msg=f"gradient of input {i}")


# second order: grad with create_graph, then the gradient of <grad, v>
SECOND_ORDER = [
    ("bce", lambda F_, z, y: F_.binary_cross_entropy_with_logits(z, y),
     [lambda: arr(3, 4, low=-5, high=5), lambda: arr(3, 4, low=0, high=1)]),
    ("softmax", lambda F_, x: (F_.softmax(x, dim=1) * F_.softmax(x, dim=1)).sum(),
     [lambda: arr(3, 4)]),
    ("log_softmax", lambda F_, x: (F_.log_softmax(x, dim=0) ** 2).sum(), [lambda: arr(3, 4)]),
    ("mse", lambda F_, x, y: F_.mse_loss(x * x, y, reduction="sum"),
     [lambda: arr(3, 4), lambda: arr(3, 4)]),
    ("sigmoid-relu-linear", lambda F_, x, w: F_.sigmoid(F_.relu(F_.linear(x, w))).sum(),
     [lambda: arr(3, 4), lambda: arr(2, 4)]),
    ("cross_entropy", lambda F_, x, p: F_.cross_entropy(x, p), [lambda: arr(3, 4),
                                                                 lambda: probs(3, 4)]),
]


@pytest.mark.parametrize("name,fn,makers", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order_matches_torch(backend, name, fn, makers):
    data = [m() for m in makers]
    pg_in = [pg_of(a, backend) for a in data]
    th_in = [th_of(a) for a in data]
    g_pg = polygrad.autograd.grad(fn(F, *pg_in), pg_in, create_graph=True)
    g_th = torch.autograd.grad(fn(TF, *th_in), th_in, create_graph=True)
    vs = [arr(*a.shape) for a in data]
    sum((gp * pg_of(v, backend, grad=False)).sum() for gp, v in zip(g_pg, vs)).backward()
    sum((gt * th_of(v, grad=False)).sum() for gt, v in zip(g_th, vs)).backward()
    for gp, gt in zip(g_pg, g_th):
        np.testing.assert_allclose(host(gp), host(gt), rtol=1e-9, atol=1e-12)
    for p, t in zip(pg_in, th_in):
        np.testing.assert_allclose(host(p.grad), host(t.grad), rtol=1e-8, atol=1e-11)


# JVP rules of the nn primitives, on the backend's raw namespace, against torch.func.jvp
JVP = [
    ("relu", {}, TF.relu, [(3, 4)]),
    ("sigmoid", {}, torch.sigmoid, [(3, 4)]),
    ("linear", {}, TF.linear, [(3, 4), (2, 4), (2,)]),
    ("softmax", {"axis": 1}, lambda x: TF.softmax(x, 1), [(3, 4)]),
    ("log_softmax", {"axis": 0}, lambda x: TF.log_softmax(x, 0), [(3, 4)]),
    ("binary_cross_entropy_with_logits", {"reduction": "mean"},
     TF.binary_cross_entropy_with_logits, [(3, 4), (3, 4)]),
    ("binary_cross_entropy_with_logits", {"reduction": "none"},
     lambda z, y: TF.binary_cross_entropy_with_logits(z, y, reduction="none"), [(3, 4), (3, 4)]),
    ("mse_loss", {"reduction": "sum"}, lambda x, y: TF.mse_loss(x, y, reduction="sum"),
     [(3, 4), (3, 4)]),
]


@pytest.mark.parametrize("name,opts,th_fn,shapes", JVP, ids=[f"{c[0]}-{c[1]}" for c in JVP])
def test_jvp_rules_match_torch(backend, name, opts, th_fn, shapes):
    prim = polygrad.primitives.PRIMITIVES[name]
    b = polygrad.get_backend(backend)
    xs = [arr(*s) for s in shapes]
    ts = [arr(*s) for s in shapes]
    raw = [b.from_numpy(x) for x in xs]
    out = b.op(name, prim.impl)(*raw, **opts)
    t_out = prim.jvp(raw_namespace(b), tuple(b.from_numpy(t) for t in ts), out, *raw, **opts)
    value, expected = torch.func.jvp(th_fn, tuple(torch.from_numpy(x) for x in xs),
                                     tuple(torch.from_numpy(t) for t in ts))
    np.testing.assert_allclose(b.to_numpy(out), value.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.to_numpy(t_out), expected.numpy(), rtol=1e-9, atol=1e-12)


# -- QS-1 and numerical stability ------------------------------------------------------------

def test_qs1_one_layer_net_matches_torch(backend):
    w0, b0 = RNG.standard_normal((5, 3)), RNG.standard_normal(3)
    x, y = polygrad.ones(5), polygrad.zeros(3)
    w = polygrad.tensor(w0.tolist(), requires_grad=True)
    b = polygrad.tensor(b0.tolist(), requires_grad=True)
    z = polygrad.matmul(x, w) + b
    loss = F.binary_cross_entropy_with_logits(z, y)
    assert z.grad_fn.name() == "AddBackward0"
    assert repr(loss).endswith("grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)")
    assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyWithLogitsBackward0"
    loss.backward()
    tw = torch.tensor(w0.tolist(), requires_grad=True)
    tb = torch.tensor(b0.tolist(), requires_grad=True)
    tloss = TF.binary_cross_entropy_with_logits(torch.ones(5) @ tw + tb, torch.zeros(3))
    tloss.backward()
    assert w.dtype == polygrad.float32 and w.grad.dtype == polygrad.float32
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6)
    np.testing.assert_allclose(host(w.grad), host(tw.grad), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(host(b.grad), host(tb.grad), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_is_stable_for_huge_logits(backend, dtype):
    z0 = [1e4, -1e4, 80.0, -80.0, 0.0]
    y0 = [0.0, 1.0, 1.0, 0.0, 1.0]
    z = polygrad.tensor(z0, dtype=dtype, requires_grad=True)
    # no overflow (or invalid) warnings on the numpy backend
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(z, polygrad.tensor(y0, dtype=dtype),
                                                  reduction="sum")
        loss.backward()
    tz = torch.tensor(z0, dtype=getattr(torch, dtype), requires_grad=True)
    tloss = TF.binary_cross_entropy_with_logits(tz, torch.tensor(y0, dtype=tz.dtype),
                                                reduction="sum")
    tloss.backward()
    assert math.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6)
    np.testing.assert_allclose(host(z.grad), host(tz.grad), rtol=1e-6, atol=1e-30)


def test_inplace_relu_matches_torch(backend):
    data = arr(3, 4)
    x, tx = pg_of(data, backend), th_of(data)
    y, ty = x * 2, tx * 2
    assert F.relu(y, inplace=True) is y and nn.ReLU(inplace=True)(y) is y
    TF.relu(ty, inplace=True)
    assert type(y.grad_fn).__name__ == "ReluBackward0"
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(host(x.grad), host(tx.grad), rtol=1e-12)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F.relu(x, inplace=True)


def test_sigmoid_is_stable_for_huge_inputs(backend):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = F.sigmoid(polygrad.tensor([-1e4, 1e4, 0.0]))
    assert out.tolist() == [0.0, 1.0, 0.5]


def test_torch_fused_kernel_matches_the_decomposed_form():
    b = polygrad.get_backend("torch")
    prim = polygrad.primitives.PRIMITIVES["binary_cross_entropy_with_logits"]
    fused = b.op("binary_cross_entropy_with_logits", prim.impl)
    z, y = torch.from_numpy(arr(4, 6, low=-40, high=40)), torch.from_numpy(arr(4, 6, low=0, high=1))
    assert b.fused["binary_cross_entropy_with_logits"] is not None
    for reduction in ("none", "mean", "sum"):
        np.testing.assert_allclose(fused(z, y, reduction=reduction).numpy(),
                                   prim.impl(b.xp, z, y, reduction=reduction).numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_grad_fn_names_match_torch(backend):
    x = polygrad.randn(2, 3, requires_grad=True)
    tx = torch.randn(2, 3, requires_grad=True)
    w = polygrad.randn(4, 3, requires_grad=True)
    tw = torch.randn(4, 3, requires_grad=True)
    cases = [(F.relu(x), TF.relu(tx)), (F.sigmoid(x), torch.sigmoid(tx)),
             (F.softmax(x, 1), TF.softmax(tx, 1)), (F.log_softmax(x, 1), TF.log_softmax(tx, 1)),
             (F.mse_loss(x, x.detach()), TF.mse_loss(tx, tx.detach())),
             (F.linear(x, w, polygrad.zeros(4)), TF.linear(tx, tw, torch.zeros(4)))]
    for ours, theirs in cases:
        assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__


BAD_CALLS = [
    (lambda: F.mse_loss(polygrad.ones(3), polygrad.ones(3), reduction="avg"), ValueError,
     "not a valid value for reduction"),
    (lambda: F.binary_cross_entropy_with_logits(polygrad.ones(3), polygrad.ones(2)), ValueError,
     "must be the same as input size"),
    (lambda: F.cross_entropy(polygrad.ones(2, 3), polygrad.tensor([0, 3])), IndexError,
     "Target 3 is out of bounds"),
    (lambda: F.cross_entropy(polygrad.ones(2, 3), polygrad.tensor([0, 1, 2])), ValueError,
     "Expected target of shape (2,)"),
    (lambda: F.linear(polygrad.ones(2, 3), polygrad.ones(4, 5)), ValueError, "in_features=5"),
    (lambda: F.softmax(polygrad.ones(2, 3), dim=2), IndexError, "Dimension out of range"),
    (lambda: F.cross_entropy(polygrad.ones(2, 3), polygrad.tensor([0, 1]), label_smoothing=2.0),
     ValueError, "label_smoothing"),
]


@pytest.mark.parametrize("call,exc,message", BAD_CALLS, ids=[c[2] for c in BAD_CALLS])
def test_bad_arguments_raise_clear_errors(call, exc, message):
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_implicit_softmax_dim_warns_like_torch():
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        out = F.softmax(polygrad.zeros(2, 4))
    np.testing.assert_allclose(out.numpy(), np.full((2, 4), 0.25))


# -- Module API -----------------------------------------------------------------------------

def _pair(lib):
    class TinyModel(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer1 = lib.nn.Linear(10, 8)
            self.relu = lib.nn.ReLU()
            self.layer2 = lib.nn.Linear(8, 3, bias=False)
            self.blocks = lib.nn.ModuleList([lib.nn.Linear(3, 3) for _ in range(3)]
                                            + [lib.nn.Tanh()])
            self.head = lib.nn.Sequential(lib.nn.Sigmoid(), lib.nn.Linear(3, 2),
                                          lib.nn.Softmax(dim=1))
            self.loss = lib.nn.CrossEntropyLoss()
            self.register_buffer("scale", lib.ones(2))
            self.register_buffer("scratch", lib.zeros(1), persistent=False)

        def forward(self, x):
            x = self.layer2(self.relu(self.layer1(x)))
            for block in self.blocks:
                x = block(x)
            return self.head(x) * self.scale
    return TinyModel()


def test_module_repr_names_and_state_dict_keys_match_torch():
    ours, theirs = _pair(polygrad), _pair(torch)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == \
        [tuple(p.shape) for p in theirs.parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for make in (lambda lib: lib.nn.ReLU(inplace=True), lambda lib: lib.nn.MSELoss(),
                 lambda lib: lib.nn.BCEWithLogitsLoss(), lambda lib: lib.nn.Identity(),
                 lambda lib: lib.nn.LogSoftmax(dim=0), lambda lib: lib.nn.ModuleList(),
                 lambda lib: lib.nn.Sequential(), lambda lib: lib.nn.Linear(3, 1, bias=False),
                 lambda lib: lib.nn.ModuleList([lib.nn.Tanh(), lib.nn.Tanh(), lib.nn.ReLU()])):
        assert repr(make(polygrad)) == repr(make(torch))


def test_torch_state_dict_loads_and_the_models_agree(backend):
    ours, theirs = _pair(polygrad), _pair(torch)
    result = ours.load_state_dict(theirs.state_dict())     # raw torch tensors, any backend
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = arr(5, 10)
    out = ours(pg_of(x, backend, grad=False).astype("float32"))
    expected = theirs(torch.from_numpy(x).float())
    assert out.backend == backend
    np.testing.assert_allclose(host(out), host(expected), rtol=1e-5, atol=1e-6)


def test_load_state_dict_errors_leave_the_module_unchanged():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    good = {k: polygrad.zeros(v.shape) for k, v in model.state_dict().items()}
    bad_cases = {
        "missing": ({k: v for k, v in good.items() if k != "2.bias"}, 'Missing key.*"2.bias"'),
        "unexpected": (dict(good, extra=polygrad.ones(1)), 'Unexpected key.*"extra"'),
        "shape": (dict(good, **{"0.weight": polygrad.zeros(3, 5)}),
                  r"size mismatch for 0.weight: .*\(3, 5\).*\(3, 4\)"),
    }
    for name, (sd, message) in bad_cases.items():
        with pytest.raises(RuntimeError, match=message):
            model.load_state_dict(sd)
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), before[k], err_msg=name)
    result = model.load_state_dict(bad_cases["missing"][0], strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == []
    assert not model[0].weight.detach().numpy().any()


def test_parameter_registration_and_module_errors():
    p = nn.Parameter(polygrad.ones(2, 3))
    assert repr(p) == repr(torch.nn.Parameter(torch.ones(2, 3))).replace("torch", "polygrad")
    assert p.requires_grad and p.is_leaf and isinstance(p, polygrad.Tensor)
    assert type(p * 2) is polygrad.Tensor
    assert not nn.Parameter(polygrad.ones(1), requires_grad=False).requires_grad

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(polygrad.ones(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        NoInit()
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = polygrad.ones(2, 2)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        m.wieght  # noqa: B018  (the access itself raises)
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)
    m.extra = nn.Parameter(polygrad.zeros(1))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias", "extra"]
    del m.extra
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    clone = copy.deepcopy(m)
    assert isinstance(clone.weight, nn.Parameter) and clone.weight is not m.weight
    np.testing.assert_array_equal(clone.weight.detach().numpy(), m.weight.detach().numpy())
    restored = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(restored.bias.detach().numpy(), m.bias.detach().numpy())


def test_train_eval_zero_grad_and_requires_grad():
    model = nn.Sequential(nn.Linear(3, 2), nn.Sequential(nn.Tanh()))
    assert model.training and model[1][0].training
    model.eval()
    assert not model.training and not model[1][0].training
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")
    model(polygrad.ones(4, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.numpy().any() for p, g in zip(model.parameters(), grads))
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_module_to_moves_parameters_in_place():
    model = nn.Linear(3, 2)
    weight = model.weight
    values = weight.detach().numpy().copy()
    model.to("torch")
    assert model.weight is weight and weight.backend == "torch" and weight.requires_grad
    np.testing.assert_array_equal(weight.detach().numpy(), values)
    model.double()
    assert weight.dtype == polygrad.float64
    out = model(polygrad.ones(1, 3, backend="torch", dtype="float64"))
    out.sum().backward()
    assert weight.grad.backend == "torch"
    model.to("numpy").float()
    assert weight.backend == "numpy" and weight.dtype == polygrad.float32


# -- init ------------------------------------------------------------------------------------

def test_linear_default_init_has_torchs_bounds(backend):
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight, layer.bias):
        assert p.backend == backend and p.dtype == polygrad.float32 and p.requires_grad
        values = p.detach().numpy()
        assert values.min() >= -bound and values.max() <= bound
    # U(-b, b) has standard deviation b / sqrt(3); 120000 draws pin it within 1%
    assert abs(layer.weight.detach().numpy().std() / (bound / math.sqrt(3)) - 1) < 0.01


INITS = [
    ("uniform_", lambda t: nn.init.uniform_(t, -0.5, 2.0), 0.75, math.sqrt(2.5 ** 2 / 12)),
    ("normal_", lambda t: nn.init.normal_(t, 1.0, 0.5), 1.0, 0.5),
    ("kaiming_uniform_", lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), 0.0,
     math.sqrt(2.0 / 200)),
    ("kaiming_normal_", lambda t: nn.init.kaiming_normal_(t), 0.0,
     math.sqrt(2.0 / (1 + 0.01 ** 2) / 200)),
    ("xavier_uniform_", lambda t: nn.init.xavier_uniform_(t), 0.0, math.sqrt(2.0 / 500)),
    ("xavier_normal_", lambda t: nn.init.xavier_normal_(t, gain=2.0), 0.0, 2 * math.sqrt(2 / 500)),
    ("zeros_", nn.init.zeros_, 0.0, 0.0),
    ("ones_", nn.init.ones_, 1.0, 0.0),
]


@pytest.mark.parametrize("name,fn,mean,std", INITS, ids=[c[0] for c in INITS])
def test_init_fills_parameters_in_place(backend, name, fn, mean, std):
    p = nn.Parameter(polygrad.empty(300, 200))
    assert fn(p) is p
    assert p.requires_grad and p.backend == backend and p.grad_fn is None
    values = p.detach().numpy()
    assert abs(values.mean() - mean) < 0.02 + 0.01 * std
    assert abs(values.std() - std) < 0.02 * std + 1e-12
    assert nn.init.calculate_gain("relu") == torch.nn.init.calculate_gain("relu")
    assert nn.init.calculate_gain("leaky_relu", 0.2) == \
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
