"""Layer 2, the rule table: every op polygrad differentiates, named by the Array API,
with its rules beside it (``table`` holds the ``Primitive`` row, the registry and the
helpers that write a family's rules; each other module is one family of rows).

Rules take the namespace as their first argument: the backend's raw namespace for
ordinary backward (``raw``), polygrad's differentiable ``polygrad.ops`` with
``create_graph=True``. This layer knows backends (``polygrad.plugins``) and nothing
above: no Tensor, no engine.

>>> PRIMITIVES["multiply"].node_name
'MulBackward0'
"""

from . import elementwise, fft, indexing, linalg, nn, products, reductions, shape, special, transfer  # noqa: F401  # noqa: F401
from .table import (
                    NONDIFFERENTIABLE,
                    PRIMITIVES,
                    Primitive,
                    conjugate,
                    def_bilinear,
                    def_elementwise,
                    def_gated,
                    def_linear,
                    def_nondifferentiable,
                    def_primitive,
                    get_primitive,
                    register_primitive,
)

__all__ = ["Primitive", "PRIMITIVES", "NONDIFFERENTIABLE", "def_elementwise", "def_gated",
           "def_linear", "def_bilinear", "def_primitive", "def_nondifferentiable",
           "register_primitive", "get_primitive", "conjugate"]
