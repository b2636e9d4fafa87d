"""Promotion at the Tensor's operators (``x + y``, ``x * 2.5``) and the binary torch-style
functions: the Array API standard's rules within a kind, and torch's promotion across
kinds (``x * mask``, ``arange(3) * 2.5``) where the standard has none.
"""

from __future__ import annotations

from ..base import dtypes as _dtypes
from ..graph import creation
from ..graph.engine import apply
from ..graph.tensor import Tensor
from ..primitives import PRIMITIVES

__all__ = ["binary"]


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
        # a Python float makes the default floating dtype (float32 unless set_default_dtype)
        dtype = _dtypes.get_default_dtype() if type(s) is float else _SCALAR_DTYPE[type(s)]
        return t.astype(dtype), s
    return t, s


def _promote_zero_d(a, b):
    """torch's result type for a dimensioned tensor and a 0-d one (torch-style functions and
    methods): the 0-d tensor counts as a Python scalar of its dtype, so it decides the dtype
    only from a higher kind (``int8 tensor + tensor(5)`` is int8; ``int8 tensor +
    tensor(2.5, float64)`` float64; ``float32 tensor * tensor(2.0, float64)`` float32):
    c10's combine_categories(dimensioned, zero-dim)."""
    dim, zero = (a, b) if a.ndim else (b, a)
    hi, lo = dim.dtype, zero.dtype
    if hi.is_complex:
        target = hi
    elif lo.is_complex:
        target = _dtypes.as_dtype({"float64": "complex128", "float32": "complex64"}.get(
            hi.name, lo.name)) if hi.is_floating_point else lo
    elif hi.is_floating_point:
        target = hi
    elif hi.kind == "bool" or lo.is_floating_point:
        target = lo             # a bool tensor, or an integer one beside a float: the 0-d's
    else:
        target = hi
    return (a if a.dtype == target else a.astype(target),
            b if b.dtype == target else b.astype(target))


# unary rows whose torch spellings (polygrad.sin, x.sin()) compute an integer or bool tensor
# in the default float dtype, as torch's; the standard leaves integer input to them open
# (numpy's float64) and polygrad.ops keeps the backend's
FLOAT_VALUED = frozenset({
    "sqrt", "reciprocal", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan",
    "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid",
    "atan2", "copysign"})


def floating(x):
    """``x``, an integer or bool tensor in the default float dtype (torch's promotion for a
    float-valued function)."""
    if x.dtype.is_floating_point or x.dtype.is_complex:
        return x
    return x.astype(_dtypes.get_default_dtype())


def number_like(x, like):
    """A Python number as a tensor beside the tensor ``like`` (for rules that compute with
    both operands): of ``like``'s dtype, or the default float for a float beside an integer
    or bool tensor (torch's promotion); a tensor (or anything beside a non-tensor) as is."""
    if isinstance(x, Tensor) or not isinstance(like, Tensor):
        return x
    dtype = like.dtype
    if isinstance(x, float) and not (dtype.is_floating_point or dtype.is_complex):
        dtype = _dtypes.get_default_dtype()
    return creation.asarray(x, dtype=dtype, device=like.device, backend=like._backend)


def zero_d_promoted(a, b):
    """``a, b`` in torch's common dtype where they differ in dtype (for torch functions
    composed of others, or of rows applied directly, whose operands would promote as
    arrays): a 0-d tensor beside a dimensioned one as a number, across kinds the higher
    kind's dtype; else ``a, b`` unchanged."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        if (a.ndim == 0) != (b.ndim == 0):
            return _promote_zero_d(a, b)
        return _promote_kinds(a, b)
    return a, b


def binary(prim_name, torch_style=False):
    """``(op, rop)``: the operator and reflected operator for a binary registry row.
    ``torch_style``: the torch-style function or method (``polygrad.add``, ``x.mul``), where
    a 0-d tensor beside a dimensioned one promotes as torch's (``_promote_zero_d``); the
    operators (``x + y``) follow the standard, where a 0-d array is an array."""
    prim = PRIMITIVES[prim_name]
    opts = prim.torch_opts if torch_style else {}
    to_float = torch_style and prim_name in FLOAT_VALUED

    def op(self, other):
        if isinstance(other, Tensor):
            if other._st.array.dtype != self._st.array.dtype:
                if torch_style and (self.ndim == 0) != (other.ndim == 0):
                    self, other = _promote_zero_d(self, other)
                else:
                    self, other = _promote_kinds(self, other)
        elif type(other) in _SCALAR_DTYPE or type(other) is bool:
            self, other = _promote_scalar(self, other)
        if to_float and not (self.dtype.is_floating_point or self.dtype.is_complex):
            self = floating(self)           # atan2 of two int tensors: float32, as torch's
            other = floating(other) if isinstance(other, Tensor) else other
        return apply(prim, self, other, **opts)

    if prim_name in _COMMUTATIVE:
        # torch records `2 * b` as mul(b, 2): the tensor comes first in next_functions (YT-2)
        rop = op
    else:
        def rop(self, other):
            if type(other) in _SCALAR_DTYPE or type(other) is bool:
                self, other = _promote_scalar(self, other)
            if to_float and not (self.dtype.is_floating_point or self.dtype.is_complex):
                self = floating(self)
            return apply(prim, other, self, **opts)
    return op, rop
