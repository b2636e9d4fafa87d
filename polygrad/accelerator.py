"""``polygrad.accelerator``: torch.accelerator's basics (is there an accelerator, which,
how many), as the PyTorch tensor tutorial uses them. The only accelerator polygrad's
backends declare is CUDA, so each answer is ``polygrad.cuda``'s. This module moves no
tensors (``Tensor.to`` does).
"""

from __future__ import annotations

from . import cuda
from .base.device import device as Device

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "synchronize"]


def is_available():
    """True when some usable backend has an accelerator (a CUDA device).

    >>> import polygrad
    >>> polygrad.accelerator.is_available() == polygrad.cuda.is_available()
    True
    """
    return cuda.is_available()


def current_accelerator(check_available=False):
    """``device(type='cuda')`` when a backend has a CUDA device, else None (as torch's)."""
    return Device("cuda") if cuda.is_available() else None


def device_count():
    """How many accelerator devices there are (0 when none)."""
    return cuda.device_count()


def current_device_index():
    """The index of the current accelerator device (polygrad always starts on 0)."""
    return cuda.current_device()


def synchronize(device=None):
    """Wait until the accelerator's queued work has finished."""
    cuda.synchronize(device)
