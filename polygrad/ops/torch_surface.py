"""More of torch's surface (issue 14): functions and Tensor methods with torch's signatures
(``dim=``, ``keepdim=``, ``dims=``, ``alpha=``, ``diagonal=``), each a composition of the
Array API namespace's differentiable ops, so their gradients come from the primitives'
rules. ``torch_names`` re-exports ``__all__``; ``methods.install`` puts ``METHODS`` on the
Tensor (hand-written methods there win).

Not here: ``digamma`` and ``lgamma`` (the Array API has no basis for them, and no backend
in every plugin offers them), ``fmod`` (a row of its own).
"""

from __future__ import annotations

import builtins
import functools
import inspect
import math
import string

from ..graph.engine import apply as _apply
from ..graph.inplace import mark_multi_output
from ..graph.tensor import Tensor
from ..primitives import PRIMITIVES as _P
from ..primitives.special import erfc_series
from . import array_api as _ops
from . import linalg as _linalg
from . import special as _special
from .promotion import binary, floating, number_like, zero_d_promoted

__all__ = [
    "add", "sub", "subtract", "div", "divide", "fmod", "addcdiv", "addcmul", "atleast_1d",
    "atleast_2d", "atleast_3d", "chunk", "clone",
    "concatenate", "cumprod", "det", "detach", "diagonal", "einsum", "erf", "erfc", "exp2",
    "fliplr", "flipud", "float_power", "fmax", "fmin", "frac", "hstack", "vstack",
    "index_select", "inner", "inverse", "lerp", "logaddexp2", "logdet", "logit",
    "matrix_power", "median", "movedim", "moveaxis", "nansum", "narrow", "repeat_interleave",
    "rot90", "select", "sinc", "split", "swapaxes", "swapdims", "trace", "unbind", "vdot",
    "xlogy", "roll", "tensordot", "diff", "tril", "triu", "tile", "sort", "argsort", "diag",
    "index_add", "round",
]

# Names a registry row or the Array API namespace also gives, which these replace because
# torch's signature differs (alpha=, rounding_mode=, shifts/dims, dims=, diagonal=). Any
# other name here yields to a registry row of the same name: a primitive beats a composition.
OVERRIDES = frozenset({"add", "sub", "subtract", "div", "divide", "roll", "tensordot", "diff",
                       "tril", "triu", "sort", "argsort", "round", "fmod"})


_SCATTER_ADD = _ops.generated(_P["scatter_add"])
_SINC = _ops.generated(_P["sinc"])


def numpy_names(fn):
    """``fn`` also taking numpy's names, ``axis=`` for ``dim=`` and ``keepdims=`` for
    ``keepdim=``, as torch's argument parser does for every function and method (``fn``
    itself where it takes them already)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    pairs = tuple((alias, name) for alias, name in (("axis", "dim"), ("keepdims", "keepdim"))
                  if name in params and alias not in params)
    if not pairs or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        for alias, name in pairs:
            if alias in kwargs:
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {name}= and its alias {alias}=")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)
    return call


class ReturnTypes(tuple):
    """torch's ``(values, indices)`` results (``torch.return_types.sort``, ``max`` ...): a
    tuple whose items are also ``.values`` and ``.indices``."""

    __slots__ = ()

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


_t = number_like


def _norm_dim(dim, ndim):
    return dim % builtins.max(ndim, 1)


# -- arithmetic ------------------------------------------------------------------------------

def add(input, other, *, alpha=1):
    return _torch_binary("add", input, other if alpha == 1 else other * alpha)


def sub(input, other, *, alpha=1):
    return _torch_binary("subtract", input, other if alpha == 1 else other * alpha)


def _torch_binary(name, input, other):
    """A binary row as torch's function: a 0-d tensor beside a dimensioned one promotes as
    torch's (``promotion._promote_zero_d``); the operators follow the standard."""
    op, rop = binary(name, torch_style=True)
    return op(input, other) if isinstance(input, Tensor) else rop(other, input)


subtract = sub


def div(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        if isinstance(input, Tensor) and isinstance(other, Tensor) and not (
                input.dtype.is_floating_point or input.dtype.is_complex or
                other.dtype.is_floating_point or other.dtype.is_complex):
            input, other = floating(input), floating(other)    # int / int: float
        return _torch_binary("divide", input, other)
    if rounding_mode == "floor":
        q = _torch_binary("floor_divide", input, other)
        if not q.dtype.is_floating_point:
            return q
        # torch's (and numpy's) floor division is fmod-based (2 // 1e-3 is 1999, inf // 2 is
        # NaN), not floor(a / b); as torch's, its result requires grad, with gradient 0: each
        # float operand joins the graph through a branch never taken
        never = _ops.zeros_like(q, dtype="bool")
        for t in (input, other):
            if isinstance(t, Tensor) and t.dtype.is_floating_point:
                q = _ops.where(never, _ops.floor(t).astype(q.dtype), q)
        return q
    if rounding_mode == "trunc":
        q = _ops.trunc(_torch_binary("divide", input, other))
        return q if _float_like(input) or _float_like(other) else q.astype(input.dtype)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                       f"found '{rounding_mode}'")


divide = div


def fmod(input, other):
    """C's fmod (the remainder with the sign of ``input``), promoting as torch's functions
    (an int tensor and a Python float: the default float dtype; a 0-d tensor as a number)."""
    return _torch_binary("fmod", input, other)


def _float_like(x):
    if isinstance(x, Tensor):
        return x.dtype.is_floating_point or x.dtype.is_complex
    return isinstance(x, (float, complex))


def addcdiv(input, tensor1, tensor2, *, value=1):
    # torch's functions: a 0-d tensor operand promotes as a number (the operators would not)
    return _torch_binary("add", input, value * _torch_binary("divide", tensor1, tensor2))


def addcmul(input, tensor1, tensor2, *, value=1):
    return _torch_binary("add", input, value * _torch_binary("multiply", tensor1, tensor2))


def lerp(input, end, weight):
    """torch's lerp: ``input + weight (end - input)`` for ``|weight| < 0.5``, else
    ``end - (end - input) (1 - weight)`` (exact at weight 1, and inf at an infinite end),
    differentiated as torch's (one node: ``LerpBackward0`` for a number weight,
    ``LerpBackward1`` for a tensor)."""
    if not isinstance(weight, Tensor):
        return _apply(_P["lerp"], input, end, weight=weight)
    return _apply(_P["lerp"], input, end, weight)


def float_power(input, exponent):
    base = input.astype("float64") if isinstance(input, Tensor) else float(input)
    exp = exponent.astype("float64") if isinstance(exponent, Tensor) else float(exponent)
    return base ** exp


def fmax(input, other):
    """torch's fmax: the larger, ignoring a NaN; at a tie ``input`` gets all of the gradient
    (torch's mask ``input >= other or other is NaN``)."""
    input, other = zero_d_promoted(input, other)
    return _ops.where((input >= other) | _ops.isnan(other), input, other)


def fmin(input, other):
    """torch's fmin: the smaller, ignoring a NaN; at a tie ``input`` gets all of the gradient."""
    input, other = zero_d_promoted(input, other)
    return _ops.where((input <= other) | _ops.isnan(other), input, other)


def round(input, *, decimals=0):
    """torch's round, to ``decimals`` places (half to even); its gradient is 0."""
    if decimals == 0:
        return _ops.round(input)
    scale = 10.0 ** builtins.abs(decimals)
    if decimals > 0:
        return _ops.round(input * scale) / scale
    return _ops.round(input / scale) * scale


def frac(input):
    return input - _ops.trunc(input)


def erf(input):
    return _special.erf(floating(input))


# erfc from its continued fraction where it is small (exact to an ulp also where erfc is tiny,
# which 1 - erf(x) is not), 1 - erf's series elsewhere: polygrad.primitives.special's

def erfc(input):
    """Its value from erfc_series, its derivative exactly ``-2/sqrt(pi) exp(-x^2)``: erfcc on the
    detached input, plus ``erf(detached x) - erf(x)`` (0 in value, -erf's in gradient)."""
    x = floating(input)
    d = x.detach()
    tail = erfc_series(_ops, _ops.abs(d))
    value = _ops.where(d >= 0, tail, 2.0 - tail)
    return value + (_special.erf(d) - _special.erf(x))     # an exact 0, so value exactly


def exp2(input):
    return _ops.exp(floating(input) * math.log(2.0))


def logaddexp2(input, other):
    ln2 = math.log(2.0)
    return _ops.logaddexp(input * ln2, other * ln2) / ln2


def logit(input, eps=None):
    return _special.logit(floating(input), eps=eps)


def sinc(input):
    return _SINC(floating(input))


def xlogy(input, other):
    if not isinstance(input, Tensor):
        input = _t(input, other)
    if not isinstance(other, Tensor):
        other = _t(other, input)
    if not (input.dtype.is_floating_point or other.dtype.is_floating_point):
        input, other = floating(input), floating(other)
    return _special.xlogy(input, other)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    clean = _ops.where(_ops.isnan(input), _ops.zeros_like(input), input)
    return clean.sum(dim, keepdim, dtype=dtype)


def cumprod(input, dim, *, dtype=None):
    if input.ndim == 0:     # torch: dim 0 or -1 of a 0-d tensor, and the shape stays ()
        _ops._axis_of_0d(dim)
        return _ops.cumulative_prod(input.reshape(1), axis=0, dtype=dtype).reshape(())
    return _ops.cumulative_prod(input, axis=dim, dtype=dtype)


# -- shapes ----------------------------------------------------------------------------------

def _atleast(n, tensors):
    def one(x):
        while x.ndim < n:
            x = x.reshape((1,) + tuple(x.shape)) if n < 3 or x.ndim == 0 else (
                x.reshape(1, *x.shape, 1) if x.ndim == 1 else x.reshape(*x.shape, 1))
        return x
    if len(tensors) == 1 and not isinstance(tensors[0], Tensor):
        return tuple(one(x) for x in tensors[0])
    out = tuple(one(x) for x in tensors)
    return out[0] if len(out) == 1 else out


def atleast_1d(*tensors):
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    return _atleast(3, tensors)


def clone(input, *, memory_format=None):
    return input.clone()


def detach(input):
    return input.detach()


def concatenate(tensors, axis=0):
    return _ops.concat(list(tensors), axis=axis)


def hstack(tensors):
    tensors = atleast_1d(*tensors) if len(tensors) > 1 else (atleast_1d(tensors[0]),)
    return _ops.concat(list(tensors), axis=0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    tensors = atleast_2d(*tensors) if len(tensors) > 1 else (atleast_2d(tensors[0]),)
    return _ops.concat(list(tensors), axis=0)


def fliplr(input):
    return _ops.flip(input, axis=1)


def flipud(input):
    return _ops.flip(input, axis=0)


def movedim(input, source, destination):
    if input.ndim == 0:         # torch: dims 0 or -1 of a 0-d tensor, a view of it
        _ops._axis_of_0d(tuple(_as_tuple(source)) + tuple(_as_tuple(destination)))
        return input.permute_dims(())
    return _ops.moveaxis(input, source, destination)


def _as_tuple(dims):
    return (dims,) if isinstance(dims, int) else tuple(dims)


moveaxis = movedim


def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


swapdims = swapaxes


def narrow(input, dim, start, length):
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    dim = _norm_dim(dim, input.ndim)
    start = int(start) % input.shape[dim] if int(start) < 0 else int(start)
    key = (slice(None),) * dim + (slice(start, start + length),)
    return input[key]


def select(input, dim, index):
    dim = _norm_dim(dim, input.ndim)
    return input[(slice(None),) * dim + (index,)]


def index_select(input, dim, index):
    if input.ndim == 0:         # torch: one index (0) into a 0-d tensor, a 0-d result
        _ops._axis_of_0d(dim)
        if index.numel() != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got "
                               f"{index.numel()} value(s)")
        return _ops.take(input.reshape(1), index.reshape(1), axis=0).reshape(())
    return _ops.take(input, index, axis=dim)


def unbind(input, dim=0):
    return mark_multi_output(tuple(select(input, dim, i) for i in range(input.shape[dim])),
                             "Unbind")


def split(tensor, split_size_or_sections, dim=0):
    dim = _norm_dim(dim, tensor.ndim)
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {dim}), but got "
                               f"split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, dim, start, s))
        start += s
    return mark_multi_output(tuple(out), "Split")


def chunk(input, chunks, dim=0):
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    n = input.shape[_norm_dim(dim, input.ndim)]
    return split(input, builtins.max(1, -(-n // chunks)), dim)


def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    if dim is None:
        input, dim = input.reshape(-1), 0
    if isinstance(repeats, Tensor):
        repeats = repeats.tolist()
        if not isinstance(repeats, list):
            repeats = int(repeats)
    if isinstance(repeats, int):
        dim = _norm_dim(dim, input.ndim)
        x = _ops.expand_dims(input, axis=dim + 1)
        shape = list(x.shape)
        shape[dim + 1] = repeats
        x = _ops.broadcast_to(x, tuple(shape))
        new = list(input.shape)
        new[dim] *= repeats
        return x.reshape(tuple(new))
    index = [i for i, r in enumerate(repeats) for _ in range(int(r))]
    idx = _ops.asarray(index, dtype="int64", device=input.device)
    return _ops.take(input, idx, axis=dim)


def rot90(input, k=1, dims=(0, 1)):
    d0, d1 = dims
    k %= 4
    if k == 1:
        return _ops.flip(input, axis=d1).transpose(d0, d1)
    if k == 2:
        return _ops.flip(input, axis=(d0, d1))
    if k == 3:
        return _ops.flip(input, axis=d0).transpose(d0, d1)
    return input.clone()


def roll(input, shifts, dims=None):
    if isinstance(shifts, list):
        shifts = tuple(shifts)
    if isinstance(dims, list):
        dims = tuple(dims)
    return _ops.roll(input, shift=shifts, axis=dims)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    return _ops.diff(input, axis=dim, n=n, prepend=prepend, append=append)


def tril(input, diagonal=0):
    _matrices("tril", input)
    return _ops.tril(input, k=diagonal)


def triu(input, diagonal=0):
    _matrices("triu", input)
    return _ops.triu(input, k=diagonal)


def _matrices(name, input):
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return _ops.tile(input, dims)


def tensordot(a, b, dims=2, out=None):
    if isinstance(dims, (list, tuple)):
        xa, xb = dims
        dims = (tuple([xa] if isinstance(xa, int) else xa),
                tuple([xb] if isinstance(xb, int) else xb))
    elif isinstance(dims, Tensor):
        dims = int(dims.item()) if dims.ndim == 0 else tuple(tuple(r) for r in dims.tolist())
    return _ops.tensordot(a, b, axes=dims)


# -- products and linear algebra -------------------------------------------------------------

def inner(input, other):
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return _ops.tensordot(input, other, axes=((input.ndim - 1,), (other.ndim - 1,)))


def vdot(input, other):
    return (_ops.conj(input) * other).sum() if input.dtype.is_complex else (input * other).sum()


def diagonal(input, offset=0, dim1=0, dim2=1):
    nd = input.ndim
    d1, d2 = _norm_dim(dim1, nd), _norm_dim(dim2, nd)
    moved = input if (d1, d2) == (nd - 2, nd - 1) else _ops.moveaxis(input, (d1, d2), (-2, -1))
    rows, cols = moved.shape[-2], moved.shape[-1]
    n = builtins.max(0, builtins.min(rows, cols - offset) if offset >= 0
                     else builtins.min(rows + offset, cols))
    if n == 0 or cols == 0:
        return _linalg.diagonal(moved, offset=offset)
    # a view, as torch's: every (cols + 1)-th element of the flattened matrices (where the
    # flattening itself is a view, i.e. the matrices are contiguous); matrices laid out
    # column-major (a transpose, torch's and the numpy backend's cholesky, inv, solve) through
    # their transpose, whose diagonal at -offset is the same elements
    flat = moved.reshape(*moved.shape[:-2], rows * cols)
    if flat._view is None and rows > 1 and cols > 1:
        flipped = moved.mT.reshape(*moved.shape[:-2], rows * cols)
        if flipped._view is not None:
            flat, offset, rows, cols = flipped, -offset, cols, rows
    start = offset if offset >= 0 else -offset * cols
    return flat[..., start:start + (n - 1) * (cols + 1) + 1:cols + 1]


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return _linalg.diagonal(input).sum()


def det(input):
    return _linalg.det(input)


def logdet(input):
    """torch's logdet: log|det|, nan where the determinant is negative (as torch's, through
    slogdet: no gradient flows there)."""
    sign, logabsdet = _linalg.slogdet(input)
    return _ops.where(sign == -1, math.nan, logabsdet)


def inverse(input):
    return _linalg.inv(input)


def matrix_power(input, n):
    return _linalg.matrix_power(input, n)


class _ValuesIndices(tuple):
    """torch's ``(values, indices)`` result (``median(dim)``)."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def median(input, dim=None, keepdim=False):
    """The lower median, as torch's (NaN where a NaN is present); with ``dim``,
    ``(values, indices)``, the index of the first NaN in a slice that has one."""
    if dim is None:
        # the gradient is shared evenly by every element equal to the median (all the NaNs
        # where it is NaN), as torch's evenly_distribute_backward: the max over those
        # elements, whose rule splits ties evenly (the min where the median is -inf)
        flat = input.reshape(-1)
        if flat.shape[0] == 0:      # torch: NaN, and an empty gradient
            return _ops.sum(flat) * math.nan
        order = _ops.argsort(flat, stable=True)
        value = _ops.take(flat, order[(flat.shape[0] - 1) // 2:][:1], axis=0).detach()
        if not (input.dtype.is_floating_point or input.dtype.is_complex):
            return value.reshape(())        # no NaN, no gradient: the input's dtype
        nan = _ops.isnan(flat)
        value = _ops.where(_ops.any(nan), math.nan, value)
        mask = _ops.where(_ops.isnan(value), nan, flat == value)
        if builtins.bool(value == -math.inf):
            return _ops.where(mask, flat, math.inf).min()
        return _ops.where(mask, flat, -math.inf).max()
    dim = _norm_dim(dim, input.ndim)
    if not input.ndim:          # torch: the value and a 0-d index 0
        return _ValuesIndices((input.clone(), _ops.zeros((), dtype="int64", device=input.device)))
    order = _ops.argsort(input, axis=dim, stable=True)
    k = (input.shape[dim] - 1) // 2 if input.ndim else 0
    idx = narrow(order, dim, k, 1) if input.ndim else order
    if input.ndim:
        nan = _ops.isnan(input)
        first_nan = _ops.argmax(_ops.astype(nan, _ops.int8), axis=dim, keepdims=True)
        idx = _ops.where(_ops.any(nan, axis=dim, keepdims=True), first_nan, idx)
    values = _ops.take_along_axis(input, idx, axis=dim) if input.ndim else input
    if not keepdim and input.ndim:
        values, idx = _ops.squeeze(values, axis=dim), _ops.squeeze(idx, axis=dim)
    return _ValuesIndices((values, idx))


def einsum(equation, *operands):
    """``einsum`` as a composition: repeated indices of one operand take its diagonal, every
    operand is laid out over all the indices (``...`` standing for its leading broadcast
    dimensions), the operands are multiplied, and the indices not in the output are summed.
    Implicit equations (no ``->``) keep the indices seen once, sorted, after ``...``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation" if len(operands) > len(ins) else
                           "einsum(): fewer operands were provided than specified in the "
                           "equation")
    # '...': as many fresh letters as the operand has dimensions beyond its named ones
    fresh = [c for c in string.ascii_letters if c not in eq]
    n_ell = builtins.max([x.ndim - len(t.replace("...", "")) for t, x in zip(ins, operands)
                          if "..." in t] or [0])
    ell = "".join(fresh[:n_ell])
    ins = [t.replace("...", ell[n_ell - (x.ndim - len(t.replace("...", ""))):])
           for t, x in zip(ins, operands)]
    if not arrow:
        named = "".join(ins).replace("...", "")
        out = ell + "".join(sorted(c for c in set(named) if c not in ell and
                                   named.count(c) == 1))
    out = out.replace("...", ell)
    letters = []
    for term in ins:
        for c in term:
            if c not in letters:
                letters.append(c)
    laid = []
    for term, x in zip(ins, operands):
        term = list(term)
        # repeated indices in one operand: take the diagonal, once per repeat
        while len(set(term)) < len(term):
            c = next(c for c in term if term.count(c) > 1)
            i = term.index(c)
            j = term.index(c, i + 1)
            x = diagonal(x, 0, i, j)
            del term[j]
            del term[i]
            term.append(c)
        own = dict(zip(term, x.shape))
        present = [c for c in letters if c in term]
        x = _ops.permute_dims(x, tuple(term.index(c) for c in present)) if present else x
        laid.append(x.reshape(tuple(own.get(c, 1) for c in letters)))
    prod = laid[0]
    for x in laid[1:]:
        prod = prod * x
    summed = tuple(i for i, c in enumerate(letters) if c not in out)
    kept = [c for c in letters if c in out]
    if summed:
        prod = prod.sum(summed)
    if kept:
        prod = _ops.permute_dims(prod, tuple(kept.index(c) for c in out))
    return prod


# -- sorting, diagonals, index_add -------------------------------------------------------------

def sort(input, dim=-1, descending=False, stable=False, *, axis=None):
    """torch's ``sort``: ``(values, indices)``; the gradient flows to the sorted positions."""
    dim = dim if axis is None else axis
    if not input.shape:
        return ReturnTypes((input.clone(), _ops.zeros((), dtype="int64", device=input.device)))
    idx = _ops.argsort(input, axis=dim, descending=descending, stable=True)
    return ReturnTypes((_ops.take_along_axis(input, idx, axis=dim), idx))


def argsort(input, dim=-1, descending=False, stable=False, *, axis=None):
    dim = dim if axis is None else axis
    if not input.shape:
        return _ops.zeros((), dtype="int64", device=input.device)
    return _ops.argsort(input, axis=dim, descending=descending, stable=True)


def diag(input, diagonal=0):
    """torch's ``diag``: a vector becomes a square matrix with it on ``diagonal``; a matrix
    gives its ``diagonal``-th diagonal."""
    if input.ndim == 2:
        return globals()["diagonal"](input, offset=diagonal)
    if input.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    n = input.shape[0] + builtins.abs(diagonal)
    rows = _ops.arange(input.shape[0], device=input.device)
    r, c = (rows, rows + diagonal) if diagonal >= 0 else (rows - diagonal, rows)
    return _scatter_add(input, (n * n,), (r * n + c,)).reshape(n, n)


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` added at ``index`` along ``dim`` (repeated indices
    add up), differentiable in ``input`` and ``source``."""
    dim = _norm_dim(dim, input.ndim)
    if alpha != 1:
        source = source * alpha
    key = (slice(None),) * dim + (index._st.array if isinstance(index, Tensor) else index,)
    return input + _scatter_add(source, tuple(input.shape), key)


def _scatter_add(values, shape, key):
    """``zeros(shape)`` with ``values`` added at ``key`` (differentiable in ``values``)."""
    key = tuple(k._st.array if isinstance(k, Tensor) else k for k in key)
    return _SCATTER_ADD(values, shape=shape, key=key)


def _index_add_(self, dim, index, source, *, alpha=1):
    return self.copy_(index_add(self, dim, index, source, alpha=alpha))


# -- Tensor methods --------------------------------------------------------------------------

def _masked_fill_(self, mask, value):
    self[mask] = value
    return self


def _repeat(self, *sizes):
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) \
        else tuple(sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    return _ops.tile(self, sizes)


def _tile(self, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) \
        else tuple(dims)
    return tile(self, dims)


def _unflatten(self, dim, sizes):
    dim = _norm_dim(dim, self.ndim)
    sizes = list(sizes)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        sizes[sizes.index(-1)] = self.shape[dim] // known
    return self.reshape(tuple(self.shape[:dim]) + tuple(sizes) + tuple(self.shape[dim + 1:]))


def _contiguous(self, memory_format=None):
    return self


def _outer(self, vec2):
    return self.reshape(-1, 1) * vec2.reshape(1, -1)


def _cumprod(self, dim, *, dtype=None):
    return cumprod(self, dim, dtype=dtype)


def _clip_(self, min=None, max=None):
    return self.clamp_(min, max)


METHODS = {
    "fmod": fmod, "add": add, "sub": sub, "subtract": sub, "div": div, "divide": div, "addcmul": addcmul,
    "addcdiv": addcdiv,
    "clip_": _clip_, "contiguous": _contiguous, "cumprod": _cumprod, "det": det,
    "diagonal": diagonal, "diff": diff, "erf": erf, "erfc": erfc, "exp2": exp2, "lerp": lerp,
    "logit": logit, "masked_fill_": _masked_fill_, "movedim": movedim, "moveaxis": movedim,
    "nansum": nansum, "outer": _outer, "repeat": _repeat, "roll": roll, "sinc": sinc,
    "swapaxes": swapaxes, "swapdims": swapaxes, "tile": _tile, "trace": trace, "tril": tril,
    "triu": triu, "unflatten": _unflatten, "frac": frac, "fmax": fmax, "fmin": fmin,
    "float_power": float_power, "logaddexp2": logaddexp2, "xlogy": xlogy, "inner": inner,
    "vdot": vdot, "logdet": logdet, "inverse": inverse, "matrix_power": matrix_power,
    "median": median, "narrow": narrow, "select": select, "index_select": index_select,
    "unbind": unbind, "split": split, "chunk": chunk, "repeat_interleave": repeat_interleave,
    "fliplr": fliplr, "flipud": flipud, "rot90": rot90, "tensordot": tensordot,
    "sort": sort, "argsort": argsort, "diag": diag, "index_add": index_add,
    "index_add_": _index_add_, "round": round,
}
