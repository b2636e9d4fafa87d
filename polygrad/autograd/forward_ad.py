"""Forward-mode AD, with torch.autograd.forward_ad's API: ``dual_level``, ``make_dual``,
``unpack_dual``.

A dual tensor is an ordinary Tensor whose ``_tangent`` is set. While a level is open
(the engine's ``forward_ad_state.level > 0``, process-wide as torch's dual levels are) the
engine pushes tangents through each primitive's JVP rule, run on ``polygrad.ops``, as the
op runs; this module only opens and closes levels and makes and reads dual tensors. Tangents made at a level
are cleared when it closes. One level at a time, as in torch.
"""

from __future__ import annotations

import weakref
from collections import namedtuple

from .. import ops
from ..base import grad_mode
from ..graph.engine import forward_ad_state
from ..graph.node import Node
from ..graph.tensor import Tensor, share

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor",
           "enter_dual_level", "exit_dual_level"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])

_state = forward_ad_state


def enter_dual_level():
    """Open a forward-AD level and return its number (prefer ``with dual_level():``)."""
    if _state.level:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _state.live = []
    _state.ns = ops
    _state.level = 1
    return 0        # torch numbers levels from 0 (``with dual_level() as level``)


def exit_dual_level(*, level=None):
    """Close the open level: every tangent made while it was open is dropped."""
    if not _state.level:
        raise RuntimeError("exit_dual_level() called while no forward AD level is open")
    live, _state.live = _state.live or [], None
    _state.level = 0
    for ref in live:
        obj = ref()
        if obj is None:
            continue
        if isinstance(obj, Node):
            obj.tangents = None
        else:
            obj._tangent = None


class dual_level:
    """Context manager for a forward-AD level; tangents live only inside it.

    >>> import polygrad
    >>> import polygrad.autograd.forward_ad as fwAD
    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(polygrad.tensor([1.0, 2.0]), polygrad.tensor([1.0, 0.0]))
    ...     fwAD.unpack_dual(x * x).tangent
    tensor([2., 0.])
    """

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()
        return False


def make_dual(tensor, tangent, *, level=None):
    """A view of ``tensor`` carrying ``tangent``, as torch's: it shares ``tensor``'s data (an
    in-place write to one shows in the other) and, when ``tensor`` requires grad, is a
    non-leaf whose ``grad_fn`` is a ``ViewBackward0`` leading to ``tensor``, so reverse mode
    through it reaches ``tensor``'s graph (forward-over-reverse).

    >>> import polygrad
    >>> import polygrad.autograd.forward_ad as fwAD
    >>> with fwAD.dual_level():
    ...     fwAD.make_dual(polygrad.ones(2), polygrad.ones(2))._tangent is not None
    True
    """
    if not _state.level:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, "
                           "make sure to enter a level first: with forward_ad.dual_level(): ...")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual() expects two polygrad Tensors, got "
                        f"{type(tensor).__name__} and {type(tangent).__name__}")
    if not (tensor.dtype.is_floating_point or tensor.dtype.is_complex):
        raise ValueError(f"Expected primal to be floating point or complex, but got: "
                         f"{tensor.dtype.name}. Convert it first, e.g. x.double().")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(
            f"Trying to set a forward gradient that has a different size than that of the "
            f"original Tensor, this is not supported. Tensor is of size {list(tensor.shape)} "
            f"while the given forward gradient is of size {list(tangent.shape)}.")
    if tangent._backend is not tensor._backend:
        raise RuntimeError(f"the tangent is on backend {tangent.backend!r} but the primal is on "
                           f"{tensor.backend!r}; move it first with .to({tensor.backend!r})")
    if tangent.dtype != tensor.dtype:
        tangent = tangent.astype(tensor.dtype)
    node = tensor._node
    if node is not None and grad_mode.is_grad_enabled():
        # the view's node (torch's ViewBackward0), on tensor's own storage
        level, _state.level = _state.level, 0
        try:
            node = ops.reshape(tensor, tuple(tensor.shape))._node
        finally:
            _state.level = level
    dual = share(tensor._st, tensor._backend, node=node)
    dual._tangent = tangent
    _state.live.append(weakref.ref(dual))
    return dual


def unpack_dual(tensor, *, level=None):
    """``(primal, tangent)`` of a dual tensor; the tangent is None outside a level.

    >>> import polygrad
    >>> import polygrad.autograd.forward_ad as fwAD
    >>> fwAD.unpack_dual(polygrad.ones(2)).tangent is None
    True
    """
    tangent = tensor._tangent if _state.level else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = share(tensor._st, tensor._backend, node=tensor._node)
    return UnpackedDualTensor(primal, tangent)
