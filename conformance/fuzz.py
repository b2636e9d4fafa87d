"""Random small programs built from the primitive table, for differential testing.

``programs()`` is a hypothesis strategy of ``Program`` objects: a few inputs and a chain
of steps, each an op from ``STEPS`` applied to earlier values. Every step is written in
Array API vocabulary, so the very same program runs on polygrad's namespace (any backend)
and on ``array_api_compat.torch`` with real torch tensors, whose autograd is the oracle.
Steps keep inputs inside each op's domain (``log`` sees ``1 + x*x``). Opt-in: it is not
part of the default conformance run; ``tests/test_conformance_fuzz.py`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STEPS", "Program", "programs", "run_polygrad", "run_torch"]

# name -> (arity, fn(xp, *values))
STEPS = {
    "sin": (1, lambda xp, a: xp.sin(a)),
    "cos": (1, lambda xp, a: xp.cos(a)),
    "tanh": (1, lambda xp, a: xp.tanh(a)),
    "exp": (1, lambda xp, a: xp.exp(xp.tanh(a))),
    "log": (1, lambda xp, a: xp.log(1.0 + a * a)),
    "sqrt": (1, lambda xp, a: xp.sqrt(1.0 + a * a)),
    "square": (1, lambda xp, a: xp.square(a)),
    "negative": (1, lambda xp, a: xp.negative(a)),
    "atan": (1, lambda xp, a: xp.atan(a)),
    "logaddexp": (2, lambda xp, a, b: xp.logaddexp(a, b)),
    "add": (2, lambda xp, a, b: xp.add(a, b)),
    "subtract": (2, lambda xp, a, b: xp.subtract(a, b)),
    "multiply": (2, lambda xp, a, b: xp.multiply(a, b)),
    "divide": (2, lambda xp, a, b: xp.divide(a, 1.0 + b * b)),
    "pow": (2, lambda xp, a, b: xp.pow(1.0 + a * a, xp.tanh(b))),
    "sum0": (1, lambda xp, a: xp.sum(a, axis=0, keepdims=True)),
    "mean1": (1, lambda xp, a: xp.mean(a, axis=1, keepdims=True)),
    "logsumexp": (1, lambda xp, a: _logsumexp(xp, a)),
    "matmul": (2, lambda xp, a, b: _matmul(xp, a, b)),
}


def _matmul(xp, a, b):
    # (a b^T) b keeps the (2, 3) shape the other steps broadcast against
    if tuple(a.shape) != (2, 3) or tuple(b.shape) != (2, 3):
        return xp.multiply(a, b)
    return xp.matmul(xp.matmul(a, xp.matrix_transpose(b)), b)


def _logsumexp(xp, a):
    m = xp.max(a, axis=1, keepdims=True)
    return m + xp.log(xp.sum(xp.exp(a - m), axis=1, keepdims=True))


@dataclass
class Program:
    """Inputs (host float64 arrays) and steps ``(op name, argument indices)``."""

    inputs: list
    steps: list

    def __str__(self):
        names = [f"x{i}" for i in range(len(self.inputs))]
        lines = []
        for k, (op, idx) in enumerate(self.steps):
            names.append(f"v{k}")
            lines.append(f"v{k} = {op}({', '.join(names[i] for i in idx)})")
        return "; ".join(lines) + f"; out = sum({names[-1]})"

    def evaluate(self, xp, xs):
        values = list(xs)
        for op, idx in self.steps:
            values.append(STEPS[op][1](xp, *(values[i] for i in idx)))
        return xp.sum(values[-1])


def programs(max_steps=5):
    """A hypothesis strategy of random programs over 2 or 3 inputs of shape (2, 3)."""
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    elements = st.floats(-2.0, 2.0, allow_nan=False, width=64)

    @st.composite
    def build(draw):
        n = draw(st.integers(2, 3))
        inputs = [draw(arrays(np.float64, (2, 3), elements=elements)) for _ in range(n)]
        steps = []
        for k in range(draw(st.integers(1, max_steps))):
            op = draw(st.sampled_from(sorted(STEPS)))
            arity = STEPS[op][0]
            avail = n + k
            idx = [avail - 1] + [draw(st.integers(0, avail - 1)) for _ in range(arity - 1)]
            steps.append((op, tuple(idx)))
        return Program(inputs, steps)

    return build()


def run_polygrad(program, backend):
    """(value, gradients) of ``program`` on a polygrad backend, as host float64 arrays."""
    import polygrad

    from .checks import to_host
    xs = [polygrad.from_numpy(x, backend=backend, requires_grad=True) for x in program.inputs]
    out = program.evaluate(polygrad.ops, xs)
    grads = polygrad.autograd.grad(out, xs, allow_unused=True)
    return float(to_host(out)), [np.zeros((2, 3)) if g is None else to_host(g) for g in grads]


def run_torch(program):
    """The same with torch.autograd, the oracle."""
    import array_api_compat.torch as xp
    import torch
    xs = [torch.from_numpy(x.copy()).requires_grad_(True) for x in program.inputs]
    out = program.evaluate(xp, xs)
    grads = torch.autograd.grad(out, xs, allow_unused=True)
    return float(out.detach()), [np.zeros((2, 3)) if g is None else g.numpy() for g in grads]
