"""Moving tensors between backends and devices, differentiably (``Tensor.to``), and
``compute`` for lazy backends.

The raw move is ``polygrad.plugins.transfer.move_array`` (DLPack first, the host path as
the fallback); the ``to`` primitive's rule moves the gradient back. A zero-copy move shares
one buffer between two tensors, so both storages are pinned: the first in-place write on
either side copies (copy-on-write).
"""

from __future__ import annotations

from ..base import grad_mode
from ..base.device import device as Device
from ..base.dtypes import DTYPES, DType, as_dtype
from ..graph.engine import node_class
from ..graph.tensor import Tensor, wrap
from ..plugins.defaults import pick_backend
from ..plugins.host import get_backend
from ..plugins.transfer import default_device, move_array, shares_memory
from ..primitives.transfer import TO

__all__ = ["to", "compute"]

_mode = grad_mode._mode
_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "gpu", "tpu")


def _is_device(s):
    if isinstance(s, Device):
        return True
    return isinstance(s, str) and s.split(":")[0] in _DEVICE_TYPES


def parse_to_args(args, backend, device, dtype):
    for a in args:
        if isinstance(a, DType) or (not isinstance(a, str) and not _is_device(a) and a is not None
                                    and _maybe_dtype(a)):
            dtype = a
        elif _is_device(a):
            device = a
        elif isinstance(a, str):
            if a in DTYPES:
                dtype = a
            else:
                backend = a
        elif isinstance(a, Tensor):       # x.to(other_tensor): its backend, device and dtype
            backend, device, dtype = a._backend, a.device, a.dtype
        else:
            raise TypeError(f"to() got an unexpected argument {a!r}")
    return backend, device, dtype


def _maybe_dtype(a):
    try:
        as_dtype(a)
        return True
    except TypeError:
        return False


def to(t, *args, backend=None, device=None, dtype=None, copy=False):
    """``Tensor.to``: move to another backend or device (differentiably) and/or cast.

    >>> import polygrad
    >>> polygrad.ones(2).to(polygrad.float64).dtype
    polygrad.float64
    """
    backend, device, dtype = parse_to_args(args, backend, device, dtype)
    src = t._backend
    if backend is not None:
        dst = get_backend(backend)
    elif device is not None:
        dst = pick_backend(src, device)
    else:
        dst = src
    out = t
    if dst is not src or (device is not None and t.device != Device(device)):
        if device is None and dst is not src:
            device = default_device(dst, str(t.device))
        array = move_array(t._st.array, src, dst, device)
        if shares_memory(array, t._st.array):       # DLPack shared the memory: a move is
            array = dst.xp.asarray(array, copy=True)  # a new tensor, as torch's .to(device)
        out = wrap(array, dst)
        if t._node is not None and _mode.enabled:
            node = node_class(TO)(TO, {"src": src, "src_device": str(t.device)},
                                  (), None, (t._node,), dst, ())
            out._node = node
        if t._tangent is not None:      # forward mode: the tangent moves with the value
            out._tangent = t._tangent.to(dst.name, device=device)
    if dtype is not None and as_dtype(dtype) != out.dtype:
        out = out.astype(dtype)
    elif copy and out is t:
        out = t.clone()
    return out


def compute(*tensors):
    """Materialise lazy tensors in one pass per backend; eager tensors are returned as they are."""
    by_backend = {}
    for t in tensors:
        if t._backend.lazy and t._backend.materialize is not None:
            by_backend.setdefault(t._backend.name, []).append(t)
    for group in by_backend.values():
        arrays = group[0]._backend.materialize([t._st.array for t in group])
        for t, arr in zip(group, arrays):
            st = t._st
            if st.buf.saved == 0 and st.view is None and not st.dependents:
                st.array = arr        # the computed values replace the lazy graph
    return tensors[0] if len(tensors) == 1 else tensors
