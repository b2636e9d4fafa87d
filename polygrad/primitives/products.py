"""Products: matmul, tensordot and vecdot, bilinear ops given by their two transposes
(``def_bilinear``; their JVPs follow). nn's ``linear`` is the same kind of row.

matmul's rules lift 1-D operands to matrices, then the engine sums batch dimensions back
to each operand's shape.
"""

from .table import def_bilinear as bilinear


def _lifted(ns, g, x, y):
    """x, y and g with 1-D operands lifted to matrices (reshape: cheaper than expand_dims)."""
    x2 = x if x.ndim > 1 else ns.reshape(x, (1, x.shape[0]))
    y2 = y if y.ndim > 1 else ns.reshape(y, (y.shape[0], 1))
    g2 = g
    if x.ndim == 1:
        g2 = ns.reshape(g2, (*g2.shape[:-1], 1, g2.shape[-1]) if y.ndim > 1 else (1, 1))
    if y.ndim == 1 and x.ndim > 1:
        g2 = ns.reshape(g2, (*g2.shape, 1))
    return x2, y2, g2


def _matmul_dx(ns, g, out, x, y):
    _, y2, g2 = _lifted(ns, g, x, y)
    gx = ns.matmul(g2, ns.matrix_transpose(y2))
    return ns.reshape(gx, (*gx.shape[:-2], gx.shape[-1])) if x.ndim == 1 else gx


def _matmul_dy(ns, g, out, x, y):
    x2, _, g2 = _lifted(ns, g, x, y)
    gy = ns.matmul(ns.matrix_transpose(x2), g2)
    return ns.reshape(gy, gy.shape[:-1]) if y.ndim == 1 else gy


def _vecdot_dx(ns, g, out, x, y, axis=-1):
    return ns.expand_dims(g, axis=axis if axis < 0 else axis - max(x.ndim, y.ndim)) * y


def _vecdot_dy(ns, g, out, x, y, axis=-1):
    return ns.expand_dims(g, axis=axis if axis < 0 else axis - max(x.ndim, y.ndim)) * x


def _tensordot_impl(xp, x, y, axes=2):
    return xp.tensordot(x, y, axes=axes)


def _contracted(x, y, axes):
    """The contracted axes of x and y, and their free axes."""
    if isinstance(axes, int):
        xa, ya = tuple(range(x.ndim - axes, x.ndim)), tuple(range(axes))
    else:
        xa, ya = tuple(a % x.ndim for a in axes[0]), tuple(a % y.ndim for a in axes[1])
    return xa, ya, [a for a in range(x.ndim) if a not in xa], [a for a in range(y.ndim) if a not in ya]


def _tensordot_dx(ns, g, out, x, y, axes=2):
    xa, ya, xfree, yfree = _contracted(x, y, axes)
    # g has axes (xfree..., yfree...); the product has (xfree..., xa...): back to x's order
    gx = ns.tensordot(g, y, axes=(tuple(range(len(xfree), g.ndim)), tuple(yfree)))
    order = xfree + list(xa)
    return ns.permute_dims(gx, tuple(order.index(a) for a in range(x.ndim)))


def _tensordot_dy(ns, g, out, x, y, axes=2):
    xa, ya, xfree, yfree = _contracted(x, y, axes)
    gy = ns.tensordot(x, g, axes=(tuple(xfree), tuple(range(len(xfree)))))
    order = list(ya) + yfree
    return ns.permute_dims(gy, tuple(order.index(a) for a in range(y.ndim)))


bilinear("matmul", _matmul_dx, _matmul_dy, node_name="MmBackward0", saves=(0, 1),
         methods=("matmul", "mm", "mv", "bmm"), torch=("matmul", "mm", "mv", "bmm"))
bilinear("vecdot", _vecdot_dx, _vecdot_dy, node_name="VecdotBackward0")
bilinear("tensordot", _tensordot_dx, _tensordot_dy, impl=_tensordot_impl,
         node_name="TensordotBackward0")
