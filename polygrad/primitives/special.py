"""A small ``special`` extension: erf. Not in the standard, but scipy.special looks up
``xp.special.erf`` on namespaces it does not know, so SciPy code runs differentiably."""

import math

from .table import def_elementwise as ew

_SERIES_TERMS = 60     # the series' terms at z = 2.5 fall below 1e-17 of its sum by then
_FRACTION_DEPTH = 60   # the continued fraction at z >= 2.5 is exact to an ulp at this depth
_SPLIT = 2.5


def _erf_small(ns, z):
    """erf(z) for 0 <= z <= 2.5: 2/sqrt(pi) exp(-z^2) sum_n (2 z^2)^n z / (2n+1)!!, whose
    terms are all positive (no cancellation)."""
    zz = z * z
    term = total = z
    for n in range(1, _SERIES_TERMS):
        term = term * (2.0 * zz / (2 * n + 1))
        total = total + term
    return 1.1283791670955126 * ns.exp(-zz) * total


def _erfc_large(ns, z):
    """erfc(z) for z >= 2.5: exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))),
    the continued fraction evaluated from the bottom."""
    frac = z
    for k in range(_FRACTION_DEPTH, 0, -1):
        frac = z + (k / 2.0) / frac
    return 0.5641895835477563 * ns.exp(-z * z) / frac


def erf_series(ns, z):
    """erf(z) for z >= 0 to float64 accuracy (a few ulps), in Array API vocabulary for any
    namespace: the series below 2.5, 1 - the continued fraction above. Each branch sees its
    arguments clipped to its range, so the one a ``where`` drops computes nothing out of it.
    A backend with a native erf declares it (``Backend.overrides["special.erf"]``)."""
    return ns.where(z < _SPLIT, _erf_small(ns, ns.minimum(z, _SPLIT)),
                    1.0 - _erfc_large(ns, ns.maximum(z, _SPLIT)))


def erfc_series(ns, z):
    """erfc(z) for z >= 0: 1 - the series below 2.5 (where erfc > 4e-4: ~1e-13 relative),
    the continued fraction above (to an ulp, also where erfc is tiny)."""
    return ns.where(z < _SPLIT, 1.0 - _erf_small(ns, ns.minimum(z, _SPLIT)),
                    _erfc_large(ns, ns.maximum(z, _SPLIT)))


def _erf_impl(xp, x):
    e = erf_series(xp, xp.abs(x))
    return xp.where(x < 0, -e, e)


def _erf_partial(ns, out, x):
    return 1.1283791670955126 * ns.exp(-(x * x))    # 2 / sqrt(pi) * exp(-x^2)


ew("special.erf", _erf_partial, impl=_erf_impl, node_name="ErfBackward0")


# -- erfinv: M. Giles' single-precision approximation ("Approximating the erfinv function",
# GPU Computing Gems, 2011; relative error < 4e-7), then in float64 two Newton steps on
# erf_series (each squares the error); a namespace with an erfinv of its own (torch's)
# computes it natively. The derivative is sqrt(pi)/2 exp(erfinv(x)^2).
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
               0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coeffs, w):
    p = coeffs[0]
    for c in coeffs[1:]:
        p = c + p * w
    return p


def _erfinv_impl(xp, x):
    native = getattr(xp, "erfinv", None)
    if native is not None:
        return native(x)
    a = xp.abs(x)
    inside = a < 1.0
    a = xp.where(inside, a, 0.0)             # no log(0) or sqrt of inf on the edges
    w = -xp.log((1.0 - a) * (1.0 + a))
    central = _horner(_GILES_CENTRAL, w - 2.5)
    tail = _horner(_GILES_TAIL, xp.sqrt(xp.where(w < 5.0, 5.0, w)) - 3.0)
    y = xp.where(w < 5.0, central, tail) * a
    # float64 only: Giles' is float32's accuracy already, and in float32 erfc_series's
    # 1 - erf loses more than the step gains
    for _ in range(2 if xp.finfo(x.dtype).eps < 1e-10 else 0):
        # erf(y) - a, read as (1 - a) - erfc(y) in the tail (1 - a exact)
        r = xp.where(a < 0.5, erf_series(xp, y) - a, (1.0 - a) - erfc_series(xp, y))
        y = y - r / (1.1283791670955126 * xp.exp(-(y * y)))
    y = xp.where(x < 0, -y, y)
    nan = xp.full_like(y, xp.nan)      # the standard's where takes at most one scalar
    edge = xp.where(x == 1.0, xp.inf, xp.where(x == -1.0, -xp.inf, nan))
    return xp.where(inside, y, edge)


ew("special.erfinv", lambda ns, out, x: 0.886226925452758 * ns.exp(out * out),
   impl=_erfinv_impl, node_name="ErfinvBackward0")


# -- lgamma and the polygamma family (digamma is order 0). A namespace with its own (torch's)
# computes them natively; otherwise, to float64 accuracy: lgamma by Lanczos (g = 7, n = 9)
# above 1/2 and the reflection formula below; psi^(n) by 10 recurrence steps up to where
# its asymptotic series converges, and below 1/2 by the reflection formula differentiated
# n times: psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)), with P_0(c) = c and
# P_(k+1)(c) = -(1 + c^2) P_k'(c). Each row's derivative is the next order's row, so every
# order of derivative is defined.
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)
_HALF_LOG_2PI = 0.9189385332046727
# B_2k / (2k)! for the asymptotic series of psi^(n): sum_k B_2k (2k + n - 1)! / (2k)! / y^(2k+n)
_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6,
              -3617.0 / 510)
_SHIFT = 10


def _cot_poly(n):
    """The coefficients (lowest first) of P_n, the n-th derivative of cot over pi^n."""
    p = [0.0, 1.0]
    for _ in range(n):
        d = [i * c for i, c in enumerate(p)][1:] or [0.0]
        # -(1 + c^2) * d
        q = [0.0] * (len(d) + 2)
        for i, c in enumerate(d):
            q[i] -= c
            q[i + 2] -= c
        p = q
    return p


def _lanczos(xp, x):
    z = x - 1.0
    a = _LANCZOS[0]
    for i, c in enumerate(_LANCZOS[1:], 1):
        a = a + c / (z + i)
    t = z + 7.5
    return _HALF_LOG_2PI + (z + 0.5) * xp.log(t) - t + xp.log(a)


def _in_float64(impl):
    """``impl`` computed in float64 for a lower-precision input (the Lanczos sum and the
    series cancel too much in float32), its result in the input's dtype."""
    def run(xp, x, **opts):
        wide = x.dtype != xp.float64
        out = impl(xp, xp.astype(x, xp.float64) if wide else x, **opts)
        return xp.astype(out, x.dtype) if wide else out
    return run


def _lgamma_impl(xp, x):
    native = getattr(xp, "lgamma", None)
    if native is not None:
        return native(x)
    return _in_float64(_lgamma64)(xp, x)


def _lgamma64(xp, x):
    small = x < 0.5
    big = xp.where(small, 1.0 - x, x)                  # >= 1/2 on both branches
    big = xp.where(xp.isinf(big), 2.0, big)            # inf: answered below
    value = _lanczos(xp, big)
    r = x - xp.trunc(xp.where(xp.isinf(x), 0.0, x))   # sin(pi x) from the fraction: exact
    pole = small & (r == 0)                           # 0, -1, -2 ...: inf
    r = xp.where(small & ~pole, r, 0.5)               # the branches not taken compute nothing
    reflected = xp.log(math.pi / xp.abs(xp.sin(math.pi * r))) - value
    out = xp.where(small, xp.where(pole, xp.inf, reflected), value)
    out = xp.where((x == 1.0) | (x == 2.0), 0.0, out)    # its zeros, exactly
    return xp.where(xp.isinf(x), xp.abs(x), out)


def _psi_asymptotic(xp, y, n):
    """psi^(n)(y) for y >= 10.5 (the series' terms fall below 1e-17 of the sum)."""
    if n == 0:
        total = xp.log(y) - 0.5 / y
        inv2 = 1.0 / (y * y)
        power = inv2
        for k, b in enumerate(_BERNOULLI, 1):
            total = total - (b / (2 * k)) * power
            power = power * inv2
        return total
    sign = 1.0 if n % 2 else -1.0                      # (-1)^(n+1)
    total = math.factorial(n - 1) / y ** n + math.factorial(n) / (2.0 * y ** (n + 1))
    for k, b in enumerate(_BERNOULLI, 1):
        coeff = b * math.factorial(2 * k + n - 1) / math.factorial(2 * k)
        total = total + coeff / y ** (2 * k + n)
    return sign * total


def _psi_right(xp, x, n):
    """psi^(n)(x) for x >= 1/2: recurrence up by _SHIFT, then the series."""
    value = _psi_asymptotic(xp, x + float(_SHIFT), n)
    sign = -1.0 if n % 2 == 0 else 1.0                 # psi^(n)(x) = psi^(n)(x+1) - (-1)^n n!/x^(n+1)
    scale = sign * math.factorial(n)
    for k in range(_SHIFT):
        value = value + scale / (x + float(k)) ** (n + 1)
    return value


def _polygamma_impl(xp, x, n=0):
    native = getattr(xp, "polygamma", None)
    if native is not None:
        return xp.digamma(x) if n == 0 else native(n, x)
    return _in_float64(_polygamma64)(xp, x, n=n)


def _polygamma64(xp, x, n=0):
    small = x < 0.5
    finite = xp.isfinite(x)
    safe = xp.where(finite, x, 1.0)
    right = _psi_right(xp, xp.where(small, 1.0 - safe, safe), n)
    r = safe - xp.trunc(safe)                          # cot(pi x) from the fraction
    pole = small & (r == 0)                            # 0, -1, -2 ...
    r = xp.where(small & ~pole, r, 0.5)                # the branches not taken compute nothing
    c = xp.cos(math.pi * r) / xp.sin(math.pi * r)
    poly = 0.0
    for coeff in reversed(_cot_poly(n)):
        poly = poly * c + coeff
    reflected = (-1.0) ** n * right - math.pi ** (n + 1) * poly
    out = xp.where(small, reflected, right)
    # the standard's where takes at most one scalar: the other branch is an array
    nan, inf = xp.full_like(out, xp.nan), xp.full_like(out, xp.inf)
    if n == 0:   # torch's: -inf at +0, inf at -0, nan at the negative integers
        at_pole = xp.where(x == 0, xp.where(xp.signbit(x), inf, -inf), nan)
        at_inf = xp.where(x > 0, inf, nan)
    else:
        at_pole = inf if n % 2 else -inf
        at_inf = xp.where(x > 0, 0.0, nan)
    out = xp.where(pole, at_pole, out)
    return xp.where(finite, out, at_inf)


def _polygamma_node_name(opts):
    return "DigammaBackward0" if opts.get("n", 0) == 0 else "PolygammaBackward0"


ew("lgamma", lambda ns, out, x: ns.polygamma(x, n=0), impl=_lgamma_impl, api=None,
   node_name="LgammaBackward0")
ew("polygamma", lambda ns, out, x, n=0: ns.polygamma(x, n=n + 1), impl=_polygamma_impl,
   api=None, node_name="PolygammaBackward0", name_for=_polygamma_node_name)
