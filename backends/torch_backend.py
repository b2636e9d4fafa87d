"""The torch backend: array_api_compat.torch where torch deviates from the standard
(dtype promotion against 0-d tensors, reductions over several axes), torch itself
otherwise. CPU and CUDA devices.

torch is imported inside the functions below, never at import time.
"""

import importlib.util
import os
import sys

import polygrad

from .cupy_backend import _driver_device_count  # no cupy import: libcuda only

_torch = None


def _t():
    global _torch
    if _torch is None:
        import torch
        _torch = torch
    return _torch


def _load():
    import array_api_compat.torch as xp
    return xp


def _array_types():
    return (_t().Tensor,)


def _to_numpy(array):
    # resolve_conj/resolve_neg: torch's lazy conjugate and negative views refuse .numpy()
    array = array.detach().cpu().resolve_conj().resolve_neg()
    if array.dtype == _t().bfloat16:
        # numpy has no bfloat16; float32 holds every bfloat16 value exactly, so .tolist()
        # and .item() give torch's numbers (the host copy is float32)
        array = array.float()
    return array.numpy()


def _from_numpy(array, *, device=None):
    torch = _t()
    out = torch.from_numpy(array.copy())
    return out.to(device) if device not in (None, "cpu") else out


def _devices():
    if "torch" not in sys.modules:
        # listing plugins never imports torch (4-9 s): a CUDA build (libtorch_cuda beside
        # torch) sees the GPUs the CUDA driver counts; a CPU build sees the CPU only
        spec = importlib.util.find_spec("torch")
        if spec is None:
            return ()
        libdir = [os.path.join(p, "lib") for p in spec.submodule_search_locations or ()]
        cuda_build = any(f.startswith("libtorch_cuda") for d in libdir if os.path.isdir(d)
                         for f in os.listdir(d))
        n = _driver_device_count()[0] if cuda_build else 0
        return ("cpu",) + tuple(f"cuda:{i}" for i in range(n))
    torch = _t()
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ("cpu",) + tuple(f"cuda:{i}" for i in range(n))


def _native_device(name):
    return _t().device(name)


def _scatter_add(xp, g, shape, key):
    torch = _t()
    z = torch.zeros(shape, dtype=g.dtype, device=g.device)
    n = z.numel()
    positions = torch.arange(n, device=g.device).reshape(shape)[key].reshape(-1)
    z.view(-1).index_add_(0, positions, g.reshape(-1))
    return z


def _native_when_same_dtype(name, scalars):
    """torch's own function where it already follows the standard (operands of one dtype, or,
    for arithmetic, a Python scalar), array_api_compat's promotion-fixing wrapper otherwise.
    The wrapper costs 2 µs on a small multiply and ~200 µs on a small matmul, every call.
    A Python scalar that torch's function refuses becomes a 0-d tensor made on the device
    (``torch.full``): compat's ``asarray`` would copy it from the host, a CUDA sync per op."""
    def op(xp, x1, x2, **kwargs):
        d1, d2 = getattr(x1, "dtype", None), getattr(x2, "dtype", None)
        if d1 is d2 and d1 is not None:
            return getattr(_t(), name)(x1, x2, **kwargs)
        if d1 is None or d2 is None:
            if scalars:
                return getattr(_t(), name)(x1, x2, **kwargs)
            torch = _t()
            if d1 is None and isinstance(x1, (int, float, bool)):
                x1 = torch.full((), x1, dtype=d2, device=x2.device)
            elif d2 is None and isinstance(x2, (int, float, bool)):
                x2 = torch.full((), x2, dtype=d1, device=x1.device)
            return getattr(torch, name)(x1, x2, **kwargs)
        return getattr(xp, name)(x1, x2, **kwargs)
    op.__name__ = name
    return op


_FAST = {name: _native_when_same_dtype(name, scalars=name in ("add", "subtract", "multiply",
                                                                "divide", "pow"))
         for name in ("add", "subtract", "multiply", "divide", "pow", "maximum", "minimum",
                      "matmul", "logaddexp", "atan2", "hypot")}


def _linear(xp, x, w, b=None):
    """torch's addmm: one kernel for x @ w.T + b."""
    return _t().nn.functional.linear(x, w, b)


def _axpy(xp, y, x, alpha):
    """``y += alpha * x`` in place, one kernel (optimizer updates)."""
    return y.add_(x, alpha=alpha)


def _bce_with_logits(xp, z, y, reduction="none"):
    # torch's native fused kernel (elementwise loss, then polygrad's reduction option)
    return _t().nn.functional.binary_cross_entropy_with_logits(z, y, reduction=reduction)


class _Rng:
    """One torch.Generator per device, for ``native=True`` draws: ``manual_seed(s, native=True)``
    then ``randn`` gives what ``torch.manual_seed(s)`` then ``torch.randn`` gives."""

    def __init__(self):
        self.torch = _t()
        self.gens = {}
        self._seed = None

    def _gen(self, device):
        key = str(device or "cpu")
        gen = self.gens.get(key)
        if gen is None:
            gen = self.gens[key] = self.torch.Generator(device=key)
            if self._seed is not None:
                gen.manual_seed(self._seed)
            else:
                gen.seed()
        return gen

    def seed(self, seed):
        self._seed = seed
        for gen in self.gens.values():
            gen.manual_seed(seed)

    def random(self, shape, *, dtype=None, device=None):
        return self.torch.rand(shape, dtype=dtype, device=device, generator=self._gen(device))

    def normal(self, shape, *, dtype=None, device=None):
        return self.torch.randn(shape, dtype=dtype, device=device, generator=self._gen(device))


def _synchronize():
    torch = _t()
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _device_timer(device):
    """CUDA events for the profiler's device-time columns."""
    torch = _t()
    if str(device).startswith("cuda"):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        return start, stop
    return None


def _shares_memory(view, base):
    # torch's views point at their root base (``_base``)
    root = base._base if base._base is not None else base
    return view._base is root


def _info():
    torch = _t()
    info = {"torch": torch.__version__}
    if torch.cuda.is_available():
        info["cuda"] = str(torch.version.cuda)
        info["device"] = torch.cuda.get_device_name(0)
    return info


def _device_of(array):
    dev = array.device
    return "cpu" if dev.type == "cpu" else f"{dev.type}:{dev.index or 0}"


backend = polygrad.Backend(
    name="torch",
    module="torch",
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=_devices,
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16",
            "float32", "float64", "complex64", "complex128"),
    rng=_Rng,
    synchronize=_synchronize,
    device_of=_device_of,
    native_device=_native_device,
    overrides={"scatter_add": _scatter_add, "axpy_": _axpy,
               "special.erf": lambda xp, x: _t().special.erf(x), **_FAST},
    unsupported={"unique_all": "torch has no unique_all yet (pytorch issue 36748); use "
                               "unique_values, unique_counts or unique_inverse"},
    fused={"binary_cross_entropy_with_logits": _bce_with_logits,
           "relu": lambda xp, x: _t().relu(x), "sigmoid": lambda xp, x: _t().sigmoid(x),
           "linear": _linear,
           "gelu": lambda xp, x, approximate="none": _t().nn.functional.gelu(
               x, approximate=approximate),
           "silu": lambda xp, x: _t().nn.functional.silu(x),
           "mish": lambda xp, x: _t().nn.functional.mish(x),
           "hardswish": lambda xp, x: _t().nn.functional.hardswish(x),
           "logcumsumexp": lambda xp, x, axis=0: _t().logcumsumexp(x, axis),
           # torch's kernel, whose answer at NaN depends on where the NaN sits (0 over its
           # vectorized chunks, g over the scalar tail): the same answer as torch's
           "hardtanh_backward": lambda xp, g, x, min_val=-1.0, max_val=1.0:
               _t().ops.aten.hardtanh_backward(g, x, min_val, max_val),
           # likewise (NaN over the vectorized chunks, g over the scalar tail)
           "hardswish_backward": lambda xp, g, x: _t().ops.aten.hardswish_backward(g, x)},
    info=_info,
    owns=lambda array: array._base is None and array.is_contiguous(),
    shares_memory=_shares_memory,
    device_timer=_device_timer,
    from_dlpack=lambda obj: _t().from_dlpack(obj),
)


@polygrad.hookimpl
def register_backends(register):
    register(backend)
