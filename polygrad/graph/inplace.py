"""Writes: views, aliases and in-place ops, held to one buffer model (docs/memory.md).

- Every tensor's ``Storage`` points at the record of its memory (``Storage.buf``); views and
  ``detach()`` share it. The record carries the version counter and the nodes that
  saved an alias of the memory for backward.
- ``write(target, prim, ...)`` runs op ``prim`` in place on ``target``. Before the memory
  changes, every node holding an alias of it gets a private copy of what it saved
  (copy-on-write, ``Storage.privatize``); then the new values are written into the memory,
  so that every alias sees them, as in torch, while backward sees the values it recorded.
- Recorded writes follow torch's graph semantics: the target's node becomes the op's node;
  a write into a view makes its base's node a ``CopySlices`` (the gradient flows to the
  written value through the view region and to the old base elsewhere), and every view of
  that base is re-derived from it.
- On backends whose arrays share memory between views (a declared ``shares_memory``:
  numpy, torch, cupy, array-api-strict) the memory does the aliasing. Elsewhere (dask, and
  third-party backends that declare nothing) it is simulated: a write builds new arrays,
  carries the values to the root array through the view ops' write-back rules
  (``Primitive.view``) and re-derives the other views from it.
- A write whose target overlaps itself (torch's ``has_internal_overlap``: a dimension of
  stride 0 and size above 1, as an expanded view has) is refused before anything changes;
  one into a part of an expanded view that does not overlap reaches the base and all its
  views, as in torch. Overlap is read from the strides the view chain would have
  (``strides.chain_strides``), the same on every backend.
"""

from __future__ import annotations

from ..base import grad_mode
from ..base.dtypes import as_dtype
from ..base.errors import BackendMismatchError
from ..primitives import PRIMITIVES
from ..primitives.indexing import is_basic
from ..primitives.raw import raw_namespace
from .engine import apply, forward_ad_state, node_class
from .node import AccumulateGrad, Node, Unsaved, ViewError
from .strides import chain_strides, has_internal_overlap
from .tensor import LEAF_INPLACE_MSG, Tensor

__all__ = ["write", "write_values", "fill", "FILL_NODES", "CopySlices", "chain_apply", "chain_scatter",
           "OVERLAP_MSG", "VIEW_OF_LEAF_MSG", "NO_GRAD_VIEW_MSG", "mark_multi_output",
           "raw_operand"]

_mode = grad_mode._mode

OVERLAP_MSG = ("unsupported operation: more than one element of the written-to tensor refers "
               "to a single memory location (an expand()ed or broadcast view). Please clone() "
               "the tensor before performing the operation.")
VIEW_OF_LEAF_MSG = ("a view of a leaf Variable that requires grad is being used in an in-place "
                    "operation. Wrap the update in `with polygrad.no_grad():`, or write into a "
                    "copy (x.clone()).")
MULTI_VIEW_MSG = (
    "Output {i} of {fn} is a view and is being modified inplace. This view is the output of a "
    "function that returns multiple views. Such functions do not allow the output views to "
    "be modified inplace. You should replace the inplace operation by an out-of-place one.")
NO_GRAD_VIEW_MSG = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
    "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify "
    "your code by moving both the view and the inplace either both inside the no_grad block "
    "(if you don't want the inplace to be tracked) or both outside (if you want the inplace "
    "to be tracked).")


# -- view chains: the view ops that derive a view's array from its base's ------------------

def _call(ns, prim, x, args, opts):
    return getattr(ns, prim.name)(x, *args, **opts)


def chain_apply(ns, x, chain):
    """The view of ``x`` that ``chain`` (``((prim, args, opts), ...)``) describes."""
    for prim, args, opts in chain:
        x = _call(ns, prim, x, args, opts)
    return x


def chain_scatter(ns, base, value, chain):
    """``base`` with the region ``chain`` views replaced by ``value`` (out of place).

    A step that is not one to one (expand) is told which of its elements the region covers
    (``written``, booleans scattered the same way); the region must not cover one element
    of ``base`` twice unless ``value`` is boolean (then the copies are or-ed)."""
    parents = [base]
    for prim, args, opts in chain[:-1]:
        parents.append(_call(ns, prim, parents[-1], args, opts))
    region = value
    for i in range(len(chain) - 1, -1, -1):
        prim, args, opts = chain[i]
        if getattr(prim.view, "wants_written", False):
            out = parents[i + 1] if i + 1 < len(parents) else region
            written = chain_scatter(ns, ns.zeros_like(out, dtype=ns.bool),
                                    ns.ones_like(region, dtype=ns.bool), chain[i + 1:])
            value = prim.view(ns, parents[i], value, *args, written=written, **opts)
        else:
            value = prim.view(ns, parents[i], value, *args, **opts)
    return value


def _expanded(target):
    """``(root, chain)``: the Storage of ``target``'s base and the view ops from it, where
    they pass through an expand, else None: then ``target`` may overlap itself, and its
    array is read-only on numpy and strict. Simulated memory (dask) knows the chain of every
    alias (``detach()`` too); real memory, that of autograd views (``Tensor._view``)."""
    if target._backend.shares_memory is None:
        view = target._st.view
    else:
        view = target._view
        view = None if view is None else (view[0]._st, view[1])
    if view is None:
        return None
    for prim, _, _ in view[1]:
        if getattr(prim.view, "wants_written", False):
            return view
    return None


def _overlaps(view, key=None):
    """Whether two elements of the view ``view`` (``(root, chain)``), or of its region
    ``key``, are one memory location (torch's ``has_internal_overlap``, from the strides
    the chain would have)."""
    root, chain = view
    if key is not None:
        chain = chain + ((_GETITEM, (), {"key": key}),)
    layout = chain_strides(tuple(root.array.shape), chain)
    return layout is not None and has_internal_overlap(*layout)


class CopySlices(Node):
    """The node of a base written through one of its views (torch's ``CopySlices``): the
    gradient of the written value is the view region of ``g``; the old base gets ``g`` with
    that region zeroed."""

    __slots__ = ("chain",)

    def __init__(self, base_node, value_node, chain, backend):
        self._init_own((base_node, value_node), backend)
        self.chain = chain

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        if ns is None:
            ns = raw_namespace(self.backend)
        gv = chain_apply(ns, g, self.chain)
        gb = chain_scatter(ns, g, ns.zeros_like(gv), self.chain) \
            if self.parents[0] is not None else None
        return gb, gv


class _Fill(Node):
    """The node of ``fill_``/``zero_`` on a tensor in a graph: the old values get a zero
    gradient (torch keeps the graph, so earlier leaves get zeros, not None)."""

    __slots__ = ()

    def __init__(self, parent, backend):
        self._init_own((parent,), backend)

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        ns = raw_namespace(self.backend) if ns is None else ns
        return (ns.zeros_like(g),)


# the node of each filling method, named as torch names it (``h.normal_()`` in a graph is a
# NormalBackward0 whose input gets a zero gradient)
FILL_NODES = {method: type(f"{name}Backward0", (_Fill,), {"__slots__": ()}) for method, name in (
    ("fill_", "Fill"), ("zero_", "Zero"), ("normal_", "Normal"), ("uniform_", "Uniform"),
    ("bernoulli_", "Bernoulli"), ("random_", "Random"), ("exponential_", "Exponential"))}


def _chain_node(base, chain):
    """The graph node of ``chain`` applied to ``base`` as it is now (a view re-derived
    after its base was written)."""
    node = base._node
    if node is None:
        return None
    backend = base._backend
    arr = base._st.array
    for prim, args, opts in chain:
        xs = [Unsaved(tuple(arr.shape), arr.dtype), *args]
        node = node_class(prim)(prim, opts, xs, None, [node] + [None] * len(args), backend,
                                [None] * (len(xs) + 1))
        arr = backend.op(prim.name, prim.impl)(arr, *args, **opts)
    return node


_GETITEM = PRIMITIVES["getitem"]
_SETITEM = PRIMITIVES["setitem"]
_NUMBER = (bool, int, float, complex)


# -- the memory ---------------------------------------------------------------------------

def write_values(target, values):
    """Write the raw array ``values`` (target's shape) into ``target``'s memory: copy-on-write
    for the nodes holding it, then a write every alias sees; bumps the version."""
    st = target._st
    backend = target._backend
    arr = st.array
    if values.dtype != arr.dtype:
        values = backend.xp.astype(values, arr.dtype)
    if backend.shares_memory is not None:
        buf = st.buf
        if buf.saved:
            buf.privatize()
        expanded = _expanded(target)
        if expanded is None:
            _setitem_all(_writable(st, backend), values)
        elif not _empty(values):        # through the base: the expanded array may be read-only
            root = _writable(expanded[0], backend)
            _setitem_all(root, chain_scatter(raw_namespace(backend), root, values, expanded[1]))
        buf.version += 1
        return
    _assign(st, values, backend)
    st.buf.version += 1


def _fill_overlapping(target, view, value, key=None):
    """``fill_``/``zero_`` of a view that overlaps itself, or of its elements at ``key``
    (torch allows it: every copy of an element gets the same number): each element of the
    base that they cover becomes ``value``."""
    backend = target._backend
    raw = raw_namespace(backend)
    st = target._st
    root_st, chain = view
    root = root_st.array
    selected = raw.ones_like(st.array, dtype=raw.bool) if key is None else \
        raw.setitem(raw.zeros_like(st.array, dtype=raw.bool), True, key=key)
    covered = chain_scatter(raw, raw.zeros_like(root, dtype=raw.bool), selected, chain)
    new = raw.where(covered, raw.full_like(root, value), root)
    buf = st.buf
    if backend.shares_memory is not None:
        if buf.saved:
            buf.privatize()
        _setitem_all(_writable(root_st, backend), new)
    else:
        _assign(root_st, new, backend)
    buf.version += 1


def _empty(arr):
    shape = getattr(arr, "shape", ())
    return any(n == 0 for n in shape)


def _writable(st, backend):
    """The tensor's array, made an array where the backend returned an immutable scalar
    (numpy's 0-d results): nothing else can alias a scalar, so it is replaced."""
    arr = st.array
    if not hasattr(arr, "__setitem__"):
        arr = st.array = backend.xp.asarray(arr, copy=True)
    return arr


def _setitem_all(arr, values):
    if _empty(arr):
        return                      # nothing to write (an empty expanded view is fine)
    try:
        arr[...] = values
    except ValueError as exc:                   # numpy: a read-only (broadcast) view
        if "read-only" in str(exc):
            raise RuntimeError(OVERLAP_MSG) from None
        raise


def _assign(st, values, backend):
    """Simulated aliasing: ``st`` gets ``values`` as a new array, carried to its root and
    re-derived in every other view of the root."""
    raw = raw_namespace(backend)
    root = st
    if st.view is not None:       # the root's new array first: it may refuse (an expanded view)
        root, chain = st.view
        root.array = chain_scatter(raw, root.array, values, chain) if chain else values
    st.array = values
    for ref in list(root.dependents or ()):
        d = ref()
        if d is None:
            root.dependents.remove(ref)
        elif d is not st:
            d.array = chain_apply(raw, root.array, d.view[1])


# -- in-place ops -----------------------------------------------------------------------

def _recorded(target, others):
    return _mode.enabled and (target._node is not None or any(
        isinstance(o, Tensor) and o._node is not None for o in others))


def _check_recordable(target):
    node = target._node
    view = target._view
    if type(node) is AccumulateGrad:
        if view is not None and view[2] is True:
            raise RuntimeError(NO_GRAD_VIEW_MSG)
        raise RuntimeError(LEAF_INPLACE_MSG)
    if view is not None:
        base, made = view[0], view[2]
        if type(base._node) is AccumulateGrad:
            raise RuntimeError(VIEW_OF_LEAF_MSG)
        if made is True:
            raise RuntimeError(NO_GRAD_VIEW_MSG)
        if made:                                     # one of several views (split ...)
            raise RuntimeError(MULTI_VIEW_MSG.format(i=made[1], fn=made[0]))


def mark_multi_output(views, fn):
    """``views`` are the outputs of one call that returns several views (split, chunk,
    unbind): made with grad mode on, none of them may be written in place while autograd
    records (torch's rule), and each becomes unusable once its base is written."""
    if not _mode.enabled:
        return views
    for i, v in enumerate(views):
        view = v._view
        if view is not None and not view[2]:
            v._view = (view[0], view[1], (fn, i))
    return views


def write(target, prim, others=(), opts=None, iop=None):
    """Run primitive ``prim`` in place on ``target`` (``target = prim(target, *others)``).

    ``iop(array, *others)``: the backend's own in-place operator for the untracked path
    (``+=``), used where the memory is real; otherwise the op runs out of place and its
    result is written back.
    """
    opts = {} if opts is None else opts
    dual = forward_ad_state.level and (target._tangent is not None or any(
        isinstance(o, Tensor) and o._tangent is not None for o in others))
    recorded = dual or _recorded(target, others)
    if recorded and _mode.enabled:
        _check_recordable(target)
    expanded = _expanded(target)
    if expanded is not None:
        if _overlaps(expanded):
            key = opts.get("key") if prim is _SETITEM else None
            if key is not None and is_basic(key) and not _overlaps(expanded, key):
                # torch's x[key] = v writes into the view x[key] (its copy_), which does not
                # overlap: so does polygrad, with torch's graph (CopySlices over that region)
                write(apply(_GETITEM, target, key=key), prim, others, {"key": Ellipsis})
                return target
            if key is not None and not is_basic(key) and isinstance(others[0], _NUMBER):
                # index_put_/masked_fill_ of one number: torch allows it (every copy of an
                # element gets the number) and, recorded, refuses the backward through it
                _fill_overlapping(target, expanded, others[0], key)
                if recorded:
                    _rebind(target, ViewError(target._backend, OVERLAP_MSG), None)
                _poison_no_grad_views(target)
                return target
            raise RuntimeError(OVERLAP_MSG)
    if recorded:
        return _write_recorded(target, prim, others, opts)
    backend = target._backend
    st = target._st
    if iop is not None and backend.shares_memory is not None:
        arrays = [raw_operand(o, target) for o in others]
        buf = st.buf
        if buf.saved:
            buf.privatize()
        arr = _writable(st, backend)
        if _empty(arr):
            buf.version += 1
            _poison_no_grad_views(target)
            return target
        if expanded is not None:        # the array may be read-only: the op runs on a copy,
            arr = backend.xp.asarray(arr, copy=True)    # written back through the base
        try:
            result = iop(arr, *arrays)
        except (TypeError, ValueError) as exc:
            if "read-only" in str(exc):
                raise RuntimeError(OVERLAP_MSG) from None
            result = None       # a cast the array library refuses in place: the general path
        if result is not None:
            if expanded is not None:
                write_values(target, result)
            else:
                if result is not arr:
                    _setitem_all(arr, result)
                buf.version += 1
            _poison_no_grad_views(target)
            return target
    with grad_mode.no_grad():
        out = apply(prim, target, *others, **opts)
    _check_result(target, out)
    write_values(target, out._st.array)
    _poison_no_grad_views(target)
    return target


def raw_operand(value, like):
    """``value``'s raw array for an op on ``like`` (a Tensor of another backend raises)."""
    if isinstance(value, Tensor):
        if value._backend is not like._backend:
            raise BackendMismatchError(
                f"got tensors from two backends, {like.backend!r} and {value.backend!r}. Move "
                f"one first, e.g. x.to({like.backend!r}); polygrad never moves data silently.")
        return value._st.array
    return value


def _check_result(target, out):
    if tuple(out.shape) != tuple(target.shape):
        raise RuntimeError(f"output with shape {list(target.shape)} doesn't match the "
                           f"broadcast shape {list(out.shape)}")
    dt, odt = target.dtype, out.dtype
    if dt != odt and _kind_rank(odt) > _kind_rank(dt):
        raise RuntimeError(f"result type {odt.name} can't be cast to the desired output type "
                           f"{dt.name}; convert the tensor first, e.g. "
                           f"x = x.astype(polygrad.{odt.name})")


def _kind_rank(dt):
    dt = as_dtype(dt)
    if dt.is_complex:
        return 3
    if dt.is_floating_point:
        return 2
    return 0 if dt.name == "bool" else 1


def _write_recorded(target, prim, others, opts):
    out = apply(prim, target, *others, **opts)
    _check_result(target, out)
    if out.dtype != target.dtype:
        out = apply(PRIMITIVES["astype"], out, target._backend.native_dtype(target.dtype))
    write_values(target, out._st.array)
    _rebind(target, out._node, out._tangent)
    _poison_no_grad_views(target)
    return target


def _rebind(target, node, tangent):
    """``target`` now holds the result of ``node``: move its graph (and, for a view, its
    base's) to the new node, and re-derive the other views of the base."""
    view = target._view
    old = target._node
    if old is not None and old.retain is not None and node is not None and \
            old.retain() is target:
        node.retain, old.retain = old.retain, None
    if view is None:
        target._node = node
        target._tangent = tangent
        base = target
    else:
        base, chain = view[0], view[1]
        base._node = CopySlices(base._node, node, chain, target._backend) \
            if node is not None or base._node is not None else None
        target._node = _chain_node(base, chain) if node is not None else None
        target._tangent = tangent
    _refresh_views(base, skip=target)


def _refresh_views(base, skip):
    views = base._st.buf.views
    if not views:
        return
    for ref in list(views):
        v = ref()
        if v is None:
            views.remove(ref)
            continue
        if v is skip or v._view is None or v._view[0] is not base:
            continue
        if v._view[2]:      # made under no_grad: _poison_no_grad_views
            continue
        v._node = _chain_node(base, v._view[1])


def _poison_no_grad_views(target):
    """After any write: views made under no_grad of a base that requires grad can no longer
    be used in grad mode (torch raises then: which graph they belong to is ambiguous)."""
    views = target._st.buf.views
    if not views:
        return
    for ref in views:
        v = ref()
        if v is None or v._view is None:
            continue
        base, made = v._view[0], v._view[2]
        if made and base._node is not None:
            v._node = ViewError(v._backend) if made is True else \
                ViewError(v._backend, ViewError.MULTI_MSG.format(i=made[1], fn=made[0]))


def fill(target, value, method):
    """Tensor method ``method`` (``fill_``, ``zero_``, ``normal_`` ... a key of FILL_NODES):
    every element becomes ``value`` (a number, or a raw array of the target's shape); in a
    graph, the old values get a zero gradient."""
    recorded = _mode.enabled and target._node is not None
    if recorded:
        _check_recordable(target)
    expanded = _expanded(target)
    if expanded is not None and _overlaps(expanded):
        if hasattr(value, "shape"):        # random fills: torch refuses them
            raise RuntimeError(OVERLAP_MSG)
        _fill_overlapping(target, expanded, value)
        if recorded:        # torch records the fill, and refuses the backward through it
            _rebind(target, ViewError(target._backend, OVERLAP_MSG), None)
        _poison_no_grad_views(target)
        return target
    backend = target._backend
    arr = target._st.array
    values = value if hasattr(value, "shape") else backend.xp.full(
        tuple(arr.shape), value, dtype=arr.dtype, device=getattr(arr, "device", None))
    write_values(target, values)
    if recorded:
        _rebind(target, FILL_NODES[method](target._node, backend), None)
    _poison_no_grad_views(target)
    return target
