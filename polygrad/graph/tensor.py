"""The Tensor's state: a backend array (in a ``Storage`` shared by aliases) plus autograd
state (its graph node, ``.grad``, forward-mode tangent).

Slots, written only by the graph layer: ``_st`` (Storage), ``_backend`` (Backend),
``_node`` (None, an AccumulateGrad for a leaf that requires grad, or the Node that made
it), ``_grad`` and ``_tangent``. ``wrap`` and ``share`` make Tensors; the engine
(``polygrad.graph.engine``) runs ops on them. Methods that run ops are installed by
``polygrad.ops.methods`` (as JAX's array_methods installs its array methods), so this
module imports nothing above the graph layer.
"""

from __future__ import annotations

import math
import warnings
import weakref

from ..base.device import device as Device
from ..base.shape import Size
from .format import format_tensor
from .node import AccumulateGrad, Storage

__all__ = ["Tensor", "wrap", "share", "NUMPY_GRAD_MSG", "LEAF_INPLACE_MSG"]

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

    This class holds the state (its buffer, backend, graph node, gradient and tangent) and
    the members that need nothing but that state. Every method that runs an op is
    installed by ``polygrad.ops.methods`` from the op registry, a layer up.

    >>> import polygrad
    >>> a = polygrad.tensor([1.0, 2.0], requires_grad=True)
    >>> (a * a).sum().backward()
    >>> a.grad
    tensor([2., 4.])
    """

    __slots__ = ("_st", "_node", "_backend", "_grad", "_tangent", "_view", "__weakref__")
    __array_priority__ = 1000      # numpy defers its operators to ours

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
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}; wrap it first, e.g. "
                                f"polygrad.asarray(value)")
            if value._backend is not self._backend:
                raise RuntimeError(f"assigned grad is on backend {value.backend!r} but the "
                                   f"tensor is on {self.backend!r}; move it with "
                                   f".to({self.backend!r})")
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

    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return share(self._st, self._backend)

    def detach_(self):
        self._node = None
        return self

    @property
    def data(self):
        """The same memory, outside autograd: a memory record of its own, so writes through
        it neither bump this tensor's version nor copy what backward saved (as torch's)."""
        st = self._st
        alias = Storage(st.array)
        if self._backend.shares_memory is None:      # simulated memory: an identity view
            alias.follow(st)
        return share(alias, self._backend)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}; wrap it "
                            f"first, e.g. polygrad.asarray(value)")
        self._st, self._backend = value._st, value._backend

    @property
    def _version(self):
        return self._st.buf.version

    # -- array attributes ---------------------------------------------------------------------
    @property
    def shape(self):
        return tuple.__new__(Size, self._st.array.shape)   # a backend's ints: no checks

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
        """NumPy 2's contract: ``numpy.array(t)`` (copy=True) never aliases the tensor;
        ``numpy.asarray(t, copy=False)`` shares its memory or raises ValueError; the
        default shares where the backend can (numpy, torch on the CPU), as ``numpy()``."""
        self._check_host("__array__ (numpy.asarray)")
        arr = self._st.array
        out = self._backend.to_numpy(arr)
        shared = out is arr or (out.base is not None and type(out.base) is type(arr))
        if copy is False:
            if not shared or (dtype is not None and out.dtype != dtype):
                raise ValueError(
                    f"Unable to avoid copy while creating a numpy array from a "
                    f"{self.backend!r} tensor{'' if dtype is None else f' as {dtype}'}: its "
                    f"memory cannot be shared. Use numpy.asarray(t) or numpy.array(t) (a copy).")
            return out
        if dtype is not None and out.dtype != dtype:
            return out.astype(dtype)                    # a new array
        return out.copy() if copy and (shared or out.base is not None) else out

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

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if self._node is not None:      # a DLPack consumer would silently drop the gradient
            raise RuntimeError("Can't export a Tensor that requires grad through DLPack; use "
                               "tensor.detach() first.")
        kw = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        return self._st.array.__dlpack__(**{k: v for k, v in kw.items() if v is not None})

    def __dlpack_device__(self):
        return self._st.array.__dlpack_device__()

    def __repr__(self):
        return format_tensor(self)

    __str__ = __repr__
    __hash__ = object.__hash__

    def is_floating_point(self):
        return self.dtype.is_floating_point


_new = object.__new__


def wrap(array, backend, node=None, tangent=None):
    """A Tensor for a raw array of ``backend`` (no checks: the graph layer's constructor)."""
    t = _new(Tensor)
    t._st = Storage(array)
    t._backend = backend
    t._node = node
    t._grad = None
    t._tangent = tangent
    t._view = None
    return t


def share(storage, backend, node=None):
    """A Tensor over an existing Storage: an alias (``detach()``, ``.data``)."""
    t = _new(Tensor)
    t._st = storage
    t._backend = backend
    t._node = node
    t._grad = None
    t._tangent = None
    t._view = None
    return t
