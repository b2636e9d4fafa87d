"""A small ``special`` extension: erf. Not in the standard, but scipy.special looks up
``xp.special.erf`` on namespaces it does not know, so SciPy code runs differentiably."""

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
    edge = xp.where(x == 1.0, xp.inf, xp.where(x == -1.0, -xp.inf, xp.nan))
    return xp.where(inside, y, xp.astype(edge, y.dtype))


ew("special.erfinv", lambda ns, out, x: 0.886226925452758 * ns.exp(out * out),
   impl=_erfinv_impl, node_name="ErfinvBackward0")
