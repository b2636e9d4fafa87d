"""Reductions: sum, mean, prod, max, min, var, std, cumulative sums and products,
logsumexp and logcumsumexp.

Every VJP first puts the reduced axes back (``_unreduce``) and lets broadcasting
spread the gradient; the engine then checks the shape once.
"""

import builtins
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


def _prod_partial(ns, x, axis):
    """d prod / d x_i, the product of the slice's other elements, as the product of the
    elements before i times the product of those after it (two exclusive cumulative
    products, torch's prod_safe_zeros_backward): no division, so it is exact at zeros, and
    differentiable again there through the cumulative product's rule, as torch's."""
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
    """The product of the elements before each one along the last axis (1 for the first):
    torch's cumprod(cat([1, x[:-1]])), in which the last element takes no part."""
    return ns.cumulative_prod(x[..., :-1], axis=-1, include_initial=True)


def _prod_vjp(ns, g, out, x, axis=None, dtype=None, keepdims=False):
    # torch's choice, made over the whole tensor: without a zero in x, prod / x_i (where an
    # element is inf, inf / inf is nan, as torch's); with one, the products of the others
    # (over one element the gradient itself). Both are computed and one selected, so that
    # the rule has no data-dependent branch (polygrad.compile replays it)
    gx = _unreduce(ns, g, x, axis, keepdims)
    if x.ndim == 0 or not _axes(x, axis):
        return (gx,)
    if 0 in x.shape:
        return (gx * ns.zeros_like(x),)
    zero = x == 0
    zeros = ns.sum(ns.astype(zero, x.dtype))
    some = zeros > 0
    if grad_mode.is_grad_enabled():
        # differentiated again (create_graph): each branch computes from x replaced by 1s
        # where it is not taken (the product recomputed, not ``out``), so that the exact
        # zeros the select passes back to it meet no inf on their way to x (0 * inf = nan)
        x_q, x_o = ns.where(some, 1.0, x), ns.where(some, x, 1.0)
        prod_q = _unreduce(ns, ns.prod(x_q, axis=axis, dtype=dtype, keepdims=keepdims), x,
                           axis, keepdims)
    else:
        x_q, x_o = ns.where(zero, 1.0, x), x
        prod_q = _unreduce(ns, out, x, axis, keepdims)
    quotient = gx * (prod_q / x_q)
    others = gx if _count(x, axis) == 1 else gx * _prod_partial(ns, x_o, axis)
    grad = ns.where(some, others, quotient)
    if axis is None and not grad_mode.is_grad_enabled():
        # torch's prod() of everything, first order: two zeros or more give zeros, not g * 0
        # (a NaN g stays out)
        grad = ns.where(zeros >= 2, 0.0, grad)
    return (grad,)


def _extremum_vjp(ns, g, out, x, axis=None, keepdims=False, evenly=False):
    # Ties share the gradient equally, as torch's amax/amin do
    gx = _unreduce(ns, g, x, axis, keepdims)
    if evenly:
        # torch's max()/min() over everything (evenly_distribute_backward): g / count on the
        # selected elements (the NaNs where the result is NaN), exactly 0 elsewhere (a NaN
        # g stays on the selected ones)
        mask = _extremum_mask(ns, out, x, axis, keepdims, nan=True)
        count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=True)
        return (ns.where(mask, gx / count, 0.0),)
    # amax/amin: torch's scale_grad_by_count, (g / count) * mask with mask = (x == result):
    # multiplied, not selected (a NaN gradient reaches every element as NaN), and a slice
    # whose result is NaN has no element equal to it: 0 / 0, NaN all along it, as torch's
    mask = _extremum_mask(ns, out, x, axis, keepdims)
    count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=True)
    return ((gx / count) * ns.astype(mask, g.dtype),)


def _extremum_mask(ns, out, x, axis, keepdims, nan=False):
    """Where x is the result; ``nan``: also x's NaNs (the result of their slice)."""
    mask = x == _unreduce(ns, out, x, axis, keepdims)
    return mask | (x != x) if nan else mask


def _extremum_jvp(ns, tangents, out, x, axis=None, keepdims=False, evenly=False):
    mask = _extremum_mask(ns, out, x, axis, keepdims, nan=evenly)
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
        out = getattr(xp, name)(x, axis=axis, correction=correction, keepdims=keepdims)
        # over nothing: NaN with its sign bit clear, as torch's (numpy's 0 / 0 sets it)
        return xp.abs(out) if _count(x, axis) == 0 else out
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


# logcumsumexp: a scan of logaddexp on any namespace (log2(n) steps), torch's kernel where a
# backend fuses it; its VJP is torch's logcumsumexp_backward formula for formula, written on
# ``ns`` and through this row itself, so that a second derivative meets log|0| = -inf where
# the incoming gradient has zeros, as torch's does (a composition of logaddexps would not)
def _logcumsumexp_impl(xp, x, axis=0):
    if x.ndim == 0:
        return xp.reshape(_logcumsumexp_impl(xp, xp.reshape(x, (1,)), axis=0), ())
    x = xp.moveaxis(x, axis, -1)
    n, s = x.shape[-1], 1
    while s < n:
        x = xp.concat([x[..., :s], xp.logaddexp(x[..., s:], x[..., :-s])], axis=-1)
        s *= 2
    return xp.moveaxis(x, -1, axis)


def _reverse_logcumsumexp(ns, a, axis):
    return ns.flip(ns.logcumsumexp(ns.flip(a, axis=axis), axis=axis), axis=axis)


def _logcumsumexp_vjp(ns, g, out, x, axis=0):
    # torch's logcumsumexp_backward (real dtypes): the positive and the negative parts of
    # the gradient in log space (the dtype's lowest finite value where a part is absent)
    if x.ndim == 0 or 0 in x.shape:
        return (g,)
    lowest = float(ns.finfo(x.dtype).min)
    a = ns.abs(g)
    if not (grad_mode.is_grad_enabled() and getattr(g, "requires_grad", False)):
        # nothing differentiates in g: the same values without log(0) (and the array
        # library's warning about it); differentiated in g, log|0| = -inf stays in, as
        # torch's (its derivative there is nan)
        a = ns.where(a == 0, 1.0, a)
    log_abs = ns.log(a)
    log_pos = ns.where(g > 0, log_abs, lowest)
    log_neg = ns.where(g < 0, log_abs, lowest)
    pos = ns.exp(_reverse_logcumsumexp(ns, log_pos - out, axis) + x)
    neg = ns.exp(_reverse_logcumsumexp(ns, log_neg - out, axis) + x)
    return (pos - neg,)


def _logcumsumexp_jvp(ns, tangents, out, x, axis=0):
    # torch's logcumsumexp_jvp: cumsum(e * t) / (cumsum(e) + 1e-13), e = exp(x - max(x))
    t = tangents[0]
    if x.ndim == 0 or 0 in x.shape:
        return t
    e = ns.exp(x - ns.max(x, axis=axis, keepdims=True))
    return ns.cumulative_sum(e * t, axis=axis) / (ns.cumulative_sum(e, axis=axis) + 1e-13)


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
    return ns.sum(_prod_partial(ns, x, axis) * tangents[0], axis=axis,
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
    # torch's cumprod_backward, formula for formula, so that a gradient that is inf or nan
    # somewhere, and a second derivative, reach the elements torch's do. Along an axis of
    # one element the gradient itself (no dependence on x). Without a zero in x, the
    # reversed cumulative sum of g * out, over x. With include_initial, the rule of the
    # cumulative product of [1, x] (torch's cumprod(cat([1, x])) in prod's rule): the same
    # formulas over x, but over one element of x no longer the gradient itself.
    ax = 0 if axis is None else axis % x.ndim
    if include_initial:
        g, out = _drop_first(ns, g, ax), _drop_first(ns, out, ax)
    if 0 in x.shape or (x.shape[ax] == 1 and not include_initial):
        return (g,)
    if not grad_mode.is_grad_enabled():
        return (_cumprod_grad_once(ns, g, out, x, ax),)
    # Differentiated again (create_graph): torch's products of the others where x holds a
    # zero, the quotient where not; both computed, one selected (no data-dependent branch),
    # each from x replaced by 1s where it is not taken (the cumulative product recomputed,
    # not ``out``), so that the exact zeros the select passes back to it meet no inf on
    # their way to x (0 * inf = nan). The products take n x n memory along the axis, as
    # torch's loop does.
    zero = ns.any(x == 0)
    if x.shape[ax] > _GRID_MAX and not builtins.bool(zero):
        # a long axis without a zero: the quotient alone, not an n x n grid of products
        # nobody selects (a data-dependent branch: a compiled program replays eagerly here)
        return (_reverse_cumsum(ns, ns.cumulative_prod(x, axis=ax, dtype=dtype) * g, ax) / x,)
    x_q = ns.where(zero, 1.0, x)
    quotient = _reverse_cumsum(ns, ns.cumulative_prod(x_q, axis=ax, dtype=dtype) * g, ax) / x_q
    products = _cumprod_grad_products(ns, g, x, ax, zero)
    return (ns.where(zero, products, quotient),)


# the longest axis whose create_graph cumprod rule computes both formulas (its grid of
# products holds n * n numbers per slice); longer ones choose by looking for a zero
_GRID_MAX = 256


def _cumprod_grad_once(ns, g, out, x, ax):
    """torch's first-order O(n) pass: before a slice's first zero z1 the reversed cumulative
    sum of g * out (over the elements before z1) over x; at z1 the product of the elements
    before it times sum_{z1 <= j < z2} g_j prod_{z1 < i <= j} x_i; after z1 exactly 0 (not
    g * 0: an inf or nan gradient there stays out)."""
    zero = x == 0
    nz = ns.cumulative_sum(ns.astype(zero, g.dtype), axis=ax)   # zeros up to and at each
    before, first = nz == 0, zero & (nz == 1)
    between = (nz == 1) & ~zero
    at_before = (_reverse_cumsum(ns, ns.where(before, out * g, 0.0), ax)
                 / ns.where(before, x, 1.0))
    tail = ns.cumulative_prod(ns.where(between, x, 1.0), axis=ax)
    s = ns.sum(tail * ns.where(nz == 1, g, 0.0), axis=ax, keepdims=True)
    # out[z1 - 1] (1 where z1 is the first element): the products before each element
    shifted = ns.cumulative_prod(_drop_last(ns, x, ax), axis=ax, include_initial=True)
    prefix = ns.sum(ns.where(first, shifted, 0.0), axis=ax, keepdims=True)
    return ns.where(before, at_before, ns.where(first, s * prefix, 0.0))


def _cumprod_grad_products(ns, g, x, ax, use):
    """torch's create_graph formula where x holds a zero: gradient k = sum_{j >= k} g_j
    prod_{i <= j, i != k} x_i, the product written as prod(x[:k]) times cumprod(x[k+1:])_j
    (a prod and a cumulative product of x, so that the second derivative comes from their
    rules as torch's does), for all k at once over an n x n grid. ``use`` (a 0-d bool) masks
    the grid's inputs (to 1s and 0s) when the other formula is taken."""
    xl = ns.moveaxis(ns.where(use, x, 1.0), ax, -1)
    gl = ns.moveaxis(g, ax, -1)
    n = x.shape[ax]
    idx = ns.arange(n, device=getattr(x, "device", None))
    row, col = idx[:, None], idx[None, :]            # row k, column i (or j)
    xs = xl[..., None, :]
    until = ns.prod(ns.where(col < row, xs, 1.0), axis=-1)               # prod(x[:k])
    # cumprod(x[k+1:])_j; for k = n - 2 x[n-1] itself, as torch's cumprod of one element
    # (whose rule passes its gradient through, without dividing by x[n-1])
    last = (row == n - 2) & (col == n - 1)
    runs = ns.cumulative_prod(ns.where((col > row) & (row != n - 2), xs, 1.0), axis=-1)
    after = ns.where(last, xs, runs)
    used = (col >= row) & use
    omitted = ns.where(used, until[..., None] * after, 0.0)
    grad = ns.sum(ns.where(used, gl[..., None, :], 0.0) * omitted, axis=-1)
    return ns.moveaxis(grad, -1, ax)


def _drop_last(ns, a, axis):
    key = [slice(None)] * a.ndim
    key[axis] = slice(0, -1)
    return a[tuple(key)]


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
# torch's logcumsumexp (polygrad.logcumsumexp and Tensor.logcumsumexp spell it, with dim=)
primitive("logcumsumexp", _logcumsumexp_vjp, _logcumsumexp_jvp, impl=_logcumsumexp_impl,
          node_name="LogcumsumexpBackward0", may_alias=True)

nondifferentiable("argmax", "argmin", "all", "any", "count_nonzero", "argsort", "nonzero",
                  "searchsorted", "unique_values", "unique_counts", "unique_inverse",
                  "unique_all")
