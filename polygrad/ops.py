"""polygrad's differentiable namespace (``pg``): Array API functions on Tensors.

Every primitive of the table appears here under its Array API name, recording
the graph as it runs. Backward with ``create_graph=True`` runs the primitive
rules on this module, and ``Tensor.__array_namespace__`` returns it, so library
code written against the standard becomes differentiable. Torch-flavoured
wrappers (``dim=``, ``keepdim=``, ``torch.cat``) live in ``polygrad.torch_api``.
"""

from __future__ import annotations

import sys

from . import creation as _creation
from .dtypes import (DType, bool, complex64, complex128, float16, float32, float64,  # noqa: F401
                     int8, int16, int32, int64, uint8, uint16, uint32, uint64)
from .engine import apply
from .primitives import PRIMITIVES, load_table

load_table()

__array_api_version__ = "2024.12"
e = 2.718281828459045
pi = 3.141592653589793
inf = float("inf")
nan = float("nan")
newaxis = None


def _backend_of(args):
    from ._tensor import Tensor
    for a in args:
        if isinstance(a, Tensor):
            return a._backend
    return None


def _generated(prim):
    def fn(*args, **opts):
        dt = opts.get("dtype")
        if isinstance(dt, DType) or isinstance(dt, str):
            b = _backend_of(args)
            if b is not None:
                opts["dtype"] = b.native_dtype(dt)
        return apply(prim, *args, **opts)
    fn.__name__ = fn.__qualname__ = prim.name
    fn.__doc__ = f"Differentiable ``{prim.name}`` (primitive ``{prim.node_name}``)."
    return fn


def _install():
    module = sys.modules[__name__]
    for name, prim in PRIMITIVES.items():
        if "." not in name and name not in _HANDWRITTEN:
            setattr(module, name, _generated(prim))


# -- functions whose calling convention differs from ``apply(prim, *arrays, **options)`` -------

def concat(arrays, /, *, axis=0):
    return apply(PRIMITIVES["concat"], *arrays, axis=axis)


def stack(arrays, /, *, axis=0):
    return apply(PRIMITIVES["stack"], *arrays, axis=axis)


def astype(x, dtype, /, *, copy=True, device=None):
    out = apply(PRIMITIVES["astype"], x, x._backend.native_dtype(dtype))
    return out.to(device=device) if device is not None else out


def reshape(x, /, shape, *, copy=None):
    return apply(PRIMITIVES["reshape"], x, tuple(shape))


def permute_dims(x, /, axes):
    return apply(PRIMITIVES["permute_dims"], x, tuple(axes))


def broadcast_to(x, /, shape):
    return apply(PRIMITIVES["broadcast_to"], x, tuple(shape))


def clip(x, /, min=None, max=None):
    from ._tensor import Tensor
    if isinstance(min, Tensor) or isinstance(max, Tensor):     # tensor bounds get gradients too
        out = x
        if min is not None:
            out = apply(PRIMITIVES["maximum"], out, min)
        if max is not None:
            out = apply(PRIMITIVES["minimum"], out, max)
        return out
    return apply(PRIMITIVES["clip"], x, min=min, max=max)


def take(x, indices, /, *, axis=None):
    from ._tensor import _raw_operand
    return apply(PRIMITIVES["take"], x, _raw_operand(indices, x), axis=axis)


def getitem(x, key):
    return x[key]


def zeros_like(x, /, *, dtype=None, device=None):
    return _creation.zeros_like(x, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None):
    return _creation.ones_like(x, dtype=dtype, device=device)


def empty_like(x, /, *, dtype=None, device=None):
    return _creation.empty_like(x, dtype=dtype, device=device)


def full_like(x, /, fill_value, *, dtype=None, device=None):
    return _creation.full_like(x, fill_value, dtype=dtype, device=device)


def zeros(shape, *, dtype=None, device=None):
    return _creation.zeros(shape, dtype=dtype, device=device)


def ones(shape, *, dtype=None, device=None):
    return _creation.ones(shape, dtype=dtype, device=device)


def empty(shape, *, dtype=None, device=None):
    return _creation.empty(shape, dtype=dtype, device=device)


def full(shape, fill_value, *, dtype=None, device=None):
    return _creation.full(shape, fill_value, dtype=dtype, device=device)


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    return _creation.asarray(obj, dtype=dtype, device=device, copy=copy)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    return _creation.arange(start, stop, step, dtype=dtype, device=device)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    if not endpoint:
        step = (stop - start) / num
        stop = stop - step
    return _creation.linspace(start, stop, num, dtype=dtype, device=device)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    return _creation.eye(n_rows, n_cols, k=k, dtype=dtype, device=device)


_HANDWRITTEN = {name for name in dir(sys.modules[__name__]) if not name.startswith("_")}
_install()
