"""Moving raw arrays between backends and devices: DLPack first (zero copy where both
sides share a device), the explicit host path (``to_numpy`` then ``from_numpy``) as the
fallback. The differentiable move (``Tensor.to``) is built on this in ``polygrad.ops``.
"""

from __future__ import annotations

import array_api_compat

from ..base.device import device as Device
from ..base.errors import BackendUnavailableError
from .defaults import has_device

__all__ = ["move_array", "default_device", "shares_memory", "data_ptr"]


def move_array(array, src, dst, device=None):
    """Move a raw array from backend ``src`` to ``dst`` (and ``device``)."""
    if device is not None:      # a device object (x.to(other_tensor)) as a name every backend reads
        device = str(Device(device))
    native = dst.to_native_device(device) if device is not None else None
    if src is dst:
        if device is None:
            return array
        return array_api_compat.to_device(array, native)
    try:
        out = dst.from_dlpack(array) if dst.from_dlpack else dst.xp.from_dlpack(array)
        if device is not None and dst.device_str(out) != str(Device(device)) and \
                not (str(Device(device)) in ("cuda", "cpu") and
                     dst.device_str(out).split(":")[0] == str(Device(device))):
            out = array_api_compat.to_device(out, native)
        return out
    except Exception:   # noqa: BLE001 - any DLPack refusal falls back to the host path
        return dst.from_numpy(src.to_numpy(array), device=device)


def default_device(dst, here):
    """Where ``x.to(dst)`` lands without ``device=``: the tensor's own device when ``dst`` has
    it (cupy -> torch stays on the GPU, zero copy), else cpu, else dst's first device."""
    reason = dst.unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"can't move to backend {dst.name!r}: {reason}")
    if has_device(dst, here):
        return here
    devices = dst.devices()
    if not devices:
        raise BackendUnavailableError(f"can't move to backend {dst.name!r}: it declares no "
                                      f"device usable here")
    return "cpu" if "cpu" in devices else devices[0]


def shares_memory(a, b):
    pa, pb = data_ptr(a), data_ptr(b)
    if pa is None or pb is None:
        return True     # unknown: assume shared, which only costs a copy on first write
    return pa == pb


def data_ptr(a):
    """The address of an array's first element: host (numpy), CUDA (cupy, torch) or torch's."""
    for read in (lambda: a.__array_interface__["data"][0],
                 lambda: a.__cuda_array_interface__["data"][0],
                 lambda: a.data_ptr()):
        try:
            return read()
        except Exception:  # noqa: BLE001 - each library exposes one of these
            continue
    return None
