"""Indexing primitives: getitem (basic, integer-array and boolean keys), its
transpose scatter_add, take, take_along_axis, and the functional setitem behind
``x[key] = v``.

``scatter_add`` is not an Array API function: its generic form uses only the
standard (setitem for basic keys, a one-hot product for array keys); backends
override it with a native scatter (numpy's ``add.at``, torch's ``index_add_``).
"""

import math

from ..plugins.host import owner_of
from .table import def_linear as linear
from .table import def_primitive as primitive


def is_basic(key):
    """True for a key of ints, slices, None and Ellipsis only (torch makes a view)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in items)


def standard_key(key, ndim):
    """``key`` as the Array API spells it: a numpy-style partial basic key (``x[1]`` on a
    matrix) gains the trailing Ellipsis the standard requires."""
    items = key if isinstance(key, tuple) else (key,)
    if not is_basic(items) or Ellipsis in items:
        return key
    if len(items) - sum(k is None for k in items) <= ndim:
        return (*items, Ellipsis)     # also on full integer keys: a 0-d view, not a scalar
    return key


def _take_axis(items):
    """The axis of the one integer-array index in a key of otherwise full slices, or None.

    The standard only indexes with integer arrays on every axis at once; one array among
    full slices (``x[idx]``, ``x[:, idx]``) is ``take`` in its vocabulary.
    """
    axis = None
    for i, k in enumerate(items):
        if hasattr(k, "shape"):
            if axis is not None or "int" not in str(k.dtype):
                return None
            axis = i
        elif k is Ellipsis:
            if i != len(items) - 1:
                return None
        elif not (isinstance(k, slice) and k == slice(None)):
            return None
    return axis


def _trailing_arrays(items, ndim):
    """``(..., i1, ..., ik)`` with integer arrays on the last k <= ndim axes (``x[..., r, c]``,
    a batched diagonal): k, else None. The standard has no Ellipsis beside index arrays."""
    if len(items) < 2 or items[0] is not Ellipsis or len(items) - 1 > ndim:
        return None
    if all(hasattr(k, "shape") and "int" in str(k.dtype) for k in items[1:]):
        return len(items) - 1
    return None


def _take_trailing(xp, x, arrays):
    """``x[..., *arrays]`` as one take over the merged trailing axes."""
    lead, trail = x.shape[:x.ndim - len(arrays)], x.shape[x.ndim - len(arrays):]
    flat = 0
    for a, n in zip(arrays, trail):
        flat = flat * n + a % n
    size = 1
    for n in trail:
        size *= n
    out = xp.take(xp.reshape(x, lead + (size,)), xp.reshape(flat, (-1,)), axis=len(lead))
    return xp.reshape(out, lead + tuple(flat.shape))


def _getitem_impl(xp, x, key):
    items = key if isinstance(key, tuple) else (key,)
    axis = _take_axis(items)
    if axis is None:
        if _trailing_arrays(items, x.ndim):
            return _take_trailing(xp, x, items[1:])
        return x[standard_key(key, x.ndim)]
    idx = items[axis]
    if idx.ndim == 1:
        return xp.take(x, idx, axis=axis)
    out = xp.take(x, xp.reshape(idx, (-1,)), axis=axis)
    return xp.reshape(out, x.shape[:axis] + idx.shape + x.shape[axis + 1:])


def scatter_add_generic(xp, g, shape, key):
    """``zeros(shape)`` with ``g`` added at ``key``; repeated indices add up."""
    z = xp.zeros(shape, dtype=g.dtype, device=getattr(g, "device", None))
    if math.prod(g.shape) == 0:          # nothing to add (dask refuses an empty setitem)
        return z
    if is_basic(key):
        key, g = _without_new_axes(xp, z, key, g)
        z[standard_key(key, len(shape))] = g
        return z
    n = 1
    for s in shape:
        n *= s
    where = xp.reshape(xp.arange(n, device=getattr(g, "device", None)), shape)
    positions = xp.reshape(_getitem_impl(xp, where, key), (-1,))
    onehot = xp.astype(positions[:, None] == xp.arange(n, device=getattr(g, "device", None))[None, :], g.dtype)
    flat = xp.matmul(xp.reshape(g, (1, -1)), onehot)
    return xp.reshape(flat, shape)


def _without_new_axes(xp, x, key, value):
    """A basic ``key`` without its new axes (None), and ``value`` (an array that broadcasts
    to the region) without them: a key with None is no index for a setitem on dask or
    strict."""
    items = key if isinstance(key, tuple) else (key,)
    if not any(k is None for k in items):
        return key, value
    if getattr(value, "shape", None) is not None:
        value = xp.broadcast_to(value, tuple(x[standard_key(key, x.ndim)].shape))
    key = tuple(k for k in items if k is not None)
    if getattr(value, "shape", None) is not None:
        value = xp.reshape(value, tuple(x[standard_key(key, x.ndim)].shape))
    return key, value


def _setitem_impl(xp, x, value, key):
    y = xp.asarray(x, copy=True)
    if getattr(value, "shape", None) is not None and math.prod(value.shape) == 0:
        return y                         # an empty region (dask refuses an empty setitem)
    if is_basic(key):
        if math.prod(y[standard_key(key, y.ndim)].shape) == 0:
            return y                     # the same, with a value that broadcasts to it
        key, value = _without_new_axes(xp, y, key, value)
    y[standard_key(key, y.ndim)] = value
    return y


def _setitem_vjp(ns, g, out, x, value, key, _needs=(True, True)):
    gx = ns.setitem(g, 0.0, key=key) if _needs[0] else None
    gv = ns.getitem(g, key) if _needs[1] else None
    return gx, gv


def _setitem_jvp(ns, tangents, out, x, value, key):
    tx, tv = tangents
    base = tx if tx is not None else ns.zeros_like(x)
    return ns.setitem(base, tv if tv is not None else 0.0, key=key)


_setitem_vjp.wants_needs = True


def _take_impl(xp, x, indices, axis=None):
    if axis is None and x.ndim != 1:    # torch's take: the flattened input (compat wants
        x, axis = xp.reshape(x, (-1,)), 0     # an axis past 1-d)
    return xp.take(x, indices, axis=axis)


def _take_jvp(ns, tangents, out, x, indices, axis=None):
    t = tangents[0]
    if axis is None and t.ndim != 1:
        t, axis = ns.reshape(t, (-1,)), 0
    return ns.take(t, indices, axis=axis)


def _take_vjp(ns, g, out, x, indices, axis=None):
    if axis is None:
        flat = ns.scatter_add(g, shape=(math.prod(x.shape),), key=(indices,))
        return (ns.reshape(flat, x.shape), None)
    key = (slice(None),) * (axis % x.ndim) + (indices,)
    return (ns.scatter_add(g, shape=x.shape, key=key), None)


def _getitem_node_name(opts):
    """torch's node for ``x[key]``: named after the last step its indexing takes."""
    key = opts.get("key")
    items = key if isinstance(key, tuple) else (key,)
    if not is_basic(items):
        return "IndexBackward0"
    name = None
    for k in items:
        if k is None:
            name = "UnsqueezeBackward0"
        elif isinstance(k, int):
            name = "SelectBackward0"
        elif isinstance(k, slice) and (k != slice(None) or name is None):
            name = "SliceBackward0"
    return name or "AliasBackward0"


# a view for basic keys (ints, slices, None, ...): ``view=`` writes a value back into it
linear("getitem", lambda ns, g, out, x, key: (ns.scatter_add(g, shape=x.shape, key=key),),
       impl=_getitem_impl, node_name="IndexBackward0", saves=(), name_for=_getitem_node_name,
       view=lambda ns, parent, value, key: ns.setitem(parent, value, key=key))
linear("scatter_add", lambda ns, g, out, x, shape, key: (ns.getitem(g, key),),
       impl=scatter_add_generic, node_name="IndexPutBackward0")
primitive("setitem", _setitem_vjp, _setitem_jvp, impl=_setitem_impl, node_name="CopySlices")
primitive("take", _take_vjp, _take_jvp, impl=_take_impl, nondiff_args=(1,), node_name="TakeBackward0")


def _raw_xp(array):
    """The backend namespace of a raw index array (rules build index keys with it)."""
    return owner_of(array).xp


def along_key(xp, indices, axis):
    """The integer-array key that picks ``indices`` along ``axis`` (take_along_axis's)."""
    ndim = indices.ndim
    axis = axis % ndim
    key = []
    for i, n in enumerate(indices.shape):
        if i == axis:
            key.append(indices)
        else:
            shape = [1] * ndim
            shape[i] = n
            key.append(xp.reshape(xp.arange(n, device=getattr(indices, "device", None)),
                                  tuple(shape)))
    return tuple(key)


def _take_along_vjp(ns, g, out, x, indices, axis=-1):
    key = along_key(_raw_xp(indices), indices, axis)
    return (ns.scatter_add(g, shape=x.shape, key=key), None)


def _take_along_jvp(ns, tangents, out, x, indices, axis=-1):
    return ns.take_along_axis(tangents[0], indices, axis=axis)


primitive("take_along_axis", _take_along_vjp, _take_along_jvp, nondiff_args=(1,),
          node_name="TakeAlongDimBackward0")
