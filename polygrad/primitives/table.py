"""The primitive table's machinery: the ``Primitive`` row, the registry, and the helpers
that write the rules of a whole family. The rows themselves are in the family modules
beside this one (elementwise, reductions, shape, indexing, products, linalg, fft,
special, nn, transfer).

A ``Primitive`` is a named object with its rules beside it. Rules take the
namespace as their first argument (``ns``): ordinary backward runs them on the
backend's raw namespace and raw arrays (no graph, no wrapper cost); backward
with ``create_graph=True`` runs the same rules on polygrad's differentiable
namespace, so grad-of-grad needs no second set of rules.

Rule signatures (``xs`` are the positional inputs, arrays or Python scalars):

- ``vjp(ns, g, out, *xs, **options) -> tuple``: one gradient per input, None
  where an input needs none. Gradients may have a broadcast shape: the engine
  sums them back to each input's shape, once, centrally.
- ``jvp(ns, tangents, out, *xs, **options) -> tangent``: ``tangents`` holds one
  tangent per input (None for a zero tangent).

``saves=`` names what the rules read (input positions, ``"out"``): other inputs are kept
as shape and dtype only (``engine.Unsaved``), an unread output as None, so the graph holds
no more memory than backward needs and pins no more buffers against in-place writes (relu
keeps its output, add keeps nothing). Without it a node keeps every input and its output.

Helpers write the rules for a whole family (as JAX's ``defjvp`` and ``deflinear`` do):
``def_elementwise`` takes only partial derivatives, ``def_linear`` only a transpose,
``def_bilinear`` only the two transposes, ``def_nondifferentiable`` lists ops once.

A row also says how the op is spelt for users (``api=``, ``methods=``, ``torch=``):
``polygrad.ops``, the Tensor methods and the torch-style names are all derived from it,
so adding an op is one row here and one conformance case.

This layer knows namespaces and arrays, never Tensors or the engine: the graph layer
runs these rules.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping

from ..plugins.host import plugin_primitives

__all__ = ["Primitive", "PRIMITIVES", "NONDIFFERENTIABLE", "def_elementwise", "def_gated",
           "def_linear", "def_bilinear", "def_primitive", "def_nondifferentiable",
           "register_primitive", "get_primitive", "conjugate"]

NONDIFFERENTIABLE: set[str] = set()

#: How a primitive is spelt in ``polygrad.ops``: ``"unary"`` is ``fn(x, /)``, ``"binary"`` is
#: ``fn(x1, x2, /)`` (both elementwise, with a Tensor method and an in-place ``name_``);
#: ``None``: ``polygrad.ops`` writes the function by hand (options, several outputs) or,
#: for ops outside the standard, ``fn(*arrays, **options)``.
APIS = ("unary", "binary", None)


class Primitive:
    """A differentiable op: a name (the Array API's), its rules and its graph-node name.

    ``impl(xp)`` returns the forward function for a namespace; by default the
    namespace's function of the same name. Backends may override it by name.

    >>> PRIMITIVES["multiply"].node_name
    'MulBackward0'
    """

    __slots__ = ("name", "vjp", "jvp", "node_name", "impl", "nondiff_args", "node_cls",
                 "view", "may_alias", "name_for", "doc", "wants_needs", "module", "saves", "saves_drop",
                 "saves_out", "api", "methods", "torch", "torch_opts", "__weakref__")

    def __init__(self, name, vjp=None, jvp=None, *, node_name=None, impl=None,
                 nondiff_args=(), view=None, may_alias=False, name_for=None, saves=None, doc="", api=None, methods=None,
                 torch=None, torch_opts=None):
        if api not in APIS:
            raise ValueError(f"primitive {name!r}: api must be one of {APIS}, got {api!r}")
        self.name = name
        self.vjp = vjp
        self.jvp = jvp
        self.node_name = node_name or _torch_node_name(name)
        self.impl = impl            # fn(xp, *arrays, **options) or None for getattr(xp, name)
        self.nondiff_args = tuple(nondiff_args)   # positions that never get a gradient
        # a view op (torch returns a view): its write-back rule (see primitives.shape)
        self.view = view or None
        # not a view in torch, but some array libraries return a view or the input itself
        # (numpy's flip, torch's positive and conj of real tensors): the engine copies
        # those results, so that no op result aliases its input unknown to the buffer model
        self.may_alias = may_alias
        # ``name_for(opts) -> str``: the node's name where it depends on the options
        # (getitem: SelectBackward0, SliceBackward0 ... as torch's); else ``node_name``
        self.name_for = name_for
        self.doc = doc
        # what backward needs kept: input positions and/or "out"; None keeps everything.
        # Other inputs are held as shape and dtype only, an unread output as None, so they
        # are freed (and not pinned against in-place writes) as soon as the user lets go
        # of them, as torch's saved tensors are.
        self.saves = None if saves is None else frozenset(saves)
        # for the engine's hot path: the input positions to drop, in order (inputs past the
        # 16th are always kept), and whether the output is kept
        self.saves_drop = () if saves is None else tuple(
            i for i in range(16) if i not in self.saves)
        self.saves_out = saves is None or "out" in self.saves
        # the user-facing spellings derived from this row (see APIS): Tensor method names
        # (elementwise ops also get the in-place ``name_``) and torch-style function names
        # in the top-level ``polygrad`` namespace; by default the op's own name
        default = (name,) if api is not None else ()
        self.api = api
        self.methods = default if methods is None else tuple(methods)
        self.torch = default if torch is None else tuple(torch)
        # options the torch-style spellings (function, method, in-place method) pass where
        # torch's answer differs from the standard's (remainder: a zero's sign)
        self.torch_opts = dict(torch_opts or {})
        self.node_cls = None        # a cache the graph layer fills: this op's Node subclass
        self.wants_needs = getattr(vjp, "wants_needs", False)   # vjp takes _needs=(bool, ...)
        self.module = _defining_module()    # where the row was written (tests find their cases)

    @property
    def differentiable(self):
        return self.vjp is not None

    def __repr__(self):
        return f"<Primitive {self.name}>"


def _defining_module():
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _torch_node_name(name):
    """torch's usual node name for an op (``SinBackward0``); rows whose torch name differs
    (``multiply``: ``MulBackward0``) say so with ``node_name=``."""
    base = name.rsplit(".", 1)[-1]
    return "".join(part.capitalize() for part in base.split("_")) + "Backward0"


class _Table(Mapping):
    """``PRIMITIVES``: the built-in rows, then the primitives plugins registered (read from
    the plugin host, which keeps them; a plugin's row never replaces a built-in one)."""

    def __init__(self):
        self.builtin: dict[str, Primitive] = {}
        self._plugin: dict[str, Primitive] = {}
        self._version = None

    def _sync(self):
        version, rows = plugin_primitives()
        if version == self._version:
            return
        plugin = {}
        for owner, prim in rows:
            if not isinstance(prim, Primitive):
                warnings.warn(f"plugin {owner!r} registered {prim!r}, which is not a "
                              f"polygrad.primitives.Primitive; it is ignored", RuntimeWarning, stacklevel=2)
            elif prim.name in self.builtin:
                warnings.warn(f"plugin {owner!r} registers primitive {prim.name!r}, which is "
                              f"built in; the built-in row is kept", RuntimeWarning, stacklevel=2)
            else:
                plugin[prim.name] = prim
        self._plugin, self._version = plugin, version

    def __getitem__(self, name):
        prim = self.builtin.get(name)
        if prim is None:
            self._sync()
            prim = self._plugin[name]
        return prim

    def get(self, name, default=None):
        prim = self.builtin.get(name)
        if prim is not None:
            return prim
        self._sync()
        return self._plugin.get(name, default)

    def __contains__(self, name):
        return self.get(name) is not None

    def __iter__(self):
        self._sync()
        yield from self.builtin
        yield from list(self._plugin)

    def __len__(self):
        self._sync()
        return len(self.builtin) + len(self._plugin)


PRIMITIVES = _Table()


def register_primitive(prim):
    """Add a built-in row to the table (plugins register theirs through the
    ``register_primitives`` hook instead)."""
    if not isinstance(prim, Primitive):
        raise TypeError(f"register_primitive expects a Primitive, got {prim!r}")
    if PRIMITIVES.builtin.get(prim.name, prim) is not prim:
        raise ValueError(f"a primitive named {prim.name!r} is already registered")
    PRIMITIVES.builtin[prim.name] = prim
    return prim


def get_primitive(name):
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise LookupError(f"no primitive named {name!r}") from None


# -- helpers that write rules for a family ------------------------------------------------

def def_primitive(name, vjp=None, jvp=None, **kw):
    """Register a primitive with hand-written rules."""
    return register_primitive(Primitive(name, vjp, jvp, **kw))


def conjugate(ns, v):
    """The complex conjugate of a complex value; real values (the common case) pass as they are."""
    if type(v) is complex:
        return v.conjugate()
    dt = getattr(v, "dtype", None)
    if dt is None:
        return v
    flag = getattr(dt, "is_complex", None)       # torch and polygrad dtypes
    if flag is None:
        flag = getattr(dt, "kind", None) == "c"   # numpy and friends
    return ns.conj(v) if flag else v


def _conjugated(p):
    if p is None:
        return None
    return lambda ns, out, *xs, **opts: conjugate(ns, p(ns, out, *xs, **opts))


def def_elementwise(name, *partials, conjugate_vjp=False, vjp=None, **kw):
    """An elementwise op given its partial derivatives, one function per input.

    ``partial(ns, out, *xs) -> d out / d x_i``; ``None`` marks an input that is
    never differentiated. VJP and JVP are derived: ``g * d_i`` and
    ``sum_i d_i * t_i``. Only the partials of inputs that need them are computed.
    ``vjp`` replaces the derived VJP where the order of its operations matters (divide
    divides the gradient, as torch does, rather than multiplying it by 1 / y: the same
    first derivative, but a second one that reduces a broadcast 0-d divisor's terms before
    the reciprocal's rule would turn 0 * inf into nan).
    """
    custom_vjp = vjp
    jvp_partials = partials
    if conjugate_vjp:   # complex inputs: the VJP takes the conjugate partial, the JVP the partial
        partials = tuple(_conjugated(p) for p in partials)
    if len(partials) == 1:
        (p0,) = partials

        def vjp(ns, g, out, x, _needs=None, **opts):
            return (g * p0(ns, out, x, **opts),)
    elif len(partials) == 2:       # unrolled: binary ops sit on every hot path
        p0, p1 = partials

        def vjp(ns, g, out, x, y, _needs=(True, True), **opts):
            return (g * p0(ns, out, x, y, **opts) if _needs[0] and p0 is not None else None,
                    g * p1(ns, out, x, y, **opts) if _needs[1] and p1 is not None else None)
    else:
        def vjp(ns, g, out, *xs, _needs=None, **opts):
            return tuple(
                g * p(ns, out, *xs, **opts)
                if p is not None and (_needs is None or _needs[i]) else None
                for i, p in enumerate(partials))

    def jvp(ns, tangents, out, *xs, **opts):
        total = None
        for p, t in zip(jvp_partials, tangents):
            if t is None or p is None:
                continue
            term = t * p(ns, out, *xs, **opts)
            total = term if total is None else total + term
        return total

    if custom_vjp is not None:
        vjp = custom_vjp
    vjp.wants_needs = True
    nondiff = tuple(i for i, p in enumerate(partials) if p is None)
    kw.setdefault("api", {1: "unary", 2: "binary"}.get(len(partials)))
    return register_primitive(Primitive(name, vjp, jvp, nondiff_args=nondiff, **kw))


def def_gated(name, *gates, ties=False, **kw):
    """An op that routes its gradient: ``gate(ns, out, *xs)`` is a boolean mask per input.

    The gradient of input i is ``where(gate_i, g, 0)``; ``ties=True`` (maximum,
    minimum) gives each of two equal inputs half, as torch does. Masks keep the
    gradient's dtype on every backend, which multiplying by a boolean would not.
    """
    def route(ns, g, i, out, xs, opts):
        mask = gates[i](ns, out, *xs, **opts)
        routed = ns.where(mask, g, 0.0)
        if ties:
            routed = ns.where(xs[0] == xs[1], g * 0.5, routed)
        return routed

    def vjp(ns, g, out, *xs, _needs=None, **opts):
        return tuple(
            None if (gate is None or (_needs is not None and not _needs[i]))
            else route(ns, g, i, out, xs, opts)
            for i, gate in enumerate(gates))

    def jvp(ns, tangents, out, *xs, **opts):
        total = None
        for i, (gate, t) in enumerate(zip(gates, tangents)):
            if t is None or gate is None:
                continue
            term = route(ns, t, i, out, xs, opts)
            total = term if total is None else total + term
        return total

    vjp.wants_needs = True
    nondiff = tuple(i for i, gate in enumerate(gates) if gate is None)
    return register_primitive(Primitive(name, vjp, jvp, nondiff_args=nondiff, **kw))


def def_linear(name, transpose, **kw):
    """An op linear in its array inputs: give its transpose; the JVP is the op itself.

    ``transpose(ns, g, out, *xs, **opts) -> tuple`` of gradients, as a VJP.
    """
    def jvp(ns, tangents, out, *xs, **opts):
        # shapes, axes and dtypes (nondiff_args) pass through; other constants have zero tangent
        args = [t if t is not None else x if i in prim.nondiff_args
                else ns.zeros_like(x) if _is_array(x) else 0
                for i, (t, x) in enumerate(zip(tangents, xs))]
        return _ns_function(ns, name)(*args, **opts)

    prim = register_primitive(Primitive(name, transpose, jvp, **kw))
    return prim


def def_bilinear(name, lhs, rhs, **kw):
    """An op bilinear in its first two inputs (matmul, vecdot, tensordot, linear), as JAX's
    ``defbilinear``: give the transpose for each side; the JVP is ``op(tx, y) + op(x, ty)``.

    ``lhs(ns, g, out, x, y, *rest, **opts)`` is the gradient of ``x``, ``rhs`` of ``y``.
    Inputs after the second enter additively (linear's bias): their gradient is ``g``
    and their tangent adds to the output's.
    """
    def vjp(ns, g, out, x, y, *rest, _needs=None, **opts):
        needs = _needs or (True,) * (2 + len(rest))
        gx = lhs(ns, g, out, x, y, *rest, **opts) if needs[0] else None
        gy = rhs(ns, g, out, x, y, *rest, **opts) if needs[1] else None
        return (gx, gy, *(g if n and r is not None else None for n, r in zip(needs[2:], rest)))

    def jvp(ns, tangents, out, x, y, *rest, **opts):
        fn = _ns_function(ns, name)
        tx, ty = tangents[0], tangents[1]
        total = None
        if tx is not None:
            total = fn(tx, y, **opts)
        if ty is not None:
            term = fn(x, ty, **opts)
            total = term if total is None else total + term
        for t in tangents[2:]:
            if t is not None:
                total = t if total is None else total + t
        return total

    vjp.wants_needs = True
    return register_primitive(Primitive(name, vjp, jvp, **kw))


def def_nondifferentiable(*names, **kw):
    """Ops whose outputs never carry a gradient (comparisons, logical ops, argmax …)."""
    for name in names:
        NONDIFFERENTIABLE.add(name)
        register_primitive(Primitive(name, None, None, **kw))


def _is_array(x):
    return hasattr(x, "shape")


def _ns_function(ns, name):
    fn = ns
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn
