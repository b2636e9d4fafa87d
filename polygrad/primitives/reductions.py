"""Reductions: sum, mean, prod, max, min, var, std, cumulative sums and products,
and logsumexp.

Every VJP first puts the reduced axes back (``_unreduce``) and lets broadcasting
spread the gradient; the engine then checks the shape once.
"""

import math

from ..base import grad_mode
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
    # torch's: the gradient broadcast, then divided, so that a second derivative sums over
    # the elements (over none: 0) before it divides. Over no element x is empty, and so is
    # its gradient: no division by a Python zero on the way
    n = _count(x, axis)
    g = ns.broadcast_to(_unreduce(ns, g, x, axis, keepdims), x.shape)
    return (g / n if n else g * math.nan,)


def _prod_partial(ns, out, x, axis, keepdims):
    """d prod / d x_i, the product of the slice's other elements, as the product of the
    elements before i times the product of those after it (two exclusive cumulative
    products): no division, so it is exact at zeros, and differentiable again there (the
    cumulative product's rule is exact at zeros to second order), as torch's."""
    axes = _axes(x, axis)
    if x.ndim == 0 or not axes:
        return ns.ones_like(x)
    kept = [a for a in range(x.ndim) if a not in axes]
    perm = tuple(kept + list(axes))
    n = _count(x, axis)
    if n == 0:
        return ns.zeros_like(x)
    xt = ns.permute_dims(x, perm) if perm != tuple(range(x.ndim)) else x
    lead = tuple(x.shape[a] for a in kept)
    xf = ns.reshape(xt, lead + (n,))
    before = _exclusive_cumprod(ns, xf)
    after = ns.flip(_exclusive_cumprod(ns, ns.flip(xf, axis=-1)), axis=-1)
    partial = ns.reshape(before * after, xt.shape)
    if perm == tuple(range(x.ndim)):
        return partial
    inverse = tuple(perm.index(a) for a in range(x.ndim))
    return ns.permute_dims(partial, inverse)


def _exclusive_cumprod(ns, x):
    """The product of the elements before each one along the last axis (1 for the first)."""
    return ns.cumulative_prod(x, axis=-1, include_initial=True)[..., :-1]


def _prod_vjp(ns, g, out, x, axis=None, dtype=None, keepdims=False):
    # torch's choice, made over the whole tensor: without a zero in x, prod / x_i (where an
    # element is inf, inf / inf is nan, as torch's); with one, the products of the others.
    # Both are computed and one selected, so that the rule has no data-dependent branch
    # (polygrad.compile replays it)
    gx = _unreduce(ns, g, x, axis, keepdims)
    others = _prod_partial(ns, out, x, axis, keepdims)
    if x.ndim == 0 or not _axes(x, axis) or 0 in x.shape:
        return (gx * others,)
    zero = x == 0
    zeros = ns.sum(ns.astype(zero, x.dtype))
    quotient = _unreduce(ns, out, x, axis, keepdims) / ns.where(zero, 1.0, x)
    grad = gx * ns.where(zeros > 0, others, quotient)
    if axis is None and not grad_mode.is_grad_enabled():
        # torch's prod() of everything, first order: two zeros or more give zeros, not g * 0
        # (a NaN g stays out)
        grad = ns.where(zeros >= 2, 0.0, grad)
    return (grad,)


def _extremum_vjp(ns, g, out, x, axis=None, keepdims=False, evenly=False):
    # Ties share the gradient equally, as torch's amax/amin do; a NaN result is its NaNs'.
    mask = _extremum_mask(ns, out, x, axis, keepdims)
    count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=True)
    gx = _unreduce(ns, g, x, axis, keepdims)
    if evenly:
        # torch's max()/min() over everything (evenly_distribute_backward): g / count on the
        # selected elements, exactly 0 elsewhere (a NaN g stays on the selected ones)
        return (ns.where(mask, gx / count, 0.0),)
    # amax/amin: multiplied by the mask, not selected by it: a NaN gradient reaches every
    # element as NaN, as torch's (grad * mask / count)
    return (gx * ns.astype(mask, g.dtype) / count,)


def _extremum_mask(ns, out, x, axis, keepdims):
    # x != x: NaN propagates, so where the result is not NaN no input is
    return (x == _unreduce(ns, out, x, axis, keepdims)) | (x != x)


def _extremum_jvp(ns, tangents, out, x, axis=None, keepdims=False, evenly=False):
    mask = _extremum_mask(ns, out, x, axis, keepdims)
    count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=keepdims)
    return ns.sum(ns.where(mask, tangents[0], 0.0), axis=axis, keepdims=keepdims) / count


def _var_vjp(ns, g, out, x, axis=None, correction=0.0, keepdims=False):
    return (_var_grad(ns, _unreduce(ns, g, x, axis, keepdims), x, axis, correction),)


def _var_grad(ns, g, x, axis, correction):
    """torch's var_backward, ``g`` already broadcastable against ``x``: 2 (x - mean) / (n -
    correction) times g. With no degree of freedom left (n <= correction) over the whole
    tensor, torch's constant nan (at the mean) or inf (elsewhere), which does not depend on
    x again; over given dims 2 / 0 is inf, and inf * 0 nan, as torch's."""
    n = _count(x, axis)
    centered = x - ns.mean(x, axis=axis, keepdims=True)
    if n <= correction and (axis is None or x.ndim == 0):
        return g * ns.where(centered == 0, math.nan, math.inf)
    # over given dims torch's 2 / (n - correction): negative for n < correction, inf at n
    return g * centered * (2.0 / (n - correction) if n != correction else math.inf)


def _var_jvp(ns, tangents, out, x, axis=None, correction=0.0, keepdims=False):
    # torch's: var's gradient of the tangent, summed (scaled before the sum: over no
    # element the tangent is 0, not 0 * inf)
    return ns.sum(_var_grad(ns, tangents[0], x, axis, correction), axis=axis,
                  keepdims=keepdims)


def _std_vjp(ns, g, out, x, axis=None, correction=0.0, keepdims=False):
    # torch's: var's gradient of (g / 2 std), with 0 where the std is 0 (a constant slice).
    # The division is by the std itself (0/0 in the branch the where drops), so that where
    # the second derivative is undefined it is nan, as torch's
    o = _unreduce(ns, out, x, axis, keepdims)
    if not grad_mode.is_grad_enabled():   # first order: the same values, divided safely
        o = ns.where(o == 0, 1.0, o)
    gs = ns.where(_unreduce(ns, out, x, axis, keepdims) == 0, 0.0,
                  _unreduce(ns, g, x, axis, keepdims) / (2.0 * o))
    return (_var_grad(ns, gs, x, axis, correction),)


def _std_jvp(ns, tangents, out, x, axis=None, correction=0.0, keepdims=False):
    tv = _var_jvp(ns, tangents, out, x, axis=axis, correction=correction, keepdims=keepdims)
    return ns.where(out == 0, 0.0, tv / (2.0 * ns.where(out == 0, 1.0, out)))


def _moment_impl(name):
    """var / std as torch computes them on the CPU, so that a slice of equal values whose
    mean rounds gives torch's std (and its gradient) too. Reduced to one number, torch
    takes two passes (the mean, then the squared deviations from it: a std of 1e-16 over
    three copies of sin(1)); to many numbers, a Welford pass, exactly 0 over a constant
    slice. Here the two passes of the namespace's own var, over ``x`` shifted by each
    slice's first element when the result has more than one number: the same value, 0 over
    a constant slice, and more accurate far from 0 (the shifted-data algorithm)."""
    def impl(xp, x, axis=None, correction=0.0, keepdims=False):
        axes = _axes(x, axis)
        kept = math.prod(n for a, n in enumerate(x.shape) if a not in axes)
        if x.ndim and axes and kept > 1 and _count(x, axis) > 1:
            first = tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))
            x = x - x[first]
        return getattr(xp, name)(x, axis=axis, correction=correction, keepdims=keepdims)
    return impl


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
    # d out_k / d x_i (k >= i) is the product of x_j, j <= k, j != i. Before a slice's first
    # zero that is out_k / x_i: a reversed cumulative sum of g * out, over x. At the first
    # zero z1 it is the cumulative product with x_z1 replaced by 1 (out1); after it every
    # term holds x_z1, so the gradient is x_z1 times out1's gradient there (0, but with the
    # right derivative): before the second zero z2 a reversed cumulative sum of g * out1 over
    # x, at z2 the same with x_z2 replaced by 1 too, after z2 0 (a product of two zeros).
    # Exact at any zeros, and differentiable again exactly (second derivatives), as torch's.
    ax = 0 if axis is None else axis % x.ndim
    if include_initial:
        g, out = _drop_first(ns, g, ax), _drop_first(ns, out, ax)
    zero = x == 0
    nz = ns.cumulative_sum(ns.astype(zero, g.dtype), axis=ax)   # zeros up to and at each
    before, first, second = nz == 0, zero & (nz == 1), zero & (nz == 2)
    between = (nz == 1) & ~zero
    x1 = ns.where(first, 1.0, x)
    out1 = ns.cumulative_prod(x1, axis=ax)
    out2 = ns.cumulative_prod(ns.where(second, 1.0, x1), axis=ax)
    if grad_mode.is_grad_enabled():     # differentiated again (create_graph): every term
        r0, r1, r2 = (_reverse_cumsum(ns, g * o, ax) for o in (out, out1, out2))
    else:   # each sum only over the k whose product no later zero makes 0 (not g_k * 0, so a
        # NaN g_k there stays out), as torch's O(n) pass; torch too switches on grad mode
        r0, r1, r2 = (_reverse_cumsum(ns, ns.where(nz <= i, g * o, 0.0), ax)
                      for i, o in enumerate((out, out1, out2)))
    after = ns.where(between, r1 / ns.where(between, x, 1.0), ns.where(second, r2, 0.0))
    x_z1 = ns.sum(ns.where(first, x, 0.0), axis=ax, keepdims=True)   # 0, d/dx_z1 = 1
    return (ns.where(before, r0 / ns.where(before, x, 1.0),
                     ns.where(first, r1, x_z1 * after)),)


def _reverse_cumsum(ns, a, axis):
    return ns.flip(ns.cumulative_sum(ns.flip(a, axis=axis), axis=axis), axis=axis)


def _cumprod_jvp(ns, tangents, out, x, axis=None, dtype=None, include_initial=False):
    # d out_k = sum_{i <= k} t_i prod_{j <= k, j != i} x_j: out_k * cumsum(t / x) before a
    # slice's first zero z1; from z1 on only the term i = z1 is left: t_z1 * out1_k, out1 the
    # cumulative product with x_z1 replaced by 1
    ax = 0 if axis is None else axis % x.ndim
    o = _drop_first(ns, out, ax) if include_initial else out
    t0 = tangents[0]
    zero = x == 0
    nz = ns.cumulative_sum(ns.astype(zero, o.dtype), axis=ax)
    before, first = nz == 0, zero & (nz == 1)
    out1 = ns.cumulative_prod(ns.where(first, 1.0, x), axis=ax)
    t_z1 = ns.sum(ns.where(first, t0, 0.0), axis=ax, keepdims=True)
    t = ns.where(before, o * ns.cumulative_sum(t0 / ns.where(before, x, 1.0), axis=ax),
                 t_z1 * out1)
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
def _extremum_impl(name):
    """``evenly``: polygrad's own option, for the rule (torch's max() and min() over
    everything); the backend's max/min never see it."""
    def impl(xp, x, axis=None, keepdims=False, evenly=False):
        return getattr(xp, name)(x, axis=axis, keepdims=keepdims)
    return impl


def _extremum_name(name):
    """torch's node names: ``MaxBackward1`` for ``x.max()``, ``AmaxBackward0`` for amax."""
    def name_for(opts):
        return f"{name}Backward1" if opts.get("evenly") else f"A{name.lower()}Backward0"
    return name_for


primitive("max", _extremum_vjp, _extremum_jvp, impl=_extremum_impl("max"),
          name_for=_extremum_name("Max"))
primitive("min", _extremum_vjp, _extremum_jvp, impl=_extremum_impl("min"),
          name_for=_extremum_name("Min"))
primitive("var", _var_vjp, _var_jvp, impl=_moment_impl("var"))
primitive("std", _std_vjp, _std_jvp, impl=_moment_impl("std"))
# Not in the standard, but every softmax-like loss needs a stable one; backends may fuse it.
primitive("logsumexp", _logsumexp_vjp, _logsumexp_jvp, impl=_logsumexp_impl,
          node_name="LogsumexpBackward0")

nondifferentiable("argmax", "argmin", "all", "any", "count_nonzero", "argsort", "nonzero",
                  "searchsorted", "unique_values", "unique_counts", "unique_inverse",
                  "unique_all")
