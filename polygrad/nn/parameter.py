"""Parameter: a leaf Tensor that a Module registers when it is assigned as an attribute.

It shares the buffer of the data it wraps (as torch's does) and requires grad by
default. Ops on a Parameter return plain Tensors.
"""

from __future__ import annotations

from ..graph.creation import empty
from ..graph.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a module parameter.

    >>> import polygrad
    >>> polygrad.nn.Parameter(polygrad.ones(2))
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter() expects a polygrad Tensor, got {type(data).__name__}; "
                            f"wrap the data first with polygrad.tensor(...)")
        p = Tensor.__new__(cls)
        p._st, p._backend = data._st, data._backend      # shares memory, as torch's does
        p._grad, p._tangent, p._node, p._view = None, None, None, None
        if requires_grad:
            p.requires_grad = True        # validates the dtype
        return p

    def __init__(self, data=None, requires_grad=True):
        pass      # all work happens in __new__ (Tensor.__init__ would copy the data)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        data = self.detach().clone()
        out = Parameter(data, requires_grad=self.requires_grad)
        if self._grad is not None:
            out._grad = self._grad.detach().clone()
        memo[id(self)] = out
        return out

    def __reduce__(self):
        return (_rebuild_parameter, (Tensor.__reduce__(self.detach()), self.requires_grad))


def _rebuild_parameter(tensor_reduce, requires_grad):
    fn, args = tensor_reduce
    return Parameter(fn(*args), requires_grad=requires_grad)

