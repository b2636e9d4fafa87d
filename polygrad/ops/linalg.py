"""``polygrad.ops.linalg``: the Array API linalg extension on Tensors.

Primitives with their own rules are in ``polygrad.primitives.linalg`` (det, inv,
solve, cholesky, eigh, svd, svdvals, qr, pinv, vector_norm); the rest are compositions of
primitives (matrix_norm, trace, diagonal, outer, cross, matrix_power, eigvalsh,
slogdet's log-determinant), or run on raw arrays without a gradient (matrix_rank,
slogdet's sign; see docs/array-api.md). svd, qr and eigh pack their outputs into one array.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

from ..graph.engine import apply
from ..primitives import PRIMITIVES as P
from ..primitives.linalg import qr_parts, svd_parts
from . import array_api as pg

EighResult = namedtuple("EighResult", "eigenvalues eigenvectors")
SlogdetResult = namedtuple("SlogdetResult", "sign logabsdet")
QRResult = namedtuple("QRResult", "Q R")
SVDResult = namedtuple("SVDResult", "U S Vh")


def cholesky(x, /, *, upper=False):
    return apply(P["linalg.cholesky"], x, upper=upper)


def cross(x1, x2, /, *, axis=-1):
    """The cross product of 3-vectors along ``axis`` (a composition of slices)."""
    a = [pg.take(x1, _index(x1, i), axis=axis) for i in range(3)]
    b = [pg.take(x2, _index(x2, i), axis=axis) for i in range(3)]
    parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return pg.concat(parts, axis=axis)


def _index(x, i):
    return x._backend.xp.asarray([i], device=getattr(x._st.array, "device", None))


def det(x, /):
    return apply(P["linalg.det"], x)


def diagonal(x, /, *, offset=0):
    rows, cols = x.shape[-2], x.shape[-1]
    n = builtins.max(0, builtins.min(rows, cols - offset) if offset >= 0
                     else builtins.min(rows + offset, cols))
    xp = x._backend.xp
    dev = getattr(x._st.array, "device", None)
    r = xp.arange(n, device=dev) + builtins.max(0, -offset)
    c = xp.arange(n, device=dev) + builtins.max(0, offset)
    return x[..., r, c]


def eigh(x, /):
    packed = apply(P["linalg.eigh"], x)
    w = packed[..., 0, :]
    if pg.isdtype(w.dtype, "complex floating"):     # packed beside complex eigenvectors
        w = pg.real(w)
    return EighResult(w, packed[..., 1:, :])


def eigvalsh(x, /):
    return eigh(x).eigenvalues


def inv(x, /):
    return apply(P["linalg.inv"], x)


def matmul(x1, x2, /):
    return pg.matmul(x1, x2)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """Matrix norms as compositions: Frobenius, nuclear, 1, -1, 2, -2, inf, -inf."""
    inf = float("inf")
    if ord == "fro" and not pg.isdtype(x.dtype, "complex floating"):
        # the vector 2-norm's row: its gradient is 0 at the zero matrix (as torch's), where
        # sqrt's would be nan
        out = vector_norm(x, axis=(-2, -1))
    elif ord == "fro":
        out = pg.sqrt(pg.sum(pg.real(x * pg.conj(x)), axis=(-2, -1)))
    elif ord == "nuc":
        out = pg.sum(svdvals(x), axis=-1)
    elif ord in (2, -2):
        s = svdvals(x)
        out = pg.max(s, axis=-1) if ord == 2 else pg.min(s, axis=-1)
    elif ord in (1, -1, inf, -inf):
        sums = pg.sum(pg.abs(x), axis=-2 if ord in (1, -1) else -1)
        out = pg.max(sums, axis=-1) if ord in (1, inf) else pg.min(sums, axis=-1)
    else:
        raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, "
                         f"got {ord!r}")
    return pg.expand_dims(pg.expand_dims(out, axis=-1), axis=-1) if keepdims else out


def matrix_power(x, n, /):
    """``x`` multiplied by itself ``n`` times (by squaring); negative ``n`` inverts first."""
    if n < 0:
        x, n = inv(x), -n
    if n == 0:
        eye = pg.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        return pg.broadcast_to(eye, x.shape) + 0 * x
    result = None
    while n:
        if n & 1:
            result = x if result is None else pg.matmul(result, x)
        n >>= 1
        if n:
            x = pg.matmul(x, x)
    return result


def matrix_rank(x, /, *, rtol=None):
    return pg._call_raw("linalg.matrix_rank", x, rtol=pg._raw(rtol))


def matrix_transpose(x, /):
    return pg.matrix_transpose(x)


def outer(x1, x2, /):
    return pg.expand_dims(x1, axis=-1) * pg.expand_dims(x2, axis=0)


def pinv(x, /, *, rtol=None):
    return apply(P["linalg.pinv"], x, rtol=pg._raw(rtol))


def qr(x, /, *, mode="reduced"):
    """Differentiable for tall or square x in reduced mode (m >= n)."""
    packed = apply(P["linalg.qr"], x, mode=mode)
    return QRResult(*qr_parts(pg, packed, x.shape[-2], x.shape[-1], mode))


def slogdet(x, /):
    sign = pg._call_raw("linalg.slogdet", x)[0]
    return SlogdetResult(sign, apply(P["linalg.logabsdet"], x))


def solve(x1, x2, /):
    return apply(P["linalg.solve"], x1, x2)


def svd(x, /, *, full_matrices=True):
    """Differentiable for full_matrices=False (or square x), distinct singular values."""
    packed = apply(P["linalg.svd"], x, full_matrices=full_matrices)
    return SVDResult(*svd_parts(pg, packed, x.shape[-2], x.shape[-1], full_matrices))


def svdvals(x, /):
    return apply(P["linalg.svdvals"], x)


def tensordot(x1, x2, /, *, axes=2):
    return pg.tensordot(x1, x2, axes=axes)


def trace(x, /, *, offset=0, dtype=None):
    return pg.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def vecdot(x1, x2, /, *, axis=-1):
    return pg.vecdot(x1, x2, axis=axis)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    return apply(P["linalg.vector_norm"], x, axis=pg._axis(axis), keepdims=keepdims, ord=ord)


FUNCTIONS = [cholesky, cross, det, diagonal, eigh, eigvalsh, inv, matmul, matrix_norm,
             matrix_power, matrix_rank, matrix_transpose, outer, pinv, qr, slogdet, solve, svd,
             svdvals, tensordot, trace, vecdot, vector_norm]
__all__ = [fn.__name__ for fn in FUNCTIONS]


def __getattr__(name):
    # registry rows named "linalg.<name>" outside the standard (logabsdet, plugins' ops)
    prim = P.get("linalg." + name) if not name.startswith("_") else None
    if prim is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fn = globals()[name] = pg.generated(prim)
    return fn
