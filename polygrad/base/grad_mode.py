"""Grad modes: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each is a context manager and a decorator, and the mode is thread-local, as in
torch. The engine reads ``is_grad_enabled()`` on every op.
"""

import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "is_inference_mode_enabled"]


class _Mode(threading.local):
    enabled = True     # class attributes are each new thread's defaults
    inference = False


_mode = _Mode()


def is_grad_enabled():
    """True when ops record the graph in this thread.

    >>> import polygrad
    >>> with polygrad.no_grad():
    ...     polygrad.is_grad_enabled()
    False
    """
    return _mode.enabled


def is_inference_mode_enabled():
    return _mode.inference


class _GradModeContext:
    """Base of the grad-mode managers: a context manager that is also a decorator."""

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args):
                return fn(*args, **kwargs)
        return wrapper

    _args = ()

    def __enter__(self):
        self._prev = (_mode.enabled, _mode.inference)
        self._apply()
        return self

    def __exit__(self, *exc):
        _mode.enabled, _mode.inference = self._prev
        return False


class no_grad(_GradModeContext):
    """Context manager and decorator that turns graph recording off.

    >>> import polygrad
    >>> a = polygrad.ones(2, requires_grad=True)
    >>> with polygrad.no_grad():
    ...     (a * 2).requires_grad
    False
    """

    def _apply(self):
        _mode.enabled = False


class enable_grad(_GradModeContext):
    """Context manager and decorator that turns graph recording back on inside no_grad.

    >>> import polygrad
    >>> with polygrad.no_grad(), polygrad.enable_grad():
    ...     polygrad.is_grad_enabled()
    True
    """

    def _apply(self):
        _mode.enabled = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode on or off; works as a function call, a context manager or a decorator.

    >>> import polygrad
    >>> with polygrad.set_grad_enabled(False):
    ...     polygrad.is_grad_enabled()
    False
    """

    def __init__(self, mode):
        self._args = (bool(mode),)
        self._prev = (_mode.enabled, _mode.inference)
        _mode.enabled = bool(mode)     # like torch: takes effect as a plain call too

    def __enter__(self):
        return self

    def __call__(self, fn):
        _mode.enabled, _mode.inference = self._prev   # as a decorator it changes nothing now
        return super().__call__(fn)

    def _apply(self):
        _mode.enabled = self._args[0]


class inference_mode(_GradModeContext):
    """Like no_grad, and marks the block as inference-only.

    >>> import polygrad
    >>> with polygrad.inference_mode():
    ...     polygrad.is_grad_enabled()
    False
    """

    def __init__(self, mode=True):
        self._args = (bool(mode),)

    def _apply(self):
        if self._args[0]:
            _mode.enabled, _mode.inference = False, True
