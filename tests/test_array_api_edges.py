"""polygrad.ops at the edges the official array-api-tests suite found (issue 13): empty
shapes, 0-d tensors, complex data, dtypes a backend lacks.

Every case runs on numpy, torch and array-api-strict (the polygrad-strict plugin) and is
compared with the raw library underneath, or with the standard's own table as
array-api-strict implements it, or with torch: polygrad must add no failure to its backend.
"""

import importlib.util
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import polygrad
import polygrad.ops as pg
from polygrad.base.dtypes import DTYPES

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_STRICT = importlib.util.find_spec("polygrad_strict") is not None
HAS_DASK = importlib.util.find_spec("polygrad_dask") is not None
BACKENDS = (["numpy"] + (["torch"] if HAS_TORCH else [])
            + (["strict"] if HAS_STRICT else []))
STANDARD = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float32", "float64", "complex64", "complex128"]


@pytest.fixture(scope="module")
def _plugins():
    """The strict and dask plugins, registered in-process (conftest keeps entry points out)."""
    names = []
    for name, installed in (("strict", HAS_STRICT), ("dask", HAS_DASK)):
        if installed:
            module = importlib.import_module(f"polygrad_{name}")
            polygrad.plugins.register_plugin(module, name=name)
            names.append(name)
    try:
        yield
    finally:
        for name in names:
            polygrad.plugins.unregister_plugin(name)


@pytest.fixture(params=BACKENDS)
def xb(request, _plugins):
    """(backend name, the raw library's namespace), with the backend as the default."""
    with polygrad.use_backend(request.param):
        yield request.param, polygrad.plugins.get_backend(request.param).xp


def _host(x):
    if isinstance(x, polygrad.Tensor):
        return np.asarray(x._backend.to_numpy(x._st.array))
    owner = polygrad.plugins.owner_of(x)
    return np.asarray(x if owner is None else owner.to_numpy(x))     # numpy's 0-d: scalars


def _same(ours, raw):
    """Same shape, dtype name and values as the raw library's result."""
    assert tuple(ours.shape) == tuple(raw.shape)
    assert ours.dtype.name == str(raw.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(_host(ours), _host(raw), rtol=1e-5, atol=1e-6)


# -- repr ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_TORCH, reason="torch is the oracle")
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0), (2, 0, 3), (1, 0, 0)])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "float64"])
def test_repr_of_a_zero_size_tensor_is_torchs(xb, shape, dtype):
    import torch
    ours = repr(pg.zeros(shape, dtype=getattr(pg, dtype)))
    assert ours == repr(torch.zeros(shape, dtype=getattr(torch, dtype))).replace("torch.",
                                                                                 "polygrad.")


# -- creation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fill", [1 + 2j, -0.5j, complex(float("inf"), 1)])
def test_full_keeps_the_imaginary_part(xb, fill):
    name, xp = xb
    out = pg.full((2,), fill)
    assert out.dtype is pg.__array_namespace_info__().default_dtypes()["complex floating"]
    np.testing.assert_array_equal(_host(out), _host(xp.full((2,), fill)))
    assert polygrad.full((3,), fill).dtype is polygrad.complex64        # torch.full's


@pytest.mark.skipif(not HAS_TORCH, reason="torch is the oracle")
def test_torch_style_full_of_complex_matches_torch():
    import torch
    for fill in (1 + 2j, 3j):
        ours, theirs = polygrad.full((2, 2), fill), torch.full((2, 2), fill)
        assert ours.dtype.name == str(theirs.dtype).rsplit(".", 1)[-1]
        np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())


@pytest.mark.parametrize("obj", [0j, [0j, 1], [[1.5j]], 2 + 0j])
def test_asarray_of_complex_python_data_is_the_default_complex(xb, obj):
    default = pg.__array_namespace_info__().default_dtypes()["complex floating"]
    out = pg.asarray(obj)
    assert out.dtype is default
    np.testing.assert_array_equal(_host(out), np.asarray(obj))


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_the_default_complex_dtype_follows_the_default_float(xb, default):
    old = polygrad.get_default_dtype()
    polygrad.set_default_dtype(getattr(polygrad, default))
    try:
        defaults = pg.__array_namespace_info__().default_dtypes()
        want = {"float32": pg.complex64, "float64": pg.complex128}[default]
        assert defaults["real floating"] is getattr(pg, default)
        assert defaults["complex floating"] is want
        assert pg.asarray(0j).dtype is want and pg.full((1,), 1j).dtype is want
        assert pg.asarray(1.5).dtype is defaults["real floating"]
    finally:
        polygrad.set_default_dtype(old)


def test_asarray_of_0d_tensors_stacks_them_in_the_graph(xb):
    name, xp = xb
    a = pg.asarray([[1.0, 2.0], [3.0, 4.0]]).requires_grad_(True)
    raw = xp.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=xp.float32)
    _same(pg.asarray([a[0, 0], a[1, 1]]), xp.stack([raw[0, 0], raw[1, 1]]))
    nested = pg.asarray([[a[0, 1], 5.0], [a[1, 0], a[0, 1]]])
    np.testing.assert_array_equal(_host(nested), [[2.0, 5.0], [3.0, 2.0]])
    nested.sum().backward()
    np.testing.assert_array_equal(_host(a.grad), [[0.0, 2.0], [1.0, 0.0]])
    assert pg.asarray([a[0, 0], a[1, 1]], dtype=pg.float64).dtype is pg.float64


# -- linalg -------------------------------------------------------------------------------------

_COMPLEX = [[1 + 1j, 2.0, 0.5j], [3.0, 4j, 1.0], [0.0, 1 - 1j, 2.0]]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_svd_and_eigh_of_a_complex_matrix_give_real_values(xb, dtype):
    name, xp = xb
    x = pg.asarray(_COMPLEX, dtype=getattr(pg, dtype))
    raw = xp.asarray(_COMPLEX, dtype=getattr(xp, dtype))
    u, s, vh = pg.linalg.svd(x)
    _same(s, xp.linalg.svd(raw)[1])
    _same(pg.linalg.svdvals(x), xp.linalg.svdvals(raw))
    np.testing.assert_allclose(_host(u * pg.astype(s, x.dtype)[..., None, :] @ vh), _COMPLEX,
                               atol=1e-5)
    h = x + pg.conj(pg.matrix_transpose(x))
    rh = raw + xp.conj(xp.matrix_transpose(raw))
    _same(pg.linalg.eigh(h).eigenvalues, xp.linalg.eigh(rh)[0])
    _same(pg.linalg.eigvalsh(h), xp.linalg.eigvalsh(rh))


@pytest.mark.parametrize("shape", [(0, 3, 3), (0, 3, 2), (0, 2, 3), (2, 0, 3, 2), (3, 0, 0)])
@pytest.mark.parametrize("fn", ["svd full", "svd reduced", "svdvals", "qr reduced",
                                "qr complete", "eigh", "pinv", "inv", "det"])
def test_linalg_of_an_empty_batch_has_the_raw_librarys_shapes(xb, shape, fn):
    name, xp = xb
    kind, _, mode = fn.partition(" ")
    if kind in ("eigh", "inv", "det") and shape[-1] != shape[-2]:
        pytest.skip("square matrices only")
    opts = ({"full_matrices": mode == "full"} if kind == "svd" else
            {"mode": mode} if kind == "qr" else {})
    raw = getattr(xp.linalg, kind)(xp.zeros(shape), **opts)
    ours = getattr(pg.linalg, kind)(pg.zeros(shape, dtype=pg.float64), **opts)
    raws = raw if isinstance(raw, tuple) else (raw,)
    ourss = ours if isinstance(ours, tuple) else (ours,)
    assert [tuple(o.shape) for o in ourss] == [tuple(r.shape) for r in raws]


def test_pinv_and_matrix_rank_take_an_array_rtol(xb):
    name, xp = xb
    data = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    raw = xp.asarray(data, dtype=xp.float64)
    x = pg.asarray(data, dtype=pg.float64)
    for rtol in (1e-3, 0.5):
        _same(pg.linalg.pinv(x, rtol=pg.asarray(rtol, dtype=pg.float64)),
              xp.linalg.pinv(raw, rtol=xp.asarray(rtol, dtype=xp.float64)))
        _same(pg.linalg.matrix_rank(x, rtol=pg.asarray(rtol, dtype=pg.float64)),
              xp.linalg.matrix_rank(raw, rtol=xp.asarray(rtol, dtype=xp.float64)))


# -- the array object ---------------------------------------------------------------------------

def test_dlpack_has_the_2024_12_signature(xb):
    name, xp = xb
    sig = inspect.signature(polygrad.Tensor.__dlpack__)
    assert [(p.name, p.kind, p.default) for p in sig.parameters.values()] == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        *[(n, inspect.Parameter.KEYWORD_ONLY, None)
          for n in ("stream", "max_version", "dl_device", "copy")]]
    x = pg.asarray([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.from_dlpack(x, copy=True), [1.0, 2.0, 3.0])
    assert x.__dlpack__(max_version=(1, 0), copy=False) is not None
    with pytest.raises(TypeError):
        x.__dlpack__(None)                     # stream is keyword-only


@pytest.mark.parametrize("xb", BACKENDS, indirect=True)
def test_0d_integer_tensors_as_slice_bounds(xb):
    name, xp = xb
    x = pg.arange(6)
    raw = xp.arange(6)
    lo, hi, step = pg.asarray(1), pg.asarray(5), pg.asarray(2)
    _same(x[lo:hi:step], raw[1:5:2])
    _same(x[pg.asarray(2)], raw[2])


# -- dtypes -------------------------------------------------------------------------------------

def _strict_or_none(fn, *args):
    try:
        return fn(*args)
    except TypeError:
        return None


@pytest.mark.skipif(importlib.util.find_spec("array_api_strict") is None,
                    reason="array-api-strict is the standard's promotion table")
def test_result_type_and_can_cast_follow_the_standards_table(xb):
    import array_api_strict as s
    bad = []
    for a in STANDARD:
        for b in STANDARD:
            want = _strict_or_none(s.result_type, getattr(s, a), getattr(s, b))
            if want is not None:
                got = pg.result_type(getattr(pg, a), getattr(pg, b)).name
                if got != str(want).rsplit(".", 1)[-1]:
                    bad.append(f"result_type({a}, {b}) = {got}, the standard says {want}")
            if pg.can_cast(getattr(pg, a), getattr(pg, b)) != s.can_cast(getattr(s, a),
                                                                            getattr(s, b)):
                bad.append(f"can_cast({a}, {b})")
    assert not bad, bad


def _works(xp, name):
    """Whether the raw library has dtype ``name`` and runs the basic ops of its kind on it."""
    dt = getattr(xp, name, None)
    if dt is None:
        return False
    kind = DTYPES[name].kind
    try:
        a = xp.asarray([1, 0], dtype=dt)
        xp.equal(a, a), xp.concat([a, a]), xp.reshape(a, (2, 1))
        if kind == "bool":
            xp.logical_and(a, a)
        else:
            xp.add(a, a), xp.multiply(a, a), xp.sum(a)
        if kind not in ("bool", "complex floating"):
            xp.max(a)
    except (TypeError, RuntimeError, NotImplementedError, ValueError):
        return False
    return True


@pytest.mark.parametrize("xb", BACKENDS + (["dask"] if HAS_DASK else []), indirect=True)
def test_each_backend_declares_exactly_the_dtypes_its_library_runs(xb):
    name, xp = xb
    b = polygrad.plugins.get_backend(name)
    assert sorted(b.dtypes) == sorted(n for n in DTYPES if _works(xp, n))
    info = pg.__array_namespace_info__().dtypes()
    assert sorted(info) == sorted(n for n in STANDARD if n in b.dtypes)
    for n in b.dtypes:                        # polygrad runs what the backend declares
        a = pg.concat([pg.asarray([1, 0], dtype=n)] * 2)
        assert a.dtype is DTYPES[n] and a.tolist() == [1, 0, 1, 0]
        if n != "bool":
            assert pg.sum(a + a).tolist() == 4
    for n in set(STANDARD) - set(b.dtypes):
        with pytest.raises(TypeError, match=f"backend {name!r} has no dtype {n}"):
            pg.asarray([1], dtype=getattr(pg, n))


# -- linspace -----------------------------------------------------------------------------------

_FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=40, deadline=None)
@given(start=_FINITE, stop=_FINITE, num=st.integers(0, 300), endpoint=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]))
def test_linspace_is_numpys_and_endpoint_false_is_a_prefix(start, stop, num, endpoint, dtype):
    for name in BACKENDS[:2]:            # numpy and torch (torch's own linspace rounds otherwise)
        with polygrad.use_backend(name):
            out = _host(pg.linspace(start, stop, num, endpoint=endpoint, dtype=getattr(pg, dtype)))
            np.testing.assert_array_equal(
                out, np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype))
            longer = pg.linspace(start, stop, num + 1, dtype=getattr(pg, dtype))
            if not endpoint:
                np.testing.assert_array_equal(out, _host(longer)[:-1])


@pytest.mark.skipif(not HAS_TORCH, reason="torch's promote_types is the oracle")
def test_result_type_and_can_cast_of_torchs_extra_float_dtypes():
    import torch
    names = ["float16", "bfloat16", "float32", "float64", "complex64"]
    with polygrad.use_backend("torch"):
        for a in names:
            for b in names:
                want = torch.promote_types(getattr(torch, a), getattr(torch, b))
                got = pg.result_type(a, b)
                assert got.name == str(want).rsplit(".", 1)[-1], (a, b)
                assert pg.can_cast(a, b) == (want == getattr(torch, b)), (a, b)
