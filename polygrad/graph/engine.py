"""The engine: graph nodes, ``apply`` (run one primitive and record it), and the
backward pass (a topological order and a reverse loop).

It is backend-blind: it calls ``backend.op(name)`` for forward work and passes a
namespace to the primitive's rules. Broadcast gradients are summed back to each
input's shape here, once, for every op. This module does not define any op or
any Tensor method; those live in ``primitives`` and ``tensor``.
"""

from __future__ import annotations

import math
import weakref

from . import grad_mode
from .errors import BackendMismatchError, UnsupportedOperation

_mode = grad_mode._mode

# Set by polygrad.tensor at import (the Tensor class and its constructor helpers).
Tensor = None
_make = None
_wrap_raw = None
# Set by the profiler / anomaly mode / forward-mode AD while they are active.
observer = None
anomaly = None
# Set by the profiler only: ``kernel_clock(fn, arrays, opts, backend)`` runs the backend call
# (to split kernel time from polygrad's own), ``node_observer(node, g, create_graph)`` runs
# one backward step (to time it as a row such as ``DivBackward0``).
kernel_clock = None
node_observer = None


class _ForwardAD:
    level = 0          # > 0 while a forward-AD (dual) level is open
    live = None        # weakrefs to what holds a tangent of the open level (cleared on exit)


forward_ad_state = _ForwardAD()

FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


class Storage:
    """A tensor's buffer, shared by tensors that share memory (``detach()``, ``.data``).

    ``saved`` counts graph nodes that hold this buffer for backward: an in-place
    op copies first while it is positive (copy-on-write), and writes in place
    otherwise. ``version`` is torch's ``_version`` counter.
    """

    __slots__ = ("array", "saved", "version")

    def __init__(self, array):
        self.array = array
        self.saved = 0
        self.version = 0


class Unsaved:
    """Stands in for an input a rule does not read (``Primitive.saves``): its shape and
    dtype only, which the engine (summing broadcast gradients back) and rules may read.
    An output the rules do not read is kept as None."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def __repr__(self):
        return f"<not saved: shape {tuple(self.shape)}, dtype {self.dtype}>"


class Node:
    """A node of the backward graph, named after the op as torch names it (``MulBackward0``).

    ``next_functions`` gives, for each input, ``(node, 0)`` or ``(None, 0)`` for constants.
    ``saved`` holds the inputs and output the rules need, ``stores`` their Storages
    (None for non-tensor inputs, last the output's), counted in ``Storage.saved``
    until ``release``.
    """

    __slots__ = ("prim", "opts", "saved", "parents", "backend", "stores", "hooks",
                 "retain", "tangents", "metadata", "__weakref__")

    def __init__(self, prim, opts, xs, out, parents, backend, stores):
        self.prim = prim
        self.opts = opts
        if prim.saves is not None:   # drop what the rules never read (``xs``, ``stores``: ours)
            n = len(xs)
            for i in prim.saves_drop:
                if i >= n:
                    break
                if stores[i] is not None:
                    x = xs[i]
                    xs[i], stores[i] = Unsaved(x.shape, x.dtype), None
            if not prim.saves_out:
                out = stores[-1] = None
        self.saved = (xs, out)
        self.parents = parents
        self.backend = backend
        self.stores = stores
        self.hooks = None
        self.retain = None
        self.tangents = None
        self.metadata = None
        for st in stores:
            if st is not None:
                st.saved += 1

    @property
    def next_functions(self):
        return tuple((p, 0) for p in self.parents)

    def name(self):
        return type(self).__name__

    def register_hook(self, fn):
        """Run ``fn(grad)`` on the gradient arriving at this node; a returned value replaces it."""
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _RemovableHandle(self.hooks, fn)

    def release(self):
        """Free the saved values (after a backward pass without retain_graph)."""
        saved = self.saved
        if saved is None:
            return
        self.saved = None
        self._unpin(saved)

    def _unpin(self, saved):
        stores, self.stores = self.stores, ()
        if not stores:
            return
        xs, out = saved
        for st, arr in zip(stores, (*xs, out)):
            if st is not None and st.array is arr:
                st.saved -= 1

    def __del__(self):
        if self.stores and self.saved is not None:
            self._unpin(self.saved)

    def __repr__(self):
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    # -- the backward step --------------------------------------------------------------
    def apply_vjp(self, g, create_graph, ns=None):
        """Gradients for this node's inputs; ``ns``: run the rule on another raw namespace
        (functional's batched jacobian passes one whose arrays carry a batch axis)."""
        if self.saved is None:
            raise RuntimeError(FREED_MSG)
        prim = self.prim
        xs, out = self.saved
        if create_graph:
            from . import ops as ns
            xs, out = self._snapshots(xs, out)
        elif ns is None:
            ns = self.backend._ns or self.backend.ns
        opts = self.opts
        if prim.wants_needs:
            grads = prim.vjp(ns, g, out, *xs, _needs=[p is not None for p in self.parents],
                             **opts)
        else:
            grads = prim.vjp(ns, g, out, *xs, **opts)
        saved_xs, parents = self.saved[0], self.parents
        for i, gi in enumerate(grads):
            # inputs' shapes come from the saved inputs; constants need no gradient
            if gi is not None and parents[i] is not None and i < len(saved_xs):
                shape = saved_xs[i].shape
                if gi.shape != shape:
                    grads = list(grads)
                    grads[i] = unbroadcast(ns, gi, shape)
        return grads

    def _snapshots(self, xs, out):
        """Tensors for the saved values, connected to the graph (for create_graph)."""
        tangents = self.tangents or (None,) * (len(xs) + 1)
        raw = self.prim.nondiff_args      # index arrays and the like stay raw
        snaps = tuple(
            _make(x, self.backend, p, tangents[i])
            if hasattr(x, "shape") and i not in raw and type(x) is not Unsaved else x
            for i, (x, p) in enumerate(zip(xs, self.parents)))
        if out is None:
            return snaps, out
        return snaps, _make(out, self.backend, self, tangents[-1])


class AccumulateGrad(Node):
    """The node of a leaf tensor: backward adds the arriving gradient into ``variable.grad``."""

    __slots__ = ("_variable",)

    def __init__(self, tensor):
        self.parents = ()
        self.saved = ()
        self.stores = ()
        self.hooks = None
        self.retain = None
        self.tangents = None
        self.metadata = None
        self._variable = weakref.ref(tensor)

    @property
    def variable(self):
        return self._variable()


class _RemovableHandle:
    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def attach_node_class(prim):
    """Give a primitive its own Node subclass so that nodes print as torch's do."""
    prim.node_cls = type(prim.node_name, (Node,), {"__slots__": ()})


def unbroadcast(ns, g, shape):
    """Sum a broadcast gradient back to ``shape`` (the one place this happens)."""
    extra = g.ndim - len(shape)
    if extra < 0:
        return ns.broadcast_to(g, shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, s in enumerate(shape) if s == 1 and g.shape[i + extra] != 1)
    if axes:
        g = ns.sum(g, axis=axes, keepdims=True)
    if extra:
        g = ns.reshape(g, shape)
    return g


# -- forward: run a primitive and record it -----------------------------------------------

def apply(prim, *args, **opts):
    """Run primitive ``prim`` on tensors (and Python scalars) and record a node if needed."""
    if observer is not None:
        return observer(_apply, prim, args, opts)
    return _apply(prim, args, opts)


def _apply(prim, args, opts):
    backend = None
    arrays = []
    parents = []
    stores = []
    track = False
    set_by_raw = None          # the raw array that chose ``backend``, until a Tensor does
    for a in args:
        if isinstance(a, Tensor):
            b = a._backend
            if backend is not b:
                if backend is None:
                    backend = b
                elif set_by_raw is not None and _claims(b, set_by_raw):
                    backend = b
                else:
                    _mismatch(prim, backend, b)
            set_by_raw = None
            st = a._st
            arrays.append(st.array)
            stores.append(st)
            node = a._node
            parents.append(node)
            if node is not None:
                track = True
            continue
        if a is None or isinstance(a, (bool, int, float, complex)):
            arrays.append(a)
        else:
            t = _wrap_raw(a, prim)
            if t is None:            # shapes, axes, dtypes: passed through untouched
                arrays.append(a)
            else:
                if backend is None:
                    backend, set_by_raw = t._backend, a
                elif t._backend is not backend and not _claims(backend, a):
                    _mismatch(prim, backend, t._backend)
                arrays.append(t._st.array)
        stores.append(None)
        parents.append(None)
    if backend is None:
        raise TypeError(f"{prim.name}() needs at least one polygrad Tensor or array argument")
    fn = backend._ops.get(prim.name)
    if fn is None:
        fn = backend.op(prim.name, prim.impl)
    try:
        if kernel_clock is None:
            out_array = fn(*arrays, **opts)
        else:
            out_array = kernel_clock(fn, arrays, opts, backend)
    except Exception as exc:
        raise _diagnose(prim, args, exc) from exc
    # the output Tensor, built inline: this function is the forward hot path
    out = _new_tensor(Tensor)
    out._st = st = Storage(out_array)
    out._backend = backend
    out._grad = out._tangent = None
    if track and prim.vjp is not None and _mode.enabled:
        stores.append(st)
        node = prim.node_cls(prim, opts, arrays, out_array, parents, backend, stores)
        if anomaly is not None:
            anomaly.on_create(node)
        out._node = node
    else:
        out._node = None
    if forward_ad_state.level:
        _forward_tangent(prim, args, opts, out)
    return out


_new_tensor = object.__new__


def _forward_tangent(prim, args, opts, out):
    tangents = [getattr(a, "_tangent", None) for a in args]
    if all(t is None for t in tangents) or prim.jvp is None:
        return
    from . import ops as ns
    xs = [a for a in args]
    state = forward_ad_state
    level, state.level = state.level, 0      # rules must not differentiate themselves
    try:
        # ``out`` itself, not a detached copy: a tangent is then differentiable (create_graph)
        t = prim.jvp(ns, tuple(tangents), out, *xs, **opts)
    finally:
        state.level = level
    if t is not None and tuple(t.shape) != tuple(out.shape):
        t = ns.broadcast_to(t, out.shape)
    out._tangent = t
    live = state.live
    if live is not None:
        live.append(weakref.ref(out))
    node = out._node
    if node is not None and node.tangents is None:
        node.tangents = (*tangents, t)
        if live is not None:
            live.append(weakref.ref(node))


def _claims(backend, array):
    """True when ``backend`` also declares the raw array's type (two backends may share
    numpy.ndarray): the array then joins the op's backend rather than its type's owner."""
    try:
        return isinstance(array, tuple(backend.array_types()))
    except Exception:  # noqa: BLE001 - a broken declaration claims nothing
        return False


def _mismatch(prim, a, b):
    raise BackendMismatchError(
        f"{prim.name}() got tensors from two backends, {a.name!r} and {b.name!r}. Move one "
        f"first, e.g. x.to({a.name!r}) or x.to({b.name!r}); polygrad never moves data silently.")


def _diagnose(prim, args, exc):
    """Turn a backend's shape error into one that names the op and both shapes."""
    if isinstance(exc, UnsupportedOperation):    # already says what is wrong and what to do
        return exc
    devices = sorted({str(a.device) for a in args if isinstance(a, Tensor)})
    if len(devices) > 1:      # checked only on failure: the hot path never compares devices
        return BackendMismatchError(
            f"{prim.name}() got tensors on two devices, {' and '.join(devices)}. Move one "
            f"first, e.g. x.to({devices[0]!r}); polygrad never moves data silently.")
    shapes = [tuple(a.shape) for a in args if hasattr(a, "shape")]
    if prim.name == "matmul" and len(shapes) == 2 and min(map(len, shapes)) >= 1:
        a, b = shapes
        inner_b = b[-2] if len(b) > 1 else b[0]
        if a[-1] != inner_b:
            return ValueError(
                f"matmul(): shapes {a} and {b} are not aligned: the last dimension of the first "
                f"({a[-1]}) must equal the {'second-to-last' if len(b) > 1 else 'only'} dimension "
                f"of the second ({inner_b}). Transpose one operand (.mT) or reshape it.")
    elif len(shapes) >= 2 and not _broadcastable(*shapes):
        return ValueError(
            f"{prim.name}(): shapes {' and '.join(str(s) for s in shapes)} cannot be broadcast "
            f"together. Make trailing dimensions equal or 1 (reshape or expand_dims one input).")
    return exc


def _broadcastable(*shapes):
    for dims in zip(*(reversed(s) for s in shapes)):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return False
    return True


# -- backward --------------------------------------------------------------------------------

def toposort(roots):
    """Nodes reachable from ``roots``, each after every node that feeds it (iterative DFS)."""
    order, seen = [], set()
    stack = [(r, False) for r in roots if r is not None]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for p in node.parents:
            if p is not None and p not in seen:
                stack.append((p, False))
    return order


def run_backward(roots, seeds, *, retain_graph, create_graph, capture=None, accumulate=True,
                 only=None, order=None):
    """The backward pass: propagate ``seeds`` from ``roots`` in reverse topological order.

    ``capture``: nodes whose arriving gradient is returned (autograd.grad);
    ``accumulate``: write leaf gradients into ``.grad``; ``only``: restrict
    accumulation to these AccumulateGrad nodes (``backward(inputs=...)``).
    Leaf ``.grad`` values are written only after the whole pass succeeded, so a
    failing backward leaves every ``.grad`` as it was. ``order``: ``toposort(roots)``,
    passed in by callers that replay one graph many times (jacobian rows).
    """
    if order is None:
        order = toposort(roots)
    grads = {}
    for node, seed in zip(roots, seeds):
        prev = grads.get(node)
        grads[node] = seed if prev is None else prev + seed
    handed = {id(s) for s in seeds}          # arrays a .grad must not alias
    leaf_updates, retained, captured = [], [], {}
    with grad_mode.set_grad_enabled(create_graph):
        for node in reversed(order):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node.hooks:
                g = _run_hooks(node, g, create_graph)
            if capture is not None and node in capture:
                captured[node] = g
            if type(node) is AccumulateGrad:
                if accumulate and (only is None or node in only):
                    leaf_updates.append((node, g))
                continue
            if node.retain is not None:
                retained.append((node.retain, g))
            if node_observer is None:
                grads_in = node.apply_vjp(g, create_graph)
            else:
                grads_in = node_observer(node, g, create_graph)
            if anomaly is not None:         # anomaly mode: NaN in a node's gradients
                anomaly.check(node, grads_in)
            for parent, gi in zip(node.parents, grads_in):
                if parent is None or gi is None:
                    continue
                prev = grads.get(parent)
                grads[parent] = gi if prev is None else prev + gi
    for node, g in leaf_updates:
        _accumulate(node.variable, g, node, handed, create_graph)
    for ref, g in retained:
        _accumulate(ref(), g, None, handed, create_graph)
    if not retain_graph:
        for node in order:
            if type(node) is not AccumulateGrad:
                node.release()
    return captured


def _run_hooks(node, g, create_graph):
    for hook in list(node.hooks):
        gt = g if create_graph else _make(g, _backend_of_node(node))
        r = hook(gt)
        if r is not None:
            g = r if create_graph else r._st.array
    return g


def _backend_of_node(node):
    if type(node) is AccumulateGrad:
        return node.variable._backend
    return node.backend


def _accumulate(tensor, g, node, handed, create_graph):
    if tensor is None:
        return
    if create_graph:
        tensor._grad = g if tensor._grad is None else tensor._grad + g
        return
    owns = tensor._backend.owns
    if id(g) in handed or owns is None or not owns(g):
        # a .grad must own its buffer: no view of a seed, of another grad or of a broadcast
        g = tensor._backend.xp.asarray(g, copy=True)
    handed.add(id(g))
    if tensor._grad is None:
        tensor._grad = _make(g, tensor._backend)
    else:
        st = tensor._grad._st           # update in place for anyone holding .grad
        st.array = st.array + g
        st.version += 1


def numel(shape):
    return math.prod(shape)
