"""Reductions: sum, mean, prod, max, min, var, std, cumulative sums and products,
and logsumexp.

Every VJP first puts the reduced axes back (``_unreduce``) and lets broadcasting
spread the gradient; the engine then checks the shape once.
"""

import math

from .table import def_linear as linear
from .table import def_nondifferentiable as nondifferentiable
from .table import def_primitive as primitive


def _axes(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % x.ndim for a in axis) if x.ndim else ()


def _unreduce(ns, g, x, axis, keepdims):
    """Reshape a reduced gradient so that it broadcasts against ``x``."""
    if keepdims or x.ndim == 0:
        return g
    shape = list(x.shape)
    for a in _axes(x, axis):
        shape[a] = 1
    return ns.reshape(g, tuple(shape))


def _count(x, axis):
    return math.prod(x.shape[a] for a in _axes(x, axis))


def _sum_vjp(ns, g, out, x, axis=None, dtype=None, keepdims=False):
    return (ns.broadcast_to(_unreduce(ns, g, x, axis, keepdims), x.shape),)


def _mean_vjp(ns, g, out, x, axis=None, keepdims=False):
    n = _count(x, axis)          # over no element x is empty, and so is its gradient: no
    g = _unreduce(ns, g, x, axis, keepdims)   # division by a Python zero on the way
    return (ns.broadcast_to(g / n if n else g * math.nan, x.shape),)


def _prod_partial(ns, out, x, axis, keepdims):
    """d prod / d x_i, the product of the others: out / x away from zeros; at the only zero
    of a slice, the product of the slice's other elements; 0 where a slice has two zeros."""
    o = _unreduce(ns, out, x, axis, keepdims)
    zero = x == 0
    safe = ns.where(zero, 1.0, x)
    others = ns.where(ns.sum(ns.astype(zero, x.dtype), axis=axis, keepdims=True) == 1,
                      ns.prod(safe, axis=axis, keepdims=True), 0.0)
    return ns.where(zero, others, o / safe)


def _prod_vjp(ns, g, out, x, axis=None, dtype=None, keepdims=False):
    return (_unreduce(ns, g, x, axis, keepdims) * _prod_partial(ns, out, x, axis, keepdims),)


def _extremum_vjp(ns, g, out, x, axis=None, keepdims=False):
    # Ties share the gradient equally, as torch's amax/amin do; a NaN result is its NaNs'.
    mask = _extremum_mask(ns, out, x, axis, keepdims)
    count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=True)
    # multiplied by the mask, not selected by it: a NaN gradient reaches every element as
    # NaN, as torch's (grad * mask / count)
    gx = _unreduce(ns, g, x, axis, keepdims) * ns.astype(mask, g.dtype)
    return (gx / count,)


def _extremum_mask(ns, out, x, axis, keepdims):
    # x != x: NaN propagates, so where the result is not NaN no input is
    return (x == _unreduce(ns, out, x, axis, keepdims)) | (x != x)


def _extremum_jvp(ns, tangents, out, x, axis=None, keepdims=False):
    mask = _extremum_mask(ns, out, x, axis, keepdims)
    count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=keepdims)
    return ns.sum(ns.where(mask, tangents[0], 0.0), axis=axis, keepdims=keepdims) / count


def _var_vjp(ns, g, out, x, axis=None, correction=0.0, keepdims=False):
    n = _count(x, axis)
    centered = x - ns.mean(x, axis=axis, keepdims=True)
    return (_unreduce(ns, g, x, axis, keepdims) * centered * _var_scale(n, correction),)


def _var_jvp(ns, tangents, out, x, axis=None, correction=0.0, keepdims=False):
    n = _count(x, axis)
    centered = x - ns.mean(x, axis=axis, keepdims=True)
    return ns.sum(centered * tangents[0], axis=axis, keepdims=keepdims) * _var_scale(n, correction)


def _var_scale(n, correction):
    # 2 / (n - correction); with no degrees of freedom left torch's inf (its gradient is then
    # nan where x equals the mean, as torch's), not a ZeroDivisionError
    return 2.0 / (n - correction) if n > correction else math.inf


def _std_vjp(ns, g, out, x, axis=None, correction=0.0, keepdims=False):
    # at a zero std (a constant slice) the gradient is 0, as torch's
    (gv,) = _var_vjp(ns, g, out, x, axis=axis, correction=correction, keepdims=keepdims)
    o = _unreduce(ns, out, x, axis, keepdims)
    return (ns.where(o == 0, 0.0, gv / (2.0 * ns.where(o == 0, 1.0, o))),)


def _std_jvp(ns, tangents, out, x, axis=None, correction=0.0, keepdims=False):
    tv = _var_jvp(ns, tangents, out, x, axis=axis, correction=correction, keepdims=keepdims)
    return ns.where(out == 0, 0.0, tv / (2.0 * ns.where(out == 0, 1.0, out)))


def _cumsum_vjp(ns, g, out, x, axis=None, dtype=None, include_initial=False):
    ax = axis if axis is not None else 0
    if include_initial:
        g = _drop_first(ns, g, ax)
    return (ns.flip(ns.cumulative_sum(ns.flip(g, axis=ax), axis=ax), axis=ax),)


def _drop_first(ns, g, axis):
    key = [slice(None)] * g.ndim
    key[axis] = slice(1, None)
    return g[tuple(key)]


def _logsumexp_impl(xp, x, axis=None, keepdims=False):
    if 0 in x.shape:        # empty: log(0) = -inf over an empty axis, as torch (no max to take)
        s = xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=True))
    else:
        m = xp.max(x, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0.0)
        s = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        s = xp.reshape(s, tuple(d for i, d in enumerate(x.shape) if i not in _axes(x, axis)))
    return s


def _logsumexp_vjp(ns, g, out, x, axis=None, keepdims=False):
    return (_unreduce(ns, g, x, axis, keepdims) * ns.exp(x - _unreduce(ns, out, x, axis, keepdims)),)


def _logsumexp_jvp(ns, tangents, out, x, axis=None, keepdims=False):
    w = ns.exp(x - _unreduce(ns, out, x, axis, keepdims))
    return ns.sum(w * tangents[0], axis=axis, keepdims=keepdims)


def _over(name):
    """torch's node names for a reduction: ``{name}Backward0`` over everything,
    ``{name}Backward1`` over given dims (``x.sum()`` / ``x.sum(1)``)."""
    def name_for(opts):
        return f"{name}Backward{0 if opts.get('axis') is None else 1}"
    return name_for


linear("sum", _sum_vjp, node_name="SumBackward0", saves=(),      # shapes only
       name_for=_over("Sum"))
linear("mean", _mean_vjp, node_name="MeanBackward0", saves=(), name_for=_over("Mean"))
linear("cumulative_sum", _cumsum_vjp, node_name="CumsumBackward0")
def _prod_jvp(ns, tangents, out, x, axis=None, dtype=None, keepdims=False):
    return ns.sum(_prod_partial(ns, out, x, axis, keepdims) * tangents[0], axis=axis,
                  keepdims=keepdims)


def _cumprod_impl(xp, x, axis=None, dtype=None, include_initial=False):
    out = xp.cumulative_prod(x, axis=axis, dtype=dtype)
    if include_initial:
        ax = 0 if axis is None else axis
        shape = list(out.shape)
        shape[ax] = 1
        out = xp.concat([xp.ones(shape, dtype=out.dtype, device=getattr(x, "device", None)), out],
                        axis=ax)
    return out


def _cumprod_vjp(ns, g, out, x, axis=None, dtype=None, include_initial=False):
    # d out_j / d x_i = out_j / x_i for j >= i: a reversed cumulative sum of g * out, over x.
    # Exact away from zeros in x (a zero makes the quotient 0/0; torch has a slower exact path).
    ax = 0 if axis is None else axis % x.ndim
    if include_initial:
        g, out = _drop_first(ns, g, ax), _drop_first(ns, out, ax)
    rev = ns.flip(ns.cumulative_sum(ns.flip(g * out, axis=ax), axis=ax), axis=ax)
    return (rev / x,)


def _cumprod_jvp(ns, tangents, out, x, axis=None, dtype=None, include_initial=False):
    ax = 0 if axis is None else axis % x.ndim
    o = _drop_first(ns, out, ax) if include_initial else out
    t = o * ns.cumulative_sum(tangents[0] / x, axis=ax)
    if include_initial:
        t = ns.concat([ns.zeros_like(_first(out, ax)), t], axis=ax)
    return t


def _first(a, axis):
    key = [slice(None)] * a.ndim
    key[axis] = slice(0, 1)
    return a[tuple(key)]


primitive("prod", _prod_vjp, _prod_jvp, name_for=_over("Prod"))
primitive("cumulative_prod", _cumprod_vjp, _cumprod_jvp, impl=_cumprod_impl,
          node_name="CumprodBackward0")
primitive("max", _extremum_vjp, _extremum_jvp, node_name="MaxBackward1")
primitive("min", _extremum_vjp, _extremum_jvp, node_name="MinBackward1")
primitive("var", _var_vjp, _var_jvp)
primitive("std", _std_vjp, _std_jvp)
# Not in the standard, but every softmax-like loss needs a stable one; backends may fuse it.
primitive("logsumexp", _logsumexp_vjp, _logsumexp_jvp, impl=_logsumexp_impl,
          node_name="LogsumexpBackward0")

nondifferentiable("argmax", "argmin", "all", "any", "count_nonzero", "argsort", "nonzero",
                  "searchsorted", "unique_values", "unique_counts", "unique_inverse",
                  "unique_all")
