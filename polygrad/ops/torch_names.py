"""Torch-flavoured functions (``dim=``, ``keepdim=``, ``cat``, ``t``, ``sin_``) as thin
aliases over the Array API primitives, so that ``import polygrad as torch`` works.

Each accepts the Array API spelling too (``axis=``, ``keepdims=``).
"""

from __future__ import annotations

from . import ops as _ops
from ._tensor import Tensor

__all__ = ["sum", "mean", "prod", "amax", "amin", "max", "min", "var", "std", "logsumexp",
           "cat", "concat", "stack", "t", "transpose", "permute", "reshape", "flatten",
           "unsqueeze", "squeeze", "matmul", "mm", "bmm", "mv", "dot", "clamp", "clip", "pow",
           "where", "numel", "is_tensor", "norm", "cumsum", "argmax", "argmin", "flip",
           "maximum", "minimum", "abs", "neg", "square", "rsqrt", "sigmoid", "relu",
           "softmax", "log_softmax", "allclose", "isclose", "equal", "outer"]


def _reduce(method, input, dim=None, keepdim=False, **kw):
    return getattr(input, method)(dim, keepdim, **kw)


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    return input.sum(dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return input.mean(dim, keepdim, axis=axis, keepdims=keepdims)


def prod(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return input.prod(dim, keepdim, axis=axis, keepdims=keepdims)


def amax(input, dim=None, keepdim=False):
    return input.amax(dim, keepdim)


def amin(input, dim=None, keepdim=False):
    return input.amin(dim, keepdim)


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if isinstance(dim, Tensor):
        return _ops.maximum(input, dim)
    if axis is not None or keepdims is not None:
        return input._reduce("max", dim, keepdim, axis, keepdims)
    return input.max(dim, keepdim)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if isinstance(dim, Tensor):
        return _ops.minimum(input, dim)
    if axis is not None or keepdims is not None:
        return input._reduce("min", dim, keepdim, axis, keepdims)
    return input.min(dim, keepdim)


def var(input, dim=None, unbiased=True, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    if axis is not None or keepdims is not None:   # Array API call: correction defaults to 0
        return input._reduce("var", dim, keepdim, axis, keepdims,
                             correction=float(correction or 0.0))
    return input.var(dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased=True, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    if axis is not None or keepdims is not None:
        return input._reduce("std", dim, keepdim, axis, keepdims,
                             correction=float(correction or 0.0))
    return input.std(dim, unbiased, keepdim, correction=correction)


def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return input._reduce("logsumexp", dim, keepdim, axis, keepdims)


def cat(tensors, dim=0, *, axis=None):
    return _ops.concat(list(tensors), axis=dim if axis is None else axis)


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
    return _ops.pow(input, exponent)


def where(condition, input, other):
    return _ops.where(condition, input, other)


def maximum(input, other):
    return _ops.maximum(input, other)


def minimum(input, other):
    return _ops.minimum(input, other)


def abs(input):
    return _ops.abs(input)


def neg(input):
    return _ops.negative(input)


def square(input):
    return _ops.square(input)


def rsqrt(input):
    return input.rsqrt()


def norm(input, p=2, dim=None, keepdim=False):
    return input.norm(p, dim, keepdim)


def cumsum(input, dim):
    return input.cumsum(dim)


def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return input.argmin(dim, keepdim)


def flip(input, dims):
    return input.flip(dims)


def sigmoid(input):
    return input.sigmoid()


def relu(input):
    return input.relu()


def softmax(input, dim):
    return input.softmax(dim)


def log_softmax(input, dim):
    return input.log_softmax(dim)


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


for _name in ("sin_", "cos_", "exp_", "log_", "tanh_", "sqrt_", "abs_", "neg_", "zero_",
              "fill_", "add_", "sub_", "mul_", "div_", "clamp_"):
    if hasattr(Tensor, _name):
        globals()[_name] = _inplace_function(_name)
        __all__.append(_name)


def _legacy_constructor(name, dtype):
    # the pre-0.4 typed constructors the blitz tutorial uses (BZ-2: torch.FloatTensor([...]))
    def make(*data):
        from . import creation
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
