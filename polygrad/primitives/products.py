"""Linear algebra primitives: matmul, tensordot, vecdot, outer (bilinear ops).

matmul's rule handles 1-D operands by lifting them to matrices, then the
engine sums batch dimensions back to each operand's shape.
"""

from . import def_primitive as primitive


def _matmul_vjp(ns, g, out, x, y, _needs=(True, True)):
    # 1-D operands are lifted to matrices (reshape: cheaper than expand_dims), then the
    # engine sums batch dimensions back to each operand's shape.
    x2 = x if x.ndim > 1 else ns.reshape(x, (1, x.shape[0]))
    y2 = y if y.ndim > 1 else ns.reshape(y, (y.shape[0], 1))
    g2 = g
    if x.ndim == 1:
        g2 = ns.reshape(g2, (*g2.shape[:-1], 1, g2.shape[-1]) if y.ndim > 1 else (1, 1))
    if y.ndim == 1 and x.ndim > 1:
        g2 = ns.reshape(g2, (*g2.shape, 1))
    gx = gy = None
    if _needs[0]:
        gx = ns.matmul(g2, ns.matrix_transpose(y2))
        if x.ndim == 1:
            gx = ns.reshape(gx, (*gx.shape[:-2], gx.shape[-1]))
    if _needs[1]:
        gy = ns.matmul(ns.matrix_transpose(x2), g2)
        if y.ndim == 1:
            gy = ns.reshape(gy, gy.shape[:-1])
    return gx, gy


def _matmul_jvp(ns, tangents, out, x, y):
    tx, ty = tangents
    total = None
    if tx is not None:
        total = ns.matmul(tx, y)
    if ty is not None:
        term = ns.matmul(x, ty)
        total = term if total is None else total + term
    return total


_matmul_vjp.wants_needs = True


def _vecdot_vjp(ns, g, out, x, y, axis=-1):
    ge = ns.expand_dims(g, axis=axis if axis < 0 else axis - max(x.ndim, y.ndim))
    return ge * y, ge * x


def _vecdot_jvp(ns, tangents, out, x, y, axis=-1):
    tx, ty = tangents
    total = None
    if tx is not None:
        total = ns.vecdot(tx, y, axis=axis)
    if ty is not None:
        term = ns.vecdot(x, ty, axis=axis)
        total = term if total is None else total + term
    return total


def _tensordot_impl(xp, x, y, axes=2):
    return xp.tensordot(x, y, axes=axes)


def _tensordot_vjp(ns, g, out, x, y, axes=2):
    if isinstance(axes, int):
        xa = tuple(range(x.ndim - axes, x.ndim))
        ya = tuple(range(axes))
    else:
        xa, ya = (tuple(a % x.ndim for a in axes[0]), tuple(a % y.ndim for a in axes[1]))
    xfree = [a for a in range(x.ndim) if a not in xa]
    yfree = [a for a in range(y.ndim) if a not in ya]
    nxf = len(xfree)
    # g has axes (xfree..., yfree...)
    gx = ns.tensordot(g, y, axes=(tuple(range(nxf, g.ndim)), tuple(yfree)))
    # gx axes: (xfree..., ya...) -> permute to x's order
    order = xfree + list(xa)
    gx = ns.permute_dims(gx, tuple(order.index(a) for a in range(x.ndim)))
    gy = ns.tensordot(x, g, axes=(tuple(xfree), tuple(range(nxf))))
    order = list(ya) + yfree
    gy = ns.permute_dims(gy, tuple(order.index(a) for a in range(y.ndim)))
    return gx, gy


def _tensordot_jvp(ns, tangents, out, x, y, axes=2):
    tx, ty = tangents
    total = None
    if tx is not None:
        total = ns.tensordot(tx, y, axes=axes)
    if ty is not None:
        term = ns.tensordot(x, ty, axes=axes)
        total = term if total is None else total + term
    return total


primitive("matmul", _matmul_vjp, _matmul_jvp, node_name="MmBackward0", saves=(0, 1))
primitive("vecdot", _vecdot_vjp, _vecdot_jvp, node_name="VecdotBackward0")
primitive("tensordot", _tensordot_vjp, _tensordot_jvp, impl=_tensordot_impl,
          node_name="TensordotBackward0")
