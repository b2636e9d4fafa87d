"""``polygrad.linalg``: torch's ``torch.linalg`` spellings over the Array API extension
``polygrad.ops.linalg`` (which keeps the standard's signatures). Only the functions whose
torch signature differs are written here (``vector_norm(x, ord, dim, keepdim, dtype=)``);
every other name is ``polygrad.ops.linalg``'s.
"""

from __future__ import annotations

import math

from . import array_api as _ops
from . import linalg as _linalg
from .linalg import *  # noqa: F401,F403


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """torch's ``vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None)``; the
    standard's ``axis=``/``keepdims=`` are accepted too."""
    axis = dim if axis is None else axis
    keep = keepdim if keepdims is None else keepdims
    if isinstance(axis, list):
        axis = tuple(axis)
    if x.ndim == 0 and axis is not None:    # torch: dim 0 or -1 of a 0-d tensor
        axis = _ops._axis_of_0d(axis)
    _check_extremum_norm(x, ord, axis)
    if dtype is not None:
        x = x.astype(dtype)
    return _linalg.vector_norm(x, axis=axis, keepdims=bool(keep), ord=ord)


def _check_extremum_norm(x, ord, axis):
    """torch refuses the inf and -inf norms over no element (max and min have no identity);
    numpy's vector_norm gives 0."""
    if ord not in (math.inf, -math.inf):
        return
    if axis is None:
        if x.numel() == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty "
                               f"tensor because the operation does not have an identity")
        return
    for d in (axis,) if isinstance(axis, int) else axis:
        if x.shape[d] == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on the "
                               f"dimension {d % x.ndim} because this dimension is empty and "
                               f"the operation does not have an identity")


__all__ = list(_linalg.__all__)


def __getattr__(name):
    return getattr(_linalg, name)
