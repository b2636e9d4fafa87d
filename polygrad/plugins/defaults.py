"""Which backend new tensors go to: the default backend, ``use_backend`` blocks, and the
backend that serves a device.

Without ``backend=``, a tensor is made on the current default backend: the innermost
``use_backend()`` block (thread-local), else ``set_default_backend()`` (every thread),
else ``POLYGRAD_BACKEND``, else numpy.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import threading

from ..base.device import device as Device
from ..base.errors import UnknownBackendError
from .host import backend_names, get_backend

__all__ = ["DEFAULT_BACKEND", "set_default_backend", "get_default_backend", "use_backend",
           "default_backend", "pick_backend", "has_device", "set_default_device",
           "get_default_device", "default_device_for", "default_device"]

DEFAULT_BACKEND = "numpy"      # the embedded default; only its name is known here


class _Defaults(threading.local):
    stack = ()


_defaults = _Defaults()
_global = {"name": None, "device": None}


def set_default_backend(name):
    """Make ``name`` the backend for new tensors in every thread.

    >>> import polygrad
    >>> polygrad.set_default_backend("numpy")
    """
    get_backend(name).xp  # noqa: B018  (loads it: fail now, with a clear error, if it cannot run)
    _global["name"] = name


def get_default_backend():
    """The name of the backend new tensors are made on."""
    return default_backend().name


@contextlib.contextmanager
def use_backend(name):
    """Make new tensors on ``name`` inside the block (thread-local).

    >>> import polygrad
    >>> with polygrad.use_backend("numpy"):
    ...     polygrad.zeros(2).backend
    'numpy'
    """
    backend = get_backend(name)
    backend.xp  # noqa: B018  (loads it: fail now if it cannot run)
    _defaults.stack = _defaults.stack + (backend,)
    try:
        yield backend
    finally:
        _defaults.stack = _defaults.stack[:-1]


def default_backend():
    """The Backend new tensors are made on (see the module docstring)."""
    if _defaults.stack:
        return _defaults.stack[-1]
    name = _global["name"]
    if name is not None:
        return get_backend(name)
    env = os.environ.get("POLYGRAD_BACKEND")
    if env:
        try:
            return get_backend(env)
        except UnknownBackendError:
            known = backend_names(usable=False)
            close = difflib.get_close_matches(env, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownBackendError(
                f"the environment variable POLYGRAD_BACKEND={env!r} names no installed "
                f"backend (installed: {', '.join(known) or 'none'}).{hint} Fix or unset it."
            ) from None
    return get_backend(DEFAULT_BACKEND)


def set_default_device(device):
    """Make new tensors go to ``device`` when no ``device=`` is given, as
    ``torch.set_default_device`` (every thread; ``None`` undoes it). A device the default
    backend lacks ("cuda" on numpy) moves new tensors to a backend that has it.

    >>> import polygrad
    >>> polygrad.set_default_device("cpu")
    >>> polygrad.get_default_device()
    device(type='cpu')
    >>> polygrad.set_default_device(None)
    """
    if device is None:
        _global["device"] = None
        return
    dev = str(Device(device))
    pick_backend(default_backend(), dev)        # fail now if no installed backend has it
    _global["device"] = dev


def get_default_device():
    """The device new tensors go to without ``device=`` (cpu unless changed)."""
    return Device(_global["device"] or "cpu")


def default_device_for(backend):
    """The default device set by ``set_default_device`` if ``backend`` has it, else None
    (the backend's own default)."""
    dev = _global["device"]
    return dev if dev is not None and has_device(backend, dev) else None


def default_device():
    """The device set by ``set_default_device``, or None."""
    return _global["device"]


def pick_backend(current, device):
    """The backend that should hold a tensor on ``device``: the current one if it can."""
    dev = str(Device(device))
    if has_device(current, dev):
        return current
    candidates = [default_backend()] + [get_backend(n) for n in backend_names()]
    for b in candidates:
        if has_device(b, dev):
            return b
    raise RuntimeError(
        f"no installed backend can use device {dev!r} (usable backends: {backend_names()}). "
        f"For CUDA install the torch or cupy extra (pip install -e '.[torch]' from a checkout) "
        f"on a machine with an NVIDIA GPU.")


def has_device(backend, dev):
    """True when ``backend`` can run here and has device ``dev`` ("cuda" matches "cuda:0")."""
    if backend.unavailable_reason() is not None:
        return False
    devs = backend.devices()
    if dev in devs:
        return True
    return ":" not in dev and any(d.split(":")[0] == dev for d in devs)
