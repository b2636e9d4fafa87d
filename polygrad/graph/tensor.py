"""The Tensor: a backend array plus autograd state (grad, grad_fn, version).

This module owns the Tensor class, its operators, its torch-style methods and
in-place semantics. Ops themselves are primitives (``polygrad.primitives``) run
by ``engine.apply``; a method here only names the primitive and its options.

In-place ops are functional under the hood when autograd records them: the
tensor is rebound to a new graph node and the old buffer stays intact for
backward. Outside autograd they write in place, copying first only while a
graph node still holds the buffer (copy-on-write).
"""

from __future__ import annotations

import math
import operator
import warnings
import weakref

from . import engine, grad_mode
from .device import device as Device
from .dtypes import as_dtype
from .engine import AccumulateGrad, Storage, apply
from .primitives import PRIMITIVES, load_table

load_table()

_mode = grad_mode._mode
P = PRIMITIVES

LEAF_INPLACE_MSG = ("a leaf Variable that requires grad is being used in an in-place operation. "
                    "Wrap the update in `with polygrad.no_grad():`, or operate on a copy "
                    "(x.clone()) or on x.detach().")
NON_LEAF_GRAD_MSG = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead.")
NUMPY_GRAD_MSG = ("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                  "instead.")


class _Size(int):
    """``x.size`` is the element count (Array API); ``x.size()`` / ``x.size(d)`` is torch's."""

    def __new__(cls, n, shape):
        obj = int.__new__(cls, n)
        obj._shape = shape
        return obj

    def __call__(self, dim=None):
        return self._shape if dim is None else self._shape[dim]


class _TensorDevice(Device):
    """A tensor's device; it remembers the backend, so that Array API code such as
    ``xp.asarray(0.0, device=x.device)`` makes its array beside ``x``."""

    __slots__ = ("backend",)


class Tensor:
    """polygrad's value: a backend array plus autograd state.

    >>> import polygrad
    >>> a = polygrad.tensor([1.0, 2.0], requires_grad=True)
    >>> (a * a).sum().backward()
    >>> a.grad
    tensor([2., 4.])
    """

    __slots__ = ("_st", "_node", "_backend", "_grad", "_tangent", "__weakref__")
    __array_priority__ = 1000      # numpy defers its operators to ours

    # -- construction ----------------------------------------------------------------------
    def __init__(self, data, *, dtype=None, device=None, requires_grad=False, backend=None):
        from .creation import tensor as _tensor
        t = _tensor(data, dtype=dtype, device=device, requires_grad=requires_grad, backend=backend)
        self._st, self._backend, self._grad, self._tangent = t._st, t._backend, None, None
        self._node = AccumulateGrad(self) if requires_grad else None

    # -- autograd state ----------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, flag):
        node = self._node
        if node is not None and type(node) is not AccumulateGrad:
            if not flag:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach().")
            return
        if flag and node is None:
            dt = self.dtype
            if not (dt.is_floating_point or dt.is_complex):
                raise RuntimeError(
                    f"only Tensors of floating point and complex dtype can require gradients; "
                    f"this one is {dt.name}. Convert it first, e.g. x.astype(polygrad.float32).")
            self._node = AccumulateGrad(self)
        elif not flag:
            self._node = None

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place and return self (QS-2)."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self):
        node = self._node
        return None if node is None or type(node) is AccumulateGrad else node

    @property
    def is_leaf(self):
        node = self._node
        return node is None or type(node) is AccumulateGrad

    @property
    def grad(self):
        if not self.is_leaf and self._node.retain is None:
            warnings.warn(NON_LEAF_GRAD_MSG, UserWarning, stacklevel=2)
            return None
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            value = _as_tensor_like(value, self)
            if tuple(value.shape) != tuple(self.shape):
                raise ValueError(f"assigned grad has shape {tuple(value.shape)}, but the tensor "
                                 f"has shape {tuple(self.shape)}")
        self._grad = value

    @property
    def retains_grad(self):
        return not self.is_leaf and self._node.retain is not None

    def retain_grad(self):
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if self._node is None:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if not self.is_leaf:
            self._node.retain = weakref.ref(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a return value replaces it."""
        if self._node is None:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return self._node.register_hook(hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute gradients of this tensor with respect to the graph's leaves.

        >>> import polygrad
        >>> x = polygrad.tensor(3.0, requires_grad=True)
        >>> (x * x).backward(); x.grad
        tensor(6.)
        """
        from .autograd import backward
        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return _make(self._st, self._backend, share=True)

    def detach_(self):
        self._node = None
        return self

    @property
    def data(self):
        return _make(self._st, self._backend, share=True)

    @data.setter
    def data(self, value):
        value = _as_tensor_like(value, self)
        self._st, self._backend = value._st, value._backend

    @property
    def _version(self):
        return self._st.version

    # -- array attributes ---------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self._st.array.shape)

    @property
    def dtype(self):
        return self._backend.dtype_of(self._st.array)

    @property
    def device(self):
        dev = _TensorDevice(self._backend.device_str(self._st.array))
        dev.backend = self._backend     # creation with device=x.device stays on x's backend
        return dev

    @property
    def backend(self):
        """The name of the backend this tensor lives on."""
        return self._backend.name

    @property
    def ndim(self):
        return len(self._st.array.shape)

    @property
    def size(self):
        shape = self.shape
        return _Size(math.prod(shape), shape)

    def numel(self):
        return math.prod(self.shape)

    def dim(self):
        return self.ndim

    @property
    def T(self):
        if self.ndim > 2:
            raise ValueError("x.T is defined for arrays of at most 2 dimensions; use x.mT or "
                             "permute_dims for batches of matrices")
        return self.t() if self.ndim == 2 else self

    @property
    def mT(self):
        return apply(P["matrix_transpose"], self)

    @property
    def array(self):
        """The raw backend array (not a copy; do not modify it)."""
        return self._st.array

    # -- conversions --------------------------------------------------------------------------
    def _check_host(self, what):
        if self._node is not None:
            raise RuntimeError(NUMPY_GRAD_MSG if what == "numpy()" else
                               f"Can't convert a Tensor that requires grad with {what}: the "
                               f"gradient would be silently dropped. Use tensor.detach() first.")
        dev = self.device
        if dev.type != "cpu":
            raise TypeError(
                f"can't convert a {dev} tensor of backend {self.backend!r} with {what}: its data "
                f"lives on the device. Copy it to the host first with .cpu() or .to('numpy').")

    def numpy(self, *, force=False):
        """This tensor's values as a host numpy array (refuses a tensor that requires grad)."""
        if not force:
            self._check_host("numpy()")
        return self._backend.to_numpy(self._st.array)

    def __array__(self, dtype=None, copy=None):
        self._check_host("__array__ (numpy.asarray)")
        out = self._backend.to_numpy(self._st.array)
        return out if dtype is None else out.astype(dtype, copy=False)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to "
                               f"Scalar; index it first or use .tolist()")
        return self._backend.to_numpy(self._st.array).item()

    def tolist(self):
        return self._backend.to_numpy(self._st.array).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in ("signed integer", "unsigned integer"):
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous; "
                               f"use .any() or .all()")
        return bool(self.item())

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __dlpack__(self, *args, **kwargs):
        if self._node is not None:      # a DLPack consumer would silently drop the gradient
            raise RuntimeError("Can't export a Tensor that requires grad through DLPack; use "
                               "tensor.detach() first.")
        return self._st.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._st.array.__dlpack_device__()

    def __array_namespace__(self, api_version=None):
        """polygrad's differentiable Array API namespace, ``polygrad.ops``."""
        if api_version not in (None, "2022.12", "2023.12", "2024.12"):
            raise ValueError(f"polygrad implements the Array API 2024.12 (and accepts 2022.12 "
                             f"and 2023.12); api_version={api_version!r} is not supported")
        from . import ops
        return ops

    def __repr__(self):
        from ._format import format_tensor
        return format_tensor(self)

    __str__ = __repr__
    __hash__ = object.__hash__

    def __reduce__(self):
        return (_rebuild, (self._backend.name, self._backend.to_numpy(self._st.array),
                           self.requires_grad))

    def __copy__(self):
        return self.detach().clone() if self._node is None else self.clone()

    def __deepcopy__(self, memo):
        out = _make(self._backend.xp.asarray(self._st.array, copy=True), self._backend)
        if self.is_leaf and self.requires_grad:
            out.requires_grad_(True)
        memo[id(self)] = out
        return out

    # -- moving between backends and devices ------------------------------------------------
    def to(self, *args, backend=None, device=None, dtype=None, copy=False):
        """Move or cast: ``x.to("torch")``, ``x.to("cuda")``, ``x.to(polygrad.float64)``.

        Moving is differentiable: the gradient flows back to the source tensor.
        """
        from .transfer import to
        return to(self, *args, backend=backend, device=device, dtype=dtype, copy=copy)

    def cpu(self):
        from .transfer import to
        return to(self, device="cpu")

    def cuda(self, device=None):
        from .transfer import to
        return to(self, device="cuda" if device is None else f"cuda:{int(device)}")

    def to_device(self, device, /, *, stream=None):
        from .transfer import to
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
        return apply(P["getitem"], self, key=_raw_key(key, self))

    def __setitem__(self, key, value):
        key = _raw_key(key, self)
        self._inplace("setitem", value, key=key)

    # -- in-place machinery -------------------------------------------------------------------
    def _inplace(self, name, *others, _iop=None, **opts):
        """Run op ``name`` in place. See the module docstring for the semantics."""
        node = self._node
        recording = _mode.enabled
        if recording and type(node) is AccumulateGrad:
            raise RuntimeError(LEAF_INPLACE_MSG)
        # forward mode: a dual operand needs the op's JVP too, so the op runs through apply
        dual = engine.forward_ad_state.level and (recording or node is None) and (
            self._tangent is not None or any(isinstance(o, Tensor) and o._tangent is not None
                                             for o in others))
        if dual or recording and (node is not None or any(
                isinstance(o, Tensor) and o._node is not None for o in others)):
            out = apply(P[name], self, *others, **opts)
            self._rebind(out)
            return self
        st = self._st
        other_arrays = [_raw_operand(o, self) for o in others]
        if _iop is not None and st.saved == 0:
            arr = _iop(st.array, *other_arrays)     # the standard's in-place operator
        else:
            if name == "setitem":
                arr = st.array if st.saved == 0 else self._backend.xp.asarray(st.array, copy=True)
                arr[opts["key"]] = other_arrays[0]
            else:
                with grad_mode.no_grad():
                    arr = apply(P[name], self, *others, **opts)._st.array
                if arr.dtype != st.array.dtype:
                    arr = self._backend.xp.astype(arr, st.array.dtype)
            st.saved = 0         # a new buffer: no graph node holds it
        st.array = arr
        st.version += 1
        return self

    def _rebind(self, out):
        """Make this tensor the output ``out`` of a recorded op, keeping aliases in sync."""
        st, new = self._st, out._st
        node = out._node
        if node is not None:
            node.stores = [st if s is new else s for s in node.stores]
        st.array, st.saved = new.array, new.saved
        st.version += 1
        self._node = node
        self._tangent = out._tangent

    def zero_(self):
        return self._inplace_value(0)

    def fill_(self, value):
        return self._inplace_value(value)

    def _inplace_value(self, value):
        if _mode.enabled and type(self._node) is AccumulateGrad:
            raise RuntimeError(LEAF_INPLACE_MSG)
        xp = self._backend.xp
        st = self._st
        arr = xp.full(st.array.shape, value, dtype=st.array.dtype,
                      device=getattr(st.array, "device", None))
        st.array, st.saved = arr, 0
        st.version += 1
        if self._node is not None and type(self._node) is not AccumulateGrad and _mode.enabled:
            self._node = None   # a constant now: no gradient flows to what it was computed from
        return self

    def copy_(self, src):
        src = _as_tensor_like(src, self)
        if src._backend is not self._backend:
            src = src.to(self._backend.name, device=self.device)
        if tuple(src.shape) != tuple(self.shape):
            src = src.broadcast_to(self.shape)
        return self._inplace("copy", src)

    def add_(self, other, *, alpha=1):
        if alpha == 1:
            return self._inplace("add", other, _iop=operator.iadd)
        axpy = self._backend.overrides.get("axpy_")
        recorded = _mode.enabled and (self._node is not None or getattr(other, "_node", None)
                                      is not None)
        if axpy is not None and isinstance(other, Tensor) and not recorded and \
                not engine.forward_ad_state.level:
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
        if self.ndim < 2:
            return self
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return apply(P["permute_dims"], self, (1, 0))

    def permute(self, *dims):
        dims = _varargs(dims)
        return apply(P["permute_dims"], self, tuple(d % self.ndim for d in dims))

    def permute_dims(self, axes):
        return apply(P["permute_dims"], self, tuple(axes))

    def transpose(self, dim0, dim1):
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
        if dim is None:
            dim = tuple(i for i, s in enumerate(self.shape) if s == 1)
        elif isinstance(dim, int):
            if self.shape[dim] != 1:
                return self
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
        return apply(P["flip"], self, axis=dims if dims is None else tuple(_varargs((dims,))))

    def _reduce(self, name, dim, keepdim, axis=None, keepdims=None, **kw):
        axis = dim if axis is None else axis
        if isinstance(axis, list):
            axis = tuple(axis)
        keep = keepdim if keepdims is None else keepdims
        return apply(P[name], self, axis=axis, keepdims=bool(keep), **kw)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        kw = {"dtype": self._backend.native_dtype(dtype)} if dtype is not None else {}
        return self._reduce("sum", dim, keepdim, axis, keepdims, **kw)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return self._reduce("mean", dim, keepdim, axis, keepdims)

    def prod(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return self._reduce("prod", dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False):
        return self._reduce("max", dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return self._reduce("min", dim, keepdim)

    def max(self, dim=None, keepdim=False):
        if dim is None:
            return self._reduce("max", None, False)
        return _values_indices(self, "max", dim, keepdim)

    def min(self, dim=None, keepdim=False):
        if dim is None:
            return self._reduce("min", None, False)
        return _values_indices(self, "min", dim, keepdim)

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        corr = (1.0 if unbiased else 0.0) if correction is None else float(correction)
        return self._reduce("var", dim, keepdim, correction=corr)

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        corr = (1.0 if unbiased else 0.0) if correction is None else float(correction)
        return self._reduce("std", dim, keepdim, correction=corr)

    def logsumexp(self, dim=None, keepdim=False):
        return self._reduce("logsumexp", dim, keepdim)

    def cumsum(self, dim):
        return apply(P["cumulative_sum"], self, axis=dim)

    def argmax(self, dim=None, keepdim=False):
        return apply(P["argmax"], self, axis=dim, keepdims=keepdim)

    def argmin(self, dim=None, keepdim=False):
        return apply(P["argmin"], self, axis=dim, keepdims=keepdim)

    def all(self, dim=None, keepdim=False):
        return apply(P["all"], self, axis=dim, keepdims=keepdim)

    def any(self, dim=None, keepdim=False):
        return apply(P["any"], self, axis=dim, keepdims=keepdim)

    def norm(self, p=2, dim=None, keepdim=False):
        """The vector p-norm over all elements (or ``dim``), as torch's ``Tensor.norm``."""
        if p == 2:
            return (self * self).sum(dim, keepdim).sqrt()
        if p == 1:
            return self.abs().sum(dim, keepdim)
        if p in (float("inf"), "inf"):
            return self.abs().amax(dim, keepdim)
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    def pow(self, exponent):
        return apply(P["pow"], self, exponent)

    def matmul(self, other):
        return apply(P["matmul"], self, other)

    mm = matmul
    mv = matmul

    def dot(self, other):
        return apply(P["vecdot"], self, other)

    def clamp(self, min=None, max=None):
        return apply(P["clip"], self, min=min, max=max)

    clip = clamp

    def relu(self):
        from .nn import functional as F
        return F.relu(self)

    def sigmoid(self):
        from .nn import functional as F
        return F.sigmoid(self)

    def softmax(self, dim):
        from .nn import functional as F
        return F.softmax(self, dim=dim)

    def log_softmax(self, dim):
        from .nn import functional as F
        return F.log_softmax(self, dim=dim)

    def new_zeros(self, *shape):
        from .creation import zeros
        return zeros(*shape, dtype=self.dtype, device=self.device, backend=self._backend)

    def new_ones(self, *shape):
        from .creation import ones
        return ones(*shape, dtype=self.dtype, device=self.device, backend=self._backend)

    def new_tensor(self, data):
        from .creation import tensor
        return tensor(data, dtype=self.dtype, device=self.device, backend=self._backend)

    def is_floating_point(self):
        return self.dtype.is_floating_point


class _ValuesIndices(tuple):
    """torch's ``(values, indices)`` result of ``max(dim)`` / ``min(dim)``."""

    values = property(operator.itemgetter(0))
    indices = property(operator.itemgetter(1))


def _values_indices(t, name, dim, keepdim):
    values = apply(P[name], t, axis=dim, keepdims=keepdim)
    indices = apply(P["arg" + name], t, axis=dim, keepdims=keepdim)
    return _ValuesIndices((values, indices))


def _varargs(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# -- operators and unary methods, generated from one table -----------------------------------

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
                "floordiv": operator.ifloordiv, "mod": operator.imod, "and": operator.iand,
                "or": operator.ior, "xor": operator.ixor, "lshift": operator.ilshift,
                "rshift": operator.irshift}
_UNARY = ["exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "asin",
          "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "square",
          "abs", "sign", "floor", "ceil", "round", "trunc", "reciprocal", "negative",
          "logical_not", "isnan", "isinf", "isfinite"]
_TORCH_UNARY_ALIASES = {"neg": "negative", "arcsin": "asin", "arccos": "acos",
                        "arctan": "atan", "rsqrt": None}


_COMMUTATIVE = {"add", "multiply", "bitwise_and", "bitwise_or", "bitwise_xor"}


_KIND_RANK = {"bool": 0, "signed integer": 1, "unsigned integer": 1, "real floating": 2,
              "complex floating": 3}


def _promote_kinds(a, b):
    """torch promotes across kinds (``x * mask``, ``x * arange(n)``): the operand of the higher
    kind keeps its dtype. The standard has no cross-kind promotion (array-api-strict refuses
    it, numpy would widen float32 to float64), so the lower operand is cast explicitly."""
    ra, rb = _KIND_RANK[a.dtype.kind], _KIND_RANK[b.dtype.kind]
    if ra < rb:
        return a.astype(b.dtype), b
    if rb < ra:
        return a, b.astype(a.dtype)
    return a, b


_SCALAR_DTYPE = {int: "int64", float: "float32"}


def _promote_scalar(t, s):
    """torch's promotion of a Python scalar of a higher kind (``arange(3) * 2.5`` is float32,
    not float64 as numpy has it, nor an error as the standard has it)."""
    if type(s) is bool:
        return t, s if t.dtype.kind == "bool" else int(s)
    kind = t.dtype.kind
    if kind == "bool" or (type(s) is float and kind in ("signed integer", "unsigned integer")):
        return t.astype(_SCALAR_DTYPE[type(s)]), s
    return t, s


def _binary(prim_name):
    prim = PRIMITIVES[prim_name]

    def op(self, other):
        if isinstance(other, Tensor):
            if other._st.array.dtype != self._st.array.dtype:
                self, other = _promote_kinds(self, other)
        elif type(other) in _SCALAR_DTYPE or type(other) is bool:
            self, other = _promote_scalar(self, other)
        return apply(prim, self, other)

    if prim_name in _COMMUTATIVE:
        # torch records `2 * b` as mul(b, 2): the tensor comes first in next_functions (YT-2)
        rop = op
    else:
        def rop(self, other):
            if type(other) in _SCALAR_DTYPE or type(other) is bool:
                self, other = _promote_scalar(self, other)
            return apply(prim, other, self)
    return op, rop


def _inplace_method(prim_name, iop):
    def iop_method(self, other):
        return self._inplace(prim_name, other, _iop=iop)
    return iop_method


def _unary(prim_name):
    prim = PRIMITIVES[prim_name]

    def method(self):
        return apply(prim, self)

    def method_(self):
        return self._inplace(prim_name)
    method.__name__ = prim_name
    return method, method_


def _install():
    for dunder, name in _BINARY.items():
        op, rop = _binary(name)
        setattr(Tensor, f"__{dunder}__", op)
        setattr(Tensor, f"__r{dunder}__", rop)
        setattr(Tensor, f"__i{dunder}__", _inplace_method(name, _INPLACE_OPS.get(dunder)))
    for dunder, name in _COMPARE.items():
        setattr(Tensor, f"__{dunder}__", _binary(name)[0])
    for name in _UNARY:
        method, method_ = _unary(name)
        if not hasattr(Tensor, name):
            setattr(Tensor, name, method)
        setattr(Tensor, name + "_", method_)
    for alias, name in _TORCH_UNARY_ALIASES.items():
        if name is not None:
            setattr(Tensor, alias, getattr(Tensor, name))
            setattr(Tensor, alias + "_", getattr(Tensor, name + "_"))
    Tensor.rsqrt = lambda self: self.sqrt().reciprocal()
    Tensor.__neg__ = lambda self: apply(PRIMITIVES["negative"], self)
    Tensor.__pos__ = lambda self: apply(PRIMITIVES["positive"], self)
    Tensor.__abs__ = lambda self: apply(PRIMITIVES["abs"], self)
    Tensor.__invert__ = lambda self: apply(PRIMITIVES["bitwise_invert"], self)


# -- construction helpers used across polygrad ------------------------------------------------

def _make(array_or_storage, backend, node=None, tangent=None, share=False):
    """Wrap a raw array (or share a Storage) as a Tensor without any checks."""
    t = Tensor.__new__(Tensor)
    t._st = array_or_storage if share else Storage(array_or_storage)
    t._backend = backend
    t._node = node
    t._grad = None
    t._tangent = tangent
    return t


def _wrap_raw(obj, prim=None):
    """A Tensor for a raw array owned by some backend, or None for anything else."""
    from .plugins import owner_of
    backend = owner_of(obj)
    if backend is None:
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, Tensor) for o in obj):
            raise TypeError(f"{getattr(prim, 'name', 'op')}() takes arrays as separate "
                            f"arguments, not a list of Tensors")
        return None
    return _make(obj, backend)


def _raw_operand(value, like):
    if isinstance(value, Tensor):
        if value._backend is not like._backend:
            engine._mismatch(PRIMITIVES["add"], like._backend, value._backend)
        return value._st.array
    return value


def _raw_key(key, like):
    if isinstance(key, tuple):
        return tuple(_raw_key(k, like) for k in key)
    if isinstance(key, Tensor):
        return _raw_operand(key, like)
    if isinstance(key, list):
        return like._backend.xp.asarray(key)
    return key


def _as_tensor_like(value, like):
    if isinstance(value, Tensor):
        return value
    from .creation import asarray
    return asarray(value, backend=like._backend)


def _rebuild(backend_name, host, requires_grad):
    from .creation import from_numpy
    return from_numpy(host, backend=backend_name, requires_grad=requires_grad)


_install()
engine.Tensor = Tensor
engine._make = _make
engine._wrap_raw = _wrap_raw
