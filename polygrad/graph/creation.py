"""Creating tensors: constructors from data, filled, ranges, random numbers.

Every constructor takes ``backend=``, ``device=``, ``dtype=`` and
``requires_grad=``. Without ``backend=``, a tensor is made on the current
default backend (``polygrad.plugins.defaults``). Wrapping an existing array picks
the backend that owns its type.
"""

from __future__ import annotations

import operator

from ..base import dtypes as _dtypes
from ..plugins import random as _rng
from ..plugins.defaults import default_backend, default_device, default_device_for, pick_backend
from ..plugins.host import get_backend, owner_of
from .engine import report_opaque
from .tensor import Tensor, wrap

__all__ = ["tensor", "asarray", "from_numpy", "zeros", "ones", "full", "empty", "eye",
           "arange", "linspace", "zeros_like", "ones_like", "full_like", "empty_like",
           "rand", "randn", "randint", "rand_like", "randn_like", "manual_seed",
           "randperm", "bernoulli"]

def _backend(backend, device=None):
    """The backend for a new tensor: the one named, else the default one, unless ``device``
    asks for a device the default lacks ("cuda" then means the default CUDA-capable backend)."""
    if backend is not None:
        return get_backend(backend)
    b = default_backend()
    if device is None:
        device = default_device()         # set_default_device's, if any
    if device is not None:
        b = pick_backend(b, device)
    return b


def _native_device(b, device):
    """``device`` on ``b``, else set_default_device's device where ``b`` has it, else ``b``'s
    own default (None)."""
    return b.to_native_device(device if device is not None else default_device_for(b))


def _finish(array, backend, requires_grad):
    t = wrap(array, backend)
    if requires_grad:
        t.requires_grad = True       # validates the dtype
    return t


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        return tuple(operator.index(s) for s in size)      # 2.5 is no size: torch refuses it
    except TypeError:
        bad = next(s for s in size if not hasattr(type(s), "__index__"))
        raise TypeError(f"size must be a tuple of ints, but found element {bad!r} of type "
                        f"{type(bad).__name__}; pass int({bad!r}) or round it") from None


def _float_or(backend, dtype):
    return backend.native_dtype(_dtypes.DEFAULT_FLOAT if dtype is None else dtype)


# -- from data ------------------------------------------------------------------------------

def tensor(data, *, dtype=None, device=None, requires_grad=False, backend=None):
    """A new leaf tensor holding a copy of ``data`` (nested lists, scalars or arrays).

    As ``torch.tensor``: Python floats become the default dtype (float32 unless
    ``set_default_dtype`` changed it), Python ints int64; an array (numpy's, torch's, ...)
    keeps its dtype and is copied onto the default backend and device, as torch copies an
    ndarray onto its default device (``asarray`` keeps the array's own backend instead).

    >>> import polygrad
    >>> polygrad.tensor([[1., 2.], [3., 4.]]).shape
    polygrad.Size([2, 2])
    """
    if isinstance(data, Tensor):
        data = data.detach()
        out = data.to(backend, device=device, dtype=dtype) if backend or device else data
        out = out.astype(dtype) if dtype is not None else out.clone()
        return _finish(out._st.array, out._backend, requires_grad)
    owner = owner_of(data)
    if owner is None:
        _check_data(data)
    b = _backend(backend, device)
    if device is None:
        device = default_device_for(b)
    if owner is not None and owner is not b:
        array = b.from_numpy(owner.to_numpy(data), device=device)
    else:
        array = data
    xp = b.xp
    dev = b.to_native_device(device)
    nat = b.native_dtype(dtype)
    if nat is None and owner is None:
        kind = _python_kind(data)
        if kind in ("float", "complex"):
            nat = b.native_dtype(_dtypes.DEFAULT_FLOAT if kind == "float" else
                                 _dtypes.default_complex())
    kw = {"dtype": nat} if nat is not None else {}
    if dev is not None:
        kw["device"] = dev
    array = xp.asarray(array, copy=True, **kw) if owner is not None else xp.asarray(array, **kw)
    return _finish(array, b, requires_grad)


_NOT_DATA = (str, bytes, bytearray, dict, set, frozenset, type(None))


def _check_data(data):
    """tensor() data is numbers or (nested) lists of numbers: a string or None is refused
    here, with the fix, before any backend turns it into an array of characters or objects."""
    if isinstance(data, _NOT_DATA):
        raise TypeError(f"tensor(): data must be a number, a (nested) list of numbers or an "
                        f"array, not {type(data).__name__} ({data!r:.40}); convert it first, "
                        f"e.g. polygrad.tensor(float(x))")
    if isinstance(data, (list, tuple)):
        for d in data:
            _check_data(d)


def _python_kind(data):
    """"complex" or "float" when ``data`` holds a Python complex or float (the default dtype's
    kinds; an empty list is a float one, as in torch), else None: numpy's scalars keep their
    own dtype, and a list that holds one is left to the backend."""
    if isinstance(data, (list, tuple)):
        if not data:
            return "float"
        kinds = {_python_kind(d) for d in data}
        if "array" in kinds:
            return "array"
        return "complex" if "complex" in kinds else "float" if "float" in kinds else None
    if hasattr(data, "dtype"):
        return "array"
    if isinstance(data, complex):
        return "complex"
    return "float" if isinstance(data, float) else None


def asarray(obj, /, *, dtype=None, device=None, copy=None, backend=None, requires_grad=False):
    """Wrap ``obj`` without copying where possible; an existing array keeps its backend.

    >>> import numpy, polygrad
    >>> polygrad.asarray(numpy.ones(3)).dtype
    polygrad.float64
    """
    if isinstance(obj, Tensor):
        out = obj
        if backend is not None or device is not None or dtype is not None:
            out = obj.to(backend, device=device, dtype=dtype)
        if copy:
            out = out.clone()
        if requires_grad:
            out = out.detach() if out is obj and not out.requires_grad else out
            out.requires_grad_(True)
        return out
    owner = owner_of(obj)
    if owner is not None and (backend is None or _backend(backend) is owner):
        b = owner
        array = obj
        if dtype is not None or device is not None or copy:
            kw = {}
            if dtype is not None:
                kw["dtype"] = b.native_dtype(dtype)
            if device is not None:
                kw["device"] = _native_device(b, device)
            array = b.xp.asarray(obj, copy=copy, **kw)
        return _finish(array, b, requires_grad)
    return tensor(obj, dtype=dtype, device=device, requires_grad=requires_grad, backend=backend)


def from_numpy(array, *, backend=None, device=None, requires_grad=False, dtype=None):
    """A tensor on ``backend`` made from a host numpy array through the backend's from_numpy.
    It shares the array's memory where it can, as ``torch.from_numpy`` does (writes to either
    show in the other): on the backend that owns the array (numpy's), and on a backend that
    takes it through DLPack without a copy (torch's on the CPU); elsewhere it copies.

    >>> import numpy, polygrad
    >>> a = numpy.zeros(2)
    >>> t = polygrad.from_numpy(a)
    >>> a[0] = 5.0
    >>> t
    tensor([5., 0.], dtype=polygrad.float64)
    """
    b = _backend(backend, device)
    if device is None and dtype is None:
        if owner_of(array) is b:
            return _finish(array, b, requires_grad)
        try:
            shared = b.xp.from_dlpack(array)
        except Exception:  # noqa: BLE001 - no DLPack path here (read-only, a GPU, none): copy
            shared = None
        if shared is not None and owner_of(shared) is b:
            return _finish(shared, b, requires_grad)
    out = b.from_numpy(array, device=device)
    if dtype is not None:
        out = b.xp.astype(out, b.native_dtype(dtype))
    return _finish(out, b, requires_grad)


# -- filled -----------------------------------------------------------------------------------

def _filled(kind, size, fill, dtype, device, requires_grad, backend):
    b = _backend(backend, device)
    xp = b.xp
    shape = _shape(size)
    nat = _float_or(b, dtype) if dtype is not None or not isinstance(fill, (bool, int)) or \
        kind != "full" else None
    if dtype is None and isinstance(fill, complex):      # as torch: the default complex dtype
        nat = b.native_dtype(_dtypes.default_complex())
    dev = _native_device(b, device)
    kw = {"dtype": nat}
    if dev is not None:
        kw["device"] = dev
    if kind == "zeros":
        arr = xp.zeros(shape, **kw)
    elif kind == "ones":
        arr = xp.ones(shape, **kw)
    elif kind == "empty":
        arr = xp.empty(shape, **kw)
    else:
        if kw["dtype"] is None:
            kw["dtype"] = b.native_dtype("bool" if isinstance(fill, bool) else "int64")
        arr = xp.full(shape, fill, **kw)
    return _finish(arr, b, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, backend=None):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``.

    >>> import polygrad
    >>> polygrad.zeros(2, 3).shape
    polygrad.Size([2, 3])
    """
    return _filled("zeros", size, 0.0, dtype, device, requires_grad, backend)


def ones(*size, dtype=None, device=None, requires_grad=False, backend=None):
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``."""
    return _filled("ones", size, 1.0, dtype, device, requires_grad, backend)


def empty(*size, dtype=None, device=None, requires_grad=False, backend=None):
    """An uninitialised tensor."""
    return _filled("empty", size, 0.0, dtype, device, requires_grad, backend)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, backend=None):
    """A tensor filled with ``fill_value``."""
    return _filled("full", (size,) if isinstance(size, int) else (tuple(size),), fill_value,
                   dtype, device, requires_grad, backend)


def _like(kind, t, fill, dtype, device, requires_grad, backend):
    if not isinstance(t, Tensor):
        t = asarray(t)
    return _filled(kind, (t.shape,), fill, dtype or t.dtype, device or t.device,
                   requires_grad, backend or t._backend)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, backend=None):
    return _like("zeros", input, 0.0, dtype, device, requires_grad, backend)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, backend=None):
    return _like("ones", input, 1.0, dtype, device, requires_grad, backend)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, backend=None):
    return _like("empty", input, 0.0, dtype, device, requires_grad, backend)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, backend=None):
    return _like("full", input, fill_value, dtype, device, requires_grad, backend)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, backend=None, k=0):
    """An ``n x m`` identity matrix (QS-5 uses ``eye(4, 5)``)."""
    b = _backend(backend, device)
    kw = {"dtype": _float_or(b, dtype)}
    dev = _native_device(b, device)
    if dev is not None:
        kw["device"] = dev
    return _finish(b.xp.eye(n, m, k=k, **kw), b, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, backend=None):
    """Values from ``start`` to ``end`` (exclusive), torch and Array API style."""
    b = _backend(backend, device)
    if end is None:
        start, end = 0, start
    kw = {}
    if dtype is not None:
        kw["dtype"] = b.native_dtype(dtype)
    elif any(isinstance(v, float) for v in (start, end, step)):
        kw["dtype"] = b.native_dtype(_dtypes.DEFAULT_FLOAT)
    dev = _native_device(b, device)
    if dev is not None:
        kw["device"] = dev
    return _finish(b.xp.arange(start, end, step, **kw), b, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, backend=None):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (YT-1).

    >>> import polygrad
    >>> polygrad.linspace(0, 1, steps=3)
    tensor([0.0000, 0.5000, 1.0000])
    """
    b = _backend(backend, device)
    kw = {"dtype": _float_or(b, dtype)}
    dev = _native_device(b, device)
    if dev is not None:
        kw["device"] = dev
    return _finish(b.xp.linspace(start, end, int(steps), **kw), b, requires_grad)


# -- random -----------------------------------------------------------------------------------
# The numbers come from a polygrad.Generator (polygrad.plugins.random): by default one
# counter-based stream computed on the host, so a seed gives the same numbers on every
# backend; ``manual_seed(s, native=True)`` switches to the backends' own generators.

def manual_seed(seed, native=False):
    """Seed the default generator: the same seed gives the same numbers on every backend.
    ``native=True`` draws with each backend's own generator instead (faster on a GPU, other
    numbers on each backend) until the next ``manual_seed``. Returns the default generator.

    >>> import polygrad
    >>> _ = polygrad.manual_seed(0)
    >>> a = polygrad.randn(3, dtype=polygrad.float64)
    >>> _ = polygrad.manual_seed(0)
    >>> bool((polygrad.randn(3, dtype=polygrad.float64) == a).all())
    True
    """
    return _rng.manual_seed(seed, native=native)


def _generator(generator):
    report_opaque("random numbers: a replay would repeat the same draw; pass random tensors "
                  "in as arguments")
    if generator is None:
        return _rng.default_generator
    if not isinstance(generator, _rng.Generator):
        raise TypeError(f"generator must be a polygrad.Generator, got "
                        f"{type(generator).__module__}.{type(generator).__name__}; make one "
                        f"with polygrad.Generator().manual_seed(seed)")
    return generator


def _random(kind, size, dtype, device, requires_grad, backend, generator):
    gen = _generator(generator)
    b = _backend(backend, device)
    dt = _dtypes.as_dtype(_float_or(b, dtype))
    arr = getattr(gen, "draw_" + kind)(b, _shape(size), dt, _native_device(b, device))
    return _finish(arr, b, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, backend=None):
    """Uniform random numbers in [0, 1), the same on every backend for a seed.

    >>> import polygrad
    >>> u = polygrad.rand(2, 3)
    >>> tuple(u.shape), bool(((u >= 0) & (u < 1)).all())
    ((2, 3), True)
    """
    return _random("uniform", size, dtype, device, requires_grad, backend, generator)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, backend=None):
    """Standard normal random numbers, the same on every backend for a seed.

    >>> import polygrad
    >>> polygrad.randn(4).numel()
    4
    """
    return _random("normal", size, dtype, device, requires_grad, backend, generator)


def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False):
    """``rand`` in ``input``'s shape, dtype, device and backend."""
    return rand(input.shape, generator=generator, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad,
                backend=input._backend)


def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False):
    """``randn`` in ``input``'s shape, dtype, device and backend."""
    return randn(input.shape, generator=generator, dtype=dtype or input.dtype,
                 device=device or input.device, requires_grad=requires_grad,
                 backend=input._backend)


def _int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}; "
                        f"pass int({value!r})") from None


def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None,
            requires_grad=False, backend=None):
    """Random integers in [low, high) (``randint(high, size)`` as torch: low 0).

    >>> import polygrad
    >>> polygrad.randint(3, (5,)).dtype
    polygrad.int64
    """
    if high is None or (isinstance(high, (tuple, list)) and size == ()):
        low, high, size = 0, low, (() if high is None else high)
    low, high = _int(low, "low"), _int(high, "high")
    if not low < high:
        raise ValueError(f"randint needs low < high, got low={low}, high={high}")
    if not (-(1 << 63) <= low and high < (1 << 63)):
        raise ValueError(f"randint's low and high must fit int64, got [{low}, {high})")
    gen = _generator(generator)
    b = _backend(backend, device)
    dt = _dtypes.as_dtype(dtype or "int64")
    b.native_dtype(dt)                         # the backend has the dtype (else TypeError)
    arr = gen.draw_integers(b, low, high, _shape(size), dt, _native_device(b, device))
    return _finish(arr, b, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False, backend=None):
    """A random permutation of ``0 .. n-1``, the same on every backend for a seed.

    >>> sorted(randperm(4).tolist())
    [0, 1, 2, 3]
    """
    n = _int(n, "n")
    if n < 0:
        raise ValueError(f"randperm needs n >= 0, got {n}")
    gen = _generator(generator)
    b = _backend(backend, device)
    dt = _dtypes.as_dtype(dtype or "int64")
    b.native_dtype(dt)
    arr = gen.draw_permutation(b, n, dt, _native_device(b, device))
    return _finish(arr, b, requires_grad)


def bernoulli(input, p=None, *, generator=None):
    """0s and 1s, 1 with probability ``input`` elementwise (or ``p``), in ``input``'s dtype
    and backend: a uniform draw below the probability.

    >>> import polygrad
    >>> bernoulli(polygrad.tensor([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli expects a Tensor of probabilities, got "
                        f"{type(input).__name__}; wrap it with polygrad.tensor(...)")
    b, dt = input._backend, input.dtype
    if not dt.is_floating_point:
        raise TypeError(f"bernoulli needs floating-point probabilities, got a {dt.name} "
                        f"tensor; convert it with .float()")
    xp = b.xp
    if p is None:
        probs = input._st.array
        bad = bool(xp.any((probs < 0) | (probs > 1) | (probs != probs)))
    else:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"p must be a float, got {type(p).__name__}")
        probs = float(p)
        bad = not 0.0 <= probs <= 1.0
    if bad:
        raise ValueError("bernoulli's probabilities must lie in [0, 1]")
    u = _generator(generator).draw_uniform(b, tuple(input.shape), dt,
                                      b.to_native_device(str(input.device)))
    return _finish(xp.astype(u < probs, b.native_dtype(dt)), b, False)
