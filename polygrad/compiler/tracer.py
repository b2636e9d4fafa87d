"""Recording a function: the primitives it applies, which arrays flow where, and whatever
it does that a replay could not repeat.

A trace is an ordinary eager call with an engine ``observer`` installed (chained to any
observer already there, such as the profiler's): every ``apply`` is written down as an
``Op`` over numbered slots (``program.Ref``), keyed by the identity of the raw arrays,
which the tracer keeps alive so that identities stay unique. Tensors that reach an op
without coming from an argument or an earlier op are *external*: the caller decides
whether each is a captured variable (read again on every replay) or a constant.

What cannot be replayed is detected, not guessed: reading values into Python
(``bool(t)``, ``t.item()``, ``t.numpy()``, ``.tolist()``, printing), ``autograd.grad()``
and ``backward()`` forms other than ``loss.backward()`` on a scalar computed inside (that
one is recorded: ``on_backward`` derives its program on the spot), in-place writes to tensors seen in the trace (their version counters, and
the engine's ``inplace_observer`` where it has one), random numbers, ops whose output
shape depends on values (boolean masks, ``nonzero``, ``unique``) and moves between
backends. The first such event sets ``Tracer.reason`` (or raises ``UntraceableError``
with ``fullgraph=True``); the call itself completes eagerly, so its result is right.

Tensors seen in a trace are given, for the trace only, a subclass of their own class whose
value-reading methods report to the tracer (``_traced_class``); their class is restored
when the trace ends.
"""

from __future__ import annotations

import threading
import weakref

from ..base import grad_mode as _grad_mode
from ..base.dtypes import as_dtype
from ..graph import engine
from ..graph.node import AccumulateGrad
from ..graph.tensor import Tensor
from ..primitives import PRIMITIVES
from .program import Op, Ref

__all__ = ["Tracer", "UntraceableError", "current", "flag"]


class UntraceableError(RuntimeError):
    """``polygrad.compile(fn, fullgraph=True)``: ``fn`` does something a replay cannot repeat."""


class _State(threading.local):
    tracer = None


_state = _State()


def current():
    """The tracer recording in this thread, or None."""
    return _state.tracer


def flag(reason):
    """Report something a replay could not repeat to this thread's tracer (if tracing)."""
    tracer = _state.tracer
    if tracer is not None:
        tracer.untraceable(reason)


# -- tensors under trace: their value-reading methods report -------------------------------

_READS = {
    "item": "t.item() reads a value into Python",
    "tolist": "t.tolist() reads values into Python",
    "numpy": "t.numpy() reads values into Python",
    "__array__": "numpy.asarray(t) reads values into Python",
    "__bool__": "bool(t) (an `if` or `while` on a tensor) is data-dependent control flow",
    "__float__": "float(t) reads a value into Python",
    "__int__": "int(t) reads a value into Python",
    "__index__": "using a tensor as a Python index reads its value",
    "__complex__": "complex(t) reads a value into Python",
    "__dlpack__": "exporting a tensor through DLPack hands its buffer outside polygrad",
    "__repr__": "printing a tensor reads its values",
    "__str__": "printing a tensor reads its values",
    "__format__": "formatting a tensor reads its values",
    "__deepcopy__": "copy.deepcopy(t) copies values outside the recorded ops",
    "__reduce_ex__": "pickling a tensor reads its values",
}
_MOVES = ("to", "cpu", "cuda")
_traced = {}


def _detach(self):
    out = super(type(self), self).detach()
    tracer = _state.tracer
    if tracer is not None:
        tracer.watch(out)       # an alias: its value reads report too
    return out


def _data(self):
    return _detach(self)


def _set_data(self, value):
    flag("t.data = ... swaps a tensor's buffer, which the replay cannot repeat")
    Tensor.data.fset(self, value)


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """``loss.backward()`` inside a traced function: recorded (its gradients become part of
    the program, accumulated into the leaves' ``.grad`` on replay) when it is the plain
    form on a scalar made by the recorded ops; anything else is reported."""
    tracer = _state.tracer
    if tracer is None or tracer.phase != "forward":
        return super(type(self), self).backward(gradient, retain_graph, create_graph, inputs)
    node = self._node
    if gradient is not None or create_graph or inputs is not None or node is None or \
            id(node) not in tracer._nodes or self._st.array.shape != () or \
            tracer.on_backward is None:
        tracer.untraceable("backward() inside the function other than loss.backward() on a "
                           "scalar computed inside (gradient=, inputs=, create_graph=)")
        return super(type(self), self).backward(gradient, retain_graph, create_graph, inputs)
    # the backward program is derived now, while the nodes still hold what they saved
    seeds, grads = tracer.on_backward(tracer, node, self._st.array, self._backend)
    leaves = [(n.variable, g) for n, g in grads.items() if type(n) is AccumulateGrad]
    was_none = {id(t): _GRAD.__get__(t) is None for t, _ in leaves if t is not None}
    tracer.backwards.append((seeds, grads, was_none))
    tracer.effects.append(("accum", len(tracer.backwards) - 1))
    tracer._quiet += 1
    try:
        out = super(type(self), self).backward(None, retain_graph, False, None)
    finally:
        tracer._quiet -= 1
    for t, g in leaves:       # a fresh .grad holds the recorded gradient: reads of it map
        if t is not None and was_none.get(id(t)) and _GRAD.__get__(t) is not None:
            arr = g._st.array
            slot = tracer.slot_of.get(id(arr))
            if slot is None:
                slot = tracer.new_slot(arr)
                tracer.consts[slot] = arr
            tracer.slot_of[id(_GRAD.__get__(t)._st.array)] = slot
    return out


_GRAD = Tensor._grad          # the slot itself, under the traced classes' ``_grad`` property


def _get_grad(self):
    g = _GRAD.__get__(self)
    tracer = _state.tracer
    if tracer is not None and tracer.phase == "forward" and not tracer._quiet:
        tracer.grad_reads.add(id(self))
        if g is not None:
            tracer.watch(g)   # its value reads report too
    return g


def _set_grad(self, value):
    tracer = _state.tracer
    if tracer is not None and tracer.phase == "forward" and not tracer._quiet:
        if value is None:
            tracer.effects.append(("grad_none", self))
        else:
            tracer.untraceable("assigning a tensor to .grad inside the function")
    _GRAD.__set__(self, value)


def _inplace(name, make):
    """``t.add_(...)`` and its kin on a traced tensor: the new value is computed out of
    place (recorded), the write itself runs as usual and is noted as an effect that the
    replay repeats (on arguments and captured tensors; elsewhere the caller falls back)."""
    def method(self, other, **kwargs):
        tracer = _state.tracer
        if tracer is None or tracer.phase != "forward" or tracer._quiet:
            return getattr(super(type(self), self), name)(other, **kwargs)
        with _grad_mode.no_grad():
            new = make(self, other, **kwargs)
        tracer._quiet_write += 1            # this write is recorded: not an untraceable one
        try:
            out = getattr(super(type(self), self), name)(other, **kwargs)
        finally:
            tracer._quiet_write -= 1
        if not isinstance(new, Tensor) or new.dtype != self.dtype or \
                tuple(new.shape) != tuple(self.shape):
            tracer.untraceable(f"t.{name}() changes the dtype or shape of its result")
            return out
        slot = tracer.slot_of[id(new._st.array)]
        old = tracer.slot_of.get(id(self._st.array))
        tracer.effects.append(("write", self, slot, old, len(tracer.ops)))
        st = self._st
        tracer._writes[id(st)] = tracer._writes.get(id(st), 0) + 1
        tracer.slot_of[id(st.array)] = slot        # later reads see the new value
        return out
    method.__name__ = name
    return method


_INPLACE = {
    "add_": _inplace("add_", lambda t, o, alpha=1: t + o * alpha if alpha != 1 else t + o),
    "sub_": _inplace("sub_", lambda t, o, alpha=1: t - o * alpha if alpha != 1 else t - o),
    "mul_": _inplace("mul_", lambda t, o: t * o),
    "div_": _inplace("div_", lambda t, o: t / o),
    # Adam's amsgrad: a recorded copy of the source (another dtype or shape falls back)
    "copy_": _inplace("copy_", lambda t, o: o.clone() if isinstance(o, Tensor) else o),
}


def _reader(name, reason):
    def method(self, *args, **kwargs):
        flag(reason)
        return getattr(super(type(self), self), name)(*args, **kwargs)
    method.__name__ = name
    return method


def _mover(name):
    def method(self, *args, **kwargs):
        out = getattr(super(type(self), self), name)(*args, **kwargs)
        tracer = _state.tracer
        if tracer is not None and out is not self and isinstance(out, Tensor) and \
                id(out._st.array) not in tracer.slot_of:
            tracer.untraceable(f"t.{name}() moves data between backends or devices, which "
                               f"the recorded program cannot replay")
        return out
    method.__name__ = name
    return method


def _traced_class(cls):
    """A subclass of ``cls`` (same layout) whose value-reading methods report."""
    sub = _traced.get(cls)
    if sub is None:
        body = {"__slots__": ()}
        body.update({n: _reader(n, r) for n, r in _READS.items()})
        body.update({n: _mover(n) for n in _MOVES})
        body.update(detach=_detach, data=property(_data, _set_data), backward=_backward,
                    _grad=property(_get_grad, _set_grad), **_INPLACE)
        sub = _traced[cls] = type(cls.__name__, (cls,), body)
        sub._pg_traced = True
    return sub


# -- the tracer ------------------------------------------------------------------------------

_SCALARS = (type(None), bool, int, float, complex, str)
_SHAPE_FROM_VALUES = {"nonzero", "unique_all", "unique_counts", "unique_inverse",
                      "unique_values", "argwhere", "masked_select"}


class Tracer:
    """The record of one trace: slots, ops, external tensors, and what went wrong first."""

    def __init__(self, fullgraph=False):
        self.fullgraph = fullgraph
        self.reason = None
        self.values = []          # slot -> value, kept alive so that ids stay unique
        self.slot_of = {}         # id(value) -> slot
        # slot -> whether the tensor it was first seen as required grad; a tensor of the same
        # array on the other side (x.detach() beside x) reads an alias slot instead, so that
        # create_graph's replay (which connects slots to the graph) keeps the detach
        self.slot_live = {}
        self._aliases = {}        # (slot, requires_grad) -> alias slot
        self.ops = []             # forward ops (program.Op)
        self.steps = []           # per forward op: (node, op, tensor positions)
        self.bops = []            # backward ops, while deriving the backward program
        self.externals = {}       # slot -> (weakref to the Tensor, its Storage)
        self.consts = {}          # slot -> value (constants of the backward program)
        self.phase = "forward"
        self.backwards = []       # loss.backward() inside: (seeds, grads, .grad was None)
        # in order: ("accum", i), ("grad_none", t), ("write", t, slot, old slot, ops so far)
        self.effects = []
        self._writes = {}         # id(storage) -> in-place writes recorded as effects
        self.made = []            # weakrefs to the tensors the recorded ops made
        self.grad_reads = set()   # ids of tensors whose .grad the function read
        self.start = {}           # id(tensor) -> (node, .grad is None) before the call
        self.on_backward = None   # on_backward(tracer, node, array, backend), set by the caller
        self._quiet = 0           # > 0 while such a backward runs (not an untraceable one)
        self._quiet_write = 0     # > 0 while a recorded in-place write runs
        self._swapped = []        # (tensor, its own class)
        self._watched = {}        # id(storage) -> (storage, version when first seen)
        self._nodes = set()       # ids of nodes created by recorded ops
        # Python floats that are inputs of the program, not constants: id -> (value,
        # maker, index), where ``maker()[index]`` recomputes the value on a replay (an
        # optimizer's step-dependent numbers, ``Optimizer._step_scalars``)
        self.scalars = {}
        self.scalar_slots = {}    # slot -> (maker, index)
        self._alive = []          # arrays mapped to an existing slot, kept alive

    # -- what cannot be replayed --------------------------------------------------------
    def untraceable(self, reason):
        if self.reason is None:
            self.reason = reason
        if self.fullgraph:
            raise UntraceableError(
                f"polygrad.compile(fullgraph=True): {reason}. Move that out of the compiled "
                f"function, or drop fullgraph=True to run it eagerly (with a warning).")

    # -- slots --------------------------------------------------------------------------
    def new_slot(self, value):
        i = len(self.values)
        self.values.append(value)
        self.slot_of[id(value)] = i
        return i

    def watch(self, t):
        """Swap a tensor to its traced class and note its version (both undone by ``end``)."""
        cls = type(t)
        if not getattr(cls, "_pg_traced", False):
            self._swapped.append((t, cls))
            t.__class__ = _traced_class(cls)
        st = t._st
        if id(st) not in self._watched:
            self._watched[id(st)] = (st, st.buf.version)

    def input(self, t):
        """Slot of an argument tensor (the same slot for two arguments with one buffer)."""
        self.watch(t)
        arr = t._st.array
        i = self.slot_of.get(id(arr))
        if i is None:
            i = self.new_slot(arr)
            self.slot_live[i] = t.requires_grad
        return i

    def _alias(self, i, t):
        """The slot of ``t``, a tensor of slot ``i``'s array on the other side of the graph
        (detached where the slot's tensor requires grad, or the reverse): an identity op
        (``positive``) from slot ``i``, recorded once per side."""
        live = t.requires_grad
        d = self._aliases.get((i, live))
        if d is None:
            prim = PRIMITIVES["positive"]
            fn = t._backend.op(prim.name, prim.impl)
            # an array of its own (the values are the same; torch's positive returns its
            # input), so that the backward program's reads of the alias map to its slot
            d = self.new_slot(t._backend.xp.asarray(self.values[i], copy=True))
            self.slot_live[d] = live
            op = Op(fn, (Ref(i),), {}, d, prim)
            op.live = (live,)
            self.ops.append(op)
            self.steps.append((None, op, (True,)))
            self._aliases[(i, live)] = d
        return d

    def value(self, a):
        """The template of an op argument: ``Ref`` for a program value, else the constant."""
        if isinstance(a, Tensor):
            arr = a._st.array
            i = self.slot_of.get(id(arr))
            if (i is not None and self.phase == "forward"
                    and self.slot_live.get(i, a.requires_grad) != a.requires_grad):
                return Ref(self._alias(i, a))
            if i is None:
                i = self.new_slot(arr)
                self.slot_live[i] = a.requires_grad
                if self.phase == "forward":
                    self.externals[i] = (weakref.ref(a), a._st)
                    self.watch(a)
                else:
                    self.consts[i] = arr
            return Ref(i)
        if isinstance(a, _SCALARS):
            if type(a) is float and id(a) in self.scalars:
                i = self.slot_of.get(id(a))
                if i is None:
                    i = self.new_slot(a)
                    self.scalar_slots[i] = self.scalars[id(a)][1:]
                return Ref(i)
            return a
        if isinstance(a, tuple):
            return tuple(self.value(x) for x in a)
        if isinstance(a, list):
            return [self.value(x) for x in a]
        if isinstance(a, dict):
            return {k: self.value(v) for k, v in a.items()}
        i = self.slot_of.get(id(a))
        return a if i is None else Ref(i)

    # -- the engine's extension points ---------------------------------------------------
    def record(self, prim, args, opts, out):
        backend = next((a._backend for a in args if isinstance(a, Tensor)), out._backend)
        fn = backend.op(prim.name, prim.impl)
        if prim.name in _SHAPE_FROM_VALUES or (prim.name == "getitem" and _bool_mask(
                opts.get("key"))):
            self.untraceable(f"{prim.name}() with a boolean mask or on values gives an "
                             f"output whose shape depends on the data")
        op = Op(fn, tuple(self.value(a) for a in args),
                {k: self.value(v) for k, v in opts.items()}, None, prim)
        op.out = self.new_slot(out._st.array)
        self.slot_live[op.out] = out.requires_grad
        if self.phase == "forward":
            self.ops.append(op)
            node = out._node
            op.live = tuple(node is not None and isinstance(a, Tensor) and a.requires_grad
                            for a in args)
            if node is not None:
                self._nodes.add(id(node))
            self.steps.append((node, op, tuple(isinstance(a, Tensor) for a in args)))
            self.made.append(weakref.ref(out))
            self.watch(out)
        else:
            self.bops.append(op)

    def observer(self, prev):
        def observe(run, prim, args, opts):
            before = [(a, a._st.array) for a in args if isinstance(a, Tensor)]
            out = run(prim, args, opts) if prev is None else prev(run, prim, args, opts)
            for a, arr in before:
                now = a._st.array
                if now is not arr:
                    # the engine replaced an input's immutable scalar (numpy's 0-d results)
                    # by a 0-d array to take a view of it: the same value, the same slot
                    i = self.slot_of.get(id(arr))
                    if i is not None and id(now) not in self.slot_of:
                        self.slot_of[id(now)] = i
                        self._alive.append(now)      # its id stays unique
            self.record(prim, args, opts, out)
            return out
        return observe

    def node_observer(self, prev):
        def observe(run, node, g, ns):
            if not self._quiet:
                self.untraceable("autograd.grad() or backward() of a tensor not computed "
                                 "inside the function; compile the forward and call "
                                 "backward() on its result")
            return run(node, g, ns) if prev is None else prev(run, node, g, ns)
        return observe

    def inplace_observer(self, prev):
        def observe(run, prim, target, others, opts):
            if not self._quiet_write and not self._quiet:
                self.untraceable(f"an in-place write ({getattr(prim, 'name', prim)}) to a "
                                 f"tensor; write it out of place (y = y + x) to compile it")
            if prev is None:
                return run(prim, target, others, opts)
            return prev(run, prim, target, others, opts)
        return observe

    def __enter__(self):
        if _state.tracer is not None:
            raise RuntimeError("polygrad.compile: a compiled function called while another "
                               "one is being traced runs eagerly")
        _state.tracer = self
        self._saved = {}
        # random draws and value-dependent outputs (nonzero, unique ...) are computed
        # outside apply: the engine reports them through its ``opaque`` extension point
        hooks = {"observer": self.observer, "node_observer": self.node_observer,
                 "opaque": lambda prev: flag}
        if "inplace_observer" in engine.EXTENSION_POINTS:
            hooks["inplace_observer"] = self.inplace_observer
        for name, make in hooks.items():
            prev = engine.get_extension(name)
            self._saved[name] = prev
            engine.set_extension(name, make(prev))
        return self

    def __exit__(self, *exc):
        for name, prev in self._saved.items():
            engine.set_extension(name, prev)
        _state.tracer = None
        return False

    def end(self):
        """Restore the tensors' classes and report writes seen only by version counters."""
        for t, cls in self._swapped:
            t.__class__ = cls
        self._swapped = []
        if self.reason is None:
            for st, version in self._watched.values():
                if st.buf.version != version + self._writes.get(id(st), 0):
                    self.reason = ("an in-place write to a tensor inside the function (its "
                                   "version counter changed); write it out of place "
                                   "(y = y + x) to compile it")
                    break

    def check_graph(self, allowed_leaves):
        """Hooks or ``retain_grad`` on nodes made inside, or leaves made inside the function."""
        for node, _, _ in self.steps:
            if node is None:
                continue
            if node.hooks or node.retain is not None:
                self.reason = self.reason or ("a hook or retain_grad() on a tensor made inside "
                                              "the function")
            for p in node.parents:
                if p is not None and id(p) not in self._nodes and id(p) not in allowed_leaves:
                    self.reason = self.reason or (
                        "a tensor that requires grad was made inside the function (or reached "
                        "through an attribute); pass it in as an argument")


def _bool_mask(key):
    if isinstance(key, tuple):
        return any(_bool_mask(k) for k in key)
    if isinstance(key, list):
        return any(isinstance(k, bool) or _bool_mask(k) for k in key)
    dt = getattr(key, "dtype", None)
    if dt is None:
        return False
    try:
        return as_dtype(dt).name == "bool"
    except Exception:  # noqa: BLE001 - an unknown dtype is no boolean mask
        return False

