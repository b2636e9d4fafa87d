"""The main namespace of ``polygrad.ops`` (the Array API 2024.12 standard on Tensors);
``polygrad.ops`` re-exports it with its ``linalg``, ``fft`` and ``special`` extensions.

``Tensor.__array_namespace__`` returns this module, so library code written against
the standard (SciPy with ``SCIPY_ARRAY_API=1``, scikit-learn with array-API dispatch,
array-api-extra) records polygrad's graph and becomes differentiable. Backward with
``create_graph=True`` runs the primitive rules on this module too.

Every standard function is here with the standard's signature (arrays positional-only,
options keyword-only). A function is either one primitive (the table in
``polygrad.primitives``), a composition of primitives (gradients for free), or
non-differentiable: the backend's function run on raw arrays (argsort, unique_*,
nonzero ...). Elementwise functions are derived from the registry (rows with
``api="unary"`` or ``"binary"``); primitives outside the standard (scatter_add, setitem,
logsumexp, plugins' ops) are reachable by name (``polygrad.ops.__getattr__``).
Torch-flavoured wrappers (``dim=``, ``keepdim=``, ``torch.cat``) live in
``polygrad.torch_api``; what is left out of the standard is in docs/array-api.md.
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
from collections import namedtuple as _namedtuple

from ..base import dtypes as _dtypes
from ..base.dtypes import (  # noqa: F401
    DType,
    bool,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
    uint32,
    uint64,
)
from ..graph import creation as _creation
from ..graph.engine import apply as _apply
from ..graph.engine import report_opaque as _report_opaque
from ..graph.tensor import Tensor as _Tensor
from ..graph.tensor import wrap as _wrap_array
from ..plugins.defaults import default_backend as _default_backend
from ..plugins.host import owner_of as _owner_of
from ..primitives import PRIMITIVES as P
from .info import Info as _Info
from .transfer import to as _to

__array_api_version__ = "2024.12"
e = _math.e
pi = _math.pi
inf = _math.inf
nan = _math.nan
newaxis = None


def __array_namespace_info__():
    """The inspection namespace for the current default backend.

    >>> import polygrad.ops as pg
    >>> pg.__array_namespace_info__().default_dtypes()["real floating"]
    polygrad.float32
    """
    return _Info()


# -- helpers -----------------------------------------------------------------------------------

def _backend_of(args):
    for a in args:
        if isinstance(a, _Tensor):
            return a._backend
    for a in args:
        b = _owner_of(a) if hasattr(a, "shape") else None
        if b is not None:
            return b
    return _default_backend()


def _native(dtype, args):
    """A dtype option in the backend's own vocabulary (None stays None)."""
    return None if dtype is None else _backend_of(args).native_dtype(dtype)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _axis_of_0d(axis):
    """torch reduces a 0-d tensor over dim 0 or -1 (as over all of its none): None, the
    axis the backends take; any other dim is out of range."""
    for a in (axis,) if isinstance(axis, int) else axis:
        if a not in (0, -1):
            raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], "
                             f"but got {a})")
    return None


def _raw(x):
    return x._st.array if isinstance(x, _Tensor) else x


def _wrap(out, backend):
    """Tensors for a backend function's output: an array, a tuple or a namedtuple of arrays."""
    if isinstance(out, tuple):
        items = [_wrap(o, backend) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return _wrap_array(out, backend)


def _call_raw(name, *args, **opts):
    """Run the backend's ``name`` on raw arrays: for outputs that carry no gradient."""
    _report_opaque(f"{name}() computes outside the recorded ops (its output depends on values)")
    backend = _backend_of(args)
    prim = P.get(name)
    fn = backend.op(name, prim.impl if prim is not None else None)
    return _wrap(fn(*[_raw(a) for a in args], **opts), backend)


def _as_tensor(x, like=None):
    if isinstance(x, _Tensor):
        return x
    backend = like._backend if like is not None else None
    return _creation.asarray(x, backend=backend)


# -- elementwise functions: one registry row each (api="unary" / "binary") -------------------

def elementwise(prim):
    """The standard's function for an elementwise registry row: ``fn(x, /)`` or ``fn(x1, x2, /)``."""
    if prim.api == "unary":
        def fn(x, /):
            return _apply(prim, x)
    else:
        def fn(x1, x2, /):
            return _apply(prim, x1, x2)
    fn.__name__ = fn.__qualname__ = prim.name.rsplit(".", 1)[-1]
    summary = prim.doc or f"Elementwise ``{prim.name}``."
    how = (f"Differentiable: recorded as ``{prim.node_name}``." if prim.vjp is not None
           else "Not differentiable.")
    also = (f" Also ``Tensor.{prim.methods[0]}`` and ``polygrad.{prim.torch[0]}``."
            if prim.methods and prim.torch else "")
    fn.__doc__ = f"{summary}\n\n{how}{also}"
    return fn


for _prim in list(P.builtin.values()):     # plugins' rows: __getattr__, on first use
    if _prim.api is not None and "." not in _prim.name:
        globals()[_prim.name] = elementwise(_prim)


def clip(x, /, min=None, max=None):
    """Clamp ``x`` to [min, max]; array bounds get gradients too.

    >>> import polygrad.ops as pg
    >>> pg.clip(pg.asarray([-2.0, 0.5, 3.0]), -1.0, 1.0).tolist()
    [-1.0, 0.5, 1.0]
    """
    if isinstance(min, _Tensor) or isinstance(max, _Tensor) or hasattr(min, "shape") \
            or hasattr(max, "shape"):
        # where, not maximum/minimum: at a tie x keeps all of the gradient (as torch's clamp)
        # a NaN bound makes NaN, as torch's (neither comparison holds for it); no gradient
        # flows through that NaN, as torch's
        out = x
        for bound, compare in ((min, "less"), (max, "greater")):
            if bound is None:
                continue
            out = _apply(P["where"], _apply(P[compare], out, bound), bound, out)
            if hasattr(bound, "shape") and _is_floating(bound):
                out = _apply(P["where"], _apply(P["isnan"], bound), float("nan"), out)
        if out is x:
            out = _apply(P["positive"], x)
        elif _is_floating(x):       # a NaN x stays NaN and, as torch's, passes no gradient
            out = _apply(P["where"], _apply(P["isnan"], x), float("nan"), out)
        return out
    return _apply(P["clip"], x, min=min, max=max)


def _is_floating(t):
    dt = t.dtype
    return getattr(dt, "is_floating_point", False) or getattr(dt, "kind", "") == "f"


def where(condition, x1, x2, /):
    return _apply(P["where"], condition, x1, x2)


# -- reductions and statistics -----------------------------------------------------------------

def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    return _apply(P["sum"], x, axis=_axis(axis), dtype=_native(dtype, (x,)), keepdims=keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    return _apply(P["prod"], x, axis=_axis(axis), dtype=_native(dtype, (x,)), keepdims=keepdims)


def mean(x, /, *, axis=None, keepdims=False):
    return _apply(P["mean"], x, axis=_axis(axis), keepdims=keepdims)


def max(x, /, *, axis=None, keepdims=False):
    return _apply(P["max"], x, axis=_axis(axis), keepdims=keepdims)


def min(x, /, *, axis=None, keepdims=False):
    return _apply(P["min"], x, axis=_axis(axis), keepdims=keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _apply(P["var"], x, axis=_axis(axis), correction=correction, keepdims=keepdims)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _apply(P["std"], x, axis=_axis(axis), correction=correction, keepdims=keepdims)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    return _apply(P["cumulative_sum"], x, axis=axis, dtype=_native(dtype, (x,)),
                 include_initial=include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _apply(P["cumulative_prod"], x, axis=axis, dtype=_native(dtype, (x,)),
                 include_initial=include_initial)


def logsumexp(x, /, *, axis=None, keepdims=False):
    """Not in the standard: a stable log(sum(exp(x))) with its own rule."""
    return _apply(P["logsumexp"], x, axis=_axis(axis), keepdims=keepdims)


def argmax(x, /, *, axis=None, keepdims=False):
    return _apply(P["argmax"], x, axis=axis, keepdims=keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _apply(P["argmin"], x, axis=axis, keepdims=keepdims)


def all(x, /, *, axis=None, keepdims=False):
    return _apply(P["all"], x, axis=_axis(axis), keepdims=keepdims)


def any(x, /, *, axis=None, keepdims=False):
    return _apply(P["any"], x, axis=_axis(axis), keepdims=keepdims)


def count_nonzero(x, /, *, axis=None, keepdims=False):
    return _apply(P["count_nonzero"], x, axis=_axis(axis), keepdims=keepdims)


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """The n-th forward difference along ``axis`` (a composition: slices and subtract)."""
    parts = [a for a in (prepend, x, append) if a is not None]
    if len(parts) > 1:
        parts = [_as_tensor(a, x) for a in parts]
        parts = [broadcast_to(a, x.shape[:axis % x.ndim] + (1,) + x.shape[axis % x.ndim + 1:])
                 if a.ndim == 0 else a for a in parts]
        x = concat(parts, axis=axis)
    ax = axis % x.ndim
    for _ in range(n):
        hi = [slice(None)] * x.ndim
        lo = [slice(None)] * x.ndim
        hi[ax], lo[ax] = slice(1, None), slice(None, -1)
        x = x[tuple(hi)] - x[tuple(lo)]
    return x


# -- searching, sorting, sets ------------------------------------------------------------------

def argsort(x, /, *, axis=-1, descending=False, stable=True):
    if not descending:
        return _apply(P["argsort"], x, axis=axis, stable=stable)
    # A stable descending order: sort the flipped array ascending, flip back, map indices.
    n = x.shape[axis]
    flipped = _apply(P["argsort"], flip(x, axis=axis), axis=axis, stable=stable)
    return (n - 1) - flip(flipped, axis=axis)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """Sorted values; the gradient flows back through the gathering (take_along_axis)."""
    idx = argsort(x, axis=axis, descending=descending, stable=stable)
    return take_along_axis(x, idx, axis=axis)


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    kw = {} if sorter is None else {"sorter": _raw(sorter)}
    return _apply(P["searchsorted"], x1, x2, side=side, **kw)


def nonzero(x, /):
    return _call_raw("nonzero", x)


def unique_all(x, /):
    return _call_raw("unique_all", x)


def unique_counts(x, /):
    return _call_raw("unique_counts", x)


def unique_inverse(x, /):
    return _call_raw("unique_inverse", x)


def unique_values(x, /):
    return _call_raw("unique_values", x)


def isin(x1, x2, /, *, invert=False):
    """2025.12: whether each element of ``x1`` is in ``x2`` (not differentiable)."""
    return _call_raw("isin", x1, x2, invert=invert)


# -- indexing ----------------------------------------------------------------------------------

def take(x, indices, /, *, axis=None):
    return _apply(P["take"], x, _raw_index(indices, x), axis=axis)


def take_along_axis(x, indices, /, *, axis=-1):
    return _apply(P["take_along_axis"], x, _raw_index(indices, x), axis=axis)


def _raw_index(indices, x):
    """An index Tensor as the raw array the rules read (indices carry no gradient)."""
    if isinstance(indices, _Tensor):
        if indices._backend is not x._backend:
            raise TypeError(f"indices are on backend {indices.backend!r} but the array is on "
                            f"{x.backend!r}; move them with .to({x.backend!r})")
        return indices._st.array
    return indices


def getitem(x, key):
    """Not in the standard: ``x[key]`` as a function (rules use it)."""
    return x[key]


# -- shapes ------------------------------------------------------------------------------------

def concat(arrays, /, *, axis=0):
    return _apply(P["concat"], *arrays, axis=axis)


def stack(arrays, /, *, axis=0):
    return _apply(P["stack"], *arrays, axis=axis)


def astype(x, dtype, /, *, copy=True, device=None):
    out = x
    if copy or _dtypes.as_dtype(dtype) is not x.dtype:
        out = _apply(P["astype"], x, x._backend.native_dtype(dtype))
    return out.to(device=device) if device is not None else out


def reshape(x, /, shape, *, copy=None):
    return _apply(P["reshape"], x, tuple(shape))


def permute_dims(x, /, axes):
    return _apply(P["permute_dims"], x, tuple(axes))


def matrix_transpose(x, /):
    return _apply(P["matrix_transpose"], x)


def broadcast_to(x, /, shape):
    return _apply(P["broadcast_to"], x, tuple(shape))


def expand_dims(x, /, axis=0):
    return _apply(P["expand_dims"], x, axis=axis)


def squeeze(x, /, axis):
    return _apply(P["squeeze"], x, axis=axis)


def flip(x, /, *, axis=None):
    return _apply(P["flip"], x, axis=_axis(axis))


def moveaxis(x, source, destination, /):
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    src = [s % x.ndim for s in src]
    dst = [d % x.ndim for d in dst]
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, order)


def roll(x, /, shift, *, axis=None):
    original = x
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, axis=0), x.shape)
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, ax in zip(shifts, axes):
        n = x.shape[ax]
        if n == 0 or s % n == 0:
            continue
        k = s % n
        lead = [slice(None)] * x.ndim
        tail = [slice(None)] * x.ndim
        lead[ax % x.ndim], tail[ax % x.ndim] = slice(n - k, None), slice(0, n - k)
        x = concat([x[tuple(lead)], x[tuple(tail)]], axis=ax)
    return x.clone() if x is original else x      # new memory, as torch's roll


def repeat(x, repeats, /, *, axis=None):
    """Repeat elements: a ``take`` with repeated indices, so the gradient adds them up."""
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    xp = x._backend.xp
    dev = getattr(x._st.array, "device", None)
    positions = xp.arange(x.shape[axis], device=dev)
    index = xp.repeat(positions, _raw(repeats) if not isinstance(repeats, int) else repeats)
    return take(x, index, axis=axis)


def tile(x, repetitions, /):
    reps = tuple(repetitions)
    nd = _builtins.max(len(reps), x.ndim)
    reps = (1,) * (nd - len(reps)) + reps
    shape = (1,) * (nd - x.ndim) + tuple(x.shape)
    y = reshape(x, tuple(s for d in shape for s in (1, d)))
    y = broadcast_to(y, tuple(s for r, d in zip(reps, shape) for s in (r, d)))
    out = reshape(y, tuple(r * d for r, d in zip(reps, shape)))
    return out.clone() if out._view is not None else out    # new memory, as torch's tile


def unstack(x, /, *, axis=0):
    ax = axis % x.ndim
    return tuple(x[(slice(None),) * ax + (i, Ellipsis)] for i in range(x.shape[ax]))


def broadcast_arrays(*arrays):
    shape = broadcast_shapes(*[a.shape for a in arrays])
    return [broadcast_to(a, shape) for a in arrays]


def broadcast_shapes(*shapes):
    """2025.12: the broadcast of several shapes (a ValueError names them if impossible)."""
    nd = _builtins.max((len(s) for s in shapes), default=0)
    out = []
    for dims in zip(*[(1,) * (nd - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(map(str, shapes))} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def meshgrid(*arrays, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    n = len(arrays)
    sizes = [a.shape[0] if a.ndim else 1 for a in arrays]
    if indexing == "xy" and n > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(arrays):
        shape = [1] * n
        pos = i
        if indexing == "xy" and n > 1 and i < 2:
            pos = 1 - i
        shape[pos] = a.shape[0] if a.ndim else 1
        out.append(broadcast_to(reshape(a, tuple(shape)), tuple(sizes)))
    return out


def tril(x, /, *, k=0):
    return _apply(P["tril"], x, k=k)


def triu(x, /, *, k=0):
    return _apply(P["triu"], x, k=k)


# -- linear algebra in the main namespace ------------------------------------------------------

def matmul(x1, x2, /):
    return _apply(P["matmul"], x1, x2)


def tensordot(x1, x2, /, *, axes=2):
    return _apply(P["tensordot"], x1, x2, axes=axes)


def vecdot(x1, x2, /, *, axis=-1):
    return _apply(P["vecdot"], x1, x2, axis=axis)


# -- creation: without array arguments they use the default backend and device -----------------

def _on(device):
    """The backend a device came from (``device=x.device``), else None: the default backend."""
    return getattr(device, "backend", None)


def zeros_like(x, /, *, dtype=None, device=None):
    return _creation.zeros_like(x, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None):
    return _creation.ones_like(x, dtype=dtype, device=device)


def empty_like(x, /, *, dtype=None, device=None):
    return _creation.empty_like(x, dtype=dtype, device=device)


def full_like(x, /, fill_value, *, dtype=None, device=None):
    if dtype is None and not isinstance(fill_value, _builtins.bool) \
            and isinstance(fill_value, (int, float)):
        dtype = x.dtype        # the standard keeps x's dtype
    return _creation.full_like(x, fill_value, dtype=dtype, device=device)


def zeros(shape, *, dtype=None, device=None):
    return _creation.zeros(shape, dtype=dtype, device=device, backend=_on(device))


def ones(shape, *, dtype=None, device=None):
    return _creation.ones(shape, dtype=dtype, device=device, backend=_on(device))


def empty(shape, *, dtype=None, device=None):
    return _creation.empty(shape, dtype=dtype, device=device, backend=_on(device))


def full(shape, fill_value, *, dtype=None, device=None):
    return _creation.full(shape, fill_value, dtype=dtype, device=device, backend=_on(device))


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    if isinstance(obj, _Tensor):       # stays on its backend, in the graph
        out = obj
        if dtype is not None and _dtypes.as_dtype(dtype) is not obj.dtype:
            out = astype(out, dtype)
        if device is not None and out.device != device:
            out = out.to(device=device)
        return out.clone() if copy and out is obj else out
    if _holds_tensor(obj):
        return asarray(_stack_nested(obj), dtype=dtype, device=device, copy=False)
    return _creation.asarray(obj, dtype=dtype, device=device, copy=copy, backend=_on(device))


def _holds_tensor(obj):
    return isinstance(obj, (list, tuple)) and _builtins.any(
        isinstance(o, _Tensor) or _holds_tensor(o) for o in obj)


def _stack_nested(obj):
    """A (nested) list that holds Tensors (``[a[0, 0], a[1, 1]]``) as one Tensor: stacked, so
    it stays in the graph; Python scalars beside them promote as in ``result_type``."""
    items = [_stack_nested(o) if _holds_tensor(o) else o for o in obj]
    like = next(o for o in items if isinstance(o, _Tensor))
    items = [o if isinstance(o, _Tensor) else _as_tensor(o, like) if isinstance(o, (list, tuple))
             else o for o in items]
    dt = result_type(*items)
    return stack([astype(o, dt, copy=False) if isinstance(o, _Tensor)
                  else _creation.asarray(o, dtype=dt, backend=like._backend, device=like.device)
                  for o in items])


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    return _creation.arange(start, stop, step, dtype=dtype, device=device, backend=_on(device))


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    """``num`` evenly spaced values, by numpy's formula (``start + i * step`` in float64, then
    cast) on every backend: the values agree with numpy's bit for bit, and ``endpoint=False``
    gives exactly the first ``num`` values of ``num + 1`` with the endpoint, as the standard
    asks (torch's own linspace rounds differently).

    >>> import polygrad.ops as pg
    >>> pg.linspace(0.0, 1.0, 5, endpoint=False).tolist()
    [0.0, 0.20000000298023224, 0.4000000059604645, 0.6000000238418579, 0.800000011920929]
    """
    if isinstance(start, complex) or isinstance(stop, complex) or not num:
        if not endpoint and num:
            stop = stop - (stop - start) / num
        return _creation.linspace(start, stop, num, dtype=dtype, device=device,
                                  backend=_on(device))
    div = num - 1 if endpoint else num
    start, stop = float(start), float(stop)
    delta = stop - start
    out = arange(num, dtype=float64, device=device)
    if div > 0:
        step = delta / div
        out = out / div * delta if step == 0 else out * step
    else:
        out = out * delta
    out = out + start
    if endpoint and num > 1:
        out = concat([out[:-1], asarray([stop], dtype=float64, device=out.device)])
    return astype(out, dtype if dtype is not None else _dtypes.DEFAULT_FLOAT, copy=False)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    return _creation.eye(n_rows, n_cols, k=k, dtype=dtype, device=device, backend=_on(device))


def from_dlpack(x, /, *, device=None, copy=None):
    """A Tensor from any DLPack producer, on the default backend."""
    backend = _default_backend()
    load = backend.from_dlpack or backend.xp.from_dlpack
    out = _wrap(load(x), backend)
    if device is not None:
        out = out.to(device=device)
    return out.clone() if copy else out


# -- data types --------------------------------------------------------------------------------

_KINDS = {"integral": ("signed integer", "unsigned integer"),
          "numeric": ("signed integer", "unsigned integer", "real floating",
                      "complex floating")}


def isdtype(dtype, kind):
    """Whether ``dtype`` is of ``kind`` (a dtype, a kind name or a tuple of them).

    >>> import polygrad.ops as pg
    >>> pg.isdtype(pg.float32, "real floating")
    True
    """
    dtype = _dtypes.as_dtype(dtype)
    if isinstance(kind, tuple):
        return _builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS and kind not in ("bool", "signed integer", "unsigned integer",
                                               "real floating", "complex floating"):
            raise ValueError(f"isdtype: unknown kind {kind!r}")
        return dtype.kind in _KINDS.get(kind, (kind,))
    return dtype is _dtypes.as_dtype(kind)


def _dtype_of(x):
    return _dtypes.as_dtype(x.dtype if hasattr(x, "dtype") and not isinstance(x, type) else x)


_FLOATS = {"real floating": ("float32", "float64"), "complex floating": ("complex64", "complex128")}


def _promote(a, b):
    """The standard's promotion table for two dtypes: a DType, or None where the standard
    defines no promotion (across kinds, int64 with uint64, float16). Needs no backend, so
    ``can_cast(uint64, int8)`` is answered on a backend without uint64."""
    if a is b:
        return a
    ka, kb = a.kind, b.kind
    if "bool" in (ka, kb) or "float16" in (a.name, b.name) or "bfloat16" in (a.name, b.name):
        return None
    if ka.endswith("integer") and kb.endswith("integer"):
        if ka == kb:
            return a if a.itemsize >= b.itemsize else b
        signed, unsigned = (a, b) if ka == "signed integer" else (b, a)
        size = _builtins.max(signed.itemsize, 2 * unsigned.itemsize)
        return _dtypes.DTYPES[f"int{8 * size}"] if size <= 8 else None
    if ka.endswith("integer") or kb.endswith("integer"):
        return None
    size = _builtins.max(a.itemsize // (2 if ka == "complex floating" else 1),
                         b.itemsize // (2 if kb == "complex floating" else 1))
    kind = "complex floating" if "complex floating" in (ka, kb) else "real floating"
    return _dtypes.DTYPES[_FLOATS[kind][size // 8]]


_SCALAR_KINDS = {_builtins.bool: ("bool", "signed integer", "unsigned integer", "real floating",
                                  "complex floating"),
                 int: ("signed integer", "unsigned integer", "real floating", "complex floating"),
                 float: ("real floating", "complex floating"), complex: ("complex floating",)}


def result_type(*arrays_and_dtypes):
    """The dtype the standard's promotion gives ``arrays_and_dtypes`` (arrays, dtypes, Python
    scalars); pairs the standard leaves undefined follow the backend (numpy's rules on numpy).

    >>> import polygrad.ops as pg
    >>> pg.result_type(pg.int8, pg.uint8, 1)
    polygrad.int16
    """
    dts = [_dtype_of(a) for a in arrays_and_dtypes
           if not isinstance(a, (_builtins.bool, int, float, complex))]
    scalars = [a for a in arrays_and_dtypes if isinstance(a, (_builtins.bool, int, float, complex))]
    out = dts[0] if dts else None
    for dt in dts[1:]:
        out = _promote(out, dt) if out is not None else None
    if out is not None and _builtins.all(out.kind in _SCALAR_KINDS[type(a)] for a in scalars):
        return out
    backend = _backend_of(arrays_and_dtypes)
    args = [a if isinstance(a, (_builtins.bool, int, float, complex))
            else backend.native_dtype(_dtype_of(a)) for a in arrays_and_dtypes]
    return _dtypes.as_dtype(backend.xp.result_type(*args))


def _family(dtype):
    return {"bool": 0, "signed integer": 1, "unsigned integer": 1}.get(dtype.kind, 2)


def can_cast(from_, to, /):
    """Whether type promotion takes ``from_`` to ``to`` (never across bool/integer/float).

    >>> import polygrad.ops as pg
    >>> pg.can_cast(pg.uint64, pg.int8), pg.can_cast(pg.int8, pg.float32)
    (False, False)
    """
    src, dst = _dtype_of(from_), _dtypes.as_dtype(to)
    if _family(src) != _family(dst):
        return False
    if src.kind == "bool":
        return True
    out = _promote(src, dst)
    if out is None and {src.name, dst.name} & {"float16", "bfloat16"}:
        return result_type(src, dst) is dst     # outside the standard: the backend's rule
    return out is dst


finfo_object = _namedtuple("finfo_object", "bits eps max min smallest_normal dtype")
iinfo_object = _namedtuple("iinfo_object", "bits max min dtype")


def finfo(type, /):
    dt = _dtype_of(type)
    info = _backend_of((type,)).xp.finfo(_backend_of((type,)).native_dtype(dt))
    real = {"complex64": float32, "complex128": float64}.get(dt.name, dt)
    return finfo_object(int(info.bits), float(info.eps), float(info.max), float(info.min),
                        float(info.smallest_normal), real)


def iinfo(type, /):
    dt = _dtype_of(type)
    info = _backend_of((type,)).xp.iinfo(_backend_of((type,)).native_dtype(dt))
    return iinfo_object(int(info.bits), int(info.max), int(info.min), dt)


# -- primitives outside the standard ------------------------------------------------------

def to(x, /, *, dst, device=None):
    """Not in the standard: ``x`` moved to backend ``dst`` (a Backend), differentiably; the
    ``to`` primitive's rule uses it to move a gradient back."""
    return _to(x, dst.name, device=device)


def generated(prim):
    """``fn(*arrays, **options)`` for a registry row outside the standard (plugins' ops,
    ``scatter_add``, ``setitem``, ``linalg.logabsdet`` ...)."""
    def fn(*args, **opts):
        dt = opts.get("dtype")
        if isinstance(dt, (DType, str)):
            opts["dtype"] = _backend_of(args).native_dtype(dt)
        return _apply(prim, *args, **opts)
    fn.__name__ = fn.__qualname__ = prim.name.rsplit(".", 1)[-1]
    fn.__doc__ = prim.doc or f"Differentiable ``{prim.name}`` (primitive ``{prim.node_name}``)."
    return fn


_NOT_EXPORTED = {"P", "annotations", "elementwise", "generated"}
__all__ = sorted(n for n, v in list(globals().items())
                 if not n.startswith("_") and n not in _NOT_EXPORTED
                 and not isinstance(v, type(_math)))
