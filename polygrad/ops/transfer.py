"""Moving tensors between backends and devices, differentiably (``Tensor.to``).

DLPack is tried first (zero copy where both sides share a device); the
explicit host path (``to_numpy`` then ``from_numpy``) is the fallback. A
zero-copy move shares one buffer between two tensors, so both storages are
pinned: the first in-place write on either side copies (copy-on-write).
"""

from __future__ import annotations

from . import grad_mode
from .device import device as Device
from .dtypes import DType, as_dtype
from .engine import _mode
from .primitives import Primitive, register_primitive

_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "gpu", "tpu")


def _is_device(s):
    if isinstance(s, Device):
        return True
    return isinstance(s, str) and s.split(":")[0] in _DEVICE_TYPES


def _parse(args, backend, device, dtype):
    for a in args:
        if isinstance(a, DType) or (not isinstance(a, str) and not _is_device(a) and a is not None
                                    and _maybe_dtype(a)):
            dtype = a
        elif _is_device(a):
            device = a
        elif isinstance(a, str):
            from .dtypes import DTYPES
            if a in DTYPES:
                dtype = a
            else:
                backend = a
        elif hasattr(a, "_backend"):      # x.to(other_tensor): its backend, device and dtype
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


def pick_backend(current, device):
    """The backend that should hold a tensor on ``device``: the current one if it can."""
    from .plugins import backend_names, get_backend
    dev = str(Device(device))
    if _has_device(current, dev):
        return current
    from .creation import default_backend
    candidates = [default_backend()] + [get_backend(n) for n in backend_names()]
    for b in candidates:
        if _has_device(b, dev):
            return b
    raise RuntimeError(
        f"no installed backend can use device {dev!r} (usable backends: {backend_names()}). "
        f"For CUDA install polygrad[torch] or polygrad[cupy] on a machine with an NVIDIA GPU.")


def _has_device(backend, dev):
    if backend.unavailable_reason() is not None:
        return False
    devs = backend.devices()
    if dev in devs:
        return True
    return ":" not in dev and any(d.split(":")[0] == dev for d in devs)


def move_array(array, src, dst, device=None):
    """Move a raw array from backend ``src`` to ``dst`` (and ``device``)."""
    if device is not None:      # a device object (x.to(other_tensor)) as a name every backend reads
        device = str(Device(device))
    native = dst.to_native_device(device) if device is not None else None
    if src is dst:
        if device is None:
            return array
        import array_api_compat
        return array_api_compat.to_device(array, native)
    try:
        out = dst.from_dlpack(array) if dst.from_dlpack else dst.xp.from_dlpack(array)
        if device is not None and dst.device_str(out) != str(Device(device)) and \
                not (str(Device(device)) in ("cuda", "cpu") and
                     dst.device_str(out).split(":")[0] == str(Device(device))):
            import array_api_compat
            out = array_api_compat.to_device(out, native)
        return out
    except Exception:   # noqa: BLE001 - any DLPack refusal falls back to the host path
        return dst.from_numpy(src.to_numpy(array), device=device)


def _to_vjp(ns, g, out, *, src, src_device):
    from ._tensor import Tensor
    if isinstance(g, Tensor):
        return (g.to(src.name, device=src_device),)
    return (move_array(g, _backend_of_array(g, out), src, src_device),)


def _backend_of_array(g, out):
    from .plugins import owner_of
    return owner_of(g)


TO_PRIM = register_primitive(Primitive("to", _to_vjp, None, node_name="ToCopyBackward0"))
TO_PRIM.jvp = lambda ns, t, out, x, *, src, src_device: None


def to(t, *args, backend=None, device=None, dtype=None, copy=False):
    from .plugins import get_backend
    from ._tensor import _make
    backend, device, dtype = _parse(args, backend, device, dtype)
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
            device = _default_device(dst, str(t.device))
        array = move_array(t._st.array, src, dst, device)
        out = _make(array, dst)
        if _shares_memory(array, t._st.array):
            out._st.saved += 1          # a permanent pin on both sides: copy on first write
            t._st.saved += 1
        if t._node is not None and _mode.enabled:
            node = TO_PRIM.node_cls(TO_PRIM, {"src": src, "src_device": str(t.device)},
                                    (), None, (t._node,), dst, ())
            out._node = node
        if t._tangent is not None:      # forward mode: the tangent moves with the value
            out._tangent = t._tangent.to(dst.name, device=device)
    if dtype is not None and as_dtype(dtype) != out.dtype:
        out = out.astype(dtype)
    elif copy and out is t:
        out = t.clone()
    return out


def _default_device(dst, here):
    """Where ``x.to(dst)`` lands without ``device=``: the tensor's own device when ``dst`` has
    it (cupy -> torch stays on the GPU, zero copy), else cpu, else dst's first device."""
    reason = dst.unavailable_reason()
    if reason is not None:
        from .errors import BackendUnavailableError
        raise BackendUnavailableError(f"can't move to backend {dst.name!r}: {reason}")
    if _has_device(dst, here):
        return here
    devices = dst.devices()
    if not devices:
        from .errors import BackendUnavailableError
        raise BackendUnavailableError(f"can't move to backend {dst.name!r}: it declares no "
                                      f"device usable here")
    return "cpu" if "cpu" in devices else devices[0]


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
            if st.saved == 0:
                st.array = arr
    return tensors[0] if len(tensors) == 1 else tensors


def _shares_memory(a, b):
    pa, pb = _data_ptr(a), _data_ptr(b)
    if pa is None or pb is None:
        return True     # unknown: assume shared, which only costs a copy on first write
    return pa == pb


def _data_ptr(a):
    """The address of an array's first element: host (numpy), CUDA (cupy, torch) or torch's."""
    for read in (lambda: a.__array_interface__["data"][0],
                 lambda: a.__cuda_array_interface__["data"][0],
                 lambda: a.data_ptr()):
        try:
            return read()
        except Exception:  # noqa: BLE001 - each library exposes one of these
            continue
    return None


del grad_mode
