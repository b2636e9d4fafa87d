"""Layer 4, the public namespaces: ``polygrad.ops`` is polygrad's differentiable Array API
2024.12 namespace (``pg``), with its ``linalg``, ``fft`` and ``special`` extensions; the
Tensor's methods (``methods``) and the torch-style names (``torch_names``) are derived from
the same op registry.

``Tensor.__array_namespace__`` returns this module, so library code written against the
standard (SciPy with ``SCIPY_ARRAY_API=1``, scikit-learn with array-API dispatch,
array-api-extra) records polygrad's graph and becomes differentiable. Backward with
``create_graph=True`` runs the primitive rules on this module too. Where the standard and
torch disagree (promotion of 0-d tensors), this namespace and the Tensor's operators follow
the standard; the torch-style names follow torch (docs/array-api.md).

>>> import polygrad.ops as pg
>>> pg.sum(pg.asarray([1.0, 2.0])).item()
3.0
"""

import sys as _sys

from ..primitives import PRIMITIVES as _PRIMITIVES
from . import array_api as _array_api
from . import fft, linalg, special  # noqa: F401
from . import methods as _methods
from .array_api import *  # noqa: F401,F403
from .array_api import __array_api_version__, __array_namespace_info__  # noqa: F401

__all__ = list(_array_api.__all__) + ["linalg", "fft", "special"]


def __getattr__(name):
    # registry rows outside the standard (scatter_add, setitem, plugins' ops), on first use
    prim = _PRIMITIVES.get(name) if not name.startswith("_") else None
    if prim is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fn = globals()[name] = _array_api.generated(prim)
    return fn


_methods.install(_sys.modules[__name__])
