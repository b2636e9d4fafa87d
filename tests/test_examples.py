"""The ported tutorials in examples/ run in fresh interpreters on numpy and torch and print the
tutorials' deterministic values: 2cos(a), 4.5, the QS-5 matrices, the YT-14 Jacobians."""

import ast
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TENSOR = re.compile(r"tensor\((.*?)(?:,\s+grad_fn=<\w+>|,\s+requires_grad=True|,\s+dtype=[\w.]+)*\)",
                    re.S)    # a suffix past the line width goes on a line of its own, as torch's
NEEDS = {   # example -> polygrad modules beyond the core that it uses
    "autograd_quickstart.py": ["polygrad.nn"],
    "autograd_blitz.py": [],
    "autograd_fundamentals.py": ["polygrad.nn", "polygrad.optim", "polygrad.autograd.functional"],
}
_runs = {}


def run(example, backend, tmp_path_factory):
    """The example's stdout (one run per example and backend, shared by the tests)."""
    missing = [m for m in NEEDS[example] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{example} needs {', '.join(missing)}, which is not built yet")
    key = (example, backend)
    if key not in _runs:
        out = tmp_path_factory.mktemp(f"{example[:-3]}-{backend}")
        env = dict(os.environ, POLYGRAD_LOAD_PLUGINS="numpy,torch", MPLBACKEND="Agg")
        env.pop("POLYGRAD_BACKEND", None)
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / example), "--backend", backend, "--seed", "0",
             *(["--outdir", str(out)] if example == "autograd_fundamentals.py" else [])],
            capture_output=True, text=True, cwd=out, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _runs[key] = (proc.stdout, out)
    return _runs[key]


def tensors(text):
    """Every printed tensor in ``text``, as float arrays."""
    return [np.array(ast.literal_eval(m.group(1).replace("\n", " ")), dtype=float)
            for m in TENSOR.finditer(text)]


def after(text, marker):
    return text[text.index(marker) + len(marker):]


QS5_TALL = np.full((4, 5), 2.0) + 2 * np.eye(4, 5)
QS5_SQUARE = np.full((5, 5), 2.0) + 2 * np.eye(5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quickstart(backend, tmp_path_factory):
    out, _ = run("autograd_quickstart.py", backend, tmp_path_factory)
    assert f"polygrad backend: {backend}" in out
    assert re.search(r"Gradient function for z = <AddBackward0 object at 0x[0-9a-f]+>", out)
    assert re.search(r"Gradient function for loss = <BinaryCrossEntropyWithLogitsBackward0 "
                     r"object at 0x[0-9a-f]+>", out)
    w_grad, b_grad = tensors(out)[:2]
    assert w_grad.shape == (5, 3) and np.allclose(w_grad, b_grad[None, :])   # x is all ones
    assert "\nTrue\nFalse\nFalse\n" in out
    tall, square = out.split("First call")[1:3]
    for block, base in ((tall, QS5_TALL), (square, QS5_SQUARE)):
        first, second, third = tensors(block)[:3]
        assert np.array_equal(first, base)
        assert np.array_equal(second, 2 * base)
        assert np.array_equal(third, base)
    assert "tensor([[4., 2., 2., 2., 2.],\n        [2., 4., 2., 2., 2.]," in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_blitz(backend, tmp_path_factory):
    out, _ = run("autograd_blitz.py", backend, tmp_path_factory)
    assert "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)" in out
    assert re.search(r"<AddBackward0 object at 0x[0-9a-f]+>", out)
    assert "grad_fn=<MulBackward0>) tensor(27., grad_fn=<MeanBackward0>)" in out
    assert "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])" in out
    grad = tensors(out)[-1]
    check_doubling(grad)


def check_doubling(grad):
    """``x.grad`` of BZ-2 / YT-13: (0.1, 1.0, 0.0001) * 2**k for the loop's k."""
    k = math.log2(grad[1])
    assert k == round(k) and k >= 9
    assert np.allclose(grad, np.array([0.1, 1.0, 0.0001]) * grad[1], rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fundamentals(backend, tmp_path_factory):
    out, outdir = run("autograd_fundamentals.py", backend, tmp_path_factory)
    a = np.linspace(0, 2 * np.pi, 25, dtype=np.float32).astype(float)
    # YT-1: b prints SinBackward0, out SumBackward0, and a.grad is 2cos(a)
    assert "grad_fn=<SinBackward0>)" in out and "tensor(25., grad_fn=<SumBackward0>)" in out
    grad = tensors(after(out, "\na:\nNone\n"))[0]
    assert np.allclose(grad, 2 * np.cos(a), atol=1e-4)     # printed to 5 digits
    # YT-2: the graph walk
    walk = after(out, "d:\n").splitlines()[:5]
    pattern = [r"<AddBackward0 object at 0x\w+>",
               r"\(\(<MulBackward0 object at 0x\w+>, 0\), \(None, 0\)\)",
               r"\(\(<SinBackward0 object at 0x\w+>, 0\), \(None, 0\)\)",
               r"\(\(<AccumulateGrad object at 0x\w+>, 0\),\)", r"\(\)"]
    assert all(re.fullmatch(p, line) for p, line in zip(pattern, walk)), walk
    # YT-6: zero_grad(set_to_none=False) leaves zeros
    assert "tensor([0., 0., 0., 0., 0., 0., 0., 0., 0., 0.])" in out
    # YT-11: the in-place op on a leaf fails as torch's does
    assert "RuntimeError: a leaf Variable that requires grad is being used in an in-place" in out
    # YT-12: one row per op kind, 1000 calls each
    table = after(out, "Name ")
    for op in ("divide", "multiply"):
        row = next(line for line in table.splitlines() if line.startswith(op + " "))
        assert row.split()[-2] == "1000", row          # "# of Calls", then "Kernel %"
    # YT-13: the vector backward
    check_doubling(tensors(after(out, "Backend kernel time total"))[1])
    # YT-14: jacobians of exp_adder: ([[2 e^x]], [[3]]), then diagonal 3x3 matrices
    x1, y1, jx1, jy1, x3, y3, jx3, jy3 = tensors(after(out, "Backend kernel time total"))[2:10]
    assert np.allclose(jx1, 2 * np.exp(x1)[None, :], rtol=1e-3) and np.array_equal(jy1, [[3.]])
    assert np.allclose(jx3, np.diag(2 * np.exp(x3)), rtol=1e-3)
    assert np.array_equal(jy3, 3 * np.eye(3))
    # the vjp of do_some_doubling returns (output, vjp)
    check_doubling(tensors(out)[-1])
    # pictures: the two plots and the loss graph
    for name in ("sin.png", "sin_grad.png"):
        assert (outdir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (outdir / "loss.svg").read_bytes()[:1000]
