"""The primitive table: every op polygrad differentiates, named by the Array API.

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
``def_nondifferentiable`` lists ops once. The table itself is in the modules of this
package, one per family: elementwise, reductions, shape, linalg, indexing.
"""

from __future__ import annotations

import sys

__all__ = ["Primitive", "PRIMITIVES", "def_elementwise", "def_gated", "def_linear",
           "def_primitive", "def_nondifferentiable", "register_primitive", "get_primitive"]

PRIMITIVES: dict[str, "Primitive"] = {}
NONDIFFERENTIABLE: set[str] = set()
_PLUGIN_PRIMITIVES: dict[str, list[str]] = {}


class Primitive:
    """A differentiable op: a name (the Array API's), its rules and its graph-node name.

    ``impl(xp)`` returns the forward function for a namespace; by default the
    namespace's function of the same name. Backends may override it by name.

    >>> PRIMITIVES["multiply"].node_name
    'MulBackward0'
    """

    __slots__ = ("name", "vjp", "jvp", "node_name", "impl", "nondiff_args", "node_cls",
                 "view", "doc", "wants_needs", "module", "saves", "saves_drop",
                 "saves_out", "__weakref__")

    def __init__(self, name, vjp=None, jvp=None, *, node_name=None, impl=None,
                 nondiff_args=(), view=False, saves=None, doc=""):
        self.name = name
        self.vjp = vjp
        self.jvp = jvp
        self.node_name = node_name or _torch_node_name(name)
        self.impl = impl            # fn(xp, *arrays, **options) or None for getattr(xp, name)
        self.nondiff_args = tuple(nondiff_args)   # positions that never get a gradient
        self.view = view            # output may share memory with input 0 (numpy views)
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
        self.node_cls = None        # set by the engine: one Node subclass per primitive
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


_TORCH_NAMES = {
    "add": "AddBackward0", "subtract": "SubBackward0", "multiply": "MulBackward0",
    "divide": "DivBackward0", "negative": "NegBackward0", "pow": "PowBackward0",
    "sum": "SumBackward0", "mean": "MeanBackward0", "prod": "ProdBackward0",
    "max": "MaxBackward1", "min": "MinBackward1", "matmul": "MmBackward0",
    "permute_dims": "PermuteBackward0", "matrix_transpose": "TransposeBackward0",
    "reshape": "ViewBackward0", "expand_dims": "UnsqueezeBackward0",
    "squeeze": "SqueezeBackward0", "broadcast_to": "ExpandBackward0",
    "concat": "CatBackward0", "getitem": "IndexBackward0", "astype": "ToCopyBackward0",
    "abs": "AbsBackward0", "maximum": "MaximumBackward0", "minimum": "MinimumBackward0",
    "where": "WhereBackward0", "clip": "ClampBackward1", "var": "VarBackward0",
    "std": "StdBackward0", "square": "PowBackward0", "logaddexp": "LogaddexpBackward0",
    "log1p": "Log1PBackward0", "expm1": "Expm1Backward0", "cumulative_sum": "CumsumBackward0",
}


def _torch_node_name(name):
    if name in _TORCH_NAMES:
        return _TORCH_NAMES[name]
    base = name.rsplit(".", 1)[-1]
    return "".join(part.capitalize() for part in base.split("_")) + "Backward0"


def register_primitive(prim, *, plugin=None):
    """Add a primitive to the table (plugins do this through ``register_primitives``)."""
    if not isinstance(prim, Primitive):
        raise TypeError(f"register_primitive expects a Primitive, got {prim!r}")
    if prim.name in PRIMITIVES and PRIMITIVES[prim.name] is not prim:
        raise ValueError(f"a primitive named {prim.name!r} is already registered")
    PRIMITIVES[prim.name] = prim
    if plugin is not None:
        _PLUGIN_PRIMITIVES.setdefault(plugin, []).append(prim.name)
    from ..engine import attach_node_class
    attach_node_class(prim)
    return prim


def unregister_plugin_primitives(plugin):
    for name in _PLUGIN_PRIMITIVES.pop(plugin, []):
        PRIMITIVES.pop(name, None)


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


def def_elementwise(name, *partials, conjugate_vjp=False, **kw):
    """An elementwise op given its partial derivatives, one function per input.

    ``partial(ns, out, *xs) -> d out / d x_i``; ``None`` marks an input that is
    never differentiated. VJP and JVP are derived: ``g * d_i`` and
    ``sum_i d_i * t_i``. Only the partials of inputs that need them are computed.
    """
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

    vjp.wants_needs = True
    nondiff = tuple(i for i, p in enumerate(partials) if p is None)
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
        return _call_ns(ns, name, *args, **opts)

    prim = register_primitive(Primitive(name, transpose, jvp, **kw))
    return prim


def def_nondifferentiable(*names, **kw):
    """Ops whose outputs never carry a gradient (comparisons, logical ops, argmax …)."""
    for name in names:
        NONDIFFERENTIABLE.add(name)
        register_primitive(Primitive(name, None, None, **kw))


def _is_array(x):
    return hasattr(x, "shape")


def _call_ns(ns, name, *args, **opts):
    fn = ns
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn(*args, **opts)


def load_table():
    """Import the table modules (idempotent)."""
    from . import elementwise as _e, reductions as _r, shape as _s, linalg as _l, indexing as _i  # noqa: F401
    from . import standard as _st, linalg_ext as _le, fft as _f  # noqa: F401
