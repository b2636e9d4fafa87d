"""polygrad.compile: a compiled call gives the eager call's values and gradients on every
backend, on a table of programs and on hypothesis inputs (zeros, ties, 0-d and empty
shapes); a few programs are also checked against real torch. Guards retrace when they
change; what cannot be replayed runs eagerly with one warning (or raises with
fullgraph=True); the graph around a compiled call (hooks, .grad accumulation, retain_graph,
create_graph, no_grad, optimizers, the profiler) behaves as around eager ops.
"""

import importlib.util
import warnings

import numpy as np
import pytest

import polygrad as pg
from polygrad.compiler import CompileWarning, UntraceableError

try:
    from hypothesis import given
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:          # a test dependency; without it the hypothesis tests skip
    given = None

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_STRICT = importlib.util.find_spec("polygrad_strict") is not None


@pytest.fixture(scope="module", params=["numpy"] + (["torch"] if HAS_TORCH else [])
                + (["strict"] if HAS_STRICT else []))
def backend(request):
    if request.param == "strict":
        import polygrad_strict
        pg.plugins.register_plugin(polygrad_strict, name="strict")
        try:
            yield "strict"
        finally:
            pg.plugins.unregister_plugin("strict")
    else:
        yield request.param


def _t(a, backend, grad=True):
    t = pg.from_numpy(np.asarray(a, dtype=np.float64), backend=backend)
    return t.requires_grad_() if grad else t


def _np(t):
    return None if t is None else np.asarray(pg.get_backend(t.backend).to_numpy(t.detach().array))


def _run(fn, arrays, backend, scalars=(), grads=None):
    """Values of ``fn`` and the gradients of its inputs, from fresh tensors."""
    xs = [_t(a, backend, g) for a, g in zip(arrays, grads or [True] * len(arrays))]
    out = fn(*xs, *scalars)
    outs = out if isinstance(out, tuple) else (out,)
    total = None
    for o in outs:
        if o.requires_grad:
            s = o.sum() if o.ndim else o
            total = s if total is None else total + s
    if total is not None:
        total.backward()
    return [_np(o) for o in outs], [_np(x.grad) for x in xs]


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if u is None or v is None:
            assert u is None and v is None
        else:
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-9)


# -- compiled == eager, on a table of programs --------------------------------------------

def _chain(z, x, y):
    for _ in range(20):
        z = (z / x) * y
    return z


CASES = {
    "W2 chain": (_chain, [(2, 3), (2, 3), (2, 3)], ()),
    "sin chain": (lambda a: (2 * pg.sin(a) + 1).sum(), [(25,)], ()),
    "broadcast and scalars": (lambda x, y, s: (x * y + x / (y * y + 1) - s * x + 1.5).pow(2),
                              [(3, 1), (4,)], (2.5,)),
    "matmul relu": (lambda x, w: pg.matmul(x, w).relu().sum(axis=0), [(3, 4), (4, 2)], ()),
    "reductions": (lambda x: (x.sum(axis=1) * x.max()).sum() + x.mean() + pg.logsumexp(x, axis=1)
                   .sum() + x.prod(), [(3, 4)], ()),
    "softmax": (lambda x: pg.nn.functional.softmax(x, dim=-1) * pg.arange(4.0, backend=x.backend),
                [(2, 4)], ()),
    "where and abs (ties at 0)": (lambda x: pg.where(x > 0, x, 0.1 * x).abs() + x.clamp(min=0),
                                  [(3, 3)], ()),
    "shape ops": (lambda x: pg.concat([x, 2 * x], axis=0).T.reshape(-1)[1:7].sum(), [(2, 3)], ()),
    "index array": (lambda x: (x[pg.tensor([0, 2, 2], backend=x.backend)] ** 2).sum(axis=1), [(5, 4)], ()),
    "two outputs": (lambda x, y: (x * y, (x - y).exp()), [(3,), (3,)], ()),
    "0-d": (lambda x, y: (x * y).sin() + y, [(), ()], ()),
    "empty": (lambda x: (x * 2).sum(axis=0) + 1, [(0, 3)], ()),
    "detach inside": (lambda x: x * x.detach() + x, [(4,)], ()),
    "one input without grad": (lambda x, y: x * y.exp(), [(3,), (3,)], ()),
    "output is an input": (lambda x, y: (x, x * y), [(2,), (2,)], ()),
    "float64 and int exponent": (lambda x: x ** 3 - 2 * x, [(5,)], ()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_matches_eager(backend, name):
    fn, shapes, scalars = CASES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.5, 1.5, s) for s in shapes]
    grads = [not (name == "one input without grad" and i == 1) for i in range(len(shapes))]
    eager = _run(fn, arrays, backend, scalars, grads)
    compiled = pg.compile(fn)
    for _ in range(3):              # the trace call, then replays
        got = _run(compiled, arrays, backend, scalars, grads)
        _same(got[0], eager[0])
        _same(got[1], eager[1])
    assert compiled.stats.misses == 1 and compiled.stats.hits == 2
    assert compiled.stats.fallbacks == 0


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch as the oracle")
@pytest.mark.parametrize("name", ["W2 chain", "broadcast and scalars", "matmul relu", "softmax",
                                  "where and abs (ties at 0)", "two outputs", "0-d"])
def test_compiled_matches_torch(name):
    import torch
    fn, shapes, scalars = CASES[name]
    arrays = [np.random.default_rng(1).uniform(0.5, 1.5, s) for s in shapes]
    compiled = pg.compile(fn)
    _run(compiled, arrays, "numpy", scalars)
    got = _run(compiled, arrays, "numpy", scalars)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tfn = {"softmax": lambda x: torch.softmax(x, -1) * torch.arange(4.0, dtype=x.dtype),
           "matmul relu": lambda x, w: torch.relu(x @ w).sum(0),
           "where and abs (ties at 0)": lambda x: torch.where(x > 0, x, 0.1 * x).abs()
           + x.clamp(min=0)}.get(name)
    # the other programs use only operators and methods that torch tensors have
    out = fn(*ts, *scalars) if tfn is None else tfn(*ts)
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.sum() for o in outs).backward()
    _same(got[0], [o.detach().numpy() for o in outs])
    _same(got[1], [t.grad.numpy() for t in ts])


if given is not None:
    values = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0,
                                                     max_side=4),
                        elements=st.sampled_from([0.0, -1.0, 1.0, 2.0, 0.5, -3.0]))

    @given(values)
    def test_hypothesis_inputs(x):
        def fn(a):
            return (a.relu() * a + pg.maximum(a, 0.5) - a.abs()).sum() + (a * a).mean()
        compiled = pg.compile(fn)
        eager = _run(fn, [x], "numpy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # the mean of an empty array
            for _ in range(2):
                got = _run(compiled, [x], "numpy")
        _same([np.nan_to_num(v) for v in got[0]], [np.nan_to_num(v) for v in eager[0]])
        _same(got[1], eager[1])


def test_module_and_optimizer_match_eager():
    pg.manual_seed(0)
    net = pg.nn.Sequential(pg.nn.Linear(6, 5), pg.nn.ReLU(), pg.nn.Linear(5, 2))
    twin = pg.nn.Sequential(pg.nn.Linear(6, 5), pg.nn.ReLU(), pg.nn.Linear(5, 2))
    twin.load_state_dict(net.state_dict())
    x = pg.randn(4, 6)
    cnet = pg.compile(net)
    opts = [pg.optim.SGD(m.parameters(), lr=0.1) for m in (net, twin)]
    for _ in range(4):
        for model, opt in zip((cnet, twin), opts):
            loss = model(x).pow(2).sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5)
    assert cnet.stats.misses == 1 and cnet.stats.hits == 3


# -- guards ----------------------------------------------------------------------------------

def test_guards_retrace():
    scale = [2.0]

    def fn(x, s, flag=True):
        return x * s * scale[0] if flag else x - s

    c = pg.compile(fn, cache_size=16)
    x = pg.ones(3, requires_grad=True)
    c(x, 1.0)
    c(x, 1.0)
    assert (c.stats.misses, c.stats.hits) == (1, 1)
    changes = [
        lambda: c(pg.ones(4, requires_grad=True), 1.0),                 # shape
        lambda: c(pg.ones(3, dtype=pg.float64, requires_grad=True), 1.0),  # dtype
        lambda: c(pg.ones(3), 1.0),                                      # requires_grad
        lambda: c(x, 3.0),                                               # a Python scalar
        lambda: c(x, 1.0, flag=False),                                   # a keyword
    ]
    for k, change in enumerate(changes):
        change()
        assert c.stats.misses == 2 + k and c.stats.retraces == 1 + k
    with pg.no_grad():
        out = c(x, 1.0)                                                  # grad mode
    assert not out.requires_grad and c.stats.misses == 7
    assert float(c(x, 3.0)[0]) == 6.0                                    # replayed, right value


def test_closure_scalars_and_captured_tensors():
    k = 2.0
    w = pg.tensor([1.0, 2.0], requires_grad=True)

    def fn(x):
        return x * w * k
    c = pg.compile(fn)
    x = pg.ones(2)
    assert c(x).tolist() == [2.0, 4.0]
    with pg.no_grad():
        w.copy_(pg.tensor([3.0, 4.0]))       # a new value: read again, no retrace
    assert c(x).tolist() == [6.0, 8.0] and c.stats.misses == 1
    k = 10.0                                 # a closure scalar: retrace
    assert c(x).tolist() == [30.0, 40.0] and c.stats.retraces == 1
    w = pg.tensor([1.0, 1.0, 1.0])           # a captured tensor's shape: retrace
    assert c(pg.ones(3)).tolist() == [10.0, 10.0, 10.0]
    w2 = pg.tensor([1.0, 2.0], requires_grad=True)
    c2 = pg.compile(lambda x: (x * w2).sum())
    c2(x).backward()
    c2(x).backward()
    assert w2.grad.tolist() == [2.0, 2.0]    # gradients reach captured tensors


def test_module_eval_retraces():
    net = pg.nn.Sequential(pg.nn.Linear(3, 3), pg.nn.Dropout(0.5))
    c = pg.compile(net)
    net.eval()
    x = pg.ones(2, 3)
    a = c(x)
    net.train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c(x)                                 # dropout draws random numbers: eager
    assert c.stats.misses == 2
    assert any("random" in str(w.message) for w in caught)
    net.eval()
    np.testing.assert_allclose(c(x).detach().numpy(), a.detach().numpy())


def test_cache_is_bounded():
    c = pg.compile(lambda x: x + 1, cache_size=2)
    for n in (1, 2, 3, 1):
        c(pg.ones(n))
    s = c.stats
    assert (s.misses, s.evictions, s.entries) == (4, 2, 2)
    assert set(s.as_dict()) >= {"hits", "misses", "retraces", "fallbacks", "trace_time"}
    assert s.trace_time > 0
    c.reset()
    assert c.stats.entries == 0


# -- what cannot be replayed: one warning, eager results; fullgraph raises ---------------------

def _branch(x):
    return x * 2 if x.sum() > 0 else x * 3


def _item(x):
    return x * x.sum().item()


def _numpy(x):
    return x * float(x.detach().numpy().sum())


def _tolist(x):
    return x * len([v for v in x.tolist() if v > 0])


def _print(x):
    repr(x)
    return x + 1


def _random(x):
    return x + pg.rand(*x.shape)


def _mask(x):
    return x[x > 0].sum()


def _nonzero(x):
    return x[pg.nonzero(x > 0, as_tuple=True)[0]].sum()


def _inplace_arg(x):
    x.add_(1)
    return x * 2


def _copy_into_arg(x):
    x.copy_(x * 3)                  # recorded as for an optimizer's state, but on an input
    return x * 2


def _backward_inside(x):
    y = x.detach().requires_grad_()
    (y * y).sum().backward()
    return x + y.grad


UNTRACEABLE = {"bool": _branch, "item": _item, "numpy": _numpy, "tolist": _tolist,
               "print": _print, "random": _random, "boolean mask": _mask,
               "nonzero": _nonzero, "in-place on an input": _inplace_arg,
               "copy_ into an input": _copy_into_arg,
               "backward inside": _backward_inside}


@pytest.mark.parametrize("name", list(UNTRACEABLE))
def test_untraceable_warns_once_and_runs_eagerly(name):
    fn = UNTRACEABLE[name]
    c = pg.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            x, twin = pg.tensor([1.0, -2.0, 3.0]), pg.tensor([1.0, -2.0, 3.0])
            if name != "random":
                np.testing.assert_allclose(c(x).numpy(), fn(twin).numpy())
                np.testing.assert_allclose(x.numpy(), twin.numpy())
            else:
                c(x)
    ours = [w for w in caught if issubclass(w.category, CompileWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "runs eagerly" in str(ours[0].message)
    assert c.stats.fallbacks == 3 and len(c.stats.reasons) == 1


@pytest.mark.parametrize("name", list(UNTRACEABLE))
def test_fullgraph_raises(name):
    c = pg.compile(UNTRACEABLE[name], fullgraph=True)
    with pytest.raises(UntraceableError, match="fullgraph"):
        c(pg.tensor([1.0, -2.0, 3.0]))


class _Double(pg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return 2 * g


def _hook_inside(x):
    y = x * 3
    y.register_hook(lambda g: g * 10)
    return y


GRAPH_UNTRACEABLE = {
    "custom Function": (lambda x: _Double.apply(x), "Function"),
    "custom Function inside": (lambda x: _Double.apply(x).sin(), "made inside"),
    "hook inside": (_hook_inside, "hook"),
    "leaf made inside": (lambda x: x * pg.ones(3, requires_grad=True), "made inside"),
}


@pytest.mark.parametrize("name", list(GRAPH_UNTRACEABLE))
def test_graph_effects_inside_fall_back_with_eager_gradients(name):
    fn, words = GRAPH_UNTRACEABLE[name]
    c = pg.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            x, twin = (pg.tensor([1.0, -2.0, 3.0], requires_grad=True) for _ in range(2))
            c(x).sum().backward()
            fn(twin).sum().backward()
            np.testing.assert_allclose(x.grad.numpy(), twin.grad.numpy())
    ours = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    assert len(ours) == 1 and words in ours[0], ours


def test_mutating_a_captured_tensor_falls_back():
    buf = pg.zeros(3)

    def fn(x):
        buf.add_(x)
        return buf * 1
    c = pg.compile(fn)
    with pytest.warns(CompileWarning, match="in-place"):
        c(pg.ones(3))
    c(pg.ones(3))
    assert buf.tolist() == [2.0, 2.0, 2.0]


def test_a_tensor_from_an_attribute_falls_back():
    w = pg.ones(3, requires_grad=True)
    (w * 2).sum().backward()

    def sgd_step(x):
        return x - 0.1 * w.grad              # w.grad is no source polygrad can guard
    c = pg.compile(sgd_step)
    with pytest.warns(CompileWarning, match="attribute"):
        c(pg.ones(3))
    w.grad = pg.ones(3) * 5
    assert c(pg.ones(3)).tolist() == [0.5, 0.5, 0.5]


def _training(opt_name, **hyper):
    pg.manual_seed(3)
    net = pg.nn.Sequential(pg.nn.Linear(6, 5), pg.nn.ReLU(), pg.nn.Linear(5, 2))
    opt = getattr(pg.optim, opt_name)(net.parameters(), **hyper)

    def step(x):
        loss = net(x).pow(2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach()
    return net, opt, step


TRAINING = {
    "SGD": ("SGD", {"lr": 0.05}, None),
    "SGD weight decay": ("SGD", {"lr": 0.05, "weight_decay": 0.1}, None),
    "SGD momentum (state)": ("SGD", {"lr": 0.05, "momentum": 0.9}, None),
    "SGD nesterov, dampening 0": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, None),
    "SGD momentum, dampening": ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}, None),
    "Adam (state, step count)": ("Adam", {"lr": 0.01}, None),
    "Adam weight decay, maximize": ("Adam", {"lr": 0.01, "weight_decay": 0.1,
                                             "maximize": True}, None),
    "AdamW": ("AdamW", {"lr": 0.01, "betas": (0.8, 0.9)}, None),
    "Adam amsgrad (copy_)": ("Adam", {"lr": 0.01, "amsgrad": True}, None),
    "RMSprop (Python step count)": ("RMSprop", {"lr": 0.01, "momentum": 0.5}, None),
    "Adagrad (step-dependent lr)": ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}, None),
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_whole_training_step_matches_eager(name):
    opt_name, hyper, falls_back = TRAINING[name]
    net, opt, step = _training(opt_name, **hyper)
    twin, twin_opt, twin_step = _training(opt_name, **hyper)
    c = pg.compile(step)
    x = pg.randn(4, 6)
    had_state = bool(opt.state)             # Adagrad makes its state in __init__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(5):
            if k == 3:                               # a scheduler's change: a retrace
                for o in (opt, twin_opt):
                    o.param_groups[0]["lr"] /= 2
            # the same ops on the same values: equal bit for bit, step by step
            assert c(x).tolist() == twin_step(x).tolist()
            for p, q in zip(net.parameters(), twin.parameters()):
                np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
                assert p.grad is None and q.grad is None
            for s, t in zip(opt.state.values(), twin_opt.state.values()):
                assert s.keys() == t.keys()
                for k in s:
                    if isinstance(s[k], pg.Tensor):
                        np.testing.assert_array_equal(s[k].numpy(), t[k].numpy())
                    else:
                        assert s[k] == t[k], k          # step counts
    ours = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    if falls_back is None:
        # traced at 0 and 3 (the lr), replayed at 1, 2, 4; where step 0 creates the
        # state, it runs eagerly (quietly) and 1 traces
        created = not had_state and bool(opt.state)
        assert not ours, ours
        assert c.stats.hits == 3 - created and c.stats.retraces == 1 + created
    else:
        assert ours and falls_back in ours[0], ours


STATEFUL_VS_TORCH = {
    "SGD momentum": ("SGD", {"lr": 0.1, "momentum": 0.9}),
    "SGD nesterov, weight decay": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True,
                                           "weight_decay": 0.01}),
    "Adam": ("Adam", {"lr": 0.05}),
    "Adam maximize, weight decay": ("Adam", {"lr": 0.05, "maximize": True,
                                             "weight_decay": 0.1}),
    "AdamW": ("AdamW", {"lr": 0.05, "betas": (0.5, 0.6)}),
    "RMSprop centered, momentum": ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.3}),
    "Adagrad lr_decay": ("Adagrad", {"lr": 0.1, "lr_decay": 0.1}),
    "Adam amsgrad": ("Adam", {"lr": 0.05, "amsgrad": True}),
}


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch as the oracle")
@pytest.mark.parametrize("name", list(STATEFUL_VS_TORCH))
def test_compiled_stateful_training_step_matches_torch(name, backend):
    """A whole compiled step with an optimizer that keeps state (momentum buffers, Adam's
    moments and step count), step by step against torch.optim itself."""
    import torch
    opt_name, hyper = STATEFUL_VS_TORCH[name]
    rng = np.random.default_rng(7)
    w0, b0, x0 = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=(4, 6))
    w, b = _t(w0, backend), _t(b0, backend)
    x = _t(x0, backend, grad=False)
    opt = getattr(pg.optim, opt_name)([w, b], **hyper)

    @pg.compile(fullgraph=True)                 # no fallback: every step is the program
    def step(x):
        loss = ((x @ w + b).tanh() ** 2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach()

    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    topt = getattr(torch.optim, opt_name)([tw, tb], **hyper)
    for _ in range(6):
        loss = ((torch.tensor(x0) @ tw + tb).tanh() ** 2).sum()
        loss.backward()
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(_np(step(x)), loss.detach().numpy(), rtol=1e-12)
        for p, q in ((w, tw), (b, tb)):
            np.testing.assert_allclose(_np(p), q.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert step.stats.hits >= 4 and step.stats.fallbacks <= 1


CHANGES_BETWEEN_STEPS = {
    # what changes after step 3, in both runs
    "betas": lambda opt, twin: [o.param_groups[0].__setitem__("betas", (0.5, 0.6))
                                for o in (opt, twin)],
    "state reloaded": lambda opt, twin: [o.load_state_dict(o.state_dict())
                                         for o in (opt, twin)],
    "step count rewound": lambda opt, twin: [s.__setitem__("step", 1) for o in (opt, twin)
                                             for s in o.state.values()],
}


@pytest.mark.parametrize("change", list(CHANGES_BETWEEN_STEPS))
def test_adam_step_follows_changes_to_its_state_and_hyperparameters(change):
    net, opt, step = _training("Adam", lr=0.01)
    twin, twin_opt, twin_step = _training("Adam", lr=0.01)
    c = pg.compile(step, fullgraph=True)
    x = pg.randn(4, 6)
    for k in range(6):
        if k == 3:
            CHANGES_BETWEEN_STEPS[change](opt, twin_opt)
        assert c(x).tolist() == twin_step(x).tolist()
        for p, q in zip(net.parameters(), twin.parameters()):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    assert [s["step"] for s in opt.state.values()] == [s["step"] for s in twin_opt.state.values()]
    assert c.stats.hits >= 2


SCALAR_VIEWS = {
    # numpy's 0-d results are immutable scalars: the engine makes one a 0-d array to take a
    # view of it (the traced value keeps its slot)
    "in backward (det's rule views its gradient)": lambda x: pg.linalg.det(x),
    "in forward": lambda x: (x.sum().reshape(1) * x).sum() * x[0, 0],
}


@pytest.mark.parametrize("name", list(SCALAR_VIEWS))
def test_a_view_of_a_0d_result_replays_with_new_values(name, backend):
    fn = SCALAR_VIEWS[name]
    c = pg.compile(fn, fullgraph=True)
    rng = np.random.default_rng(5)
    for _ in range(3):                  # new values and a new gradient at every call
        a, g = rng.uniform(0.5, 2.0, (3, 3)), float(rng.uniform(-2, 2))
        got, want = _t(a, backend), _t(a, backend)
        out, ref = c(got), fn(want)
        out.backward(_t(g, backend, grad=False)), ref.backward(_t(g, backend, grad=False))
        _same([_np(out), _np(got.grad)], [_np(ref), _np(want.grad)])
    assert c.stats.hits == 2 and c.stats.fallbacks == 0


def test_manual_in_place_update_falls_back():
    w = pg.ones(3, requires_grad=True)

    def step(x):
        (w * x).sum().backward()
        with pg.no_grad():
            w.sub_(0.1 * w.grad)                     # no optimizer: the lr is not guarded
        w.grad = None
    c = pg.compile(step)
    with pytest.warns(CompileWarning, match="optimizer"):
        c(pg.ones(3))
    c(pg.ones(3))
    assert w.tolist() == pytest.approx([0.8, 0.8, 0.8])


def _loss_and_backward(net):
    def step(x, w):
        loss = (net(x) * w).sin().sum()
        loss.backward()
        return loss.detach()
    return step


def test_backward_inside_matches_eager():
    pg.manual_seed(1)
    net = pg.nn.Sequential(pg.nn.Linear(3, 4), pg.nn.Tanh(), pg.nn.Linear(4, 2))
    step = _loss_and_backward(net)
    c = pg.compile(step)
    x = pg.randn(5, 3)
    for k in range(3):
        w = pg.randn(5, 2, requires_grad=True)
        wt = pg.tensor(w.detach().numpy(), requires_grad=True)
        net.zero_grad()
        got = c(x, w)
        grads = [p.grad.numpy().copy() for p in net.parameters()]
        if k == 2:                   # .grad accumulates across calls, as eager's does
            c(x, w)
            grads = [g / 2 for g in (p.grad.numpy() for p in net.parameters())]
        net.zero_grad()
        want = step(x, wt)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        for g, p in zip(grads, net.parameters()):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-7)
        if k < 2:
            np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert c.stats.fallbacks == 0 and c.stats.misses == 1


def test_backward_inside_beyond_the_leaves_falls_back():
    net = pg.nn.Linear(3, 2)
    c = pg.compile(_loss_and_backward(net))
    w, wt = pg.ones(4, 2, requires_grad=True), pg.ones(4, 2, requires_grad=True)
    with pytest.warns(CompileWarning, match="beyond"):
        c(pg.ones(4, 3), w * 2)                  # a non-leaf input: eager goes on to w
    c.fn(pg.ones(4, 3), wt * 2)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy())
    c2 = pg.compile(_loss_and_backward(net))
    x = pg.ones(4, 3)
    c2(x, pg.ones(4, 2))
    net.weight.register_hook(lambda g: g * 0)     # a hook on a leaf: retrace, then eager
    net.zero_grad()
    with pytest.warns(CompileWarning, match="hook"):
        c2(x, pg.ones(4, 2))
    assert float(net.weight.grad.abs().sum()) == 0.0


def test_bad_arguments():
    with pytest.raises(TypeError, match="function or an nn.Module"):
        pg.compile(3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cache_size"):
            pg.compile(lambda x: x, cache_size=bad)
    c = pg.compile(lambda x, o: x + 1)
    with pytest.warns(CompileWarning, match="cannot be guarded"):
        assert c(pg.ones(2), object()).tolist() == [2.0, 2.0]


# -- the graph around a compiled call --------------------------------------------------------

def test_hooks_accumulation_and_retain_graph():
    c = pg.compile(lambda x, y: (x * y).exp())
    x = pg.tensor([0.0, 1.0], requires_grad=True)
    y = pg.tensor([2.0, 3.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    out = c(x, y)
    out.register_hook(lambda g: g * 2)
    out.sum().backward(retain_graph=True)
    out.sum().backward()
    expected = (2 * 2 * y * (x * y).exp()).detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.sum().backward()
    assert out.grad_fn.name() == "CompiledBackward"


def test_create_graph_through_a_compiled_call():
    c = pg.compile(lambda x: (x ** 3).sum())
    for _ in range(2):
        x = pg.tensor([1.0, 2.0], requires_grad=True)
        (g,) = pg.autograd.grad(c(x), [x], create_graph=True)
        g.sum().backward()
        assert g.tolist() == [3.0, 12.0] and x.grad.tolist() == [6.0, 12.0]


@pytest.mark.parametrize("op", ["sign", "floor"])
def test_create_graph_through_a_constant_gradient(op):
    # the gradient is a constant of the program (zeros): a Tensor all the same, as eager's
    c = pg.compile(lambda x: getattr(pg, op)(x) * 3)
    x = pg.tensor([1.5, -2.0], requires_grad=True)
    grads = []
    for fn in (c, c, lambda x: getattr(pg, op)(x) * 3):
        (g,) = pg.autograd.grad(fn(x), [x], grad_outputs=pg.ones(2), create_graph=True)
        grads.append(g)
    assert all(isinstance(g, pg.Tensor) for g in grads)
    assert grads[1].tolist() == grads[2].tolist() == [0.0, 0.0]


def test_only_one_of_two_outputs_used():
    c = pg.compile(lambda x: (x * 2, x * 3))
    for _ in range(2):
        x = pg.ones(2, requires_grad=True)
        a, _ = c(x)
        a.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]


def test_decorator_forms_and_methods():
    @pg.compile
    def f(x):
        return x + 1

    @pg.compile(fullgraph=True)
    def g(x):
        return x * 2

    class M(pg.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = pg.nn.Parameter(pg.ones(2))

        @pg.compile
        def forward(self, x):
            return x * self.w

    m = M()
    assert f(pg.ones(1)).tolist() == [2.0] and g(pg.ones(1)).tolist() == [2.0]
    m(pg.ones(2)).sum().backward()
    m(pg.ones(2)).sum().backward()
    assert m.w.grad.tolist() == [2.0, 2.0]


PROFILED = {
    "chain": lambda x: (x * 2).sin().sum(),
    "broadcast, two uses": lambda x: (x[:, None] * x - x.exp()).mean(),
    "whole step": None,          # forward, backward, SGD momentum in one program
}


@pytest.mark.parametrize("name", list(PROFILED))
def test_profiler_shows_each_compiled_call_with_its_kernels(name):
    """One row per compiled call; its children are the replayed kernels, the ops that the
    eager profile of the same call shows (the oracle), each with its kernel time; the
    backward of a compiled call is a CompiledBackward row with its kernels."""
    from polygrad.autograd.profiler import profile
    x = pg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    fn = PROFILED[name]
    if fn is None:
        opt = pg.optim.SGD([x], lr=0.1, momentum=0.9)

        def fn(y):
            loss = (x * y).sin().sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.detach()
        arg = pg.ones(3)
    else:
        arg = x
    c = pg.compile(fn)
    for _ in range(2):                       # state made, traced
        out = c(arg)
    with profile() as eager:
        fn(arg)
    hits = c.stats.hits
    with profile() as prof:
        for _ in range(2):
            out = c(arg)
            if out.requires_grad:
                out.backward()
    assert c.stats.hits == hits + 2
    regions = [e for e in prof.function_events if e.name.startswith("compiled:")]
    assert len(regions) == 2
    (entry,) = c._cache.values()
    want = sorted(e.name for e in eager.function_events if e.kind == "cpu_op")
    for r in regions:
        # a garbage collection that ran inside the region is a row of its own ([python gc])
        kids = [k for k in r.children or [] if k.name != "[python gc]"]
        assert kids and all(k.kernel is not None for k in kids)
        # the rows are the kernels the program ran, in order ...
        assert [k.name for k in kids] == [op.prim.name for op in entry.fwd_prog.ops]
        if PROFILED[name] is not None:   # ... each one the eager call ran (repeats run once)
            assert {k.name for k in kids} <= set(want) and len(kids) <= len(want)
    back = [e for e in prof.function_events if e.name == "CompiledBackward"]
    assert len(back) == (2 if out.requires_grad else 0)
    assert all(b.children and all(k.kernel is not None for k in b.children
                                  if k.name != "[python gc]") for b in back)


def test_backend_lower_hook():
    backend = pg.get_backend("numpy")
    seen = []

    def lower(program):
        seen.append(program)
        if program.name == "forward":
            return None                      # keep the replay

        def run(*arrays):
            run.calls += 1
            return program.function(*arrays)
        run.calls = 0
        lower.run = run
        return run
    old, backend.lower = backend.lower, lower
    try:
        c = pg.compile(lambda x: (x * x).sum())
        for _ in range(2):
            x = pg.tensor([1.0, 2.0], requires_grad=True)
            c(x).backward()
            assert x.grad.tolist() == [2.0, 4.0]
    finally:
        backend.lower = old
    programs = {p.name: p for p in seen}
    assert sorted(programs) == ["backward", "forward"] and len(seen) == 2
    assert [op.prim.name for op in programs["forward"].ops] == ["multiply", "sum"]
    assert lower.run.calls == 2


def test_backward_inside_on_every_backend(backend):
    w = _t([0.5, -1.0, 2.0], backend)
    wt = _t([0.5, -1.0, 2.0], backend)

    def step(x, w):
        loss = (x * w).sin().sum() + (w * w).mean()
        loss.backward()
        return loss.detach()
    c = pg.compile(step)
    x = _t([1.0, 2.0, 3.0], backend, grad=False)
    for _ in range(3):
        got = c(x, w)
        want = step(x, wt)
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)
        np.testing.assert_allclose(_np(w.grad), _np(wt.grad), rtol=1e-6)   # accumulated
    assert c.stats.hits == 2 and c.stats.fallbacks == 0


def test_an_error_in_the_trace_leaves_nothing_behind():
    calls = []
    w = pg.nn.Parameter(pg.ones(2))

    def fn(x):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first call fails")
        return x * w
    c = pg.compile(fn)
    with pytest.raises(ValueError, match="first call fails"):
        c(pg.ones(2))
    assert type(w) is pg.nn.Parameter and c.stats.entries == 0
    assert c(pg.ones(2)).tolist() == [1.0, 1.0] and c(pg.ones(2)).tolist() == [1.0, 1.0]
    assert c.stats.hits == 1


def test_nested_compiled_calls():
    inner = pg.compile(lambda x: x.exp() * 2)
    outer = pg.compile(lambda x: inner(x).sum())
    for _ in range(3):
        x = pg.tensor([0.0, 1.0], requires_grad=True)
        outer(x).backward()
        np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([0.0, 1.0]), rtol=1e-6)
    assert outer.stats.hits == 2 and inner.stats.calls == 1   # recorded by the outer trace


def test_concurrent_replays():
    import threading
    f = pg.compile(lambda x, y: (x * y + 1).sum())
    xs = [pg.tensor(np.arange(5.0) * i) for i in range(6)]
    f(xs[0], xs[1])
    errors = []

    def run(i):
        for _ in range(100):
            got = float(f(xs[i], xs[(i + 1) % 6]))
            if got != float((xs[i] * xs[(i + 1) % 6] + 1).sum()):
                errors.append((i, got))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and f.stats.misses == 1


def test_a_hook_added_later_on_a_trained_parameter_retraces():
    net, _, step = _training("SGD", lr=0.05)
    twin, _, twin_step = _training("SGD", lr=0.05)
    c = pg.compile(step)
    x = pg.randn(4, 6)
    c(x), twin_step(x)
    c(x), twin_step(x)
    for m in (net, twin):
        m[0].weight.register_hook(lambda g: g * 0)       # freezes the first layer's weight
    with pytest.warns(CompileWarning, match="hook"):
        c(x)
    twin_step(x)
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_a_grad_read_is_guarded():
    w = pg.ones(2, requires_grad=True)

    def fn(x):
        return x * 2 if w.grad is None else x * w.grad
    c = pg.compile(fn)
    assert c(pg.ones(2)).tolist() == [2.0, 2.0]
    w.grad = pg.tensor([5.0, 7.0])
    with pytest.warns(CompileWarning, match="attribute"):     # now it reads the gradient
        assert c(pg.ones(2)).tolist() == [5.0, 7.0]
    assert c.stats.misses == 2


STATE_CHANGES = {
    "requires_grad_ on an argument": (lambda x: x.requires_grad_() * 2, "requires_grad_"),
    ".data assignment": (lambda x: _assign_data(x), "data"),
}


def _assign_data(x):
    x.data = x * 3
    return x + 1


@pytest.mark.parametrize("name", list(STATE_CHANGES))
def test_state_changes_on_arguments_fall_back(name):
    fn, words = STATE_CHANGES[name]
    c = pg.compile(fn)
    with pytest.warns(CompileWarning, match=words):
        got = c(pg.ones(2))
    assert got.tolist() == fn(pg.ones(2)).tolist()


class _Running(pg.nn.Module):
    """A running mean kept as a buffer (as batch norm keeps its statistics)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", pg.zeros(3))

    def forward(self, x):
        if self.training:
            self.mean = 0.9 * self.mean + 0.1 * x.mean(axis=0)     # state between calls
        return x - self.mean


def test_module_state_in_training_falls_back_and_eval_compiles():
    net = _Running()
    c = pg.compile(net)
    x = pg.randn(8, 3)
    with pytest.warns(CompileWarning, match="outlives"):
        c(x)
    c(x)
    np.testing.assert_allclose(net.mean.numpy(), 0.19 * x.mean(axis=0).numpy(), rtol=1e-5)
    net.eval()
    for _ in range(2):
        np.testing.assert_allclose(c(x).numpy(), (x - net.mean).numpy())
    assert c.stats.hits == 1


def test_a_view_read_after_an_optimizer_write_falls_back():
    def make():
        pg.manual_seed(5)
        net = pg.nn.Linear(3, 2)
        opt = pg.optim.SGD(net.parameters(), lr=0.5)

        def step(x):
            wt = net.weight.T                        # a view, taken before the update
            (x @ wt).sum().backward()
            opt.step()
            opt.zero_grad()
            return (x @ wt).sum().detach()           # eager: it sees the updated weight
        return step
    step, twin = make(), make()
    c = pg.compile(step)
    x = pg.ones(4, 3)
    with pytest.warns(CompileWarning, match="view"):
        got = c(x)
    np.testing.assert_allclose(got.numpy(), twin(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(c(x).numpy(), twin(x).numpy(), rtol=1e-6)


def test_every_primitive_compiled_matches_eager():
    """The conformance kit's opt-in ``compiled`` check: every primitive's case traced and
    replayed by polygrad.compile, value and VJP, against the same op run eagerly."""
    from polygrad_conformance.runner import Session, execute
    backends = ["numpy"] + (["torch"] if HAS_TORCH else [])
    session = Session(backends, dtypes=["float64", "float32"], compiled=True)
    records = [execute(c) for c in session.checks() if c.check == "compiled"]
    bad = [f"{r['id']}: {r['outcome']}: {r['reason']}" for r in records
           if r["outcome"] not in ("pass", "skip", "unsupported")]
    assert not bad, "\n".join(bad)
    assert sum(r["outcome"] == "pass" for r in records) > 200
