"""``polygrad.autograd``: backward, grad, and (in submodules) the functional API,
custom Functions, anomaly mode and the profiler.

This module turns user arguments into roots and seeds for the engine
(``polygrad.engine.run_backward``) and checks them; it does not walk the graph.
"""

from __future__ import annotations

from ..engine import AccumulateGrad, run_backward
from ..grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: F401

__all__ = ["backward", "grad", "Variable"]

IMPLICIT_MSG = ("grad can be implicitly created only for scalar outputs; this output has "
                "shape {shape}. Pass a gradient of that shape: y.backward(gradient).")


def _as_seq(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _seeds(outputs, grad_outputs, create_graph):
    from .._tensor import Tensor, _make
    from ..creation import asarray
    roots, seeds = [], []
    grad_outputs = _as_seq(grad_outputs) or [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} gradients for {len(outputs)} outputs")
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"outputs must be polygrad Tensors, got {type(out).__name__}")
        if out._node is None:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               f"have a grad_fn. Create the inputs with requires_grad=True "
                               f"(or call x.requires_grad_()) before computing this output.")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(IMPLICIT_MSG.format(shape=tuple(out.shape)))
            # straight from the namespace: the implicit seed sits on every training step
            g = _make(out._backend.xp.ones_like(out._st.array), out._backend)
        elif not isinstance(g, Tensor):
            g = asarray(g, backend=out._backend, dtype=out.dtype)
        if g._backend is not out._backend:
            raise RuntimeError(f"gradient {i} is on backend {g.backend!r} but the output is on "
                               f"{out.backend!r}; move it with .to({out.backend!r})")
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{tuple(g.shape)} and output[{i}] has a shape of "
                               f"{tuple(out.shape)}.")
        roots.append(out._node)
        seeds.append(g if create_graph else g._st.array)
    return roots, seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the graph's leaves.

    >>> import polygrad
    >>> x = polygrad.ones(3, requires_grad=True)
    >>> polygrad.autograd.backward((2 * x).sum()); x.grad
    tensor([2., 2., 2.])
    """
    outputs = _as_seq(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    roots, seeds = _seeds(outputs, grad_tensors, create_graph)
    only = None
    if inputs is not None:
        only = set()
        for t in _as_seq(inputs):
            if t._node is None:
                raise RuntimeError("an input passed to backward(inputs=...) does not require grad")
            if type(t._node) is not AccumulateGrad:
                t.retain_grad()
            else:
                only.add(t._node)
    run_backward(roots, seeds, retain_graph=retain_graph, create_graph=create_graph, only=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> import polygrad
    >>> x = polygrad.tensor(2.0, requires_grad=True)
    >>> polygrad.autograd.grad(x ** 3, x)
    (tensor(12.),)
    """
    from ..creation import zeros_like
    from .._tensor import _make
    outputs = _as_seq(outputs)
    inputs = _as_seq(inputs)
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(inputs):
        if t._node is None:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require "
                               f"grad. Set requires_grad=True on it.")
    roots, seeds = _seeds(outputs, grad_outputs, create_graph)
    targets = {t._node for t in inputs}
    captured = run_backward(roots, seeds, retain_graph=retain_graph, create_graph=create_graph,
                            capture=targets, accumulate=False)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(t._node)
        if g is None:
            if materialize_grads:
                result.append(zeros_like(t))
                continue
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been "
                    f"used in the graph. Set allow_unused=True if this is the desired behavior.")
            result.append(None)
        else:
            result.append(g if create_graph else _make(g, t._backend))
    return tuple(result)


def Variable(data, requires_grad=False, volatile=False):
    """The legacy wrapper of BZ-1: today a Variable is just a tensor with requires_grad.

    >>> import polygrad
    >>> polygrad.autograd.Variable(polygrad.ones(2), requires_grad=True).requires_grad
    True
    """
    from ..creation import asarray
    t = asarray(data).detach()
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
from .function import Function, once_differentiable  # noqa: E402
from .anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: E402

__all__ += ["Function", "once_differentiable", "detect_anomaly", "set_detect_anomaly",
            "functional", "forward_ad"]
