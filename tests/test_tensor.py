"""Tensor API: construction, printing, conversions, requires_grad, detach, in-place ops and
copy-on-write, on numpy and torch (the `backend` fixture)."""

import copy
import math
import pickle

import numpy as np
import pytest

import polygrad as pg


def _np(t):
    return t.detach().numpy()


# -- construction and attributes ---------------------------------------------------------------

CONSTRUCTORS = [
    ("zeros", lambda **kw: pg.zeros(2, 3, **kw), np.zeros((2, 3))),
    ("zeros_tuple", lambda **kw: pg.zeros((2, 3), **kw), np.zeros((2, 3))),
    ("ones", lambda **kw: pg.ones(2, 3, **kw), np.ones((2, 3))),
    ("full", lambda **kw: pg.full((2, 2), 1.5, **kw), np.full((2, 2), 1.5)),
    ("eye", lambda **kw: pg.eye(4, 5, **kw), np.eye(4, 5)),
    ("arange", lambda **kw: pg.arange(0.0, 3.0, 0.5, **kw), np.arange(0.0, 3.0, 0.5)),
    ("linspace", lambda **kw: pg.linspace(0, 1, steps=5, **kw), np.linspace(0, 1, 5)),
    ("tensor", lambda **kw: pg.tensor([[1.0, 2.0], [3.0, 4.0]], **kw), np.array([[1., 2], [3, 4]])),
]


@pytest.mark.parametrize("name,make,expected", CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
def test_constructors_take_backend_dtype_and_requires_grad(name, make, expected, backend):
    t = make(dtype=pg.float64, requires_grad=True, backend=backend)
    assert t.backend == backend and t.dtype == pg.float64 and t.requires_grad and t.is_leaf
    np.testing.assert_allclose(_np(t), expected)
    assert t.device == pg.device("cpu")


def test_default_float_dtype_is_float32_like_torch(backend):
    assert pg.tensor([1.0, 2.0]).dtype == pg.float32
    assert pg.ones(2).dtype == pg.float32
    assert pg.tensor([1, 2]).dtype == pg.int64
    assert pg.rand(2).dtype == pg.float32


def test_random_numbers_are_seeded(backend):
    pg.manual_seed(42)
    a = _np(pg.randn(4))
    pg.manual_seed(42)
    b = _np(pg.randn(4))
    np.testing.assert_array_equal(a, b)
    u = _np(pg.rand(1000))
    assert 0.0 <= u.min() and u.max() < 1.0


def test_attributes_and_python_protocols(backend):
    t = pg.arange(6, dtype=pg.float32).reshape(2, 3)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.size() == (2, 3)
    assert t.size(1) == 3 and len(t) == 2 and t.numel() == 6 and t.dim() == 2
    assert [row.tolist() for row in t] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert t.T.shape == (3, 2) and t.mT.shape == (3, 2)
    assert t[1, 2].item() == 5.0 and float(t[0, 1]) == 1.0 and int(t[1, 0]) == 3
    assert bool(pg.tensor(1.0)) and not bool(pg.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    with pytest.raises(TypeError, match="0-d"):
        len(pg.tensor(1.0))
    assert (t > 2).dtype == pg.bool and (t > 2).sum().item() == 3


def test_repr_like_torch(backend):
    assert repr(pg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(pg.tensor([0.5, 0.25], requires_grad=True)) == \
        "tensor([0.5000, 0.2500], requires_grad=True)"
    assert repr(pg.tensor([1.0], dtype=pg.float64)) == "tensor([1.], dtype=polygrad.float64)"
    a = pg.ones(2, requires_grad=True)
    assert repr(a * 2) == "tensor([2., 2.], grad_fn=<MulBackward0>)"
    assert repr(pg.ones(2, 3)) == "tensor([[1., 1., 1.],\n        [1., 1., 1.]])"
    assert repr(pg.tensor(25.0)) == "tensor(25.)"
    assert repr(pg.tensor([1.0, 2000.0, 0.001])) == "tensor([1.0000e+00, 2.0000e+03, 1.0000e-03])"


# -- requires_grad, detach, data -----------------------------------------------------------------

def test_qs2_requires_grad_underscore_starts_tracking(backend):
    x = pg.ones(3)
    assert not (x * 2).requires_grad
    assert x.requires_grad_(True) is x
    y = x * 2
    assert y.requires_grad and y.grad_fn is not None


def test_yt7_toggle_requires_grad_on_a_leaf(backend):
    a = pg.ones(2, 3, requires_grad=True)
    b1 = 2 * a
    assert b1.requires_grad and "grad_fn=<MulBackward0>" in repr(b1)
    a.requires_grad = False
    b2 = 2 * a
    assert not b2.requires_grad and b2.grad_fn is None and "grad_fn" not in repr(b2)


def test_requires_grad_errors(backend):
    y = pg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf variables"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="floating point"):
        pg.tensor([1, 2]).requires_grad_()


def test_yt10_detach_shares_values_but_not_history(backend):
    x = pg.rand(5, requires_grad=True)
    y = x.detach()
    np.testing.assert_array_equal(_np(x), _np(y))
    assert not y.requires_grad and y.grad_fn is None
    assert repr(x).endswith("requires_grad=True)") and "requires_grad" not in repr(y)


def test_qs3_no_grad_and_detach(backend):
    x = pg.ones(5)
    w = pg.randn(5, 3, requires_grad=True)
    z = pg.matmul(x, w)
    assert z.requires_grad
    with pg.no_grad():
        z = pg.matmul(x, w)
    assert not z.requires_grad
    assert not pg.matmul(x, w).detach().requires_grad


def test_yt4_numpy_conversion(backend):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        a.numpy()
    with pytest.raises(RuntimeError, match="detach"):
        np.asarray(a)
    assert np.asarray(a.detach()).shape == (25,)
    assert isinstance(pg.sin(a).detach().numpy(), np.ndarray)


def test_item_and_tolist_work_on_tensors_that_require_grad(backend):
    a = pg.tensor([1.5], requires_grad=True)
    assert a.item() == 1.5 and a.tolist() == [1.5]


def test_copy_pickle_and_deepcopy(backend):
    a = pg.tensor([1.0, 2.0], requires_grad=True)
    b = copy.deepcopy(a)
    assert b.requires_grad and b.is_leaf and b is not a
    b.detach().mul_(0)
    np.testing.assert_array_equal(_np(a), [1.0, 2.0])
    c = pickle.loads(pickle.dumps(a))
    assert c.backend == backend and c.requires_grad and c.tolist() == [1.0, 2.0]


# -- in-place ops --------------------------------------------------------------------------------

def test_yt11_in_place_on_a_leaf_that_requires_grad_raises(backend):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True)
    before = _np(a).copy()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an "
                                           "in-place operation"):
        pg.sin_(a)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        a[0] = 1.0
    with pytest.raises(RuntimeError, match="leaf Variable"):
        a += 1
    np.testing.assert_array_equal(_np(a), before)
    assert a._version == 0


def test_in_place_on_a_leaf_under_no_grad_writes_in_place(backend):
    w = pg.ones(3, requires_grad=True)
    buffer = w.array
    with pg.no_grad():
        w.sub_(0.5)
        w.mul_(2)
    assert w.array is buffer and w._version == 2
    np.testing.assert_array_equal(_np(w), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("n", [7, 1 << 20])        # the fused path takes large arrays
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_add_with_alpha_matches_y_plus_alpha_x_in_place(backend, n, dtype):
    rng = np.random.default_rng(0)
    y0, x0 = rng.standard_normal(n), rng.standard_normal(n)
    y = pg.from_numpy(y0, dtype=getattr(pg, dtype))
    x = pg.from_numpy(x0, dtype=getattr(pg, dtype))
    buffer = y._st.array
    with pg.no_grad():
        y.add_(x, alpha=-1e-3)
        y.sub_(x, alpha=0.5)
    assert y._st.array is buffer                        # written in place, no rebinding
    expected = y0.astype(dtype)
    expected += np.float64(-1e-3).astype(dtype) * x0.astype(dtype)
    expected -= np.float64(0.5).astype(dtype) * x0.astype(dtype)
    eps = np.finfo(dtype).eps          # torch fuses the multiply-add: one rounding fewer
    np.testing.assert_allclose(_np(y), expected, rtol=4 * eps, atol=4 * eps)


def test_numpy_add_with_alpha_allocates_no_full_size_temporary():
    tracemalloc = pytest.importorskip("tracemalloc")
    y, x = pg.zeros(1 << 22, backend="numpy"), pg.ones(1 << 22, backend="numpy")   # 16 MiB
    with pg.no_grad():
        y.add_(x, alpha=0.25)                             # warm-up
        tracemalloc.start()
        try:
            y.add_(x, alpha=0.25)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 1 << 20, f"add_(alpha=) allocated {peak} bytes"
    assert float(y[0]) == 0.5


def test_yt11_copy_on_write_keeps_backward_right(backend):
    """Where torch raises 'modified by an inplace operation', polygrad copies first."""
    x = pg.tensor([0.1, 0.2, 0.3], dtype=pg.float64, requires_grad=True)
    y = x * 2
    z = pg.sin(y)                # saves y
    y.mul_(100)                  # would destroy what sin's backward needs
    y.sin_()
    z.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.cos(2 * np.array([0.1, 0.2, 0.3])))


def test_copy_on_write_for_untracked_writes_to_a_saved_buffer(backend):
    w = pg.ones(3, dtype=pg.float64, requires_grad=True)
    loss = (w * w).sum()         # saves w's buffer
    buffer = w.array
    with pg.no_grad():
        w.sub_(1.0)              # the graph still needs the old values: it gets a copy,
    if w._backend.shares_memory is not None:    # then the write goes into w's memory
        assert w.array is buffer
    loss.backward()
    np.testing.assert_allclose(_np(w.grad), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(_np(w), [0.0, 0.0, 0.0])


def test_detached_alias_sees_in_place_writes(backend):
    x = pg.ones(3)
    y = x.detach()
    x.add_(1)
    np.testing.assert_array_equal(_np(y), [2.0, 2.0, 2.0])


def test_in_place_on_a_non_leaf_is_recorded(backend):
    x = pg.tensor([1.0, 2.0], dtype=pg.float64, requires_grad=True)
    y = x * 1
    y.mul_(x)                    # y = x * x
    y.add_(3)
    y.backward(pg.ones(2, dtype=pg.float64))
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])
    assert y.grad_fn is not None and y._version == 2


def test_setitem_is_differentiable(backend):
    x = pg.zeros(4, dtype=pg.float64, requires_grad=True)
    v = pg.tensor([2.0, 3.0], dtype=pg.float64, requires_grad=True)
    y = x * 1
    y[1:3] = v * v
    (y * pg.arange(4, dtype=pg.float64)).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [0.0, 0.0, 0.0, 3.0])
    np.testing.assert_allclose(_np(v.grad), [2 * 2.0 * 1, 2 * 3.0 * 2])


def test_failing_in_place_op_leaves_the_tensor_unchanged(backend):
    t = pg.ones(2, 3)
    before = _np(t).copy()
    with pytest.raises((ValueError, RuntimeError)):
        t.add_(pg.ones(4))
    np.testing.assert_array_equal(_np(t), before)


def test_zero_and_fill(backend):
    t = pg.ones(3)
    t.fill_(7.0)
    assert t.tolist() == [7.0, 7.0, 7.0]
    t.zero_()
    assert t.tolist() == [0.0, 0.0, 0.0]


# -- torch-style aliases ------------------------------------------------------------------------

ALIASES = [
    ("t", lambda x: x.t(), lambda a: a.T),
    ("view", lambda x: x.view(3, 2), lambda a: a.reshape(3, 2)),
    ("mean_dim", lambda x: x.mean(dim=1), lambda a: a.mean(1)),
    ("sum_keepdim", lambda x: x.sum(dim=0, keepdim=True), lambda a: a.sum(0, keepdims=True)),
    ("norm", lambda x: x.norm(), lambda a: np.linalg.norm(a)),
    ("exp", lambda x: x.exp(), np.exp),
    ("pow", lambda x: x.pow(2), lambda a: a ** 2),
    ("unsqueeze", lambda x: x.unsqueeze(0), lambda a: a[None]),
    ("flatten", lambda x: x.flatten(), lambda a: a.ravel()),
    ("transpose", lambda x: x.transpose(0, 1), lambda a: a.T),
    ("clamp", lambda x: x.clamp(min=1.0), lambda a: np.maximum(a, 1.0)),
    ("max_dim", lambda x: x.max(dim=1).values, lambda a: a.max(1)),
    ("cat", lambda x: pg.cat([x, x], dim=1), lambda a: np.concatenate([a, a], 1)),
    ("neg", lambda x: -x, lambda a: -a),
    ("rpow", lambda x: 2 ** x, lambda a: 2.0 ** a),
    ("rsub", lambda x: 1 - x, lambda a: 1 - a),
    ("rtruediv", lambda x: 1 / (x + 1), lambda a: 1 / (a + 1)),
]


@pytest.mark.parametrize("name,f,ref", ALIASES, ids=[a[0] for a in ALIASES])
def test_torch_aliases(name, f, ref, backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3) / 3
    np.testing.assert_allclose(_np(f(pg.asarray(host, backend=backend))), ref(host), rtol=1e-12)
