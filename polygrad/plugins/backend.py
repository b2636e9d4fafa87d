"""The Backend declaration: what a plugin hands to ``register(...)``.

A Backend is a small declarative object. Discovery only evaluates strings and
callables, so listing plugins never imports an array library; ``Backend.xp``
imports it on first use. This module owns the declaration and its runtime
caches (the namespace, per-op functions, dtype maps). The registry of backends
lives in ``polygrad.plugins.host``; the raw namespace the rules run on is built by
``polygrad.primitives.raw``; the engine that calls ops lives in ``polygrad.graph``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import dtypes as _dtypes
from ..base.device import device as _device
from ..base.errors import BackendUnavailableError, UnsupportedOperation

__all__ = ["Backend", "KnownFailure"]

FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class KnownFailure:
    """A known bug of a backend: conformance checks whose id matches run as strict xfail.

    ``match`` is a glob over check ids such as ``"op:cumulative_sum/vjp-*-float32"``.
    """

    match: str
    reason: str
    link: str = ""


@dataclass(eq=False)
class Backend:
    """A backend declaration: a name, a lazy namespace loader and a few explicit conversions.

    Only ``name``, ``module``, ``load``, ``array_types``, ``to_numpy`` and
    ``from_numpy`` are required.

    >>> import numpy
    >>> Backend(name="mynumpy", module="numpy", load=lambda: numpy,
    ...         array_types=lambda: (numpy.ndarray,), to_numpy=numpy.asarray,
    ...         from_numpy=lambda a, device=None, dtype=None: a).name
    'mynumpy'
    """

    name: str
    #: top-level import name of the array library; probed with find_spec, never imported
    module: str
    #: returns the Array API namespace; the only place the array library gets imported
    load: Callable[[], Any]
    #: the array classes this backend owns (ownership is a dict lookup by type)
    array_types: Callable[[], tuple]
    #: explicit host copy: forces lazy values, copies from a device, drops autograd state
    to_numpy: Callable[[Any], Any]
    #: ``from_numpy(host_array, *, device=None) -> array``, used for identical inputs everywhere
    from_numpy: Callable[..., Any]
    #: devices usable now, as strings ("cpu", "cuda:0"); empty means installed but unusable
    devices: Callable[[], tuple] = lambda: ("cpu",)
    #: dtype names this backend supports
    dtypes: Sequence[str] = ("bool", "int8", "int16", "int32", "int64", "uint8",
                             "float32", "float64")
    #: ``rng() -> object`` with ``seed(n)``, ``random(shape, *, dtype, device)`` and
    #: ``normal(shape, *, dtype, device)``: the backend's own generator, used only on request
    #: (``manual_seed(s, native=True)``, ``Generator(native=True)``); polygrad's default
    #: stream is computed on the host and needs nothing here. None: borrow the host's
    rng: Callable[[], Any] | None = None
    #: waits for queued device work (profiler timings); None for synchronous backends
    synchronize: Callable[[], None] | None = None
    #: ``device_of(array) -> str``; default ``str(array.device)``
    device_of: Callable[[Any], str] | None = None
    #: ``native_device(str) -> object`` for creation functions' ``device=``; default: the string
    native_device: Callable[[str], Any] | None = None
    #: op name -> reason, for ops this backend cannot run (they raise UnsupportedOperation)
    unsupported: Mapping[str, str] = field(default_factory=dict)
    #: known bugs, run as strict xfail by the conformance suite
    known_failures: Sequence[KnownFailure] = ()
    #: op name -> ``fn(xp, *arrays, **options)`` replacing the namespace's function; also
    #: ``"axpy_": fn(xp, y, x, alpha)``, an in-place ``y += alpha * x`` in one kernel that
    #: ``Tensor.add_(x, alpha=...)`` (and so every optimizer step) uses when declared
    overrides: Mapping[str, Callable] = field(default_factory=dict)
    #: op name -> ``fn(xp, *arrays, **options)``: a native kernel for a composite op
    #: (the suite compares it with the decomposed form)
    fused: Mapping[str, Callable] = field(default_factory=dict)
    #: lazy backends (dask) compute values only when asked
    lazy: bool = False
    #: ``materialize(arrays) -> arrays``: compute lazy arrays together (polygrad.compute)
    materialize: Callable[[list], list] | None = None
    #: ``unavailable() -> str | None``: why an installed backend cannot run here
    unavailable: Callable[[], str | None] | None = None
    #: ``info() -> dict`` of version lines for reports
    info: Callable[[], Mapping[str, str]] | None = None
    #: ``timer(device) -> (start, stop)`` callables for device time in the profiler
    device_timer: Callable[[Any], Any] | None = None
    #: ``owns(array) -> bool``: the array owns its memory (is no view), so backward may keep
    #: it as a leaf's ``.grad`` without copying; None: always copy
    owns: Callable[[Any], bool] | None = None
    #: ``shares_memory(view, base) -> bool``: ``view`` (the result of a view op such as
    #: ``x[0]`` or ``reshape``) lives in ``base``'s memory. Declared by backends with real
    #: views (numpy, torch, cupy, array-api-strict): a write through a view then reaches its
    #: base in memory. None: views are simulated (writes build new arrays and polygrad
    #: carries them to the base and the other views), right for any backend, slower.
    shares_memory: Callable[[Any, Any], bool] | None = None
    #: ``from_dlpack(obj) -> array``; default ``xp.from_dlpack``
    from_dlpack: Callable[[Any], Any] | None = None
    #: ``lower(program) -> callable | None``: a faster form of a program recorded by
    #: ``polygrad.compile`` (``polygrad.compiler.program.Program``), called with the same
    #: input arrays and returning the same tuple; None (or no hook) keeps the replay
    lower: Callable[[Any], Callable | None] | None = None
    #: ``quiet() -> context manager`` silencing the array library's floating-point warnings
    #: (numpy's "invalid value encountered in divide"), entered around each backward pass
    #: once create_graph has been used: rules differentiated again compute 0/0 on purpose in
    #: branches a ``where`` discards (torch's masked gradients), and torch's backward warns
    #: about none of it. None: nothing to silence
    quiet: Callable[[], Any] | None = None

    # runtime caches (not part of the declaration)
    _xp: Any = field(default=None, init=False, repr=False)
    _ops: dict = field(default_factory=dict, init=False, repr=False)
    _to_dtype: dict = field(default_factory=dict, init=False, repr=False)
    _from_dtype: dict = field(default_factory=dict, init=False, repr=False)
    _ns: Any = field(default=None, init=False, repr=False)
    _plugin: str = field(default="", init=False, repr=False)

    # -- availability -----------------------------------------------------------------
    def installed(self) -> bool:
        """True when the array library can be found (without importing it)."""
        top = self.module.split(".")[0]
        return top in sys.modules or importlib.util.find_spec(top) is not None

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here, or None when it can."""
        if not self.installed():
            return f"{self.module!r} is not installed"
        if self.unavailable is not None:
            return self.unavailable()
        return None

    @property
    def xp(self):
        """The backend's Array API namespace, imported on first use."""
        xp = self._xp
        if xp is None:
            reason = self.unavailable_reason()
            if reason:
                raise BackendUnavailableError(f"backend {self.name!r} cannot run here: {reason}")
            xp = self._xp = self.load()
        return xp

    # -- ops ----------------------------------------------------------------------------
    def op(self, name, default=None):
        """The callable that runs op ``name`` on raw arrays (cached)."""
        fn = self._ops.get(name)
        if fn is None:
            fn = self._ops[name] = self._resolve(name, default)
        return fn

    def _resolve(self, name, default):
        xp = self.xp
        if name in self.unsupported:
            return _raiser(self.name, name, self.unsupported[name])
        impl = self.fused.get(name) or self.overrides.get(name)
        if impl is not None:
            return _bind(impl, xp)
        if default is not None:
            return _bind(default, xp)
        fn = lookup(xp, name)
        if fn is None:
            return _raiser(self.name, name, "the namespace has no such function")
        return fn

    # -- dtypes and devices ---------------------------------------------------------------
    def native_dtype(self, dtype):
        """The backend's dtype object for a polygrad DType (or None)."""
        if dtype is None:
            return None
        dtype = _dtypes.as_dtype(dtype)
        nat = self._to_dtype.get(dtype)
        if nat is None:
            if dtype.name not in self.dtypes:
                raise TypeError(
                    f"backend {self.name!r} has no dtype {dtype.name}; it supports "
                    f"{', '.join(self.dtypes)}. Pick one of those, or another backend.")
            nat = getattr(self.xp, dtype.name)
            self._to_dtype[dtype] = nat
        return nat

    def dtype_of(self, array):
        """The polygrad DType of a raw array."""
        nat = array.dtype
        try:
            return self._from_dtype[nat]
        except KeyError:
            dt = _dtypes.as_dtype(nat)
            self._from_dtype[nat] = dt
            return dt
        except TypeError:   # unhashable dtype objects
            return _dtypes.as_dtype(nat)

    def device_str(self, array):
        if self.device_of is not None:
            return self.device_of(array)
        dev = getattr(array, "device", "cpu")
        return str(dev)

    def to_native_device(self, dev):
        """The backend's device object for a device name; an error lists the devices here."""
        if dev is None:
            return None
        name = str(_device(dev))
        devices = self.devices()
        if name not in devices and not any(d.split(":")[0] == name for d in devices):
            raise BackendUnavailableError(
                f"backend {self.name!r} has no device {name!r}; its devices here are "
                f"{list(devices)}. Pick one of those, or move to a backend that has it "
                f"with x.to('<backend>', device={name!r}).")
        return self.native_device(name) if self.native_device is not None else name

    def __repr__(self):
        return f"<Backend {self.name!r} ({self.module})>"


def lookup(xp, name):
    obj = xp
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _bind(impl, xp):
    def bound(*args, **kwargs):
        return impl(xp, *args, **kwargs)
    bound.__name__ = getattr(impl, "__name__", "op")
    return bound


def _raiser(backend, op, reason):
    def unsupported(*args, **kwargs):
        raise UnsupportedOperation(
            f"backend {backend!r} does not support {op!r}: {reason}. Move the tensors to "
            f"another backend with .to('<name>') for this op.")
    return unsupported
