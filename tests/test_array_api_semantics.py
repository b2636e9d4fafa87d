"""docs/semantics.md: its examples run as doctests, and every row of its table of known
deviations from torch 2.13 is checked against real torch, on both sides, so a row that stops
being true (polygrad fixed, or torch changed) fails here and the page gets updated."""

import doctest
import importlib.util
import math
import os
import warnings

import pytest

import polygrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "semantics.md")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_the_pages_examples_run():
    with polygrad.use_backend("numpy"):
        result = doctest.testfile(PAGE, module_relative=False, verbose=False,
                                  optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0


def _dtype(t):
    return str(t.dtype).rsplit(".", 1)[-1]


def _values(t):
    return [v if not (isinstance(v, float) and math.isnan(v)) else "nan" for v in t.tolist()]


def _singular_det_grad(L):
    x = L.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=L.float64, requires_grad=True)
    L.linalg.det(x).backward()
    return [_values(row) for row in x.grad]


def _singular_logabsdet_grad(L):
    x = L.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=L.float64, requires_grad=True)
    L.linalg.slogdet(x)[1].backward()
    return [_values(row) for row in x.grad]


# row of the page -> (what to run on polygrad and on torch, L being the library), polygrad's
# result, torch's result; an exception is summarised by its type's name
DEVIATIONS = {
    "operator + with a 0-d tensor": (
        lambda L: _dtype(L.tensor([1], dtype=L.int8) + L.tensor(5)), "int64", "int8"),
    "operator * with a 0-d float64": (
        lambda L: _dtype(L.tensor([1.0]) * L.tensor(2.0, dtype=L.float64)), "float64",
        "float32"),
    "int / int": (lambda L: _dtype(L.tensor([3]) / L.tensor([2])), "float64", "float32"),
    "true_divide int": (lambda L: _dtype(L.true_divide(L.tensor([3]), L.tensor([2]))),
                        "float64", "float32"),
    "div int is torch's": (lambda L: _dtype(L.div(L.tensor([3]), L.tensor([2]))), "float32",
                           "float32"),
    "mean of int": (lambda L: _dtype(L.tensor([1, 2]).mean()), "float64", "RuntimeError"),
    "int // 0": (lambda L: _values(L.tensor([1]) // L.tensor([0])), [0], "RuntimeError"),
    "int % 0": (lambda L: _values(L.tensor([1]) % L.tensor([0])), [0], "RuntimeError"),
    "int ** negative int tensor": (
        lambda L: _values(L.tensor([0, 2]) ** L.tensor([-1, -1])), "ValueError", [0, 0]),
    "int ** negative Python int": (lambda L: _values(L.tensor([0, 2]) ** -1), "ValueError",
                                   "RuntimeError"),
    "sum of uint8": (lambda L: _dtype(L.tensor([1], dtype=L.uint8).sum()), "uint64", "int64"),
    "clamp int by a float": (lambda L: _dtype(L.clamp(L.tensor([1, 5]), min=2.5)), "float64",
                             "float32"),
    "where with Python scalars": (
        lambda L: _dtype(L.where(L.tensor([True, False]), 1.0, 0)), "float64", "float32"),
    "tensor(2**63)": (lambda L: _dtype(L.tensor(2**63)), "uint64", "ValueError"),
    "x % 1 at a multiple": (
        lambda L: _values(L.copysign(L.tensor([1.0]), L.tensor([-1.0, -0.0]) % 1)),
        [1.0, 1.0], [-1.0, -1.0]),
    "det backward at a singular matrix": (
        _singular_det_grad, [[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]),
    "slogdet backward at a singular matrix": (
        _singular_logabsdet_grad, [[math.inf, -math.inf], [-math.inf, math.inf]],
        [[-math.inf, math.inf], [math.inf, -math.inf]]),
}


def _run(fn, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(lib)
        except Exception as exc:  # noqa: BLE001 - the row names the exception's type
            return type(exc).__name__


@pytest.mark.skipif(not HAS_TORCH, reason="torch 2.13 is the other side of each row")
@pytest.mark.parametrize("row", sorted(DEVIATIONS))
def test_each_documented_deviation_is_true(row):
    import torch
    fn, ours, theirs = DEVIATIONS[row]
    with polygrad.use_backend("numpy"):
        assert _run(fn, polygrad) == ours
    assert _run(fn, torch) == theirs


def test_every_row_is_on_the_page():
    text = open(PAGE).read().split("## Known deviations")[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 11
    assert len(DEVIATIONS) >= len(rows)
