"""``__array_namespace_info__()``: the Array API inspection namespace for polygrad.

It describes the current default backend (the one creation functions use) in
polygrad's vocabulary: polygrad DTypes and devices. Capabilities come from the
backend's own inspection namespace where it has one.
"""

from __future__ import annotations

from ..base import dtypes as _dtypes
from ..base.device import device as Device
from ..plugins.defaults import default_backend

_KINDS = {
    "bool": ("bool",),
    "signed integer": ("int8", "int16", "int32", "int64"),
    "unsigned integer": ("uint8", "uint16", "uint32", "uint64"),
    "integral": ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
    "real floating": ("float32", "float64"),
    "complex floating": ("complex64", "complex128"),
}
_KINDS["numeric"] = _KINDS["integral"] + _KINDS["real floating"] + _KINDS["complex floating"]
_STANDARD = ("bool",) + _KINDS["numeric"]


class Info:
    """What the default backend offers, as the standard's inspection API.

    >>> import polygrad.ops as pg
    >>> info = pg.__array_namespace_info__()
    >>> info.default_device()
    device(type='cpu')
    >>> info.dtypes(kind="real floating")["float64"]
    polygrad.float64
    """

    def __init__(self, backend=None):
        self._backend = backend or default_backend()

    def capabilities(self):
        caps = {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}
        native = getattr(self._backend.xp, "__array_namespace_info__", None)
        if native is not None:
            caps.update(native().capabilities())
        return caps

    def default_device(self):
        return Device(self._backend.devices()[0])

    def devices(self):
        return [Device(d) for d in self._backend.devices()]

    def default_dtypes(self, *, device=None):
        self._check_device(device)
        return {"real floating": _dtypes.DEFAULT_FLOAT,
                "complex floating": _dtypes.default_complex(),      # complex128 with float64
                "integral": _dtypes.DEFAULT_INT, "indexing": _dtypes.int64}

    def dtypes(self, *, device=None, kind=None):
        self._check_device(device)
        names = _STANDARD if kind is None else self._kind_names(kind)
        return {n: _dtypes.DTYPES[n] for n in names if n in self._backend.dtypes}

    def _kind_names(self, kind):
        if isinstance(kind, tuple):
            return tuple(n for k in kind for n in self._kind_names(k))
        try:
            return _KINDS[kind]
        except KeyError:
            raise ValueError(f"unknown dtype kind {kind!r}; use one of {sorted(_KINDS)}") from None

    def _check_device(self, device):
        if device is not None and Device(device) not in self.devices():
            raise ValueError(f"backend {self._backend.name!r} has no device {device!r}; its "
                             f"devices are {[str(d) for d in self.devices()]}")

    def __repr__(self):
        return f"<polygrad array API info for backend {self._backend.name!r}>"
