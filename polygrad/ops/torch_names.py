"""Torch-flavoured functions (``dim=``, ``keepdim=``, ``cat``, ``t``, ``sin_``) as thin
aliases over the Array API primitives, so that ``import polygrad as torch`` works. They
follow torch's semantics where it differs from the standard.

Two sources: each registry row's ``torch`` names (``polygrad.mul``, ``polygrad.arcsin``:
adding an op adds them), and the hand-written functions below, whose torch signatures
differ from the op's (``sum(input, dim, keepdim)``). Hand-written wins. Each accepts the
Array API spelling too (``axis=``, ``keepdims=``).
"""

from __future__ import annotations

import builtins
import functools
import warnings

from ..base import grad_mode
from ..graph import creation
from ..graph.engine import apply
from ..graph.tensor import Tensor
from ..primitives import PRIMITIVES
from . import array_api as _ops
from . import torch_linalg as linalg  # noqa: F401  (exported: polygrad.linalg)
from . import torch_more as _more
from . import torch_surface as _surface
from .promotion import FLOAT_VALUED, binary, floating

__all__ = ["sum", "mean", "prod", "amax", "amin", "max", "min", "var", "std", "logsumexp",
           "cat", "concat", "stack", "t", "transpose", "permute", "reshape", "flatten",
           "unsqueeze", "squeeze", "matmul", "mm", "bmm", "mv", "dot", "clamp", "clip", "pow",
           "where", "numel", "is_tensor", "norm", "cumsum", "argmax", "argmin", "flip",
           "maximum", "minimum", "abs", "neg", "square", "rsqrt",
           "softmax", "log_softmax", "allclose", "isclose", "equal", "outer"]


def _reduce(method, input, dim=None, keepdim=False, **kw):
    return getattr(input, method)(dim, keepdim, **kw)


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if not isinstance(input, Tensor):
        if isinstance(input, (list, tuple)) and any(isinstance(t, Tensor) for t in input):
            raise TypeError(f"sum(): argument 'input' must be a Tensor, not a "
                            f"{type(input).__name__} of Tensors; add them with "
                            f"builtins.sum(tensors) or polygrad.stack(tensors).sum(0)")
        raise TypeError(f"sum(): argument 'input' must be a Tensor, not "
                        f"{type(input).__name__}; wrap it with polygrad.tensor(...)")
    return input.sum(dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
    return input.mean(dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)


def prod(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return input.prod(dim, keepdim, axis=axis, keepdims=keepdims)


def amax(input, dim=None, keepdim=False):
    return input.amax(dim, keepdim)


def amin(input, dim=None, keepdim=False):
    return input.amin(dim, keepdim)


def max(input, dim=None, keepdim=False):
    # axis= and keepdims= are torch's aliases (numpy_names, below): (values, indices) too
    if isinstance(dim, Tensor):     # torch.max(input, other): maximum, torch's promotion
        return _surface._torch_binary("maximum", input, dim)
    return input.max(dim, keepdim)


def min(input, dim=None, keepdim=False):
    if isinstance(dim, Tensor):     # torch.min(input, other): minimum, torch's promotion
        return _surface._torch_binary("minimum", input, dim)
    return input.min(dim, keepdim)


def var(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    # torch.var(x, axis=0) is torch's (correction 1); polygrad.ops.var is the standard's
    return input.var(dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    return input.std(dim, unbiased, keepdim, correction=correction)


def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return floating(input)._reduce("logsumexp", dim, keepdim, axis, keepdims)


def cat(tensors, dim=0, *, axis=None):
    tensors, axis = list(tensors), dim if axis is None else axis
    ref = next((t for t in tensors if t.ndim != 1 or t.shape[0]), None)
    if ref is not None:
        # torch's legacy rule: a 1-D empty tensor beside others counts as none (zeros(0) is
        # the usual start of a tensor built up by cat); it stays in the graph, reshaped to
        # an empty slab of the others' shape, so that its .grad is torch's empty one
        empty = list(ref.shape)
        empty[axis % builtins.max(ref.ndim, 1)] = 0
        tensors = [t.reshape(empty) if t.ndim == 1 and not t.shape[0] else t for t in tensors]
        for t in tensors:
            if t.ndim != ref.ndim:
                raise RuntimeError(f"Tensors must have same number of dimensions: got "
                                   f"{ref.ndim} and {t.ndim}")
    return _ops.concat(tensors, axis=axis)


concat = cat


def stack(tensors, dim=0, *, axis=None):
    return _ops.stack(list(tensors), axis=dim if axis is None else axis)


def t(input):
    return input.t()


def transpose(input, dim0, dim1):
    return input.transpose(dim0, dim1)


def permute(input, dims):
    return input.permute(*dims)


def reshape(input, shape):
    return input.reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def unsqueeze(input, dim):
    return input.unsqueeze(dim)


def squeeze(input, dim=None, *, axis=None):
    return input.squeeze(dim if axis is None else axis)


def matmul(input, other):
    return _ops.matmul(input, other)


mm = bmm = mv = matmul


def dot(input, other):
    return _ops.vecdot(input, other)


def outer(input, vec2):
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def clamp(input, min=None, max=None):
    return _ops.clip(input, min, max)


clip = clamp


def pow(input, exponent):
    return _surface._torch_binary("pow", input, exponent)


def where(condition, input, other):
    return _ops.where(condition, input, other)


def maximum(input, other):
    return _surface._torch_binary("maximum", input, other)


def minimum(input, other):
    return _surface._torch_binary("minimum", input, other)


def abs(input):
    return _ops.abs(input)


def neg(input):
    return _ops.negative(input)


def square(input):
    return _ops.square(input)


def rsqrt(input):
    return _ops.reciprocal(_ops.sqrt(floating(input)))


def norm(input, p=2, dim=None, keepdim=False):
    return input.norm(p, dim, keepdim)


def cumsum(input, dim, *, dtype=None):
    return input.cumsum(dim, dtype=dtype)


def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return input.argmin(dim, keepdim)


def flip(input, dims):
    return input.flip(dims)


def _softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  f"to include dim=X as an argument.", UserWarning, stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


def _dim(dim, ndim):
    n = builtins.max(ndim, 1)     # this module's max is torch's
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % ndim if ndim else None


def torch_softmax(name, input, dim, dtype=None):
    """softmax or log_softmax (``name``) along ``dim``, torch's way (0-d inputs, dtype=,
    the deprecated implicit dim)."""
    if dim is None:
        dim = _softmax_dim(name, input.ndim)
    if dtype is not None:
        input = input.astype(dtype)
    if input.ndim == 0:
        return apply(PRIMITIVES[name], input.reshape(1), axis=0).reshape(())
    return apply(PRIMITIVES[name], input, axis=_dim(dim, input.ndim))


def softmax(input, dim=None, dtype=None):
    return torch_softmax("softmax", input, dim, dtype)


def log_softmax(input, dim=None, dtype=None):
    return torch_softmax("log_softmax", input, dim, dtype)


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    diff = _ops.abs(input - other)
    close = diff <= atol + rtol * _ops.abs(other)
    if equal_nan:
        close = _ops.logical_or(close, _ops.logical_and(_ops.isnan(input), _ops.isnan(other)))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other):
    return tuple(input.shape) == tuple(other.shape) and bool((input == other).all())


def _inplace_function(name):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"In-place ``{name[:-1]}``: ``polygrad.{name}(x)`` is ``x.{name}()``."
    return fn


for _name in ("zero_", "fill_", "add_", "sub_", "mul_", "div_", "clamp_"):
    globals()[_name] = _inplace_function(_name)
    __all__.append(_name)


def _legacy_constructor(name, dtype):
    # the pre-0.4 typed constructors the blitz tutorial uses (BZ-2: torch.FloatTensor([...]))
    def make(*data):
        if len(data) == 1 and (isinstance(data[0], (list, tuple)) or hasattr(data[0], "shape")):
            return creation.tensor(data[0], dtype=dtype)
        return creation.empty(*data, dtype=dtype)     # FloatTensor(2, 3): uninitialised 2x3
    make.__name__ = name
    make.__doc__ = (f"Legacy ``torch.{name}``: data makes a {dtype} tensor, sizes an "
                    f"uninitialised one. ``polygrad.{name}([1, 2]).dtype`` is {dtype}.")
    return make


for _name, _dtype in (("FloatTensor", "float32"), ("DoubleTensor", "float64"),
                      ("LongTensor", "int64")):
    globals()[_name] = _legacy_constructor(_name, _dtype)
    __all__.append(_name)


# -- the registry's torch names -------------------------------------------------------------

def derived(prim, name):
    """``polygrad.<name>`` for a registry row: ``fn(input)``, ``fn(input, other)`` (promoting
    as the operators do), else ``fn(input, *args, **options)``."""
    if prim.api == "unary":
        opts = prim.torch_opts
        cast = floating if prim.name in FLOAT_VALUED else (lambda x: x)   # torch: int -> float

        def fn(input):
            return apply(prim, cast(input), **opts)
    elif prim.api == "binary":
        op, rop = binary(prim.name, torch_style=True)

        def fn(input, other):
            return op(input, other) if isinstance(input, Tensor) else rop(other, input)
    else:
        def fn(input, *args, **opts):
            return apply(prim, input, *args, **opts)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"torch's ``{name}``: the registry row ``{prim.name}`` (``{prim.node_name}``)."
    return fn


def _derive_all():
    for prim in list(PRIMITIVES.builtin.values()):
        for name in prim.torch:
            if name not in globals():
                globals()[name] = derived(prim, name)
                __all__.append(name)
            if prim.api is not None and name + "_" not in globals():
                globals()[name + "_"] = _inplace_function(name + "_")
                __all__.append(name + "_")


__all__.append("linalg")      # torch.linalg's spellings (vector_norm(dim=, keepdim=))
_ROW_NAMES = {name for prim in PRIMITIVES.builtin.values() for name in prim.torch}
for _name in _surface.__all__:          # issue 14's surface: compositions, torch signatures
    if _name in _surface.OVERRIDES or (_name not in globals() and _name not in _ROW_NAMES):
        globals()[_name] = getattr(_surface, _name)
        if _name not in __all__:
            __all__.append(_name)
for _name in _more.__all__:             # gather, scatter, topk, cummax ...: compositions
    if _name not in globals() and _name not in _ROW_NAMES:
        globals()[_name] = getattr(_more, _name)
        __all__.append(_name)

_derive_all()


# -- out= ----------------------------------------------------------------------------------------
# torch's functions write their result into ``out=`` when given one. Not differentiable (as in
# torch); the result is cast to out's dtype where torch casts (never to a lower kind); an out
# of another shape is resized (its storage rebound, with torch's warning when it had elements).

_KIND = {"bool": 0, "signed integer": 1, "unsigned integer": 1, "real floating": 2,
         "complex floating": 3}
_NO_OUT = {"is_tensor", "numel", "allclose", "equal", "FloatTensor", "DoubleTensor",
           "LongTensor", "IntTensor", "BoolTensor", "HalfTensor", "ByteTensor", "linalg"}


def _write_out(name, result, out):
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{name}(): out= must be a tuple of {len(result)} tensors")
        for r, o in zip(result, out):
            _write_out(name, r, o)
        return out
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if _KIND[result.dtype.kind] > _KIND[out.dtype.kind]:
        raise RuntimeError(f"result type {result.dtype.name} can't be cast to the desired "
                           f"output type {out.dtype.name}")
    value = result.detach() if result.dtype == out.dtype else result.detach().astype(out.dtype)
    if tuple(value.shape) == tuple(out.shape):
        with grad_mode.no_grad():
            out.copy_(value)
        return out
    if out.numel():
        warnings.warn(f"An output with one or more elements was resized since it had shape "
                      f"{list(out.shape)}, which does not match the required output shape "
                      f"{list(value.shape)}.", UserWarning, stacklevel=3)
    out.data = value.clone()
    return out


def _with_out(fn):
    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if grad_mode.is_grad_enabled() and any(
                isinstance(t, Tensor) and t.requires_grad
                for t in (*args, *kwargs.values(), *(out if isinstance(out, tuple) else (out,)))):
            raise RuntimeError(f"{fn.__name__}(): functions with out=... arguments don't "
                               f"support automatic differentiation, but one of the arguments "
                               f"requires grad.")
        return _write_out(fn.__name__, fn(*args, **kwargs), out)
    return call


for _name in __all__:
    _fn = globals()[_name]
    if callable(_fn) and not isinstance(_fn, type):
        _fn = globals()[_name] = _surface.numpy_names(_fn)     # axis=, keepdims= as torch's
    if (callable(_fn) and not isinstance(_fn, type) and not _name.endswith("_")
            and _name not in _NO_OUT and not _name.startswith("_")):
        globals()[_name] = _with_out(_fn)
