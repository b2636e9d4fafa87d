"""Random numbers: one counter-based stream (Philox4x64-10) for every backend.

The bits are checked against oracles we did not write: Random123's known-answer vectors
and numpy's own Philox bit generator, at hypothesis-chosen keys and counters. Every
creation function must give bitwise the same numbers on every installed backend for a
seed; the numbers must look like their distributions (moments, a chi-square by hand,
Kolmogorov-Smirnov through scipy); the native generators (``native=True``) must give
what the libraries themselves give; a model initialised and trained from one seed on
numpy and on torch must agree from the first step.
"""

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import polygrad as pg
from polygrad.graph.creation import bernoulli, randperm
from polygrad.plugins.random import Generator, default_generator, philox4x64

HAS_TORCH = importlib.util.find_spec("torch") is not None
SEEDS = st.integers(-(2 ** 63), 2 ** 64 - 1)
SHAPES = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


@pytest.fixture(scope="module")
def backends():
    """Every backend that can run here: the built-ins, and the example plugins if installed
    (registered in-process; conftest keeps entry points out)."""
    names = [n for n in ("numpy", "torch", "cupy") if n in pg.backends()
             and pg.get_backend(n).unavailable_reason() is None]
    plugins = []
    for module, name in (("polygrad_strict", "strict"), ("polygrad_dask", "dask")):
        if importlib.util.find_spec(module) is not None:
            pg.plugins.register_plugin(__import__(module), name=name)
            plugins.append(name)
    try:
        yield names + plugins
    finally:
        for name in plugins:
            pg.plugins.unregister_plugin(name)


# -- the bits: Philox4x64-10 against oracles ---------------------------------------------------

# Random123's kat_vectors for philox4x64 (counter words, key words -> output words)
Z, F = 0, 2 ** 64 - 1
PI_CTR = (0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89)
PI_KEY = (0x452821e638d01377, 0xbe5466cf34e90c6c)
KAT = [
    (7, (Z,) * 4, (Z, Z),
     (0x5dc8ee6268ec62cd, 0x139bc570b6c125a0, 0x84d6deb4fb65f49e, 0xaff7583376d378c2)),
    (7, (F,) * 4, (F, F),
     (0x071dd84367903154, 0x48e2bbdc722b37d1, 0x6afa9890bb89f76c, 0x9194c8d8ada56ac7)),
    (7, PI_CTR, PI_KEY,
     (0x513a366704edf755, 0xf05d9924c07044d3, 0xbef2cb9cbea74c6c, 0x8db948de4caa1f8a)),
    (10, (Z,) * 4, (Z, Z),
     (0x16554d9eca36314c, 0xdb20fe9d672d0fdc, 0xd7e772cee186176b, 0x7e68b68aec7ba23b)),
    (10, (F,) * 4, (F, F),
     (0x87b092c3013fe90b, 0x438c3c67be8d0224, 0x9cc7d7c69cd777b6, 0xa09caebf594f0ba0)),
    (10, PI_CTR, PI_KEY,
     (0xa528f45403e61d95, 0x38c72dbd566e9788, 0xa5a1610e72fd18b5, 0x57bd43b5e52b7fe6)),
]


@pytest.mark.parametrize("rounds, counter, key, expected", KAT)
def test_philox_known_answers_of_random123(rounds, counter, key, expected):
    ctr = tuple(np.array([c], dtype=np.uint64) for c in counter)
    out = philox4x64(np, ctr, key, rounds=rounds)
    assert tuple(int(w[0]) for w in out) == expected


@settings(max_examples=60)
@given(seed=SEEDS, offset=st.integers(0, 2 ** 62), n=st.integers(0, 41))
def test_stream_is_numpys_philox(seed, offset, n):
    """Block i of a stream is Philox(key=(seed mod 2**64, 0), counter=offset + i); numpy's
    Philox increments its counter before each block, hence the - 1."""
    g = Generator().set_state({"algorithm": "philox4x64-10", "seed": seed % 2 ** 64,
                               "offset": offset})
    ours = g.random_raw(n)
    oracle = np.random.Philox(key=seed % 2 ** 64, counter=(offset - 1) % 2 ** 256)
    np.testing.assert_array_equal(ours, oracle.random_raw(n))
    assert g.get_state()["offset"] == offset + -(-n // 4)     # each draw takes whole blocks


def test_each_draw_starts_a_fresh_block_and_the_stream_continues():
    g = Generator().manual_seed(5)
    a, b = g.random_raw(3), g.random_raw(5)
    whole = Generator().manual_seed(5).random_raw(12)
    np.testing.assert_array_equal(a, whole[:3])
    np.testing.assert_array_equal(b, whole[4:9])


# -- the same numbers on every backend ---------------------------------------------------------

def _draw(kind, shape, dtype, backend):
    if kind == "rand":
        return pg.rand(shape, dtype=dtype, backend=backend)
    if kind == "randn":
        return pg.randn(shape, dtype=dtype, backend=backend)
    if kind == "randint":
        return pg.randint(-3, 1000, shape, backend=backend)
    if kind == "randperm":
        return randperm(math.prod(shape), backend=backend)
    if kind == "bernoulli":
        return bernoulli(pg.full(shape, 0.3, dtype=dtype, backend=backend))
    if kind == "dropout":
        return pg.nn.Dropout(0.5)(pg.ones(shape, dtype=dtype, backend=backend))
    if kind == "randn_like":
        return pg.randn_like(pg.zeros(shape, dtype=dtype, backend=backend))
    if kind == "normal_":
        return pg.nn.init.normal_(pg.empty(shape, dtype=dtype, backend=backend), 1.0, 2.0)
    raise AssertionError(kind)


KINDS = ["rand", "randn", "randint", "randperm", "bernoulli", "dropout", "randn_like",
         "normal_"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=15)
@given(seed=SEEDS, shape=SHAPES)
def test_same_seed_same_numbers_on_every_backend(backends, kind, dtype, seed, shape):
    draws = {}
    for b in backends:
        pg.manual_seed(seed)
        out = _draw(kind, shape, getattr(pg, dtype), b)
        draws[b] = out.numpy()
        assert out.backend == b and tuple(out.shape) == (tuple(shape) if kind != "randperm"
                                                         else (math.prod(shape),))
    ref = draws["numpy"]
    for b, got in draws.items():
        assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes(), b


def test_one_stream_whatever_the_backend_order(backends):
    """Draws on different backends come from one stream, in the order they are made."""
    other = backends[-1]
    pg.manual_seed(11)
    a = [pg.randn(4, backend="numpy").numpy(), pg.randn(4, backend=other).numpy()]
    pg.manual_seed(11)
    b = [pg.randn(4, backend=other).numpy(), pg.randn(4, backend="numpy").numpy()]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])


# -- the numbers look like their distributions -------------------------------------------------

N = 200_000


def _chi2_uniform(u, bins=20):
    """Pearson's statistic of ``u`` in equal bins of [0, 1) and the 0.9999 quantile of
    chi2(bins - 1) (Wilson-Hilferty), by hand."""
    counts = np.bincount(np.minimum((u * bins).astype(int), bins - 1), minlength=bins)
    expected = len(u) / bins
    stat = float(((counts - expected) ** 2 / expected).sum())
    k, z = bins - 1, 3.719                                    # z of 0.9999
    return stat, k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


MOMENTS = [   # kind, dtype, mean, variance
    ("rand", "float64", 0.5, 1 / 12), ("rand", "float32", 0.5, 1 / 12),
    ("randn", "float64", 0.0, 1.0), ("randn", "float32", 0.0, 1.0),
]


@pytest.mark.parametrize("seed", [0, 1, 2 ** 63])
@pytest.mark.parametrize("kind, dtype, mean, var", MOMENTS)
def test_moments_and_range(seed, kind, dtype, mean, var):
    pg.manual_seed(seed)
    x = _draw(kind, (N,), getattr(pg, dtype), "numpy").numpy().astype(np.float64)
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / N)
    assert abs(x.var() - var) < 5 * var * math.sqrt(2 / N) * (2 if kind == "randn" else 1)
    if kind == "rand":
        assert x.min() >= 0.0 and x.max() < 1.0
        stat, limit = _chi2_uniform(x)
        assert stat < limit
    else:    # Box-Muller's largest value is sqrt(-2 log 2**-53)
        assert np.abs(x).max() <= math.sqrt(106 * math.log(2))


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("kind, dtype, law", [("rand", "float64", "uniform"),
                                              ("rand", "float32", "uniform"),
                                              ("randn", "float64", "norm"),
                                              ("randn", "float32", "norm")])
def test_kolmogorov_smirnov(seed, kind, dtype, law):
    stats = pytest.importorskip("scipy.stats")
    pg.manual_seed(seed)
    x = _draw(kind, (N,), getattr(pg, dtype), "numpy").numpy()
    assert stats.kstest(x, law).pvalue > 1e-4


def test_randint_is_uniform_over_its_range_chi_square():
    stats = pytest.importorskip("scipy.stats")
    pg.manual_seed(3)
    x = pg.randint(-2, 5, (70_000,)).numpy()
    counts = np.bincount(x + 2, minlength=7)
    assert x.min() == -2 and x.max() == 4 and len(counts) == 7
    assert stats.chisquare(counts).pvalue > 1e-4


def test_randperm_puts_each_value_anywhere_alike():
    pg.manual_seed(4)
    first = np.array([randperm(5).numpy()[0] for _ in range(5000)])
    counts = np.bincount(first, minlength=5)
    stat = float(((counts - 1000) ** 2 / 1000).sum())
    assert stat < 23.5                         # chi2(4)'s 0.9999 quantile
    assert sorted(randperm(9).tolist()) == list(range(9))


def test_bernoulli_follows_its_probabilities():
    pg.manual_seed(8)
    p = pg.tensor([0.0, 0.25, 1.0], dtype=pg.float64)
    draws = np.stack([bernoulli(p).numpy() for _ in range(4000)])
    assert (draws[:, 0] == 0).all() and (draws[:, 2] == 1).all()
    assert abs(draws[:, 1].mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 4000)


def test_uniform_of_a_narrow_float_never_reaches_one():
    """Each dtype gets exactly its mantissa's worth of bits: float32 from a float64 draw
    could round up to 1.0, ours cannot."""
    u = pg.rand(100_000, dtype=pg.float32, generator=Generator().manual_seed(0)).numpy()
    assert u.dtype == np.float32 and u.max() < 1.0
    scaled = u.astype(np.float64) * 2 ** 24
    np.testing.assert_array_equal(scaled, np.round(scaled))   # k * 2**-24 exactly


# -- the Generator: torch's seeding API, and bad input -----------------------------------------

def test_generator_api_as_torch():
    g = Generator()
    assert g.manual_seed(3) is g and g.initial_seed() == 3
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2 ** 64
    assert Generator().manual_seed(-1).initial_seed() == 2 ** 64 - 1
    if HAS_TORCH:
        import torch
        assert torch.Generator().manual_seed(-1).initial_seed() == 2 ** 64 - 1
    assert pg.manual_seed(12) is default_generator and default_generator.initial_seed() == 12


def test_state_round_trip_replays_the_stream():
    g = Generator().manual_seed(21)
    pg.rand(3, generator=g)
    state = g.get_state()
    a = pg.randn(5, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(pg.randn(5, generator=g).numpy(), a)
    pg.manual_seed(21)          # the default generator is not touched by another one
    b = pg.rand(3).numpy()
    np.testing.assert_array_equal(b, pg.rand(3, generator=Generator().manual_seed(21)).numpy())


@pytest.mark.parametrize("fn", ["rand", "randn", "randint", "rand_like", "randn_like",
                                "randperm", "bernoulli"])
def test_every_random_function_takes_torchs_generator_keyword(fn):
    """The keyword torch 2.13 has for each, and a draw from it that replays."""
    args = {"rand": (3,), "randn": (3,), "randint": (0, 9, (3,)), "randperm": (5,)}
    like = {"rand_like", "randn_like", "bernoulli"}
    ours = getattr(pg, fn, None) or {"randperm": randperm, "bernoulli": bernoulli}[fn]
    call = (lambda g: ours(pg.full((3,), 0.5), generator=g)) if fn in like else (
        lambda g: ours(*args[fn], generator=g))
    np.testing.assert_array_equal(call(Generator().manual_seed(1)).numpy(),
                                  call(Generator().manual_seed(1)).numpy())
    if HAS_TORCH:
        import inspect

        import torch
        assert "generator" in (getattr(torch, fn).__doc__ or "").split("\n", 2)[1]
        assert "generator" in inspect.signature(ours).parameters


def test_generator_argument_and_default_stream_are_independent():
    pg.manual_seed(2)
    x = pg.rand(4).numpy()
    pg.manual_seed(2)
    pg.rand(4, generator=Generator().manual_seed(99))
    np.testing.assert_array_equal(pg.rand(4).numpy(), x)


BAD_SEEDS = [(1.5, TypeError, "int"), ("0", TypeError, "int"), (None, TypeError, "int"),
             (2 ** 64, ValueError, "2\\*\\*64"), (-(2 ** 63) - 1, ValueError, "2\\*\\*63")]


@pytest.mark.parametrize("seed, error, match", BAD_SEEDS)
def test_bad_seeds_are_refused_and_change_nothing(seed, error, match):
    g = Generator().manual_seed(4)
    with pytest.raises(error, match=match):
        g.manual_seed(seed)
    with pytest.raises(error, match=match):
        pg.manual_seed(seed)
    assert g.get_state() == {"algorithm": "philox4x64-10", "seed": 4, "offset": 0}


BAD_STATES = [
    ("not a dict", TypeError), ({"seed": 1, "offset": 0}, TypeError),
    ({"algorithm": "mt19937", "seed": 1, "offset": 0}, ValueError),
    ({"algorithm": "philox4x64-10", "seed": -1, "offset": 0}, ValueError),
    ({"algorithm": "philox4x64-10", "seed": 1, "offset": 0.5}, ValueError),
]


@pytest.mark.parametrize("state, error", BAD_STATES)
def test_bad_states_are_refused_and_change_nothing(state, error):
    g = Generator().manual_seed(4)
    g.random_raw(9)
    before = g.get_state()
    with pytest.raises(error):
        g.set_state(state)
    assert g.get_state() == before


BAD_CALLS = [
    (lambda g: pg.rand(2, dtype=pg.int64, generator=g), TypeError, "floating"),
    (lambda g: pg.randn(2, dtype=pg.complex64, generator=g), TypeError, "floating"),
    (lambda g: pg.rand(2, generator=np.random.default_rng(0)), TypeError, "polygrad.Generator"),
    (lambda g: pg.randint(5, 5, (2,), generator=g), ValueError, "low < high"),
    (lambda g: pg.randint(0, 2.5, (2,), generator=g), TypeError, "int"),
    (lambda g: pg.randint(0, 2 ** 64, (2,), generator=g), ValueError, "int64"),
    (lambda g: randperm(-1, generator=g), ValueError, "n >= 0"),
    (lambda g: bernoulli(pg.tensor([0.5, 1.5]), generator=g), ValueError, r"\[0, 1\]"),
    (lambda g: bernoulli(pg.tensor([1, 0]), generator=g), TypeError, "floating"),
    (lambda g: bernoulli(pg.tensor([0.5]), 2.0, generator=g), ValueError, r"\[0, 1\]"),
    (lambda g: bernoulli([0.5], generator=g), TypeError, "Tensor"),
]


@pytest.mark.parametrize("call, error, match", BAD_CALLS)
def test_bad_draws_are_refused_before_drawing(call, error, match):
    g = Generator().manual_seed(6)
    with pytest.raises(error, match=match):
        call(g)
    assert g.get_state()["offset"] == 0


def test_randint_torch_forms_and_dtypes():
    pg.manual_seed(0)
    a = pg.randint(10, (3,))
    pg.manual_seed(0)
    b = pg.randint(0, 10, (3,))
    assert a.tolist() == b.tolist() and a.dtype == pg.int64
    assert pg.randint(0, 3, (2,), dtype=pg.int32).dtype == pg.int32
    full = pg.randint(-2 ** 63, 2 ** 63 - 1, (1000,)).numpy()    # (almost) all of int64
    assert (full < 0).any() and (full > 0).any()


# -- the native generators, on request ---------------------------------------------------------

@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("kind", ["rand", "randn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_torch_gives_torchs_own_numbers(kind, dtype):
    import torch
    pg.manual_seed(5, native=True)
    try:
        ours = _draw(kind, (3, 4), getattr(pg, dtype), "torch").numpy()
    finally:
        pg.manual_seed(0)
    torch.manual_seed(5)
    theirs = getattr(torch, kind)(3, 4, dtype=getattr(torch, dtype)).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kind, method", [("rand", "random"), ("randn", "standard_normal")])
def test_native_numpy_gives_numpys_own_numbers(kind, method):
    g = Generator(native=True).manual_seed(9)
    ours = getattr(pg, kind)(5, dtype=pg.float64, generator=g, backend="numpy").numpy()
    theirs = getattr(np.random.default_rng(9), method)(5)
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(RuntimeError, match="native"):
        g.get_state()


def test_native_mode_lasts_until_the_next_manual_seed():
    pg.manual_seed(1, native=True)
    assert default_generator.native
    pg.manual_seed(1)
    assert not default_generator.native


# -- a model trained on two backends from one seed ---------------------------------------------

def _train(backend, steps=5):
    pg.manual_seed(0)
    with pg.use_backend(backend):
        model = pg.nn.Sequential(pg.nn.Linear(4, 8, dtype=pg.float64), pg.nn.Tanh(),
                                 pg.nn.Linear(8, 1, dtype=pg.float64))
        x = pg.randn(16, 4, dtype=pg.float64)
        y = pg.randn(16, 1, dtype=pg.float64)
        start = [p.detach().numpy().copy() for p in model.parameters()]
        opt = pg.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return start, [p.detach().numpy() for p in model.parameters()], losses


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_model_trained_on_numpy_and_torch_agrees_from_the_first_step():
    start_np, end_np, loss_np = _train("numpy")
    start_t, end_t, loss_t = _train("torch")
    for a, b in zip(start_np, start_t):
        assert a.tobytes() == b.tobytes()                        # the same initial weights
    np.testing.assert_allclose(loss_t, loss_np, rtol=0, atol=1e-12)
    for a, b in zip(end_np, end_t):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    assert loss_np[-1] < loss_np[0]


# -- in-place random fills (Tensor.normal_, uniform_, bernoulli_, exponential_, random_) ------

FILLS = {
    "normal_": lambda t: t.normal_(1.0, 2.0),
    "uniform_": lambda t: t.uniform_(-1.0, 3.0),
    "bernoulli_": lambda t: t.bernoulli_(0.3),
    "exponential_": lambda t: t.exponential_(2.0),
    "random_": lambda t: t.random_(0, 10),
}


@pytest.mark.parametrize("name", sorted(FILLS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_fills_are_the_same_on_every_backend(name, dtype):
    got = {}
    for b in ("numpy", "torch"):
        pg.manual_seed(7)
        t = pg.zeros((3, 4), dtype=dtype, backend=b)
        before = t._version
        out = FILLS[name](t)
        assert out is t and t._version == before + 1 and t.dtype.name == dtype
        got[b] = np.array(t.tolist())
    np.testing.assert_array_equal(got["numpy"], got["torch"])


def test_in_place_fills_follow_torch_in_the_graph():
    w = pg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.normal_()
    assert w.tolist() == [1.0, 1.0, 1.0]
    with pg.no_grad():
        w.uniform_()                        # as nn.init does
    h = w * 2
    h.normal_()
    assert h.grad_fn.name() == "NormalBackward0"
    h.sum().backward()
    assert w.grad.tolist() == [0.0, 0.0, 0.0]   # torch: the old values get a zero gradient
