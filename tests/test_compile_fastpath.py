"""polygrad.compile's hit path (``compiled._fast_path``, one generated function per entry)
and the programs' peepholes: after the hit path is warm, every property a guard covers is
changed in turn, and each call must give the eager call's value (the oracle: the same
function run without compile) and retrace where the guard says so; an optimizer update
fused into the backend's ``axpy_`` kernel gives the eager step's parameters bit for bit,
copy-on-write included; numpy's lowered ``sum`` gives numpy's ``sum``.
"""

import importlib.util
import math

import numpy as np
import pytest

import polygrad as pg

HAS_TORCH = importlib.util.find_spec("torch") is not None
SCALE = 2.0                  # a global scalar the function below reads


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    assert (np.signbit(a) == np.signbit(b)).all()      # -0.0 and -inf are not 0.0 and inf


def _np(t):
    return np.asarray(pg.get_backend(t.backend).to_numpy(t.detach().array))


class _Case:
    """A change made once the hit path is warm, and whether the call after it retraces
    (None: either is right, e.g. a NaN scalar, or a call that runs eagerly)."""

    def __init__(self, change, retrace=True):
        self.change, self.retrace = change, retrace


def _guard_cases():
    cases = {}
    cases["argument shape"] = _Case(lambda s: s.call(pg.ones(4, requires_grad=True), 1.0))
    cases["argument dtype"] = _Case(
        lambda s: s.call(pg.ones(3, dtype=pg.float64, requires_grad=True), 1.0))
    cases["argument requires_grad, a new tensor"] = _Case(lambda s: s.call(pg.ones(3), 1.0))
    cases["argument requires_grad, in place"] = _Case(
        lambda s: s.call(s.x.requires_grad_(False), 1.0))
    cases["argument's buffer swapped (.data), other shape"] = _Case(
        lambda s: (setattr(s.x, "data", pg.ones(5)), s.call(s.x, 1.0))[1])
    cases["argument's buffer swapped (.data), same shape: new values"] = _Case(
        lambda s: (setattr(s.x, "data", pg.full((3,), 4.0)), s.call(s.x, 1.0))[1],
        retrace=False)
    cases["scalar value"] = _Case(lambda s: s.call(s.x, 2.5))
    cases["scalar type, equal value: int for float"] = _Case(lambda s: s.call(s.x, 1))
    cases["scalar type, equal value: bool for float"] = _Case(lambda s: s.call(s.x, True))
    cases["scalar 0.0 -> -0.0"] = _Case(lambda s: (s.call(s.x, 0.0), s.call(s.x, -0.0))[1])
    cases["scalar nan -> nan"] = _Case(
        lambda s: (s.call(s.x, math.nan), s.call(s.x, float("nan")))[1], retrace=None)
    cases["closure scalar"] = _Case(lambda s: (s.box.__setitem__(0, 3.0), s.call(s.x, 1.0))[1])
    cases["global scalar"] = _Case(lambda s: (s.set_global(5.0), s.call(s.x, 1.0))[1])
    cases["captured tensor's values (read again)"] = _Case(
        lambda s: (s.set_w(pg.tensor([7.0, 8.0, 9.0])), s.call(s.x, 1.0))[1], retrace=False)
    cases["captured tensor's shape"] = _Case(
        lambda s: (s.set_w(pg.ones(1)), s.call(s.x, 1.0))[1])
    cases["captured tensor's dtype"] = _Case(
        lambda s: (s.set_w(pg.ones(3, dtype=pg.float64)), s.call(s.x, 1.0))[1])
    cases["captured tensor's requires_grad"] = _Case(
        lambda s: (s.set_w(pg.ones(3, requires_grad=True)), s.call(s.x, 1.0))[1])
    cases["grad mode"] = _Case(lambda s: s.call_no_grad(s.x, 1.0))
    cases["two arguments one tensor"] = _Case(lambda s: s.call(s.x, 1.0, s.x))
    cases["another argument count"] = _Case(lambda s: s.call(s.x, 1.0, pg.ones(3), 2.0))
    cases["a keyword argument"] = _Case(lambda s: s.call(s.x, s=1.0))
    cases["a list for a tensor"] = _Case(lambda s: s.call([s.x], 1.0), retrace=None)
    if HAS_TORCH:
        cases["argument backend"] = _Case(
            lambda s: s.call(pg.ones(3, requires_grad=True, backend="torch"), 1.0))
    return cases


GUARD_CASES = _guard_cases()


class _State:
    def __init__(self):
        self.box = [2.0]
        box = self.box
        w = pg.tensor([1.0, 2.0, 3.0])

        def set_w(new):
            nonlocal w
            w = new

        def fn(x, s, y=None, k=1.0):
            if isinstance(x, list):
                x = x[0]
            scale = box[0] * SCALE
            v = w if w.backend == x.backend else w.to(x.backend)     # (that falls back)
            out = (x * s) * scale * (v if v.shape == x.shape else v.sum())
            return out if y is None else out + y * k
        self.fn, self.set_w = fn, set_w
        self.compiled = pg.compile(fn, cache_size=64)
        self.x = pg.ones(3, requires_grad=True)

    def set_global(self, v):
        global SCALE
        SCALE = v

    def call(self, *args, **kwargs):
        got = self.compiled(*args, **kwargs)
        want = self.fn(*args, **kwargs)
        _same(_np(got), _np(want))
        assert got.requires_grad == want.requires_grad
        return got

    def call_no_grad(self, *args):
        with pg.no_grad():
            return self.call(*args)


@pytest.mark.parametrize("name", list(GUARD_CASES))
def test_every_guard_holds_on_the_hit_path(name):
    global SCALE
    SCALE = 2.0
    case = GUARD_CASES[name]
    s = _State()
    for _ in range(3):
        s.call(s.x, 1.0)
    stats = s.compiled.stats
    assert (stats.misses, stats.hits) == (1, 2)
    assert s.compiled._hot is not None          # the hit path is warm
    misses = stats.misses
    case.change(s)
    if case.retrace is True:
        assert stats.misses > misses
    elif case.retrace is False:
        assert stats.misses == misses
    # and back: the first entry is found again, with its guards
    hits = stats.hits
    if "requires_grad, in place" in name:
        s.x.requires_grad_(True)
    if "global" in name:
        SCALE = 2.0
    if "closure" in name:
        s.box[0] = 2.0
    if "captured" in name:
        s.set_w(pg.tensor([1.0, 2.0, 3.0]))
    if ".data" in name:
        s.x.data = pg.ones(3)
    s.call(s.x, 1.0)
    s.call(s.x, 1.0)
    assert stats.hits >= hits + 1


K = 2.0


def _helper(x):
    return x * K                 # a global of a helper: baked into the program


def test_a_helpers_global_scalar_is_guarded():
    c = pg.compile(lambda x: _helper(x) + 1)
    x = pg.ones(2)
    global K
    try:
        assert c(x).tolist() == c(x).tolist() == [3.0, 3.0]
        K = 5.0
        assert c(x).tolist() == [6.0, 6.0] and c.stats.retraces == 1
    finally:
        K = 2.0


class _Scaled(pg.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.w = pg.nn.Parameter(pg.full((2,), k))

    @pg.compile
    def forward(self, x, dtype):
        return (x * self.w).astype(dtype)


def test_a_method_and_a_dtype_argument_on_the_hit_path():
    a, b = _Scaled(2.0), _Scaled(3.0)
    x = pg.ones(2)
    compiled = _Scaled.forward
    for _ in range(3):
        assert a(x, pg.float32).tolist() == [2.0, 2.0]
    assert compiled._hot is not None and compiled.stats.hits == 2
    assert b(x, pg.float32).tolist() == [3.0, 3.0]          # another module: its own entry
    assert a(x, pg.float64).dtype == pg.float64             # another dtype: retraced
    assert a(x, pg.float32).tolist() == [2.0, 2.0]
    assert compiled.stats.misses == 3


def test_signed_zero_scalars_are_different_constants():
    c = pg.compile(lambda x, s: x / s)
    x = pg.ones(2)
    for s, want in [(0.0, np.inf), (0.0, np.inf), (-0.0, -np.inf), (-0.0, -np.inf),
                    (0.0, np.inf)]:
        assert _np(c(x, s)).tolist() == [want, want]
    assert c.stats.misses == 2


def test_hit_path_notices_a_hook_added_to_a_trained_leaf():
    w = pg.tensor([1.0, 2.0], requires_grad=True)

    def step(w):
        loss = (w * w).sum()
        loss.backward()
        return loss.detach()
    c = pg.compile(step)
    for _ in range(3):
        w.grad = None
        c(w)
    assert w.grad.tolist() == [2.0, 4.0] and c.stats.hits == 2
    seen = []
    w.register_hook(lambda g: seen.append(g.tolist()))
    w.grad = None
    c(w)                                      # a hook: the hit path misses, eager runs it
    assert seen == [[2.0, 4.0]] and w.grad.tolist() == [2.0, 4.0]
    assert c.stats.misses >= 2


def test_hit_path_accumulates_into_an_existing_grad():
    w = pg.tensor([1.0, 2.0], requires_grad=True)
    twin = pg.tensor([1.0, 2.0], requires_grad=True)

    def step(w):
        loss = (w * w * w).sum()
        loss.backward()
        return loss.detach()
    c = pg.compile(step)
    for _ in range(4):
        c(w)
        step(twin)
        _same(_np(w.grad), _np(twin.grad))
    assert c.stats.hits == 3


# -- the optimizer update fused into axpy_ ----------------------------------------------------

def _net(backend, seed=0):
    pg.manual_seed(seed)
    return pg.nn.Sequential(pg.nn.Linear(7, 5, backend=backend), pg.nn.ReLU(),
                            pg.nn.Linear(5, 3, backend=backend))


@pytest.mark.parametrize("backend", ["numpy"] + (["torch"] if HAS_TORCH else []))
@pytest.mark.parametrize("opt", ["SGD", "SGD momentum"])
def test_fused_update_matches_the_eager_step_bit_for_bit(backend, opt):
    nets = [_net(backend), _net(backend)]
    kw = {"lr": 0.05, "momentum": 0.9} if opt == "SGD momentum" else {"lr": 0.05}
    opts = [pg.optim.SGD(n.parameters(), **kw) for n in nets]
    x = pg.randn(4, 7, backend=backend)
    y = pg.randn(4, 3, backend=backend)

    def make(net, optimizer):
        def step(x, y):
            loss = (net(x) - y).pow(2).sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.detach()
        return step
    steps = [make(n, o) for n, o in zip(nets, opts)]
    c = pg.compile(steps[0])
    for _ in range(5):
        _same(_np(c(x, y)), _np(steps[1](x, y)))
        for p, q in zip(nets[0].parameters(), nets[1].parameters()):
            _same(_np(p), _np(q))
    assert c.stats.hits >= 2
    if opt == "SGD":
        entry = next(iter(c._cache.values()))
        assert [k for k, *_ in entry.effects].count("axpy") == 4


def test_fused_update_keeps_values_saved_by_an_outstanding_graph():
    """A graph built before the step saved the parameter: backward through it after the
    (in-place) update sees the values it recorded, as after the eager step."""
    results = []
    for compiled in (True, False):
        net = _net("numpy", seed=3)
        optimizer = pg.optim.SGD(net.parameters(), lr=0.1)
        x, y = pg.randn(2, 7), pg.randn(2, 3)

        def step(x, y, net=net, optimizer=optimizer):
            loss = (net(x) - y).pow(2).sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.detach()
        f = pg.compile(step) if compiled else step
        f(x, y)
        f(x, y)
        w = net[0].weight
        held = (w * w).sum()                    # saves w's memory
        before = _np(w).copy()
        f(x, y)                                  # writes w in place
        held.backward()
        _same(_np(w.grad), 2 * before)
        optimizer.zero_grad()
        results.append([_np(p) for p in net.parameters()])
    for a, b in zip(*results):
        _same(a, b)


def test_a_second_read_of_the_update_is_not_fused():
    """``v = p + m`` read again after the write (returned) stays a plain write."""
    p = pg.tensor([1.0, 2.0], requires_grad=True)
    optimizer = pg.optim.SGD([p], lr=0.5)

    def step(x):
        loss = (p * x).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return p * 1.0
    c = pg.compile(step)
    twin_p = pg.tensor([1.0, 2.0], requires_grad=True)
    twin_opt = pg.optim.SGD([twin_p], lr=0.5)

    def twin(x):
        loss = (twin_p * x).sum()
        loss.backward()
        twin_opt.step()
        twin_opt.zero_grad()
        return twin_p * 1.0
    for _ in range(3):
        x = pg.tensor([3.0, -1.0])
        _same(_np(c(x)), _np(twin(x)))
        _same(_np(p), _np(twin_p))


# -- numpy's lowered sum ------------------------------------------------------------------------

SUMS = {
    "all": lambda x: pg.sum(x),
    "axis 0": lambda x: pg.sum(x, axis=0),
    "axis -1 keepdims": lambda x: pg.sum(x, axis=-1, keepdims=True),
    "axes (0, 1)": lambda x: pg.sum(x, axis=(0, 1)),
    "dtype float64": lambda x: pg.sum(x, dtype=pg.float64),
}


SUM_OPTIONS = {"all": {}, "axis 0": {"axis": 0}, "axis -1 keepdims": {"axis": -1, "keepdims": True},
               "axes (0, 1)": {"axis": (0, 1)}, "dtype float64": {"dtype": np.float64}}


@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8", "bool", "float64"])
@pytest.mark.parametrize("name", list(SUMS))
def test_lowered_numpy_sum_is_numpys_sum(name, dtype):
    fn = SUMS[name]
    if dtype == "bool" and name == "dtype float64":
        pytest.skip("not a case: the dtype option is for numbers")
    a = np.arange(24).reshape(2, 3, 4) % 5
    x = pg.from_numpy(a.astype(dtype), backend="numpy")
    c = pg.compile(fn)
    for _ in range(3):
        got = c(x)
    _same(_np(got), _np(fn(x)))
    want = np.sum(a.astype(dtype), **SUM_OPTIONS[name])     # numpy's own sum: the oracle
    _same(_np(got), want)
    entry = next(iter(c._cache.values()))
    assert entry.fwd is not entry.fwd_prog.function      # the lowered form ran


LOWERED = {     # numpy's wrappers the numpy backend's lower calls as what they wrap
    "reshape": (lambda x: pg.reshape(x, (4, -1)) + 0, lambda a: np.reshape(a, (4, -1)) + 0,
                (2, 3, 4)),
    "reshape of a 0-d result (a numpy scalar)": (
        lambda x: pg.reshape(x * 2, (1,)) + 0, lambda a: np.reshape(a * 2, (1,)) + 0, ()),
    "matrix_transpose": (lambda x: pg.matrix_transpose(x) * 1,
                         lambda a: np.matrix_transpose(a) * 1, (2, 3, 4)),
    "sum of a 0-d result": (lambda x: pg.sum(x * 2) + 0, lambda a: np.sum(a * 2) + 0, ()),
}


@pytest.mark.parametrize("name", list(LOWERED))
def test_lowered_numpy_wrappers_are_numpys(name):
    fn, oracle, shape = LOWERED[name]
    a = (np.arange(math.prod(shape), dtype=np.float32) - 3).reshape(shape)
    x = pg.from_numpy(a, backend="numpy")
    c = pg.compile(fn)
    for _ in range(3):
        got = c(x)
    _same(_np(got), np.asarray(oracle(a)))
    entry = next(iter(c._cache.values()))
    assert entry.fwd is not entry.fwd_prog.function and c.stats.hits == 2
