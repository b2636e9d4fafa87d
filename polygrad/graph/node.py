"""Graph nodes and buffers: ``Storage`` (a buffer shared by aliases, with its version
counter and the count of nodes holding it), ``Node`` (one recorded op: its saved values
and the step that runs its VJP rule), ``AccumulateGrad`` (a leaf's node) and
``unbroadcast``, where broadcast gradients are summed back to an input's shape, once, for
every op.

This module knows the rule table and backends, not Tensors: ``polygrad.graph.tensor``
holds a Tensor's state, ``polygrad.graph.engine`` records nodes and walks them.
"""

from __future__ import annotations

import math
import weakref

from ..primitives.raw import raw_namespace

__all__ = ["release_holds", "Storage", "Unsaved", "Node", "AccumulateGrad", "ViewError", "Slots", "RemovableHandle",
           "unbroadcast", "FREED_MSG"]

FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


class Storage:
    """A tensor's array, and the record of the memory it lives in (``buf``).

    Tensors that are the same array (``detach()``) share one Storage. A view has a Storage
    of its own (its own array object) whose ``buf`` is its base's: the record of one piece
    of memory is the Storage that owns it (``st.buf is st``), shared by every alias of it,
    the base and its views of any depth. (``.data`` is an alias of the memory with a record
    of its own, as torch's is: writes through it bypass autograd's bookkeeping.)

    On the record: ``version`` is torch's ``_version`` counter; ``saved`` counts the values
    graph nodes hold for backward that alias this memory, and ``holders`` lists (weakly)
    the nodes holding them. A write into the memory first gives every holder a private copy
    of what it saved (``privatize``), then writes in place, so that every alias sees the
    write and backward sees the values it recorded. With no holder, nothing is copied.
    ``views``: weak references to the tensors that are autograd views of the memory.

    ``view``: on backends whose views are simulated (no ``shares_memory`` declared; dask),
    ``(root, chain)``: the root Storage and the view ops that derive this array from it,
    so that a write can be carried to the root and to the other views (``dependents``,
    weak references kept on the root). None on backends with real views.
    """

    __slots__ = ("array", "_buf", "version", "saved", "holders", "views", "view", "dependents",
                 "__weakref__")

    def __init__(self, array):
        self.array = array
        self._buf = None            # None: this Storage is the record (no self-reference, so
        self.version = 0            # that refcounting frees it and its array at once)
        self.saved = 0
        self.holders = None
        self.views = None
        self.view = None
        self.dependents = None

    @property
    def buf(self):
        """The record of this Storage's memory: itself, or (a view's) its base's."""
        b = self._buf
        return self if b is None else b

    @buf.setter
    def buf(self, record):
        self._buf = None if record is self else record

    def hold(self, ref):
        """Register ``ref`` (a weakref to a node that saved an alias of this memory).
        ``holders`` is None, one weakref (the common case) or a list of them."""
        self.saved += 1
        holders = self.holders
        if holders is None:
            self.holders = ref
        elif holders.__class__ is not list:
            self.holders = [holders, ref]
        else:
            holders.append(ref)
            if len(holders) > 2 * self.saved + 16:    # a graph kept alive for ever: drop the dead
                self.holders = [r for r in holders if _holding(r(), self)]

    def holder_refs(self):
        holders = self.holders
        return () if holders is None else holders if holders.__class__ is list else (holders,)

    def privatize(self):
        """Before a write: every node holding an alias of this memory gets its own copy."""
        holders = self.holder_refs()
        self.holders, self.saved = None, 0
        for ref in holders:
            node = ref()
            if node is not None:
                node.privatize(self)

    def follow(self, src, entry=None):
        """Simulated aliasing: make this array the view ``entry`` (``(prim, args, opts)``;
        None for the same array) of ``src``'s, derived from their root."""
        root, chain = src.view if src.view is not None else (src, ())
        self.view = (root, chain if entry is None else chain + (entry,))
        if root.dependents is None:
            root.dependents = []
        root.dependents.append(weakref.ref(self))


def release_holds(stores):
    """A holder lets go of the records it saved from (``Node.release``, a Function's ctx)."""
    for buf in stores or ():
        if buf is not None:
            buf.saved -= 1
            if buf.saved <= 0:
                buf.saved, buf.holders = 0, None


def _holding(node, buf):
    return node is not None and any(b is buf for b in node.stores or ())


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
    ``saved`` holds the inputs and output the rules need, ``stores`` the records (``st.buf``)
    of their memory (None for non-tensor inputs, last the output's): the node is one of
    each record's holders until ``release``, or until a write gives it a private copy.
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
        ref = None
        for buf in stores:
            if buf is not None:
                if ref is None:
                    ref = weakref.ref(self)
                if buf.holders is None:    # Storage.hold's common case, inlined (every op)
                    buf.holders = ref
                    buf.saved += 1
                else:
                    buf.hold(ref)

    def _init_own(self, parents, backend):
        """Initialise a node that runs a backward of its own (it overrides ``apply_vjp``; no
        primitive, nothing saved for the engine to release): CopySlices, custom Functions,
        compiled calls."""
        self.prim, self.opts, self.saved, self.stores = None, None, (), ()
        self.parents, self.backend = tuple(parents), backend
        self.hooks = self.retain = self.tangents = self.metadata = None

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
        return RemovableHandle(self.hooks, fn)

    def release(self):
        """Free the saved values (after a backward pass without retain_graph)."""
        saved = self.saved
        if saved is None:
            return
        self.saved = None
        self._unpin(saved)

    def _unpin(self, saved):
        stores, self.stores = self.stores, ()
        release_holds(stores)

    def privatize(self, buf):
        """Copy what this node saved from ``buf``'s memory, which is about to be written."""
        saved, stores = self.saved, self.stores
        if saved is None or not stores:
            return
        xs, out = saved
        copies = {}
        for i, b in enumerate(stores):
            if b is not buf:
                continue
            stores[i] = None
            arr = xs[i] if i < len(xs) else out
            new = copies.get(id(arr))
            if new is None:
                new = copies[id(arr)] = self.backend.xp.asarray(arr, copy=True)
            if i < len(xs):
                xs[i] = new
            else:
                out = new
        self.saved = (xs, out)

    def __del__(self):
        if self.stores and self.saved is not None:
            self._unpin(self.saved)

    def __repr__(self):
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    # -- the backward step --------------------------------------------------------------
    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        """Gradients for this node's inputs, from its primitive's VJP rule.

        Without ``ns`` the rule runs on the backend's raw namespace. ``ns`` runs it on
        another one: the engine passes the differentiable namespace (and, as ``saved``, the
        saved values as graph-connected Tensors) for ``create_graph``; functional's batched
        jacobian passes one whose arrays carry a batch axis.
        """
        if self.saved is None:
            raise RuntimeError(FREED_MSG)
        prim = self.prim
        xs, out = self.saved if saved is None else saved
        if ns is None:
            if create_graph:
                raise RuntimeError("create_graph=True needs the differentiable namespace: "
                                   "run backward through polygrad.autograd or Tensor.backward")
            ns = self.backend._ns or raw_namespace(self.backend)
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
                    grads[i] = gi = unbroadcast(ns, gi, shape)
                if gi.dtype != saved_xs[i].dtype:
                    cast = _in_dtype(ns, gi, saved_xs[i].dtype)
                    if cast is not gi:
                        grads = list(grads)
                        grads[i] = cast
        return grads


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


class Slots:
    """The gradients of a node with several outputs, by output index, summed slot-wise by
    the engine's ``+`` (custom Functions, compiled calls)."""

    __slots__ = ("grads",)

    def __init__(self, grads):
        self.grads = grads

    def __add__(self, other):
        merged = dict(self.grads)
        for k, g in other.grads.items():
            merged[k] = g if k not in merged else merged[k] + g
        return Slots(merged)


class ViewError(Node):
    """The node of a view that can no longer be used in grad mode because its base was
    written after it was made: a view made under no_grad, or one of several views one call
    returned (split, chunk, unbind). Any use of it in grad mode raises, as torch's does."""

    __slots__ = ("msg",)
    MSG = ("A view was created in no_grad mode and its base or another view of its base has "
           "been modified inplace with grad mode enabled. Given that this use case is "
           "ambiguous and error-prone, it is forbidden. You can clarify your code by moving "
           "both the view and the inplace either both inside the no_grad block (if you don't "
           "want the inplace to be tracked) or both outside (if you want the inplace to be "
           "tracked).")
    MULTI_MSG = ("Output {i} of {fn} is a view and its base or another view of its base has "
                 "been modified inplace. This view is the output of a function that returns "
                 "multiple views. Such functions do not allow the output views to be modified "
                 "inplace. You should replace the inplace operation by an out-of-place one.")

    def __init__(self, backend, msg=MSG):
        self._init_own((), backend)
        self.msg = msg

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        raise RuntimeError(self.msg)


class RemovableHandle:
    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _in_dtype(ns, g, dtype):
    """A real floating gradient in its input's real floating dtype, as torch casts them
    (a float32 leaf of ``x * y64`` gets a float32 gradient); others pass as they are."""
    st = getattr(g, "_st", None)        # a Tensor (create_graph): compare its raw dtype
    gdt = g.dtype if st is None else st.array.dtype
    if gdt == dtype or not (_real_floating(gdt) and _real_floating(dtype)):
        return g
    return ns.astype(g, dtype)


def _real_floating(dt):
    kind = getattr(dt, "kind", None)        # numpy and cupy dtypes
    if kind is not None:
        return kind == "f"
    return bool(getattr(dt, "is_floating_point", False))     # torch dtypes


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
