"""The cupy backend: NVIDIA GPUs through array_api_compat.cupy. Devices ``cuda:N``.

This file owns the Backend declaration for cupy and the few cupy-specific pieces
the standard does not cover: device objects, the RNG (cupy.random), explicit host
copies, CUDA events for the profiler, DLPack import, ``scatter_add`` through
cupyx, and a fused kernel for ``binary_cross_entropy_with_logits``.

Nothing here imports cupy at import time. Whether a GPU is visible, and how many,
is asked of the CUDA driver library through ctypes (cuDeviceGetCount), so that
listing plugins or asking ``polygrad.cuda.is_available()`` never imports cupy, with
or without a GPU; cupy loads with the first tensor. Known gap: array_api_compat's
cupy creation functions ignore ``device=`` and use the current device, so creation
on ``cuda:1`` needs ``with cupy.cuda.Device(1):`` (verified on one GPU only).
"""

import ctypes
import functools
import importlib.util

import polygrad

_cupy = None


def _cp():
    global _cupy
    if _cupy is None:
        import cupy
        _cupy = cupy
    return _cupy


def _load():
    import array_api_compat.cupy as xp
    return xp


@functools.cache
def _unavailable():
    """Why cupy cannot run here, or None. Cached: device visibility is fixed per process."""
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed"
    return _driver_reason()


@functools.cache
def _driver_device_count():
    """(count, None) from the CUDA driver (libcuda) without importing cupy, or (0, why not)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0, "no CUDA device visible (no NVIDIA driver: libcuda could not be loaded)"
    count = ctypes.c_int(0)
    rc = lib.cuInit(0)
    if rc == 0:
        rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0:     # 100 is CUDA_ERROR_NO_DEVICE (also what CUDA_VISIBLE_DEVICES="" gives)
        return 0, f"no CUDA device visible (CUDA driver error {rc})"
    if count.value == 0:
        return 0, "no CUDA device visible (cuDeviceGetCount() == 0)"
    return count.value, None


def _driver_reason():
    """Why the driver shows no device, or None when it has some (honours CUDA_VISIBLE_DEVICES)."""
    return _driver_device_count()[1]


def _devices():
    # the driver's count, so that listing backends on a GPU machine still imports no cupy
    return tuple(f"cuda:{i}" for i in range(_driver_device_count()[0]))


def _index(device):
    """The GPU number of a device given as None, "cuda", "cuda:N", polygrad.device or Device."""
    if device is None:
        return _cp().cuda.Device().id
    if isinstance(device, _cp().cuda.Device):
        return device.id
    dev = polygrad.device(str(device))
    if dev.type != "cuda":
        raise ValueError(f"backend 'cupy' has only CUDA devices, not {str(device)!r}; use "
                         f"device='cuda:0', or move to a CPU backend with .to('numpy')")
    return _cp().cuda.Device().id if dev.index is None else dev.index


def _native_device(name):
    return _cp().cuda.Device(_index(name))


def _device_of(array):
    return f"cuda:{array.device.id}"


def _array_types():
    return (_cp().ndarray,)


def _to_numpy(array):
    return array.get()          # an explicit device-to-host copy (waits for the stream)


def _from_numpy(array, *, device=None):
    cp = _cp()
    with cp.cuda.Device(_index(device)):
        return cp.array(array, copy=True)


_DLPACK_CUDA = (2, 13)      # kDLCUDA, kDLCUDAManaged


def _from_dlpack(obj):
    """Zero-copy import of CUDA memory (torch CUDA tensors, other cupy arrays). Host arrays are
    refused, so the caller takes the explicit host-to-device copy: on machines with pageable
    memory access cupy could otherwise alias host memory, and every kernel would read it
    over the bus."""
    kind = obj.__dlpack_device__()[0]
    if kind not in _DLPACK_CUDA:
        raise BufferError(f"cupy imports only CUDA memory through DLPack, not DLPack device "
                          f"type {kind}; copy through the host with from_numpy")
    return _cp().from_dlpack(obj)


def _owns(array):
    return array.base is None and array.flags.c_contiguous


def _scatter_add(xp, g, shape, key):
    import cupyx
    cp = _cp()
    with cp.cuda.Device(g.device.id):
        z = cp.zeros(shape, dtype=g.dtype)
        cupyx.scatter_add(z, _key_on_device(key), g)
    return z


def _key_on_device(key):
    """Index arrays that came from the host (numpy) go to the GPU; slices and ints stay."""
    import numpy
    if isinstance(key, tuple):
        return tuple(_key_on_device(k) for k in key)
    if isinstance(key, numpy.ndarray):
        return _cp().asarray(key)
    return key


# -- the fused kernel: BCE with logits, one pass instead of seven -----------------------------

# max(z, 0) - z*y + log1p(exp(-|z|)): the same stable form as polygrad.nn's decomposition
_BCE_EXPR = "fmax(z, (T)0) - z * y + log1p(exp(-fabs(z)))"


@functools.cache
def _bce_kernels():
    cp = _cp()
    elementwise = cp.ElementwiseKernel("T z, T y", "T out", f"out = {_BCE_EXPR}",
                                       "polygrad_bce_with_logits")
    total = cp.ReductionKernel("T z, T y", "T out", _BCE_EXPR, "a + b", "out = a", "0",
                               "polygrad_bce_with_logits_sum")
    return elementwise, total


def _bce_with_logits(xp, z, y, reduction="none"):
    """The elementwise loss (then ``reduction``) in one CUDA kernel for float32/float64
    operands of one dtype; anything else takes the decomposed form."""
    cp = _cp()
    same = isinstance(z, cp.ndarray) and isinstance(y, cp.ndarray) and z.dtype == y.dtype
    if not same or z.dtype.char not in "fd":
        loss = xp.maximum(z, 0.0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        if reduction == "none":
            return loss
        total = xp.sum(loss)
        return total / loss.size if reduction == "mean" else total
    elementwise, total = _bce_kernels()
    with cp.cuda.Device(z.device.id):
        if reduction == "none":
            return elementwise(z, y)
        out = total(z, y)
        if reduction == "mean":
            out = out / max(1, _broadcast_size(z.shape, y.shape))
        return out


def _broadcast_size(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    size = 1
    for i, j in zip(a, b):
        size *= max(i, j)
    return size


# -- random numbers, synchronisation, device timers --------------------------------------------

class _Rng:
    """One cupy.random Generator per GPU, for ``native=True`` draws: numbers made on the GPU,
    faster than the default stream (computed on the host, then copied in)."""

    def __init__(self):
        self.cp = _cp()
        self.gens = {}
        self._seed = None

    def _gen(self, device):
        i = _index(device)
        gen = self.gens.get(i)
        if gen is None:
            with self.cp.cuda.Device(i):
                gen = self.gens[i] = self.cp.random.default_rng(self._seed)
        return i, gen

    def seed(self, seed):
        self._seed = seed
        for i in list(self.gens):
            with self.cp.cuda.Device(i):
                self.gens[i] = self.cp.random.default_rng(seed)

    def _draw(self, kind, shape, dtype, device):
        i, gen = self._gen(device)
        native = dtype is not None and self.cp.dtype(dtype).char in "fd"
        with self.cp.cuda.Device(i):
            out = getattr(gen, kind)(shape, dtype=dtype if native else self.cp.float64)
            return out if native or dtype is None else out.astype(dtype)

    def random(self, shape, *, dtype=None, device=None):
        return self._draw("random", shape, dtype, device)

    def normal(self, shape, *, dtype=None, device=None):
        return self._draw("standard_normal", shape, dtype, device)


def _synchronize():
    cp = _cp()
    for i in range(cp.cuda.runtime.getDeviceCount()):
        with cp.cuda.Device(i):
            cp.cuda.runtime.deviceSynchronize()


class _Event:
    """A CUDA event with torch.cuda.Event's methods (``record``, ``synchronize``,
    ``elapsed_time`` in ms), so the profiler reads cupy and torch timers alike."""

    def __init__(self, device):
        cp = _cp()
        with cp.cuda.Device(_index(device)):
            self.event = cp.cuda.Event()

    def record(self, stream=None):
        self.event.record(stream)

    def synchronize(self):
        self.event.synchronize()

    def query(self):
        return self.event.done

    def elapsed_time(self, end):
        return _cp().cuda.get_elapsed_time(self.event, end.event)


def _device_timer(device):
    """A (start, stop) pair of CUDA events on ``device`` for the profiler's device time."""
    if not str(device).startswith("cuda"):
        return None
    return _Event(device), _Event(device)


def _info():
    cp = _cp()
    info = {"cupy": cp.__version__, "cuda_runtime": str(cp.cuda.runtime.runtimeGetVersion())}
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    info["device"] = name.decode() if isinstance(name, bytes) else str(name)
    return info


def _shares_memory(view, base):
    # cupy's views, as numpy's, lead to one root array through ``.base``
    def root(a):
        while getattr(a, "base", None) is not None:
            a = a.base
        return a
    return root(view) is root(base)


backend = polygrad.Backend(
    name="cupy",
    module="cupy",
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=_devices,
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64", "complex64", "complex128"),
    rng=_Rng,
    synchronize=_synchronize,
    device_of=_device_of,
    native_device=_native_device,
    overrides={"scatter_add": _scatter_add},
    fused={"binary_cross_entropy_with_logits": _bce_with_logits},
    unavailable=_unavailable,
    info=_info,
    owns=_owns,
    shares_memory=_shares_memory,
    device_timer=_device_timer,
    from_dlpack=_from_dlpack,
)


@polygrad.hookimpl
def register_backends(register):
    """Register the ``cupy`` backend."""
    register(backend)
