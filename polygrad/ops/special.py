"""``polygrad.ops.special``: a small ``special`` extension. scipy.special looks up
``xp.special.<name>`` on namespaces it does not know, so these run differentiably under
SciPy. ``erf`` is a primitive (``polygrad.primitives.special``); ``logit``, ``xlogy`` and
``xlog1py`` are rows of ``polygrad.primitives.elementwise`` differentiated as torch's (this
module is also ``polygrad.special``); ``expit`` is the ``sigmoid`` row.
"""

from __future__ import annotations

from ..graph.engine import apply
from ..primitives import PRIMITIVES as P
from .promotion import floating, number_like, zero_d_promoted

__all__ = ["erf", "erfinv", "expit", "logit", "xlogy", "xlog1py"]


def erf(x, /):
    """The error function (relative error < 1.2e-7 unless a backend overrides it)."""
    return apply(P["special.erf"], floating(x))    # torch: an int tensor in float32


def erfinv(x, /):
    """The inverse of erf on (-1, 1), ±inf at ±1 (float64-accurate unless a backend
    overrides it; torch's natively)."""
    return apply(P["special.erfinv"], floating(x))


def expit(x, /):
    """The logistic sigmoid, ``1 / (1 + exp(-x))`` (the sigmoid row: its gradient is 0, not
    nan, at -inf)."""
    return apply(P["sigmoid"], floating(x))


def sinc(x, /):
    """The normalized sinc, ``sin(pi x) / (pi x)``, 1 at 0 (``torch.special.sinc``)."""
    return apply(P["sinc"], floating(x))


def logit(x, /, eps=None):
    """The inverse of expit, ``log(x / (1 - x))`` (``x`` clamped to [eps, 1 - eps] first when
    ``eps`` is given), differentiated as torch's ``special.logit``."""
    return apply(P["logit"], floating(x), eps=eps)


def xlogy(x, y, /):
    """``x * log(y)``, 0 where x == 0 (even at y == 0); differentiated as torch's: d/dx is
    log(y), 0 where x == 0 and y <= 0; d/dy is x / y (nan at x == y == 0)."""
    x, y = number_like(x, y), number_like(y, x)         # the rules compute with both
    return apply(P["xlogy"], *zero_d_promoted(x, y))     # a 0-d operand: torch's promotion


def xlog1py(x, y, /):
    """``x * log1p(y)``, 0 where x == 0 (even at y == -1); differentiated as torch's."""
    x, y = number_like(x, y), number_like(y, x)
    return apply(P["xlog1py"], *zero_d_promoted(x, y))
