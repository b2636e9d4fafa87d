"""``polygrad.compile``: trace a function once per guard key, then replay it as raw backend
calls, forward and backward, as one node of the caller's graph.

The first call with a new key runs ``fn`` eagerly under a ``Tracer`` (its result is the
eager result, so a trace is never wrong). From the record it derives the backward program,
by running each recorded node's VJP rule on polygrad's own namespace with the tracer still
recording (``_derive_backward``), prunes both programs to what the outputs and the
requested gradients need, and turns each into one Python function (``program.build``).
Later calls with the same key run those functions on the raw arrays: no Tensor, Node or
Storage per op. The outputs carry one ``CompiledBackward`` node whose parents are the
nodes of the inputs (and of captured tensors) that require grad, so ``backward()``,
``.grad`` accumulation, hooks, optimizers and ``no_grad`` work as for any op.

Guards: the key holds each argument's backend, shape, dtype, device and requires_grad, the
Python scalars among the arguments (0.0 and -0.0 apart) and grad mode; an entry also checks
the tensors it captured (closure cells, globals, default arguments and the parameters and
buffers of modules, read again on every call), the Python scalars in closure cells and
globals that the function and its helpers name (and in lists and tuples there), the
``training`` flag of the modules it reaches, the hyperparameters and state size of the
optimizers it names, and the ``.grad`` state it read.

``loss.backward()`` inside ``fn`` (on a scalar it computed) becomes part of the forward
program: its backward program is derived during the trace. What the call does to tensors
it does not return is kept as *effects*, replayed in order after the program: the
gradients' accumulation into the leaves' ``.grad``, ``.grad = None`` (``zero_grad``) and
in-place updates of an optimizer's parameters and state tensors (``add_``, ``sub_``,
``mul_``, ``div_``, ``copy_``, recorded as out-of-place values and written back with
``write_values``; ``p.add_(g, alpha=a)`` runs as the backend's ``axpy_`` kernel where it
has one, ``_fuse_updates``), so a whole training step is one program. An optimizer's
Python step counts are replayed as increments, and the numbers its update derives from
them (its ``_step_scalars`` hook) are inputs of the program, recomputed on every call.

A hit on the entry used last runs its *hit path* (``_fast_path``): one generated function
per entry that checks the key's guards on the arguments and the entry's own, runs the
program and then its effects and outputs, unrolled, with no key tuple, list or loop built
per call; a failed guard returns ``_MISS`` before anything runs, and the call takes the
full path (the key, the cache, ``_Entry.check``, a retrace).

Under the profiler a replay runs op by op through the engine's ``observer`` and
``kernel_clock``: one row per compiled call, its kernels as child rows.

Anything a replay could not repeat (see ``tracer``) makes that key run eagerly, with one
``CompileWarning``, or raises ``UntraceableError`` with ``fullgraph=True``.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import threading
import time
import types
import warnings
import weakref
from collections import OrderedDict

from .. import ops as pg
from ..base import grad_mode
from ..base.device import device as Device
from ..base.dtypes import DType
from ..graph import engine
from ..graph.engine import _grad_lock
from ..graph.inplace import write_values
from ..graph.node import FREED_MSG, AccumulateGrad, Node, Slots, release_holds
from ..graph.tensor import Tensor, wrap
from . import tracer as _tracer
from .program import Ref, build, needed
from .tracer import Tracer, UntraceableError

__all__ = ["compile", "Compiled", "CompileStats", "CompileWarning", "UntraceableError"]

_mode = grad_mode._mode
_ext = engine._ext                      # per-thread state objects, read on every call
_forward_ad = engine.forward_ad_state
_trace_state = _tracer._state
_SCALARS = (type(None), bool, int, float, complex, str)


# arguments guarded by value besides scalars: dtypes, devices, classes and other immutables
_VALUES = (DType, Device, type, bytes, range, frozenset, type(Ellipsis))


class CompileWarning(UserWarning):
    """A compiled function runs eagerly for some calls (the message says why)."""


class CompileStats:
    """Counters of one compiled function.

    ``calls``; ``hits`` (replays); ``misses`` (calls that traced: no entry for their key,
    or an entry whose guards failed); ``retraces`` (misses after the first trace, i.e. a
    guard changed); ``fallbacks`` (calls run eagerly); ``evictions`` (entries dropped from
    the bounded cache); ``trace_time`` (seconds spent tracing, in total) and
    ``last_trace_time``; ``entries`` (in the cache now); ``ops`` and ``backward_ops`` of the
    newest entry; ``reasons`` (why calls fell back, each once).
    """

    _FIELDS = ("calls", "hits", "misses", "retraces", "fallbacks", "evictions",
               "trace_time", "last_trace_time", "entries", "ops", "backward_ops", "reasons")

    def __init__(self):
        self.calls = self.hits = self.misses = self.retraces = 0
        self.fallbacks = self.evictions = self.entries = 0
        self.ops = self.backward_ops = 0
        self.trace_time = self.last_trace_time = 0.0
        self.reasons = []

    def as_dict(self):
        return {name: (list(v) if isinstance(v := getattr(self, name), list) else v)
                for name in self._FIELDS}

    def __repr__(self):
        parts = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if k != "reasons")
        return f"CompileStats({parts})"


_WRITABLE = "writable"       # the key in _discover's result for the optimizers' parameters
_OPTIMIZERS = "optimizers"   # ... for the optimizers found, with their state's size
_STATE_SCALARS = "state scalars"   # ... for the Python numbers in their state


class _Unkeyable(Exception):
    pass


class _Fallback(Exception):
    """The trace cannot be replayed: ``quiet`` runs it eagerly without a warning (a step that
    created an optimizer's state: the next call retraces); ``guards``, when set, replace the
    eager entry's guards."""

    def __init__(self, reason, quiet=False, guards=None):
        super().__init__(reason)
        self.quiet, self.guards = quiet, guards


# -- the compiled callable -------------------------------------------------------------------

def compile(fn=None, *, fullgraph=False, cache_size=8):   # noqa: A001 - torch's name
    """Compile ``fn`` (a function or an ``nn.Module``): trace it on its first call with
    each new guard key and replay the recorded raw backend calls on later ones.

    ``fullgraph=True`` raises ``UntraceableError`` where the default runs eagerly with one
    ``CompileWarning``. ``cache_size``: how many guard keys are kept (least recently used
    dropped first). Usable as a decorator, with or without arguments.

    >>> import polygrad
    >>> @polygrad.compile
    ... def f(x, y):
    ...     return (x * y).sin().sum()
    >>> x = polygrad.ones(3, requires_grad=True)
    >>> f(x, polygrad.ones(3)).backward(); f(x, polygrad.ones(3)).backward()
    >>> x.grad
    tensor([1.0806, 1.0806, 1.0806])
    >>> f.stats.hits, f.stats.misses
    (1, 1)
    """
    if fn is None:
        return functools.partial(compile, fullgraph=fullgraph, cache_size=cache_size)
    return Compiled(fn, fullgraph=fullgraph, cache_size=cache_size)


class Compiled:
    """A compiled function: call it as ``fn``; ``stats`` counts what happened;
    ``reset()`` drops every entry."""

    def __init__(self, fn, *, fullgraph=False, cache_size=8):
        if not callable(fn):
            raise TypeError(f"polygrad.compile() takes a function or an nn.Module, got "
                            f"{type(fn).__name__}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"polygrad.compile(cache_size=...) must be a positive int, got "
                             f"{cache_size!r}")
        self.fn = fn
        self.fullgraph = bool(fullgraph)
        self.cache_size = cache_size
        self.stats = CompileStats()
        self._cache = OrderedDict()
        self._warned = set()
        self._lock = threading.Lock()
        self._hot = None        # the fast path of the entry used last (_fast_path)
        self._name = getattr(fn, "__qualname__", None) or type(fn).__name__
        functools.update_wrapper(self, fn, updated=())

    def __repr__(self):
        return f"<polygrad.compile of {self._name}>"

    def __get__(self, obj, objtype=None):
        """As a decorator on a method: bind ``self`` as the first argument."""
        if obj is None:
            return self
        return functools.partial(self, obj)

    def reset(self):
        """Drop every cached entry (the stats are kept)."""
        with self._lock:
            self._cache.clear()
            self._hot = None
            self.stats.entries = 0

    # -- the call --------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        stats = self.stats
        stats.calls += 1
        ext = _ext
        hot = self._hot
        # (a trace in progress in this thread has its observers installed: ext.active)
        if hot is not None and not kwargs and not ext.active and not _forward_ad.level:
            # the entry used last, through its generated check-and-replay (``_fast_path``):
            # the same guards as the key and ``_Entry.check``, or _MISS and the full path
            out = hot(args)
            if out is not _MISS:
                stats.hits += 1
                return out
        if _trace_state.tracer is not None or _forward_ad.level or (
                ext.active and ext.anomaly is not None):
            # inside another trace (its tracer records our ops), forward-mode AD, anomaly
            # mode: eager, as documented
            stats.fallbacks += 1
            return self.fn(*args, **kwargs)
        tensors = []
        parts = [_mode.enabled]
        try:
            for a in args:
                if isinstance(a, Tensor):         # _key's first case, inline: the hot path
                    arr = a._st.array
                    parts.append((a._backend, arr.shape, arr.dtype,
                                  getattr(arr, "device", None), a._node is not None))
                    tensors.append(a)
                else:
                    _key(a, parts, tensors)
            if kwargs:
                for k in sorted(kwargs):
                    parts.append(k)
                    _key(kwargs[k], parts, tensors)
        except _Unkeyable as exc:
            return self._eager(f"an argument of type {exc.args[0]} cannot be guarded (pass "
                               f"tensors, Python scalars, strings, dtypes, devices, modules "
                               f"or tuples/lists/dicts of them)", args, kwargs)
        if len(tensors) > 1:
            ids = [id(t._st.array) for t in tensors]
            if len(set(ids)) < len(ids):
                parts.append(tuple(ids.index(i) for i in ids))     # aliasing pattern
        key = tuple(parts)
        entry = self._cache.get(key)
        self._hot = None
        if entry is not None:
            if entry.reason is not None:
                if entry.guards_hold(args):
                    stats.fallbacks += 1
                    return self.fn(*args, **kwargs)
                return self._trace(key, args, kwargs, tensors)
            captured = entry.check(args, tensors)
            if captured is not None:
                try:
                    self._cache.move_to_end(key)
                except KeyError:      # evicted by another thread meanwhile: still valid
                    pass
                stats.hits += 1
                if entry.fast is None and not entry.fast_tried and not kwargs:
                    # written at the first hit (a function called once never pays for it),
                    # from this call's arguments: under the key, as the trace call's
                    entry.fast_tried = True
                    entry.fast = _fast_path(entry, args, key[0])
                self._hot = entry.fast
                if ext.active and ext.observer is not None:     # the profiler: one row,
                    return ext.observer(                          # its kernels as children
                        lambda p, a, o: entry.replay(args, tensors, captured, True),
                        entry.region, tuple(tensors), {})
                return entry.replay(args, tensors, captured)
        return self._trace(key, args, kwargs, tensors)

    def _eager(self, reason, args, kwargs):
        self.stats.fallbacks += 1
        self._fallback(reason)
        return self.fn(*args, **kwargs)

    def _fallback(self, reason):
        if self.fullgraph:
            raise UntraceableError(f"polygrad.compile(fullgraph=True): {reason}")
        if reason not in self._warned:
            self._warned.add(reason)
            self.stats.reasons.append(reason)
            warnings.warn(f"polygrad.compile: {self._name} runs eagerly for these arguments: "
                          f"{reason}.", CompileWarning, stacklevel=4)

    def _trace(self, key, args, kwargs, tensors):
        stats = self.stats
        stats.misses += 1
        if stats.misses > 1:
            stats.retraces += 1
        t0 = time.perf_counter()
        tr = Tracer(self.fullgraph)
        tr.on_backward = _backward_inside
        sources, guards = _discover(self.fn, args)
        # each argument's and captured tensor's node and .grad state before the call
        for t in [*tensors, *(v[1] for k, v in sources.items() if type(k) is int)]:
            tr.start[id(t)] = (t._node, t._grad is None)
        try:
            for tid, t in sources.items():
                if type(tid) is int:
                    tr.watch(t[1])      # their value reads report too
            hooked = _hook_step_scalars(tr, sources[_OPTIMIZERS])
            try:
                with tr:
                    slots = [tr.input(t) for t in tensors]
                    result = self.fn(*args, **kwargs)
            finally:
                for opt in hooked:
                    del opt._step_scalars
        finally:
            tr.end()
        try:
            bumps = _state_changed(sources[_OPTIMIZERS], sources[_STATE_SCALARS], guards)
            entry, out = _Entry.make(self, tr, args, tensors, slots, sources, guards, result)
            entry.bumps = bumps
        except _Fallback as exc:
            entry = _Entry.eager(str(exc), guards if exc.guards is None else exc.guards)
            entry.quiet, out = exc.quiet, result
        except UntraceableError:
            raise
        dt = time.perf_counter() - t0
        stats.trace_time += dt
        stats.last_trace_time = dt
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
                stats.evictions += 1
            stats.entries = len(self._cache)
            self._hot = None
        if entry.reason is not None:
            stats.fallbacks += 1
            if not entry.quiet:
                self._fallback(entry.reason)
        else:
            stats.ops, stats.backward_ops = entry.n_ops, entry.n_bops
        return out


def _key(a, parts, tensors):
    """Append argument ``a``'s guard to ``parts`` and its tensors to ``tensors``."""
    if isinstance(a, Tensor):
        arr = a._st.array
        parts.append((a._backend, arr.shape, arr.dtype, getattr(arr, "device", None),
                      a._node is not None))
        tensors.append(a)
        return
    t = type(a)
    if t in _SCALARS:
        parts.append(_scalar_key(t, a))
    elif t is tuple or t is list:
        parts.append((t, len(a)))
        for x in a:
            _key(x, parts, tensors)
    elif t is dict:
        parts.append((t, tuple(a)))
        for x in a.values():
            _key(x, parts, tensors)
    elif _is_module(a):
        parts.append(a)                  # by identity: its parameters are captured
    elif isinstance(a, _VALUES):
        parts.append((t, a))
    else:
        # an arbitrary object: what fn reads from it could change unseen
        raise _Unkeyable(t.__name__)


def _scalar_key(t, a):
    """A scalar argument's guard: its type and value, where equal values that are different
    constants of the program (0.0 and -0.0, complex numbers' signed zeros) differ, and
    every NaN is one."""
    if a != a:
        return (t, "nan")
    if (t is float and a == 0) or t is complex:
        return (t, repr(a))
    return (t, a)


def _is_module(obj):
    return hasattr(obj, "_parameters") and hasattr(obj, "named_modules")


# -- what a function can reach: captured tensors and guarded Python values ------------------

def _discover(fn, args):
    """``({id(tensor): (resolver, tensor)}, [(resolver, value)])``: the tensors ``fn``
    reaches without arguments, each with a ``resolver(args)`` that finds it again on a
    later call, and the Python values to guard (closure and global scalars, modules'
    ``training`` flags, optimizers' hyperparameters). Functions ``fn`` names (helpers) are
    searched the same way, two levels deep. ``found[_WRITABLE]``: the ids of the
    parameters and state tensors of the optimizers found, the only tensors whose in-place
    writes replay; ``found[_OPTIMIZERS]``: ``(optimizer, state size)``;
    ``found[_STATE_SCALARS]``: ``(optimizer, parameter, key, value)`` for the Python
    numbers in their state (``_state_changed`` decides what to do with them)."""
    found, guards, seen, writable = {}, [], set(), set()
    optimizers, state_scalars = [], []

    def add(value, res, depth=0, elem=False):
        # depth: how deep in helper functions; elem: an element of a list or tuple there
        if isinstance(value, Tensor):
            found.setdefault(id(value), (res, value))
        elif _is_module(value):
            if id(value) in seen:
                return
            seen.add(id(value))
            for _, sub in value.named_modules():
                guards.append((lambda a, m=sub: m.training, sub.training))
                for table in (sub._parameters, sub._buffers):
                    for name, p in table.items():
                        if isinstance(p, Tensor):
                            found.setdefault(id(p), (lambda a, d=table, n=name: d.get(n), p))
        elif type(value) in (list, tuple) and not elem and len(value) <= 256:
            for i, x in enumerate(value):
                add(x, lambda a, r=res, i=i: r(a)[i], depth, True)
        elif type(value) in _SCALARS:
            # in fn's closure and globals, in its helpers' and in lists there: the program
            # bakes them in
            guards.append((res, value))
        elif hasattr(value, "param_groups") and hasattr(value, "state") and depth == 0 \
                and not elem:
            # an optimizer: its parameters and state tensors may be written (step), its
            # hyperparameters and the size of its state are guarded (a new momentum buffer
            # retraces); the Python numbers in its state (Adam's step count) are guarded
            # apart: a step that changes them makes the entry eager (_state_changed)
            optimizers.append((value, _state_size(value)))
            guards.append((lambda a, o=value: _state_size(o), _state_size(value)))
            for p, st in list(value.state.items()):
                if not isinstance(st, dict):
                    continue
                for k, v in st.items():
                    if isinstance(v, Tensor):
                        writable.add(id(v))
                        found.setdefault(id(v), (
                            lambda a, o=value, p=p, k=k: o.state[p][k], v))
                    elif type(v) in _SCALARS:
                        state_scalars.append((value, p, k, v))
            for gi, group in enumerate(value.param_groups):
                for k, v in group.items():
                    if type(v) in _SCALARS or (type(v) is tuple and all(
                            type(x) in _SCALARS for x in v)):       # Adam's betas
                        guards.append((lambda a, g=group, k=k: g.get(k), v))
                for pi, p in enumerate(group.get("params", ())):
                    if isinstance(p, Tensor):
                        writable.add(id(p))
                        found.setdefault(id(p), (
                            lambda a, o=value, gi=gi, pi=pi: o.param_groups[gi]["params"][pi], p))
        elif isinstance(value, types.FunctionType) and depth < 2 and not elem:
            search(value, depth + 1)

    def search(func, depth):
        if id(func) in seen:
            return
        seen.add(id(func))
        code = func.__code__
        for cell in func.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:          # an empty cell (a name assigned later)
                continue
            add(value, lambda a, c=cell: c.cell_contents, depth)
        glb = func.__globals__
        for name in code.co_names:
            if name in glb:
                add(glb[name], lambda a, g=glb, n=name: g.get(n), depth)
        for i, value in enumerate(func.__defaults__ or ()):
            add(value, lambda a, f=func, i=i: f.__defaults__[i], depth)

    for i, a in enumerate(args):
        if _is_module(a):
            add(a, lambda a, i=i: a[i])
    if _is_module(fn):
        add(fn, lambda a: fn)
        fn = type(fn).forward
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, (type, types.ModuleType)):
        add(owner, lambda a: owner)
    func = getattr(fn, "__func__", fn)
    while isinstance(func, functools.partial):
        for i, x in enumerate(func.args):
            add(x, lambda a, f=func, i=i: f.args[i])
        func = func.func
    if isinstance(func, types.FunctionType):
        search(func, 0)
    found[_WRITABLE] = writable
    found[_OPTIMIZERS] = optimizers
    found[_STATE_SCALARS] = state_scalars
    return found, guards


def _state_size(opt):
    """How many entries an optimizer's state holds, per parameter (a new buffer changes it)."""
    return tuple(len(s) if isinstance(s, dict) else -1 for s in opt.state.values())


# -- an entry: the programs of one guard key -------------------------------------------------

class _Region:
    """What the profiler's observer sees for a replay: one row per compiled region."""

    def __init__(self, name):
        self.name = name


def _hook_step_scalars(tr, optimizers):
    """During a trace, the numbers an optimizer's ``_step_scalars`` hook returns are noted
    as the program's inputs, each with the call that recomputes it on a replay."""
    hooked = []
    for opt, _ in optimizers:
        hook = getattr(type(opt), "_step_scalars", None)
        if hook is None:
            continue

        def noting(p, group, state, opt=opt, hook=hook):
            values = hook(opt, p, group, state)
            maker = _ScalarMaker(hook, opt, p, group)
            for i, v in enumerate(values):
                if type(v) is float:
                    tr.scalars[id(v)] = (v, maker, i)
            return values
        opt._step_scalars = noting          # an instance attribute: deleted after the trace
        hooked.append(opt)
    return hooked


class _ScalarMaker:
    """``maker()``: an optimizer's step-dependent numbers for one parameter, as of now."""

    __slots__ = ("hook", "opt", "p", "group")

    def __init__(self, hook, opt, p, group):
        self.hook, self.opt, self.p, self.group = hook, opt, p, group

    def __call__(self):
        return self.hook(self.opt, self.p, self.group, self.opt.state[self.p])


def _state_changed(optimizers, scalars, guards):
    """What the traced call changed in the optimizers' state: ``[(state dict, key,
    increment)]`` for the integer step counts of optimizers that hand their step-dependent
    numbers to the program through ``_step_scalars`` (the replay repeats the increment,
    first, as the step does); the state's numbers that did not change are guarded.
    Raises ``_Fallback`` when the step created the optimizer's state (quiet: the next call
    retraces) or changed a Python number in it that the program would bake in."""
    for opt, size in optimizers:
        if _state_size(opt) != size:
            raise _Fallback("this step created the optimizer's state", quiet=True)
    bumps = []
    for opt, p, k, value in scalars:
        now = opt.state[p].get(k)
        if now == value and type(now) is type(value):
            guards.append((lambda a, o=opt, p=p, k=k: o.state[p].get(k), value))
        elif type(now) is int and type(value) is int and \
                getattr(type(opt), "_step_scalars", None) is not None:
            bumps.append((opt, p, k, now - value))
        else:
            raise _Fallback(
                f"{type(opt).__name__} keeps a Python number in its state that a step "
                f"changes ({k!r}) and does not hand what it computes from it to the program "
                f"(Optimizer._step_scalars): each step would need a new program")
    return bumps


class _Entry:
    reason = None
    quiet = False
    bumps = ()          # (optimizer, parameter, state key, increment): step counts
    makers = ()         # _ScalarMaker: the program's Python-number inputs, per call
    fast = None         # fast(args) -> result or _MISS: the generated hit path (_fast_path)
    fast_tried = False  # whether ``fast`` was written (None: the call does not fit)

    @classmethod
    def eager(cls, reason, guards=()):
        """An entry that runs eagerly while its Python guards hold (``net.eval()`` may
        make a function traceable that was not in training mode)."""
        e = cls.__new__(cls)
        e.reason, e.guards = reason, guards
        return e

    def guards_hold(self, args):
        for res, value in self.guards:
            try:
                now = res(args)
            except (LookupError, AttributeError):
                return False
            if now != value or type(now) is not type(value):
                return False
        return True

    @classmethod
    def make(cls, owner, tr, args, tensors, slots, sources, guards, result):
        """Build the entry from a finished trace, and the trace call's own result."""
        if tr.reason is not None:
            raise _Fallback(tr.reason)
        e = cls.__new__(cls)
        e.region = _Region(f"compiled:{owner._name}")
        e.guards = guards
        # -- the inputs: arguments' slots, then captured tensors; dead externals are constants
        leaves, treedef = _flatten(result)
        out_ids = {id(x) for x in leaves if isinstance(x, Tensor)}
        for ref in tr.made:
            t = ref()
            if t is not None and id(t) not in out_ids:
                raise _Fallback("a tensor computed inside outlives the call without being "
                                "returned (stored in a list, a cache, an optimizer's state, a "
                                "module attribute): return it instead")
        consts, captured = {}, []
        for slot, (ref, _) in tr.externals.items():
            t = ref()
            if t is None or (id(t) in out_ids and id(t) not in sources):
                consts[slot] = tr.values[slot]
            elif id(t) in sources:
                res, _ = sources[id(t)]
                captured.append((slot, res, _meta(t), t))
            else:
                raise _Fallback("a tensor reached through an attribute or a container (e.g. "
                                "x.grad); pass it in as an argument")
        arg_slots = []
        e.in_index = []
        for k, s in enumerate(slots):
            if s not in arg_slots:
                arg_slots.append(s)
                e.in_index.append(k)
        e.captured = [(res, meta) for _, res, meta, _ in captured]
        in_slots = arg_slots + [c[0] for c in captured]
        in_tensors = [tensors[k] for k in e.in_index] + [c[3] for c in captured]
        # -- which nodes may receive gradients: those of inputs that require grad
        parents, parent_nodes = [], []
        for j, t in enumerate(in_tensors):
            if t._node is not None and t._node not in parent_nodes:
                parents.append(j)
                parent_nodes.append(t._node)
        tr.check_graph({id(n) for n in parent_nodes})
        if tr.reason is not None:
            raise _Fallback(tr.reason)
        for t in in_tensors:
            if t._node is not tr.start[id(t)][0]:
                raise _Fallback("requires_grad_() or detach_() on an argument or captured "
                                "tensor inside the function")
        # -- effects, in order: loss.backward() inside (its gradients join the forward
        # program and are accumulated into the leaves' .grad), .grad = None (zero_grad),
        # in-place writes (an optimizer step) to arguments and captured tensors
        effect_slots, e.effects = [], []
        # .grad reads saw None or a gradient: the same state is guarded at every call
        arg_index = {id(t): k for k, t in enumerate(tensors)}
        e.grad_start = []
        for tid in tr.grad_reads:
            if tid in arg_index:
                e.grad_start.append((arg_index[tid], None, tr.start[tid][1]))
            elif tid in sources:
                e.grad_start.append((None, sources[tid][0], tr.start[tid][1]))
            # else a tensor made inside: its reads are the program's own
        index = {id(t): j for j, t in enumerate(in_tensors)}
        first = {}              # input -> the kind of its first .grad event
        for effect in tr.effects:
            kind = effect[0]
            if kind == "accum":
                seeds, grads, was_none = tr.backwards[effect[1]]
                leaf_nodes = {id(n) for n in parent_nodes if type(n) is AccumulateGrad}
                grads_m = _grad_slots(tr, grads, parent_nodes)
                if any(id(n) not in leaf_nodes for n in grads) or any(
                        parent_nodes[k].hooks for k, s in enumerate(grads_m) if s is not None):
                    raise _Fallback("backward() inside reaches beyond the function's leaf "
                                    "inputs (a non-leaf input, or a hook on a leaf)")
                for slot in seeds:
                    tr.consts[slot] = tr.values[slot]
                for k, s in enumerate(grads_m):
                    if s is not None:
                        j = parents[k]
                        first.setdefault(j, "accum")
                        e.effects.append(("accum", j, len(effect_slots)))
                        effect_slots.append(s)
            else:
                j = index.get(id(effect[1]))
                if j is None:
                    raise _Fallback("an in-place write or a .grad assignment to a tensor made "
                                    "inside the function (or reached through an attribute)")
                if kind == "grad_none":
                    first.setdefault(j, "grad_none")
                    e.effects.append(("grad_none", j, None))
                elif id(effect[1]) not in sources[_WRITABLE]:
                    raise _Fallback("an in-place write to a tensor that is no parameter of an "
                                    "optimizer the function names; write it out of place "
                                    "(y = y + x) or pass the optimizer in a closure or global")
                else:
                    _check_no_stale_view(tr, effect[3], effect[4])
                    e.effects.append(("write", j, len(effect_slots)))
                    effect_slots.append(effect[2])
        # an accumulation that a later .grad = None undoes (zero_grad at the end of a step)
        # is not done: what read the gradient read it inside the program
        # (every leaf that receives a gradient stays guarded: a hook added later retraces)
        e.accum_leaves = sorted({j for kind, j, _ in e.effects if kind == "accum"})
        cleared = set()
        kept = []
        for effect in reversed(e.effects):
            kind, j = effect[0], effect[1]
            if kind == "grad_none":
                cleared.add(j)
            elif kind == "accum" and j in cleared:
                continue
            kept.append(effect)
        e.effects = kept[::-1]
        used = sorted({k for _, _, k in e.effects if k is not None})
        renumber = {k: n for n, k in enumerate(used)}
        effect_slots = [effect_slots[k] for k in used]
        e.effects = [(kind, j, None if k is None else renumber[k]) for kind, j, k in e.effects]
        # -- the outputs
        specs, out_slots, diff, out_tensors = [], [], [], {}
        arg_ids = {id(t): k for k, t in enumerate(tensors)}
        for x in leaves:
            if not isinstance(x, Tensor):
                specs.append(("py", x))
            elif id(x) in arg_ids:
                specs.append(("arg", arg_ids[id(x)]))
            elif id(x) in sources:
                specs.append(("src", sources[id(x)][0]))
            else:
                s = tr.slot_of.get(id(x._st.array))
                if s is None or s in consts:
                    specs.append(("const", x._st.array, x._backend))
                    continue
                if id(x) in out_tensors:
                    specs.append(("out", out_tensors[id(x)][0]))
                    continue
                if x._view is not None:
                    # a replayed output is a new tensor: writes through it, or into its base,
                    # would not reach the other as they do through eager's view
                    raise _Fallback("an output is a view of an argument or a captured "
                                    "tensor; return a copy (x[0].clone()) or compute it outside")
                if x._node is not None and not _mode.enabled:
                    # the replay attaches a node only under grad mode, as the call found it
                    raise _Fallback("enable_grad() inside a function called under no_grad(): "
                                    "an output requires grad that the replay would not track")
                pos = len(out_slots)
                # after a backward() inside, outputs carry no graph (eager's is freed)
                node = x._node if _mode.enabled and not tr.backwards else None
                out_tensors[id(x)] = (pos, x)
                out_slots.append(s)
                specs.append(("out", pos))
                if node is not None:
                    if id(node) not in tr._nodes:
                        raise _Fallback("an output's gradient node was not made by a recorded "
                                        "op (a custom autograd.Function, or a tensor made "
                                        "inside that requires grad)")
                    diff.append((pos, node, x))
        e.specs, e.treedef = specs, treedef
        e.single = treedef is None and specs == [("out", 0)]     # one tensor out: no tree
        e.out_backends = [None] * len(out_slots)
        for pos, x in out_tensors.values():
            e.out_backends[pos] = x._backend
        # -- backward: derived on the recording namespace, pruned to the parents' gradients
        e.n_bops = 0
        e.bwd = None
        saved_slots = []
        if diff and parent_nodes:
            seed_slots, grads = _derive_backward(
                tr, [(node, x._st.array, x._backend) for _, node, x in diff])
            grad_slots = _grad_slots(tr, grads, parent_nodes)
            if tr.reason is not None:
                raise _Fallback(tr.reason)
            all_consts = {**consts, **tr.consts}
            wanted = [s for s in grad_slots if s is not None]
            keep, live = needed(tr.bops, wanted)
            defined = {op.out for op in keep}
            saved_slots = sorted(i for i in live if i not in defined and i not in all_consts
                                 and i not in seed_slots)
            prog = build(tr.bops, saved_slots + seed_slots, wanted, all_consts, "backward")
            e.bwd, e.bwd_source, e.n_bops = _lower(prog, in_tensors), prog.source, len(prog.ops)
            e.bwd_prog = prog
            e.grad_pos = [None if s is None else wanted.index(s) for s in grad_slots]
            # a gradient that is a constant or an input of the program is handed out as a
            # copy: the engine may keep it as a .grad, which its owner may write in place
            shared = set(prog.consts) | set(prog.inputs)
            e.grad_copy = [s is not None and s in shared for s in grad_slots]
            e.parents = parents
            e.diff = [(pos, _zeros_maker(x)) for pos, _, x in diff]
            e.seed_slots, e.grad_slots = seed_slots, grad_slots
        _fuse_updates(e, tr, in_slots, in_tensors, effect_slots,
                      set(out_slots) | set(saved_slots))
        fwd_consts = {**consts, **tr.consts} if tr.effects else consts
        # an optimizer's step-dependent numbers: inputs after the arrays, recomputed per call
        scalar_slots = sorted(tr.scalar_slots)
        makers = []
        for s in scalar_slots:
            maker = tr.scalar_slots[s][0]
            if maker not in makers:
                makers.append(maker)
        e.makers = makers
        e.scalar_specs = [(makers.index(tr.scalar_slots[s][0]), tr.scalar_slots[s][1])
                          for s in scalar_slots]
        prog = build(tr.ops, in_slots + scalar_slots, out_slots + saved_slots + effect_slots,
                     fwd_consts, "forward")
        e.fwd, e.fwd_source, e.n_ops = _lower(prog, in_tensors), prog.source, len(prog.ops)
        e.fwd_prog = prog
        e.backend = in_tensors[0]._backend if in_tensors else e.out_backends[0]
        e.n_out = len(out_slots)
        e.n_saved = len(saved_slots)
        e.n_front = len(out_slots) + len(saved_slots)
        # saved values that belong to a tensor the user holds are pinned (copy-on-write)
        owners = {s: ("in", j) for j, s in enumerate(in_slots)}
        owners.update({s: ("out", p) for p, s in enumerate(out_slots)})
        e.pins = [(k, owners[s]) for k, s in enumerate(saved_slots) if s in owners]
        # for create_graph (replayed op by op through the engine) and for tests
        e.ops, e.bops, e.in_slots, e.consts = tr.ops, tr.bops, in_slots, {**consts, **tr.consts}
        e.slot_live = tr.slot_live
        e.in_backends = [t._backend for t in in_tensors]
        e.out_slots = out_slots
        # -- the trace call's result: its own arrays, with the compiled backward node
        # a value written to a tensor that is also an input, a constant or another value
        # of the program is copied first
        others = set(in_slots) | set(prog.consts) | set(out_slots) | set(saved_slots)
        e.effects = [(kind, j, k, e.alphas[i] if kind == "axpy" else k is not None and (
            effect_slots[k] in others or effect_slots.count(effect_slots[k]) > 1))
            for i, (kind, j, k) in enumerate(e.effects)]
        outs = [tr.values[s] for s in out_slots]
        saved = [tr.values[s] for s in saved_slots]
        captured_now = [c[3] for c in captured]
        # the trace call's own effects already happened (eagerly)
        return e, e._finish(args, tensors, captured_now, outs, saved, None)

    # -- replay ------------------------------------------------------------------------------
    def check(self, args, tensors):
        """The captured tensors for this call, or None when a guard fails."""
        if not self.guards_hold(args):
            return None
        captured = []
        for res, meta in self.captured:
            try:
                t = res(args)
            except (LookupError, AttributeError):
                return None
            if not isinstance(t, Tensor) or _meta(t) != meta:
                return None
            captured.append(t)
        if self.accum_leaves:
            ins = [tensors[k] for k in self.in_index] + captured
            for j in self.accum_leaves:
                node = ins[j]._node
                if type(node) is not AccumulateGrad or node.hooks:
                    return None
        for k, res, was_none in self.grad_start:     # .grad reads were recorded as such
            try:
                t = tensors[k] if res is None else res(args)
            except (LookupError, AttributeError):
                return None
            if not isinstance(t, Tensor) or (t._grad is None) is not was_none:
                return None
        return captured

    def replay(self, args, tensors, captured, profiled=False):
        arrays = [tensors[k]._st.array for k in self.in_index]
        if captured:
            arrays += [t._st.array for t in captured]
        if self.bumps:                  # an optimizer's step counts, as its step does first
            for opt, p, k, step in self.bumps:
                opt.state[p][k] += step
        if self.makers:
            made = [maker() for maker in self.makers]
            arrays += [made[m][i] for m, i in self.scalar_specs]
        res = _profiled(self.fwd_prog, arrays, self.backend) if profiled else self.fwd(*arrays)
        n, front = self.n_out, self.n_front
        return self._finish(args, tensors, captured, res[:n], res[n:front], res[front:])

    def _finish(self, args, tensors, captured, outs, saved, values):
        if self.effects and values is not None:
            ins = [tensors[k] for k in self.in_index] + list(captured)
            for kind, j, k, copy in self.effects:
                if kind == "accum":
                    _accumulate(ins[j], values[k], copy)
                elif kind == "grad_none":
                    ins[j]._grad = None
                elif kind == "axpy":
                    _axpy(ins[j], values[k], copy)      # copy: the effect's alpha
                else:
                    _write(ins[j], values[k], copy)
        wrapped = [wrap(a, b) for a, b in zip(outs, self.out_backends)]
        if self.bwd is not None and _mode.enabled:
            _attach(self, [tensors[k] for k in self.in_index] + list(captured), wrapped, saved)
        if self.single:
            return wrapped[0]
        return _result(self, args, tensors, wrapped)


def _attach(entry, ins, wrapped, saved):
    """Give the outputs ``wrapped`` of a call of ``entry`` on ``ins`` their gradient node."""
    parents = [ins[j]._node for j in entry.parents]
    node = CompiledBackward(entry, parents, saved, ins, wrapped, [t._st.array for t in ins])
    if len(entry.diff) == 1:
        node.slot = 0
        wrapped[entry.diff[0][0]]._node = node
    else:
        for k, (pos, _) in enumerate(entry.diff):
            wrapped[pos]._node = _OutputSelect(node, k)


def _result(entry, args, tensors, wrapped):
    """The call's result (a tree) from its output tensors ``wrapped``."""
    leaves = []
    for spec in entry.specs:
        kind = spec[0]
        if kind == "out":
            leaves.append(wrapped[spec[1]])
        elif kind == "arg":
            leaves.append(tensors[spec[1]])
        elif kind == "py":
            leaves.append(spec[1])
        elif kind == "src":
            leaves.append(spec[1](args))
        else:
            backend = spec[2]
            leaves.append(wrap(backend.xp.asarray(spec[1], copy=True), backend))
    return _unflatten(entry.treedef, leaves)


_MISS = object()         # what a fast path returns when a guard fails


class _Fast:
    """Writes a fast path's source: constants become globals of the function."""

    def __init__(self):
        self.env = {"MISS": _MISS, "Tensor": Tensor, "mode": _mode, "wrap": wrap,
                    "AccumulateGrad": AccumulateGrad, "Lookup": (LookupError, AttributeError)}
        self.lines = []

    def const(self, value):
        if value is None or value is True or value is False:
            return repr(value)
        name = f"k{len(self.env)}"
        self.env[name] = value
        return name

    def add(self, line, depth=1):
        self.lines.append("    " * depth + line)

    def miss(self, cond, depth=1):
        self.add(f"if {cond}: return MISS", depth)

    def tensor(self, var, arr, meta, device=None):
        """Guard tensor ``var`` (its array as ``arr``) against ``meta``, ``_meta``'s
        (backend, shape, dtype, requires_grad), and ``device`` when given."""
        backend, shape, dtype, grad = meta
        self.miss(f"not isinstance({var}, Tensor)")
        self.add(f"{arr} = {var}._st.array")
        conds = [f"{var}._backend is not {self.const(backend)}",
                 f"{arr}.shape != {self.const(shape)}",
                 f"{arr}.dtype != {self.const(dtype)}",
                 f"({var}._node is None) is {grad}"]
        if device is not None and len(backend.devices()) != 1:    # else it has one place
            conds.append(f"getattr({arr}, 'device', None) != {self.const(device[0])}")
        self.miss(" or ".join(conds))


def _fast_path(e, args, grad_enabled):
    """The hit path of entry ``e``, generated as one function ``fast(args)``: the key's guards
    on the positional arguments ``args`` of the trace call (each tensor's backend, shape,
    dtype, device and requires_grad, each scalar's type and value, no two tensors one
    array, grad mode), then ``_Entry.check``'s (Python guards, captured tensors, leaves
    that accumulate, ``.grad`` states), then the replay and its effects, unrolled. It
    returns ``_MISS`` where any guard fails (the caller then takes the full path, which
    retraces), so it may be stricter than the key, never looser. None where the call does
    not fit (containers or other objects among the arguments, aliased tensors, an
    optimizer's step counts or numbers to recompute): those take the full path always."""
    if e.bumps or e.makers:
        return None
    f = _Fast()
    n = len(args)
    f.miss(f"len(args) != {n} or mode.enabled is not {grad_enabled!r}")
    names = [f"a{i}" for i in range(n)]
    if n:
        f.add(f"{', '.join(names)}, = args")
    tvars, arrs = [], []
    for i, a in enumerate(args):
        v = names[i]
        t = type(a)
        if isinstance(a, Tensor):
            arr = a._st.array
            f.tensor(v, f"x{i}", (a._backend, arr.shape, arr.dtype, a._node is not None),
                     (getattr(arr, "device", None),))
            tvars.append(v)
            arrs.append(f"x{i}")
        elif t in _SCALARS:
            if a != a:
                f.miss(f"type({v}) is not {f.const(t)} or {v} == {v}")
            elif (t is float and a == 0) or t is complex:   # as _scalar_key
                f.miss(f"type({v}) is not {f.const(t)} or repr({v}) != {f.const(repr(a))}")
            else:
                f.miss(f"type({v}) is not {f.const(t)} or {v} != {f.const(a)}")
        elif _is_module(a):             # by identity, as the key (a method's self)
            f.miss(f"{v} is not {f.const(a)}")
        elif isinstance(a, _VALUES):
            f.miss(f"type({v}) is not {f.const(t)} or {v} != {f.const(a)}")
        else:
            return None
    if len({id(a._st.array) for a in args if isinstance(a, Tensor)}) < len(tvars):
        return None
    if len(arrs) > 1:
        f.miss(" or ".join(f"{x} is {y}" for i, x in enumerate(arrs) for y in arrs[i + 1:]))
    # _Entry.check: Python guards, captured tensors, leaves, .grad states
    ins = [tvars[k] for k in e.in_index]
    arrays = [arrs[k] for k in e.in_index]
    reads = bool(e.guards or e.captured or any(r is not None for _, r, _ in e.grad_start))
    if reads:
        f.add("try:")
    for i, (res, value) in enumerate(e.guards):
        f.add(f"g{i} = {f.const(res)}(args)", 2)
        f.miss(f"g{i} != {f.const(value)} or type(g{i}) is not {f.const(type(value))}", 2)
    for i, (res, _) in enumerate(e.captured):
        f.add(f"c{i} = {f.const(res)}(args)", 2)
        ins.append(f"c{i}")
    for i, (_, res, _) in enumerate(e.grad_start):
        if res is not None:
            f.add(f"r{i} = {f.const(res)}(args)", 2)
    if reads:
        f.add("except Lookup:")
        f.add("return MISS", 2)
    for i, (_, meta) in enumerate(e.captured):
        f.tensor(f"c{i}", f"y{i}", meta)
        arrays.append(f"y{i}")
    for j in e.accum_leaves:
        f.add(f"n{j} = {ins[j]}._node")
        f.miss(f"type(n{j}) is not AccumulateGrad or n{j}.hooks")
    for i, (k, res, was_none) in enumerate(e.grad_start):
        var = tvars[k] if res is None else f"r{i}"
        f.miss(f"not isinstance({var}, Tensor) or ({var}._grad is None) is not {was_none}")
    # the replay
    f.add(f"r = {f.const(e.fwd)}({', '.join(arrays)})")
    front = e.n_front
    for kind, j, k, copy in e.effects:
        t = ins[j]
        if kind == "grad_none":
            f.add(f"{t}._grad = None")
        elif kind == "accum":           # _accumulate, inline
            backend = e.in_backends[j]
            f.add(f"g = r[{front + k}]")
            if copy or backend.owns is None:
                f.add(f"g = {f.const(backend.xp.asarray)}(g, copy=True)")
            else:
                f.add(f"if not {f.const(backend.owns)}(g): "
                      f"g = {f.const(backend.xp.asarray)}(g, copy=True)")
            f.add(f"{f.const(_grad_lock.acquire)}()")      # as `with`, for less
            f.add("try:")
            f.add(f"if {t}._grad is None: {t}._grad = wrap(g, {f.const(backend)})", 2)
            f.add(f"else: {f.const(_add_grad)}({t}._grad, g)", 2)
            f.add("finally:")
            f.add(f"{f.const(_grad_lock.release)}()", 2)
        elif kind == "axpy":
            f.add(f"{f.const(_axpy)}({t}, r[{front + k}], {f.const(copy)})")
        else:
            f.add(f"{f.const(_write)}({t}, r[{front + k}], {copy})")
    outs = [f"o{p}" for p in range(e.n_out)]
    for p, b in enumerate(e.out_backends):
        f.add(f"o{p} = wrap(r[{p}], {f.const(b)})")
    if e.bwd is not None and grad_enabled:
        f.add(f"{f.const(_attach)}({f.const(e)}, [{', '.join(ins)}], [{', '.join(outs)}], "
              f"r[{e.n_out}:{front}])")
    if e.single:
        f.add("return o0")
    else:
        f.add(f"return {f.const(_result)}({f.const(e)}, args, [{', '.join(tvars)}], "
              f"[{', '.join(outs)}])")
    text = "\n".join(["def fast(args):", *f.lines, ""])
    code = builtins.compile(text, f"<polygrad.compile fast path of {e.region.name}>", "exec")
    exec(code, f.env)  # noqa: S102 - our own source
    fast = f.env["fast"]
    fast.source = text
    return fast


def _profiled(prog, arrays, backend):
    """Run a program op by op through the engine's ``observer`` and ``kernel_clock``
    extension points, as eager ops go, so that the profiler shows each replayed kernel as a
    child row of the compiled region (or of its ``CompiledBackward`` row). A backend's
    lowering (``Backend.lower``) is not used for a profiled call: the rows are the
    recorded ops."""
    ext = _ext
    observer, clock = ext.observer, ext.kernel_clock

    def call(op, args, opts):
        fn = op.fn

        def run(prim, a, o):
            if clock is None:
                return fn(*a, **o)
            return clock(fn, a, o, backend)
        return run(op.prim, args, opts) if observer is None else \
            observer(run, op.prim, args, opts)
    return prog.interpret(arrays, call)


def _accumulate(t, g, copy):
    """``t.grad += g`` as the engine accumulates a leaf's gradient (a ``.grad`` owns its
    buffer; an existing one is updated in place for whoever holds it)."""
    backend = t._backend
    if copy or backend.owns is None or not backend.owns(g):
        g = backend.xp.asarray(g, copy=True)
    with _grad_lock:
        grad = t._grad
        if grad is None:
            t._grad = wrap(g, backend)
        else:
            _add_grad(grad, g)


def _add_grad(grad, g):
    st = grad._st
    st.array = st.array + g
    st.buf.version += 1


def _fuse_updates(e, tr, in_slots, in_tensors, effect_slots, kept):
    """An optimizer's update ``p.add_(g, alpha=a)`` was recorded out of place, as ``m =
    g * a; v = p + m`` and a write of ``v`` into ``p``'s memory: where the backend has an
    ``axpy_`` kernel (``y += alpha * x`` in place, what the eager ``add_`` runs) and nothing
    else reads ``m`` or ``v``, the effect becomes ``("axpy", j, k)`` with ``x`` as value
    ``k`` (``e.alphas`` holds each effect's alpha): one pass over ``p`` instead of three
    (the product, the sum, the copy). The same arithmetic: ``alpha * x`` then the add.
    Only the first write to a tensor, same dtypes and shapes, a real-memory backend."""
    e.alphas = [None] * len(e.effects)
    producer = {op.out: op for op in tr.ops}
    reads = {}
    for op in tr.ops:
        for i in op.reads():
            reads[i] = reads.get(i, 0) + 1
    written = set()
    for n, (kind, j, k) in enumerate(e.effects):
        if kind != "write":
            continue
        first = j not in written
        written.add(j)
        backend = in_tensors[j]._backend
        if not first or backend.shares_memory is None or "axpy_" not in backend.overrides:
            continue
        v = effect_slots[k]
        add = producer.get(v)
        if add is None or add.prim.name != "add" or add.opts or len(add.args) != 2:
            continue
        p, m = add.args
        if not (isinstance(p, Ref) and isinstance(m, Ref)) or p.i != in_slots[j]:
            continue
        mul = producer.get(m.i)
        if mul is None or mul.prim.name != "multiply" or mul.opts or len(mul.args) != 2:
            continue
        x, alpha = mul.args
        if not isinstance(x, Ref) or type(alpha) not in (int, float):
            continue
        if reads.get(v, 0) or reads.get(m.i, 0) != 1 or v in kept or m.i in kept or \
                effect_slots.count(v) != 1:
            continue
        pv, xv, vv = tr.values[p.i], tr.values[x.i], tr.values[v]
        if not (pv.dtype == xv.dtype == vv.dtype and tuple(pv.shape) == tuple(xv.shape)
                == tuple(vv.shape)) or not hasattr(pv, "__setitem__"):
            continue
        e.effects[n] = ("axpy", j, k)
        e.alphas[n] = alpha
        effect_slots[k] = x.i


def _axpy(t, x, alpha):
    """``t += alpha * x`` into ``t``'s memory with the backend's ``axpy_`` kernel, as
    ``write_values`` writes: holders of the memory get their copies first, the version
    moves."""
    st, backend = t._st, t._backend
    buf = st.buf
    if buf.saved:
        buf.privatize()
    arr = st.array
    if not hasattr(arr, "__setitem__"):      # numpy's 0-d results: nothing aliases them
        arr = st.array = backend.xp.asarray(arr, copy=True)
    backend.overrides["axpy_"](backend.xp, arr, x, alpha)
    buf.version += 1


def _check_no_stale_view(tr, old, at):
    """A view of a tensor taken before an in-place write to it, read after the write, would
    see the new values in an eager run (it shares the buffer) and the old ones in the
    replay (which writes out of place): such a function falls back."""
    if old is None:
        return
    views = {old}
    for op in tr.ops[:at]:
        if op.prim.view and op.args and isinstance(op.args[0], Ref) and op.args[0].i in views:
            views.add(op.out)
    views.discard(old)          # the tensor itself is read through its new slot
    for op in tr.ops[at:]:
        if views.intersection(op.reads()):
            raise _Fallback("a view taken before an in-place write is read after it")


def _write(t, value, copy):
    """An in-place write recorded in the trace, as eager's: nodes holding the memory get
    their copies, then the values go into the memory (every alias sees them) and the
    version counter moves (``polygrad.graph.inplace.write_values``)."""
    write_values(t, value)


def _lower(prog, tensors):
    """The backend's own lowering of a program (``Backend.lower``), or the replay."""
    backend = tensors[0]._backend if tensors else None
    lower = getattr(backend, "lower", None)
    if lower is not None:
        fn = lower(prog)
        if fn is not None:
            return fn
    return prog.function


def _meta(t):
    arr = t._st.array
    return (t._backend, tuple(arr.shape), arr.dtype, t._node is not None)


def _zeros_maker(x):
    xp, arr = x._backend.xp, x._st.array
    shape, dtype = tuple(arr.shape), arr.dtype
    device = getattr(arr, "device", None)

    def zeros():
        return xp.zeros(shape, dtype=dtype, device=device)
    zeros.shape = shape
    return zeros


# -- the backward program ----------------------------------------------------------------------

def _backward_inside(tr, node, arr, backend):
    """``loss.backward()`` inside a traced function: derive its program now, in place in
    the forward program (what the function does next may read the gradients)."""
    out = _derive_backward(tr, [(node, arr, backend)])
    tr.ops.extend(tr.bops)
    tr.bops = []
    return out


def _derive_backward(tr, seeds, upto=None):
    """Record the backward program: each traced node's VJP rule runs on ``polygrad.ops``
    with the tracer recording, in reverse order, from one seed per ``(node, array,
    backend)`` in ``seeds`` (over the first ``upto`` recorded ops). Gradients are routed
    by node, as the engine routes them (a ``detach()`` inside the function cuts the flow).
    Returns the seed slots and ``{node: gradient}`` for the nodes outside the record that
    received one (``_grad_slots`` maps them to slots)."""
    phase, tr.phase = tr.phase, "backward"
    grads = {}
    seed_slots = []
    steps = tr.steps if upto is None else tr.steps[:upto]
    # inside the trace (a backward() there) the tracer is already recording
    with contextlib.nullcontext() if _tracer.current() is tr else tr, grad_mode.no_grad():
        for node, arr, backend in seeds:
            seed = backend.xp.ones_like(arr)   # any value: rules never branch on values
            seed_slots.append(tr.new_slot(seed))
            g = wrap(seed, backend)
            grads[node] = g if node not in grads else grads[node] + g
        for node, op, tensor_pos in reversed(steps):
            if node is None:
                continue
            g = grads.pop(node, None)
            if g is None:
                continue
            backend = node.backend
            nondiff = op.prim.nondiff_args
            xs = []
            for i, (a, is_t) in enumerate(zip(op.args, tensor_pos)):
                if isinstance(a, Ref):
                    v = tr.values[a.i]
                    xs.append(wrap(v, backend) if is_t and i not in nondiff else v)
                else:
                    xs.append(a)
            out = wrap(tr.values[op.out], backend)
            grads_in = node.apply_vjp(g, True, ns=pg, saved=(xs, out))
            for p, gi in zip(node.parents, grads_in):
                if p is None or gi is None:
                    continue
                if not isinstance(gi, Tensor):
                    gi = wrap(gi, backend)
                prev = grads.get(p)
                grads[p] = gi if prev is None else prev + gi
    tr.phase = phase
    return seed_slots, grads


def _grad_slots(tr, grads, parent_nodes):
    """Per parent node, the slot of the gradient that reached it (None where none did)."""
    grad_slots = []
    for p in parent_nodes:
        g = grads.get(p)
        if g is None:
            grad_slots.append(None)
            continue
        arr = g._st.array
        s = tr.slot_of.get(id(arr))
        if s is None:
            s = tr.new_slot(arr)
            tr.consts[s] = arr
        grad_slots.append(s)
    return grad_slots


class CompiledBackward(Node):
    """The graph node of one compiled call: its backward runs the backward program."""

    __slots__ = ("entry", "slot", "inputs")

    def __init__(self, entry, parents, saved, ins, outs, in_arrays):
        self._init_own(parents, ins[0]._backend)
        self.entry, self.slot = entry, None
        self.saved = tuple(saved)
        self.inputs = in_arrays         # for create_graph, which replays the forward ops
        # hold the memory of what was saved: a write into it first gives this node a copy
        # (copy-on-write, as every node's; Storage.hold / privatize)
        stores = [None] * len(self.saved)
        ref = None
        for k, (kind, j) in entry.pins:
            st = (ins[j] if kind == "in" else outs[j])._st
            if st.array is saved[k]:
                ref = ref or weakref.ref(self)
                st.buf.hold(ref)
                stores[k] = st.buf
        self.stores = stores

    def privatize(self, buf):
        saved = list(self.saved or ())
        for k, b in enumerate(self.stores):
            if b is buf and k < len(saved):
                saved[k] = self.backend.xp.asarray(saved[k], copy=True)
                self.stores[k] = None
        if self.saved is not None:
            self.saved = tuple(saved)

    def name(self):
        return "CompiledBackward"

    def release(self):
        self.saved = None
        self.inputs = None
        self._unpin_all()

    def _unpin_all(self):
        stores, self.stores = self.stores, ()
        release_holds(stores)

    def __del__(self):
        if self.stores:
            self._unpin_all()

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        if self.saved is None:
            raise RuntimeError(FREED_MSG)
        entry = self.entry
        slots = g.grads if isinstance(g, Slots) else {self.slot: g}
        gs = []
        for k, (_, zeros) in enumerate(entry.diff):
            gk = slots.get(k)
            if gk is None:
                gk = zeros()
                if create_graph:
                    gk = wrap(gk, self.backend)
            elif tuple(gk.shape) != zeros.shape:
                gk = (pg if create_graph else self.backend.xp).broadcast_to(gk, zeros.shape)
            gs.append(gk)
        if create_graph:
            return self._eager_grads(gs)
        if _ext.active and _ext.observer is not None:       # the profiler: a row per kernel
            res = _profiled(entry.bwd_prog, (*self.saved, *gs), self.backend)
        else:
            res = entry.bwd(*self.saved, *gs)
        out = [None if k is None else res[k] for k in entry.grad_pos]
        for i, copy in enumerate(entry.grad_copy):
            if copy:
                out[i] = self.backend.xp.asarray(out[i], copy=True)
        return out

    def _eager_grads(self, gs):
        """create_graph: replay forward and backward op by op through the engine, from the
        inputs connected to the graph, so the gradients are differentiable again."""
        entry = self.entry
        env = {s: v for s, v in entry.consts.items()}
        nodes = {j: p for j, p in zip(entry.parents, self.parents)}
        live = entry.slot_live
        for j, (s, arr) in enumerate(zip(entry.in_slots, self.inputs)):
            env[s] = wrap(arr, entry.in_backends[j], nodes.get(j) if live.get(s, True) else None)
        for s, g in zip(entry.seed_slots, gs):
            env[s] = g
        _interpret(entry.ops, env)
        _interpret(entry.bops, env)
        out = []
        for s in entry.grad_slots:
            g = None if s is None else env[s]
            if g is not None and not isinstance(g, Tensor):
                # a gradient that is a constant of the program (sign's, floor's zeros): a
                # Tensor without a graph, a copy (the engine may keep it as a .grad)
                g = wrap(self.backend.xp.asarray(g, copy=True), self.backend)
            out.append(g)
        return out


def _interpret(ops, env):
    for op in ops:
        args = [_resolve(a, env, False) for a in op.args]
        if op.live is not None:     # what was detached (or under no_grad) when traced stays so:
            args = [a.detach() if not live and isinstance(a, Tensor) and a.requires_grad
                    else a for a, live in zip(args, op.live)]     # (one slot, one array)
        opts = {k: _resolve(v, env, True) for k, v in op.opts.items()}
        env[op.out] = engine.apply(op.prim, *args, **opts)


def _resolve(a, env, raw):
    if isinstance(a, Ref):
        v = env[a.i]
        if raw and isinstance(v, Tensor):
            return v._st.array
        return v
    if type(a) is tuple:
        return tuple(_resolve(x, env, True) for x in a)
    if type(a) is list:
        return [_resolve(x, env, True) for x in a]
    return a


class _OutputSelect(Node):
    """Routes the gradient of output ``slot`` of a compiled call to its node."""

    __slots__ = ("slot",)

    def __init__(self, node, slot):
        self._init_own((node,), node.backend)
        self.slot = slot

    def name(self):
        return "CompiledBackward"

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        return (Slots({self.slot: g}),)


# -- results as trees of tensors ------------------------------------------------------------

def _flatten(obj):
    """The leaves of a result (tensors and Python scalars) and its structure."""
    leaves = []
    return leaves, _walk(obj, leaves)


def _walk(o, leaves):
    # plain recursion, no closure: a self-referencing closure would keep the result (and
    # its graph, and the buffers it pins) alive until the garbage collector runs
    t = type(o)
    if isinstance(o, (tuple, list)):
        return (t, [_walk(x, leaves) for x in o])
    if isinstance(o, dict):
        return (t, [(k, _walk(v, leaves)) for k, v in o.items()])
    if not isinstance(o, (Tensor, *_SCALARS)):
        raise _Fallback(f"it returns a {t.__name__}; return tensors, Python scalars or "
                        f"tuples, lists and dicts of them")
    leaves.append(o)
    return None


def _unflatten(treedef, leaves):
    return _build(treedef, iter(leaves))


def _build(d, it):
    if d is None:
        return next(it)
    t, items = d
    if issubclass(t, dict):
        return t((k, _build(v, it)) for k, v in items)
    if hasattr(t, "_fields"):           # a namedtuple
        return t(*[_build(x, it) for x in items])
    return t(_build(x, it) for x in items)
