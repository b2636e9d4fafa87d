"""Strides of simulated views: the strides a view chain would have in memory, from which
polygrad decides what torch decides from real strides: whether ``reshape`` makes a view
(torch's ``computeStride``; on backends without views of their own, dask), and whether a
write's target overlaps itself (torch's ``has_internal_overlap``; on every backend)."""

from __future__ import annotations

import math

__all__ = ["chain_strides", "reshape_strides", "has_internal_overlap"]


def _contiguous(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


def chain_strides(shape, chain):
    """(shape, strides) of the view ``chain`` of a contiguous array of ``shape``, or None
    where the chain has a step this model does not follow (then no view is assumed)."""
    shape, strides = tuple(shape), _contiguous(shape)
    for prim, args, opts in chain:
        step = _STEPS.get(prim.name)
        if step is None:
            return None
        out = step(shape, strides, *args, **opts)
        if out is None:
            return None
        shape, strides = out
    return shape, strides


def has_internal_overlap(shape, strides):
    """True where two elements of a layout are one memory location, as torch decides it for
    the target of an in-place write (``MemOverlap::Yes``: a dimension of stride 0 and size
    above 1); an empty layout has no elements to overlap."""
    return math.prod(shape) != 0 and any(s == 0 and n > 1 for n, s in zip(shape, strides))


def _getitem(shape, strides, key):
    items = list(key) if isinstance(key, tuple) else [key]
    if Ellipsis in items:
        i = items.index(Ellipsis)
        fill = len(shape) - (len(items) - 1 - sum(k is None for k in items))
        items[i:i + 1] = [slice(None)] * fill
    else:
        items += [slice(None)] * (len(shape) - len(items) + sum(k is None for k in items))
    new_shape, new_strides, d = [], [], 0
    for k in items:
        if k is None:
            new_shape.append(1)
            new_strides.append(0)
        elif isinstance(k, int):
            d += 1
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[d])
            new_shape.append(len(range(start, stop, step)))
            new_strides.append(strides[d] * step)
            d += 1
        else:
            return None
    return tuple(new_shape), tuple(new_strides)


def _permute(shape, strides, axes):
    return tuple(shape[a] for a in axes), tuple(strides[a] for a in axes)


def _matrix_transpose(shape, strides):
    return (*shape[:-2], shape[-1], shape[-2]), (*strides[:-2], strides[-1], strides[-2])


def _expand_dims(shape, strides, axis=0):
    axis = axis % (len(shape) + 1)
    return (*shape[:axis], 1, *shape[axis:]), (*strides[:axis], 0, *strides[axis:])


def _squeeze(shape, strides, axis=None):
    axes = set(range(len(shape))) if axis is None else \
        {a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)}
    keep = [i for i in range(len(shape)) if not (i in axes and shape[i] == 1)]
    return tuple(shape[i] for i in keep), tuple(strides[i] for i in keep)


def _broadcast_to(shape, strides, new_shape):
    extra = len(new_shape) - len(shape)
    out = [0] * extra
    for i, (n, s) in enumerate(zip(shape, strides)):
        out.append(0 if n == 1 and new_shape[extra + i] != 1 else s)
    return tuple(new_shape), tuple(out)


def _reshape(shape, strides, new_shape, copy=None):
    new_shape = _resolve(shape, new_shape)
    new_strides = reshape_strides(shape, strides, new_shape)
    return None if new_strides is None else (new_shape, new_strides)


def _resolve(shape, new_shape):
    new_shape = list(new_shape)
    if -1 in new_shape:
        known = math.prod(n for n in new_shape if n != -1)
        new_shape[new_shape.index(-1)] = math.prod(shape) // known if known else 0
    return tuple(new_shape)


def reshape_strides(shape, strides, new_shape):
    """The strides of ``reshape(new_shape)`` as a view of an array with ``strides``, or None
    where torch's reshape copies (torch's ``computeStride``)."""
    new_shape = _resolve(shape, new_shape)
    if math.prod(shape) <= 1:
        return _contiguous(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new_strides) if view_d == -1 else None


_STEPS = {"getitem": _getitem, "permute_dims": _permute, "matrix_transpose": _matrix_transpose,
          "expand_dims": _expand_dims, "squeeze": _squeeze, "broadcast_to": _broadcast_to,
          "reshape": _reshape}
