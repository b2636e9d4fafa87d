"""``polygrad.ops.special``: a small ``special`` extension. scipy.special looks up
``xp.special.<name>`` on namespaces it does not know, so these run differentiably under
SciPy. ``erf`` is a primitive (``polygrad.primitives.special``); the rest compose it.
"""

from __future__ import annotations

from ..graph.engine import apply
from ..primitives import PRIMITIVES as P
from .array_api import exp, log, log1p, where

__all__ = ["erf", "expit", "logit", "xlogy", "xlog1py"]


def erf(x, /):
    """The error function (relative error < 1.2e-7 unless a backend overrides it)."""
    return apply(P["special.erf"], x)


def expit(x, /):
    """The logistic sigmoid, ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + exp(-x))


def logit(x, /):
    """The inverse of expit, ``log(x / (1 - x))``."""
    return log(x) - log1p(-x)


def xlogy(x, y, /):
    """``x * log(y)``, 0 where x == 0 (even at y == 0); d/dx is log(y) everywhere, as torch's."""
    return x * log(where((x == 0) & (y == 0), 1.0, y))


def xlog1py(x, y, /):
    """``x * log1p(y)``, 0 where x == 0 (even at y == -1)."""
    return x * log1p(where((x == 0) & (y == -1), 0.0, y))
