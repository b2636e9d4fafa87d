"""The engine: ``apply`` (run one primitive on Tensors and record its node) and the
backward pass (a topological order and a reverse loop). It is backend-blind: forward work
is ``backend.op(name)``, backward work is the primitive's rule on a namespace.

Extension points, owned here and installed by the layers above through
``set_extension(name, value)`` (which returns the previous value, to restore on exit):

- ``observer(run, prim, args, opts)``: wraps each forward op (the profiler's op rows);
- ``kernel_clock(fn, arrays, opts, backend)``: runs the backend call inside an op (the
  profiler splits kernel time from polygrad's own);
- ``node_observer(run, node, g, ns)``: wraps each backward step (rows such as
  ``DivBackward0``); ``run(node, g, ns)`` does the step;
- ``anomaly``: an object with ``on_create(node)`` and ``check(node, grads)`` (anomaly mode);
- ``saved_hooks``: ``(pack, unpack)``: a recorded node's saved values go through
  ``pack(tensor)`` and come back through ``unpack(packed)`` when backward reads them
  (``polygrad.autograd.graph.saved_tensors_hooks``);
- ``opaque(reason)``: told when polygrad computes values outside ``apply`` (random draws,
  outputs whose shape depends on values: ``nonzero``, ``unique``), which a recorded program
  could not repeat (``polygrad.compile``'s tracer); see ``report_opaque``.

They are per thread, as grad mode is (and as torch's anomaly mode is): what one thread
installs never slows or observes another. Forward-mode AD's dual level is process-wide,
as torch's is (``forward_ad_state``, set by ``polygrad.autograd.forward_ad``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref

from ..base import grad_mode
from ..base.errors import BackendMismatchError, UnsupportedOperation
from ..plugins.host import owner_of
from ..primitives.indexing import is_basic
from .node import FREED_MSG, AccumulateGrad, Node, Storage, Unsaved, ViewError, release_holds
from .strides import chain_strides, reshape_strides
from .tensor import Tensor, share, wrap

__all__ = ["apply", "run_backward", "toposort", "set_extension", "get_extension",
           "forward_ad_state", "EXTENSION_POINTS", "node_class", "RecordedNode",
           "report_opaque"]

_mode = grad_mode._mode

EXTENSION_POINTS = ("observer", "kernel_clock", "node_observer", "anomaly", "saved_hooks",
                    "opaque")


class _Extensions(threading.local):
    """What the layers above have hooked into the engine, in this thread."""

    observer = None
    kernel_clock = None
    node_observer = None
    anomaly = None
    saved_hooks = None      # (pack, unpack) of the innermost saved_tensors_hooks
    opaque = None
    active = False          # any of the above set: the forward hot path reads only this


_ext = _Extensions()


def set_extension(name, value):
    """Install ``value`` as extension point ``name`` in this thread (None removes it) and
    return what was there, so that a context manager can restore it on exit."""
    if name not in EXTENSION_POINTS:
        raise ValueError(f"unknown extension point {name!r}; the engine has "
                         f"{', '.join(EXTENSION_POINTS)}")
    previous = getattr(_ext, name)
    setattr(_ext, name, value)
    _ext.active = any(getattr(_ext, n) is not None for n in EXTENSION_POINTS)
    return previous


def get_extension(name):
    """What is installed as extension point ``name`` in this thread (or None)."""
    if name not in EXTENSION_POINTS:
        raise ValueError(f"unknown extension point {name!r}")
    return getattr(_ext, name)


class _ForwardAD:
    """Forward-mode AD's state: ``level`` > 0 while a dual level is open, ``ns`` the
    differentiable namespace JVP rules run on then, ``live`` weakrefs to what holds a
    tangent of the open level (cleared on exit)."""

    level = 0
    ns = None
    live = None


forward_ad_state = _ForwardAD()


def report_opaque(reason):
    """Called where polygrad computes values outside ``apply``; tells the ``opaque``
    extension (if one is installed in this thread) why."""
    if _ext.active and _ext.opaque is not None:
        _ext.opaque(reason)


# -- forward: run a primitive and record it -----------------------------------------------

def apply(prim, *args, **opts):
    """Run primitive ``prim`` on tensors (and Python scalars) and record a node if needed."""
    if _ext.active:
        ext = _ext
        if ext.observer is not None:
            return ext.observer(lambda p, a, o: _apply(p, a, o, ext), prim, args, opts)
        return _apply(prim, args, opts, ext)
    return _apply(prim, args, opts)


def _apply(prim, args, opts, ext=None):
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
            b = st._buf                       # the memory's record (Storage.buf), inlined
            stores.append(st if b is None else b)
            node = a._node
            parents.append(node)
            if node is not None:
                track = True
                if node.__class__ is ViewError and _mode.enabled:
                    raise RuntimeError(node.msg)
            continue
        if a is None or isinstance(a, (bool, int, float, complex)):
            arrays.append(a)
        else:
            owner = owner_of_raw(a, prim)
            if owner is not None:
                if backend is None:
                    backend, set_by_raw = owner, a
                elif owner is not backend and not _claims(backend, a):
                    _mismatch(prim, backend, owner)
            arrays.append(a)      # a raw array, or shapes, axes, dtypes: passed untouched
        stores.append(None)
        parents.append(None)
    if backend is None:
        raise TypeError(f"{prim.name}() needs at least one polygrad Tensor or array argument")
    fn = backend._ops.get(prim.name)
    if fn is None:
        fn = backend.op(prim.name, prim.impl)
    clock = None if ext is None else ext.kernel_clock
    try:
        if clock is None:
            out_array = fn(*arrays, **opts)
        else:
            out_array = clock(fn, arrays, opts, backend)
    except Exception as exc:
        raise _diagnose(prim, args, exc) from exc
    if prim.may_alias and arrays and _aliases(backend, out_array, arrays[0]):
        out_array = backend.xp.asarray(out_array, copy=True)
    st = Storage(out_array)
    node = None
    if track and prim.vjp is not None and _mode.enabled:
        stores.append(st)                     # a new Storage is its own record
        cls = prim.node_cls or node_class(prim)
        if prim.name_for is not None:           # getitem: Select/Slice/Index... as torch names
            cls = _named_class(prim.name_for(opts))
        node = cls(prim, opts, arrays, out_array, parents, backend, stores)
        if ext is not None:
            if ext.anomaly is not None:
                ext.anomaly.on_create(node)
            if ext.saved_hooks is not None:
                _pack(node, ext.saved_hooks)
    out = share(st, backend, node)
    if prim.view is not None:
        _make_view(prim, args, opts, out)
    if forward_ad_state.level:
        _forward_tangent(prim, args, opts, out)
    return out


def _make_view(prim, args, opts, out):
    """``out`` of a view op: where it is a view (torch's view ops; on backends with real
    views, where the memory is shared), it joins its input's memory record (``Storage.buf``) and remembers
    its base and the view ops leading there (``Tensor._view``: base, chain, made without
    grad), for writes through it (``polygrad.graph.inplace``)."""
    x = args[0]
    if not isinstance(x, Tensor):
        return
    backend = x._backend
    xst, st = x._st, out._st
    entry = (prim, args[1:], opts)
    if backend.shares_memory is not None:
        if not hasattr(xst.array, "__setitem__"):
            # an immutable scalar (numpy's 0-d results): nothing aliases it yet, so it becomes
            # a 0-d array, and the view is taken of that
            xst.array = backend.xp.asarray(xst.array)
            st.array = backend.op(prim.name, prim.impl)(xst.array, *args[1:], **opts)
        if not backend.shares_memory(st.array, xst.array):
            return                 # the backend copied (reshape of a non-contiguous input)
    elif prim.name == "getitem" and not is_basic(opts.get("key", args[1:2])):
        return                     # integer-array and boolean keys make new arrays
    else:
        if prim.name == "reshape" and xst.view is not None:    # a view only where torch's
            root, chain = xst.view                             # strides allow one
            layout = chain_strides(tuple(root.array.shape), chain)
            if layout is None or reshape_strides(*layout, tuple(st.array.shape)) is None:
                return
        st.follow(xst, entry)
    buf = st.buf = xst.buf
    base = x._view
    without_grad = not _mode.enabled
    out._view = (x, (entry,), without_grad) if base is None else \
        (base[0], base[1] + (entry,), without_grad or base[2])
    if without_grad and out._node is None and (x._node is not None or base is not None and
                                               base[0]._node is not None):
        out._node = AccumulateGrad(out)      # as torch: a view made under no_grad of a
                                             # tensor that requires grad requires grad too
    views = buf.views
    if views is None:
        buf.views = [weakref.ref(out)]
        return
    if len(views) > 16:          # views made and dropped every step (x @ w.T): drop the dead
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(out))


def _aliases(backend, out, x):
    if out is x:
        return True
    sm = backend.shares_memory
    return sm is not None and hasattr(x, "shape") and sm(out, x)


def _forward_tangent(prim, args, opts, out):
    tangents = [getattr(a, "_tangent", None) for a in args]
    if all(t is None for t in tangents) or prim.jvp is None:
        return
    state = forward_ad_state
    ns = state.ns
    xs = [a for a in args]
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


def owner_of_raw(obj, prim=None):
    """The backend owning a raw array argument, or None for shapes, axes and options."""
    backend = owner_of(obj)
    if backend is None and isinstance(obj, (list, tuple)) and obj and \
            all(isinstance(o, Tensor) for o in obj):
        raise TypeError(f"{getattr(prim, 'name', 'op')}() takes arrays as separate "
                        f"arguments, not a list of Tensors")
    return backend


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


# -- node classes, saved values ------------------------------------------------------------

class RecordedNode(Node):
    """A recorded op's node. Its saved values read as torch's do: ``_saved_self``,
    ``_saved_other`` (also ``_saved_mat2``, ``_saved_exponent``), ``_saved_result`` and the
    op's options (``_saved_dim``, ``_saved_keepdim`` ...), as Tensors."""

    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith("_saved_"):
            return _saved_value(self, name[7:])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_saved_names(self)))


_INPUTS = {"self": 0, "input": 0, "other": 1, "mat2": 1, "exponent": 1, "tensors": 0}
_OPTIONS = {"dim": "axis", "keepdim": "keepdims"}


def _saved_value(node, key):
    saved = node.saved
    if saved is None:
        raise RuntimeError(FREED_MSG)
    xs, out = saved
    if key == "result":
        if out is None:
            raise AttributeError(f"{type(node).__name__} does not save its result")
        return wrap(out, node.backend)
    i = _INPUTS.get(key)
    if i is not None and i < len(xs):
        x = xs[i]
        if hasattr(x, "shape") and type(x) is not Unsaved:
            return wrap(x, node.backend) if not hasattr(x, "_st") else x
        if isinstance(x, (bool, int, float, complex)):   # a Python scalar operand: a 0-d
            return wrap(node.backend.xp.asarray(x), node.backend)     # tensor, as torch's
    opts = node.opts or {}
    opt = _OPTIONS.get(key, key)
    if opt in opts:
        return opts[opt]
    raise AttributeError(f"{type(node).__name__} saves no {key!r}")


def _saved_names(node):
    if node.saved is None:
        return []
    xs, out = node.saved
    names = [f"_saved_{k}" for k, i in (("self", 0), ("other", 1)) if i < len(xs) and
             xs[i] is not None and type(xs[i]) is not Unsaved]
    if out is not None:
        names.append("_saved_result")
    names += [f"_saved_{k}" for k, opt in _OPTIONS.items() if opt in (node.opts or {})]
    return names


def node_class(prim):
    """The Node subclass of a primitive (made once, cached on the row), so that nodes print
    as torch's do (``MulBackward0``)."""
    cls = prim.node_cls
    if cls is None:
        cls = prim.node_cls = _named_class(prim.node_name)
    return cls


_CLASSES = {}


def _named_class(name):
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = type(name, (RecordedNode,), {"__slots__": ()})
    return cls


class _Packed:
    """Saved values that went through ``saved_tensors_hooks``: unpacked each time backward
    reads them (``xs, out = node.saved``); ``[0]`` gives the inputs' shapes and dtypes."""

    __slots__ = ("packed", "unpack", "meta", "backend")

    def __init__(self, packed, unpack, meta, backend):
        self.packed, self.unpack, self.meta, self.backend = packed, unpack, meta, backend

    def _value(self, p):
        if not isinstance(p, _Box):
            return p
        t = self.unpack(p.obj)
        if not isinstance(t, Tensor):
            raise TypeError(f"the unpack hook of saved_tensors_hooks returned "
                            f"{type(t).__name__}; it must return the Tensor that was packed")
        return t._st.array

    def __iter__(self):
        xs, out = self.packed
        return iter(([self._value(x) for x in xs], self._value(out)))

    def __getitem__(self, i):
        return self.meta if i == 0 else list(self)[i]


class _Box:
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def _pack(node, hooks):
    """Run the pack hook on what ``node`` saved; the node lets go of the memory (the hook
    owns the saved values now, as in torch)."""
    pack, unpack = hooks
    if pack is None:                    # disable_saved_tensors_hooks: saved as usual
        return
    xs, out = node.saved
    backend = node.backend
    stores = node.stores

    def box(x):
        if x is None or type(x) is Unsaved or not hasattr(x, "shape"):
            return x
        return _Box(pack(wrap(x, backend)))

    meta = [Unsaved(tuple(x.shape), x.dtype) if hasattr(x, "shape") and type(x) is not Unsaved
            else x for x in xs]
    raw = node.prim.nondiff_args
    packed_xs = [x if i in raw else box(x) for i, x in enumerate(xs)]
    node.saved = _Packed((packed_xs, box(out)), unpack, meta, backend)
    node.stores = ()
    release_holds(stores)


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
                 only=None, order=None, ns=None):
    """The backward pass: propagate ``seeds`` from ``roots`` in reverse topological order.

    ``ns``: the differentiable namespace the rules run on with ``create_graph`` (callers in
    the layers above pass ``polygrad.ops``); without it, each node's raw namespace.
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
    ext = _ext if _ext.active else None
    node_observer = None if ext is None else ext.node_observer
    anomaly = None if ext is None else ext.anomaly
    if create_graph and ns is None:
        raise ValueError("run_backward(create_graph=True) needs ns, the differentiable namespace")
    global _double
    _double = _double or create_graph
    with _quiet(roots) if _double else _LOUD, grad_mode.set_grad_enabled(create_graph):
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
            if node_observer is not None:
                grads_in = node_observer(_step, node, g, ns if create_graph else None)
            elif create_graph:            # saved values as graph-connected Tensors
                grads_in = _step(node, g, ns)
            else:
                grads_in = node.apply_vjp(g, False)
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


_LOUD = contextlib.nullcontext()     # nothing to silence (reusable, reentrant)
#: a create_graph pass has run in this process: its graphs hold divisions by 0 in branches a
#: ``where`` drops, which later passes (the second backward) run through, so from then on
#: every pass is quiet; a process that never differentiates twice pays nothing
_double = False


def _quiet(roots):
    """The root's backend's ``quiet()`` (floating-point warnings off), once create_graph has
    been used: rules differentiated again divide by 0 in the branches a ``where`` drops, so
    that the second derivative is nan where torch's is. Until then a pass is not wrapped (a
    numpy errstate costs ~1 us and slows every ufunc inside it); first-order rules divide
    safely."""
    backend = getattr(roots[0], "backend", None) if roots else None
    quiet = getattr(backend, "quiet", None)
    return _LOUD if quiet is None else quiet()


def _step(node, g, ns):
    """One backward step with create_graph: the rule runs on the differentiable namespace,
    on the saved values as Tensors connected to the graph (so the result is differentiable)."""
    if ns is None:
        return node.apply_vjp(g, False)
    saved = None if node.prim is None or node.saved is None else _snapshots(node)
    return node.apply_vjp(g, True, ns=ns, saved=saved)


def _snapshots(node):
    """Tensors for a node's saved values, connected to the graph (for create_graph)."""
    xs, out = node.saved
    tangents = node.tangents or (None,) * (len(xs) + 1)
    raw = node.prim.nondiff_args      # index arrays and the like stay raw
    snaps = tuple(
        wrap(x, node.backend, p, tangents[i])
        if hasattr(x, "shape") and i not in raw and type(x) is not Unsaved else x
        for i, (x, p) in enumerate(zip(xs, node.parents)))
    if out is None:
        return snaps, out
    return snaps, wrap(out, node.backend, node, tangents[-1])


def _run_hooks(node, g, create_graph):
    for hook in list(node.hooks):
        gt = g if create_graph else wrap(g, _backend_of_node(node))
        r = hook(gt)
        if r is not None:
            _check_hook_result(hook, gt, r)
            g = r if create_graph else r._st.array
    return g


def _check_hook_result(hook, gt, r):
    """A hook may replace a gradient only by one of the same shape, dtype and backend, as
    torch checks; raised before any ``.grad`` is written, so nothing changes."""
    name = getattr(hook, "__name__", type(hook).__name__)
    if not isinstance(r, Tensor):
        raise TypeError(f"hook {name!r} returned {type(r).__name__}; a gradient hook returns "
                        f"None (keep the gradient) or a Tensor of the gradient's shape "
                        f"{tuple(gt.shape)} and dtype {gt.dtype}, e.g. grad * 2")
    if r._backend is not gt._backend:
        raise RuntimeError(f"hook {name!r} has changed the backend of value (was "
                           f"{gt.backend!r} got {r.backend!r}); return r.to({gt.backend!r})")
    if tuple(r.shape) != tuple(gt.shape):
        raise RuntimeError(f"hook {name!r} has changed the size of value (was "
                           f"{tuple(gt.shape)} got {tuple(r.shape)})")
    if r.dtype != gt.dtype:
        raise RuntimeError(f"hook {name!r} has changed the type of value (was {gt.dtype} got "
                           f"{r.dtype}); return r.to({gt.dtype})")


def _backend_of_node(node):
    if type(node) is AccumulateGrad:
        return node.variable._backend
    return node.backend


# One lock for every leaf's ``.grad`` read-modify-write: concurrent backward() calls into
# a shared leaf accumulate exactly, as torch's do. Held only around the update itself (an
# uncontended acquire is ~50 ns; the backward pass and its kernels run outside it).
_grad_lock = threading.Lock()


def _accumulate(tensor, g, node, handed, create_graph):
    if tensor is None:
        return
    if create_graph:
        with _grad_lock:
            tensor._grad = g if tensor._grad is None else tensor._grad + g
        return
    owns = tensor._backend.owns
    if id(g) in handed or owns is None or not owns(g):
        # a .grad must own its buffer: no view of a seed, of another grad or of a broadcast
        g = tensor._backend.xp.asarray(g, copy=True)
    handed.add(id(g))
    with _grad_lock:
        if tensor._grad is None:
            tensor._grad = wrap(g, tensor._backend)
        else:
            st = tensor._grad._st           # update in place for anyone holding .grad
            st.array = st.array + g
            st.buf.version += 1
