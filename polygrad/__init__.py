"""polygrad: backend-agnostic autograd over the Python Array API.

``import polygrad as torch`` runs the PyTorch autograd tutorials on numpy (the
default), torch, cupy or any backend plugin. The layers, bottom up (imports only point
down; the README's "How it is built" table says the same):

- ``polygrad.base``: dtypes, devices, errors, grad mode;
- ``polygrad.plugins``: the Backend declaration, the plugin host, the default backend;
- ``polygrad.primitives``: the table of ops and their rules, named by the Array API;
- ``polygrad.graph``: Tensor state, graph nodes, the engine (apply, backward), creation;
- ``polygrad.ops``: the differentiable Array API namespace, Tensor methods, torch names;
- ``polygrad.autograd``, ``polygrad.nn``, ``polygrad.optim``, ``polygrad.profiler``,
  ``polygrad.viz``: the tutorials' API; ``python -m polygrad``: the CLI.

Importing polygrad imports no array library but numpy's plugin metadata; the
backend's library is imported when a tensor is first made on it.
"""

from . import (
    autograd,  # noqa: F401
    ops,
    plugins,  # noqa: F401  (the module; discovery itself is lazy)
)
from .base.device import device
from .base.dtypes import (
    DType,
    bfloat16,
    bool,
    complex64,
    complex128,
    double,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    uint8,
)
from .base.errors import (
    BackendMismatchError,
    BackendUnavailableError,
    PluginError,
    PolygradError,
    UnknownBackendError,
    UnsupportedOperation,
)
from .base.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .base.shape import Size
from .compiler import compile  # noqa: A004, F401 - polygrad.compile, as torch.compile (in __all__ below)
from .graph.creation import (
    arange,
    asarray,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .graph.format import set_printoptions
from .graph.tensor import Tensor
from .ops import torch_names as _torch_names
from .ops import transfer as _transfer
from .plugins import Backend, KnownFailure, hookimpl
from .plugins.defaults import (
    default_backend,
    get_default_backend,
    get_default_device,
    set_default_backend,
    set_default_device,
    use_backend,
)
from .plugins.random import Generator

__version__ = "0.1.0"

dtype = DType

__all__ = [
    "device", "DType", "dtype", "bfloat16", "bool", "complex64", "complex128", "double",
    "float", "float16", "float32", "float64", "half", "int", "int8", "int16", "int32",
    "int64", "long", "uint8", "BackendMismatchError", "BackendUnavailableError",
    "PluginError", "PolygradError", "UnknownBackendError", "UnsupportedOperation",
    "enable_grad", "inference_mode", "is_grad_enabled", "is_inference_mode_enabled",
    "no_grad", "set_grad_enabled", "Backend", "KnownFailure", "hookimpl", "default_backend",
    "get_default_backend", "set_default_backend", "use_backend", "arange", "asarray", "empty",
    "empty_like", "eye", "from_numpy", "full", "full_like", "linspace", "manual_seed", "ones",
    "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "randperm",
           "bernoulli", "tensor", "zeros",
    "zeros_like", "Tensor", "Size", "ops", "autograd", "plugins", "backends", "get_backend",
    "compute", "nn", "optim", "profiler", "cuda", "viz", "utils", "func", "vmap", "__version__",
    "get_default_dtype", "set_default_dtype", "get_default_device", "set_default_device",
    "set_printoptions", "save", "load", "Generator", "accelerator",
]


def _export(names, source):
    """The torch-style names, then the rest of the Array API namespace (torch's win)."""
    g = globals()
    for name in names:
        if name not in g:
            g[name] = getattr(source, name)
        if name not in __all__:
            __all__.append(name)


_export(_torch_names.__all__, _torch_names)
_export(ops.__all__, ops)
__all__.append("compile")


def backends():
    """Names of the backends usable here, sorted.

    >>> import polygrad
    >>> "numpy" in polygrad.backends()
    True
    """
    return plugins.backend_names()


def get_backend(name):
    """The registered Backend declaration called ``name``."""
    return plugins.get_backend(name)


def compute(*tensors):
    """Materialise lazy tensors (dask) in one pass; a no-op on eager backends."""
    return _transfer.compute(*tensors)


_LAZY = {"nn": ".nn", "optim": ".optim", "profiler": ".profiler", "cuda": ".cuda",
         "accelerator": ".accelerator",
         "functional": ".autograd.functional", "viz": ".viz", "utils": ".utils",
         "func": ".func"}


_LAZY_FUNCTIONS = {"save": ".serialization", "load": ".serialization",
                   "vmap": ".func"}     # torch.vmap is torch.func.vmap


def __getattr__(name):
    if name in _LAZY_FUNCTIONS:         # the host library is loaded on the first save/load
        import importlib
        function = getattr(importlib.import_module(_LAZY_FUNCTIONS[name], __name__), name)
        globals()[name] = function
        return function
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name], __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'polygrad' has no attribute {name!r}")
