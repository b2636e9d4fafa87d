"""Shape primitives: reshape, permute_dims, expand_dims, squeeze, broadcast_to,
concat, stack, flip, astype. All are linear, so each row is a transpose.

``broadcast_to``'s transpose is the identity: the engine sums the gradient back
to the input's shape, as it does for every op.
"""

from .table import def_linear as linear
from .table import def_primitive as primitive


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _split(ns, g, xs, axis, stacked):
    grads, start = [], 0
    for x in xs:
        size = 1 if stacked else x.shape[axis]
        key = [slice(None)] * g.ndim
        key[axis] = start if stacked else slice(start, start + size)
        grads.append(g[tuple(key)])
        start += size
    return tuple(grads)


def _concat_vjp(ns, g, out, *xs, axis=0):
    if axis is None:   # concat of flattened arrays
        grads, start = [], 0
        for x in xs:
            n = x.size
            grads.append(ns.reshape(g[start:start + n], x.shape))
            start += n
        return tuple(grads)
    return _split(ns, g, xs, axis % g.ndim, stacked=False)


def _write_expanded(ns, parent, value, shape, *, written):
    """expand's write-back: ``parent`` with each element that the write reached (through one of
    its copies in the expanded view) replaced by its new value. ``written`` (booleans, the
    expanded shape) marks the elements written. polygrad.graph.inplace refuses a write that
    reaches an element through two copies, as torch does, before anything changes; only a
    boolean ``value`` (the masks chain_scatter builds) may, and its copies are or-ed."""
    if any(n == 0 for n in shape):
        return parent               # an empty view: nothing is written
    extra = len(shape) - parent.ndim
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(parent.shape)
                                       if n == 1 and shape[extra + i] != 1)
    if not axes:
        return value                # nothing was broadcast: the view is the parent
    hit = ns.reshape(ns.any(written, axis=axes, keepdims=True), parent.shape)
    if ns.isdtype(value.dtype, "bool"):
        new = ns.any(ns.logical_and(written, value), axis=axes, keepdims=True)
    else:
        # the one written copy of each element: a sum whose other terms are -0.0, which
        # leaves every value as it is (0.0, -0.0, inf and nan included)
        new = ns.sum(ns.where(written, value, -ns.zeros_like(value)), axis=axes, keepdims=True,
                     dtype=value.dtype)
    return ns.where(hit, ns.reshape(new, parent.shape), parent)


_write_expanded.wants_written = True     # chain_scatter passes the mask of written elements


def _concat_jvp(ns, tangents, out, *xs, axis=0):
    ts = [t if t is not None else ns.zeros_like(x) for t, x in zip(tangents, xs)]
    return ns.concat(ts, axis=axis)


def _stack_vjp(ns, g, out, *xs, axis=0):
    return _split(ns, g, xs, axis % g.ndim, stacked=True)


def _stack_jvp(ns, tangents, out, *xs, axis=0):
    ts = [t if t is not None else ns.zeros_like(x) for t, x in zip(tangents, xs)]
    return ns.stack(ts, axis=axis)


# View ops (torch returns views): ``view=`` is the write-back rule, ``(ns, parent, value,
# *args, **opts) -> parent`` with the view's region replaced by ``value`` (out of place),
# which carries a write through a view to its base (``polygrad.graph.inplace``). A rule that
# is not one to one (broadcast_to) also takes ``written=``, the mask of the elements written
# (``wants_written``). They keep no values for backward (``saves=()``): a view saved by a
# graph pins nothing.
linear("reshape", lambda ns, g, out, x, shape, copy=None: (ns.reshape(g, x.shape),),
       nondiff_args=(1,), node_name="ViewBackward0", saves=(),
       view=lambda ns, parent, value, shape, copy=None: ns.reshape(value, parent.shape))
linear("permute_dims", lambda ns, g, out, x, axes: (ns.permute_dims(g, _inverse(axes)),),
       nondiff_args=(1,), node_name="PermuteBackward0", saves=(),
       view=lambda ns, parent, value, axes: ns.permute_dims(value, _inverse(axes)))
linear("matrix_transpose", lambda ns, g, out, x: (ns.matrix_transpose(g),),
       node_name="TransposeBackward0", saves=(),
       view=lambda ns, parent, value: ns.matrix_transpose(value))
linear("expand_dims", lambda ns, g, out, x, axis=0: (ns.reshape(g, x.shape),),
       node_name="UnsqueezeBackward0", saves=(),
       view=lambda ns, parent, value, axis=0: ns.reshape(value, parent.shape))
linear("squeeze", lambda ns, g, out, x, axis=None: (ns.reshape(g, x.shape),), saves=(),
       view=lambda ns, parent, value, axis=None: ns.reshape(value, parent.shape))
linear("broadcast_to", lambda ns, g, out, x, shape: (g,), nondiff_args=(1,),
       node_name="ExpandBackward0", saves=(), view=_write_expanded)
linear("flip", lambda ns, g, out, x, axis=None: (ns.flip(g, axis=axis),), saves=(),
       may_alias=True)
linear("astype", lambda ns, g, out, x, dtype, copy=True, device=None: (ns.astype(g, x.dtype),),
       nondiff_args=(1,), node_name="ToCopyBackward0")

linear("tril", lambda ns, g, out, x, k=0: (ns.tril(g, k=k),))
linear("triu", lambda ns, g, out, x, k=0: (ns.triu(g, k=k),))

# concat and stack take a sequence of arrays; polygrad passes them as positional inputs
# (``concat(*arrays, axis=...)``) so that each gets its own gradient and graph edge.
primitive("concat", _concat_vjp, _concat_jvp, node_name="CatBackward0",
          impl=lambda xp, *xs, axis=0: xp.concat(xs, axis=axis))
primitive("stack", _stack_vjp, _stack_jvp, node_name="StackBackward0",
          impl=lambda xp, *xs, axis=0: xp.stack(xs, axis=axis))


def _copy_impl(xp, x, src):
    return xp.astype(xp.broadcast_to(src, x.shape), x.dtype, copy=True)


# x.copy_(src): the result is src's values in x's dtype; x's old values get a zero gradient
# (torch's CopyBackwards: earlier leaves get zeros, not None).
primitive("copy", lambda ns, g, out, x, src: (ns.zeros_like(g), ns.astype(g, src.dtype)),
          lambda ns, t, out, x, src: ns.astype(t[1], out.dtype) if t[1] is not None else None,
          impl=_copy_impl, node_name="CopyBackwards")
