"""polygrad.ops as an Array API 2024.12 namespace: signatures, constants, dtypes, the
inspection namespace, array attributes and operators, and namespace identity.

The signature table is written from the standard's function stubs (2024.12): ``x/`` is a
positional-only parameter, ``axis*`` a keyword-only one, a bare name positional-or-keyword.
"""

import inspect
import math
import operator

import numpy as np
import pytest

import polygrad
import polygrad.ops as pg

SPEC = {
    "abs": "x/", "acos": "x/", "acosh": "x/", "add": "x1/ x2/", "all": "x/ axis* keepdims*",
    "any": "x/ axis* keepdims*", "arange": "start/ stop step dtype* device*",
    "argmax": "x/ axis* keepdims*", "argmin": "x/ axis* keepdims*",
    "argsort": "x/ axis* descending* stable*", "asarray": "obj/ dtype* device* copy*",
    "asin": "x/", "asinh": "x/", "astype": "x/ dtype/ copy* device*", "atan": "x/",
    "atan2": "x1/ x2/", "atanh": "x/", "bitwise_and": "x1/ x2/", "bitwise_invert": "x/",
    "bitwise_left_shift": "x1/ x2/", "bitwise_or": "x1/ x2/", "bitwise_right_shift": "x1/ x2/",
    "bitwise_xor": "x1/ x2/", "broadcast_arrays": "*arrays", "broadcast_to": "x/ shape",
    "can_cast": "from_/ to/", "ceil": "x/", "clip": "x/ min max", "concat": "arrays/ axis*",
    "conj": "x/", "copysign": "x1/ x2/", "cos": "x/", "cosh": "x/",
    "count_nonzero": "x/ axis* keepdims*", "cumulative_prod": "x/ axis* dtype* include_initial*",
    "cumulative_sum": "x/ axis* dtype* include_initial*", "diff": "x/ axis* n* prepend* append*",
    "divide": "x1/ x2/", "empty": "shape dtype* device*", "empty_like": "x/ dtype* device*",
    "equal": "x1/ x2/", "exp": "x/", "expand_dims": "x/ axis", "expm1": "x/",
    "eye": "n_rows/ n_cols/ k* dtype* device*", "finfo": "type/", "flip": "x/ axis*",
    "floor": "x/", "floor_divide": "x1/ x2/", "from_dlpack": "x/ device* copy*",
    "full": "shape fill_value dtype* device*", "full_like": "x/ fill_value dtype* device*",
    "greater": "x1/ x2/", "greater_equal": "x1/ x2/", "hypot": "x1/ x2/", "iinfo": "type/",
    "imag": "x/", "isdtype": "dtype kind", "isfinite": "x/", "isinf": "x/", "isnan": "x/",
    "less": "x1/ x2/", "less_equal": "x1/ x2/",
    "linspace": "start/ stop/ num dtype* device* endpoint*", "log": "x/", "log10": "x/",
    "log1p": "x/", "log2": "x/", "logaddexp": "x1/ x2/", "logical_and": "x1/ x2/",
    "logical_not": "x/", "logical_or": "x1/ x2/", "logical_xor": "x1/ x2/", "matmul": "x1/ x2/",
    "matrix_transpose": "x/", "max": "x/ axis* keepdims*", "maximum": "x1/ x2/",
    "mean": "x/ axis* keepdims*", "meshgrid": "*arrays indexing*", "min": "x/ axis* keepdims*",
    "minimum": "x1/ x2/", "moveaxis": "x/ source/ destination/", "multiply": "x1/ x2/",
    "negative": "x/", "nextafter": "x1/ x2/", "nonzero": "x/", "not_equal": "x1/ x2/",
    "ones": "shape dtype* device*", "ones_like": "x/ dtype* device*", "permute_dims": "x/ axes",
    "positive": "x/", "pow": "x1/ x2/", "prod": "x/ axis* dtype* keepdims*", "real": "x/",
    "reciprocal": "x/", "remainder": "x1/ x2/", "repeat": "x/ repeats/ axis*",
    "reshape": "x/ shape copy*", "result_type": "*arrays_and_dtypes", "roll": "x/ shift axis*",
    "round": "x/", "searchsorted": "x1/ x2/ side* sorter*", "sign": "x/", "signbit": "x/",
    "sin": "x/", "sinh": "x/", "sort": "x/ axis* descending* stable*", "sqrt": "x/",
    "square": "x/", "squeeze": "x/ axis", "stack": "arrays/ axis*",
    "std": "x/ axis* correction* keepdims*", "subtract": "x1/ x2/",
    "sum": "x/ axis* dtype* keepdims*", "take": "x/ indices/ axis*",
    "take_along_axis": "x/ indices/ axis*", "tan": "x/", "tanh": "x/",
    "tensordot": "x1/ x2/ axes*", "tile": "x/ repetitions/", "tril": "x/ k*", "triu": "x/ k*",
    "trunc": "x/", "unique_all": "x/", "unique_counts": "x/", "unique_inverse": "x/",
    "unique_values": "x/", "unstack": "x/ axis*", "var": "x/ axis* correction* keepdims*",
    "vecdot": "x1/ x2/ axis*", "where": "condition/ x1/ x2/", "zeros": "shape dtype* device*",
    "zeros_like": "x/ dtype* device*", "linalg.cholesky": "x/ upper*",
    "linalg.cross": "x1/ x2/ axis*", "linalg.det": "x/", "linalg.diagonal": "x/ offset*",
    "linalg.eigh": "x/", "linalg.eigvalsh": "x/", "linalg.inv": "x/", "linalg.matmul": "x1/ x2/",
    "linalg.matrix_norm": "x/ keepdims* ord*", "linalg.matrix_power": "x/ n/",
    "linalg.matrix_rank": "x/ rtol*", "linalg.matrix_transpose": "x/", "linalg.outer": "x1/ x2/",
    "linalg.pinv": "x/ rtol*", "linalg.qr": "x/ mode*", "linalg.slogdet": "x/",
    "linalg.solve": "x1/ x2/", "linalg.svd": "x/ full_matrices*", "linalg.svdvals": "x/",
    "linalg.tensordot": "x1/ x2/ axes*", "linalg.trace": "x/ offset* dtype*",
    "linalg.vecdot": "x1/ x2/ axis*", "linalg.vector_norm": "x/ axis* keepdims* ord*",
    "fft.fft": "x/ n* axis* norm*", "fft.fftfreq": "n/ d* dtype* device*",
    "fft.fftn": "x/ s* axes* norm*", "fft.fftshift": "x/ axes*", "fft.hfft": "x/ n* axis* norm*",
    "fft.ifft": "x/ n* axis* norm*", "fft.ifftn": "x/ s* axes* norm*",
    "fft.ifftshift": "x/ axes*", "fft.ihfft": "x/ n* axis* norm*",
    "fft.irfft": "x/ n* axis* norm*", "fft.irfftn": "x/ s* axes* norm*",
    "fft.rfft": "x/ n* axis* norm*", "fft.rfftfreq": "n/ d* dtype* device*",
    "fft.rfftn": "x/ s* axes* norm*",
}

_KIND = {inspect.Parameter.POSITIONAL_ONLY: "/", inspect.Parameter.KEYWORD_ONLY: "*",
         inspect.Parameter.POSITIONAL_OR_KEYWORD: "", inspect.Parameter.VAR_POSITIONAL: ""}


def _signature(fn):
    parts = []
    for p in inspect.signature(fn).parameters.values():
        star = "*" if p.kind is inspect.Parameter.VAR_POSITIONAL else ""
        parts.append(star + p.name + _KIND[p.kind])
    return " ".join(parts)


def _lookup(name):
    obj = pg
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", sorted(SPEC))
def test_function_has_the_standard_signature(name):
    assert _signature(_lookup(name)) == SPEC[name]


def test_signature_table_covers_the_standard_as_array_api_strict_lists_it():
    """The table is not missing a function that the reference implementation has."""
    strict = pytest.importorskip("array_api_strict")
    names = {n for n in dir(strict) if n[0].islower() and callable(getattr(strict, n))
             and not isinstance(getattr(strict, n), type) and "strict_flags" not in n}
    later = {"isin", "broadcast_shapes"}          # 2025.12
    assert names - later - set(SPEC) == set()


def test_positional_only_and_keyword_only_are_enforced():
    x = pg.asarray([1.0, 2.0])
    with pytest.raises(TypeError):
        pg.sin(x=x)
    with pytest.raises(TypeError):
        pg.sum(x, 0)


@pytest.mark.parametrize("name,value", [("e", math.e), ("pi", math.pi), ("inf", math.inf)])
def test_constants(name, value):
    assert getattr(pg, name) == value and isinstance(getattr(pg, name), float)


def test_nan_and_newaxis():
    assert math.isnan(pg.nan) and pg.newaxis is None


@pytest.mark.parametrize("name", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                  "uint32", "uint64", "float32", "float64", "complex64",
                                  "complex128"])
def test_dtype_objects_are_polygrad_dtypes_and_compare_with_tensors(name):
    dt = getattr(pg, name)
    assert isinstance(dt, polygrad.DType) and dt.name == name
    if name in ("float32", "float64", "int64", "bool"):
        assert pg.zeros((2,), dtype=dt).dtype == dt


def test_namespace_identity():
    x = polygrad.tensor([1.0])
    assert x.__array_namespace__() is pg
    assert pg.__name__ == "polygrad.ops" and pg.__array_api_version__ == "2024.12"
    import array_api_compat
    assert array_api_compat.array_namespace(x) is pg
    assert not isinstance(x, np.ndarray)


@pytest.mark.parametrize("version", [None, "2022.12", "2023.12", "2024.12"])
def test_api_version_accepted(version):
    assert polygrad.tensor([1.0]).__array_namespace__(api_version=version) is pg


@pytest.mark.parametrize("version", ["2021.12", "2099.12", "latest"])
def test_unknown_api_version_is_a_value_error(version):
    with pytest.raises(ValueError, match="2024.12"):
        polygrad.tensor([1.0]).__array_namespace__(api_version=version)


def test_inspection_namespace(backend):
    info = pg.__array_namespace_info__()
    caps = info.capabilities()
    assert caps["boolean indexing"] is True and caps["max dimensions"] >= 32
    assert info.default_device() == "cpu" and "cpu" in [str(d) for d in info.devices()]
    defaults = info.default_dtypes()
    assert defaults["real floating"] is pg.float32 and defaults["indexing"] is pg.int64
    assert pg.zeros((1,)).dtype is defaults["real floating"]
    floats = info.dtypes(kind="real floating")
    assert set(floats) == {"float32", "float64"} and floats["float64"] is pg.float64
    assert "int64" in info.dtypes(kind=("integral", "bool")) and "bool" in info.dtypes()
    with pytest.raises(ValueError, match="kind"):
        info.dtypes(kind="quaternion")
    with pytest.raises(ValueError, match="no device"):
        info.default_dtypes(device="tpu:7")


def test_creation_without_arrays_uses_the_default_backend(backend):
    for made in (pg.zeros((2,)), pg.ones((2,)), pg.full((2,), 1.0), pg.arange(3),
                 pg.linspace(0, 1, 3), pg.eye(2), pg.asarray([1.0]), pg.empty((1,)),
                 pg.fft.fftfreq(4)):
        assert made.backend == backend


def test_creation_with_a_tensors_device_stays_on_its_backend():
    with polygrad.use_backend("numpy"):
        x = polygrad.tensor([1.0], backend="torch")
        assert pg.asarray(0.0, device=x.device).backend == "torch"
        assert pg.zeros((2,), device=x.device).backend == "torch"
        assert pg.zeros((2,), device="cpu").backend == "numpy"


# -- array attributes and operators -------------------------------------------------------------

def test_array_attributes(backend):
    x = pg.reshape(pg.arange(6, dtype=pg.float64), (2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype is pg.float64
    assert x.device == "cpu" and x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    assert x.to_device("cpu").shape == (2, 3)
    assert x.__dlpack_device__()[0] == 1          # kDLCPU
    assert np.array_equal(np.from_dlpack(x.detach()), np.asarray(x))


_BINARY_OPS = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "lt", "le", "gt", "ge",
               "eq", "ne"]
_INT_OPS = ["and", "or", "xor", "lshift", "rshift"]


@pytest.mark.parametrize("op", _BINARY_OPS + _INT_OPS + ["matmul"])
def test_operators_reflected_and_in_place_match_numpy(backend, op):
    ints = op in _INT_OPS
    a_np = np.array([[3, 5], [7, 2]]) if ints else np.array([[1.5, 2.0], [3.0, 4.5]])
    b_np = np.array([[1, 2], [1, 3]]) if ints else np.array([[0.5, 1.5], [2.0, 1.0]])
    a, b = pg.asarray(a_np), pg.asarray(b_np)
    fn = getattr(operator, op + "_" if op in ("and", "or") else op)
    assert np.allclose(np.asarray(fn(a, b)), fn(a_np, b_np))
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        return
    if op != "matmul":
        assert np.allclose(np.asarray(fn(a_np.tolist()[0][0], b)), fn(a_np[0, 0], b_np))
    c = pg.asarray(a_np.copy())     # asarray shares memory; the in-place op writes into it
    getattr(operator, "i" + op)(c, b)
    assert np.allclose(np.asarray(c), fn(a_np, b_np))


@pytest.mark.parametrize("op", ["neg", "pos", "abs", "invert"])
def test_unary_operators(backend, op):
    a_np = np.array([3, -5]) if op == "invert" else np.array([1.5, -2.0])
    assert np.array_equal(np.asarray(getattr(operator, op)(pg.asarray(a_np))),
                          getattr(operator, op)(a_np))


def test_scalar_conversions_work_as_the_standard_says(backend):
    x = polygrad.tensor(2.5, requires_grad=True)
    assert float(x) == 2.5 and bool(x) is True and complex(x) == 2.5
    assert int(pg.asarray(3)) == 3 and operator.index(pg.asarray(3)) == 3
    with pytest.raises(TypeError):
        operator.index(pg.asarray(3.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(pg.asarray([1.0, 2.0]))


def test_host_conversion_of_a_tensor_that_requires_grad_raises(backend):
    x = polygrad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(x)
    with pytest.raises(RuntimeError, match="requires grad"):
        x.__dlpack__()
    assert x.grad is None and np.asarray(x.detach()).tolist() == [1.0, 2.0]


def test_setitem_is_copy_on_write_for_values_autograd_needs(backend):
    """What scipy.special.log_softmax does: write into the output of max, then differentiate."""
    x = polygrad.tensor([[1.0, 2.0], [3.0, 0.5]], requires_grad=True)
    m = pg.max(x, axis=1, keepdims=True)
    y = pg.exp(x - m)
    m[~pg.isfinite(m)] = 0.0        # writes into an array the graph still needs
    m[0, 0] = 10.0
    pg.sum(y).backward()
    t = __import__("torch")
    tx = t.tensor([[1.0, 2.0], [3.0, 0.5]], requires_grad=True)
    t.exp(tx - tx.amax(1, keepdim=True)).sum().backward()
    assert np.allclose(np.asarray(x.grad), tx.grad.numpy())
    assert float(m[0, 0]) == 10.0


# -- data type functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,kind,expected", [
    ("float32", "real floating", True), ("float32", "integral", False),
    ("int8", "signed integer", True), ("uint8", "integral", True), ("bool", "numeric", False),
    ("complex64", ("bool", "complex floating"), True), ("int64", "int64", True),
])
def test_isdtype(dtype, kind, expected):
    kind = getattr(pg, kind) if kind in ("int64",) else kind
    assert pg.isdtype(getattr(pg, dtype), kind) is expected


def test_isdtype_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        pg.isdtype(pg.float32, "floating")


def test_result_type_can_cast_finfo_iinfo(backend):
    assert pg.result_type(pg.float32, pg.float64) is pg.float64
    assert pg.result_type(pg.asarray([1], dtype=pg.int32), pg.int64) is pg.int64
    assert pg.result_type(pg.asarray([1.0], dtype=pg.float32), 1.0) is pg.float32
    assert pg.can_cast(pg.int32, pg.int64) and not pg.can_cast(pg.float64, pg.int8)
    fi = pg.finfo(pg.float32)
    assert fi.bits == 32 and fi.eps == float(np.finfo(np.float32).eps) and fi.dtype is pg.float32
    assert pg.finfo(pg.zeros((1,), dtype=pg.float64)).bits == 64
    ii = pg.iinfo(pg.int8)
    assert (ii.bits, ii.min, ii.max, ii.dtype) == (8, -128, 127, pg.int8)


def test_special_extension_is_what_scipy_looks_up():
    x = pg.asarray([0.0, 0.5, -1.5], dtype=pg.float64)
    import math as m
    assert np.allclose(np.asarray(pg.special.erf(x)), [m.erf(v) for v in (0.0, 0.5, -1.5)],
                       atol=2e-7)
    assert np.allclose(np.asarray(pg.special.expit(x)), 1 / (1 + np.exp([0.0, -0.5, 1.5])))
