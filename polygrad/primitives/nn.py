"""The primitive rows of polygrad.nn: activations, linear, softmax and the fused losses.

These are primitives of their own (rather than compositions of the core table)
because they sit on every training step's hot path: one graph node instead of
three to six, and node names as torch prints them (``ReluBackward0``,
``BinaryCrossEntropyWithLogitsBackward0``). Rules are written once in Array API
vocabulary, as everywhere in polygrad. The losses take ``reduction=`` as an
option: the forward computes the elementwise loss and then reduces it, so the
unreduced form (``reduction="none"``, the default) is what a backend's fused
kernel replaces. The user-facing functions are in ``polygrad.nn.functional``.
"""

from __future__ import annotations

import math

from .reductions import _moment_impl
from .special import _erf_impl
from .table import def_bilinear, def_elementwise, def_primitive

REDUCTIONS = ("none", "mean", "sum")


# -- activations ------------------------------------------------------------------------------

def _sigmoid(ns, x):
    # torch's 1 / (1 + exp(-x)) for x >= 0 (correctly rounded where exp(-log1p(...)) was
    # an ulp off in float32, which 1 - sigmoid(x) magnifies), e / (1 + e) below: no overflow
    pos = x >= 0
    e = ns.exp(ns.where(pos, -x, x))    # exp(-|x|), differentiable at 0 (abs's slope is 0)
    return ns.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def _relu_impl(xp, x):
    return xp.maximum(x, 0)


def _sigmoid_impl(xp, x):
    return _sigmoid(xp, x)


# gelu, silu, mish: one node each, differentiated by torch's formula for the
# derivative (g times it, so an infinite g meets no 0 * inf that x * f(x)'s product rule
# would make), which records again under create_graph for their second derivatives
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_GELU_PDF = 0.5 * (2.0 / math.sqrt(math.pi)) * _SQRT1_2     # 1 / sqrt(2 pi)
_TANH_BETA = math.sqrt(2.0 / math.pi)
_TANH_KAPPA = 0.044715


def gelu_forward(xp, x, approximate="none", erf=_erf_impl):
    """torch's gelu, ``x * (1 + erf(x / sqrt 2)) / 2`` or its tanh approximation, with the
    series ``erf`` of any namespace; a backend with an erf of its own overrides the row
    ``gelu`` with this function and its erf (``erf(xp, x)``)."""
    if approximate == "tanh":
        inner = _TANH_BETA * (x + _TANH_KAPPA * (x * x * x))
        return 0.5 * x * (1.0 + xp.tanh(inner))
    return x * 0.5 * (1.0 + erf(xp, x * _SQRT1_2))


def _gelu_partial(ns, out, x, approximate="none"):
    if approximate == "tanh":       # torch's GeluBackward, tanh branch
        x_sq = x * x
        tanh_inner = ns.tanh(_TANH_BETA * (x + _TANH_KAPPA * (x_sq * x)))
        right_derivative = (0.5 * x) * (1.0 - tanh_inner * tanh_inner) * (
            _TANH_BETA * (1.0 + 3.0 * _TANH_KAPPA * x_sq))
        return 0.5 * (1.0 + tanh_inner) + right_derivative
    cdf = 0.5 * (1.0 + getattr(ns, "special.erf")(x * _SQRT1_2))
    return cdf + x * (_GELU_PDF * ns.exp(-0.5 * (x * x)))


def _silu_impl(xp, x):
    return x * _sigmoid(xp, x)


def _silu_partial(ns, out, x):
    s = ns.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _softplus(ns, x):
    return ns.logaddexp(x, 0.0)


def _mish_impl(xp, x):
    return x * xp.tanh(_softplus(xp, x))


def _mish_partial(ns, out, x):
    # torch's mish_backward (and infinitely_differentiable_mish_backward under create_graph):
    # softplus as log1p(exp(x)), which past x ~ 709 is inf (tanh 1, the same slope) and
    # differentiated again gives exp's 0 * inf: nan, as torch's
    t = ns.tanh(ns.log1p(ns.exp(x)))
    return t + x * ns.sigmoid(x) * (1.0 - t * t)


def _hardswish_impl(xp, x):
    # torch's x * min(max(x + 3, 0), 6) / 6: -0 below -3, NaN at -inf and at NaN
    return x * xp.minimum(xp.maximum(x + 3.0, 0.0), 6.0) / 6.0


# hardswish's backward is an op of its own, as torch's (hardswish_backward): 0 at and below
# -3, g at and above 3, g (x / 3 + 1/2) between (and at NaN, as torch's vectorized kernel;
# its scalar tail, the last len % 8 float64 elements on AVX2, gives g there: the torch
# backend runs torch's kernel).
# Differentiated again it selects (torch's where), never multiplies: h g / 3 strictly inside
# (-3, 3), 0 elsewhere whatever g is (a NaN g at -3 gives 0, as torch's)
def _hardswish_backward_impl(xp, g, x):
    return xp.where(x <= -3.0, 0.0, xp.where(x >= 3.0, g, g * (x / 3.0 + 0.5)))


def _hardswish_double_backward(ns, gg, x):
    return ns.where((x > -3.0) & (x < 3.0), gg / 3.0, 0.0)


def _hardswish_backward_vjp(ns, h, out, g, x, _needs=(True, True)):
    return (ns.hardswish_backward(h, x) if _needs[0] else None,
            _hardswish_double_backward(ns, h * g, x) if _needs[1] else None)


def _hardswish_backward_jvp(ns, tangents, out, g, x):
    tg, tx = tangents
    terms = []
    if tg is not None:
        terms.append(ns.hardswish_backward(tg, x))
    if tx is not None:
        terms.append(_hardswish_double_backward(ns, tx * g, x))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


_hardswish_backward_vjp.wants_needs = True


# relu, leaky_relu, hardtanh: their first-order backward is an op of its own, as torch's
# (threshold_backward, leaky_relu_backward, hardtanh_backward). Differentiated again it
# routes the incoming gradient the same way and gives the tensor it was gated by zeros
# (torch's ``self: zeros_like(grad)``), not nothing: a rule before it that meets 0 * inf
# (a variance of one element, a division by zero) gives NaN there, as torch's does
def _threshold_mask(ns, out):
    return (out > 0) | (out != out)         # a NaN passes its gradient, as torch's


def _hardtanh_mask(ns, x, min_val, max_val):
    # 0 on and beyond the bounds, and at NaN: torch's vectorized kernel (its scalar tail,
    # the last len % 8 elements of a float64 tensor on AVX2, passes the gradient at NaN)
    return (x > min_val) & (x < max_val)


def _threshold_backward_impl(xp, g, out):
    return xp.where(_threshold_mask(xp, out), g, 0.0)


def _leaky_relu_backward_impl(xp, g, x, negative_slope=0.01):
    return xp.where(x > 0, g, g * negative_slope)


def _hardtanh_backward_impl(xp, g, x, min_val=-1.0, max_val=1.0):
    return xp.where(_hardtanh_mask(xp, x, min_val, max_val), g, 0.0)


def _through(backward, on_out=False):
    """The VJP and JVP of an activation whose gradient is the backward op ``backward(g, x,
    **opts)`` (``on_out``: of its output, as relu's threshold_backward)."""
    def vjp(ns, g, out, x, **opts):
        return (getattr(ns, backward)(g, out if on_out else x, **opts),)

    def jvp(ns, tangents, out, x, **opts):
        return getattr(ns, backward)(tangents[0], out if on_out else x, **opts)
    return vjp, jvp


def _backward_op(name):
    """The VJP and JVP of a first-order backward op ``name(g, x, **opts)``: linear in g
    (the same op), and zeros for x."""
    def vjp(ns, h, out, g, x, **opts):
        return getattr(ns, name)(h, x, **opts), ns.zeros_like(x)

    def jvp(ns, tangents, out, g, x, **opts):
        return None if tangents[0] is None else getattr(ns, name)(tangents[0], x, **opts)
    return vjp, jvp


# softplus, as torch's kernels: x where beta x > threshold, else log1p(exp(beta x)) / beta;
# its backward an op of its own whose derivative in x is torch's softplus_double_backward
# (masked by multiplying with beta x < threshold: an infinite g there gives NaN, as torch's)
def _softplus_impl(xp, x, beta=1.0, threshold=20.0):
    big = x * beta > threshold
    return xp.where(big, x, xp.log1p(xp.exp(xp.where(big, 0.0, x * beta))) / beta)


def _softplus_backward_impl(xp, g, x, beta=1.0, threshold=20.0):
    xb = x * beta
    big = xb > threshold
    z = xp.exp(xp.where(big, 0.0, xb))
    return xp.where(big, g, g * z / (z + 1.0))


def _softplus_double_backward(ns, g, x, beta, threshold):
    xb = x * beta
    s = ns.sigmoid(xb)
    return g * s * (1.0 - s) * ns.astype(xb < threshold, g.dtype) * beta


def _softplus_backward_vjp(ns, h, out, g, x, beta=1.0, threshold=20.0):
    return (ns.softplus_backward(h, x, beta=beta, threshold=threshold),
            _softplus_double_backward(ns, h * g, x, beta, threshold))


def _softplus_backward_jvp(ns, tangents, out, g, x, beta=1.0, threshold=20.0):
    tg, tx = tangents
    terms = []
    if tg is not None:
        terms.append(ns.softplus_backward(tg, x, beta=beta, threshold=threshold))
    if tx is not None:
        terms.append(_softplus_double_backward(ns, tx * g, x, beta, threshold))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


# elu (selu and celu are elu with torch's scale and input_scale), as torch's kernels: one
# node (EluBackward0) whose backward is an op of its own (elu_backward: x <= 0 takes the
# exponential's slope, so 0 has alpha * scale * input_scale), differentiated again by
# torch's elu_double_backward: elu_backward of (h g input_scale) times the mask x < 0,
# multiplied (an infinite or NaN gradient on the linear side gives NaN, as torch's)
def _elu_impl(xp, x, alpha=1.0, scale=1.0, input_scale=1.0):
    neg = x <= 0
    return xp.where(neg, xp.expm1(xp.where(neg, x, 0.0) * input_scale) * (alpha * scale),
                    x * scale)


def _elu_backward_impl(xp, g, x, alpha=1.0, scale=1.0, input_scale=1.0):
    neg = x <= 0
    return xp.where(neg, g * (input_scale * alpha * scale)
                    * xp.exp(xp.where(neg, x, 0.0) * input_scale), g * scale)


def _elu_double_backward(ns, gg, x, alpha, scale, input_scale):
    return (ns.elu_backward(gg * input_scale, x, alpha=alpha, scale=scale,
                            input_scale=input_scale) * ns.astype(x < 0, gg.dtype))


def _elu_backward_vjp(ns, h, out, g, x, alpha=1.0, scale=1.0, input_scale=1.0):
    return (ns.elu_backward(h, x, alpha=alpha, scale=scale, input_scale=input_scale),
            _elu_double_backward(ns, h * g, x, alpha, scale, input_scale))


def _elu_backward_jvp(ns, tangents, out, g, x, alpha=1.0, scale=1.0, input_scale=1.0):
    tg, tx = tangents
    terms = []
    if tg is not None:
        terms.append(ns.elu_backward(tg, x, alpha=alpha, scale=scale, input_scale=input_scale))
    if tx is not None:
        terms.append(_elu_double_backward(ns, tx * g, x, alpha, scale, input_scale))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _leaky_relu_impl(xp, x, negative_slope=0.01):
    return xp.where(x > 0, x, x * negative_slope)


def _hardtanh_impl(xp, x, min_val=-1.0, max_val=1.0):
    return xp.clip(x, min_val, max_val)


# -- linear: y = x @ w.T + b ------------------------------------------------------------------

def _linear_impl(xp, x, w, b=None):
    out = xp.matmul(x, xp.matrix_transpose(w))
    return out if b is None else out + b


def _linear_dx(ns, g, out, x, w, b=None):
    return ns.matmul(g, w)


def _linear_dw(ns, g, out, x, w, b=None):
    if x.ndim == 1:
        return ns.reshape(g, (-1, 1)) * ns.reshape(x, (1, -1))
    # fold batch dimensions into one matrix product
    g2 = ns.reshape(g, (-1, g.shape[-1]))
    x2 = ns.reshape(x, (-1, x.shape[-1]))
    return ns.matmul(ns.matrix_transpose(g2), x2)


# -- layer_norm over the trailing ``axes``, without weight and bias (polygrad.nn.functional
# applies them after): one node, its VJP torch's CPU kernel, ds = sum(g x), db = sum(g),
# dx = rstd g + b x + c with b = (db mean - ds) rstd^3 / n, c = -b mean - db rstd / n (an
# infinite g where x is 0 makes ds, so the whole slice, NaN, as torch's). Mean and rstd
# are recomputed from x in the rules: under create_graph they are differentiated too --------
_var = _moment_impl("var")


def _layer_norm_stats(ns, x, axes, eps):
    mean = ns.mean(x, axis=axes, keepdims=True)
    rstd = 1.0 / ns.sqrt(_var(ns, x, axis=axes, keepdims=True) + eps)
    return mean, rstd


def _layer_norm_impl(xp, x, axes=(-1,), eps=1e-5):
    if 0 in x.shape:
        return x * 1.0
    mean, rstd = _layer_norm_stats(xp, x, axes, eps)
    return (x - mean) * rstd


def _layer_norm_vjp(ns, g, out, x, axes=(-1,), eps=1e-5):
    n = math.prod(x.shape[a] for a in axes)
    if n == 0:
        return (g * 0.0,)
    mean, a = _layer_norm_stats(ns, x, axes, eps)
    scale = 1.0 / n
    ds = ns.sum(g * x, axis=axes, keepdims=True)
    db = ns.sum(g, axis=axes, keepdims=True)
    b = (db * mean - ds) * a * a * a * scale
    c = -b * mean - db * a * scale
    return (a * g + b * x + c,)


def _layer_norm_jvp(ns, tangents, out, x, axes=(-1,), eps=1e-5):
    # rstd (tc - y mean(y tc)), tc the tangent less its mean, y the output
    t = tangents[0]
    if 0 in x.shape:
        return t * 0.0
    _, rstd = _layer_norm_stats(ns, x, axes, eps)
    tc = t - ns.mean(t, axis=axes, keepdims=True)
    return rstd * (tc - out * ns.mean(out * tc, axis=axes, keepdims=True))


# -- softmax and log_softmax over one axis -----------------------------------------------------

def _shifted(xp, x, axis):
    if 0 in x.shape:        # empty: nothing to shift (and max of an empty axis raises)
        return x
    # a row of -inf is not shifted (0 / 0: nan, as torch's); a row with +inf is, to nan
    m = xp.max(x, axis=axis, keepdims=True)
    return x - xp.where(m == -math.inf, 0.0, m)


def _softmax_impl(xp, x, axis=-1):
    e = xp.exp(_shifted(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax_impl(xp, x, axis=-1):
    s = _shifted(xp, x, axis)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def _softmax_vjp(ns, g, out, x, axis=-1):
    return (out * (g - ns.sum(g * out, axis=axis, keepdims=True)),)


def _softmax_jvp(ns, tangents, out, x, axis=-1):
    t = tangents[0]
    return out * (t - ns.sum(t * out, axis=axis, keepdims=True))


def _log_softmax_vjp(ns, g, out, x, axis=-1):
    return (g - ns.exp(out) * ns.sum(g, axis=axis, keepdims=True),)


def _log_softmax_jvp(ns, tangents, out, x, axis=-1):
    t = tangents[0]
    return t - ns.sum(ns.exp(out) * t, axis=axis, keepdims=True)


# -- losses: elementwise loss(x, y), then the reduction ----------------------------------------

def _bce_logits(ns, z, y):
    # torch's (1 - y) z - log_sigmoid(z), log_sigmoid(z) = min(z, 0) - log1p(exp(-|z|)):
    # stable for any |z|, and inf or NaN at an infinite z where torch's is
    return (1.0 - y) * z - (ns.minimum(z, 0.0) - ns.log1p(ns.exp(-ns.abs(z))))


def _mse(ns, x, y):
    d = x - y
    return d * d


def _reduce(ns, loss, reduction):
    if reduction == "mean":      # sum / n: numpy's mean costs twice as much on small arrays
        n = math.prod(loss.shape)
        # of nothing: NaN with its sign bit set, as torch's 0 / 0, without numpy's warning
        return ns.sum(loss) / n if n else ns.sum(loss) * -math.nan
    if reduction == "sum":
        return ns.sum(loss)
    return loss


def _count(x, y):
    """Elements of the broadcast of ``x`` and ``y`` (what ``mean`` divides by)."""
    nx, ny = len(x.shape), len(y.shape)
    n = max(nx, ny)
    sx = (1,) * (n - nx) + tuple(x.shape)
    sy = (1,) * (n - ny) + tuple(y.shape)
    return math.prod(max(a, b) for a, b in zip(sx, sy))


# -- binary cross entropy of probabilities, as torch's kernels: each log clamped at -100; the
# input's gradient (x - y) / max(x (1 - x), 1e-12) is a row of its own, whose rule is torch's
# double backward (not the derivative of that max), the target's -logit(x) --------------------
_BCE_EPS = 1e-12
_BCE_EPS_F32 = 9.999999960041972e-13


def _bce_impl(xp, x, y, reduction="none"):
    # log(0) is read as -100 without computing it (no divide-by-zero warning)
    log_x = xp.where(x > 0, xp.maximum(xp.log(xp.where(x > 0, x, 1.0)), -100.0), -100.0)
    log_1mx = xp.where(x < 1, xp.maximum(xp.log1p(-xp.where(x < 1, x, 0.0)), -100.0), -100.0)
    return _reduce(xp, (y - 1.0) * log_1mx - y * log_x, reduction)


def _bce_vjp(ns, g, out, x, y, reduction="none", _needs=(True, True)):
    if reduction == "mean":
        g = g / max(_count(x, y), 1)       # of nothing: an empty gradient either way
    return (ns.binary_cross_entropy_backward(g, x, y) if _needs[0] else None,
            -g * ns.logit(x) if _needs[1] else None)


def _bce_jvp(ns, tangents, out, x, y, reduction="none"):
    tx, ty = tangents
    total = None if tx is None else ns.binary_cross_entropy_backward(tx, x, y)
    if ty is not None:
        term = -ty * ns.logit(x)
        total = term if total is None else total + term
    return _reduce(ns, total, reduction)


def _bce_backward_impl(xp, g, x, y):
    # torch's kernel clamps at its EPSILON, a C float: 1e-12 rounded to float32
    return g * (x - y) / xp.maximum(x * (1.0 - x), _BCE_EPS_F32)


def _bce_backward_vjp(ns, gg, out, g, x, y, _needs=(True, True, True)):
    # torch's binary_cross_entropy_double_backward (and its _grad_output and _target)
    gg_g = gg * g
    dg = ns.binary_cross_entropy_backward(gg, x, y) if _needs[0] else None
    dx = None
    if _needs[1]:
        num = x * x - 2.0 * x * y + y
        dx = num / ((x + _BCE_EPS) ** 2 * (1.0 - x + _BCE_EPS) ** 2) * gg_g
    dy = -gg_g / ns.maximum(x * (1.0 - x), _BCE_EPS) if _needs[2] else None
    return dg, dx, dy


def _bce_backward_jvp(ns, tangents, out, g, x, y):
    total = None
    for t, d in zip(tangents, _bce_backward_vjp(ns, 1.0, out, g, x, y)):
        if t is not None:
            term = t * d
            total = term if total is None else total + term
    return total


_bce_vjp.wants_needs = _bce_backward_vjp.wants_needs = True


def def_loss(name, loss, d_input, d_target, node_name):
    """A loss primitive ``name(input, target, *, reduction="none")`` from its elementwise form.

    ``loss(ns, x, y)`` is the elementwise loss, ``d_input`` and ``d_target`` its
    partial derivatives ``(ns, x, y) -> array``. The reduction's VJP spreads
    ``g`` back over the elements (divided by their count for ``mean``).
    """
    def impl(xp, x, y, reduction="none"):
        return _reduce(xp, loss(xp, x, y), reduction)

    def spread(g, x, y, reduction):
        return g / max(_count(x, y), 1) if reduction == "mean" else g   # (empty if 0)

    def vjp(ns, g, out, x, y, reduction="none", _needs=(True, True)):
        g = spread(g, x, y, reduction)
        return (g * d_input(ns, x, y) if _needs[0] else None,
                g * d_target(ns, x, y) if _needs[1] else None)

    def jvp(ns, tangents, out, x, y, reduction="none"):
        total = None
        for t, d in zip(tangents, (d_input, d_target)):
            if t is not None:
                term = t * d(ns, x, y)
                total = term if total is None else total + term
        return _reduce(ns, total, reduction)

    vjp.wants_needs = True
    return def_primitive(name, vjp, jvp, impl=impl, node_name=node_name)


# -- smooth_l1_loss and huber_loss, as torch's: one node each (SmoothL1LossBackward0,
# HuberLossBackward0) whose backward is an op of its own (smooth_l1_loss_backward,
# huber_loss_backward, torch's kernels), differentiated again by torch's double backward:
# the incoming gradient times the mask |d| < beta (multiplied, not selected: an infinite
# or NaN gradient where the mask is 0 gives NaN, as torch's), over beta for smooth_l1.
# ``mean`` scales by 1 / the broadcast count inside the ops, as torch's norm does. Both
# need beta (delta) > 0: polygrad.nn.functional sends smooth_l1's beta = 0 to abs, as
# torch's sends it to l1_loss --------------------------------------------------------------

def _norm(x, y, reduction):
    if reduction != "mean":
        return 1.0
    n = _count(x, y)
    return 1.0 / n if n else math.inf      # torch's 1. / 0: an empty result either way


def _over_count(a, x, y, reduction):
    # torch's double backward divides by numel (rather than multiplying by the norm)
    n = _count(x, y) if reduction == "mean" else 0
    return a / n if n else a


def _smooth_l1_impl(xp, x, y, reduction="none", beta=1.0):
    z = xp.abs(x - y)
    return _reduce(xp, xp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta), reduction)


def _smooth_l1_backward_impl(xp, g, x, y, reduction="none", beta=1.0):
    # torch's vectorized kernel: norm * (sign(d) where |d| >= beta, else d / beta) * g (d is
    # not 0 where |d| >= beta > 0, so sign gives torch's +-1 there)
    d = x - y
    outside = xp.abs(d) >= beta
    slope = xp.where(outside, xp.sign(d), d / beta)
    return _norm(x, y, reduction) * slope * g


def _smooth_l1_double_backward(ns, gg, x, y, reduction, beta):
    inside = ns.astype(ns.abs(x - y) < beta, gg.dtype)
    return _over_count(gg * inside / beta, x, y, reduction)


def _huber_impl(xp, x, y, reduction="none", delta=1.0):
    z = xp.abs(x - y)
    return _reduce(xp, xp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)),
                   reduction)


def _huber_backward_impl(xp, g, x, y, reduction="none", delta=1.0):
    # torch's vectorized kernel: -norm g delta, norm g delta on and beyond the edges,
    # norm d g between them (and at NaN)
    d = x - y
    norm = _norm(x, y, reduction)
    return xp.where(d <= -delta, -norm * g * delta,
                    xp.where(d >= delta, norm * g * delta, norm * d * g))


def _huber_double_backward(ns, gg, x, y, reduction, delta):
    inside = ns.astype(ns.abs(x - y) < delta, gg.dtype)
    return _over_count(gg * inside, x, y, reduction)


def _def_smooth_loss(name, impl, backward_impl, double_backward, option, node_name):
    """The loss row ``name(x, y, *, reduction, <option>)`` and its backward row
    ``name_backward(g, x, y, *, reduction, <option>)`` (torch's pair of kernels)."""
    backward = name + "_backward"

    def vjp(ns, g, out, x, y, reduction="none", _needs=(True, True), **opts):
        op = getattr(ns, backward)
        return (op(g, x, y, reduction=reduction, **opts) if _needs[0] else None,
                op(g, y, x, reduction=reduction, **opts) if _needs[1] else None)

    def jvp(ns, tangents, out, x, y, reduction="none", **opts):
        op = getattr(ns, backward)
        tx, ty = tangents
        terms = [op(t, a, b, reduction="none", **opts)
                 for t, a, b in ((tx, x, y), (ty, y, x)) if t is not None]
        total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
        return _reduce(ns, total, reduction)

    def backward_vjp(ns, h, out, g, x, y, reduction="none", _needs=(True, True, True),
                     **opts):
        # torch's: grad_output gets the backward of h (summed to g's shape by the engine),
        # self and target plus and minus the double backward of h * g
        value = opts.get(option, 1.0)
        dg = getattr(ns, backward)(h, x, y, reduction=reduction, **opts) if _needs[0] else None
        dx = None
        if _needs[1] or _needs[2]:
            dx = double_backward(ns, h * g, x, y, reduction, value)
        return dg, dx if _needs[1] else None, -dx if _needs[2] else None

    def backward_jvp(ns, tangents, out, g, x, y, reduction="none", **opts):
        value = opts.get(option, 1.0)
        tg, tx, ty = tangents
        terms = []
        if tg is not None:
            terms.append(getattr(ns, backward)(tg, x, y, reduction=reduction, **opts))
        if tx is not None:
            terms.append(double_backward(ns, tx * g, x, y, reduction, value))
        if ty is not None:
            terms.append(-double_backward(ns, ty * g, x, y, reduction, value))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    vjp.wants_needs = backward_vjp.wants_needs = True
    def_primitive(name, vjp, jvp, impl=impl, node_name=node_name, saves=(0, 1))
    def_primitive(backward, backward_vjp, backward_jvp, impl=backward_impl,
                  node_name=node_name.replace("Backward0", "BackwardBackward0"))


# the bias enters additively: def_bilinear gives it g (the engine sums the batch dimensions)
def_bilinear("linear", _linear_dx, _linear_dw, impl=_linear_impl, node_name="AddmmBackward0",
             saves=(0, 1))     # x and w: not b, not out
# a NaN passes its gradient, as torch's (threshold_backward zeroes only where out <= 0)
def_primitive("relu", *_through("threshold_backward", on_out=True), impl=_relu_impl, node_name="ReluBackward0",
              saves=("out",), api="unary")
def_primitive("leaky_relu", *_through("leaky_relu_backward"), impl=_leaky_relu_impl,
              node_name="LeakyReluBackward0", saves=(0,))
def_primitive("hardtanh", *_through("hardtanh_backward"), impl=_hardtanh_impl,
              node_name="HardtanhBackward0", saves=(0,))
def_primitive("elu", *_through("elu_backward"), impl=_elu_impl, node_name="EluBackward0",
              saves=(0,), methods=(), torch=())
def_primitive("elu_backward", _elu_backward_vjp, _elu_backward_jvp, impl=_elu_backward_impl,
              node_name="EluBackwardBackward0")
def_primitive("softplus", *_through("softplus_backward"), impl=_softplus_impl,
              node_name="SoftplusBackward0", saves=(0,))
def_primitive("softplus_backward", _softplus_backward_vjp, _softplus_backward_jvp,
              impl=_softplus_backward_impl, node_name="SoftplusBackwardBackward0")
for _name, _impl, _node in (
        ("threshold_backward", _threshold_backward_impl, "ThresholdBackwardBackward0"),
        ("leaky_relu_backward", _leaky_relu_backward_impl, "LeakyReluBackwardBackward0"),
        ("hardtanh_backward", _hardtanh_backward_impl, "HardtanhBackwardBackward0")):
    def_primitive(_name, *_backward_op(_name), impl=_impl, node_name=_node,
                  nondiff_args=())
def_elementwise("sigmoid", lambda ns, out, x: out * (1.0 - out), impl=_sigmoid_impl,
                node_name="SigmoidBackward0", saves=("out",))
for _name, _partial, _impl, _node in (
        ("gelu", _gelu_partial, gelu_forward, "GeluBackward0"),
        ("silu", _silu_partial, _silu_impl, "SiluBackward0"),
        ("mish", _mish_partial, _mish_impl, "MishBackward0")):
    # polygrad.nn.functional spells them (no Tensor method, no top-level torch name)
    def_elementwise(_name, _partial, impl=_impl, node_name=_node, api=None, methods=(),
                    torch=())
def_primitive("hardswish", *_through("hardswish_backward"), impl=_hardswish_impl,
              node_name="HardswishBackward0", saves=(0,), methods=(), torch=())
def_primitive("hardswish_backward", _hardswish_backward_vjp, _hardswish_backward_jvp,
              impl=_hardswish_backward_impl, node_name="HardswishBackwardBackward0")
def_primitive("layer_norm", _layer_norm_vjp, _layer_norm_jvp, impl=_layer_norm_impl,
              node_name="NativeLayerNormBackward0", saves=(0, "out"))
def_primitive("softmax", _softmax_vjp, _softmax_jvp, impl=_softmax_impl,
              node_name="SoftmaxBackward0")
def_primitive("log_softmax", _log_softmax_vjp, _log_softmax_jvp, impl=_log_softmax_impl,
              node_name="LogSoftmaxBackward0")
def_loss("binary_cross_entropy_with_logits", _bce_logits,
         lambda ns, z, y: ns.sigmoid(z) - y,
         lambda ns, z, y: -z,
         node_name="BinaryCrossEntropyWithLogitsBackward0")
def_primitive("binary_cross_entropy", _bce_vjp, _bce_jvp, impl=_bce_impl,
              node_name="BinaryCrossEntropyBackward0")
def_primitive("binary_cross_entropy_backward", _bce_backward_vjp, _bce_backward_jvp,
              impl=_bce_backward_impl, node_name="BinaryCrossEntropyBackwardBackward0")
def_loss("mse_loss", _mse,
         lambda ns, x, y: 2.0 * (x - y),
         lambda ns, x, y: 2.0 * (y - x),
         node_name="MseLossBackward0")
_def_smooth_loss("smooth_l1_loss", _smooth_l1_impl, _smooth_l1_backward_impl,
                 _smooth_l1_double_backward, "beta", "SmoothL1LossBackward0")
_def_smooth_loss("huber_loss", _huber_impl, _huber_backward_impl, _huber_double_backward,
                 "delta", "HuberLossBackward0")
