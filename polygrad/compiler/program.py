"""A recorded program and its code: straight-line raw backend calls over numbered slots.

A ``Program`` is what a trace leaves: ``ops``, each ``(fn, args, opts, out, name)`` where
``fn`` is the backend's raw function (``backend.op(name)``), ``args`` and ``opts`` hold
``Ref(slot)`` where a value of the program flows and constants elsewhere, and ``out`` is
the slot the result goes to. ``build`` keeps only the ops that the requested slots need
and turns them into one Python function (``exec`` of generated source, as torch.fx does):
each slot is a local variable, each op one line, so a replay costs one call per op and no
Tensor, Node or list indexing. Slots die (``del``) after their last use, so large arrays are
freed as eagerly as in an eager run.

This module knows raw functions and values only, never Tensors or the engine.
"""

from __future__ import annotations

__all__ = ["Ref", "Op", "Program", "build", "fold", "dedupe", "needed", "refs_in"]


class Ref:
    """A program value: slot ``i``."""

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return f"s{self.i}"


class Op:
    """One recorded call: ``out = fn(*args, **opts)`` of primitive ``prim``."""

    __slots__ = ("fn", "args", "opts", "out", "prim", "_reads", "live")

    def __init__(self, fn, args, opts, out, prim):
        self.fn, self.args, self.opts, self.out, self.prim = fn, args, opts, out, prim
        self._reads = None
        # a forward op's arguments that were part of the graph when traced (False: detached,
        # or the op ran under no_grad); None: all as they come (backward ops)
        self.live = None

    def reads(self):
        """The slots this op reads (computed once)."""
        if self._reads is None:
            self._reads = tuple(refs_in((self.args, self.opts)))
        return self._reads


def refs_in(obj, found=None):
    """The slots a (nested tuple, list or dict) value reads."""
    if found is None:
        found = []
    if isinstance(obj, Ref):
        found.append(obj.i)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            refs_in(o, found)
    elif isinstance(obj, dict):
        for o in obj.values():
            refs_in(o, found)
    return found


def needed(ops, wanted):
    """The ops (in order) whose results ``wanted`` slots depend on: dead code is dropped."""
    live = set(wanted)
    keep = []
    for op in reversed(ops):
        if op.out in live:
            keep.append(op)
            live.update(op.reads())
    keep.reverse()
    return keep, live


class _Source:
    """Writes the generated function: names for slots and for constants."""

    def __init__(self):
        self.env = {}
        self.lines = []
        self._ids = {}

    def const(self, value):
        if value is None or value is True or value is False:
            return repr(value)
        if type(value) in (int, str):
            return repr(value)
        key = id(value)
        name = self._ids.get(key)
        if name is None:
            name = self._ids[key] = f"k{len(self._ids)}"
            self.env[name] = value
        return name

    def expr(self, obj):
        if isinstance(obj, Ref):
            return f"s{obj.i}"
        if type(obj) is tuple and refs_in(obj):
            return "(" + "".join(self.expr(o) + ", " for o in obj) + ")"
        if type(obj) is list and refs_in(obj):
            return "[" + ", ".join(self.expr(o) for o in obj) + "]"
        if type(obj) is dict and refs_in(obj):
            return "{" + ", ".join(f"{self.const(k)}: {self.expr(v)}"
                                   for k, v in obj.items()) + "}"
        return self.const(obj)


def _key(obj, rename):
    """A hashable stand-in for an argument: slots by (renamed) number, constants by value
    where hashable and by identity otherwise (the ops keep them alive)."""
    if isinstance(obj, Ref):
        return ("s", rename.get(obj.i, obj.i))
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(_key(o, rename) for o in obj))
    if isinstance(obj, dict):
        return (dict, tuple((k, _key(v, rename)) for k, v in obj.items()))
    if type(obj) in (bool, int, float, complex, str, type(None)):
        return (type(obj), obj)
    return ("id", id(obj))


def _renamed(obj, rename):
    if isinstance(obj, Ref):
        return Ref(rename[obj.i]) if obj.i in rename else obj
    if isinstance(obj, tuple):
        return tuple(_renamed(o, rename) for o in obj)
    if isinstance(obj, list):
        return [_renamed(o, rename) for o in obj]
    if isinstance(obj, dict):
        return {k: _renamed(v, rename) for k, v in obj.items()}
    return obj


def dedupe(ops):
    """Common subexpressions: an op that repeats an earlier one (same function, same
    arguments) reuses its result (primitives are pure). Returns the ops and the renaming
    of the dropped results."""
    seen, rename, out = {}, {}, []
    for op in ops:
        key = (id(op.fn), _key(op.args, rename), _key(op.opts, rename))
        prev = seen.get(key)
        if prev is not None:
            rename[op.out] = prev
            continue
        seen[key] = op.out
        if rename:
            op = Op(op.fn, _renamed(op.args, rename), _renamed(op.opts, rename), op.out, op.prim)
        out.append(op)
    return out, rename


class Program:
    """A recorded program, as a backend's ``lower`` hook receives it.

    ``name``: ``"forward"`` or ``"backward"``; ``ops``: the ``Op`` list that runs (after
    ``dedupe`` and dead-code removal), in order, each with ``prim`` (the ``Primitive``),
    ``fn`` (the backend's raw function), ``args`` and ``opts`` (``Ref(slot)`` or constants)
    and ``out`` (a slot); ``inputs``: the slots the arguments fill; ``outputs``: the slots
    returned, as a tuple; ``consts``: ``{slot: value}``; ``function``: the replay,
    ``function(*input_arrays) -> tuple`` (compiled from ``source`` when first asked for:
    a program a backend lowers may never need it); ``source``: its Python text.
    """

    __slots__ = ("name", "ops", "inputs", "outputs", "consts", "source", "_env", "_function")

    def __init__(self, name, ops, inputs, outputs, consts, source, env):
        self.name, self.ops, self.inputs, self.outputs = name, ops, inputs, outputs
        self.consts, self.source, self._env, self._function = consts, source, env, None

    @property
    def function(self):
        fn = self._function
        if fn is None:
            env = dict(self._env)
            code = compile(self.source, f"<polygrad.compile {self.name}>", "exec")
            exec(code, env)  # noqa: S102 - our own source
            fn = self._function = env[self.name]
        return fn

    def __repr__(self):
        return f"<Program {self.name}: {len(self.ops)} ops>"

    def interpret(self, arrays, call):
        """Run the ops one by one, each as ``call(op, args, opts)`` on the values its
        arguments hold (the profiler's view of a replay: one event per op); returns what
        ``function(*arrays)`` returns."""
        env = dict(self.consts)
        env.update(zip(self.inputs, arrays))
        for op in self.ops:
            env[op.out] = call(op, _value(op.args, env), _value(op.opts, env))
        return tuple(env[i] for i in self.outputs)


def _value(obj, consts):
    if isinstance(obj, Ref):
        return consts[obj.i]
    if isinstance(obj, tuple):
        return tuple(_value(o, consts) for o in obj)
    if isinstance(obj, list):
        return [_value(o, consts) for o in obj]
    if isinstance(obj, dict):
        return {k: _value(v, consts) for k, v in obj.items()}
    return obj


def fold(ops, consts):
    """Constant folding: an op that reads only constants runs once, now, and its result
    becomes a constant (``consts`` is updated). Returns the ops left."""
    out = []
    for op in ops:
        if all(i in consts for i in op.reads()):
            consts[op.out] = op.fn(*_value(op.args, consts), **_value(op.opts, consts))
        else:
            out.append(op)
    return out


def build(ops, inputs, outputs, consts, name="program"):
    """The ``Program`` whose function ``f(*input_arrays) -> tuple(output values)`` runs ``ops``.

    ``inputs``: the slots its arguments fill, in order; ``outputs``: the slots it returns
    (a slot may repeat); ``consts``: ``{slot: value}`` for slots that hold a constant.
    Ops on constants run once, here (``fold``); repeated ops run once (``dedupe``); ops no
    output needs are not run.
    """
    consts = dict(consts)
    ops = fold(ops, consts)
    ops, rename = dedupe(ops)
    outputs = [rename.get(i, i) for i in outputs]
    keep, _ = needed(ops, outputs)
    last = {}
    for k, op in enumerate(keep):
        for i in op.reads():
            last[i] = k
    returned = set(outputs)
    src = _Source()
    for slot, value in consts.items():
        src.env[f"s{slot}"] = value          # constants are globals of the function
    args = ", ".join(f"s{i}" for i in inputs)
    body = []
    for k, op in enumerate(keep):
        fname = src.const(op.fn)
        call = ", ".join([src.expr(a) for a in op.args]
                         + [f"{key}={src.expr(v)}" for key, v in op.opts.items()])
        body.append(f"    s{op.out} = {fname}({call})")
        dead = sorted({i for i in op.reads() if last.get(i) == k and i not in returned
                       and i not in consts and i != op.out})
        if dead:
            body.append("    del " + ", ".join(f"s{i}" for i in dead))
    ret = "".join(f"s{i}, " for i in outputs)
    text = "\n".join([f"def {name}({args}):", *body, f"    return ({ret})", ""])
    return Program(name, keep, list(inputs), outputs, consts, text, src.env)
