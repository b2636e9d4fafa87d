"""``polygrad.cuda``: is a CUDA device usable, how many, wait for it (torch.cuda's basics).

Answers come from the backends' declarations: a backend's ``devices()`` listing "cuda:N"
means it can run there. "cuda" means the default CUDA-capable backend: the default backend
when it has a CUDA device, else the first usable backend (by name) that has one. Nothing here
imports a GPU library; a backend's own ``devices()`` imports its library when it needs to.
This module does not move tensors (``Tensor.to`` / ``.cuda()`` do).
"""

from __future__ import annotations

from .graph.creation import manual_seed as seed_all
from .plugins.defaults import default_backend
from .plugins.host import backend_names, get_backend

__all__ = ["is_available", "device_count", "current_device", "synchronize",
           "get_device_name", "manual_seed", "manual_seed_all"]


def _cuda_backend():
    """The default CUDA-capable backend, or None."""
    candidates = [default_backend()] + [get_backend(n) for n in backend_names()]
    for b in candidates:
        if _cuda_devices(b):
            return b
    return None


def _cuda_devices(backend):
    if backend.unavailable_reason() is not None:
        return ()
    return tuple(d for d in backend.devices() if d.split(":")[0] == "cuda")


def _require():
    b = _cuda_backend()
    if b is None:
        raise RuntimeError(
            f"no CUDA device: none of the usable backends ({', '.join(backend_names())}) "
            f"lists one. Check polygrad.cuda.is_available() first, or install the torch or "
            f"cupy extra (pip install -e '.[torch]' from a checkout of polygrad-xp) on a "
            f"machine with an NVIDIA GPU.")
    return b


def is_available():
    """True when some usable backend has a CUDA device.

    >>> import polygrad
    >>> isinstance(polygrad.cuda.is_available(), bool)
    True
    """
    return _cuda_backend() is not None


def device_count():
    """How many CUDA devices the default CUDA-capable backend sees (0 when none).

    >>> import polygrad
    >>> polygrad.cuda.device_count() >= 0
    True
    """
    b = _cuda_backend()
    return 0 if b is None else len(_cuda_devices(b))


def current_device():
    """The index of the current CUDA device (polygrad always starts on 0)."""
    _require()
    return 0


def get_device_name(device=None):
    """The GPU's name as the backend reports it (``info()["device"]``), else "cuda:N"."""
    b = _require()
    index = 0 if device is None else int(str(device).rpartition(":")[2] or 0)
    info = b.info() if b.info is not None else {}
    return info.get("device", f"cuda:{index}")


def synchronize(device=None):
    """Wait until the CUDA backend has finished its queued work (a no-op when it is eager).

    >>> import polygrad
    >>> if polygrad.cuda.is_available():
    ...     polygrad.cuda.synchronize()
    """
    b = _require()
    if b.synchronize is not None:
        b.synchronize()


def manual_seed(seed):
    """Seed the random generators (polygrad seeds every backend's at once)."""
    seed_all(seed)


manual_seed_all = manual_seed
