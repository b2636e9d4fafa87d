"""Differential fuzzing: random torch-style programs on a polygrad backend against real torch.

A ``Program`` is a few float64 input tensors and a chain of steps written in torch's own
vocabulary (``v2 = v1.sum(dim=0, keepdim=True)``, ``v3 = v2.clone().mul_(v0)``,
``v1[0] = v0.sum()``): elementwise ops, broadcasting binary ops, reductions with
dim/keepdim, views, in-place writes (also through views), ``no_grad`` and ``detach``, over
0-d, empty and ordinary shapes with ties and zeros in the data. Its text is the repro: run
with ``import polygrad as torch`` on the backend under test, and with ``import torch`` as
the oracle, it gives every value, the gradients of a weighted sum of the last value and
(when drawn) the gradients of ``sum(g * g)`` built with ``create_graph=True``.

``programs()`` is the hypothesis strategy; ``fuzz(backend, seconds=...)`` searches for
disagreements until its budget is spent, shrinks each one to a minimal program
(hypothesis's shrinker, then ``prune``, which deletes steps hypothesis cannot: later
steps name them) and returns them as runnable snippets. Reproducible: the same
``seed`` gives the same programs. A program real torch rejects (an error, forward or
backward) is discarded, not counted. With ``compiled=True`` each program that agrees with
torch is also run as a ``polygrad.compile``d function (traced, then replayed) on the same
backend and compared with its eager run: a ``compiled`` disagreement, shrunk like the others.
A program the compiler cannot trace (an in-place write) runs eagerly with a warning: that is
counted (``compiled_fallbacks``), not a disagreement; a wrong compiled result is. This module owns generation, running and comparing;
the CLI and the report only show its result. It needs torch (the oracle, and the shape
check of each drawn step on ``meta`` tensors), imported when a program is drawn or run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["OPS", "FAMILIES", "Program", "Disagreement", "programs", "run_polygrad",
           "run_compiled", "run_torch", "check", "compare", "prune", "fuzz", "skipped", "section",
           "require_torch", "TORCH_MISSING"]

TORCH_MISSING = ("the differential fuzzer compares with real torch, which is not installed "
                 "here; install it (pip install torch, or the CPU wheel: pip install torch "
                 "--index-url https://download.pytorch.org/whl/cpu) and run again")

#: the values inputs are drawn from: exact binary fractions, so zeros and ties are common
GRID = (1.0, 0.0, -1.0, 2.0, 0.5, -0.5, -2.0, 1.5, -1.5, 0.25, -0.25, 0.75, -0.75)
SHAPES = ((), (3,), (2, 3), (1, 3), (2, 1), (0, 3), (3, 0), (2, 1, 3))
#: closeness of two float64 results: |got - ref| <= ATOL * (1 + max|ref|) + RTOL * |ref|
ATOL, RTOL = 1e-9, 1e-7


def require_torch():
    """Raise ``ModuleNotFoundError`` saying what to install when torch is missing."""
    try:
        import torch
    except ImportError as exc:
        raise ModuleNotFoundError(TORCH_MISSING, name="torch") from exc
    return torch


# -- the steps ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One kind of step: a statement template over the argument names ``{a}``, ``{b}``
    and the output ``{out}``, and how to draw its parameters from the argument shapes
    (None when it does not fit them)."""

    family: str
    arity: int
    code: str
    params: Callable | None = None


def _dim(draw, shape, st):
    n = max(len(shape), 1)             # torch takes dim 0 and -1 on a 0-d tensor
    return draw(st.integers(-n, n - 1))


def _reduce(draw, shapes, st):
    return {"dim": _dim(draw, shapes[0], st), "keepdim": draw(st.booleans())}


def _along(draw, shapes, st):
    return {"dim": _dim(draw, shapes[0], st)}


def _std(draw, shapes, st):
    return {**_reduce(draw, shapes, st), "c": draw(st.sampled_from((1, 0)))}


def _pow(draw, shapes, st):
    return {"k": draw(st.sampled_from((2, 0, 1, 3)))}


def _clamp(draw, shapes, st):
    lo = draw(st.sampled_from(GRID[:6]))
    return {"lo": lo, "hi": lo + draw(st.sampled_from((0.0, 0.5, 1.0)))}


def _p(draw, shapes, st):
    return {"p": draw(st.sampled_from((2, 1, 3)))}


def _transpose(draw, shapes, st):
    if len(shapes[0]) < 2:
        return None
    return {"d0": _dim(draw, shapes[0], st), "d1": _dim(draw, shapes[0], st)}


def _permute(draw, shapes, st):
    if len(shapes[0]) < 2:
        return None
    return {"perm": tuple(draw(st.permutations(range(len(shapes[0])))))}


def _unsqueeze(draw, shapes, st):
    n = len(shapes[0]) + 1
    return {"dim": draw(st.integers(-n, n - 1))}


def _expand(draw, shapes, st):
    shape = shapes[0]
    if 1 not in shape and shape:
        return None
    return {"shape": tuple(2 if s == 1 else s for s in shape) if shape else (2,)}


def _index(draw, shapes, st):
    shape = shapes[0]
    choices = ["None", "..."]
    if shape:
        choices += ["1:", "::2", "-1:"] + (["0"] if shape[0] else [])
    if len(shape) >= 2:
        choices += [":, 1:", "..., ::2"] + ([":, 0"] if shape[1] else [])
    return {"idx": draw(st.sampled_from(choices))}


def _narrow(draw, shapes, st):
    shape = shapes[0]
    if not shape:
        return None
    dim = draw(st.integers(0, len(shape) - 1))
    start = draw(st.integers(0, shape[dim]))
    return {"dim": dim, "start": start, "length": draw(st.integers(0, shape[dim] - start))}


def _scalar(draw, shapes, st):
    return {"s": draw(st.sampled_from((2.0, 0.0, -1.0, 0.5)))}


def _nonempty_dim(draw, shapes, st):
    dims = [d for d, n in enumerate(shapes[0]) if n]
    return {"dim": draw(st.sampled_from(dims))} if dims else None


OPS = {
    # elementwise; log, sqrt and division kept inside their domain
    "sin": Op("elementwise", 1, "{out} = torch.sin({a})"),
    "cos": Op("elementwise", 1, "{out} = {a}.cos()"),
    "tanh": Op("elementwise", 1, "{out} = torch.tanh({a})"),
    "sigmoid": Op("elementwise", 1, "{out} = torch.sigmoid({a})"),
    "exp": Op("elementwise", 1, "{out} = torch.exp(torch.tanh({a}))"),
    "log": Op("elementwise", 1, "{out} = torch.log(1 + {a} * {a})"),
    "sqrt": Op("elementwise", 1, "{out} = (1 + {a} * {a}).sqrt()"),
    "atan": Op("elementwise", 1, "{out} = torch.atan({a})"),
    "abs": Op("elementwise", 1, "{out} = {a}.abs()"),
    "relu": Op("elementwise", 1, "{out} = torch.relu({a})"),
    "neg": Op("elementwise", 1, "{out} = -{a}"),
    "copy": Op("elementwise", 1, "{out} = {a} * 1"),      # what pruning puts in a step's place
    "square": Op("elementwise", 1, "{out} = {a}.square()"),
    "pow_int": Op("elementwise", 1, "{out} = {a} ** {k}", _pow),
    "pow_frac": Op("elementwise", 1, "{out} = {a}.abs() ** 1.5"),
    "rpow": Op("elementwise", 1, "{out} = 2.0 ** {a}"),
    # torch's spelling: the % operator follows the standard, which signs a zero remainder
    # as the divisor where torch signs it as the dividend (docs/semantics.md)
    "remainder": Op("elementwise", 1, "{out} = torch.remainder({a}, 1)"),
    "clamp": Op("elementwise", 1, "{out} = {a}.clamp(min={lo}, max={hi})", _clamp),
    "scale": Op("elementwise", 1, "{out} = {s} * {a}", _scalar),
    "rsub": Op("elementwise", 1, "{out} = {s} - {a}", _scalar),
    # binary, broadcasting
    "add": Op("binary", 2, "{out} = {a} + {b}"),
    "sub": Op("binary", 2, "{out} = torch.sub({a}, {b})"),
    "mul": Op("binary", 2, "{out} = {a} * {b}"),
    "div": Op("binary", 2, "{out} = {a} / (1 + {b} * {b})"),
    "pow": Op("binary", 2, "{out} = (1 + {a} * {a}) ** {b}"),
    "maximum": Op("binary", 2, "{out} = torch.maximum({a}, {b})"),
    "minimum": Op("binary", 2, "{out} = torch.minimum({a}, {b})"),
    "where": Op("binary", 2, "{out} = torch.where({a} > {b}, {a}, {b})"),
    "clamp_t": Op("binary", 2, "{out} = {a}.clamp(min={b})"),
    "matmul": Op("binary", 2, "{out} = {a} @ {b}.mT"),
    # reductions
    "sum": Op("reduction", 1, "{out} = {a}.sum(dim={dim}, keepdim={keepdim})", _reduce),
    "sum_all": Op("reduction", 1, "{out} = {a}.sum()"),
    "mean": Op("reduction", 1, "{out} = {a}.mean(dim={dim}, keepdim={keepdim})", _reduce),
    "amax": Op("reduction", 1, "{out} = {a}.amax(dim={dim}, keepdim={keepdim})", _reduce),
    "max": Op("reduction", 1, "{out} = {a}.max(dim={dim}, keepdim={keepdim}).values", _reduce),
    "min": Op("reduction", 1, "{out} = {a}.min(dim={dim}, keepdim={keepdim}).values", _reduce),
    "max_all": Op("reduction", 1, "{out} = {a}.max()"),
    "prod": Op("reduction", 1, "{out} = {a}.prod(dim={dim}, keepdim={keepdim})", _reduce),
    "prod_all": Op("reduction", 1, "{out} = {a}.prod()"),
    "norm": Op("reduction", 1, "{out} = {a}.norm(p={p})", _p),
    "std": Op("reduction", 1, "{out} = {a}.std(dim={dim}, correction={c}, keepdim={keepdim})",
              _std),
    "var": Op("reduction", 1, "{out} = {a}.var(dim={dim}, correction={c}, keepdim={keepdim})",
              _std),
    "logsumexp": Op("reduction", 1, "{out} = torch.logsumexp({a}, dim={dim}, keepdim={keepdim})",
                    _reduce),
    "softmax": Op("reduction", 1, "{out} = torch.softmax({a}, dim={dim})", _along),
    "log_softmax": Op("reduction", 1, "{out} = torch.log_softmax({a}, dim={dim})", _along),
    "cumsum": Op("reduction", 1, "{out} = {a}.cumsum(dim={dim})", _along),
    # views
    "transpose": Op("view", 1, "{out} = {a}.transpose({d0}, {d1})", _transpose),
    "permute": Op("view", 1, "{out} = {a}.permute{perm}", _permute),
    "t": Op("view", 1, "{out} = {a}.t()"),
    "reshape": Op("view", 1, "{out} = {a}.reshape(-1)"),
    "flatten": Op("view", 1, "{out} = {a}.flatten()"),
    "unsqueeze": Op("view", 1, "{out} = {a}.unsqueeze({dim})", _unsqueeze),
    "squeeze": Op("view", 1, "{out} = {a}.squeeze({dim})", _along),
    "expand": Op("view", 1, "{out} = {a}.expand{shape}", _expand),
    "index": Op("view", 1, "{out} = {a}[{idx}]", _index),
    "narrow": Op("view", 1, "{out} = {a}.narrow({dim}, {start}, {length})", _narrow),
    # in-place on a fresh copy
    "add_": Op("inplace", 2, "{out} = {a}.clone().add_({b})"),
    "mul_": Op("inplace", 2, "{out} = {a}.clone().mul_({b})"),
    "clamp_": Op("inplace", 1, "{out} = {a}.clone().clamp_(min={lo})", _clamp),
    "setitem": Op("inplace", 2, "{out} = {a}.clone()\n{out}[{idx}] = {b}.sum()", _index),
    # in-place on an earlier value, which may be a view of another (torch writes through)
    "mul_alias": Op("alias", 2, "{out} = {a}.mul_({b})"),
    "view_mul_": Op("alias", 1, "{out} = {a}[{idx}].mul_(2)", _index),
    "setitem_alias": Op("alias", 2, "{a}[{idx}] = {b}.sum()\n{out} = {a}", _index),
    # grad modes
    "no_grad": Op("grad_mode", 1, "with torch.no_grad():\n    {out} = {a} * 2"),
    "detach": Op("grad_mode", 1, "{out} = {a}.detach() * {a}"),
    # -- wider: the rest of the primitive table's rows, torch-style (issue 13) --------
    # elementwise, over the rest of the table's unary rows (kept inside their domains where
    # the edge is a pole, at the edge where it is a kink)
    "sinh": Op("elementwise", 1, "{out} = torch.sinh({a})"),
    "cosh": Op("elementwise", 1, "{out} = {a}.cosh()"),
    "tan": Op("elementwise", 1, "{out} = torch.tan(torch.tanh({a}))"),
    "asin": Op("elementwise", 1, "{out} = torch.asin(torch.tanh({a}))"),
    "acos": Op("elementwise", 1, "{out} = torch.acos(torch.tanh({a}))"),
    "asinh": Op("elementwise", 1, "{out} = torch.asinh({a})"),
    "acosh": Op("elementwise", 1, "{out} = torch.acosh(1 + {a} * {a})"),
    "atanh": Op("elementwise", 1, "{out} = torch.atanh(0.5 * torch.tanh({a}))"),
    "expm1": Op("elementwise", 1, "{out} = torch.expm1({a})"),
    "log1p": Op("elementwise", 1, "{out} = torch.log1p({a} * {a})"),
    "log2": Op("elementwise", 1, "{out} = torch.log2(1 + {a} * {a})"),
    "erf": Op("elementwise", 1, "{out} = torch.erf({a})"),
    "sign": Op("elementwise", 1, "{out} = torch.sign({a}) * {a}"),
    "floor": Op("elementwise", 1, "{out} = {a}.floor() + {a}"),
    "round": Op("elementwise", 1, "{out} = torch.round({a}) * {a}"),
    "trunc": Op("elementwise", 1, "{out} = {a}.trunc() - {a}"),
    "reciprocal": Op("elementwise", 1, "{out} = torch.reciprocal(1 + {a} * {a})"),
    "fmod": Op("elementwise", 1, "{out} = torch.fmod({a}, 0.75)"),
    "sqrt_raw": Op("elementwise", 1, "{out} = {a}.abs().sqrt()"),
    "log_raw": Op("elementwise", 1, "{out} = torch.log({a}.abs())"),
    # binary
    "atan2": Op("binary", 2, "{out} = torch.atan2({a}, {b})"),
    "hypot": Op("binary", 2, "{out} = torch.hypot({a}, {b})"),
    "logaddexp": Op("binary", 2, "{out} = torch.logaddexp({a}, {b})"),
    "copysign": Op("binary", 2, "{out} = torch.copysign({a}, {b})"),
    "remainder_t": Op("binary", 2, "{out} = torch.remainder({a}, 1 + {b} * {b})"),
    "div_raw": Op("binary", 2, "{out} = {a} / {b}"),
    "rdiv": Op("elementwise", 1, "{out} = {s} / (1 + {a} * {a})", _scalar),
    "cat": Op("binary", 2, "{out} = torch.cat([{a}, {b}])"),
    "stack": Op("binary", 2, "{out} = torch.stack([{a}, {b}], dim=-1)"),
    "mse_loss": Op("binary", 2, "{out} = torch.nn.functional.mse_loss({a}, {b})"),
    "bce_logits": Op("binary", 2, "{out} = torch.nn.functional.binary_cross_entropy_with_logits("
                     "{a}, torch.sigmoid({b}))"),
    "outer_mm": Op("binary", 2, "{out} = {a}.mT @ {b}"),
    "vecdot": Op("binary", 2, "{out} = torch.linalg.vecdot({a}, {b})"),
    "lerp": Op("binary", 2, "{out} = torch.lerp({a}, {b}, 0.25)"),
    # reductions and scans
    "cumprod": Op("reduction", 1, "{out} = {a}.cumprod(dim={dim})", _along),
    "amin": Op("reduction", 1, "{out} = {a}.amin(dim={dim}, keepdim={keepdim})", _reduce),
    "min_all": Op("reduction", 1, "{out} = {a}.min()"),
    "mean_all": Op("reduction", 1, "{out} = {a}.mean()"),
    "std_all": Op("reduction", 1, "{out} = {a}.std()"),
    "median": Op("reduction", 1, "{out} = {a}.median()"),
    "sort": Op("reduction", 1, "{out} = {a}.sort(dim={dim}).values", _along),
    "vector_norm": Op("reduction", 1, "{out} = torch.linalg.vector_norm({a}, dim={dim})", _along),
    # views and copies of shape
    "flip": Op("view", 1, "{out} = {a}.flip([{dim}])", _along),
    "roll": Op("view", 1, "{out} = {a}.roll(1, {dim})", _along),
    "movedim": Op("view", 1, "{out} = {a}.movedim(0, -1)"),
    "diagonal": Op("view", 1, "{out} = {a}.diagonal()"),
    "tril": Op("view", 1, "{out} = {a}.tril()"),
    "index_select": Op("view", 1, "{out} = {a}.index_select({dim}, torch.tensor([0, 0]))",
                       _nonempty_dim),
    "repeat": Op("view", 1, "{out} = {a}.repeat(2, *([1] * {a}.ndim))"),
    "chunk": Op("view", 1, "{out} = {a}.chunk(2, dim={dim})[0]", _along),
    # in-place on a fresh copy
    "sub_": Op("inplace", 2, "{out} = {a}.clone().sub_({b}, alpha=2)"),
    "div_": Op("inplace", 2, "{out} = {a}.clone().div_(1 + {b} * {b})"),
    "pow_": Op("inplace", 1, "{out} = {a}.clone().pow_(2)"),
    "zero_": Op("inplace", 1, "{out} = {a}.clone().zero_() + {a}"),
    "fill_": Op("inplace", 1, "{out} = {a}.clone().fill_(2.0) * {a}"),
    "copy_": Op("inplace", 2, "{out} = {a}.clone().copy_({b})"),
    "clamp_max_": Op("inplace", 1, "{out} = {a}.clone().clamp_(max={lo})", _clamp),
    # in-place on an earlier value
    "add_alias": Op("alias", 2, "{out} = {a}.add_({b})"),
    "zero_view": Op("alias", 1, "{a}[{idx}].zero_()\n{out} = {a}", _index),
    # linear algebra on square matrices built from the inputs, kept regular (a a^T + I): at
    # an exactly singular matrix det's and slogdet's backward deviate from torch's on purpose
    # (docs/semantics.md, "Known deviations"), which the fuzzer would report again and again
    "det": Op("linalg", 1, "{out} = torch.linalg.det({a} @ {a}.mT + torch.eye({a}.shape[-2], "
              "dtype=torch.float64, device={a}.device))"),
    "inv": Op("linalg", 1, "{out} = torch.linalg.inv({a} @ {a}.mT + torch.eye({a}.shape[-2], "
              "dtype=torch.float64, device={a}.device))"),
    "solve": Op("linalg", 2, "{out} = torch.linalg.solve({a} @ {a}.mT + torch.eye({a}.shape[-2], "
                "dtype=torch.float64, device={a}.device), {b})"),
    "slogdet": Op("linalg", 1, "{out} = torch.linalg.slogdet({a} @ {a}.mT + torch.eye("
                  "{a}.shape[-2], dtype=torch.float64, device={a}.device)).logabsdet"),
    "matrix_norm": Op("linalg", 1, "{out} = torch.linalg.matrix_norm({a})"),
    # the rest of the torch surface: activations and losses at their kinks, gathers, scans
    "softplus": Op("surface", 1, "{out} = torch.nn.functional.softplus({a}, beta=2, threshold=1)"),
    "gelu": Op("surface", 1, "{out} = torch.nn.functional.gelu({a})"),
    "gelu_tanh": Op("surface", 1, "{out} = torch.nn.functional.gelu({a}, approximate='tanh')"),
    "silu": Op("surface", 1, "{out} = torch.nn.functional.silu({a})"),
    "mish": Op("surface", 1, "{out} = torch.nn.functional.mish({a})"),
    "hardswish": Op("surface", 1, "{out} = torch.nn.functional.hardswish({a} * 3)"),
    "leaky_relu": Op("surface", 1, "{out} = torch.nn.functional.leaky_relu({a}, 0.1)"),
    "elu": Op("surface", 1, "{out} = torch.nn.functional.elu({a})"),
    "hardtanh": Op("surface", 1, "{out} = torch.nn.functional.hardtanh({a}, -0.5, 1.0)"),
    "logsigmoid": Op("surface", 1, "{out} = torch.nn.functional.logsigmoid({a})"),
    "smooth_l1": Op("surface", 2, "{out} = torch.nn.functional.smooth_l1_loss({a}, {b})"),
    "huber": Op("surface", 2, "{out} = torch.nn.functional.huber_loss({a}, {b}, delta=0.5)"),
    "masked_fill": Op("surface", 2, "{out} = {a}.masked_fill({b} > 0, 2.0)"),
    "gather_argmax": Op("surface", 1, "{out} = {a}.gather({dim}, {a}.argmax(dim={dim}, "
                        "keepdim=True))", _nonempty_dim),
    "take_along_dim": Op("surface", 1, "{out} = torch.take_along_dim({a}, "
                         "{a}.argmin(dim={dim}, keepdim=True), dim={dim})", _nonempty_dim),
    "cummax": Op("surface", 1, "{out} = {a}.cummax(dim={dim}).values", _along),
    "logcumsumexp": Op("surface", 1, "{out} = {a}.logcumsumexp({dim})", _along),
    "normalize": Op("surface", 1, "{out} = torch.nn.functional.normalize({a}, dim=-1)"),
    "layer_norm": Op("surface", 1, "{out} = torch.nn.functional.layer_norm({a}, {a}.shape[-1:])"),
    "cholesky": Op("linalg", 1, "{out} = torch.linalg.cholesky({a} @ {a}.mT + torch.eye("
                   "{a}.shape[-2], dtype=torch.float64, device={a}.device))"),
}

FAMILIES = tuple(dict.fromkeys(op.family for op in OPS.values()))


# -- programs -------------------------------------------------------------------------------

@dataclass
class Program:
    """Input arrays (float64) and statements; ``double``: also differentiate ``sum(g * g)``."""

    inputs: list
    steps: list                 # (op name, statement text, argument names)
    double: bool = False

    @property
    def ops(self):
        """The ops that make the program what it is (not ``copy``, pruning's filler)."""
        return frozenset(step[0] for step in self.steps) - {"copy"}

    def body(self):
        """The program's statements, after the inputs are made: ``out``, ``gs`` (and ``gs2``)."""
        lines = [_input_line(i, x) for i, x in enumerate(self.inputs)]
        lines += [step[1] for step in self.steps]
        lines.append(f"out = {self._weighted()}")
        return "\n".join(lines + self._grad_lines())

    def compiled_body(self):
        """``body()`` with the steps and ``out`` in a ``polygrad.compile``d function, called
        twice: the first call traces, the second (whose result is differentiated) replays."""
        xs = ", ".join(f"x{i}" for i in range(len(self.inputs)))
        lines = [_input_line(i, x) for i, x in enumerate(self.inputs)]
        lines += ["@torch.compile", f"def program({xs}):"]
        lines += ["    " + line for step in self.steps for line in step[1].splitlines()]
        lines += [f"    return {self._weighted()}",
                  f"program({xs})                  # the first call traces, the second replays",
                  f"out = program({xs})"]
        return "\n".join(lines + self._grad_lines())

    def _weighted(self):
        # a weighted sum, so that a gradient sent to the wrong element shows
        last = f"v{len(self.steps) - 1}"
        return (f"({last} * torch.arange(1, {last}.numel() + 1, "
                f"dtype=torch.float64).reshape({last}.shape)).sum()")

    def _grad_lines(self):
        xs = ", ".join(f"x{i}" for i in range(len(self.inputs)))
        if not self.double:
            return [f"gs = torch.autograd.grad(out, [{xs}], allow_unused=True)"]
        return [f"gs = torch.autograd.grad(out, [{xs}], create_graph=True, allow_unused=True)",
                "out2 = sum((g * g).sum() for g in gs if g is not None)",
                f"gs2 = (torch.autograd.grad(out2, [{xs}], allow_unused=True)",
                "       if getattr(out2, 'requires_grad', False) else None)"]

    def snippet(self, backend, note="", compiled=False):
        """A runnable script: this program on polygrad's ``backend``; the same lines under
        ``import torch`` are the oracle. ``compiled``: the program as a compiled function;
        without the ``@torch.compile`` line it is the eager run it is compared with."""
        head = [f"# {line}" for line in note.splitlines()]
        head += ["import polygrad as torch   # the eager run: delete the @torch.compile line"
                 if compiled else
                 "import polygrad as torch   # the oracle: replace these two lines by import torch",
                 f"torch.set_default_backend({backend!r})"]
        tail = "print(out, gs" + (", gs2)" if self.double else ")")
        body = self.compiled_body() if compiled else self.body()
        return "\n".join([*head, body, tail]) + "\n"

    def __str__(self):
        return self.body()


def _input_line(i, x):
    if x.size == 0:
        return f"x{i} = torch.zeros({tuple(x.shape)}, dtype=torch.float64, requires_grad=True)"
    return f"x{i} = torch.tensor({x.tolist()!r}, dtype=torch.float64, requires_grad=True)"


def programs(max_steps=6, families=None):
    """A hypothesis strategy of ``Program``: 1 to 3 inputs and up to ``max_steps`` steps
    from ``OPS`` (only those of ``families`` when given), each checked on torch ``meta``
    tensors as it is drawn so that shapes, dims and in-place rules fit."""
    from hypothesis import strategies as st
    torch = require_torch()
    # a family first, then one of its ops: each family gets its share of the steps
    names = {f: [n for n, op in OPS.items() if op.family == f] for f in FAMILIES
             if families is None or f in families}
    if not names:
        raise ValueError(f"no op in families {families!r}; the families are {FAMILIES}")
    elements = st.sampled_from(GRID)

    @st.composite
    def build(draw):
        n_in = draw(st.integers(1, 3))
        inputs = []
        for _ in range(n_in):
            shape = draw(st.sampled_from(SHAPES))
            data = draw(st.lists(elements, min_size=int(np.prod(shape)),
                                 max_size=int(np.prod(shape))))
            inputs.append(np.array(data, dtype=np.float64).reshape(shape))
        meta = {f"x{i}": torch.empty(x.shape, dtype=torch.float64, device="meta",
                                     requires_grad=True) for i, x in enumerate(inputs)}
        values = list(meta)
        steps = []
        for k in range(draw(st.integers(1, max_steps))):
            step = _draw_step(draw, st, names, values, meta, f"v{k}", torch)
            if step is None:
                break
            steps.append(step)
            values.append(f"v{k}")
        if not steps:
            from hypothesis import reject
            reject()
        return Program(inputs, steps, double=draw(st.booleans()))

    return build()


def _draw_step(draw, st, names, values, meta, out, torch):
    """One step whose statement runs on the meta tensors (and updates them), or None."""
    for _ in range(8):
        name = draw(st.sampled_from(names[draw(st.sampled_from(list(names)))]))
        op = OPS[name]
        # the first argument counts back from the latest value, so programs read as chains
        args = [values[-1 - draw(st.integers(0, len(values) - 1))] for _ in range(op.arity)]
        params = {}
        if op.params is not None:
            params = op.params(draw, [tuple(meta[a].shape) for a in args], st)
            if params is None:
                continue
        text = op.code.format(out=out, a=args[0], b=args[-1], **params)
        trial = dict(meta)
        try:
            with _quiet():
                exec(text, {"torch": torch}, trial)
        except Exception:       # noqa: BLE001 - a statement torch rejects: draw another
            continue
        meta.clear()
        meta.update(trial)
        return name, text, tuple(args)
    return None


@contextlib.contextmanager
def _quiet():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- running and comparing ------------------------------------------------------------------

def _execute(program, module, convert, compiled=False):
    ns = {"torch": module}
    with _quiet():      # nan and inf are data here; a lazy backend warns when converted
        exec(program.compiled_body() if compiled else program.body(), ns)
        names = [f"x{i}" for i in range(len(program.inputs))]
        if not compiled:        # the compiled function returns out alone
            names += [f"v{k}" for k in range(len(program.steps))]
        names.append("out")
        got = {n: convert(ns[n]) for n in names}
        for key in ("gs", "gs2") if program.double else ("gs",):
            gs = ns[key]
            for i, x in enumerate(program.inputs):
                g = None if gs is None else gs[i]
                got[f"d{'2' if key == 'gs2' else ''}out/dx{i}"] = (
                    np.zeros(x.shape) if g is None else convert(g))
        if compiled:
            got["fell back"] = ns["program"].stats.fallbacks > 0
    return got


def run_polygrad(program, backend):
    """Every value and gradient of ``program`` on a polygrad backend, as numpy arrays."""
    import polygrad

    from .checks import to_host
    with polygrad.use_backend(backend):
        return _execute(program, polygrad, to_host)


def run_compiled(program, backend):
    """``run_polygrad`` with the program compiled (``Program.compiled_body``): ``out`` and
    the gradients, and ``"fell back"``: whether the compiler ran it eagerly."""
    import polygrad

    from .checks import to_host
    with polygrad.use_backend(backend):
        return _execute(program, polygrad, to_host, compiled=True)


def _torch_host(t):
    return t.detach().cpu().numpy().copy()


def run_torch(program):
    """The same on real torch (the oracle)."""
    return _execute(program, require_torch(), _torch_host)


def compare(got, ref, names=("polygrad", "torch")):
    """The first disagreement of two runs, as ``(name, message)``, or None; ``names``: what
    the message calls ``got`` and ``ref``."""
    for name, r in ref.items():
        g = got[name]
        if g.shape != r.shape:
            return name, f"{name}: shape {g.shape}, {names[1]} {r.shape}"
        g, r = g.astype(np.float64), r.astype(np.float64)
        same_nonfinite = (np.isnan(g) & np.isnan(r)) | (np.isinf(r) & (g == r))
        scale = np.nanmax(np.abs(np.where(np.isfinite(r), r, 0)), initial=0.0)
        with np.errstate(invalid="ignore"):
            close = np.abs(g - r) <= ATOL * (1 + scale) + RTOL * np.abs(r)
        bad = ~(close | same_nonfinite)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            return name, (f"{name}: {names[0]} {np.array2string(g, precision=6)}, {names[1]} "
                          f"{np.array2string(r, precision=6)} (first at index {at})")
    return None


class Disagreement(AssertionError):
    """A program on which a backend and torch disagree; ``kind`` is ``value``, ``grad``,
    ``grad2`` or ``error``; or ``compiled``: the program compiled and run eagerly disagree
    on the backend (``compiled`` is then True: the search that shrinks it compiles too)."""

    def __init__(self, program, backend, kind, message, compiled=False):
        snippet = program.snippet(backend, compiled=kind == "compiled")
        super().__init__(f"{message}\n{snippet}")
        self.program, self.backend, self.kind, self.message = program, backend, kind, message
        self.compiled = compiled


def check(program, backend, compiled=False, tally=None):
    """Raise ``Disagreement`` when the backend and torch disagree on ``program`` (with
    ``compiled``: also when the program compiled and run eagerly disagree); return False
    when torch itself rejects the program (nothing to compare), else True. ``tally``: a
    dict whose ``compiled_fallbacks`` counts the programs the compiler ran eagerly."""
    try:
        ref = run_torch(program)
    except ModuleNotFoundError:
        raise
    except Exception:           # noqa: BLE001 - torch rejects it: not a valid program
        return False
    try:
        got = run_polygrad(program, backend)
    except Exception as exc:    # noqa: BLE001 - torch computes, polygrad raises
        raise Disagreement(program, backend, "error",
                           f"polygrad raises {type(exc).__name__}: {exc}"[:600]) from None
    found = compare(got, ref)
    if found is not None:
        if rounding_decided(program, backend) is not None or \
                (found[0].startswith("d") and torch_unsteady(program, ref, found[0])):
            if tally is not None:
                tally["rounding_decided"] = tally.get("rounding_decided", 0) + 1
            return True
        name, message = found
        kind = "grad2" if name.startswith("d2") else "grad" if name.startswith("d") else "value"
        raise Disagreement(program, backend, kind, message, compiled)
    if compiled:
        _check_compiled(program, backend, got, tally)
    return True


def _arguments(program, module, convert):
    """Each step's arguments as they are when the step runs (a later in-place step may
    change them), as numpy arrays: ``[{name: array}, ...]``, one dict per step."""
    ns = {"torch": module}
    seen = []
    with _quiet():
        for i, x in enumerate(program.inputs):
            exec(_input_line(i, x), ns)
        for _op, text, args in program.steps:
            # copies: a backend's host array may share the tensor's memory (torch's numpy()),
            # which a later in-place step would change under the record
            seen.append({a: np.array(convert(ns[a]), copy=True) for a in dict.fromkeys(args)})
            exec(text, ns)
    return seen


def _alone(text, out, args, double):
    """The step ``text`` run alone on torch from fresh leaves holding ``args``: its output
    ``out``'s value and gradients (with ``double``, second derivatives too), as ``compare``
    takes them."""
    torch = require_torch()
    leaves = {a: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for a, v in args.items()}
    ns = {"torch": torch, **{a: t.clone() for a, t in leaves.items()}}
    with _quiet():
        exec(text, ns)
        y = ns[out]
        got = {"value": y.detach().numpy().copy()}
        xs = list(leaves.values())
        if not y.requires_grad:
            return got
        w = torch.arange(1, y.numel() + 1, dtype=torch.float64).reshape(y.shape)
        gs = torch.autograd.grad((y * w).sum(), xs, create_graph=double, allow_unused=True)
        for name, g in zip(leaves, gs):
            got[f"d/d{name}"] = np.zeros(leaves[name].shape) if g is None else \
                g.detach().numpy().copy()
        if double and any(g is not None and g.requires_grad for g in gs):
            g2 = torch.autograd.grad(sum((g * g).sum() for g in gs if g is not None), xs,
                                     allow_unused=True)
            for name, g in zip(leaves, g2):
                got[f"d2/d{name}"] = np.zeros(leaves[name].shape) if g is None else g.numpy()
    return got


def _same(a, b):
    """Whether two arrays hold the same numbers, NaN for NaN and zeros with their signs (a
    sum of products whose terms are a 0 and a -0 is 0 or -0 by the order of its additions:
    numpy's BLAS makes the outer product of ``[0, -0.5]`` with itself hold 0 where torch's
    holds -0, which ``copysign`` then shows)."""
    if not np.array_equal(a, b, equal_nan=True):
        return False
    if a.dtype.kind == "c":
        a, b = (np.concatenate([v.real.ravel(), v.imag.ravel()]) for v in (a, b))
    return a.dtype.kind != "f" or np.array_equal(np.signbit(a), np.signbit(b))


def rounding_decided(program, backend):
    """The index of the first step whose result the last bits of its arguments decide, or
    None. At such a step the backend's arguments and torch's agree to the tolerance but are
    not the same numbers (a sum taken in another order, a variance by another algorithm),
    and torch itself, running the step alone from each, gives results (value, gradients)
    that disagree: a tie the rounding made or broke (``amax`` of two variances one ulp
    apart, ``clamp`` at a bound a sum reaches or misses by an ulp). Such a program's answer
    is not the rule's to give: the fuzzer counts it (``rounding_decided``) and moves on.
    Steps whose arguments already disagree beyond rounding end the search: the
    disagreement lies before them."""
    import polygrad

    from .checks import to_host
    try:
        with polygrad.use_backend(backend):
            mine = _arguments(program, polygrad, to_host)
        theirs = _arguments(program, require_torch(), _torch_host)
    except Exception:           # noqa: BLE001 - a step raises: not a question of rounding
        return None
    for k, (step, a, b) in enumerate(zip(program.steps, mine, theirs)):
        if all(_same(a[n], b[n]) for n in a):
            continue
        if compare(a, b) is not None:
            return None
        try:
            text, out = step[1], f"v{k}"
            if compare(_alone(text, out, a, program.double),
                       _alone(text, out, b, program.double)):
                return k
        except Exception:       # noqa: BLE001 - the step does not run alone: cannot tell
            return None
    return None


# the inputs scaled by 1 +- 4 ulps: zeros, signs and ties between inputs stay as they are
_NUDGES = (1 + 2.0 ** -50, 1 - 2.0 ** -50)


def torch_unsteady(program, ref, name):
    """Whether torch's own gradient ``name`` moves beyond the tolerance when the inputs move
    by a few ulps (``_NUDGES``) while every value of the program stays within it: a
    gradient whose last digits torch's rounding decides, as the cofactor matrix of a nearly
    singular determinant (a condition number of 1e11 leaves 5 digits), so that no backend
    can be held to torch's to 1e-7. ``ref``: torch's run of ``program``. A step where the
    nudge crosses a branch (a tie broken, a clamp bound crossed) changes values too: not
    counted here."""
    for s in _NUDGES:
        nudged = Program([x * s for x in program.inputs], program.steps, program.double)
        try:
            other = run_torch(nudged)
        except Exception:       # noqa: BLE001 - torch rejects the nudged program: cannot tell
            return False
        values = [n for n in ref if not n.startswith("d")]
        if compare({n: other[n] for n in values}, {n: ref[n] for n in values}) is not None:
            return False
        if compare({name: other[name]}, {name: ref[name]}) is not None:
            return True
    return False


def _check_compiled(program, backend, eager, tally):
    """The program compiled against its eager run on the same backend (which agreed with
    torch). A fallback to eager is counted, not a disagreement: its result is compared too."""
    try:
        got = run_compiled(program, backend)
    except Exception as exc:    # noqa: BLE001 - the eager run computes, the compiled raises
        raise Disagreement(program, backend, "compiled",
                           f"the compiled run raises {type(exc).__name__}: {exc}"[:600],
                           True) from None
    if got.pop("fell back") and tally is not None:
        tally["compiled_fallbacks"] = tally.get("compiled_fallbacks", 0) + 1
    found = compare(got, {k: eager[k] for k in got}, names=("compiled", "eager"))
    if found is not None:
        raise Disagreement(program, backend, "compiled", found[1], True)


# -- the search -----------------------------------------------------------------------------

def _renamed(program, drop, first):
    """``program`` with the value named ``drop`` (``v3`` or ``x1``) gone: its readers read
    ``first`` instead, and later names of its kind move down by one."""
    kind, j = drop[0], int(drop[1:])

    def rename(m):
        name = m.group(0)
        if name == drop:
            return first
        if name[0] == kind and int(name[1:]) > j:
            return f"{kind}{int(name[1:]) - 1}"
        return name

    def sub(text):
        return re.sub(r"\b[vx]\d+\b", rename, text)
    steps = [(op, sub(text), tuple(sub(a) for a in args)) for op, text, args in program.steps]
    return steps


def _smaller(program):
    """Candidate programs one edit smaller: a step removed (its readers read its first
    argument), an unused input removed, no double backward, a step replaced by a copy
    of its first argument (so that the ops left are the ones the disagreement needs)."""
    for j in reversed(range(len(program.steps))):
        if len(program.steps) > 1:
            op, text, args = program.steps[j]
            steps = _renamed(program, f"v{j}", args[0])
            yield dataclasses.replace(program, steps=steps[:j] + steps[j + 1:])
    for i in reversed(range(len(program.inputs))):
        if len(program.inputs) > 1 and not any(
                re.search(rf"\bx{i}\b", text) for _, text, _ in program.steps):
            yield dataclasses.replace(program, steps=_renamed(program, f"x{i}", f"x{i}"),
                                      inputs=program.inputs[:i] + program.inputs[i + 1:])
    if program.double:
        yield dataclasses.replace(program, double=False)
    for j, (op, _text, args) in enumerate(program.steps):
        if op != "copy":
            steps = list(program.steps)
            steps[j] = ("copy", OPS["copy"].code.format(out=f"v{j}", a=args[0]), args[:1])
            yield dataclasses.replace(program, steps=steps)


def prune(exc):
    """Remove what a disagreement does not need, one edit at a time, while the program
    still disagrees in the same way (the steps and inputs hypothesis's shrinker cannot
    delete because later steps refer to them by number)."""
    changed = True
    while changed:
        changed = False
        for candidate in _smaller(exc.program):
            try:
                check(candidate, exc.backend, compiled=exc.compiled)
            except Disagreement as smaller:
                if smaller.kind == exc.kind:
                    exc, changed = smaller, True
                    break
    return exc

class _OutOfTime(BaseException):
    """Stops hypothesis without a failure (a BaseException passes through its engine)."""


def fuzz(backend, *, seconds=None, max_programs=None, seed=0, families=None, max_steps=6,
         max_failures=5, shrink_seconds=60.0, known=(), compiled=False):
    """Search ``backend`` for disagreements with torch until ``seconds`` have passed or
    ``max_programs`` programs ran; shrink each to a minimal program. ``compiled``: also
    compare each program compiled (``polygrad.compile``) with its eager run.

    Returns the report's record for the backend: ``{"backend", "seed", "programs",
    "rejected", "duration_s", "programs_sha256", "failures": [{"kind", "message", "ops",
    "snippet"}]}``, with ``compiled`` also ``"compiled_fallbacks"`` (programs the compiler
    ran eagerly, with a warning, and that gave the eager result); ``programs_sha256`` digests the programs run, in order (the same seed
    and count give the same digest). A disagreement whose ops include all the ops of one
    already found, or of one in ``known`` (``{"kind", "ops"}`` dicts), with the same kind,
    counts as that one, so the search moves on to new ones. Shrinking takes up to
    ``shrink_seconds`` per disagreement beyond ``seconds``.

    >>> r = fuzz("numpy", max_programs=5, seed=1)
    >>> r["programs"] == 5
    True
    """
    if seconds is None and max_programs is None:
        raise ValueError("give the search a budget: seconds=..., max_programs=... or both")
    # the first program pays for imports and lazy set-up on both sides: not from the budget
    torch = require_torch()
    x = torch.empty((2, 3), dtype=torch.float64, device="meta", requires_grad=True)
    (x.sum(dim=0, keepdim=True) * x.clone().add_(1).sin()[None]).max(dim=1).values.mean()
    warm = Program([np.ones(3)], [("sin", "v0 = torch.sin(x0)", ("x0",))], double=True)
    with contextlib.suppress(Exception):    # the search itself reports what goes wrong
        run_torch(warm)
        run_polygrad(warm, backend)
        if compiled:
            run_compiled(warm, backend)
    start = time.monotonic()
    deadline = start + seconds if seconds is not None else float("inf")
    stats = {"programs": 0, "rejected": 0, "rounding_decided": 0,
             **({"compiled_fallbacks": 0} if compiled else {})}
    digest = hashlib.sha256()
    found = []
    declared = [(k["kind"], frozenset(k["ops"])) for k in known]

    def seen(exc):
        return any(exc.kind == kind and exc.program.ops >= ops for kind, ops in
                   declared + [(f["kind"], f["opset"]) for f in found])

    strategy = programs(max_steps=max_steps, families=families)

    def out_of_budget():
        return time.monotonic() > deadline or (max_programs is not None
                                               and stats["programs"] >= max_programs)

    for round_ in range(max_failures):
        failing = _search(backend, strategy, seed * 1000 + round_, out_of_budget=out_of_budget,
                          shrink_seconds=shrink_seconds, seen=seen, stats=stats, digest=digest,
                          max_examples=max_programs, compiled=compiled)
        if not failing:
            break
        # the smallest failing program seen (hypothesis's minimal one, or the best so far
        # when the shrink was cut short)
        best = prune(min(failing,
                         key=lambda e: (len(e.program.steps), len(e.program.body()))))
        found.append({"kind": best.kind, "message": best.message,
                      "ops": sorted(best.program.ops), "opset": best.program.ops,
                      "snippet": best.program.snippet(backend, f"{best.kind}: {best.message}",
                                                      compiled=best.kind == "compiled")})
        if out_of_budget():
            break
    return {"backend": backend, "seed": seed, "programs": stats["programs"],
            "rejected": stats["rejected"], "rounding_decided": stats["rounding_decided"],
            "duration_s": round(time.monotonic() - start, 3),
            "programs_sha256": digest.hexdigest(),
            **({"compiled_fallbacks": stats["compiled_fallbacks"]} if compiled else {}),
            "failures": [{k: v for k, v in f.items() if k != "opset"} for f in found]}


def _search(backend, strategy, seed, *, out_of_budget, shrink_seconds, seen, stats, digest,
            max_examples, compiled=False):
    """One hypothesis search from ``seed``: explore until the budget is spent or a new
    disagreement is found, then shrink it; returns the failing examples it saw."""
    from hypothesis import HealthCheck, Phase, given, reject, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import HypothesisException
    failing = []
    shrink_deadline = []        # set once: the search is shrinking

    @hypothesis_seed(seed)
    @settings(database=None, deadline=None, derandomize=False, print_blob=False,
              max_examples=max_examples if max_examples is not None else 10**9,
              phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def search(program):
        exploring = not shrink_deadline
        if exploring and out_of_budget() or not exploring and \
                time.monotonic() > shrink_deadline[0]:
            raise _OutOfTime
        if exploring:
            digest.update(program.body().encode() + b"\0")
        try:
            valid = check(program, backend, compiled, stats if exploring else None)
        except Disagreement as exc:
            stats["programs"] += exploring
            if seen(exc):
                return
            if exploring:
                shrink_deadline.append(time.monotonic() + shrink_seconds)
            failing.append(exc)
            raise
        if not valid:
            stats["rejected"] += 1
            reject()
        stats["programs"] += exploring

    try:
        search()
    except Disagreement as exc:
        failing.append(exc)
    except (_OutOfTime, HypothesisException):   # the budget, or nothing valid left to draw
        pass
    return failing


def skipped(backend, seed, reason):
    """The record of a backend the fuzzer could not run on (unavailable here)."""
    return {"backend": backend, "seed": seed, "programs": 0, "rejected": 0, "duration_s": 0.0,
            "failures": [], "skipped": reason}


def section(runs, *, seconds=None, seed=0, families=None, compiled=False):
    """The report's ``fuzz`` section from ``fuzz()``'s per-backend records; ``compiled``:
    the programs were also compared compiled against eager."""
    torch = require_torch()
    return {"seed": seed, "seconds_per_backend": seconds, "compiled": bool(compiled),
            "oracle": f"torch {torch.__version__} (float64, cpu)",
            "tolerance": {"atol": ATOL, "rtol": RTOL, "rule": "|got - ref| <= atol * "
                          "(1 + max|ref|) + rtol * |ref|"},
            "families": list(families or FAMILIES), "backends": list(runs)}
