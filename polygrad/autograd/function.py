"""Custom ops: ``Function`` (forward/backward staticmethods, ``ctx``), ``once_differentiable``.

A Function's graph node is an ordinary engine ``Node`` whose ``apply_vjp`` calls the user's
``backward`` instead of a primitive's rule, so the engine's loop has no special case. Each
Function subclass gets its own node class, named as torch names it (``MyExpBackward``).
With ``create_graph=True`` the user's backward runs with recording on: written in polygrad
ops, it is differentiable again. A Function with several differentiable outputs gives
each output a small selector node that routes its gradient to the Function's node.
Forward mode uses the optional ``jvp(ctx, *tangents)`` staticmethod.
"""

from __future__ import annotations

import functools
import weakref

from .. import ops
from ..base import grad_mode
from ..graph.engine import forward_ad_state, get_extension
from ..graph.node import FREED_MSG, Node, Slots, release_holds, unbroadcast
from ..graph.tensor import Tensor, share, wrap

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` a Function's forward and backward share."""

    def __init__(self):
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._to_save = ()
        self._saved = ()            # after apply: (array, backend, node) per tensor
        self.stores = ()            # the memory records of what was saved (see _freeze)
        self._non_diff = ()
        self._freed = False
        self._for_forward = None    # save_for_forward's tensors, read by jvp as saved_tensors
        self._in_jvp = False

    def save_for_backward(self, *tensors):
        """Keep tensors (inputs or outputs of forward) for backward: ``ctx.saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save polygrad Tensors or None, but "
                                f"argument {i} is {type(t).__name__}; keep other values as "
                                f"attributes: ctx.value = ...")
        self._to_save = tensors

    def save_for_forward(self, *tensors):
        """Keep tensors for ``jvp`` (forward mode): inside it they are ``ctx.saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_forward expects all arguments to be tensors or None, "
                                f"but argument {i} is {type(t).__name__}; keep other values as "
                                f"attributes: ctx.value = ...")
        self._for_forward = tensors

    @property
    def saved_tensors(self):
        if self._in_jvp and self._for_forward is not None:
            return tuple(self._for_forward)
        if self._freed:
            raise RuntimeError(FREED_MSG)
        if self._to_save is not None:       # still inside forward
            return tuple(self._to_save)
        return tuple(None if s is None else wrap(s[0], s[1], s[2]) for s in self._saved)

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *tensors):
        """Outputs that never get a gradient (indices, masks): they do not require grad."""
        self._non_diff = tuple(tensors)

    def set_materialize_grads(self, value):
        """False: backward receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        """Accepted for torch compatibility: polygrad's in-place writes keep what backward
        saved (copy-on-write)."""

    def _freeze(self):
        """Hold what was saved, resolved to each tensor's graph node as it is now: a write
        into its memory first gives this ctx a private copy (copy-on-write)."""
        saved, stores = [], []
        ref = weakref.ref(self)
        for t in self._to_save:
            if t is None:
                saved.append(None)
                stores.append(None)
                continue
            buf = t._st.buf
            buf.hold(ref)
            saved.append((t._st.array, t._backend, t._node))
            stores.append(buf)
        self._saved, self._to_save, self.stores = tuple(saved), None, stores

    def privatize(self, buf):
        """Copy what was saved from ``buf``'s memory, which is about to be written."""
        saved = list(self._saved)
        for i, b in enumerate(self.stores):
            if b is buf and saved[i] is not None:
                array, backend, node = saved[i]
                saved[i] = (backend.xp.asarray(array, copy=True), backend, node)
                self.stores[i] = None
        self._saved = tuple(saved)

    def _free(self):
        release_holds(self.stores)
        self.stores = ()
        self._saved, self._freed = (), True


class FunctionNode(Node):
    """The graph node of one ``Function.apply`` call."""

    __slots__ = ("ctx", "fn", "n_args", "arg_pos", "in_meta", "out_meta", "slot")

    def __init__(self, fn, ctx, args, parents, backend):
        self._init_own(parents, backend)
        self.fn, self.ctx, self.n_args = fn, ctx, len(args)
        self.arg_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.in_meta = [tuple(args[i].shape) for i in self.arg_pos]
        self.out_meta = ()
        self.slot = None        # the output index when a single output carries this node

    @property
    def saved_tensors(self):
        return self.ctx.saved_tensors

    def release(self):
        self.ctx._free()

    def __del__(self):
        if not self.ctx._freed:
            self.ctx._free()

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        backend, name = self.backend, type(self).__name__
        slots = g.grads if isinstance(g, Slots) else {self.slot: g}
        grads = []
        for k, (shape, dtype, device) in enumerate(self.out_meta):
            gk = slots.get(k)
            if gk is None and self.ctx.materialize_grads:
                gk = ops.zeros(shape, dtype=dtype, device=device)
            elif gk is not None and not isinstance(gk, Tensor):
                gk = wrap(gk, backend)
            grads.append(gk)
        result = self.fn.backward(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) > self.n_args and all(r is None for r in result[self.n_args:]):
            result = result[:self.n_args]
        if len(result) != self.n_args:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {self.n_args}, got {len(result)})")
        out = []
        for parent, pos, shape in zip(self.parents, self.arg_pos, self.in_meta):
            r = result[pos]
            if r is None or parent is None:
                out.append(None)
                continue
            if not isinstance(r, Tensor):
                raise TypeError(f"function {name} returned a {type(r).__name__} as the gradient "
                                f"at index {pos}; return a polygrad Tensor (or None)")
            if tuple(r.shape) != shape:
                # torch's rule: the input's shape must expand to the gradient's (sum back)
                if not _broadcasts_to(shape, tuple(r.shape)):
                    raise RuntimeError(
                        f"Function {name} returned an invalid gradient at index {pos} - got "
                        f"{list(r.shape)} but expected shape compatible with {list(shape)}")
                r = unbroadcast(ops, r, shape)
            out.append(r if create_graph else r._st.array)
        return out


def _broadcasts_to(src, dst):
    if len(src) > len(dst):
        lead = src[:len(src) - len(dst)]
        if any(s != 1 for s in lead):
            return False
        src = src[len(src) - len(dst):]
    return all(s in (1, d) for s, d in zip(reversed(src), reversed(dst)))


class _OutputNode(Node):
    """Routes the gradient of output ``slot`` of a multi-output Function to its node."""

    __slots__ = ("slot",)

    def __init__(self, fn_node, slot):
        self._init_own((fn_node,), fn_node.backend)
        self.slot = slot

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        return (Slots({self.slot: g}),)


class Function:
    """Base class for custom differentiable ops.

    >>> import polygrad
    >>> class Exp(polygrad.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         out = x.exp()
    ...         ctx.save_for_backward(out)
    ...         return out
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         out, = ctx.saved_tensors
    ...         return g * out
    >>> x = polygrad.zeros(2, requires_grad=True)
    >>> Exp.apply(x).sum().backward(); x.grad
    tensor([1., 1.])
    """

    _node_cls = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls._node_cls = type(cls.__name__ + "Backward", (FunctionNode,), {"__slots__": ()})
        cls._out_cls = type(cls.__name__ + "Backward", (_OutputNode,), {"__slots__": ()})

    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} is a Function: call {type(self).__name__}"
                           f".apply(...) instead of instantiating it (its methods are static)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args) as a "
                                  "staticmethod")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads) as a "
                                  "staticmethod to be differentiated")

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD: define "
                                  "jvp(ctx, *tangents) as a staticmethod.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Optional (torch 2's style): with it, ``forward(*args)`` takes no ctx and this
        saves what backward and jvp need from the inputs and the output."""
        raise NotImplementedError("setup_context is not overridden: forward takes ctx")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls is Function:
            raise RuntimeError("call apply on a subclass of Function, not on Function itself")
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        state = forward_ad_state
        level, state.level = state.level, 0     # forward's own ops carry no tangents
        try:
            with grad_mode.no_grad():
                if cls.setup_context is Function.setup_context:
                    result = cls.forward(ctx, *args, **kwargs)
                else:                       # forward(*args), then setup_context (torch 2)
                    result = cls.forward(*args, **kwargs)
                    cls.setup_context(ctx, args, result)
        finally:
            state.level = level
        is_tuple = isinstance(result, tuple)
        outs = list(result) if is_tuple else [result]
        for k, o in enumerate(outs):
            if isinstance(o, Tensor) and any(o is a for a in args):
                outs[k] = share(o._st, o._backend)   # a new tensor, as torch does
        non_diff = {id(t) for t in ctx._non_diff}
        diff = [k for k, o in enumerate(outs) if isinstance(o, Tensor) and id(o) not in non_diff
                and (o.dtype.is_floating_point or o.dtype.is_complex)]
        tensor_args = [a for a in args if isinstance(a, Tensor)]
        if grad_mode.is_grad_enabled() and diff and any(ctx.needs_input_grad):
            node = cls._node_cls(cls, ctx, args, tuple(a._node for a in tensor_args),
                                 tensor_args[0]._backend)
            node.out_meta = tuple((tuple(o.shape), o.dtype, o.device) if isinstance(o, Tensor)
                                  else ((), None, None) for o in outs)
            if len(diff) == 1:
                node.slot = diff[0]
                outs[diff[0]]._node = node
            else:
                for k in diff:
                    outs[k]._node = cls._out_cls(node, k)
            anomaly = get_extension("anomaly")
            if anomaly is not None:
                anomaly.on_create(node)
        ctx._freeze()
        if level and any(a._tangent is not None for a in tensor_args):
            _forward_mode(cls, ctx, args, outs, diff, state)
        return tuple(outs) if is_tuple else outs[0]


def _forward_mode(cls, ctx, args, outs, diff, state):
    tangents = [None if not isinstance(a, Tensor)
                else a._tangent if a._tangent is not None else ops.zeros_like(a)
                for a in args]
    level, state.level = state.level, 0
    ctx._in_jvp = True
    try:
        ts = cls.jvp(ctx, *tangents)
    finally:
        state.level = level
        ctx._in_jvp = False
    if not isinstance(ts, tuple):
        ts = (ts,)
    if len(ts) != len(outs):
        raise RuntimeError(f"function {cls.__name__}.jvp returned an incorrect number of "
                           f"tangents (expected {len(outs)}, got {len(ts)})")
    for k in diff:
        if ts[k] is not None:
            outs[k]._tangent = ts[k]
            if state.live is not None:
                state.live.append(weakref.ref(outs[k]))


class DelayedError(Node):
    """Stands for the backward of a once_differentiable Function: differentiating it raises."""

    __slots__ = ()

    def __init__(self, parents, backend):
        self._init_own(parents, backend)

    def apply_vjp(self, g, create_graph, ns=None, saved=None):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable; write its backward in polygrad ops (without "
                           "the decorator) to take higher-order gradients through it")


def once_differentiable(fn):
    """Decorate a Function's backward that is not itself differentiable: it runs without
    recording, and differentiating its result (double backward) raises a clear error.

    >>> import polygrad
    >>> from polygrad.autograd.function import once_differentiable
    >>> class Double(polygrad.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         return 2 * x
    ...     @staticmethod
    ...     @once_differentiable
    ...     def backward(ctx, g):
    ...         return 2 * g
    >>> x = polygrad.ones(2, requires_grad=True)
    >>> Double.apply(x).sum().backward(); x.grad
    tensor([2., 2.])
    """
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with grad_mode.no_grad():
            outputs = fn(ctx, *args)
        if not grad_mode.is_grad_enabled():
            return outputs
        parents = [a._node for a in args if isinstance(a, Tensor) and a._node is not None]
        parents += [s[2] for s in ctx._saved if s is not None and s[2] is not None]
        if not parents and not any(ctx.needs_input_grad):
            return outputs
        is_tuple = isinstance(outputs, tuple)
        wrapped = []
        for o in (outputs if is_tuple else (outputs,)):
            if isinstance(o, Tensor):
                o = share(o._st, o._backend, node=DelayedError(parents, o._backend))
            wrapped.append(o)
        return tuple(wrapped) if is_tuple else wrapped[0]
    return wrapper
