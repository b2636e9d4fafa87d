"""A batch axis for the raw-array VJP rules: how ``jacobian(..., vectorize=True)`` runs all
its rows in one backward pass, with no vmap and no second set of rules.

``Batched`` holds a raw array whose leading axis indexes B cotangents; its ``shape`` is the
logical (per-row) shape. ``BatchedNamespace`` wraps a backend's raw namespace, and the
primitives' VJP rules run on it unchanged: a namespace function called with no Batched
argument (work on primal values) runs as it is; one called with a Batched argument runs
through a batching rule below (elementwise, reductions, shape ops, matmul), which moves the
batch axis out of the way exactly; a function with no rule raises ``NotBatchable`` and the
caller falls back to one pass per row. Rules are exact or absent, never approximate.
"""

from __future__ import annotations

import operator

__all__ = ["Batched", "BatchedNamespace", "NotBatchable"]


class NotBatchable(Exception):
    """A rule met a function with no batching rule: use one pass per row instead."""


def _binary(name, reflected=False):
    if reflected:
        return lambda self, other: getattr(self.ns, name)(other, self)
    return lambda self, other: getattr(self.ns, name)(self, other)


class Batched:
    """B arrays of one logical shape, stacked on a leading axis."""

    __slots__ = ("a", "ns")
    __array_ufunc__ = None          # numpy operators defer to ours instead of looping
    __array_priority__ = 10000

    def __init__(self, a, ns):
        self.a, self.ns = a, ns

    shape = property(lambda self: tuple(self.a.shape[1:]))
    ndim = property(lambda self: len(self.a.shape) - 1)
    dtype = property(lambda self: self.a.dtype)
    device = property(lambda self: self.a.device)
    mT = property(lambda self: self.ns.matrix_transpose(self))

    __add__, __radd__ = _binary("add"), _binary("add", True)
    __sub__, __rsub__ = _binary("subtract"), _binary("subtract", True)
    __mul__, __rmul__ = _binary("multiply"), _binary("multiply", True)
    __truediv__, __rtruediv__ = _binary("divide"), _binary("divide", True)
    __pow__, __rpow__ = _binary("pow"), _binary("pow", True)
    __matmul__, __rmatmul__ = _binary("matmul"), _binary("matmul", True)
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __hash__ = None
    __neg__ = lambda self: self.ns.negative(self)       # noqa: E731
    __pos__ = lambda self: self                          # noqa: E731
    __abs__ = lambda self: self.ns.abs(self)            # noqa: E731

    def __getitem__(self, key):
        return self.ns.getitem(self, key)

    def __bool__(self):
        raise NotBatchable("truth value of a batched array")

    __float__ = __int__ = __index__ = __array__ = __dlpack__ = __bool__


_ELEMENTWISE = frozenset("""
abs acos acosh add asin asinh atan atan2 atanh ceil clip conj copysign cos cosh divide equal
exp expm1 floor floor_divide greater greater_equal hypot imag isfinite isinf isnan less
less_equal log log1p log2 log10 logaddexp logical_and logical_not logical_or logical_xor
maximum minimum multiply negative not_equal positive pow real reciprocal remainder round sign
signbit sin sinh square sqrt subtract tan tanh trunc where astype zeros_like ones_like
empty_like full_like
relu sigmoid leaky_relu hardtanh gelu silu mish hardswish threshold_backward
leaky_relu_backward hardtanh_backward softplus softplus_backward smooth_l1_loss_backward
huber_loss_backward hardswish_backward elu elu_backward
""".split())


def _any_batched(args, kw):
    for a in (*args, *kw.values()):
        if isinstance(a, Batched):
            return True
        if isinstance(a, (list, tuple)) and any(isinstance(b, Batched) for b in a):
            return True
    return False


class BatchedNamespace:
    """A raw namespace whose functions accept ``Batched`` arrays (see the module docstring)."""

    def __init__(self, xp, batch, rules=None):
        self._xp, self.batch = xp, batch
        self._rules = _RULES if rules is None else rules

    def __getattr__(self, name):
        attr = getattr(self._xp, name, None)
        if attr is None:
            if name != "getitem":       # the one rule name that is not a namespace function
                raise AttributeError(f"{self._xp!r} has no attribute {name!r}")
            attr = operator.getitem
        if name in ("linalg", "fft"):       # sub-namespaces: primal-only calls, no rules
            sub = BatchedNamespace(attr, self.batch, rules={})
            setattr(self, name, sub)
            return sub
        if isinstance(attr, type) or not callable(attr):
            return attr                     # dtypes, constants
        rule = self._rules.get(name)
        if rule is None and name in _ELEMENTWISE and self._rules:
            rule = _elementwise

        def fn(*args, **kw):
            if not _any_batched(args, kw):
                return attr(*args, **kw)
            if rule is None:
                raise NotBatchable(name)
            return rule(self, attr, *args, **kw)

        setattr(self, name, fn)             # cached: rules call the same few functions
        return fn

    def pad(self, b, rank):
        """``b``'s raw array with size-1 axes after the batch axis, to logical ``rank``."""
        if b.ndim >= rank:
            return b.a
        return self._xp.reshape(b.a, (self.batch,) + (1,) * (rank - b.ndim) + b.shape)

    def wrap(self, a):
        return Batched(a, self)


def _rank(a):
    return a.ndim if hasattr(a, "ndim") else 0


def _elementwise(ns, fn, *args, **kw):
    # right-aligned broadcasting holds once every batched operand has the full logical rank
    rank = max(_rank(a) for a in (*args, *kw.values()))
    def conv(a):
        return ns.pad(a, rank) if isinstance(a, Batched) else a
    return ns.wrap(fn(*map(conv, args), **{k: conv(v) for k, v in kw.items()}))


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(operator.index(a) % ndim for a in axis)


def _reduction(ns, fn, x, /, *, axis=None, keepdims=False, **kw):
    _only_first(x, kw)
    axes = tuple(a + 1 for a in _axes(axis, x.ndim))
    if not axes:                          # nothing to reduce (torch's sum(dim=()) sums all)
        return x
    return ns.wrap(fn(x.a, axis=axes, keepdims=keepdims, **kw))


def _scan(ns, fn, x, /, *, axis=None, **kw):
    _only_first(x, kw)
    if axis is None and x.ndim != 1:
        raise NotBatchable("cumulative op without axis")
    return ns.wrap(fn(x.a, axis=(0 if axis is None else axis % x.ndim) + 1, **kw))


def _logcumsumexp(ns, fn, x, /, *, axis=0):
    _only_first(x, {})
    if x.ndim == 0:          # a scan along one element: the value itself
        return ns.wrap(fn(x.a[:, None], axis=1)[:, 0])
    return ns.wrap(fn(x.a, axis=axis % x.ndim + 1))


def _flip(ns, fn, x, /, *, axis=None):
    _only_first(x, {})
    return ns.wrap(fn(x.a, axis=tuple(a + 1 for a in _axes(axis, x.ndim))))


def _only_first(x, kw, *rest):
    if not isinstance(x, Batched) or _any_batched(rest, kw):
        raise NotBatchable("batched argument in an unsupported position")


def _reshape(ns, fn, x, /, shape, **kw):
    _only_first(x, kw)
    return ns.wrap(fn(x.a, (ns.batch, *shape), **kw))


def _expand_dims(ns, fn, x, /, axis=0):
    _only_first(x, {})
    if not isinstance(axis, int):
        raise NotBatchable("expand_dims with several axes")
    axis = axis if axis >= 0 else axis + x.ndim + 1
    return ns.wrap(fn(x.a, axis=axis + 1))


def _squeeze(ns, fn, x, /, axis):
    _only_first(x, {})
    return ns.wrap(fn(x.a, axis=tuple(a + 1 for a in _axes(axis, x.ndim))))


def _broadcast_to(ns, fn, x, /, shape):
    _only_first(x, {})
    return ns.wrap(fn(ns.pad(x, len(shape)), (ns.batch, *shape)))


def _permute_dims(ns, fn, x, /, axes):
    _only_first(x, {})
    return ns.wrap(fn(x.a, (0, *(a % x.ndim + 1 for a in axes))))


def _last_two(ns, fn, x, /, **kw):
    """matrix_transpose, tril, triu: they act on the last two axes only."""
    _only_first(x, kw)
    return ns.wrap(fn(x.a, **kw))


def _matmul(ns, fn, x1, x2, /):
    # a batched 1-D operand becomes a matrix (row for x1, column for x2), squeezed after
    row = isinstance(x1, Batched) and x1.ndim == 1
    col = isinstance(x2, Batched) and x2.ndim == 1
    xp = ns._xp
    a = ns.wrap(xp.reshape(x1.a, (ns.batch, 1) + x1.shape)) if row else x1
    b = ns.wrap(xp.reshape(x2.a, (ns.batch,) + x2.shape + (1,))) if col else x2
    rank = max(_rank(a), _rank(b), 2)
    out = fn(ns.pad(a, rank) if isinstance(a, Batched) else a,
             ns.pad(b, rank) if isinstance(b, Batched) else b)
    if row and col:
        shape = out.shape[:-2]
    elif col or (row and _rank(x2) < 2):       # x1 @ 1-D x2 has no last axis to keep
        shape = out.shape[:-1]
    elif row:
        shape = out.shape[:-2] + out.shape[-1:]
    else:
        return ns.wrap(out)
    return ns.wrap(xp.reshape(out, shape))


def _vecdot(ns, fn, x1, x2, /, *, axis=-1):
    rank = max(_rank(x1), _rank(x2))
    def conv(a):
        return ns.pad(a, rank) if isinstance(a, Batched) else a
    return ns.wrap(fn(conv(x1), conv(x2), axis=axis if axis < 0 else axis - rank))


def _join(ns, fn, arrays, /, *, axis=0, new_axis=False):
    if axis is None:
        raise NotBatchable("concat with axis=None")
    ndim = next(a.ndim for a in arrays if isinstance(a, Batched)) + (1 if new_axis else 0)
    xp = ns._xp
    raw = [a.a if isinstance(a, Batched) else xp.broadcast_to(a, (ns.batch, *a.shape))
           for a in arrays]
    return ns.wrap(fn(raw, axis=axis % ndim + 1))


def _getitem(ns, fn, x, key):
    _only_first(x, {})
    key = key if isinstance(key, tuple) else (key,)
    if not all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in key):
        raise NotBatchable("index arrays")       # advanced indexing may move axes
    return ns.wrap(x.a[(slice(None),) + key])


_RULES = {
    "sum": _reduction, "prod": _reduction, "mean": _reduction, "max": _reduction,
    "min": _reduction, "cumulative_sum": _scan, "cumulative_prod": _scan, "flip": _flip,
    "logcumsumexp": _logcumsumexp,
    "reshape": _reshape, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "broadcast_to": _broadcast_to, "permute_dims": _permute_dims,
    "matrix_transpose": _last_two, "tril": _last_two, "triu": _last_two,
    "matmul": _matmul, "vecdot": _vecdot, "concat": _join,
    "stack": lambda ns, fn, arrays, /, *, axis=0: _join(ns, fn, arrays, axis=axis,
                                                          new_axis=True),
    "getitem": _getitem,
}
