"""The raw namespace a backend's rules run on during ordinary backward: the backend's
Array API namespace, plus its overrides and fused kernels, plus polygrad's own primitives
outside the standard (``scatter_add``, ``setitem``, ``logsumexp`` ...) by name.

Raw means no graph and no Tensors: arrays in, arrays out, at the backend's own speed.
"""

from __future__ import annotations

from ..plugins.backend import lookup
from .table import PRIMITIVES

__all__ = ["raw_namespace", "RawNamespace"]


class RawNamespace:
    """Attribute access resolves (once) to the backend's function for that name.

    >>> import polygrad
    >>> ns = raw_namespace(polygrad.get_backend("numpy"))
    >>> float(ns.logsumexp(ns.asarray([0.0, 0.0])))
    0.6931471805599453
    """

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        backend = self._backend
        prim = PRIMITIVES.get(name)
        if prim is not None:
            fn = backend.op(name, prim.impl)
        else:
            fn = lookup(backend.xp, name)
            if fn is None:
                raise AttributeError(f"backend {backend.name!r} namespace has no {name!r}")
        setattr(self, name, fn)
        return fn


def raw_namespace(backend):
    """The (cached) raw namespace of ``backend``."""
    ns = backend._ns
    if ns is None:
        ns = backend._ns = RawNamespace(backend)
    return ns
