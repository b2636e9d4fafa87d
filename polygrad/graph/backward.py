"""``backward`` and ``grad``: user arguments turned into roots and seeds for the engine's
backward pass (``polygrad.graph.engine.run_backward``), checked first so that a bad call
changes nothing. ``ns`` is the differentiable namespace for ``create_graph``:
``polygrad.autograd`` and ``Tensor.backward`` pass ``polygrad.ops``.
"""

from __future__ import annotations

from .creation import asarray, zeros_like
from .engine import run_backward
from .node import AccumulateGrad
from .tensor import Tensor, wrap

__all__ = ["backward", "grad"]

IMPLICIT_MSG = ("grad can be implicitly created only for scalar outputs; this output has "
                "shape {shape}. Pass a gradient of that shape: y.backward(gradient).")


def _as_seq(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _seeds(outputs, grad_outputs, create_graph):
    roots, seeds = [], []
    grad_outputs = _as_seq(grad_outputs) or [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        if all(isinstance(g, (bool, int, float, complex, list, tuple)) for g in grad_outputs):
            raise TypeError(f"gradient must be a Tensor, not a list of {len(grad_outputs)} "
                            f"numbers (a list holds one gradient per output, and there "
                            f"{'is' if len(outputs) == 1 else 'are'} {len(outputs)}); pass "
                            f"polygrad.tensor([...]) of the output's shape")
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
            g = wrap(out._backend.xp.ones_like(out._st.array), out._backend)
        elif not isinstance(g, Tensor):
            g = asarray(g, backend=out._backend, dtype=out.dtype)
        if g._backend is not out._backend:
            raise RuntimeError(f"gradient {i} is on backend {g.backend!r} but the output is on "
                               f"{out.backend!r}; move it with .to({out.backend!r})")
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{tuple(g.shape)} and output[{i}] has a shape of "
                               f"{tuple(out.shape)}.")
        if g.dtype != out.dtype:     # torch casts the gradient to the output's dtype
            if g.dtype.is_complex and not out.dtype.is_complex:
                raise RuntimeError(f"For complex Tensors, both grad_output and output are "
                                   f"required to have the same dtype. Mismatch in dtype: "
                                   f"grad_output[{i}] has a dtype of {g.dtype} and output[{i}] "
                                   f"has a dtype of {out.dtype}.")
            g = g.astype(out.dtype)
        roots.append(out._node)
        seeds.append(g if create_graph else g._st.array)
    return roots, seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None,
             *, ns=None):
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
    run_backward(roots, seeds, retain_graph=retain_graph, create_graph=create_graph, only=only,
                 ns=ns)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False, *, ns=None):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> import polygrad
    >>> x = polygrad.tensor(2.0, requires_grad=True)
    >>> polygrad.autograd.grad(x ** 3, x)
    (tensor(12.),)
    """
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
                            capture=targets, accumulate=False, ns=ns)
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
            result.append(g if create_graph else wrap(g, t._backend))
    return tuple(result)
