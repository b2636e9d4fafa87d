"""The exceptions polygrad raises. Each says what went wrong and how to fix it.

This module owns the exception classes only; the messages are written where
the error is detected.
"""


class PolygradError(Exception):
    """Base class of polygrad's own exceptions."""


class PluginError(PolygradError, RuntimeError):
    """A plugin registered something malformed, or two plugins collide."""


class UnknownBackendError(PolygradError, LookupError):
    """A backend name that no installed plugin provides."""

    def __str__(self):  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(PolygradError, RuntimeError):
    """A backend is installed but cannot run here (no GPU, a missing library)."""


class BackendMismatchError(PolygradError, RuntimeError):
    """One op received tensors that live on two different backends or devices."""


class UnsupportedOperation(PolygradError, NotImplementedError):
    """A backend declares that it cannot run an op; the message names both."""


# Public as ``polygrad.<Name>``: tracebacks print that name, not this module's path.
for _cls in (PolygradError, PluginError, UnknownBackendError, BackendUnavailableError,
             BackendMismatchError, UnsupportedOperation):
    _cls.__module__ = "polygrad"
del _cls
