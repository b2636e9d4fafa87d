"""``polygrad.linalg``: torch's ``torch.linalg`` spellings over the Array API extension
``polygrad.ops.linalg`` (which keeps the standard's signatures). Only the functions whose
torch signature differs are written here (``vector_norm(x, ord, dim, keepdim, dtype=)``,
``matrix_norm(A, ord, dim, keepdim, dtype=)``, ``norm``);
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


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch's ``matrix_norm(A, ord='fro', dim=(-2, -1), keepdim=False, *, dtype=None)``:
    ``'fro'``, ``'nuc'``, 2, -2, 1, -1, inf and -inf over the two dims ``dim``."""
    if dtype is not None:
        A = A.astype(dtype)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 "
                           f"dimensions, but got {A.ndim}")
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({d0}, {d1})")
    if ord == "fro":
        return _linalg.vector_norm(A, axis=(d0, d1), keepdims=bool(keepdim))
    if ord not in ("nuc", 2, -2, 1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    moved = _ops.moveaxis(A, (d0, d1), (-2, -1))
    out = _linalg.matrix_norm(moved, ord=ord, keepdims=True)
    out = _ops.moveaxis(out, (-2, -1), (d0, d1))
    return out if keepdim else _ops.squeeze(out, axis=(d0, d1))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch's ``linalg.norm``: the vector norm over ``dim`` (all elements where both ``ord``
    and ``dim`` are None), the matrix norm where ``dim`` is a pair or ``ord`` a string or
    where ``ord`` is given for a 2-D ``A``."""
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
    if dim is None and ord is not None:
        if A.ndim not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
        dim = tuple(range(A.ndim))
    if isinstance(ord, str) or (dim is not None and len(dim) == 2):
        return matrix_norm(A, "fro" if ord is None else ord, dim if dim else (-2, -1),
                           keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def solve(A, B, *, left=True):
    """torch's ``linalg.solve(A, B, *, left=True)``: ``B`` is a (batch of) vector(s) when it
    is 1-D or has ``A``'s shape without the last dim (torch's batch rule; the standard's
    ``polygrad.ops.linalg.solve`` takes only a 1-D ``B`` as a vector). ``left=False``
    solves ``X A = B``."""
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if not left:
        if vector:
            n = A.shape[-1]
            raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                               f"XA = B ({n}x{n} and {B.shape[-1]}x1)")
        return _ops.matrix_transpose(solve(_ops.matrix_transpose(A), _ops.matrix_transpose(B)))
    if vector:
        return _linalg.solve(A, B[..., None])[..., 0]
    return _linalg.solve(A, B)


def vecdot(x, y, *, dim=-1, axis=None):
    """torch's ``vecdot(x, y, *, dim=-1)``: ``(x.conj() * y).sum(dim)`` with broadcasting,
    a 0-d operand included (the standard's ``axis=`` is accepted too)."""
    axis = dim if axis is None else axis
    if x.ndim and y.ndim:
        if x.shape != y.shape:      # torch broadcasts first, the summed dim included
            x, y = _ops.broadcast_arrays(x, y)
        return _linalg.vecdot(x, y, axis=axis)
    prod = (_ops.conj(x) if x.dtype.is_complex else x) * y
    if prod.ndim == 0:
        _ops._axis_of_0d(axis)
        return prod
    return _ops.sum(prod, axis=axis)


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


__all__ = list(_linalg.__all__) + ["norm"]


def __getattr__(name):
    return getattr(_linalg, name)
