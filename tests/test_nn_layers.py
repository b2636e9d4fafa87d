"""polygrad.nn's shape layers, Dropout, containers, forward hooks and losses against torch.nn:
values, gradients, dtypes, shapes, reprs and state_dict keys on the numpy and torch backends.
"""

import numpy as np
import pytest

import polygrad
import polygrad.nn as nn

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(3)


def pg_of(a, backend, grad=True):
    t = polygrad.from_numpy(np.asarray(a), backend=backend)
    return t.requires_grad_(True) if grad and t.dtype.is_floating_point else t


def th_of(a, grad=True):
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_(True) if grad and t.dtype.is_floating_point else t


def _assert_like(out, tout):
    assert tuple(out.shape) == tuple(tout.shape)
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6,
                               atol=1e-7)


def _check_against_torch(backend, make, arrays, grads=1):
    """Run ``make(lib)(*inputs)`` in both libraries; compare output and input gradients."""
    ins = [pg_of(a, backend, i < grads) for i, a in enumerate(arrays)]
    tins = [th_of(a, i < grads) for i, a in enumerate(arrays)]
    out, tout = make(polygrad)(*ins), make(torch)(*tins)
    _assert_like(out, tout)
    assert out.backend == backend
    # same dtype as the output: a float64 weight would promote (and polygrad, unlike torch,
    # does not yet cast a promoted gradient back to a float32 input's dtype)
    weights = RNG.standard_normal(tuple(tout.shape)).astype(str(tout.dtype).split(".")[-1])
    (out * pg_of(weights, backend, False)).sum().backward()
    (tout * th_of(weights, False)).sum().backward()
    for x, tx in zip(ins[:grads], tins[:grads]):
        _assert_like(x.grad, tx.grad)


SHAPE_LAYERS = [
    ("Flatten", lambda lib: lib.nn.Flatten(), (2, 3, 4)),
    ("Flatten-0", lambda lib: lib.nn.Flatten(0), (2, 3, 4)),
    ("Flatten-1-2", lambda lib: lib.nn.Flatten(1, 2), (2, 3, 4, 5)),
    ("Flatten-neg", lambda lib: lib.nn.Flatten(-3, -2), (2, 3, 4, 5)),
    ("Unflatten", lambda lib: lib.nn.Unflatten(1, (3, 4)), (2, 12)),
    ("Unflatten-neg", lambda lib: lib.nn.Unflatten(-1, (2, -1)), (2, 3, 8)),
    ("Unflatten-list", lambda lib: lib.nn.Unflatten(0, [1, 2]), (2, 5)),
    ("Identity", lambda lib: lib.nn.Identity(54, unused="x"), (2, 3)),
    ("Dropout-eval", lambda lib: lib.nn.Dropout(0.5).eval(), (4, 5)),
    ("Dropout-p0", lambda lib: lib.nn.Dropout(0.0), (4, 5)),
]


@pytest.mark.parametrize("name,make,shape", SHAPE_LAYERS, ids=[c[0] for c in SHAPE_LAYERS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shape_layers_match_torch(backend, name, make, shape, dtype):
    _check_against_torch(backend, make, [RNG.standard_normal(shape).astype(dtype)])
    assert repr(make(polygrad)) == repr(make(torch))


LOSSES = [(f"{name}-{red}", make, arrays, grads)
          for red in ("mean", "sum", "none")
          for name, make, arrays, grads in [
              ("MSELoss", lambda lib, r=red: lib.nn.MSELoss(reduction=r),
               lambda: [RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))], 2),
              ("L1Loss", lambda lib, r=red: lib.nn.L1Loss(reduction=r),
               lambda: [RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))], 2),
              ("BCELoss", lambda lib, r=red: lib.nn.BCELoss(reduction=r),
               lambda: [RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3))], 2),
              ("BCELoss-weight",
               lambda lib, r=red: lib.nn.BCELoss(weight=_tensor(lib, [0.5, 1.0, 2.0]),
                                                 reduction=r),
               lambda: [RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3))], 2),
              ("NLLLoss", lambda lib, r=red: lib.nn.NLLLoss(reduction=r),
               lambda: [RNG.standard_normal((5, 4)), RNG.integers(0, 4, 5)], 1),
              ("CrossEntropy-indices", lambda lib, r=red: lib.nn.CrossEntropyLoss(reduction=r),
               lambda: [RNG.standard_normal((5, 4)), RNG.integers(0, 4, 5)], 1),
              ("CrossEntropy-indices-2d",
               lambda lib, r=red: lib.nn.CrossEntropyLoss(reduction=r),
               lambda: [RNG.standard_normal((2, 4, 3)), RNG.integers(0, 4, (2, 3))], 1),
              ("CrossEntropy-weight-ignored",
               lambda lib, r=red: lib.nn.CrossEntropyLoss(_tensor(lib, [1.0, 2.0, 0.5]),
                                                          reduction=r, ignore_index=-1),
               lambda: [RNG.standard_normal((4, 3)), np.array([0, -1, 2, 1])], 1),
              ("CrossEntropy-probs",
               lambda lib, r=red: lib.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
               lambda: [RNG.standard_normal((5, 4)), RNG.dirichlet(np.ones(4), 5)], 2),
          ]]


def _tensor(lib, values):
    return (torch.tensor(values, dtype=torch.float64) if lib is torch
            else polygrad.tensor(values, dtype=polygrad.float64))


@pytest.mark.parametrize("name,make,arrays,grads", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_match_torch(backend, name, make, arrays, grads):
    _check_against_torch(backend, make, arrays(), grads)
    assert repr(make(polygrad)) == repr(make(torch))


def test_cross_entropy_ignore_index_inside_the_class_range(backend):
    _check_against_torch(backend, lambda lib: lib.nn.CrossEntropyLoss(ignore_index=1),
                         [RNG.standard_normal((4, 3)), np.array([0, 1, 2, 1])], 1)


def test_bce_saturated_probabilities_stay_finite_as_torchs(backend):
    x, y = np.array([0.0, 1.0, 0.0, 1.0, 0.3]), np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    ours = nn.BCELoss(reduction="none")(pg_of(x, backend), pg_of(y, backend, False))
    theirs = torch.nn.BCELoss(reduction="none")(th_of(x), th_of(y, False))
    _assert_like(ours, theirs)                                  # log clamped at -100
    x_pg = pg_of(x, backend)
    nn.BCELoss()(x_pg, pg_of(y, backend, False)).backward()
    x_th = th_of(x)
    torch.nn.BCELoss()(x_th, th_of(y, False)).backward()
    grad = x_pg.grad.numpy()
    assert np.isfinite(grad).all()
    # torch's gradient everywhere: (x - y) / max(x (1 - x), 1e-12), also at exactly 0 or 1
    np.testing.assert_allclose(grad, x_th.grad.numpy(), rtol=1e-12)


def test_loss_argument_errors_match_torch():
    with pytest.raises(ValueError, match="target size"):
        nn.BCELoss()(polygrad.ones(3) * 0.5, polygrad.ones(2))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        nn.BCELoss()(polygrad.tensor([1.5]), polygrad.tensor([1.0]))
    with pytest.warns(UserWarning, match="target size"):
        nn.L1Loss()(polygrad.ones(3), polygrad.ones(1))
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="avg")


# -- Dropout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_statistics_and_scaling(backend, p):
    polygrad.manual_seed(0)
    x = pg_of(np.full((200, 100), 2.0), backend)
    out = nn.Dropout(p)(x)
    values = out.detach().numpy()
    kept = values != 0
    assert out.backend == backend and out.dtype == x.dtype
    np.testing.assert_allclose(values[kept], 2.0 / (1 - p))          # survivors scaled
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / kept.size)
    assert abs(values.mean() - 2.0) < 0.1                             # expectation kept
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p))        # same mask backward
    again = nn.Dropout(p)(x).detach().numpy() != 0
    assert (again != kept).any()                                      # a new mask per call


def test_dropout_reproducible_with_manual_seed(backend):
    x = polygrad.ones(50, 50)
    polygrad.manual_seed(3)
    a = nn.Dropout(0.5)(x).numpy()
    polygrad.manual_seed(3)
    b = nn.Dropout(0.5)(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_edges_match_torch(backend):
    x = RNG.standard_normal((3, 4))
    for p in (1.0,):
        ours, theirs = nn.Dropout(p)(pg_of(x, backend)), torch.nn.Dropout(p)(th_of(x))
        _assert_like(ours, theirs)
    drop = nn.Dropout(0.5)
    xs = pg_of(x, backend)
    assert drop.eval()(xs) is xs and nn.Dropout(0.0)(xs) is xs
    y = polygrad.ones(1000, dtype=polygrad.float64)
    out = nn.Dropout(0.25, inplace=True)(y)
    assert out is y and set(np.unique(y.numpy())) <= {0.0, 1 / 0.75}
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            torch.nn.Dropout(p)


def test_dropout_in_a_model_follows_train_and_eval():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = polygrad.ones(8, 4)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())
    model.train()
    assert (model(x).detach().numpy() == 0).any()


# -- containers ------------------------------------------------------------------------------

def _containers(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = lib.nn.ModuleDict({"b": lib.nn.Linear(2, 3), "a": lib.nn.Tanh()})
            self.heads["c"] = lib.nn.Linear(3, 1, bias=False)
            self.plist = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)), lib.zeros(3)])
            self.plist.append(lib.ones(1, 2))
            self.pdict = lib.nn.ParameterDict({"scale": lib.ones(2)})
            self.pdict.update([("shift", lib.nn.Parameter(lib.zeros(2)))])
            self.seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU(), lib.nn.Flatten(),
                                         lib.nn.Dropout(0.1))
    return Net()


def test_container_keys_parameters_and_reprs_match_torch():
    net, tnet = _containers(polygrad), _containers(torch)
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert [n for n, _ in net.named_modules()] == [n for n, _ in tnet.named_modules()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.plist)
    assert repr(net.heads) == repr(tnet.heads)
    assert repr(net.seq) == repr(tnet.seq)
    assert repr(net.plist) == repr(tnet.plist).replace("torch.", "polygrad.")
    assert list(net.heads) == list(tnet.heads) == ["b", "a", "c"]
    assert "a" in net.heads and "z" not in net.heads and len(net.pdict) == 2


def _edit_lists(lib):
    """The same edits in both libraries; returns what each step leaves."""
    seen = []
    seq = lib.nn.Sequential(*[lib.nn.Linear(1, i + 1) for i in range(5)])
    mlist = lib.nn.ModuleList([lib.nn.Linear(1, i + 1) for i in range(5)])
    for c in (seq, mlist):
        def shapes(c=c):
            return list(c.state_dict()), [tuple(v.shape) for v in c.state_dict().values()]
        del c[1]
        seen.append(shapes())
        del c[-1]
        seen.append(shapes())
        seen.append(len(c))
        seen.append([tuple(p.shape) for p in c[1:].parameters()])
        seen.append(list(c[::2].state_dict()))
        c.extend([lib.nn.Linear(1, 9)])
        seen.append(shapes())
    mlist.insert(1, lib.nn.Linear(1, 7))
    seen.append(list(mlist.state_dict()))
    popped = mlist.pop(0)
    seen.append((popped.out_features, list(mlist.state_dict())))
    mlist += [lib.nn.Tanh()]
    seen.append(repr(mlist))
    plist = lib.nn.ParameterList([lib.ones(i + 1) for i in range(5)])
    plist[0] = lib.zeros(4)
    plist += [lib.ones(6)]
    seen.append([(name, tuple(p.shape), type(p).__name__) for name, p in
                 plist.named_parameters()])
    seen.append([tuple(p.shape) for p in plist[1::2]] + [tuple(plist[-1].shape)])
    return seen


def test_list_container_edits_match_torch():
    assert _edit_lists(polygrad) == _edit_lists(torch)


def test_dict_container_edits_match_torch():
    def edits(lib):
        d = lib.nn.ModuleDict([("x", lib.nn.Linear(1, 1)), ("y", lib.nn.ReLU())])
        pd = lib.nn.ParameterDict({"a": lib.ones(1), "b": lib.zeros(2)})
        out = [list(d.keys()), list(pd.keys())]
        popped = d.pop("x")
        del pd["a"]
        out += [type(popped).__name__, list(d.state_dict()), list(pd.state_dict())]
        d.update({"z": lib.nn.Linear(2, 2)})
        pd["c"] = lib.ones(3)
        out += [[k for k, _ in d.items()], [tuple(v.shape) for v in pd.values()]]
        d.clear()
        out.append(len(d))
        return out
    assert edits(polygrad) == edits(torch)


def test_container_errors():
    with pytest.raises(IndexError, match="out of range"):
        nn.ModuleList([nn.ReLU()])[3]
    with pytest.raises(TypeError, match="integers or slices"):
        nn.Sequential(nn.ReLU())["0"]
    with pytest.raises(TypeError, match="cannot store a str"):
        nn.ParameterList(["x"])
    with pytest.raises(KeyError):
        nn.ParameterDict({"a.b": polygrad.ones(1)})
    with pytest.raises(ValueError, match="pair"):
        nn.ModuleDict([nn.ReLU()])


def test_containers_train_through_the_optimizer():
    net = _containers(polygrad)
    before = [p.detach().clone() for p in net.parameters()]
    opt = polygrad.optim.SGD(net.parameters(), lr=0.1)
    loss = (net.seq(net.heads["b"].weight).sum() + net.plist[2].sum()
            + (net.pdict["scale"] * net.pdict["shift"]).sum())
    loss.backward()
    opt.step()
    changed = [not np.array_equal(b.numpy(), p.detach().numpy())
               for b, p in zip(before, net.parameters())]
    assert any(changed)


# -- hooks -----------------------------------------------------------------------------------

def _hook_run(lib):
    log = []
    lin = lib.nn.Linear(2, 2)
    with lib.no_grad():
        lin.weight.copy_(_tensor(lib, [[1.0, 2.0], [3.0, 4.0]]).to(lin.weight.dtype))
        lin.bias.fill_(0.5)
    x = lib.ones(1, 2)

    def pre(m, args):
        log.append(("pre", type(m).__name__, len(args)))
        return args[0] * 2          # a non-tuple result becomes the only argument

    def pre_first(m, args):
        log.append("pre_first")

    def post(m, args, out):
        log.append(("post", tuple(out.shape)))
        return out + 1

    def post_kw(m, args, kwargs, out):
        log.append(("post_kw", sorted(kwargs)))

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_pre_hook(pre_first, prepend=True)
    h3 = lin.register_forward_hook(post)
    h4 = lin.register_forward_hook(post_kw, with_kwargs=True)
    out1 = lin(x).tolist()
    h1.remove()
    h3.remove()
    out2 = lin(x).tolist()
    h2.remove()
    h4.remove()
    h4.remove()                     # removing twice is harmless
    out3 = lin(x).tolist()
    with lin.register_forward_hook(lambda m, a, o: o * 0):
        out4 = lin(x).tolist()
    out5 = lin(x).tolist()

    def pre_kw(m, args, kwargs):
        return (args[0] + 1,), kwargs
    with lin.register_forward_pre_hook(pre_kw, with_kwargs=True):
        out6 = lin(x).tolist()
    return log, [out1, out2, out3, out4, out5, out6], (len(lin._forward_hooks),
                                                       len(lin._forward_pre_hooks))


def test_forward_hooks_match_torch():
    assert _hook_run(polygrad) == _hook_run(torch)


def test_hooks_on_submodules_see_the_gradient_graph(backend):
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    captured = {}
    handle = model[0].register_forward_hook(lambda m, a, out: captured.setdefault("out", out))
    y = model(polygrad.ones(1, 3))
    assert captured["out"].grad_fn is not None and captured["out"].backend == backend
    y.sum().backward()
    assert model[0].weight.grad is not None
    handle.remove()
    assert not model[0]._forward_hooks


def test_always_call_hook_runs_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    calls = []
    m = Boom()
    m.register_forward_hook(lambda mod, args, out: calls.append(("always", out)),
                            always_call=True)
    m.register_forward_hook(lambda mod, args, out: calls.append("normal"))
    with pytest.raises(ValueError, match="boom"):
        m(polygrad.ones(1))
    assert calls == [("always", None)]


def test_handles_have_increasing_ids_and_pre_hook_kwargs_result_is_checked():
    lin = nn.Linear(1, 1)
    a = lin.register_forward_hook(lambda *a: None)
    b = lin.register_forward_pre_hook(lambda *a: None)
    assert isinstance(a, nn.RemovableHandle) and b.id > a.id
    lin.register_forward_pre_hook(lambda m, args, kwargs: 3, with_kwargs=True)
    with pytest.raises(RuntimeError, match="new_args, new_kwargs"):
        lin(polygrad.ones(1))
