"""``polygrad.autograd.profiler`` (also ``polygrad.profiler``): time every op, torch style.

``profile`` installs three of the engine's extension points (``polygrad.graph.engine``)
while it is open and restores the previous ones on exit, whatever happens inside the block.
They are per thread: a profile records the ops, the ``record_function`` blocks and the
garbage-collector pauses of the thread that opened it, never another thread's.

- ``observer`` wraps every forward op (one event per primitive call);
- ``kernel_clock`` wraps the backend call inside it, so each op's time splits into the
  backend kernel and polygrad's own dispatch and graph work (the "Kernel %" column);
- ``node_observer`` wraps each backward step (rows named after the node, such as
  ``DivBackward0``, as torch names them).

Rows are named by the Array API name of the primitive (``divide``, ``multiply``) where torch
says ``aten::div``; ``record_function`` blocks are rows of their own, and so are Python's
garbage-collector pauses (``[python gc]``), which would otherwise land in whichever op happened
to allocate when a collection started. With the hooks off the
engine pays one flag check per op. This module owns events, their averages, the table
and the Chrome trace; it does not time anything the engine does not report.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import json
import os
import threading
import time
import traceback
import warnings

from .. import cuda
from ..graph.engine import get_extension, set_extension

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg",
           "ProfilerActivity"]

_now = time.perf_counter_ns
_HOOKS = ("observer", "kernel_clock", "node_observer")
GC_ROW = "[python gc]"        # Python's garbage collector pausing the block


class _Active(threading.local):
    """The profiles open in this thread, innermost last: ``record_function`` writes to each.
    Per thread, as the engine's hooks are, so a block in one thread never lands in a
    profile another thread opened."""

    profiles = ()


_active = _Active()
_POLYGRAD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FunctionEvent:
    """One timed call: a forward op, a backward step or a ``record_function`` block.

    Times are kept in ns; the torch-named properties give µs, as torch's do.
    """

    __slots__ = ("name", "kind", "start", "end", "tid", "kernel", "device", "shapes", "stack",
                 "children", "_timers")

    def __init__(self, name, kind, tid, shapes=(), stack=()):
        self.name, self.kind, self.tid = name, kind, tid
        self.start = self.end = 0
        self.kernel = None           # ns inside the backend call (forward ops only)
        self.device = 0.0            # µs of device time (use_cuda)
        self.shapes, self.stack = shapes, stack
        self.children = ()           # a list once the first child arrives (fewer GC objects)
        self._timers = None          # (start, stop) device events until the profile closes

    key = property(lambda self: self.name)
    count = property(lambda self: 1)
    input_shapes = property(lambda self: self.shapes)
    cpu_time_total = property(lambda self: (self.end - self.start) / 1e3)
    cpu_time = cpu_time_total
    self_cpu_time_total = property(
        lambda self: (self.end - self.start - sum(c.end - c.start for c in self.children)) / 1e3)
    kernel_time_total = property(lambda self: None if self.kernel is None else self.kernel / 1e3)
    self_cuda_time_total = property(lambda self: self.device)
    cuda_time_total = property(lambda self: self.device + sum(c.cuda_time_total
                                                              for c in self.children))
    cuda_time = cuda_time_total

    def __repr__(self):
        return (f"<FunctionEvent {self.name} cpu_time_total={self.cpu_time_total:.3f}us "
                f"self_cpu_time_total={self.self_cpu_time_total:.3f}us>")


class FunctionEventAvg:
    """The sum of the events that share a key (a name, and input shapes when grouped)."""

    def __init__(self, key, input_shapes=None, stack=None):
        self.key, self.input_shapes, self.stack = key, input_shapes, stack
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        self.cuda_time_total = self.self_cuda_time_total = 0.0
        self.kernel_time_total = None

    def add(self, ev):
        self.count += ev.count
        self.cpu_time_total += ev.cpu_time_total
        self.self_cpu_time_total += ev.self_cpu_time_total
        self.cuda_time_total += ev.cuda_time_total
        self.self_cuda_time_total += ev.self_cuda_time_total
        if ev.kernel_time_total is not None:
            self.kernel_time_total = (self.kernel_time_total or 0.0) + ev.kernel_time_total
        return self

    cpu_time = property(lambda self: self.cpu_time_total / max(self.count, 1))
    cuda_time = property(lambda self: self.cuda_time_total / max(self.count, 1))
    # the newer torch spelling of the device columns
    device_time = cuda_time
    device_time_total = property(lambda self: self.cuda_time_total)
    self_device_time_total = property(lambda self: self.self_cuda_time_total)

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}us "
                f"cpu_time={self.cpu_time:.3f}us count={self.count}>")


# -- the table ---------------------------------------------------------------------------------

_SORT_KEYS = ("cpu_time", "cuda_time", "cpu_time_total", "cuda_time_total",
              "self_cpu_time_total", "self_cuda_time_total", "count", "kernel_time_total",
              "device_time", "device_time_total", "self_device_time_total")


def _fmt_time(us):
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _pct(part, whole):
    return f"{100.0 * part / whole:.2f}%" if whole else "0.00%"


class EventList(list):
    """A list of events (or their averages) that prints as torch's profiler table."""

    def __init__(self, events=(), *, use_cuda=False, grouped_by_shape=False,
                 self_cpu_total=None, self_cuda_total=None):
        super().__init__(events)
        self._use_cuda, self._by_shape = use_cuda, grouped_by_shape
        self._totals = (self_cpu_total, self_cuda_total)

    @property
    def self_cpu_time_total(self):
        """Self CPU time of every event, in µs (each op counted once)."""
        total = self._totals[0]
        return sum(e.self_cpu_time_total for e in self) if total is None else total

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, header=None,
              top_level_events_only=False):
        """The table as text: torch's columns plus "Kernel %" (polygrad's own).

        ``Kernel %`` is the share of an op's self CPU time spent inside the backend's kernel
        call; the rest is polygrad's dispatch and graph recording. Rows with no kernel of their
        own (backward steps, ``record_function`` blocks) show "-".

        >>> import polygrad
        >>> x = polygrad.ones(3, requires_grad=True)
        >>> with polygrad.autograd.profiler.profile() as prf:
        ...     y = (x * 2).sum()
        >>> "multiply" in prf.key_averages().table(sort_by="self_cpu_time_total")
        True
        """
        if sort_by is not None and sort_by not in _SORT_KEYS:
            raise ValueError(f"table(sort_by={sort_by!r}): unknown key; use one of "
                             f"{', '.join(_SORT_KEYS)}")
        rows = list(self)
        if sort_by is not None:
            rows.sort(key=lambda e: getattr(e, sort_by) or 0.0, reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        cpu_total = self.self_cpu_time_total
        cuda_total = self._totals[1]
        if cuda_total is None:
            cuda_total = sum(e.self_cuda_time_total for e in self)
        cols = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
        if self._use_cuda:
            cols += ["Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"]
        cols += ["# of Calls", "Kernel %"]
        if self._by_shape:
            cols.append("Input Shapes")
        name_w = min(max([len("Name")] + [len(str(e.key)) for e in rows]) + 4,
                     max_name_column_width)
        widths = [name_w] + [max(12, len(c)) for c in cols]
        body = []
        for e in rows:
            cells = [_pct(e.self_cpu_time_total, cpu_total), _fmt_time(e.self_cpu_time_total),
                     _pct(e.cpu_time_total, cpu_total), _fmt_time(e.cpu_time_total),
                     _fmt_time(e.cpu_time)]
            if self._use_cuda:
                cells += [_fmt_time(e.self_cuda_time_total),
                          _pct(e.self_cuda_time_total, cuda_total),
                          _fmt_time(e.cuda_time_total), _fmt_time(e.cuda_time)]
            kernel = e.kernel_time_total
            cells += [str(e.count),
                      "-" if kernel is None else _pct(kernel, e.self_cpu_time_total)]
            if self._by_shape:
                cells.append(str(list(e.input_shapes or [])))
            name = str(e.key)
            if len(name) > name_w - 2:
                name = name[:name_w - 5] + "..."
            body.append([name] + cells)
        if self._by_shape:
            widths[-1] = max([len("Input Shapes")] + [len(r[-1]) for r in body])
        sep = "  ".join("-" * w for w in widths)

        def line(cells):
            parts = [f"{cells[0]:<{widths[0]}}"]
            parts += [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:])]
            return "  ".join(parts).rstrip()

        out = [header] if header else []
        out += [sep, line(["Name"] + cols), sep] + [line(r) for r in body] + [sep]
        out.append(f"Self CPU time total: {_fmt_time(cpu_total)}")
        if self._use_cuda:
            out.append(f"Self CUDA time total: {_fmt_time(cuda_total)}")
        kernel = sum(e.kernel_time_total or 0.0 for e in self)
        out.append(f"Backend kernel time total: {_fmt_time(kernel)} "
                   f"({_pct(kernel, cpu_total)} of self CPU; the rest is polygrad dispatch, "
                   f"graph work and Python)")
        return "\n".join(out) + "\n"

    def __str__(self):
        return self.table()


# -- recording ---------------------------------------------------------------------------------

class ProfilerActivity(enum.Enum):
    """What ``torch.profiler.profile(activities=[...])`` records; CUDA adds device time."""

    CPU = "cpu"
    CUDA = "cuda"


class profile:
    """Record every op run inside the block (forward and backward), torch style.

    >>> import polygrad
    >>> x = polygrad.randn(2, 3, requires_grad=True)
    >>> with polygrad.autograd.profiler.profile() as prf:
    ...     for _ in range(10):
    ...         z = (x / 2) * x
    >>> # a garbage-collector pause, when one strikes, is a row of its own: leave it out here
    >>> [(e.key, e.count) for e in prf.key_averages() if e.key != "[python gc]"]
    [('divide', 10), ('multiply', 10)]
    """

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False,
                 with_stack=False, activities=None):
        if use_device not in (None, "cuda", "cpu"):
            raise ValueError(f"profile(use_device={use_device!r}): use 'cuda', 'cpu' or None")
        # ``activities`` is torch.profiler.profile's spelling of use_cuda
        wants_cuda = activities is not None and ProfilerActivity.CUDA in activities
        self.enabled = enabled
        self.use_cuda = bool(use_cuda) or use_device == "cuda" or wants_cuda
        self.record_shapes, self.with_stack = record_shapes, with_stack
        self._roots = []            # top-level events, in start order
        self._stacks = {}           # thread id -> open events
        self._saved = None
        self._installed = None
        self._thread = None         # the thread that opened it: the one it records
        self._closed = False        # left: its hooks, if still chained, only pass through
        self._entered = False
        self._start = 0

    # -- context manager --------------------------------------------------------------------
    def __enter__(self):
        if self._entered:
            raise RuntimeError("this profile is already open; make a new profile() object")
        self._entered = True
        if not self.enabled:
            return self
        if self.use_cuda:
            if not cuda.is_available():
                warnings.warn("profile(use_cuda=True): no backend here has a CUDA device, so "
                              "the table has no device time; pass use_cuda="
                              "polygrad.cuda.is_available()", stacklevel=2)
        self._saved = {name: get_extension(name) for name in _HOOKS}
        self._start = _now()
        # each hook wraps the one it replaces, so an outer profile still sees every op
        self._installed = {
            "observer": self._forward_hook(self._saved["observer"]),
            "kernel_clock": self._kernel_hook(self._saved["kernel_clock"]),
            "node_observer": self._backward_hook(self._saved["node_observer"])}
        for name, hook in self._installed.items():
            hook._pg_profile, hook._pg_prev = self, self._saved[name]
            set_extension(name, hook)
        self._thread = threading.get_ident()
        gc.callbacks.append(self._gc_hook)
        _active.profiles = _active.profiles + (self,)
        return self

    def __exit__(self, *exc):
        if not self.enabled or self._saved is None:
            return False
        # Left in any order: where our hook is still on top, restore the nearest one below
        # whose profile is still open; where a later profile sits on top (left out of
        # order), our hook stays chained under it but only passes through, and that
        # profile skips it on its own exit. Once all are left, nothing is installed.
        self._closed = True
        for name, previous in self._saved.items():
            if get_extension(name) is self._installed[name]:
                set_extension(name, _live_hook(previous))
        self._saved = None
        if self._gc_hook in gc.callbacks:
            gc.callbacks.remove(self._gc_hook)
        # left from another thread, it stays in its own thread's tuple, closed (skipped)
        _active.profiles = tuple(p for p in _active.profiles if p is not self)
        if self.use_cuda:
            self._collect_device_times()
        return False

    # -- hooks ---------------------------------------------------------------------------------
    def _open(self, name, kind, shapes=()):
        tid = threading.get_ident()
        stack = self._stacks.get(tid)
        if stack is None:
            stack = self._stacks[tid] = []
        ev = FunctionEvent(name, kind, tid, shapes, _user_stack() if self.with_stack else ())
        if not stack:
            self._roots.append(ev)
        elif stack[-1].children:
            stack[-1].children.append(ev)
        else:
            stack[-1].children = [ev]
        stack.append(ev)
        ev.start = _now()
        return ev, stack

    def _forward_hook(self, prev):
        record_shapes = self.record_shapes

        def observe(run, prim, args, opts):
            if self._closed:
                return run(prim, args, opts) if prev is None else prev(run, prim, args, opts)
            shapes = _shapes(args) if record_shapes else ()
            ev, stack = self._open(prim.name, "cpu_op", shapes)
            try:
                if prev is None:
                    return run(prim, args, opts)
                return prev(run, prim, args, opts)
            finally:
                ev.end = _now()
                stack.pop()
        return observe

    def _kernel_hook(self, prev):
        use_cuda = self.use_cuda

        def clock(fn, arrays, opts, backend):
            if self._closed:
                return fn(*arrays, **opts) if prev is None else prev(fn, arrays, opts, backend)
            stack = self._stacks.get(threading.get_ident())
            ev = stack[-1] if stack else None
            timers = _device_timers(backend, arrays) if use_cuda else None
            if timers is not None:
                timers[0].record()
            t0 = _now()
            try:
                if prev is None:
                    return fn(*arrays, **opts)
                return prev(fn, arrays, opts, backend)
            finally:
                dt = _now() - t0
                if timers is not None:
                    timers[1].record()
                if ev is not None:
                    ev.kernel = (ev.kernel or 0) + dt
                    if timers is not None:
                        ev._timers = (*(ev._timers or ()), (backend, timers))
        return clock

    def _backward_hook(self, prev):
        def observe(run, node, g, ns):
            if self._closed:
                return run(node, g, ns) if prev is None else prev(run, node, g, ns)
            ev, stack = self._open(node.name(), "backward")
            try:
                if prev is None:
                    return run(node, g, ns)
                return prev(run, node, g, ns)
            finally:
                ev.end = _now()
                stack.pop()
        return observe

    def _gc_hook(self, phase, info):
        # a collection is a row of its own, so its pause is not charged to the op it lands in;
        # gc.callbacks is process-wide: only collections run by the profile's thread count
        if threading.get_ident() != self._thread:
            return
        if phase == "start":
            self._open(GC_ROW, "python_gc")
            return
        stack = self._stacks.get(threading.get_ident())
        if stack and stack[-1].name == GC_ROW:
            stack.pop().end = _now()

    def _collect_device_times(self):
        pending = [ev for ev in _walk(self._roots) if ev._timers]
        synced = set()
        for ev in pending:
            for backend, (start, stop) in ev._timers:
                if backend.synchronize is not None and id(backend) not in synced:
                    backend.synchronize()
                    synced.add(id(backend))
                ev.device += start.elapsed_time(stop) * 1e3     # ms -> µs
            ev._timers = None

    # -- results ---------------------------------------------------------------------------------
    def _check_done(self):
        if self._saved is not None:
            raise RuntimeError("the profile is still open: read its results after the "
                               "'with profile() as prf:' block")

    @property
    def function_events(self):
        """Every recorded event, in start order (children follow their parent)."""
        self._check_done()
        return EventList(_walk(self._roots), use_cuda=self.use_cuda)

    def events(self):
        return self.function_events

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        """One row per op kind (per kind and input shapes, or call site, when grouped).

        >>> import polygrad
        >>> x = polygrad.ones(2, 2)
        >>> with polygrad.profiler.profile(record_shapes=True) as prf:
        ...     y = x + x
        >>> [e.input_shapes for e in prf.key_averages(group_by_input_shape=True)
        ...  if e.key == "add"]
        [[[2, 2], [2, 2]]]
        """
        self._check_done()
        if group_by_input_shape and not self.record_shapes and self._roots:
            warnings.warn("key_averages(group_by_input_shape=True) on a profile without "
                          "shapes: open it with profile(record_shapes=True)", stacklevel=2)
        groups = {}
        for ev in _walk(self._roots):
            key = ev.name
            if group_by_input_shape:
                key = (key, repr(ev.shapes))
            if group_by_stack_n:
                key = (key, tuple(ev.stack[:group_by_stack_n]))
            avg = groups.get(key)
            if avg is None:
                avg = groups[key] = FunctionEventAvg(
                    ev.name, list(ev.shapes) if group_by_input_shape else None,
                    list(ev.stack[:group_by_stack_n]) if group_by_stack_n else None)
            avg.add(ev)
        return EventList(groups.values(), use_cuda=self.use_cuda,
                         grouped_by_shape=group_by_input_shape,
                         self_cpu_total=self.self_cpu_time_total)

    def total_average(self):
        """All events summed into one ``FunctionEventAvg`` keyed "Total"."""
        total = FunctionEventAvg("Total")
        for ev in self.function_events:
            total.add(ev)
        return total

    @property
    def self_cpu_time_total(self):
        """The self CPU time of every event, in µs: the time the block spent in ops."""
        self._check_done()
        return sum(ev.self_cpu_time_total for ev in _walk(self._roots))

    def table(self, sort_by=None, row_limit=100, **kwargs):
        """``key_averages().table(...)``."""
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit, **kwargs)

    def __str__(self):
        return self.table() if self._saved is None else "<profile (open)>"

    def export_chrome_trace(self, path):
        """Write a Chrome trace (JSON, complete "X" events in µs) for Perfetto or chrome://tracing.

        >>> import polygrad, tempfile, os
        >>> with polygrad.profiler.profile() as prf:
        ...     y = polygrad.ones(2) * 3
        >>> prf.export_chrome_trace(os.path.join(tempfile.mkdtemp(), "trace.json"))
        """
        self._check_done()
        pid = os.getpid()
        tids = {}
        trace = []
        for ev in _walk(self._roots):
            tid = tids.setdefault(ev.tid, len(tids))
            args = {}
            if ev.shapes:
                args["Input Shapes"] = [list(s) for s in ev.shapes]
            if ev.kernel is not None:
                args["kernel_us"] = round(ev.kernel / 1e3, 3)
            if ev.device:
                args["device_us"] = round(ev.device, 3)
            if ev.stack:
                args["Call stack"] = list(ev.stack)
            trace.append({"name": ev.name, "cat": ev.kind, "ph": "X", "pid": pid, "tid": tid,
                          "ts": round((ev.start - self._start) / 1e3, 3),
                          "dur": round((ev.end - ev.start) / 1e3, 3), "args": args})
        meta = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                 "args": {"name": "polygrad"}}]
        with open(path, "w") as f:
            json.dump({"traceEvents": meta + trace, "displayTimeUnit": "ms"}, f)


class record_function(contextlib.ContextDecorator):
    """Label a block (or, as a decorator, a function) as its own row in the profile.

    Outside a profile it does nothing.

    >>> import polygrad
    >>> from polygrad.autograd.profiler import profile, record_function
    >>> with profile() as prf:
    ...     with record_function("scale"):
    ...         y = polygrad.ones(3) * 2
    >>> [e.key for e in prf.key_averages() if e.key != "[python gc]"]   # a GC pause is a row too
    ['scale', 'multiply']
    """

    def __init__(self, name, args=None):
        if not isinstance(name, str):
            raise TypeError(f"record_function(name) takes a string label, got "
                            f"{type(name).__name__}")
        self.name, self.args = name, args
        # per thread, per entry: [(event, stack), ...]: re-entrant as a decorator, and one
        # decorated function may run in several threads at once
        self._open = {}

    def __enter__(self):
        entries = self._open.setdefault(threading.get_ident(), [])
        entries.append([p._open(self.name, "user_annotation") for p in _active.profiles
                        if not p._closed])
        return self

    def __exit__(self, *exc):
        end = _now()
        tid = threading.get_ident()
        entries = self._open[tid]
        opened = entries.pop()
        if not entries:
            del self._open[tid]
        for ev, stack in opened:
            ev.end = end
            if stack and stack[-1] is ev:
                stack.pop()
        return False


# -- helpers ----------------------------------------------------------------------------------

def _live_hook(hook):
    """``hook`` or, past the hooks of profiles already left, the first still open one."""
    while hook is not None:
        owner = getattr(hook, "_pg_profile", None)
        if owner is None or not owner._closed:
            return hook
        hook = hook._pg_prev
    return None


def _walk(events):
    out = []
    todo = list(reversed(events))
    while todo:
        ev = todo.pop()
        out.append(ev)
        todo.extend(reversed(ev.children))
    return out


def _shapes(args):
    return [list(a.shape) if hasattr(a, "shape") else [] for a in args]


def _user_stack(limit=8):
    """Call sites outside polygrad, innermost first (``with_stack=True``)."""
    frames = [f for f in traceback.extract_stack()[:-3]
              if not os.path.abspath(f.filename).startswith(_POLYGRAD_DIR)]
    return tuple(f"{f.filename}({f.lineno}): {f.name}" for f in reversed(frames[-limit:]))


def _device_timers(backend, arrays):
    make = backend.device_timer
    if make is None:
        return None
    for a in arrays:
        if hasattr(a, "shape"):
            return make(backend.device_str(a))
    return None
