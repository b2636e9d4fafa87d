"""``polygrad.linalg``: torch's ``torch.linalg`` spellings over the Array API extension
``polygrad.ops.linalg`` (which keeps the standard's signatures). Only the functions whose
torch signature differs are written here (``vector_norm(x, ord, dim, keepdim, dtype=)``);
every other name is ``polygrad.ops.linalg``'s.
"""

from __future__ import annotations

from . import linalg as _linalg
from .linalg import *  # noqa: F401,F403


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """torch's ``vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None)``; the
    standard's ``axis=``/``keepdims=`` are accepted too."""
    axis = dim if axis is None else axis
    keep = keepdim if keepdims is None else keepdims
    if isinstance(axis, list):
        axis = tuple(axis)
    if dtype is not None:
        x = x.astype(dtype)
    return _linalg.vector_norm(x, axis=axis, keepdims=bool(keep), ord=ord)


__all__ = list(_linalg.__all__)


def __getattr__(name):
    return getattr(_linalg, name)
