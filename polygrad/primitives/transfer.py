"""``to``: moving a value to another backend or device, as a primitive so that it has a
graph node (``ToCopyBackward0``) and its gradient moves back.

Its forward runs outside ``apply`` (the output lives on another backend than the input;
``polygrad.ops.transfer`` builds the node), but its VJP is an ordinary rule: on the raw
namespace it moves the raw gradient array, on the differentiable namespace it calls
``ns.to``, which records a move in the other direction.
"""

from ..plugins.host import owner_of
from ..plugins.transfer import move_array
from .table import Primitive, register_primitive


def _move_impl(xp, array, *, dst, device=None):
    return move_array(array, owner_of(array), dst, device)


def _to_vjp(ns, g, out, *, src, src_device):
    return (ns.to(g, dst=src, device=src_device),)


TO = register_primitive(Primitive("to", _to_vjp, None, impl=_move_impl,
                                  node_name="ToCopyBackward0"))
TO.jvp = lambda ns, tangents, out, x, *, src, src_device: None
