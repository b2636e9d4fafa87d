"""Anomaly mode: ``detect_anomaly`` and ``set_detect_anomaly``, as torch.autograd has them.

While it is on (in this thread: the engine's ``anomaly`` extension point is per thread, as
torch's anomaly mode is), every graph node records where its forward op
was called (``node.metadata["traceback_"]``, via ``on_create``), and the engine hands
each node's freshly computed input gradients to ``check``, which raises a RuntimeError
naming the node and showing that forward traceback when one holds a NaN. It costs a
stack walk per op and a NaN scan per gradient: a debugging tool, off by default.
"""

from __future__ import annotations

import functools
import os
import threading
import traceback
import warnings

from ..graph.engine import get_extension, set_extension
from ..graph.tensor import Tensor

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Anomaly:
    """The object the engine calls while anomaly mode is on."""

    def __init__(self, check_nan, prev=None):
        self.check_nan = check_nan
        self.prev = prev            # what was installed before this one (restored on exit)
        self.closed = False         # its context was left, possibly out of order

    def on_create(self, node):
        stack = traceback.extract_stack()[:-1]
        # drop polygrad's own frames at the top: the user's line is what helps
        while stack and stack[-1].filename.startswith(_PACKAGE_DIR):
            stack.pop()
        if node.metadata is None:
            node.metadata = {}
        node.metadata["traceback_"] = traceback.format_list(stack)

    def check(self, node, grads):
        if not self.check_nan:
            return
        xp = node.backend.xp
        for i, g in enumerate(grads):
            arr = g._st.array if isinstance(g, Tensor) else g
            if not hasattr(arr, "dtype") or not hasattr(arr, "shape"):
                continue        # None, Python scalars, a multi-output Function's routing
            if bool(xp.any(xp.isnan(arr))):
                raise RuntimeError(_nan_message(node, i))


def _nan_message(node, i):
    msg = f"Function '{node.name()}' returned nan values in its {i}th output."
    stack = (node.metadata or {}).get("traceback_")
    if stack:
        msg += ("\n\nTraceback of forward call that caused the error (anomaly mode):\n"
                + "".join(stack).rstrip())
    return msg


def _set(mode, check_nan):
    current = get_extension("anomaly")
    new = _Anomaly(check_nan, current) if mode else None
    set_extension("anomaly", new)
    return new


def _live(state):
    """``state`` or, past any whose context was already left, the first still open."""
    while state is not None and state.closed:
        state = state.prev
    return state


def _leave(mine, previous):
    """Leave a context that installed ``mine`` over ``previous``, in any order: when
    ``mine`` is still installed, restore the nearest still-open state below it; when a
    later context sits on top (left out of order), only mark ``mine`` closed, so that the
    later one skips it on its own exit. Nothing is left installed once all are left."""
    if mine is not None:
        mine.closed = True
    if get_extension("anomaly") is mine:
        set_extension("anomaly", _live(previous))


def is_anomaly_enabled():
    """True while anomaly mode is on."""
    return get_extension("anomaly") is not None


def is_anomaly_check_nan_enabled():
    """True while anomaly mode is on and checks gradients for NaN."""
    anomaly = get_extension("anomaly")
    return anomaly is not None and anomaly.check_nan


class detect_anomaly:
    """Turn anomaly mode on inside a ``with`` block or a decorated function.

    >>> import polygrad
    >>> x = polygrad.zeros(1, requires_grad=True)
    >>> with polygrad.autograd.detect_anomaly():                 # doctest: +SKIP
    ...     (x / x).sum().backward()
    Traceback (most recent call last):
    RuntimeError: Function 'DivBackward0' returned nan values in its 1th output. ...
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self._prev = threading.local()   # per thread, a stack: re-entered by recursion

    def __enter__(self):
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)
        stack = self._prev.__dict__.setdefault("stack", [])
        previous = get_extension("anomaly")
        stack.append((_set(True, self.check_nan), previous))
        return self

    def __exit__(self, *exc):
        _leave(*self._prev.stack.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """Turn anomaly mode on or off: called as a function, or used as a context manager
    that restores the previous state.

    >>> import polygrad
    >>> with polygrad.autograd.set_detect_anomaly(True):
    ...     polygrad.autograd.anomaly_mode.is_anomaly_enabled()
    True
    """

    def __init__(self, mode, check_nan=True):
        self._prev_state = get_extension("anomaly")
        self._mine = _set(bool(mode), check_nan)     # takes effect now, as torch's does

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._mine is None:                        # turned off: restore what was on
            if get_extension("anomaly") is None:
                set_extension("anomaly", _live(self._prev_state))
        else:
            _leave(self._mine, self._prev_state)
        return False
