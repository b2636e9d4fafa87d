"""``polygrad.save`` and ``polygrad.load``: tensors, state_dicts and optimizer state in a
data-only file that any backend can load.

The file is a zip archive (as torch's) holding ``manifest.json`` and one ``.npy`` file per
tensor, ``arrays/<n>.npy``. The manifest is JSON: the saved object with each tensor replaced
by its entry (array file, dtype, backend, device, requires_grad, Parameter or not); dicts,
OrderedDicts, lists, tuples, strings, numbers (nan and inf included), None, dtypes and Sizes
are stored as tagged JSON. Loading parses JSON and reads ``.npy`` files with
``allow_pickle=False``, so **it never runs code from the file**: there is no pickle in it,
and a pickle (torch's or a hostile one) is refused, not opened. This module owns the format;
the arrays cross through the backend's host copy (``to_numpy``/``from_numpy``).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict

from .base.device import device as Device
from .base.dtypes import DType, as_dtype
from .base.errors import UnknownBackendError
from .base.shape import Size
from .graph.creation import from_numpy
from .graph.tensor import Tensor
from .nn.parameter import Parameter
from .plugins.defaults import DEFAULT_BACKEND, has_device, pick_backend
from .plugins.host import get_backend

__all__ = ["save", "load"]

FORMAT, VERSION, MANIFEST = "polygrad.save", 1, "manifest.json"
_SCALARS = (str, bool, int, type(None))
_WIDE = {"bfloat16": "float32"}          # dtypes numpy lacks, stored in one that holds them exactly


def _host():
    """The host array library (numpy, the embedded default backend's), loaded on first use."""
    return get_backend(DEFAULT_BACKEND).xp


# -- save -------------------------------------------------------------------------------------

def save(obj, f):
    """Save ``obj`` (a tensor, or nested dicts/lists/tuples of tensors, numbers, strings) to
    ``f``, a path or a binary file, as data only: a zip of ``.npy`` arrays and a JSON manifest.

    >>> import io, polygrad
    >>> buf = io.BytesIO()
    >>> polygrad.save({"w": polygrad.ones(2), "step": 3}, buf)
    >>> polygrad.load(io.BytesIO(buf.getvalue()))
    {'w': tensor([1., 1.]), 'step': 3}
    """
    arrays = []
    root = _encode(obj, arrays, {}, "obj")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        manifest = {"format": FORMAT, "version": VERSION, "root": root}
        zf.writestr(MANIFEST, json.dumps(manifest, allow_nan=False))
        xp = _host()
        for i, host in enumerate(arrays):
            with zf.open(f"arrays/{i}.npy", "w") as out:
                xp.save(out, host, allow_pickle=False)
    data = buf.getvalue()
    if hasattr(f, "write"):
        f.write(data)
        return
    _write_bytes_atomic(os.fspath(f), data)


def _write_bytes_atomic(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _encode(obj, arrays, memo, where):
    if isinstance(obj, Tensor):
        if id(obj) not in memo:                 # one tensor saved twice is loaded as one
            memo[id(obj)] = _tensor_entry(obj, arrays)
        return memo[id(obj)]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, complex):
        return {"__complex__": [_encode(obj.real, arrays, memo, where),
                                _encode(obj.imag, arrays, memo, where)]}
    if isinstance(obj, DType):
        return {"__dtype__": obj.name}
    if isinstance(obj, Device):
        return {"__device__": str(obj)}
    if isinstance(obj, Size):
        return {"__size__": list(obj)}
    if isinstance(obj, dict):
        tag = "__odict__" if isinstance(obj, OrderedDict) else "__dict__"
        return {tag: [[_encode(k, arrays, memo, f"a key of {where}"),
                       _encode(v, arrays, memo, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, memo, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"__list__": items} if isinstance(obj, list) else {"__tuple__": items}
    fix = ("save its state_dict() instead, and load_state_dict() it into a new "
           f"{type(obj).__name__}" if hasattr(obj, "state_dict") else
           "convert it first (e.g. to a dict or a tensor)")
    raise TypeError(f"polygrad.save cannot store {where}, a {type(obj).__name__}: it stores "
                    f"tensors, numbers, strings, None, dtypes and dicts, lists and tuples of "
                    f"them (data only, no code); {fix}")


def _tensor_entry(t, arrays):
    b, dtype = t._backend, t.dtype
    array = t.detach()._st.array
    if dtype.name in _WIDE:
        array = b.xp.astype(array, b.native_dtype(_WIDE[dtype.name]))
    host = b.to_numpy(array)
    arrays.append(host)
    return {"__tensor__": len(arrays) - 1, "dtype": dtype.name, "shape": list(t.shape),
            "backend": b.name, "device": str(t.device), "requires_grad": t.requires_grad,
            "parameter": isinstance(t, Parameter)}


# -- load -------------------------------------------------------------------------------------

def load(f, map_location=None, *, backend=None, weights_only=True, mmap=None):
    """Load what ``save`` wrote. Tensors go back to the backend and device they were saved
    on, unless ``backend=`` names another backend or ``map_location`` another device (a
    device, a dict from saved device to device, or your function of (tensor, saved device)
    returning the tensor to use, as torch's ``lambda storage, loc: storage``). The file is
    data only: it is never unpickled, whatever ``weights_only`` says (``mmap`` is ignored).

    >>> import io, polygrad
    >>> buf = io.BytesIO()
    >>> polygrad.save([polygrad.arange(3)], buf)
    >>> polygrad.load(io.BytesIO(buf.getvalue()), backend="numpy")
    [tensor([0, 1, 2])]
    """
    if map_location is not None and not (isinstance(map_location, (str, Device, dict))
                                         or callable(map_location)):
        raise TypeError(f"load(): map_location must be a device (such as 'cpu'), a dict from "
                        f"saved device to device or a function (tensor, saved_device) -> "
                        f"tensor, not {type(map_location).__name__}")
    target = get_backend(backend) if backend is not None else None
    name = getattr(f, "name", "the file") if hasattr(f, "read") else os.fspath(f)
    if hasattr(f, "read") and not (hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(f.read())             # zipfile reads its index from the end
    try:
        zf = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        raise ValueError(f"{name!s:.200} is not a file written by polygrad.save (not a zip "
                         f"archive). polygrad.load reads data only and never unpickles: a "
                         f"pickle (torch.save's old format, pickle.dump) is refused") from None
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            hint = (" It looks like a torch.save file: load it with torch.load(f, "
                    "weights_only=True) and pass its tensors to polygrad.asarray."
                    if any(n.endswith("data.pkl") for n in names) else "")
            raise ValueError(f"{name!s:.200} is not a file written by polygrad.save (no "
                             f"{MANIFEST}).{hint}")
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{name!s:.200}: {MANIFEST} is not a polygrad.save manifest")
        if manifest.get("version") != VERSION:
            raise ValueError(f"{name!s:.200} has format version {manifest.get('version')!r}; "
                             f"this polygrad reads version {VERSION}: upgrade polygrad")
        loader = _Loader(zf, names, target, map_location)
        return loader.decode(manifest.get("root"))


class _Loader:
    def __init__(self, zf, names, target, map_location):
        self.zf, self.names, self.target, self.map_location = zf, names, target, map_location
        self.tensors = {}

    def decode(self, node):
        if isinstance(node, (str, bool, int, float, type(None))):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or len(node) < 1:
            raise ValueError(f"corrupt polygrad.save manifest: unexpected {node!r:.80}")
        if "__tensor__" in node:
            return self.tensor(node)
        if len(node) != 1:
            raise ValueError(f"corrupt polygrad.save manifest: unexpected {node!r:.80}")
        (tag, value), = node.items()
        if tag in ("__dict__", "__odict__"):
            pairs = [(self.key(k), self.decode(v)) for k, v in self.pairs(value)]
            return OrderedDict(pairs) if tag == "__odict__" else dict(pairs)
        if tag in ("__list__", "__tuple__") and isinstance(value, list):
            items = [self.decode(v) for v in value]
            return items if tag == "__list__" else tuple(items)
        if tag == "__float__" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag == "__complex__" and isinstance(value, list) and len(value) == 2:
            return complex(self.decode(value[0]), self.decode(value[1]))
        if tag == "__dtype__" and isinstance(value, str):
            return as_dtype(value)
        if tag == "__device__" and isinstance(value, str):
            return Device(value)
        if tag == "__size__" and isinstance(value, list):
            return Size(value)
        raise ValueError(f"corrupt polygrad.save manifest: unknown entry {tag!r:.40}")

    def pairs(self, value):
        if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2
                                                  for p in value):
            raise ValueError("corrupt polygrad.save manifest: a dict is not a list of pairs")
        return value

    def key(self, node):
        key = self.decode(node)
        if isinstance(key, (list, dict, Tensor)):
            raise ValueError(f"corrupt polygrad.save manifest: unhashable key {key!r:.40}")
        return key

    def tensor(self, node):
        index = node["__tensor__"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"corrupt polygrad.save manifest: tensor index {index!r:.40}")
        if index in self.tensors:
            return self.tensors[index]
        path = f"arrays/{index}.npy"
        if path not in self.names:
            raise ValueError(f"corrupt polygrad.save file: {path} is missing")
        dtype = as_dtype(node.get("dtype"))
        with self.zf.open(path) as raw:
            # allow_pickle=False: an object array (a pickle inside the .npy) raises here
            host = _host().load(io.BytesIO(raw.read()), allow_pickle=False)
        if list(host.shape) != node.get("shape"):
            raise ValueError(f"corrupt polygrad.save file: {path} has shape {host.shape}, "
                             f"the manifest says {node.get('shape')}")
        b, device = self.place(node.get("backend"), node.get("device"))
        out = from_numpy(host, backend=b.name, device=device)
        if out.dtype != dtype:
            out = out.astype(dtype)
        if callable(self.map_location) and not isinstance(self.map_location, dict):
            mapped = self.map_location(out, node.get("device"))
            if not isinstance(mapped, Tensor):
                raise TypeError(f"load(): map_location returned a {type(mapped).__name__}; "
                                f"it must return a polygrad Tensor (the one it was given, or "
                                f"a moved copy)")
            out = mapped
        requires_grad = node.get("requires_grad") is True
        if node.get("parameter") is True:
            out = Parameter(out, requires_grad=requires_grad)
        elif requires_grad:
            out.requires_grad_(True)
        self.tensors[index] = out
        return out

    def place(self, saved_backend, saved_device):
        """The backend and device for a tensor saved on ``saved_backend``/``saved_device``."""
        device = saved_device
        if isinstance(self.map_location, dict):
            device = self.map_location.get(saved_device, saved_device)
        elif isinstance(self.map_location, (str, Device)):
            device = self.map_location
        device = str(Device(device))
        if self.target is not None:
            return self.target, device if has_device(self.target, device) else None
        try:
            b = get_backend(saved_backend)
        except UnknownBackendError:
            raise UnknownBackendError(
                f"this file's tensors were saved on backend {saved_backend!r}, which is not "
                f"installed here; pass backend= (e.g. polygrad.load(f, backend='numpy')) to "
                f"load them on another") from None
        reason = b.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"this file's tensors were saved on backend {saved_backend!r}, "
                               f"which cannot run here ({reason}); pass backend= (e.g. "
                               f"polygrad.load(f, backend='numpy')) to load them on another")
        return pick_backend(b, device), device
