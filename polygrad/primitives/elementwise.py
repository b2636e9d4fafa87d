"""Elementwise primitives: each row gives only its partial derivatives.

``out`` is the op's output and is reused where the derivative is cheaper that
way (exp, tanh, sqrt). Broadcasting is handled by the engine, not here.
"""

import math

from .table import PRIMITIVES, conjugate, def_primitive
from .table import def_elementwise as ew
from .table import def_gated as gated
from .table import def_linear as linear
from .table import def_nondifferentiable as nondifferentiable
from .table import def_primitive as primitive


def _pow_dx(ns, out, x, y):
    # d/dx x**y = y * x**(y - 1); 0 where y == 0, even at x == 0 (torch does the same)
    if not hasattr(y, "shape"):     # a Python exponent
        return ns.zeros_like(x) if y == 0 else y * x ** (y - 1)
    return ns.where(y == 0, 0.0, y * x ** (y - 1))


def _pow_vjp(ns, g, out, x, y, _needs=(True, True)):
    # torch's pow_backward: where the exponent is 0 the base's gradient is 0 whatever g is
    # (a nan or inf g stays out: zeros_like for a Python 0, a where for a tensor exponent)
    gx = None
    if _needs[0]:
        if not hasattr(y, "shape"):
            gx = ns.zeros_like(x) if y == 0 else g * (y * x ** (y - 1))
        else:
            gx = ns.where(y == 0, 0.0, g * (y * x ** (y - 1)))
    return gx, (g * _pow_dy(ns, out, x, y) if _needs[1] else None)


def _pow_dy(ns, out, x, y):
    # d/dy x**y = out * log(x); 0 where x == 0 and y >= 0 (the limit), -inf where x == 0 and
    # y < 0, as torch's. out * log(0) stands in the branch the where drops, as in torch's
    # formula, so that its second derivative is nan there as torch's
    if not hasattr(x, "shape"):     # a Python base (2.0 ** t): its log is a Python number
        if x == 0:
            return ns.where(y >= 0, 0.0, out * -math.inf)
        return out * (math.log(x) if x > 0 else math.nan)
    return ns.where((x == 0) & (y >= 0), 0.0, out * ns.log(x))


def _divide_impl(xp, x, y):
    # The standard divides floating-point arrays only (array-api-strict refuses integers);
    # integer arrays divide in the other operand's float dtype, else float32, as torch does.
    # Floating inputs, the hot path, go straight through.
    try:
        return xp.divide(x, y)
    except TypeError:
        pass
    fx, fy = _float_dtype(xp, x), _float_dtype(xp, y)
    if fx is None and hasattr(x, "dtype"):
        x = xp.astype(x, fy or xp.float32)
    if fy is None and hasattr(y, "dtype"):
        y = xp.astype(y, fx or xp.float32)
    return xp.divide(x, y)


def _float_dtype(xp, x):
    dt = getattr(x, "dtype", None)
    return dt if dt is not None and xp.isdtype(dt, ("real floating", "complex floating")) else None


# -- linear ops: a transpose is all they need -----------------------------------------------
linear("add", lambda ns, g, out, x, y: (g, g), saves=(), api="binary")
linear("subtract", lambda ns, g, out, x, y: (g, -g), saves=(), api="binary", torch=("subtract", "sub"),
       methods=("subtract", "sub"), node_name="SubBackward0")
linear("negative", lambda ns, g, out, x: (-g,), saves=(), api="unary", torch=("negative", "neg"),
       methods=("negative", "neg"), node_name="NegBackward0")
linear("positive", lambda ns, g, out, x: (g,), saves=(), api="unary", may_alias=True)
linear("real", lambda ns, g, out, x: (g,), api="unary", may_alias=True)
linear("conj", lambda ns, g, out, x: (conjugate(ns, g),), api="unary", may_alias=True)
# imag(z) for complex z: the gradient of a real loss is 1j * g in torch's convention
linear("imag", lambda ns, g, out, x: (g * 1j,), api="unary", may_alias=True)

# -- arithmetic ---------------------------------------------------------------------------
# Complex inputs follow torch's convention: the VJP is g times the conjugate partial.
ew("multiply", lambda ns, out, x, y: y, lambda ns, out, x, y: x, conjugate_vjp=True,
   saves=(0, 1), torch=("multiply", "mul"), methods=("multiply", "mul"), node_name="MulBackward0")
def _reciprocal_of(y):
    # 1 / y; a Python zero divisor gives +-inf, as an array's would (not ZeroDivisionError)
    if hasattr(y, "shape") or y != 0:
        return 1.0 / y
    return math.copysign(math.inf, y) if isinstance(y, float) else math.inf


def _divide_vjp(ns, g, out, x, y, _needs=(True, True)):
    # torch's: g / y and -g * ((x / y) / y), each at the broadcast shape before the engine
    # sums it to its input's, so that a second derivative through a broadcast divisor sums
    # (over no element: 0) before anything is divided by it
    yc = conjugate(ns, y)
    return (g / yc if _needs[0] else None,
            -g * conjugate(ns, out / y) if _needs[1] else None)


ew("divide", lambda ns, out, x, y: _reciprocal_of(y), lambda ns, out, x, y: -out / y,
   conjugate_vjp=True, vjp=_divide_vjp,
   impl=_divide_impl, torch=("divide", "true_divide"), methods=("divide", "true_divide"), node_name="DivBackward0")
ew("pow", _pow_dx, _pow_dy, vjp=_pow_vjp)
ew("square", lambda ns, out, x: 2.0 * x, saves=(0,), node_name="PowBackward0")
ew("sqrt", lambda ns, out, x: 0.5 / out, saves=("out",))
ew("reciprocal", lambda ns, out, x: -(out * out), saves=("out",))
def _abs_partial(ns, out, x):
    # sign(NaN) is NaN in the standard; torch's abs passes no gradient through a NaN
    if not ns.isdtype(x.dtype, "complex floating"):
        return ns.where(x != x, 0.0, ns.sign(x))
    # z / |z| (0 at 0), written through divide and abs so that its own derivative is right
    # (the sign row's is 0, true of real signs only); divided by 1 at 0, so that the
    # derivative is 0 there, as torch's sgn_backward
    zero = out == 0
    return ns.where(zero, 0.0, x / ns.where(zero, 1.0, out))


ew("abs", _abs_partial, saves=(0, "out"))
# torch's routing: an input gets the gradient unless the other one wins (half each at a
# tie), so with a NaN (no comparison holds) both get all of it
gated("maximum", lambda ns, out, x, y: ns.logical_not(x < y),
      lambda ns, out, x, y: ns.logical_not(x > y), ties=True, saves=(0, 1), api="binary")
gated("minimum", lambda ns, out, x, y: ns.logical_not(x > y),
      lambda ns, out, x, y: ns.logical_not(x < y), ties=True, saves=(0, 1), api="binary")
# torch's copysign_tensor_self_backward: out / x, 0 where x == 0 (nan second derivative there);
# y gets zeros, not g times zeros: a nan in g does not reach it, as torch's zeros_like(other)
def _copysign_partial(ns, out, x, y):
    return ns.where(x == 0, 0.0, out / x)


def _copysign_vjp(ns, g, out, x, y, _needs=(True, True)):
    gy = ns.zeros_like(y) if _needs[1] and hasattr(y, "shape") else None
    return (g * _copysign_partial(ns, out, x, y) if _needs[0] else None), gy


def _copysign_jvp(ns, tangents, out, x, y):
    tx = tangents[0]
    return ns.zeros_like(out) if tx is None else tx * _copysign_partial(ns, out, x, y)


_copysign_vjp.wants_needs = True
primitive("copysign", _copysign_vjp, _copysign_jvp, api="binary")
ew("hypot", lambda ns, out, x, y: x / out, lambda ns, out, x, y: y / out)

# -- exponentials and logarithms ------------------------------------------------------------
ew("exp", lambda ns, out, x: out, saves=("out",))
ew("expm1", lambda ns, out, x: out + 1.0, saves=("out",))
ew("log", lambda ns, out, x: 1.0 / x, saves=(0,))
ew("log1p", lambda ns, out, x: 1.0 / (x + 1.0), saves=(0,), node_name="Log1PBackward0")
ew("log2", lambda ns, out, x: 1.0 / (x * 0.6931471805599453))
ew("log10", lambda ns, out, x: 1.0 / (x * 2.302585092994046))
# torch's logaddexp_backward: 1 / (1 + exp(other - self)), finite where an input is -inf
ew("logaddexp", lambda ns, out, x, y: 1.0 / (1.0 + ns.exp(y - x)),
   lambda ns, out, x, y: 1.0 / (1.0 + ns.exp(x - y)), saves=(0, 1))

# -- trigonometric and hyperbolic -----------------------------------------------------------
ew("sin", lambda ns, out, x: ns.cos(x), saves=(0,))
ew("cos", lambda ns, out, x: -ns.sin(x), saves=(0,))
ew("tan", lambda ns, out, x: 1.0 + out * out, saves=("out",))
# torch also spells the inverse functions arcsin, arccos, ... (as numpy does)
def _arc(name):
    return {"torch": (name, "arc" + name[1:]), "methods": (name, "arc" + name[1:])}


ew("asin", lambda ns, out, x: 1.0 / ns.sqrt(1.0 - x * x), **_arc("asin"))
ew("acos", lambda ns, out, x: -1.0 / ns.sqrt(1.0 - x * x), **_arc("acos"))
ew("atan", lambda ns, out, x: 1.0 / (1.0 + x * x), **_arc("atan"))
def _atan2_recip(ns, y, x):
    # torch's atan2_backward: 1 / (x^2 + y^2), 0 where that is 0 (the gradient at the
    # origin is 0 and its second derivative nan, as torch's)
    r2 = x * x + y * y
    return ns.where(r2 == 0, 0.0, 1.0 / r2)


def _atan2_jvp(ns, tangents, out, y, x):
    # torch's: (x ty - y tx) / (x^2 + y^2), unmasked (nan at the origin, as torch's)
    ty, tx = tangents
    num = None if ty is None else x * ty
    if tx is not None:
        num = -y * tx if num is None else num - y * tx
    return num / (x * x + y * y)


ew("atan2", lambda ns, out, y, x: x * _atan2_recip(ns, y, x),
   lambda ns, out, y, x: -y * _atan2_recip(ns, y, x), **_arc("atan2")).jvp = _atan2_jvp
ew("sinh", lambda ns, out, x: ns.cosh(x))
ew("cosh", lambda ns, out, x: ns.sinh(x))
ew("tanh", lambda ns, out, x: 1.0 - out * out, saves=("out",))
ew("asinh", lambda ns, out, x: 1.0 / ns.sqrt(x * x + 1.0), **_arc("asinh"))
ew("acosh", lambda ns, out, x: 1.0 / ns.sqrt(x * x - 1.0), **_arc("acosh"))
ew("atanh", lambda ns, out, x: 1.0 / (1.0 - x * x), **_arc("atanh"))

# -- piecewise constant: zero gradient almost everywhere, as torch's zeros_like: zeros, not
# g * 0, so that a NaN arriving (from a masked branch in double backward) stays out --------
def _zero_vjp(ns, g, out, x, **_):
    return (ns.zeros_like(x),)


def _zero_jvp(ns, tangents, out, x, **_):
    return ns.zeros_like(x)


def _sign_impl(xp, x, nan_sign=None):
    """The standard's sign: NaN at NaN. ``nan_sign=0.0`` is torch's (its kernel compares
    with 0, so a NaN is neither side: 0), which its torch-style spellings pass."""
    if xp.isdtype(x.dtype, "bool"):
        return xp.asarray(x, copy=True)     # torch's sign of a bool tensor (numpy has none)
    s = xp.sign(x)
    if nan_sign is None or not xp.isdtype(s.dtype, "real floating"):
        return s
    return xp.where(x != x, xp.asarray(nan_sign, dtype=s.dtype), s)


def_primitive("sign", _zero_vjp, _zero_jvp, api="unary", impl=_sign_impl,
              torch_opts={"nan_sign": 0.0})
for _name in ("floor", "ceil", "round", "trunc"):
    def_primitive(_name, _zero_vjp, _zero_jvp, api="unary")

# -- selection ------------------------------------------------------------------------------
gated("where", None, lambda ns, out, c, x, y: c, lambda ns, out, c, x, y: ~c, saves=(0,))
gated("clip", lambda ns, out, x, min=None, max=None: _in_range(x, min, max), saves=(0,), node_name="ClampBackward1")


def _in_range(x, lo, hi):
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        mask = (x <= hi) if mask is None else (mask & (x <= hi))
    return mask if mask is not None else (x == x)


# -- remainders: x - y * floor(x / y) and x - y * trunc(x / y), as torch differentiates them
def _fmod_impl(xp, x, y):
    fmod = getattr(xp, "fmod", None)     # not in the standard: numpy's and torch's, else
    if fmod is not None:                 # the remainder of the magnitudes, signed as x
        return fmod(x, y)
    return xp.copysign(xp.remainder(xp.abs(x), xp.abs(y)), x)


# the quotients come from floor_divide (no gradient), as torch's div(rounding_mode=...):
# through floor(x / y) a second derivative would meet 0 / 0 at y == 0
def _trunc_quotient(ns, x, y):
    return ns.where((x < 0) == (y < 0), ns.floor_divide(x, y), -ns.floor_divide(-x, y))


def _remainder_impl(xp, x, y, zero_sign="divisor"):
    """The standard's remainder: the sign of the divisor, also on a zero (``-1 % 1`` is
    +0); ``zero_sign="dividend"`` is torch's (fmod's zero, signed as x: -0). Backends
    differ on the zero (numpy's is the standard's, torch's is torch's): the where says."""
    r = xp.remainder(x, y)
    if not (hasattr(r, "dtype") and xp.isdtype(r.dtype, "real floating")):
        return r
    s = x if zero_sign == "dividend" else y
    if not hasattr(s, "shape"):
        s = xp.asarray(float(s), dtype=r.dtype)
    return xp.where(r == 0, xp.copysign(xp.zeros_like(r), s), r)


ew("remainder", lambda ns, out, x, y, **_: 1.0,
   lambda ns, out, x, y, **_: -ns.floor_divide(x, y), impl=_remainder_impl,
   torch=("remainder",), methods=("remainder",), torch_opts={"zero_sign": "dividend"})
ew("fmod", lambda ns, out, x, y: 1.0, lambda ns, out, x, y: -_trunc_quotient(ns, x, y),
   impl=_fmod_impl,
   api=None, torch=("fmod",), methods=("fmod",),
   doc="torch's fmod (C's): the remainder with the sign of x; not in the Array API standard")


# -- lerp: torch's, with torch's formula in each half (exact at weight 1) and torch's gradient
# (g (1 - w), g w, g (end - x)): x and end enter the rule once each, so an infinite g meets
# no inf - inf that x + w (end - x) differentiated term by term would make
def _lerp_impl(xp, x, end, w=None, weight=None):
    if w is None:                       # a Python weight (lerp.Scalar): its half in Python
        if abs(weight) < 0.5:
            return x + weight * (end - x)
        return end - (end - x) * (1 - weight)
    return xp.where(xp.abs(w) < 0.5, x + w * (end - x), end - (end - x) * (1 - w))


def _lerp_vjp(ns, g, out, x, end, w=None, weight=None, _needs=(True, True, True)):
    wt = weight if w is None else w
    return (g * (1 - wt) if _needs[0] else None,
            g * wt if _needs[1] else None,
            g * (end - x) if w is not None and _needs[2] else None)


_lerp_vjp.wants_needs = True


def _lerp_jvp(ns, tangents, out, x, end, w=None, weight=None):
    wt = weight if w is None else w
    terms = [t * f for t, f in zip(tangents, (1 - wt, wt, None if w is None else end - x))
             if t is not None]
    total = terms[0] if terms else None
    for term in terms[1:]:
        total = total + term
    return total


primitive("lerp", _lerp_vjp, _lerp_jvp, impl=_lerp_impl,
          name_for=lambda opts: "LerpBackward0" if "weight" in opts else "LerpBackward1",
          doc="torch's lerp: x + w (end - x); not in the Array API standard")


# -- torch-only elementwise functions (torch_surface and polygrad.special spell them): each
# partial is torch's backward formula, masked where torch masks it, the masked branch
# computed all the same (0/0 in the branch a where drops) so that second derivatives are
# nan exactly where torch's are
def _xlogy_impl(xp, x, y):
    zero = (x == 0) & (y == y)      # no log(0) computed there (numpy would warn)
    return xp.where(zero, 0.0, x * xp.log(xp.where(zero, 1.0, y)))


def _xlog1py_impl(xp, x, y):
    zero = (x == 0) & (y == y)
    return xp.where(zero, 0.0, x * xp.log1p(xp.where(zero, 0.0, y)))


ew("xlogy", lambda ns, out, x, y: ns.where((x == 0) & (y <= 0), 0.0, ns.log(y)),
   lambda ns, out, x, y: x / y, impl=_xlogy_impl, api=None, torch=(), methods=(),
   doc="torch's xlogy: x * log(y), 0 where x == 0 (even at y == 0)")
ew("xlog1py", lambda ns, out, x, y: ns.where((x == 0) & (y <= -1), 0.0, ns.log1p(y)),
   lambda ns, out, x, y: x / (y + 1.0), impl=_xlog1py_impl, api=None, torch=(), methods=(),
   node_name="SpecialXlog1PyBackward0",
   doc="torch's special.xlog1py: x * log1p(y), 0 where x == 0 (even at y == -1)")


def _sinc_impl(xp, x):
    zero = x == 0
    safe = xp.where(zero, 1.0, x) * math.pi
    return xp.where(zero, 1.0, xp.sin(safe) / safe)


def _sinc_partial(ns, out, x):
    # torch's sinc_backward: (pi x cos(pi x) - sin(pi x)) / (pi x^2), 0 where pi x^2 == 0;
    # its second derivative at 0 is nan there as torch's (the true one is -pi^2 / 3)
    xpi = x * math.pi
    sq = x * x * math.pi
    return ns.where(sq == 0, 0.0, (xpi * ns.cos(xpi) - ns.sin(xpi)) / sq)


ew("sinc", _sinc_partial, impl=_sinc_impl, api=None, torch=(), methods=(),
   doc="torch's sinc: sin(pi x) / (pi x), 1 at 0")


def _logit_impl(xp, x, eps=None):
    if eps is not None:
        x = xp.clip(x, eps, 1.0 - eps)
    return xp.log(x / (1.0 - x))


def _logit_partial(ns, out, x, eps=None):
    # torch's infinitely_differentiable_logit_backward: 1 / (x (1 - x)) inside [eps, 1 - eps]
    # (inf at 0 and 1 without eps), 0 outside it with eps, nan outside [0, 1] without
    lo, hi = (0.0, 1.0) if eps is None else (eps, 1.0 - eps)
    return ns.where((x >= lo) & (x <= hi), 1.0 / (x * (1.0 - x)), 0.0 if eps is not None
                    else math.nan)


ew("logit", _logit_partial, impl=_logit_impl, api=None, torch=(), methods=(),
   doc="torch's logit: log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given")


# -- comparisons and logical ops: no gradient ------------------------------------------------
# torch's ``equal`` compares whole tensors; its elementwise comparisons are eq, ne, lt, ...
for _name, _torch in (("equal", "eq"), ("not_equal", "ne"), ("less", "lt"),
                      ("less_equal", "le"), ("greater", "gt"), ("greater_equal", "ge")):
    _spelt = (_torch,) if _name == "equal" else (_name, _torch)
    nondifferentiable(_name, api="binary", torch=_spelt, methods=_spelt)
nondifferentiable("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
                  "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "floor_divide",
                  api="binary")


# nextafter(x, y) is x moved by one ulp: torch differentiates it as x (NextafterBackward0:
# the gradient passes to x, y gets zeros, not g * 0)
def _nextafter_vjp(ns, g, out, x, y, _needs=(True, True)):
    return (g if _needs[0] else None, ns.zeros_like(g) if _needs[1] else None)


ew("nextafter", lambda ns, out, x, y: 1.0, lambda ns, out, x, y: 0.0, vjp=_nextafter_vjp)
nondifferentiable("logical_not", "isnan", "isinf", "isfinite", "signbit", api="unary")
nondifferentiable("bitwise_invert", api="unary", torch=("bitwise_not",),
                  methods=("bitwise_not",))


# -- the Array API standard's one-line summary of each function above: the docstring that
# polygrad.ops shows for it (a new row may pass its own doc=) -------------------------------
_SUMMARIES = {
    "abs": "Calculates the absolute value for each element x_i of the input array x.",
    "acos": (
        "Calculates an implementation-dependent approximation of the principal value of "
        "the inverse cosine for each element x_i of the input array x."
    ),
    "acosh": (
        "Calculates an implementation-dependent approximation to the inverse hyperbolic "
        "cosine for each element x_i of the input array x."
    ),
    "add": (
        "Calculates the sum for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "asin": (
        "Calculates an implementation-dependent approximation of the principal value of "
        "the inverse sine for each element x_i of the input array x."
    ),
    "asinh": (
        "Calculates an implementation-dependent approximation to the inverse hyperbolic "
        "sine for each element x_i in the input array x."
    ),
    "atan": (
        "Calculates an implementation-dependent approximation of the principal value of "
        "the inverse tangent for each element x_i of the input array x."
    ),
    "atan2": (
        "Calculates an implementation-dependent approximation of the inverse tangent of "
        "the quotient x1/x2, having domain [-infinity, +infinity] x [-infinity, "
        "+infinity] (where the x notation denotes the set of ordered pairs of elements "
        "(x1_i, x2_i)) and codomain [-pi, +pi], for each pair of elements (x1_i, x2_i) of "
        "the input arrays x1 and x2, respectively."
    ),
    "atanh": (
        "Calculates an implementation-dependent approximation to the inverse hyperbolic "
        "tangent for each element x_i of the input array x."
    ),
    "bitwise_and": (
        "Computes the bitwise AND of the underlying binary representation of each element "
        "x1_i of the input array x1 with the respective element x2_i of the input array "
        "x2."
    ),
    "bitwise_left_shift": (
        "Shifts the bits of each element x1_i of the input array x1 to the left by "
        "appending x2_i (i.e., the respective element in the input array x2) zeros to the "
        "right of x1_i."
    ),
    "bitwise_invert": "Inverts (flips) each bit for each element x_i of the input array x.",
    "bitwise_or": (
        "Computes the bitwise OR of the underlying binary representation of each element "
        "x1_i of the input array x1 with the respective element x2_i of the input array "
        "x2."
    ),
    "bitwise_right_shift": (
        "Shifts the bits of each element x1_i of the input array x1 to the right "
        "according to the respective element x2_i of the input array x2."
    ),
    "bitwise_xor": (
        "Computes the bitwise XOR of the underlying binary representation of each element "
        "x1_i of the input array x1 with the respective element x2_i of the input array "
        "x2."
    ),
    "ceil": (
        "Rounds each element x_i of the input array x to the smallest (i.e., closest to "
        "-infinity) integer-valued number that is not less than x_i."
    ),
    "conj": "Returns the complex conjugate for each element x_i of the input array x.",
    "copysign": (
        "Composes a floating-point value with the magnitude of x1_i and the sign of x2_i "
        "for each element of the input array x1."
    ),
    "cos": (
        "Calculates an implementation-dependent approximation to the cosine for each "
        "element x_i of the input array x."
    ),
    "cosh": (
        "Calculates an implementation-dependent approximation to the hyperbolic cosine "
        "for each element x_i in the input array x."
    ),
    "divide": (
        "Calculates the division of each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "equal": (
        "Computes the truth value of x1_i == x2_i for each element x1_i of the input "
        "array x1 with the respective element x2_i of the input array x2."
    ),
    "exp": (
        "Calculates an implementation-dependent approximation to the exponential function "
        "for each element x_i of the input array x (e raised to the power of x_i, where e "
        "is the base of the natural logarithm)."
    ),
    "expm1": (
        "Calculates an implementation-dependent approximation to exp(x)-1 for each "
        "element x_i of the input array x."
    ),
    "floor": (
        "Rounds each element x_i of the input array x to the greatest (i.e., closest to "
        "+infinity) integer-valued number that is not greater than x_i."
    ),
    "floor_divide": (
        "Rounds the result of dividing each element x1_i of the input array x1 by the "
        "respective element x2_i of the input array x2 to the greatest (i.e., closest to "
        "+infinity) integer-value number that is not greater than the division result."
    ),
    "greater": (
        "Computes the truth value of x1_i > x2_i for each element x1_i of the input array "
        "x1 with the respective element x2_i of the input array x2."
    ),
    "greater_equal": (
        "Computes the truth value of x1_i >= x2_i for each element x1_i of the input "
        "array x1 with the respective element x2_i of the input array x2."
    ),
    "hypot": (
        "Computes the square root of the sum of squares for each element x1_i of the "
        "input array x1 with the respective element x2_i of the input array x2."
    ),
    "imag": (
        "Returns the imaginary component of a complex number for each element x_i of the "
        "input array x."
    ),
    "isfinite": "Tests each element x_i of the input array x to determine if finite.",
    "isinf": (
        "Tests each element x_i of the input array x to determine if equal to positive or "
        "negative infinity."
    ),
    "isnan": (
        "Tests each element x_i of the input array x to determine whether the element is "
        "NaN."
    ),
    "less": (
        "Computes the truth value of x1_i < x2_i for each element x1_i of the input array "
        "x1 with the respective element x2_i of the input array x2."
    ),
    "less_equal": (
        "Computes the truth value of x1_i <= x2_i for each element x1_i of the input "
        "array x1 with the respective element x2_i of the input array x2."
    ),
    "log": (
        "Calculates an implementation-dependent approximation to the natural (base e) "
        "logarithm for each element x_i of the input array x."
    ),
    "log1p": (
        "Calculates an implementation-dependent approximation to log(1+x), where log "
        "refers to the natural (base e) logarithm, for each element x_i of the input "
        "array x."
    ),
    "log2": (
        "Calculates an implementation-dependent approximation to the base 2 logarithm for "
        "each element x_i of the input array x."
    ),
    "log10": (
        "Calculates an implementation-dependent approximation to the base 10 logarithm "
        "for each element x_i of the input array x."
    ),
    "logaddexp": (
        "Calculates the logarithm of the sum of exponentiations log(exp(x1) + exp(x2)) "
        "for each element x1_i of the input array x1 with the respective element x2_i of "
        "the input array x2."
    ),
    "logical_and": (
        "Computes the logical AND for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "logical_not": "Computes the logical NOT for each element x_i of the input array x.",
    "logical_or": (
        "Computes the logical OR for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "logical_xor": (
        "Computes the logical XOR for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "maximum": (
        "Computes the maximum value for each element x1_i of the input array x1 relative "
        "to the respective element x2_i of the input array x2."
    ),
    "minimum": (
        "Computes the minimum value for each element x1_i of the input array x1 relative "
        "to the respective element x2_i of the input array x2."
    ),
    "multiply": (
        "Calculates the product for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "negative": (
        "Computes the numerical negative of each element x_i (i.e., y_i = -x_i) of the "
        "input array x."
    ),
    "nextafter": (
        "Returns the next representable floating-point value for each element x1_i of the "
        "input array x1 in the direction of the respective element x2_i of the input "
        "array x2."
    ),
    "not_equal": (
        "Computes the truth value of x1_i != x2_i for each element x1_i of the input "
        "array x1 with the respective element x2_i of the input array x2."
    ),
    "positive": (
        "Computes the numerical positive of each element x_i (i.e., y_i = +x_i) of the "
        "input array x."
    ),
    "pow": (
        "Calculates an implementation-dependent approximation of exponentiation by "
        "raising each element x1_i (the base) of the input array x1 to the power of x2_i "
        "(the exponent), where x2_i is the corresponding element of the input array x2."
    ),
    "real": (
        "Returns the real component of a complex number for each element x_i of the input "
        "array x."
    ),
    "reciprocal": "Returns the reciprocal for each element x_i of the input array x.",
    "remainder": (
        "Returns the remainder of division for each element x1_i of the input array x1 "
        "and the respective element x2_i of the input array x2."
    ),
    "round": (
        "Rounds each element x_i of the input array x to the nearest integer-valued "
        "number."
    ),
    "sign": (
        "Returns an indication of the sign of a number for each element x_i of the input "
        "array x."
    ),
    "signbit": (
        "Determines whether the sign bit is set for each element x_i of the input array "
        "x."
    ),
    "sin": (
        "Calculates an implementation-dependent approximation to the sine for each "
        "element x_i of the input array x."
    ),
    "sinh": (
        "Calculates an implementation-dependent approximation to the hyperbolic sine for "
        "each element x_i of the input array x."
    ),
    "square": "Squares each element x_i of the input array x.",
    "sqrt": "Calculates the principal square root for each element x_i of the input array x.",
    "subtract": (
        "Calculates the difference for each element x1_i of the input array x1 with the "
        "respective element x2_i of the input array x2."
    ),
    "tan": (
        "Calculates an implementation-dependent approximation to the tangent for each "
        "element x_i of the input array x."
    ),
    "tanh": (
        "Calculates an implementation-dependent approximation to the hyperbolic tangent "
        "for each element x_i of the input array x."
    ),
    "trunc": (
        "Rounds each element x_i of the input array x to the nearest integer-valued "
        "number that is closer to zero than x_i."
    ),
}
for _name, _summary in _SUMMARIES.items():
    PRIMITIVES[_name].doc = PRIMITIVES[_name].doc or _summary
