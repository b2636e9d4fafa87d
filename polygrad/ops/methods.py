"""The Tensor's methods: operators, op methods and in-place semantics, installed on the
graph layer's ``Tensor`` by ``install()`` (called once, by ``polygrad.ops``), as JAX's
array_methods installs its array methods.

Two sources: the op registry (``polygrad.primitives``): each row's ``methods`` become
Tensor methods (elementwise rows also get the in-place ``name_``), so adding an op adds its
method; and ``_Methods`` below, the hand-written ones whose torch signatures differ from
the op's (``sum(dim, keepdim)``, ``reshape(*shape)``, ``to(...)``). Hand-written wins.

In-place ops are functional under the hood when autograd records them: the tensor is
rebound to a new graph node and the old buffer stays intact for backward. Outside
autograd they write in place, copying first only while a graph node still holds the
buffer (copy-on-write).

Operators follow the Array API standard's promotion (see docs/array-api.md), with torch's
cross-kind promotion (``x * mask``, ``arange(3) * 2.5``) where the standard has none.
"""

from __future__ import annotations

import math
import operator
import warnings

from ..base import grad_mode
from ..base.dtypes import as_dtype
from ..graph import creation, inplace
from ..graph.backward import backward as graph_backward
from ..graph.engine import apply, forward_ad_state
from ..graph.node import AccumulateGrad
from ..graph.tensor import Tensor, wrap
from ..primitives import PRIMITIVES
from ..primitives.indexing import standard_key
from .array_api import _axis_of_0d
from .array_api import clip as _clip
from .array_api import cumulative_sum as _cumulative_sum
from .promotion import FLOAT_VALUED, binary, floating
from .torch_linalg import _check_extremum_norm
from .torch_more import METHODS as _MORE
from .torch_more import OVERRIDES as _MORE_OVERRIDES
from .torch_names import torch_softmax
from .torch_surface import METHODS as _SURFACE
from .torch_surface import OVERRIDES as _OVERRIDES
from .torch_surface import numpy_names
from .transfer import to

__all__ = ["install"]

_mode = grad_mode._mode
P = PRIMITIVES
_T_WARNING = ("The use of `x.T` on tensors of dimension other than 2 to reverse their shape is "
              "deprecated and it will throw an error in a future release. Consider `x.mT` to "
              "transpose batches of matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` "
              "to reverse the dimensions of a tensor.")


class _Methods:
    """The hand-written methods (``install`` copies them onto Tensor)."""

    def __init__(self, data, *, dtype=None, device=None, requires_grad=False, backend=None):
        """``polygrad.Tensor(data)``: as ``polygrad.tensor(data)`` (torch's legacy constructor)."""
        t = creation.tensor(data, dtype=dtype, device=device, requires_grad=requires_grad,
                            backend=backend)
        self._st, self._backend, self._grad, self._tangent = t._st, t._backend, None, None
        self._view = None
        self._node = AccumulateGrad(self) if requires_grad else None

    @property
    def T(self):
        if self.ndim == 2:
            return self.t()
        if self.ndim:     # torch's deprecated n-d .T: reverses every dimension
            warnings.warn(_T_WARNING, UserWarning, stacklevel=2)
        return apply(P["permute_dims"], self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return apply(P["matrix_transpose"], self)

    def __reduce__(self):
        # backend, device and dtype travel with the values; a dtype numpy lacks (torch's
        # bfloat16) goes through the host as a dtype that holds it exactly, and comes back
        b, array, dtype = self._backend, self._st.array, self.dtype
        try:
            host = b.to_numpy(array)
        except (TypeError, ValueError, RuntimeError):
            wide = "complex128" if dtype.is_complex else "float64"
            host = b.to_numpy(b.xp.astype(array, b.native_dtype(wide)))
        return (_rebuild, (b.name, host, self.requires_grad, str(self.device), dtype.name))

    def __copy__(self):
        return self.detach().clone() if self._node is None else self.clone()

    def __deepcopy__(self, memo):
        out = wrap(self._backend.xp.asarray(self._st.array, copy=True), self._backend)
        if self.is_leaf and self.requires_grad:
            out.requires_grad_(True)
        memo[id(self)] = out
        return out

    # -- moving between backends and devices ------------------------------------------------
    def to(self, *args, backend=None, device=None, dtype=None, copy=False):
        """Move or cast: ``x.to("torch")``, ``x.to("cuda")``, ``x.to(polygrad.float64)``.

        Moving is differentiable: the gradient flows back to the source tensor.
        """
        return to(self, *args, backend=backend, device=device, dtype=dtype, copy=copy)

    def cpu(self):
        return to(self, device="cpu")

    def cuda(self, device=None):
        return to(self, device="cuda" if device is None else f"cuda:{int(device)}")

    def to_device(self, device, /, *, stream=None):
        return to(self, device=device)

    def float(self):
        return self.astype("float32")

    def double(self):
        return self.astype("float64")

    def long(self):
        return self.astype("int64")

    def int(self):
        return self.astype("int32")

    def bool(self):
        return self.astype("bool")

    def astype(self, dtype, copy=True):
        dt = as_dtype(dtype)
        if dt == self.dtype and not copy:
            return self
        if not (dt.is_floating_point or dt.is_complex):     # as torch: only float and
            with grad_mode.no_grad():                        # complex tensors require grad
                return apply(P["astype"], self, self._backend.native_dtype(dt))
        return apply(P["astype"], self, self._backend.native_dtype(dt))

    def type(self, dtype=None):
        if dtype is None:
            return f"polygrad.{self.dtype.name}"
        return self.astype(dtype)

    def clone(self):
        """A copy that stays in the graph."""
        return apply(P["astype"], self, self._backend.native_dtype(self.dtype))

    # -- indexing ------------------------------------------------------------------------------
    def __getitem__(self, key):
        split = _ints_first(key)
        if split is not None:       # torch: x[1, :, idx] is x[1][:, idx]
            return self[split[0]][split[1]]
        return apply(P["getitem"], self, key=_raw_key(key, self))

    def __setitem__(self, key, value):
        split = _ints_first(key)
        if split is not None:       # torch: x[1, :, idx] = v writes x[1][:, idx]
            self[split[0]][split[1]] = value
            return
        key = _raw_key(key, self)
        if isinstance(value, Tensor) and value._backend is not self._backend:
            inplace.raw_operand(value, self)         # raises the two-backends error
        self._inplace("setitem", value, key=key, _iop=_setter(key))

    # -- in-place machinery -------------------------------------------------------------------
    def _inplace(self, name, *others, _iop=None, **opts):
        """Run op ``name`` in place (``polygrad.graph.inplace.write``: copy-on-write for what
        backward saved, the write visible through every alias, torch's graph semantics)."""
        return inplace.write(self, P[name], others, opts, iop=_iop)

    def zero_(self):
        return inplace.fill(self, 0, "zero_")

    def fill_(self, value):
        if isinstance(value, Tensor):
            if value.ndim:
                raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got "
                                   f"tensor with {value.ndim} dimensions.")
            if value._node is not None and _mode.enabled:   # a differentiable fill value
                return self.copy_(value.broadcast_to(self.shape))
            value = value.item()
        return inplace.fill(self, value, "fill_")

    # -- in-place random fills (the shared stream: the same numbers on every backend) -----
    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        values = creation.randn(self.shape, generator=generator, dtype=self.dtype,
                                device=self.device, backend=self._backend) * std + mean
        return inplace.fill(self, values._st.array, "normal_")

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        values = creation.rand(self.shape, generator=generator, dtype=self.dtype,
                               device=self.device, backend=self._backend) * (b - a) + a
        return inplace.fill(self, values._st.array, "uniform_")

    def bernoulli_(self, p=0.5, *, generator=None):
        probs = p if isinstance(p, Tensor) else creation.full(
            self.shape, float(p), dtype=self.dtype if self.dtype.is_floating_point else None,
            backend=self._backend, device=self.device)
        values = creation.bernoulli(probs.detach(), generator=generator).astype(self.dtype)
        return inplace.fill(self, values._st.array, "bernoulli_")

    def exponential_(self, lambd=1.0, *, generator=None):
        u = creation.rand(self.shape, generator=generator, dtype="float64",
                          device=self.device, backend=self._backend)
        values = (-(1.0 - u).log() / lambd).astype(self.dtype)    # float64 math: the same
        return inplace.fill(self, values._st.array, "exponential_")

    def random_(self, from_=0, to=None, *, generator=None):
        if to is None:
            from_, to = 0, from_ if from_ else (2 ** 24 if self.dtype.is_floating_point
                                                 else 2 ** 31)
        values = creation.randint(from_, to, self.shape, generator=generator,
                                  device=self.device, backend=self._backend)
        return inplace.fill(self, values.astype(self.dtype)._st.array, "random_")

    def copy_(self, src):
        src = _as_tensor_like(src, self)
        if src._backend is not self._backend:
            src = src.to(self._backend.name, device=self.device)
        if tuple(src.shape) != tuple(self.shape):
            src = src.broadcast_to(self.shape)
        return self._inplace("copy", src, _iop=_copy_into)

    def add_(self, other, *, alpha=1):
        if alpha == 1:
            return self._inplace("add", other, _iop=operator.iadd)
        axpy = self._backend.overrides.get("axpy_")
        recorded = _mode.enabled and (self._node is not None or getattr(other, "_node", None)
                                      is not None)
        if axpy is not None and isinstance(other, Tensor) and not recorded and \
                not forward_ad_state.level:
            xp = self._backend.xp     # untracked: one fused kernel where the backend has one
            return self._inplace("add", other, _iop=lambda y, x: axpy(xp, y, x, alpha))
        return self._inplace("add", other * alpha, _iop=operator.iadd)

    def sub_(self, other, *, alpha=1):
        return self.add_(other, alpha=-alpha) if alpha != 1 else \
            self._inplace("subtract", other, _iop=operator.isub)

    def mul_(self, other):
        return self._inplace("multiply", other, _iop=operator.imul)

    def div_(self, other):
        return self._inplace("divide", other, _iop=operator.itruediv)

    def pow_(self, other):
        return self._inplace("pow", other, _iop=operator.ipow)

    def clamp_(self, min=None, max=None):
        return self._inplace("clip", min=min, max=max)

    def addcmul_(self, t1, t2, *, value=1):
        return self.add_(t1 * t2 * value)

    def addcdiv_(self, t1, t2, *, value=1):
        return self.add_(t1 / t2 * value)

    def lerp_(self, end, weight):
        return self.add_((end - self) * weight)

    # -- torch-style aliases over the primitives ------------------------------------------------
    def t(self):
        if self.ndim < 2:           # a view of the same shape (torch never returns self)
            return apply(P["reshape"], self, self.shape)
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return apply(P["permute_dims"], self, (1, 0))

    def permute(self, *dims):
        dims = _varargs(dims)
        return apply(P["permute_dims"], self, tuple(d % self.ndim for d in dims))

    def permute_dims(self, axes):
        return apply(P["permute_dims"], self, tuple(axes))

    def transpose(self, dim0, dim1):
        if not self.shape:          # torch: dims 0 or -1 of a 0-d tensor, a view of it
            _axis_of_0d((dim0, dim1))
            return apply(P["permute_dims"], self, ())
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return apply(P["permute_dims"], self, tuple(perm))

    def reshape(self, *shape):
        return apply(P["reshape"], self, tuple(_varargs(shape)))

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self.shape
        if not shape:
            return self.reshape(1)
        end = end_dim % len(shape)
        new = shape[:start_dim] + (math.prod(shape[start_dim:end + 1]),) + shape[end + 1:]
        return self.reshape(new)

    def unsqueeze(self, dim):
        return apply(P["expand_dims"], self, axis=dim)

    def squeeze(self, dim=None):
        if not self.shape and dim is not None:      # torch: dim 0 or -1 of a 0-d tensor
            for d in (dim,) if isinstance(dim, int) else dim:
                if d not in (0, -1):
                    raise IndexError(f"Dimension out of range (expected to be in range of "
                                     f"[-1, 0], but got {d})")
            return apply(P["reshape"], self, ())
        if dim is None:
            dim = tuple(i for i, s in enumerate(self.shape) if s == 1)
        elif isinstance(dim, int):
            if self.shape[dim] != 1:        # a view of the same shape, as torch's
                return apply(P["reshape"], self, self.shape)
        else:       # torch: dims whose size is not 1 are left as they are
            dim = tuple(d for d in dim if self.shape[d] == 1)
            if not dim:
                return apply(P["reshape"], self, self.shape)
        return apply(P["squeeze"], self, axis=dim)

    def expand(self, *shape):
        shape = tuple(_varargs(shape))
        shape = tuple(s if s != -1 else self.shape[i - len(shape) + self.ndim]
                      for i, s in enumerate(shape))
        return apply(P["broadcast_to"], self, shape)

    def broadcast_to(self, shape):
        return apply(P["broadcast_to"], self, tuple(shape))

    def expand_as(self, other):
        return self.expand(*other.shape)

    def flip(self, dims=None):
        if dims is not None and not self.shape:   # torch: dim 0 or -1 of a 0-d tensor
            dims = _axis_of_0d(tuple(_varargs((dims,))))
        return apply(P["flip"], self, axis=dims if dims is None else tuple(_varargs((dims,))))

    def _reduce(self, name, dim, keepdim, axis=None, keepdims=None, **kw):
        axis = dim if axis is None else axis
        if isinstance(axis, list):
            axis = tuple(axis)
        if not self.shape and axis is not None:
            axis = _axis_of_0d(axis)
        keep = keepdim if keepdims is None else keepdims
        return apply(P[name], self, axis=axis, keepdims=bool(keep), **kw)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        kw = {"dtype": self._backend.native_dtype(dtype)} if dtype is not None else {}
        return self._reduce("sum", dim, keepdim, axis, keepdims, **kw)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.to(dtype)     # torch: cast, then reduce
        return x._reduce("mean", dim, keepdim, axis, keepdims)

    def prod(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return self._reduce("prod", dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False):
        return self._reduce("max", dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return self._reduce("min", dim, keepdim)

    def max(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):     # torch's max(other): elementwise, as maximum
            return binary("maximum", torch_style=True)[0](self, dim)
        if dim is None:             # torch's evenly distributed gradient (MaxBackward1)
            return self._reduce("max", None, False, evenly=True)
        return _values_indices(self, "max", dim, keepdim)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):     # torch's min(other): elementwise, as minimum
            return binary("minimum", torch_style=True)[0](self, dim)
        if dim is None:             # torch's evenly distributed gradient (MinBackward1)
            return self._reduce("min", None, False, evenly=True)
        return _values_indices(self, "min", dim, keepdim)

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        corr = (1.0 if unbiased else 0.0) if correction is None else float(correction)
        return self._reduce("var", dim, keepdim, correction=corr)

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        corr = (1.0 if unbiased else 0.0) if correction is None else float(correction)
        return self._reduce("std", dim, keepdim, correction=corr)

    def logsumexp(self, dim=None, keepdim=False):
        return floating(self)._reduce("logsumexp", dim, keepdim)    # torch: int -> float

    def cumsum(self, dim, *, dtype=None):
        if not self.shape:      # torch: a 0-d tensor's dim is 0 or -1, and the shape stays ()
            _axis_of_0d(dim)
            return _cumulative_sum(self.reshape(1), axis=0, dtype=dtype).reshape(())
        return _cumulative_sum(self, axis=dim, dtype=dtype)

    def argmax(self, dim=None, keepdim=False):
        return apply(P["argmax"], self, axis=dim, keepdims=keepdim)

    def argmin(self, dim=None, keepdim=False):
        return apply(P["argmin"], self, axis=dim, keepdims=keepdim)

    def all(self, dim=None, keepdim=False):
        return apply(P["all"], self, axis=dim, keepdims=keepdim)

    def any(self, dim=None, keepdim=False):
        return apply(P["any"], self, axis=dim, keepdims=keepdim)

    @property
    def real(self):
        """The real part, a property as torch's ``Tensor.real`` (``polygrad.real(x)`` too)."""
        return apply(P["real"], self)

    @property
    def imag(self):
        """The imaginary part of a complex tensor, a property as torch's ``Tensor.imag``."""
        if not self.dtype.is_complex:
            raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
        return apply(P["imag"], self)

    def norm(self, p=2, dim=None, keepdim=False):
        """The vector p-norm over all elements (or ``dim``), as torch's ``Tensor.norm``."""
        # the vector_norm row: its gradient is 0 at a zero norm (as torch's), where a
        # composition through sqrt or ** (1 / p) would give NaN
        p = {"fro": 2, "inf": math.inf, "-inf": -math.inf}.get(p, p)
        if not self.shape and dim is not None:
            dim = _axis_of_0d(dim)
        _check_extremum_norm(self, p, tuple(_varargs((dim,))) if isinstance(dim, list) else dim)
        return apply(P["linalg.vector_norm"], self, axis=tuple(_varargs((dim,)))
                     if isinstance(dim, (tuple, list)) else dim, keepdims=bool(keepdim), ord=p)

    def pow(self, exponent):
        # torch's function: a 0-d exponent promotes as a number (int32 ** tensor(3) is int32)
        return binary("pow", torch_style=True)[0](self, exponent)

    def dot(self, other):
        return apply(P["vecdot"], self, other)

    def clamp(self, min=None, max=None):
        return _clip(self, min, max)      # tensor bounds too

    clip = clamp

    def softmax(self, dim, dtype=None):
        return torch_softmax("softmax", self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return torch_softmax("log_softmax", self, dim, dtype)

    def new_zeros(self, *shape):
        return creation.zeros(*shape, dtype=self.dtype, device=self.device,
                              backend=self._backend)

    def new_ones(self, *shape):
        return creation.ones(*shape, dtype=self.dtype, device=self.device,
                             backend=self._backend)

    def new_tensor(self, data):
        return creation.tensor(data, dtype=self.dtype, device=self.device,
                               backend=self._backend)


class _ValuesIndices(tuple):
    """torch's ``(values, indices)`` result of ``max(dim)`` / ``min(dim)``."""

    values = property(operator.itemgetter(0))
    indices = property(operator.itemgetter(1))


def _values_indices(t, name, dim, keepdim):
    # the indices of a bool tensor's max / min are those of its 0 / 1 (the torch backend's
    # argmax refuses bool)
    key = t.astype("uint8") if t.dtype.name == "bool" else t
    if not t.shape:
        _axis_of_0d(dim)
        values = t.clone() if key is not t else apply(P["positive"], t)
        return _ValuesIndices((values, apply(P["arg" + name], key)))
    # values gathered at the returned indices: the gradient goes to that index only, as
    # torch's (amax/amin split it between ties)
    indices = apply(P["arg" + name], key, axis=dim, keepdims=True)
    values = apply(P["take_along_axis"], t, indices._st.array, axis=dim)
    if not keepdim:
        values = apply(P["squeeze"], values, axis=dim)
        indices = apply(P["squeeze"], indices, axis=dim)
    return _ValuesIndices((values, indices))




def _varargs(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# -- operators ---------------------------------------------------------------------------------

_BINARY = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "pow", "matmul": "matmul",
    "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "lshift": "bitwise_left_shift", "rshift": "bitwise_right_shift",
}
_COMPARE = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
            "eq": "equal", "ne": "not_equal"}
_INPLACE_OPS = {"add": operator.iadd, "sub": operator.isub, "mul": operator.imul,
                "truediv": operator.itruediv, "pow": operator.ipow,
                # (no "mod": a backend's own %= signs a zero remainder as it likes, torch as
                # the dividend; the standard's, as the divisor, is the row's impl)
                "floordiv": operator.ifloordiv, "and": operator.iand,
                "or": operator.ior, "xor": operator.ixor, "lshift": operator.ilshift,
                "rshift": operator.irshift}
def _setter(key):
    """The untracked ``x[key] = value``: written straight into the memory."""
    def set_values(array, value):
        array[standard_key(key, array.ndim)] = value
        return array
    return set_values


def _copy_into(array, src):
    array[...] = src
    return array


def _inplace_method(prim_name, iop=None, opts=None):
    opts = opts or {}

    def iop_method(self, other):
        return self._inplace(prim_name, other, _iop=iop, **opts)
    return iop_method


def _unary(prim):
    opts = prim.torch_opts      # a method is a torch-style spelling

    if prim.name in FLOAT_VALUED:       # torch: x.sin() of an int tensor is float32
        def method(self):
            return apply(prim, floating(self), **opts)
    else:
        def method(self):
            return apply(prim, self, **opts)

    def method_(self):
        return self._inplace(prim.name, **opts)
    return method, method_


def _generic(prim):
    """A method for a row outside the elementwise families: ``x.name(*args, **options)``."""
    def method(self, *args, **opts):
        return apply(prim, self, *args, **opts)
    return method


def _named(fn, name, prim):
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``{prim.name}`` (primitive ``{prim.node_name}``); see ``polygrad.ops.{prim.name}``."
    return fn


def install(ns):
    """Put the methods on ``Tensor``: hand-written ones, then one per registry row
    (``Primitive.methods``), then the operators. ``ns`` is ``polygrad.ops``: the namespace
    ``__array_namespace__`` returns and ``backward(create_graph=True)`` runs the rules on."""

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute gradients of this tensor with respect to the graph's leaves.

        >>> import polygrad
        >>> x = polygrad.tensor(3.0, requires_grad=True)
        >>> (x * x).backward(); x.grad
        tensor(6.)
        """
        graph_backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=inputs, ns=ns)

    def __array_namespace__(self, api_version=None):
        """polygrad's differentiable Array API namespace, ``polygrad.ops``."""
        if api_version not in (None, "2022.12", "2023.12", "2024.12"):
            raise ValueError(f"polygrad implements the Array API 2024.12 (and accepts "
                             f"2022.12 and 2023.12); api_version={api_version!r} is not "
                             f"supported")
        return ns

    Tensor.backward = backward
    Tensor.__array_namespace__ = __array_namespace__
    for name, member in vars(_Methods).items():
        if not (name.startswith("__") and name.endswith("__")) or name in _DUNDERS:
            setattr(Tensor, name, member)
    for prim in list(PRIMITIVES.builtin.values()):
        install_row(prim)
    row_methods = {name for prim in PRIMITIVES.builtin.values() for name in prim.methods}
    for name, fn in _SURFACE.items():      # torch signatures (issue 14); hand-written wins
        if name not in vars(_Methods) and (name in _OVERRIDES or name not in row_methods):
            setattr(Tensor, name, fn)
    for name, fn in _MORE.items():
        if name not in vars(_Methods) and name not in row_methods and (
                name in _MORE_OVERRIDES or name not in _SURFACE):
            setattr(Tensor, name, fn)
    for dunder, name in _BINARY.items():
        op, rop = binary(name)
        setattr(Tensor, f"__{dunder}__", op)
        setattr(Tensor, f"__r{dunder}__", rop)
        setattr(Tensor, f"__i{dunder}__", _inplace_method(name, _INPLACE_OPS.get(dunder)))
    for dunder, name in _COMPARE.items():
        setattr(Tensor, f"__{dunder}__", binary(name)[0])
    for name, member in list(vars(Tensor).items()):    # axis=, keepdims= as torch's
        if callable(member) and not name.startswith("__") and not isinstance(
                member, (type, staticmethod, classmethod)):
            setattr(Tensor, name, numpy_names(member))
    Tensor.__neg__ = lambda self: apply(P["negative"], self)
    Tensor.__pos__ = lambda self: apply(P["positive"], self)
    Tensor.__abs__ = lambda self: apply(P["abs"], self)
    Tensor.__invert__ = lambda self: apply(P["bitwise_invert"], self)


_DUNDERS = {"__init__", "__reduce__", "__copy__", "__deepcopy__",
            "__getitem__", "__setitem__"}


def install_row(prim):
    """The methods of one registry row (hand-written ones are kept)."""
    for name in prim.methods:
        if prim.api == "unary":
            method, method_ = _unary(prim)
        elif prim.api == "binary":
            method = binary(prim.name, torch_style=True)[0]
            method_ = _inplace_method(prim.name, opts=prim.torch_opts)
        else:
            method, method_ = _generic(prim), None
        if name not in vars(_Methods):
            setattr(Tensor, name, _named(method, name, prim))
        if method_ is not None and name + "_" not in vars(_Methods):
            setattr(Tensor, name + "_", _named(method_, name + "_", prim))


def _ints_first(key):
    """``(ints, rest)`` for a key that mixes integers with index arrays, else None. torch
    applies the integers first, as selects, and indexes the rest with the arrays (so
    ``x[1, :, idx]`` keeps idx's dimension in place, where numpy's rule, an integer being
    an index array too, would move it to the front)."""
    if not isinstance(key, tuple):
        return None
    ints = [isinstance(k, int) and not isinstance(k, bool) for k in key]
    if not any(ints) or not any(isinstance(k, (Tensor, list)) or getattr(k, "ndim", 0)
                                for k in key):
        return None
    first, rest = [], []
    for k, is_int in zip(key, ints):
        if is_int:
            first.append(k)
        elif k is None:
            rest.append(k)
        elif k is Ellipsis:
            first.append(k)
            rest.append(k)
        else:       # a slice or an index array: one dimension, a bool mask: as many as it has
            n = k.ndim if getattr(getattr(k, "dtype", None), "name", "") == "bool" else 1
            first.extend([slice(None)] * n)
            rest.append(k)
    return tuple(first), tuple(rest)


def _raw_key(key, like):
    if isinstance(key, tuple):
        return tuple(_raw_key(k, like) for k in key)
    if isinstance(key, slice):       # 0-d integer tensors as bounds: Python ints (__index__)
        if any(isinstance(b, Tensor) for b in (key.start, key.stop, key.step)):
            return slice(*(None if b is None else operator.index(b)
                           for b in (key.start, key.stop, key.step)))
        return key
    if isinstance(key, Tensor):
        return inplace.raw_operand(key, like)
    if isinstance(key, list):
        return like._backend.xp.asarray(key)
    return key


def _as_tensor_like(value, like):
    if isinstance(value, Tensor):
        return value
    return creation.asarray(value, backend=like._backend)


def _rebuild(backend_name, host, requires_grad, device=None, dtype=None):
    """Unpickle a Tensor (pickles made before device and dtype were kept have 3 fields)."""
    out = creation.from_numpy(host, backend=backend_name, device=device)
    if dtype is not None and out.dtype.name != dtype:
        out = out.astype(dtype)
    return out.requires_grad_(True) if requires_grad else out
