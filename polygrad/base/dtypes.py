"""polygrad's dtype objects: backend-independent names for the Array API dtypes.

A ``DType`` is only a name; each backend maps it to its own dtype object
(``Backend.native_dtype``). This module does not import any array library.
"""

__all__ = [
    "DType", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    "float", "double", "half", "long", "int", "DTYPES", "as_dtype", "get_default_dtype",
    "set_default_dtype", "default_complex",
]

_builtin_float = float
_builtin_int = int
_builtin_bool = bool


class DType:
    """A dtype name shared by every backend, such as ``polygrad.float32``.

    >>> import polygrad
    >>> polygrad.float32.is_floating_point
    True
    """

    __slots__ = ("name", "kind", "itemsize")

    def __init__(self, name, kind, itemsize):
        self.name, self.kind, self.itemsize = name, kind, itemsize

    @property
    def is_floating_point(self):
        return self.kind == "real floating"

    @property
    def is_complex(self):
        return self.kind == "complex floating"

    def __repr__(self):
        return f"polygrad.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


def _make(name, kind, itemsize):
    return DType(name, kind, itemsize)


bool = _make("bool", "bool", 1)
int8 = _make("int8", "signed integer", 1)
int16 = _make("int16", "signed integer", 2)
int32 = _make("int32", "signed integer", 4)
int64 = _make("int64", "signed integer", 8)
uint8 = _make("uint8", "unsigned integer", 1)
uint16 = _make("uint16", "unsigned integer", 2)
uint32 = _make("uint32", "unsigned integer", 4)
uint64 = _make("uint64", "unsigned integer", 8)
float16 = _make("float16", "real floating", 2)
bfloat16 = _make("bfloat16", "real floating", 2)
float32 = _make("float32", "real floating", 4)
float64 = _make("float64", "real floating", 8)
complex64 = _make("complex64", "complex floating", 8)
complex128 = _make("complex128", "complex floating", 16)

# torch's aliases, so that `import polygrad as torch` code keeps working.
float, double, half, long, int = float32, float64, float16, int64, int32

DTYPES = {d.name: d for d in (
    bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
    float16, bfloat16, float32, float64, complex64, complex128)}

# The dtype of Python floats made into tensors, as torch's default dtype: process-wide,
# changed only by set_default_dtype below (read it through get_default_dtype(), or as
# dtypes.DEFAULT_FLOAT at call time, never imported by value). Integers stay int64.
DEFAULT_FLOAT = float32
DEFAULT_INT = int64


def get_default_dtype():
    """The floating dtype new tensors get from Python floats (float32 unless changed).

    >>> import polygrad
    >>> polygrad.get_default_dtype()
    polygrad.float32
    """
    return DEFAULT_FLOAT


def set_default_dtype(d):
    """Make ``d`` (a floating dtype) the dtype of tensors made from Python floats, as
    ``torch.set_default_dtype``: creation functions and float literals follow it, integer
    data stays int64, and complex data becomes the matching complex dtype.

    >>> import polygrad
    >>> polygrad.set_default_dtype(polygrad.float64)
    >>> polygrad.tensor([1.5]).dtype
    polygrad.float64
    >>> polygrad.set_default_dtype(polygrad.float32)
    """
    global DEFAULT_FLOAT
    dt = as_dtype(d)
    if dt is None or not dt.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got "
                        f"{dt!r}; pass one of polygrad.float16, bfloat16, float32, float64")
    DEFAULT_FLOAT = dt


def default_complex():
    """The complex dtype that goes with the default floating dtype (complex128 for float64)."""
    return complex128 if DEFAULT_FLOAT is float64 else complex64


def as_dtype(value):
    """Turn a DType, a dtype name, a Python type or a backend's dtype into a DType.

    >>> as_dtype("float64")
    polygrad.float64
    """
    if value is None or isinstance(value, DType):
        return value
    if isinstance(value, str):
        try:
            return DTYPES[value]
        except KeyError:
            raise TypeError(f"unknown dtype {value!r}; polygrad knows {sorted(DTYPES)}") from None
    if value is _builtin_float:
        return float64
    if value is _builtin_int:
        return int64
    if value is _builtin_bool:
        return bool
    # A backend's own dtype object (numpy.dtype('float32'), torch.float64, ...) or scalar
    # type (numpy.float32): go by its name.
    name = getattr(value, "name", None)
    if not isinstance(name, str):
        name = getattr(value, "__name__", None) if isinstance(value, type) else None
    if not isinstance(name, str):
        name = str(value).rsplit(".", 1)[-1]
    name = {"float": "float32", "double": "float64", "half": "float16", "long": "int64",
            "int": "int32"}.get(name, name)
    if name in DTYPES:
        return DTYPES[name]
    raise TypeError(f"cannot interpret {value!r} as a dtype; use one of {sorted(DTYPES)}")
