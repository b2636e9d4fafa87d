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
