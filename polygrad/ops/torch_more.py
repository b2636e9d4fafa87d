"""Still more of torch's surface: indexing by index tensors (``gather``, ``scatter``,
``scatter_add``, ``index_put``, ``masked_fill``, ``masked_select``, ``take_along_dim``),
selections (``topk``, ``kthvalue``, ``cummax``, ``cummin``), scans (``logcumsumexp``),
``nan_to_num``, ``nanmean``, ``std_mean``, ``var_mean``, ``diag_embed``, ``unfold`` and a
few elementwise functions (``sgn``, ``deg2rad``, ``rad2deg``, ``erfinv``, and ``lgamma``,
``digamma``, ``polygamma`` over the rows of ``polygrad.primitives.special``).

Each is a composition of the differentiable namespace's ops, so its gradient comes from
the primitives' rules: a selection is ``take_along_axis`` at the chosen indices (the
gradient flows to them, duplicates adding up, as torch's ``scatter_add`` backward); a
write is ``setitem`` (the gradient of the overwritten places is 0, the written values get
``gather`` of it); an accumulation is ``scatter_add``. ``torch_names`` re-exports
``__all__``; ``methods.install`` puts ``METHODS`` on the Tensor (hand-written methods win).

Ties: ``cummax``/``cummin`` give the last index of the extreme, as torch's; ``topk`` and
``kthvalue`` order equal values by position (a stable sort), where torch's order among
ties is whatever its partial sort leaves (unspecified, and not reproducible in general).
"""

from __future__ import annotations

import builtins
import collections
import math

from ..graph.tensor import Tensor
from ..primitives import PRIMITIVES as _P
from ..primitives.indexing import along_key
from ..primitives.reductions import _logcumsumexp_impl as logcumsumexp_scan
from . import array_api as _ops
from . import linalg as _linalg
from . import special as _special
from .promotion import floating
from .torch_surface import ReturnTypes, _torch_binary, nansum, narrow

__all__ = [
    "gather", "scatter", "scatter_add", "index_put", "masked_fill", "masked_select",
    "take_along_dim", "topk", "kthvalue", "cummax", "cummin", "logcumsumexp", "sgn",
    "nan_to_num", "nanmean", "std_mean", "var_mean", "diag_embed", "deg2rad", "rad2deg",
    "erfinv", "lgamma", "digamma", "polygamma", "dist", "cdist", "renorm", "heaviside",
    "clamp_min", "clamp_max", "addmm", "addmv", "baddbmm", "addbmm", "kron", "index_fill",
    "rsub", "fix", "isposinf", "isneginf", "msort", "aminmax", "ravel", "count_nonzero",
    "nonzero", "take", "broadcast_tensors", "cross", "angle", "isreal", "ldexp",
]

_SETITEM = _ops.generated(_P["setitem"])
_LGAMMA = _ops.generated(_P["lgamma"])
_POLYGAMMA = _ops.generated(_P["polygamma"])
_SIGN = _ops.generated(_P["sign"])
_SCATTER_ADD = _ops.generated(_P["scatter_add"])
_LOGCUMSUMEXP = _ops.generated(_P["logcumsumexp"])


def _dim(dim, ndim):
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _raw(t):
    return t._st.array


def _check_index(name, input, dim, index):
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not "
                        f"{type(index).__name__}")
    if index.dtype.name != "int64":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    if index.ndim != builtins.max(input.ndim, 1) and not (input.ndim == 0 and index.ndim == 0):
        raise RuntimeError("Index tensor must have the same number of dimensions as "
                           f"{'self' if name != 'gather' else 'input'} tensor")
    n = input.shape[dim] if input.ndim else 1
    if index.numel() and builtins.bool(((index < 0) | (index >= n)).any()):
        bad = int(index[(index < 0) | (index >= n)][0])
        raise RuntimeError(f"index {bad} is out of bounds for dimension {dim} with size {n}")


def _leading(x, shape, dim=None):
    """``x[:shape[0], :shape[1], ...]`` (every axis but ``dim``): torch's gather and scatter
    read only the first ``index.shape`` entries of the other axes."""
    if tuple(x.shape) == tuple(shape):
        return x
    key = tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(shape))
    return x[key]


def _along(index, dim):
    return along_key(index._backend.xp, _raw(index), dim)


# -- gather, scatter, index_put ----------------------------------------------------------------

def gather(input, dim, index, *, sparse_grad=False):
    """``out[i][j] = input[index[i][j]][j]`` (dim 0); repeated indices add up in the
    gradient, as torch's.

    >>> import polygrad
    >>> polygrad.gather(polygrad.tensor([[1., 2.], [3., 4.]]), 1, polygrad.tensor([[1], [0]]))
    tensor([[2.],
            [3.]])
    """
    if input.ndim == 0:
        _check_index("gather", input, 0, index)
        return input.reshape(1)[index.reshape(1)].reshape(index.shape)
    dim = _dim(dim, input.ndim)
    _check_index("gather", input, dim, index)
    for d in range(input.ndim):
        if d != dim and index.shape[d] > input.shape[d]:
            raise RuntimeError(f"Size does not match at dimension {d} expected index "
                               f"{list(index.shape)} to be no larger than self "
                               f"{list(input.shape)} apart from dimension {dim}")
    return _ops.take_along_axis(_leading(input, index.shape, dim), index, axis=dim)


def _scatter_src(name, input, dim, index, src):
    if input.ndim == 0:
        raise RuntimeError(f"{name}(): 0-d inputs are not supported")
    dim = _dim(dim, input.ndim)
    _check_index(name, input, dim, index)
    if isinstance(src, Tensor):
        if src.ndim != index.ndim:
            raise RuntimeError("Index tensor must have the same number of dimensions as src "
                               "tensor")
        if src.dtype != input.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
        src = _leading(src, index.shape)
    return dim, src


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """``input`` with ``src`` (a tensor or a number) written at ``index`` along ``dim``:
    ``out[index[i][j]][j] = src[i][j]`` (dim 0). The gradient of the overwritten places is 0,
    ``src`` gets the gradient gathered at ``index``, as torch's.

    >>> import polygrad
    >>> polygrad.zeros(3).scatter(0, polygrad.tensor([2]), 5.0)
    tensor([0., 0., 5.])
    """
    if src is None:
        src = value
    if reduce is not None:
        if reduce == "add":
            return scatter_add(input, dim, index, src if isinstance(src, Tensor) else
                               _ops.full(tuple(index.shape), src, dtype=input.dtype,
                                         device=input.device))
        raise NotImplementedError(f"scatter(reduce={reduce!r}) is not supported; use "
                                  f"scatter_add or scatter_reduce's compositions")
    dim, src = _scatter_src("scatter", input, dim, index, src)
    return _SETITEM(input, src, key=_along(index, dim))


def scatter_add(input, dim, index, src):
    """``input`` with ``src`` added at ``index`` along ``dim`` (repeated indices add up).

    >>> import polygrad
    >>> polygrad.zeros(3).scatter_add(0, polygrad.tensor([2, 2]), polygrad.ones(2))
    tensor([0., 0., 2.])
    """
    dim, src = _scatter_src("scatter_add", input, dim, index, src)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' must be Tensor, not "
                        f"{type(src).__name__}")
    return input + _SCATTER_ADD(src, shape=tuple(input.shape), key=_along(index, dim))


def index_put(input, indices, values, accumulate=False):
    """``input[indices] = values`` out of place (``accumulate=True``: ``+=``, repeated
    indices adding up).

    >>> import polygrad
    >>> polygrad.zeros(3).index_put((polygrad.tensor([0, 0]),), polygrad.tensor(1.0), True)
    tensor([2., 0., 0.])
    """
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' must be tuple of Tensors, not "
                        f"{type(indices).__name__}")
    key = tuple(_raw(i) if isinstance(i, Tensor) else i for i in indices)
    if not isinstance(values, Tensor):
        values = _ops.asarray(values, dtype=input.dtype, device=input.device)
    if values.dtype != input.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{input.dtype.name} for the destination and {values.dtype.name} "
                           f"for the source.")
    if not accumulate:
        return _SETITEM(input, values, key=key)
    shape = tuple(input.detach()[tuple(indices)].shape)
    values = _ops.broadcast_to(values, shape) if tuple(values.shape) != shape else values
    return input + _SCATTER_ADD(values, shape=tuple(input.shape), key=key)


def masked_fill(input, mask, value):
    """``value`` where ``mask`` is True, ``input`` elsewhere; the gradient of the filled
    places is 0 (a 0-d tensor ``value`` gets their sum).

    >>> import polygrad
    >>> polygrad.ones(2).masked_fill(polygrad.tensor([True, False]), 0.0)
    tensor([0., 1.])
    """
    if not isinstance(mask, Tensor) or mask.dtype.name != "bool":
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{getattr(getattr(mask, 'dtype', None), 'name', type(mask).__name__)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        value = value.astype(input.dtype) if value.dtype != input.dtype else value
    elif not (input.dtype.is_floating_point or input.dtype.is_complex):
        # torch casts a number to the input's dtype (1.7 -> 1 in an integer tensor)
        value = bool(value) if input.dtype.name == "bool" else int(value)
    if tuple(mask.shape) != tuple(input.shape):
        mask = _mask_to(mask, input)
    return _ops.where(mask, value, input)


def _mask_to(mask, input, inplace=False):
    """``mask`` broadcast with ``input`` (in place: to ``input``'s shape), torch's errors."""
    n, m = input.ndim, mask.ndim
    for k in range(1, builtins.min(m, n) + 1):
        a, b = input.shape[n - k], mask.shape[m - k]
        if a != b and 1 not in (a, b):
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b "
                               f"({b}) at non-singleton dimension {builtins.max(n, m) - k}")
    shape = _ops.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    if inplace and shape != tuple(input.shape):
        raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast "
                           f"shape {list(shape)}")
    return mask if tuple(mask.shape) == shape else _ops.broadcast_to(mask, shape)


def masked_select(input, mask):
    """The elements of ``input`` where ``mask`` (broadcast with it) is True, as a 1-d tensor.

    >>> import polygrad
    >>> polygrad.tensor([1., 2., 3.]).masked_select(polygrad.tensor([True, False, True]))
    tensor([1., 3.])
    """
    if not isinstance(mask, Tensor) or mask.dtype.name != "bool":
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shape = _ops.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    if tuple(input.shape) != shape:
        input = _ops.broadcast_to(input, shape)
    if tuple(mask.shape) != shape:
        mask = _ops.broadcast_to(mask, shape)
    return input.reshape(-1)[mask.reshape(-1)]


def take_along_dim(input, indices, dim=None):
    """``input`` at ``indices`` along ``dim`` (the flattened input when ``dim`` is None);
    the other axes broadcast, as torch's.

    >>> import polygrad
    >>> polygrad.take_along_dim(polygrad.tensor([3., 1., 2.]), polygrad.tensor([1, 2]))
    tensor([1., 2.])
    """
    if indices.dtype.name not in ("int64", "int32", "int16", "int8", "uint8"):
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be int but got "
                           f"{indices.dtype.name} instead")
    if dim is None:
        return _ops.take_along_axis(input.reshape(-1), indices.reshape(-1), axis=0)
    if input.ndim != indices.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {input.ndim} dimensions for input, "
                           f"and {indices.ndim} dimensions for indices")
    dim = _dim(dim, input.ndim)
    si, sx = list(input.shape), list(indices.shape)
    si[dim] = sx[dim] = 1
    common = list(_ops.broadcast_shapes(tuple(si), tuple(sx)))
    want_in = tuple(common[:dim] + [input.shape[dim]] + common[dim + 1:])
    want_idx = tuple(common[:dim] + [indices.shape[dim]] + common[dim + 1:])
    if tuple(input.shape) != want_in:
        input = _ops.broadcast_to(input, want_in)
    if tuple(indices.shape) != want_idx:
        indices = _ops.broadcast_to(indices, want_idx)
    return _ops.take_along_axis(input, indices, axis=dim)


# -- selections ------------------------------------------------------------------------------

def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their
    indices; NaN counts as the largest, as torch's. Equal values come in index order.

    >>> import polygrad
    >>> polygrad.tensor([1., 3., 2.]).topk(2).values
    tensor([3., 2.])
    """
    if input.ndim == 0:
        if k not in (0, 1):
            raise RuntimeError("selected index k out of range")
        return ReturnTypes((input.clone(), _ops.zeros((), dtype="int64", device=input.device)))
    dim = _dim(dim, input.ndim)
    n = input.shape[dim]
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    order = _ops.argsort(input.detach(), axis=dim, descending=largest, stable=True)
    idx = narrow(order, dim, 0, k)
    return ReturnTypes((_ops.take_along_axis(input, idx, axis=dim), idx))


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest element along ``dim`` and its index (among equal values, the
    first in a stable sort).

    >>> import polygrad
    >>> polygrad.tensor([3., 1., 2.]).kthvalue(2)
    torch.return_types.kthvalue(values=tensor(2.), indices=tensor(2))
    """
    if input.ndim == 0:
        if k != 1:
            raise RuntimeError("kthvalue(): selected number k out of range for dimension 0")
        return _KthValue((input.clone(), _ops.zeros((), dtype="int64", device=input.device)))
    dim = _dim(dim, input.ndim)
    n = input.shape[dim]
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    order = _ops.argsort(input.detach(), axis=dim, stable=True)
    idx = narrow(order, dim, k - 1, 1)
    values = _ops.take_along_axis(input, idx, axis=dim)
    if not keepdim:
        values, idx = _ops.squeeze(values, axis=dim), _ops.squeeze(idx, axis=dim)
    return _KthValue((values, idx))


class _KthValue(ReturnTypes):
    __slots__ = ()

    def __repr__(self):
        return f"torch.return_types.kthvalue(values={self[0]!r}, indices={self[1]!r})"


def _scan_index(x, larger):
    """The running extreme's index along the last axis (the latest among equal values, a NaN
    winning from where it appears, as torch's cummax and cummin): a Hillis-Steele scan
    over (value, index) pairs, log2(n) steps of whole-array ops."""
    n = x.shape[-1]
    idx = _ops.broadcast_to(_ops.arange(n, dtype="int64", device=x.device), tuple(x.shape))
    vals, s = x, 1
    while s < n:
        lv, li = vals[..., :-s], idx[..., :-s]
        rv, ri = vals[..., s:], idx[..., s:]
        rnan, lnan = _ops.isnan(rv), _ops.isnan(lv)
        better = (rv >= lv) if larger else (rv <= lv)
        right = rnan | (~lnan & better)
        vals = _ops.concat([vals[..., :s], _ops.where(right, rv, lv)], axis=-1)
        idx = _ops.concat([idx[..., :s], _ops.where(right, ri, li)], axis=-1)
        s *= 2
    return idx


def _cum_extreme(name, input, dim, larger):
    if input.ndim == 0:
        _dim(dim, 0)
        return ReturnTypes((input.clone(), _ops.zeros((), dtype="int64", device=input.device)))
    dim = _dim(dim, input.ndim)
    if input.shape[dim] == 0:
        return ReturnTypes((input.clone(), _ops.zeros(tuple(input.shape), dtype="int64",
                                                      device=input.device)))
    x = _ops.moveaxis(input.detach(), dim, -1)
    idx = _ops.moveaxis(_scan_index(x, larger), -1, dim)
    return ReturnTypes((_ops.take_along_axis(input, idx, axis=dim), idx))


def cummax(input, dim):
    """The running maximum along ``dim`` and the index it came from (the latest of equal
    values); the gradient flows to those indices, as torch's.

    >>> import polygrad
    >>> polygrad.tensor([1., 3., 2.]).cummax(0).values
    tensor([1., 3., 3.])
    """
    return _cum_extreme("cummax", input, dim, True)


def cummin(input, dim):
    """The running minimum along ``dim`` and the index it came from (the latest of equal
    values).

    >>> import polygrad
    >>> polygrad.tensor([2., 1., 3.]).cummin(0).values
    tensor([2., 1., 1.])
    """
    return _cum_extreme("cummin", input, dim, False)


def logcumsumexp(input, dim):
    """``log(cumsum(exp(input)))`` along ``dim`` without overflow or underflow: the registry
    row ``logcumsumexp`` (``LogcumsumexpBackward0``, torch's backward formula, also under
    ``create_graph``). Complex inputs take a scan of ``logaddexp`` (log2(n) steps).

    >>> import polygrad
    >>> polygrad.tensor([0., 0.]).logcumsumexp(0)
    tensor([0.0000, 0.6931])
    """
    dim = _dim(dim, input.ndim)
    x = floating(input)
    if not x.dtype.is_complex:
        return _LOGCUMSUMEXP(x, axis=dim)
    if x.ndim == 0:
        return x.clone()
    # the row's own scan, run on the differentiable namespace (logaddexp's rule)
    return logcumsumexp_scan(_ops, x, axis=dim)


# -- elementwise -----------------------------------------------------------------------------

def sgn(input):
    """``sign`` for real tensors; ``x / |x|`` (0 at 0) for complex ones.

    >>> import polygrad
    >>> polygrad.tensor([-2., 0., 3.]).sgn()
    tensor([-1.,  0.,  1.])
    """
    if not input.dtype.is_complex:
        return _SIGN(input, **_P["sign"].torch_opts)      # torch's: 0 at NaN
    a = _ops.abs(input)
    zero = a == 0
    return _ops.where(zero, 0.0, input / _ops.where(zero, 1.0, a).astype(input.dtype))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced (by 0, the dtype's largest and its lowest by default);
    the gradient is 0 at the replaced places, as torch's.

    >>> import polygrad
    >>> polygrad.nan_to_num(polygrad.tensor([float("nan"), 1.0]))
    tensor([0., 1.])
    """
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        return input.clone()
    info = _ops.finfo(input.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = _ops.where(input == math.inf, posinf, input)
    out = _ops.where(input == -math.inf, neginf, out)
    return _ops.where(_ops.isnan(input), nan, out)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """The mean of the non-NaN elements (NaN where there are none).

    >>> import polygrad
    >>> polygrad.tensor([1., float("nan"), 3.]).nanmean()
    tensor(2.)
    """
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex "
                           f"dtype but got {input.dtype.name.capitalize()}")
    if dtype is not None:
        input = input.astype(dtype)
    count = (~_ops.isnan(input)).astype(input.dtype).sum(dim, keepdim)
    return nansum(input, dim, keepdim) / count


def _stat_mean(stat, input, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):           # the legacy (input, unbiased) overload
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    value = getattr(input, stat)(dim, keepdim=keepdim, correction=correction)
    return (value, input.mean(dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` over ``dim``, as torch's (``correction`` 1 by default).

    >>> import polygrad
    >>> polygrad.std_mean(polygrad.tensor([1., 3.]))
    (tensor(1.4142), tensor(2.))
    """
    return _stat_mean("std", input, dim, unbiased, keepdim, correction)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` over ``dim``, as torch's (``correction`` 1 by default).

    >>> import polygrad
    >>> polygrad.var_mean(polygrad.tensor([1., 3.]))
    (tensor(2.), tensor(2.))
    """
    return _stat_mean("var", input, dim, unbiased, keepdim, correction)


def deg2rad(input):
    """Degrees to radians."""
    return floating(input) * (math.pi / 180.0)


def rad2deg(input):
    """Radians to degrees."""
    return floating(input) * (180.0 / math.pi)


def erfinv(input):
    """The inverse of ``erf`` on (-1, 1) (±inf at ±1, NaN outside); its derivative is
    ``sqrt(pi)/2 exp(erfinv(x)^2)``.

    >>> import polygrad
    >>> round(float(polygrad.erfinv(polygrad.tensor(0.5))), 6)
    0.476936
    """
    return _special.erfinv(floating(input))


def lgamma(input):
    """``log|Gamma(x)|`` (inf at 0, -1, -2 ...); its derivative is ``digamma``.

    >>> import polygrad
    >>> polygrad.lgamma(polygrad.tensor([1.0, 3.0]))
    tensor([0.0000, 0.6931])
    """
    return _LGAMMA(floating(input))


def digamma(input):
    """``psi(x)``, the derivative of ``lgamma`` (torch's -inf at +0, nan at -1, -2 ...).

    >>> import polygrad
    >>> polygrad.digamma(polygrad.tensor([1.0]))
    tensor([-0.5772])
    """
    return _POLYGAMMA(floating(input), n=0)


def polygamma(n, input):
    """``psi^(n)(x)``, the n-th derivative of ``digamma``.

    >>> import polygrad
    >>> polygrad.polygamma(1, polygrad.tensor([1.0]))
    tensor([1.6449])
    """
    if int(n) != n or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return _POLYGAMMA(floating(input), n=int(n))


def _polygamma_method(self, n):
    return polygamma(n, self)


# -- distances and norms ---------------------------------------------------------------------

def dist(input, other, p=2):
    """``||input - other||_p`` (broadcast); the gradient at a zero difference is 0, as torch's.

    >>> import polygrad
    >>> polygrad.dist(polygrad.tensor([3., 0.]), polygrad.tensor([0., 4.]))
    tensor(5.)
    """
    return _torch_binary("subtract", input, other).norm(p)   # a 0-d other: torch's promotion


def cdist(x1, x2, p=2.0, compute_mode=None):
    """The p-norm distance between each row of ``x1`` and each row of ``x2`` (batched over
    leading dimensions): shape ``(..., P, R)``; the gradient at a zero distance is 0.

    >>> import polygrad
    >>> polygrad.cdist(polygrad.tensor([[0., 0.]]), polygrad.tensor([[3., 4.], [0., 1.]]))
    tensor([[5., 1.]])
    """
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{x.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    diff = _ops.expand_dims(x1, axis=-2) - _ops.expand_dims(x2, axis=-3)
    if p == 0:
        return _ops.sign(_ops.abs(diff)).sum(-1)      # the count, with a zero gradient
    return diff.norm(p, -1)


def renorm(input, p, dim, maxnorm):
    """Each slice along ``dim`` whose p-norm exceeds ``maxnorm`` scaled to norm ``maxnorm``
    (by ``maxnorm / (norm + 1e-7)``, as torch's), differentiated through the norm.

    >>> import polygrad
    >>> polygrad.tensor([[3., 4.], [0.3, 0.4]]).renorm(2, 0, 1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """
    if input.ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} "
                           f"dimensions")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    dim = _dim(dim, input.ndim)
    others = tuple(d for d in range(input.ndim) if d != dim)
    norms = _linalg.vector_norm(input, ord=p, axis=others, keepdims=True)
    return input * _ops.where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)


def heaviside(input, values):
    """0 below 0, 1 above, ``values`` at 0 (no gradient, as torch's).

    >>> import polygrad
    >>> polygrad.heaviside(polygrad.tensor([-1., 0., 2.]), polygrad.tensor(0.5))
    tensor([0.0000, 0.5000, 1.0000])
    """
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different "
                           "dtypes")
    x, v = input.detach(), values.detach()
    return _ops.where(x == 0, v, (x > 0).astype(x.dtype))


def clamp_min(input, min):
    """``max(input, min)``; the gradient passes at equality, as torch's."""
    return _ops.clip(input, min, None)


def clamp_max(input, max):
    """``min(input, max)``; the gradient passes at equality, as torch's."""
    return _ops.clip(input, None, max)


def _scaled_sum(input, product, beta, alpha):
    # beta == 0: input is ignored, NaN and inf included, as torch's (broadcast to its shape)
    product = product if alpha == 1 else product * alpha
    if beta == 0:     # where() on an all-False mask: input's gradient is 0, its NaN unread
        shape = _ops.broadcast_shapes(tuple(input.shape), tuple(product.shape))
        never = _ops.zeros(shape, dtype="bool", device=product.device)
        return _ops.where(never, input, product)
    return (input if beta == 1 else input * beta) + product


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``.

    >>> import polygrad
    >>> polygrad.addmm(polygrad.ones(2, 2), polygrad.eye(2), polygrad.eye(2))
    tensor([[2., 1.],
            [1., 2.]])
    """
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    return _scaled_sum(input, mat1 @ mat2, beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat @ vec)``."""
    if mat.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {mat.ndim}, "
                           f"{vec.ndim}")
    return _scaled_sum(input, mat @ vec, beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` over a batch of matrices."""
    for name, m in (("batch1", batch1), ("batch2", batch2)):
        if m.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    return _scaled_sum(input, batch1 @ batch2, beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * sum_b (batch1[b] @ batch2[b])``."""
    for name, m in (("batch1", batch1), ("batch2", batch2)):
        if m.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    return _scaled_sum(input, (batch1 @ batch2).sum(0), beta, alpha)


def kron(input, other):
    """The Kronecker product (the shorter shape padded with leading 1s).

    >>> import polygrad
    >>> polygrad.kron(polygrad.eye(2), polygrad.ones(1, 2))
    tensor([[1., 1., 0., 0.],
            [0., 0., 1., 1.]])
    """
    n = builtins.max(input.ndim, other.ndim)
    a = input.reshape((1,) * (n - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (n - other.ndim) + tuple(other.shape))
    # a's axes interleaved with b's: (a0, b0, a1, b1, ...), then each pair merged
    a = a.reshape(tuple(d for s in a.shape for d in (s, 1)))
    b = b.reshape(tuple(d for s in b.shape for d in (1, s)))
    return (a * b).reshape(tuple(x * y for x, y in zip(a.shape[::2], b.shape[1::2])))


def index_fill(input, dim, index, value):
    """``input`` with the slices ``index`` along ``dim`` set to ``value`` (their gradient 0;
    a 0-d tensor ``value`` gets their sum).

    >>> import polygrad
    >>> polygrad.zeros(2, 3).index_fill(1, polygrad.tensor([0, 2]), 1.0)
    tensor([[1., 0., 1.],
            [1., 0., 1.]])
    """
    if index.dtype.name != "int64":
        raise IndexError("index_fill_(): Expected dtype int64 for index.")
    if index.ndim > 1:
        raise IndexError("Index has to be a vector/scalar")
    if input.ndim == 0:
        _dim(dim, 0)
        return masked_fill(input, (index.reshape(-1) == 0).any(), value)
    dim = _dim(dim, input.ndim)
    n = input.shape[dim]
    idx = index.reshape(-1)
    if idx.numel() and builtins.bool(((idx < -n) | (idx >= n)).any()):
        bad = int(idx[(idx < -n) | (idx >= n)][0])
        raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {n}")
    positions = _ops.arange(n, dtype="int64", device=input.device)
    hit = (_ops.expand_dims(positions, axis=1) == _ops.expand_dims(idx % n, axis=0)).any(1)
    shape = [1] * input.ndim
    shape[dim] = n
    return masked_fill(input, hit.reshape(tuple(shape)), value)


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    size = tuple(size) if isinstance(size, (list, tuple)) else (size,)
    out = _ops.full(size, fill_value, dtype=dtype or self.dtype,
                    device=self.device if device is None else device)
    return out.requires_grad_(requires_grad) if requires_grad else out


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple)) else size
    return _new_full(self, size, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def _tril(self, diagonal=0):
    return self.tril(diagonal)


def _triu(self, diagonal=0):
    return self.triu(diagonal)


def _type_as(self, other):
    return self.astype(other.dtype) if self.dtype != other.dtype else self


def _where_method(self, condition, y):
    return _ops.where(condition, self, y)


# -- shapes ----------------------------------------------------------------------------------

def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices whose ``offset``-th diagonal (in the planes ``dim1``, ``dim2`` of the output)
    is the last axis of ``input``; the rest is 0 (not ``0 * input``: an inf stays on the
    diagonal).

    >>> import polygrad
    >>> polygrad.diag_embed(polygrad.tensor([1., 2.]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    nd = input.ndim + 1
    d1, d2 = _dim(dim1, nd), _dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    m = input.shape[-1] if input.ndim else 1
    x = input if input.ndim else input.reshape(1)
    k = builtins.abs(offset)
    n = m + k
    if k:
        pad = _ops.zeros(tuple(x.shape[:-1]) + (k,), dtype=x.dtype, device=x.device)
        x = _ops.concat([x, pad], axis=-1)
    rows = _ops.arange(n, device=x.device).reshape(n, 1)
    cols = _ops.arange(n, device=x.device).reshape(1, n)
    if offset >= 0:
        out = _ops.where(cols - rows == k, _ops.expand_dims(x, axis=-1), 0.0)
    else:
        out = _ops.where(rows - cols == k, _ops.expand_dims(x, axis=-2), 0.0)
    if (d1, d2) != (nd - 2, nd - 1):
        out = _ops.moveaxis(out, (nd - 2, nd - 1), (d1, d2))
    return out


def _unfold(self, dimension, size, step):
    """torch's ``Tensor.unfold``: every window of ``size`` elements along ``dimension``,
    ``step`` apart, as a new last axis (a copy here, a view in torch).

    >>> import polygrad
    >>> polygrad.arange(4.).unfold(0, 2, 2)
    tensor([[0., 1.],
            [2., 3.]])
    """
    if self.ndim == 0:
        _dim(dimension, 0)
        if size > 1:
            raise RuntimeError(f"maximum size for tensor at dimension 0 is 1 but size is "
                               f"{size}")
        return self.reshape(1)
    dim = _dim(dimension, self.ndim)
    n = self.shape[dim]
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {dim} is {n} but size is "
                           f"{size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    count = (n - size) // step + 1
    starts = _ops.arange(count, dtype="int64", device=self.device).reshape(count, 1) * step
    idx = (starts + _ops.arange(size, dtype="int64", device=self.device).reshape(1, size))
    out = _ops.take(self, idx.reshape(-1), axis=dim)
    shape = tuple(self.shape[:dim]) + (count, size) + tuple(self.shape[dim + 1:])
    return _ops.moveaxis(out.reshape(shape), dim + 1, -1)


# -- small torch aliases -----------------------------------------------------------------------

def rsub(input, other, *, alpha=1):
    """``other - alpha * input``, as torch's.

    >>> import polygrad
    >>> polygrad.rsub(polygrad.tensor([1.0, 2.0]), 5)
    tensor([4., 3.])
    """
    return _torch_binary("subtract", other, alpha * input if alpha != 1 else input)


def fix(input):
    """``trunc`` (torch's alias)."""
    return _ops.trunc(input)


def isposinf(input):
    """True where ``input`` is +inf."""
    return _ops.logical_and(_ops.isinf(input), input > 0)


def isneginf(input):
    """True where ``input`` is -inf."""
    return _ops.logical_and(_ops.isinf(input), input < 0)


def msort(input):
    """``input`` sorted along its first dimension (torch's ``sort(input, 0).values``)."""
    return input.sort(0)[0]


_MinMax = collections.namedtuple("aminmax", ["min", "max"])    # torch.return_types.aminmax


def aminmax(input, *, dim=None, keepdim=False):
    """``(min, max)`` over ``dim`` (or all elements), as torch's.

    >>> import polygrad
    >>> polygrad.aminmax(polygrad.tensor([3.0, -1.0, 2.0]))
    aminmax(min=tensor(-1.), max=tensor(3.))
    """
    return _MinMax(input.amin(dim, keepdim), input.amax(dim, keepdim))


def ravel(input):
    """``input`` flattened to one dimension."""
    return input.reshape(-1)


def nonzero(input, *, as_tuple=False):
    """The indices of the non-zero elements: an ``(n, ndim)`` int64 tensor, as torch's (or,
    with ``as_tuple=True``, one index tensor per dimension, the standard's ``nonzero``).

    >>> import polygrad
    >>> polygrad.nonzero(polygrad.tensor([[1, 0], [0, 2]]))
    tensor([[0, 0],
            [1, 1]])
    """
    idx = tuple(_ops.nonzero(input.reshape(1) if input.ndim == 0 else input))
    if as_tuple:
        return idx
    if input.ndim == 0:
        return idx[0].reshape(-1, 1)[:, :0]         # torch: shape (1, 0) or (0, 0)
    return _ops.stack(idx, axis=1)


def take(input, index, *, axis=None):
    """torch's take: the elements of the flattened ``input`` at ``index`` (negative ones
    from the end), in ``index``'s shape; with ``axis=``, the standard's ``take``.

    >>> import polygrad
    >>> polygrad.take(polygrad.tensor([[1, 2], [3, 4]]), polygrad.tensor([[0, 3], [-1, 1]]))
    tensor([[1, 4],
            [4, 2]])
    """
    if axis is not None:
        return _ops.take(input, index, axis=axis)
    flat = _ops.take(input.reshape(-1), index.reshape(-1), axis=0)
    return flat.reshape(tuple(index.shape))


def broadcast_tensors(*tensors):
    """The tensors broadcast to one shape, as torch's (views where the backend has them).

    >>> import polygrad
    >>> [t.shape for t in polygrad.broadcast_tensors(polygrad.ones(2, 1), polygrad.ones(3))]
    [polygrad.Size([2, 3]), polygrad.Size([2, 3])]
    """
    return tuple(_ops.broadcast_arrays(*tensors))


def cross(input, other, dim=None):
    """The cross product along ``dim`` (torch's default: the first dimension of size 3)."""
    if dim is None:
        dim = next((d for d, n in enumerate(input.shape) if n == 3), None)
        if dim is None:
            raise RuntimeError(f"no dimension of size 3 in input: {list(input.shape)}")
    return _linalg.cross(input, other, axis=dim)


def angle(input):
    """The argument of each element: 0 or pi for a real tensor (NaN stays NaN), in float."""
    if input.dtype.is_complex:
        return _ops.atan2(_ops.imag(input), _ops.real(input))
    x = floating(input)
    return _ops.where(x < 0, math.pi, _ops.where(_ops.isnan(x), x, 0.0))


def isreal(input):
    """True where the imaginary part is 0 (everywhere for a real tensor)."""
    if input.dtype.is_complex:
        return _ops.imag(input) == 0
    return _ops.ones_like(input, dtype="bool")


def ldexp(input, other):
    """``input * 2 ** other``, in floating point."""
    return floating(input) * _ops.pow(2.0, floating(other))


def _half(self, memory_format=None):
    return self.astype("float16")


def _rsqrt(self):
    return _ops.reciprocal(_ops.sqrt(floating(self)))


def _nelement(self):
    return self.numel()


def count_nonzero(input, dim=None, *, axis=None, keepdims=False):
    """The number of non-zero elements over ``dim`` (torch's; ``axis=`` as the standard's).

    >>> import polygrad
    >>> polygrad.count_nonzero(polygrad.tensor([[0, 1], [2, 3]]), dim=0)
    tensor([1, 2])
    """
    dim = dim if axis is None else axis
    return _ops.count_nonzero(input, axis=tuple(dim) if isinstance(dim, list) else dim,
                              keepdims=keepdims)


# -- Tensor methods --------------------------------------------------------------------------

def _inplace(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    method.__name__ = fn.__name__.lstrip("_") + "_"
    method.__doc__ = f"In-place ``{fn.__name__}``."
    return method


def _masked_fill_(self, mask, value):
    """In-place ``masked_fill``, a write through ``self[mask] = value`` (so into an expanded
    view too, as torch's), with ``mask`` first broadcast to ``self`` (an attention mask of
    shape (T, T) over (B, H, T, T))."""
    if not isinstance(mask, Tensor) or mask.dtype.name != "bool":
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{getattr(getattr(mask, 'dtype', None), 'name', type(mask).__name__)}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    if tuple(mask.shape) != tuple(self.shape):
        mask = _mask_to(mask, self, inplace=True)
    self[mask] = value
    return self


# Tensor methods torch_surface also has, which these replace
OVERRIDES = frozenset({"masked_fill_"})

METHODS = {
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add, "index_put": index_put,
    "masked_fill": masked_fill, "masked_select": masked_select,
    "take_along_dim": take_along_dim, "topk": topk, "kthvalue": kthvalue, "cummax": cummax,
    "cummin": cummin, "logcumsumexp": logcumsumexp, "sgn": sgn, "nan_to_num": nan_to_num,
    "nanmean": nanmean, "diag_embed": diag_embed, "deg2rad": deg2rad, "rad2deg": rad2deg,
    "erfinv": erfinv, "unfold": _unfold,
    "scatter_": _inplace(scatter), "scatter_add_": _inplace(scatter_add),
    "index_put_": _inplace(index_put), "nan_to_num_": _inplace(nan_to_num),
    "sgn_": _inplace(sgn), "deg2rad_": _inplace(deg2rad), "rad2deg_": _inplace(rad2deg),
    "erfinv_": _inplace(erfinv),
    "lgamma": lgamma, "digamma": digamma, "polygamma": _polygamma_method,
    "lgamma_": _inplace(lgamma), "digamma_": _inplace(digamma),
    "polygamma_": _inplace(_polygamma_method), "masked_fill_": _masked_fill_,
    "dist": dist, "renorm": renorm, "renorm_": _inplace(renorm), "heaviside": heaviside,
    "type_as": _type_as, "where": _where_method,
    "clamp_min": clamp_min, "clamp_max": clamp_max, "clamp_min_": _inplace(clamp_min),
    "clamp_max_": _inplace(clamp_max), "addmm": addmm, "addmv": addmv, "baddbmm": baddbmm,
    "addbmm": addbmm, "addmm_": _inplace(addmm), "kron": kron, "index_fill": index_fill,
    "index_fill_": _inplace(index_fill), "new_full": _new_full, "new_empty": _new_empty,
    "tril_": _inplace(_tril), "triu_": _inplace(_triu),
    "rsqrt": _rsqrt, "rsqrt_": _inplace(_rsqrt), "nelement": _nelement, "ravel": ravel,
    "count_nonzero": count_nonzero, "nonzero": nonzero, "take": take,
    "cross": cross, "angle": angle, "isreal": isreal, "ldexp": ldexp, "half": _half,
    "fmod_": lambda self, other: self.copy_(self.fmod(other)), "fix": fix, "fix_": _inplace(fix), "isposinf": isposinf,
    "isneginf": isneginf, "msort": msort, "aminmax": aminmax,
}
