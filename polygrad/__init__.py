"""polygrad: backend-agnostic autograd over the Python Array API.

``import polygrad as torch`` runs the PyTorch autograd tutorials on numpy (the
default), torch, cupy or any backend plugin. What lives where:

- ``polygrad._tensor``: the Tensor class; ``polygrad.engine``: graph and backward pass;
- ``polygrad.primitives``: the table of ops and their rules, named by the Array API;
- ``polygrad.ops``: the differentiable Array API namespace;
- ``polygrad.plugins``: the plugin host; built-in backends are in ``polygrad_backends``;
- ``polygrad.nn``, ``polygrad.optim``, ``polygrad.autograd``: the tutorials' API.

Importing polygrad imports no array library but numpy's plugin metadata; the
backend's library is imported when a tensor is first made on it.
"""

from . import dtypes as _dtypes
from .backend import Backend, KnownFailure
from .creation import (arange, asarray, default_backend, empty, empty_like, eye, from_numpy, full,
                       full_like, get_default_backend, linspace, manual_seed, ones, ones_like,
                       rand, rand_like, randint, randn, randn_like, set_default_backend, tensor,
                       use_backend, zeros, zeros_like)
from .device import device
from .dtypes import (DType, bfloat16, bool, complex64, complex128, double, float, float16,
                     float32, float64, half, int, int8, int16, int32, int64, long, uint8)
from .errors import (BackendMismatchError, BackendUnavailableError, PluginError,
                     UnknownBackendError, UnsupportedOperation)
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .hookspecs import hookimpl
from ._tensor import Tensor
from . import ops as _ops
from . import plugins  # noqa: F401  (the module; discovery itself is lazy)
from .torch_api import *  # noqa: F401,F403
from . import autograd  # noqa: F401

__version__ = "0.1.0"

Size = tuple
dtype = DType


def _export_ops():
    g = globals()
    for name in dir(_ops):
        if not name.startswith("_") and name not in g:
            g[name] = getattr(_ops, name)


_export_ops()


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
    from .transfer import compute as _compute
    return _compute(*tensors)


_LAZY = {"nn": ".nn", "optim": ".optim", "profiler": ".autograd.profiler", "cuda": ".cuda",
         "conformance": ".conformance_link", "functional": ".autograd.functional"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name], __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'polygrad' has no attribute {name!r}")
