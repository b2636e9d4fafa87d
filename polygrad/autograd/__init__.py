"""``polygrad.autograd``: backward, grad, and (in submodules) the functional API,
custom Functions, anomaly mode and the profiler.

``backward`` and ``grad`` are the graph layer's (``polygrad.graph.backward``), with
``polygrad.ops`` as the namespace rules run on under ``create_graph=True``.
"""

from __future__ import annotations

import threading

from .. import ops
from ..base.grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: F401
from ..graph import backward as _backward
from ..graph.creation import asarray as _asarray

__all__ = ["backward", "grad", "Variable"]


class _LoopedVmap(threading.local):
    """``depth`` > 0 while ``polygrad.func.vmap`` runs its function once per row: a
    backward pass inside it then keeps the graph (as ``retain_graph=True``), because a true
    vmap runs that pass once for all rows and the next row needs the same graph again."""

    depth = 0


looped_vmap = _LoopedVmap()


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the graph's leaves.

    >>> import polygrad
    >>> x = polygrad.ones(3, requires_grad=True)
    >>> polygrad.autograd.backward((2 * x).sum()); x.grad
    tensor([2., 2., 2.])
    """
    if retain_graph is None and looped_vmap.depth:
        retain_graph = True
    _backward.backward(tensors, grad_tensors, retain_graph, create_graph, inputs, ns=ops)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> import polygrad
    >>> x = polygrad.tensor(2.0, requires_grad=True)
    >>> polygrad.autograd.grad(x ** 3, x)
    (tensor(12.),)
    """
    if retain_graph is None and looped_vmap.depth:
        retain_graph = True
    return _backward.grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                          allow_unused, materialize_grads, ns=ops)


def Variable(data, requires_grad=False, volatile=False):
    """The legacy wrapper of BZ-1: today a Variable is just a tensor with requires_grad.

    >>> import polygrad
    >>> polygrad.autograd.Variable(polygrad.ones(2), requires_grad=True).requires_grad
    True
    """
    t = _asarray(data).detach()
    if requires_grad:
        t.requires_grad_(True)
    return t


def __getattr__(name):
    # submodules (profiler, functional, ...) load on first use, as torch.autograd.profiler does
    if not name.startswith("_"):
        import importlib
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        else:
            globals()[name] = module
            return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# custom Functions and anomaly mode (light modules; functional and forward_ad load lazily above)
from .anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: E402
from .function import Function, once_differentiable  # noqa: E402

# as in torch, ``autograd.gradcheck`` is the function (its module is ``autograd.gradcheck``'s
# home only through sys.modules)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

__all__ += ["Function", "once_differentiable", "detect_anomaly", "set_detect_anomaly",
            "functional", "forward_ad", "gradcheck", "gradgradcheck", "GradcheckError"]
