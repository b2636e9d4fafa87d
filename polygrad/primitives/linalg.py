"""The Array API ``linalg`` extension's differentiable primitives (real inputs):
det, logabsdet (slogdet's second output), inv, solve, cholesky, eigh, svd, svdvals, qr,
pinv and vector_norm. Rules are written in Array API vocabulary and assume the matrix is regular
(invertible; distinct eigenvalues and singular values), as torch's do.

Functions that are compositions (matrix_norm, trace, diagonal, outer, cross,
matrix_power, eigvalsh) live in ``polygrad.ops.linalg``; matmul, tensordot and vecdot
are in ``products``. ``eigh`` returns two arrays, so its primitive packs them into one:
eigenvalues in row 0 and eigenvectors below (shape ``(..., n + 1, n)``); ``ops``
unpacks them with differentiable slicing. ``svd`` packs U, S and Vh, flattened, side by
side on the last axis (``svd_parts`` splits them), qr packs Q and R the same way.
matrix_rank and slogdet's sign carry no gradient.
"""

import builtins
import math

from ..base import grad_mode
from .reductions import _exclusive_cumprod, _unreduce
from .table import def_nondifferentiable as nondifferentiable
from .table import def_primitive as primitive


def _mT(ns, a):
    return ns.matrix_transpose(a)


def _eye_like(ns, a):
    n = a.shape[-1]
    return ns.eye(n, dtype=a.dtype, device=getattr(a, "device", None))


def _trailing(ns, a, n=2):
    """``a`` with ``n`` trailing unit axes, to scale matrices by per-matrix scalars."""
    for _ in range(n):
        a = ns.expand_dims(a, axis=-1)
    return a


# det: d det(X) = det(X) tr(X^-1 dX); the gradient is the cofactor matrix det(X) X^-T
def _cofactor(ns, x, det):
    """det(X) X^-T, also where X is singular (torch's linalg_det_backward): through the SVD
    X = U S Vh it is det(U) det(Vh) U diag(prod_{j != i} s_j) Vh, the products of the other
    singular values taken without division (two exclusive cumulative products). The
    inverse serves where every matrix is regular."""
    if builtins.bool(ns.any(det == 0)):
        u, s, vh = ns.linalg.svd(x)
        alpha = ns.linalg.det(u) * ns.linalg.det(vh)
        others = _exclusive_cumprod(ns, s) * ns.flip(_exclusive_cumprod(ns, ns.flip(s, axis=-1)),
                                                     axis=-1)
        d = ns.expand_dims(alpha, axis=-1) * others
        return ns.matmul(u * ns.expand_dims(d, axis=-2), vh)
    return _trailing(ns, det) * _mT(ns, ns.linalg.inv(x))


def _det_vjp(ns, g, out, x):
    if x.shape[-1] == 0:
        return (ns.zeros_like(x),)
    if x.shape[-1] == 1:    # the cofactor of a 1 x 1 matrix is 1, also at nan or inf (torch's)
        return (ns.broadcast_to(_trailing(ns, g), x.shape),)
    if builtins.bool(ns.any(out == 0)):
        return (_trailing(ns, g) * _cofactor(ns, x, out),)
    # torch's: solve(X^T, (g det) I), the scaled identity solved for (not det times an
    # inverse: differentiated again, a product of det and X^-T cancels where the matrix is
    # ill-conditioned, the solve's rule does not)
    eye = ns.eye(x.shape[-1], dtype=x.dtype, device=getattr(x, "device", None))
    return (ns.linalg.solve(_mT(ns, x), _trailing(ns, g * out) * eye),)


def _det_jvp(ns, tangents, out, x):
    # <cofactor matrix, dX>: det(X) tr(X^-1 dX) where X is regular, and defined where not
    if x.shape[-1] == 1:
        return tangents[0][..., 0, 0]
    if x.shape[-1] and builtins.bool(ns.any(out == 0)):
        return ns.sum(_cofactor(ns, x, out) * tangents[0], axis=(-2, -1))
    return out * ns.linalg.trace(ns.linalg.solve(x, tangents[0]))


def _logabsdet_impl(xp, x):
    return xp.linalg.slogdet(x)[1]


def _logabsdet_vjp(ns, g, out, x):
    # X^-T; where a matrix is singular (log|det| = -inf) the cofactor matrix over det(X), a
    # signed zero: +-inf (nan where the cofactor is 0 too), as torch's LU solve gives
    if x.shape[-1] and builtins.bool(ns.any(out == -math.inf)):
        det = ns.linalg.det(x)
        return (_trailing(ns, g / det) * _cofactor(ns, x, det),)
    return (_trailing(ns, g) * _mT(ns, ns.linalg.inv(x)),)


def _logabsdet_jvp(ns, tangents, out, x):
    return ns.linalg.trace(ns.linalg.solve(x, tangents[0]))


# inv: d X^-1 = -X^-1 dX X^-1
def _inv_vjp(ns, g, out, x):
    ot = _mT(ns, out)
    return (-ns.matmul(ot, ns.matmul(g, ot)),)


def _inv_jvp(ns, tangents, out, x):
    return -ns.matmul(out, ns.matmul(tangents[0], out))


# solve: out = A^-1 B; gB = A^-T g, gA = -gB out^T
def _solve_vjp(ns, g, out, a, b, _needs=(True, True)):
    vector = b.ndim == 1
    if vector:
        g, out = ns.expand_dims(g, axis=-1), ns.expand_dims(out, axis=-1)
    gb = ns.linalg.solve(_mT(ns, a), g)
    ga = -ns.matmul(gb, _mT(ns, out)) if _needs[0] else None
    if vector:
        gb = ns.squeeze(gb, axis=-1)
    return ga, (gb if _needs[1] else None)


def _solve_jvp(ns, tangents, out, a, b):
    ta, tb = tangents
    vector = b.ndim == 1
    rhs = None
    if tb is not None:
        rhs = ns.expand_dims(tb, axis=-1) if vector else tb
    if ta is not None:
        o = ns.expand_dims(out, axis=-1) if vector else out
        term = -ns.matmul(ta, o)
        rhs = term if rhs is None else rhs + term
    t = ns.linalg.solve(a, rhs)
    return ns.squeeze(t, axis=-1) if vector else t


_solve_vjp.wants_needs = True


# cholesky: torch's rule. gA = L^-T Phi(L^T gL) L^-1, symmetrised; Phi = tril with half diagonal
def _phi(ns, a):
    return ns.tril(a, k=-1) + 0.5 * ns.tril(ns.triu(a))


def _cholesky_vjp(ns, g, out, x, upper=False):
    low = _mT(ns, out) if upper else out
    gl = _mT(ns, g) if upper else g
    phi = _phi(ns, ns.matmul(_mT(ns, low), gl))
    left = ns.linalg.solve(_mT(ns, low), phi)                        # L^-T phi
    ga = _mT(ns, ns.linalg.solve(_mT(ns, low), _mT(ns, left)))      # (L^-T phi) L^-1
    return (0.5 * (ga + _mT(ns, ga)),)


def _cholesky_jvp(ns, tangents, out, x, upper=False):
    low = _mT(ns, out) if upper else out
    t = tangents[0]
    # dL = L Phi(L^-1 dA L^-T)
    inner = ns.linalg.solve(low, _mT(ns, ns.linalg.solve(low, _mT(ns, t))))
    dl = ns.matmul(low, _phi(ns, inner))
    return _mT(ns, dl) if upper else dl


# eigh, packed: row 0 eigenvalues w, rows 1.. eigenvectors V
def _eigh_impl(xp, x):
    w, v = xp.linalg.eigh(x)
    w = xp.astype(w, v.dtype) if w.dtype != v.dtype else w    # complex x: w is real
    return xp.concat([xp.expand_dims(w, axis=-2), v], axis=-2)


def _eigh_parts(out):
    return out[..., 0, :], out[..., 1:, :]


def _eigh_vjp(ns, g, out, x):
    w, v = _eigh_parts(out)
    gw, gv = _eigh_parts(g)
    diff = ns.expand_dims(w, axis=-2) - ns.expand_dims(w, axis=-1)    # w_j - w_i
    eye = _eye_like(ns, diff)
    inner = eye * ns.expand_dims(gw, axis=-2)
    # the eigenvectors' term divides by eigenvalue gaps; where no gradient reaches the
    # eigenvectors it is left out, as torch's (its gV is undefined then), so that repeated
    # eigenvalues give eigvalsh a finite gradient
    if builtins.bool(ns.any(gv != 0)):
        f = ns.where(eye == 1, 0.0, 1.0 / ns.where(eye == 1, 1.0, diff))
        inner = f * ns.matmul(_mT(ns, v), gv) + inner
    ga = ns.matmul(v, ns.matmul(inner, _mT(ns, v)))
    return (0.5 * (ga + _mT(ns, ga)),)


def _eigh_jvp(ns, tangents, out, x):
    w, v = _eigh_parts(out)
    t = tangents[0]
    vtv = ns.matmul(_mT(ns, v), ns.matmul(t, v))
    diff = ns.expand_dims(w, axis=-2) - ns.expand_dims(w, axis=-1)
    eye = _eye_like(ns, diff)
    f = ns.where(eye == 1, 0.0, 1.0 / ns.where(eye == 1, 1.0, diff))
    dw = ns.sum(vtv * eye, axis=-1)
    dv = ns.matmul(v, f * vtv)
    return ns.concat([ns.expand_dims(dw, axis=-2), dv], axis=-2)


# svdvals: d s_i = u_i^T dX v_i
def _svdvals_vjp(ns, g, out, x):
    u, _, vh = ns.linalg.svd(x, full_matrices=False)
    return (ns.matmul(u * ns.expand_dims(g, axis=-2), vh),)


def _svdvals_jvp(ns, tangents, out, x):
    u, _, vh = ns.linalg.svd(x, full_matrices=False)
    return ns.sum(ns.matmul(_mT(ns, u), tangents[0]) * vh, axis=-1)


# svd, packed: U, S and Vh flattened side by side on the last axis (one output per node)
def svd_parts(ns, packed, m, n, full_matrices):
    """(U, S, Vh) from the packed output of the ``linalg.svd`` primitive."""
    k = min(m, n)
    ku, kv = (m, n) if full_matrices else (k, k)
    batch = tuple(packed.shape[:-1])
    u = packed[..., :m * ku]
    s = packed[..., m * ku:m * ku + k]
    vh = packed[..., m * ku + k:]
    if ns.isdtype(s.dtype, "complex floating"):     # packed beside complex U and Vh
        s = ns.real(s)
    return ns.reshape(u, batch + (m, ku)), s, ns.reshape(vh, batch + (kv, n))


def _flat(ns, a, batch):
    """The matrices of ``a`` as rows (sizes spelled out: -1 is ambiguous in an empty batch)."""
    return ns.reshape(a, batch + (a.shape[-2] * a.shape[-1],))


def _svd_impl(xp, x, full_matrices=True):
    u, s, vh = xp.linalg.svd(x, full_matrices=full_matrices)
    batch = tuple(x.shape[:-2])
    s = xp.astype(s, u.dtype) if s.dtype != u.dtype else s    # complex x: S is real
    return xp.concat([_flat(xp, u, batch), s, _flat(xp, vh, batch)], axis=-1)


def _svd_f(ns, s):
    """F_ij = 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it (distinct singular values)."""
    s2 = s * s
    diff = ns.expand_dims(s2, axis=-2) - ns.expand_dims(s2, axis=-1)
    eye = _eye_like(ns, diff)
    return ns.where(eye == 1, 0.0, 1.0 / ns.where(eye == 1, 1.0, diff)), eye


def _narrow(u, vh, k):
    """The first k left and right singular vectors: torch ignores the gradient of the rest
    of a full_matrices=True factorisation (they span an arbitrary basis)."""
    return u[..., :, :k], vh[..., :k, :]


def _svd_vjp(ns, g, out, x, full_matrices=True):
    m, n = x.shape[-2], x.shape[-1]
    u, s, vh = svd_parts(ns, out, m, n, full_matrices)
    gu, gs, gvh = svd_parts(ns, g, m, n, full_matrices)
    k = s.shape[-1]
    u, vh = _narrow(u, vh, k)
    gu, gvh = _narrow(gu, gvh, k)
    gv = _mT(ns, gvh)
    f, eye = _svd_f(ns, s)
    uhgu = ns.matmul(_mT(ns, u), gu)
    vhgv = ns.matmul(vh, gv)
    s_row, s_col = ns.expand_dims(s, axis=-2), ns.expand_dims(s, axis=-1)
    inner = (f * (uhgu - _mT(ns, uhgu)) * s_row + s_col * (f * (vhgv - _mT(ns, vhgv)))
             + eye * ns.expand_dims(gs, axis=-2))
    ga = ns.matmul(u, ns.matmul(inner, vh))
    if m > k:
        ga = ga + ns.matmul((gu - ns.matmul(u, uhgu)) / s_row, vh)
    if n > k:
        ga = ga + ns.matmul(u / s_row, gvh - ns.matmul(_mT(ns, vhgv), vh))
    return (ga,)


def _svd_jvp(ns, tangents, out, x, full_matrices=True):
    m, n = x.shape[-2], x.shape[-1]
    u, s, vh = svd_parts(ns, out, m, n, full_matrices)
    k = s.shape[-1]
    u, vh = _narrow(u, vh, k)
    t = tangents[0]
    v = _mT(ns, vh)
    f, eye = _svd_f(ns, s)
    p = ns.matmul(_mT(ns, u), ns.matmul(t, v))
    s_row, s_col = ns.expand_dims(s, axis=-2), ns.expand_dims(s, axis=-1)
    ds = ns.sum(p * eye, axis=-1)
    du = ns.matmul(u, f * (p * s_row + s_col * _mT(ns, p)))
    dvh = _mT(ns, ns.matmul(v, f * (s_col * p + _mT(ns, p) * s_row)))
    if m > k:
        du = du + (ns.matmul(t, v) - ns.matmul(u, p)) / s_row
    if n > k:
        dvh = dvh + _mT(ns, (ns.matmul(_mT(ns, t), u) - ns.matmul(v, _mT(ns, p))) / s_row)
    if full_matrices and m != n:     # no tangent for the arbitrary extra singular vectors
        du = _pad(ns, du, -1, m)
        dvh = _pad(ns, dvh, -2, n)
    batch = tuple(x.shape[:-2])
    return ns.concat([_flat(ns, du, batch), ds, _flat(ns, dvh, batch)], axis=-1)


def _pad(ns, a, axis, size):
    shape = list(a.shape)
    shape[axis] = size - shape[axis]
    return ns.concat([a, ns.zeros(tuple(shape), dtype=a.dtype, device=a.device)], axis=axis)


# qr (reduced, m >= n), packed like svd: Q (m x n) then R (n x n), flattened
def qr_parts(ns, packed, m, n, mode):
    """(Q, R) from the packed output of the ``linalg.qr`` primitive."""
    k = m if mode == "complete" else min(m, n)
    batch = tuple(packed.shape[:-1])
    q, r = packed[..., :m * k], packed[..., m * k:]
    return ns.reshape(q, batch + (m, k)), ns.reshape(r, batch + (k, n))


def _qr_impl(xp, x, mode="reduced"):
    q, r = xp.linalg.qr(x, mode=mode)
    batch = tuple(x.shape[:-2])
    return xp.concat([_flat(xp, q, batch), _flat(xp, r, batch)], axis=-1)


def _qr_check(x, mode):
    m, n = x.shape[-2], x.shape[-1]
    if m < n or (mode == "complete" and m != n):
        raise NotImplementedError(
            f"polygrad differentiates linalg.qr only for tall or square matrices in reduced "
            f"mode (m >= n); this one is {m} x {n} with mode={mode!r}. Call it on x.detach() "
            f"if no gradient is needed.")
    return m, n


def _right_solve(ns, a, r):
    """a R^-1, as the transpose of R^-T a^T."""
    return _mT(ns, ns.linalg.solve(_mT(ns, r), _mT(ns, a)))


def _qr_vjp(ns, g, out, x, mode="reduced"):
    # gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q
    m, n = _qr_check(x, mode)
    q, r = qr_parts(ns, out, m, n, mode)
    gq, gr = qr_parts(ns, g, m, n, mode)
    mm = ns.matmul(r, _mT(ns, gr)) - ns.matmul(_mT(ns, gq), q)
    copyltu = ns.tril(mm) + _mT(ns, ns.tril(mm, k=-1))
    b = gq + ns.matmul(q, copyltu)
    return (_mT(ns, ns.linalg.solve(r, _mT(ns, b))),)


def _qr_jvp(ns, tangents, out, x, mode="reduced"):
    # X = Q^T dA R^-1 = Omega + dR R^-1 with Omega skew and dR R^-1 upper triangular
    m, n = _qr_check(x, mode)
    q, r = qr_parts(ns, out, m, n, mode)
    ar = _right_solve(ns, tangents[0], r)
    xx = ns.matmul(_mT(ns, q), ar)
    low = ns.tril(xx, k=-1)
    upper = xx - (low - _mT(ns, low))
    dr = ns.matmul(upper, r)
    dq = ar - ns.matmul(q, upper)
    batch = tuple(x.shape[:-2])
    return ns.concat([_flat(ns, dq, batch), _flat(ns, dr, batch)], axis=-1)


# pinv (full rank): dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P
def _pinv_impl(xp, x, rtol=None):
    return xp.linalg.pinv(x, rtol=rtol)


def _pinv_vjp(ns, g, out, x, rtol=None):
    p, pt = out, _mT(ns, out)
    dev = getattr(x, "device", None)
    ap = ns.eye(x.shape[-2], dtype=x.dtype, device=dev) - ns.matmul(x, p)
    pa = ns.eye(x.shape[-1], dtype=x.dtype, device=dev) - ns.matmul(p, x)
    gt = _mT(ns, g)
    return (-ns.matmul(pt, ns.matmul(g, pt))
            + ns.matmul(ap, ns.matmul(gt, ns.matmul(p, pt)))
            + ns.matmul(ns.matmul(pt, p), ns.matmul(gt, pa)),)


def _pinv_jvp(ns, tangents, out, x, rtol=None):
    p, t = out, tangents[0]
    dev = getattr(x, "device", None)
    ap = ns.eye(x.shape[-2], dtype=x.dtype, device=dev) - ns.matmul(x, p)
    pa = ns.eye(x.shape[-1], dtype=x.dtype, device=dev) - ns.matmul(p, x)
    return (-ns.matmul(p, ns.matmul(t, p))
            + ns.matmul(ns.matmul(p, _mT(ns, p)), ns.matmul(_mT(ns, t), ap))
            + ns.matmul(pa, ns.matmul(_mT(ns, t), ns.matmul(_mT(ns, p), p))))


# vector_norm: the gradient of |x|_p is sign(x) |x|^(p-1) / |x|_p^(p-1); 0 at a zero norm
def _vnorm_impl(xp, x, axis=None, keepdims=False, ord=2):
    return xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)


def _vnorm_partial(ns, out, x, axis, keepdims, ord):
    """d |x|_p / d x, for the tangent: 0 where the norm is 0 (and, for p < 1, at zeros)."""
    o = _unreduce(ns, out, x, axis, keepdims)
    ax = abs(x)
    if ord == float("inf") or ord == -float("inf"):
        mask = ax == o
        count = ns.sum(ns.astype(mask, x.dtype), axis=axis, keepdims=True)
        # no element attains a NaN norm: 0, as torch's (not 0 / 0)
        return ns.where(mask, ns.sign(x), 0.0) / ns.where(count == 0, 1.0, count)
    if ord == 0:
        return ns.zeros_like(x)
    if ord == 1:
        return ns.sign(x)
    safe = ns.where(o == 0, 1.0, o)
    if ord == 2:
        return ns.where(o == 0, 0.0, x / safe)
    # ord < 1: |x|^(ord - 1) is inf at a zero element, whose gradient torch sets to 0
    return ns.where((o == 0) | (x == 0), 0.0, ns.sign(x) * (ax / safe) ** (ord - 1))


def _vnorm_vjp(ns, g, out, x, axis=None, keepdims=False, ord=2):
    # torch's norm_backward, term by term: g x / |x| (p = 2) or g / |x|^(p-1) times
    # sgn(x) |x|^(p-1) with 0 where the norm is 0 (for p < 1, |x|^(p-1) is 0 at zero elements
    # instead). The divisions are by the norm itself, 0/0 in the branch the where drops, so
    # that second derivatives undefined at 0 are nan there as torch's, and the masked terms
    # are written where torch writes them: a nan stays where torch's stays
    g = _unreduce(ns, g, x, axis, keepdims)
    if ord in (0, 1) or ord == float("inf") or ord == -float("inf"):
        return (g * _vnorm_partial(ns, out, x, axis, keepdims, ord),)
    o = _unreduce(ns, out, x, axis, keepdims)
    ax = abs(x)
    if ord < 1:
        base = ax if grad_mode.is_grad_enabled() else ns.where(x == 0, 1.0, ax)
        scaled = ns.sign(x) * ns.where(x == 0, 0.0, base ** (ord - 1))
        return (scaled * (g * o ** (1 - ord)),)
    if ord == 2:
        # differentiated again (create_graph): x / |x| itself, torch's nan where undefined;
        # a first-order pass divides safely (the same values, and no 0/0 to warn about)
        return (g * ns.where(o == 0, 0.0, x / (o if grad_mode.is_grad_enabled() else
                                                ns.where(o == 0, 1.0, o))),)
    denom = o ** (ord - 1)
    scale = ns.where(o == 0, 0.0, g / (denom if grad_mode.is_grad_enabled() else
                                       ns.where(o == 0, 1.0, denom)))
    scaled = ns.sign(x) * ax ** (ord - 1) if ord < 2 else x * ax ** (ord - 2)
    return (scaled * scale,)


def _vnorm_jvp(ns, tangents, out, x, axis=None, keepdims=False, ord=2):
    d = _vnorm_partial(ns, out, x, axis, keepdims, ord)
    return ns.sum(d * tangents[0], axis=axis, keepdims=keepdims)


primitive("linalg.det", _det_vjp, _det_jvp, node_name="LinalgDetBackward0")
primitive("linalg.logabsdet", _logabsdet_vjp, _logabsdet_jvp, impl=_logabsdet_impl,
          node_name="LinalgSlogdetBackward0")
primitive("linalg.inv", _inv_vjp, _inv_jvp, node_name="LinalgInvExBackward0")
primitive("linalg.solve", _solve_vjp, _solve_jvp, node_name="LinalgSolveExBackward0")
primitive("linalg.cholesky", _cholesky_vjp, _cholesky_jvp, node_name="LinalgCholeskyExBackward0")
primitive("linalg.eigh", _eigh_vjp, _eigh_jvp, impl=_eigh_impl, node_name="LinalgEighBackward0")
primitive("linalg.svdvals", _svdvals_vjp, _svdvals_jvp, node_name="LinalgSvdBackward0")
primitive("linalg.svd", _svd_vjp, _svd_jvp, impl=_svd_impl, node_name="LinalgSvdBackward0")
primitive("linalg.qr", _qr_vjp, _qr_jvp, impl=_qr_impl, node_name="LinalgQrBackward0")
primitive("linalg.pinv", _pinv_vjp, _pinv_jvp, impl=_pinv_impl, node_name="LinalgPinvBackward0")
primitive("linalg.vector_norm", _vnorm_vjp, _vnorm_jvp, impl=_vnorm_impl,
          node_name="LinalgVectorNormBackward0")
nondifferentiable("linalg.matrix_rank", "linalg.slogdet")
