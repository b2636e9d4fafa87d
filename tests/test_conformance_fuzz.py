"""Differential fuzzing (``polygrad_conformance.fuzz``): random torch-style programs on each
built-in backend against real torch 2.x (float64), values and first and second gradients.

- fixed seeds, a fixed number of programs: the CI run of the fuzzer, on numpy and torch;
- the disagreements it finds today, each as its shrunk program, strict xfail (a fix shows
  as XPASS: remove the entry, and the fixed-seed runs then look for it again);
- a planted bug (a backend whose sin is cos) is found, shrunk to one step, and its snippet
  runs and reproduces;
- the same seed draws the same programs; the generator reaches every op, 0-d and empty
  shapes, zeros and ties, and double backward;
- the front ends: ``--fuzz`` on the CLI (the JSON's ``fuzz`` section against the schema,
  the exit status, a clear message without torch) and ``--polygrad-fuzz`` under pytest.
"""

import contextlib
import json
import os
import re
import subprocess
import sys

import jsonschema
import numpy as np
import pytest
from conftest import BACKENDS, derived_backend
from hypothesis import HealthCheck, given, settings

import polygrad
from polygrad_conformance.report import load_schema

torch = pytest.importorskip("torch")

from polygrad_conformance import fuzz as fz  # noqa: E402 - needs torch, skipped above

pytest_plugins = ["pytester"]


def program(inputs, *lines, double=False):
    """A Program from its input arrays and statements ``"op: text"`` (first argument first)."""
    steps = []
    for line in lines:
        op, text = line.split(": ", 1)
        args = tuple(dict.fromkeys(re.findall(r"\b[vx]\d+\b", text.split("=", 1)[1])))
        steps.append((op, text.replace("; ", "\n"), args))
    return fz.Program([np.asarray(x, dtype=np.float64) for x in inputs], steps, double=double)


# Disagreements with torch that the fuzzer found, shrunk; the open ones are listed in
# docs/conformance.md. ``ops`` is the signature the fixed-seed runs look past (a found
# program of that kind whose ops include these); ``backends`` where it still disagrees
# (None: all; empty: fixed, kept as a regression test that must agree everywhere).
KNOWN = [
    dict(id="inplace-write-through-a-view", kind="value", ops=["view_mul_"],
         repro=program([1.0], "copy: v0 = x0 * 1", "view_mul_: v1 = v0[None].mul_(2)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="on numpy, an in-place op on a view of a 0-d tensor does not reach the tensor "
                "(v0 stays 1, torch makes it 2; numpy's 0-d results are scalars, which no "
                "view shares; views of n-d tensors do write through)"),
    dict(id="inplace-write-through-a-view-grad", kind="grad", ops=["view_mul_"],
         repro=program([0.0], "copy: v0 = x0 * 1", "view_mul_: v1 = v0[None].mul_(2)",
                       "copy: v2 = v0 * 1"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the same, seen in the gradient: d(v0 after the write)/dx0 is 2 in torch"),
    dict(id="inplace-on-a-view-of-0d", kind="value", ops=["mul_alias"],
         repro=program([2.0], "copy: v0 = x0 * 1", "t: v1 = v0.t()",
                       "mul_alias: v2 = v1.mul_(x0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the same with .t() of a 0-d tensor and an in-place op on either side"),
    dict(id="inplace-on-an-empty-expanded-view", kind="error", ops=["expand", "view_mul_"],
         repro=program([np.zeros((0, 3))], "sum: v0 = x0.sum(dim=1, keepdim=True)",
                       "expand: v1 = v0.expand(0, 2)", "view_mul_: v2 = v1[None].mul_(2)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="an in-place op on an expanded view with no elements raises 'more than one "
                "element ... refers to a single memory location'; torch allows it (nothing "
                "overlaps in an empty tensor)"),
    dict(id="setitem-into-one-element-of-an-expanded-view", kind="error",
         ops=["expand", "setitem_alias"],
         repro=program([1.0], "copy: v0 = x0 * 1", "expand: v1 = v0.expand(2,)",
                       "setitem_alias: v1[1:] = v1.sum(); v2 = v1"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="a setitem into a slice of an expanded view that holds one element raises the "
                "overlap error; torch allows it (the written elements do not overlap)"),
    dict(id="setitem-through-a-view", kind="value", ops=["setitem_alias"],
         repro=program([[[1.0, 1.0, 1.0]]], "copy: v0 = x0 * 1",
                       "permute: v1 = v0.permute(0, 1)",
                       "setitem_alias: v1[None] = v1.sum(); v2 = v1"),
         backends=set(),
         reason="fixed by the buffer model: a setitem on a view reaches its base"),
    dict(id="inplace-on-a-base-with-views", kind="value", ops=["mul_alias"],
         repro=program([[1.0, -0.75, -0.75]], "copy: v0 = x0 * 1",
                       "unsqueeze: v1 = v0.unsqueeze(-2)", "mul_alias: v2 = v0.mul_(x0)"),
         backends=set(),
         reason="fixed by the buffer model: views made before an in-place op see it"),
    dict(id="squeeze-dim0-of-0d", kind="error", ops=["squeeze"],
         repro=program([1.0], "squeeze: v0 = x0.squeeze(0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="x.squeeze(0) of a 0-d tensor raises IndexError; torch returns the 0-d tensor"),
    dict(id="double-backward-of-mean-over-nothing", kind="error", ops=["mean"],
         repro=program([np.zeros((0, 3))], "mean: v0 = x0.mean()", "abs: v1 = v0.abs()",
                       double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="with create_graph=True, the backward of a mean over zero elements raises "
                "ZeroDivisionError; torch gives an empty gradient"),
    dict(id="maximum-with-nan", kind="grad", ops=["maximum"],
         repro=program([np.zeros((0, 3)), 1.0], "mean: v0 = x0.mean()",
                       "maximum: v1 = torch.maximum(v0, x1)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="maximum(nan, 1.0): torch sends the gradient to both arguments (nan is neither "
                "> nor < 1), polygrad to neither"),
    dict(id="minimum-with-nan", kind="grad", ops=["minimum"],
         repro=program([1.0, -0.5], "std: v0 = x1.std(dim=0, correction=1, keepdim=False)",
                       "minimum: v1 = torch.minimum(v0, x0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the same for minimum(nan, 1.0)"),
    dict(id="var-double-backward-at-n-equal-correction", kind="grad2", ops=["var"],
         repro=program([1.0], "var: v0 = x0.var(dim=0, correction=1, keepdim=False)",
                       double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="var with n == correction (value nan): the second derivative is nan, torch's 0"),
    dict(id="norm-double-backward-at-zero", kind="grad2", ops=["norm"],
         repro=program([[[0.0], [0.0]]], "norm: v0 = x0.norm(p=2)", double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the 2-norm's second derivative at 0: polygrad 0, torch nan (undefined there)"),
    dict(id="nan-through-amax-mask", kind="grad", ops=["amax", "var"],
         repro=program([[[1.0], [0.0]]], "amax: v0 = x0.amax(dim=0, keepdim=False)",
                       "var: v1 = v0.var(dim=0, correction=1, keepdim=False)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="a nan gradient into amax reaches the elements it did not select as nan in "
                "torch (the gradient times a 0/1 mask), as 0 in polygrad (selected)"),
    dict(id="nan-through-amax-mask-double", kind="grad2", ops=["amax", "pow_frac"],
         repro=program([[[[1.0, 1.0, 0.0]], [[1.0, 1.0, -0.5]]]],
                       "amax: v0 = x0.amax(dim=0, keepdim=False)",
                       "pow_frac: v1 = v0.abs() ** 1.5", double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the same in double backward: |0| ** 1.5's nan second derivative through "
                "amax's mask"),
    dict(id="prod-double-backward-at-zeros", kind="grad2", ops=["prod_all"],
         repro=program([[[0.0], [0.0]]], "prod_all: v0 = x0.prod()", "add: v1 = x0 + v0",
                       double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="prod's second derivative at zeros is 0 (d2(x0 x1)/dx0 dx1 is 1): the rule "
                "for zero elements is not differentiable again; torch gives [12, 6]"),
    dict(id="prod-dim-double-backward-at-zeros", kind="grad2", ops=["prod"],
         repro=program([[[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]],
                       "prod: v0 = x0.prod(dim=0, keepdim=False)", "add: v1 = v0 + x0",
                       double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="the same for prod(dim): 0 where torch gives [40, 10] in the zero column"),
    dict(id="clamp-with-a-nan-bound", kind="value", ops=["clamp_t"],
         repro=program([1.0], "std: v0 = x0.std(dim=0, correction=1, keepdim=False)",
                       "clamp_t: v1 = x0.clamp(min=v0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="x.clamp(min=nan tensor) is x in polygrad, nan in torch (a NaN bound "
                "propagates)"),
    dict(id="std-double-backward-at-zero-spread", kind="grad2", ops=["std"],
         repro=program([1.0], "std: v0 = x0.std(dim=0, correction=0, keepdim=False)",
                       "add: v1 = v0 + x0", "mul: v2 = v1 * v1", double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="std's second derivative where the std is 0 (one element): polygrad 8, torch "
                "nan (undefined there)"),
    dict(id="write-through-reshape-of-inv", kind="value", ops=["inv", "view_mul_"],
         repro=program([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]],
                       "inv: v0 = torch.linalg.inv(x0 @ x0.mT + torch.eye(x0.shape[-2], "
                       "dtype=torch.float64, device=x0.device))",
                       "reshape: v1 = v0.reshape(-1)", "view_mul_: v2 = v1[None].mul_(2)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="torch's linalg.inv returns a column-major matrix, so reshape(-1) copies and "
                "the in-place write does not reach the inverse; numpy's inverse was row-major "
                "(the numpy backend now lays inv, solve and cholesky out as torch's)"),
    dict(id="det-second-derivative-ill-conditioned", kind="grad2", ops=["det", "pow"],
         repro=program([[[1.5], [1.5]]], "fill_: v0 = x0.clone().fill_(2.0) * x0",
                       "pow: v1 = (1 + v0 * v0) ** v0",
                       "det: v2 = torch.linalg.det(v1 @ v1.mT + torch.eye(v1.shape[-2], "
                       "dtype=torch.float64, device=v1.device))", double=True),
         backends=set(),   # fixed since found: must agree everywhere
         reason="det's gradient as det times X^-T, differentiated again, cancels where X is "
                "ill-conditioned (cond 2e6 here: 1e-6 off torch); torch's solve(X^T, g det I) "
                "does not, and is now polygrad's"),
    dict(id="write-through-diagonal-of-cholesky", kind="value", ops=["cholesky", "mul_alias"],
         repro=program([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]],
                       "cholesky: v0 = torch.linalg.cholesky(x0 @ x0.mT + torch.eye(x0.shape[-2], "
                       "dtype=torch.float64, device=x0.device))",
                       "diagonal: v1 = v0.diagonal()", "mul_alias: v2 = v1.mul_(v1)",
                       "copy: v3 = x0 * 1"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="diagonal() of a column-major matrix (cholesky's, a transpose) was a copy: "
                "it is a view through the transpose, as torch's"),
    dict(id="sign-of-nan-std-over-nothing", kind="value", ops=["std", "copysign"],
         repro=program([np.zeros((0, 3)), 1.0],
                       "std: v0 = x0.std(dim=0, correction=1, keepdim=False)",
                       "copysign: v1 = torch.copysign(x1, v0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="numpy's var/std over nothing is a NaN with its sign bit set (0 / 0), "
                "torch's has it clear"),
    dict(id="sign-of-nan-loss-mean-over-nothing", kind="value", ops=["smooth_l1", "copysign"],
         repro=program([np.zeros((3, 0)), 1.0],
                       "smooth_l1: v0 = torch.nn.functional.smooth_l1_loss(x0, x0)",
                       "copysign: v1 = torch.copysign(x1, v0)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="a loss's mean over nothing is torch's 0 / 0, a NaN with its sign bit set"),
    dict(id="write-through-reshape-of-repeat", kind="value", ops=["repeat", "add_alias"],
         repro=program([[[1.0], [1.0]]], "repeat: v0 = x0.repeat(2, *([1] * x0.ndim))",
                       "reshape: v1 = v0.reshape(-1)", "add_alias: v2 = v1.add_(v1)"),
         backends=set(),   # fixed since found: must agree everywhere
         reason="numpy's copy of an expanded array (repeat is one) was laid out in the order "
                "its strides sort, so reshape copied and the write missed v0; torch's clone "
                "of an expanded tensor is contiguous, as the numpy backend's now is"),
    dict(id="std-of-equal-values-rounded", kind="grad", ops=["std"], backends=set(),
         repro=program([[[[1.0, 1.0, 1.0]], [[1.0, 1.0, 0.75]]]], "sin: v0 = torch.sin(x0)",
                       "transpose: v1 = v0.transpose(0, 2)",
                       "std: v2 = v1.std(dim=0, correction=0, keepdim=False)"),
         # fixed since found: must agree everywhere
         reason="std over equal values (sin(1) three times, read through a transposed view): "
                "numpy's mean rounds, the std is 1e-17 instead of 0, and the gradient is "
                "0.18 where torch (exact 0) gives 0"),
]


def known_signatures(backend):
    """What the fixed-seed runs on ``backend`` look past: the open disagreements there."""
    return [{"kind": k["kind"], "ops": k["ops"]} for k in KNOWN
            if k.get("backends") is None or backend in k["backends"]]


def _known_params():
    for backend in BACKENDS:
        for k in KNOWN:
            applies = k.get("backends") is None or backend in k["backends"]
            marks = [pytest.mark.xfail(strict=True, reason=k["reason"])] if applies else []
            yield pytest.param(backend, k, id=f"{backend}-{k['id']}", marks=marks)


@pytest.mark.parametrize("backend, known", list(_known_params()))
def test_known_disagreement(backend, known):
    """Strict xfail where the disagreement is known; elsewhere the program must agree."""
    try:
        fz.check(known["repro"], backend)
    except fz.Disagreement as exc:
        assert exc.kind == known["kind"] and set(known["ops"]) <= exc.program.ops, exc
        raise


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
def test_fixed_seed_finds_no_new_disagreement(backend, seed):
    result = fz.fuzz(backend, max_programs=60, seed=seed, known=known_signatures(backend))
    assert result["programs"] == 60
    assert not result["failures"], "\n\n".join(f["snippet"] for f in result["failures"])


def test_the_same_seed_draws_the_same_programs():
    a, b, c = (fz.fuzz("numpy", max_programs=25, seed=s, known=known_signatures("numpy"))
               for s in (7, 7, 8))
    assert a["programs_sha256"] == b["programs_sha256"] != c["programs_sha256"]


def test_the_generator_reaches_every_op_shape_and_edge():
    seen = {"ops": set(), "shapes": set(), "double": set(), "zeros": 0, "ties": 0}

    @settings(max_examples=2500, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(program=fz.programs())
    def collect(program):
        seen["ops"] |= {step[0] for step in program.steps}
        seen["double"].add(program.double)
        for x in program.inputs:
            seen["shapes"].add(x.shape)
            seen["zeros"] += bool((x == 0).any())
            seen["ties"] += x.size > len(np.unique(x))

    collect()
    assert set(fz.OPS) - seen["ops"] == set()
    assert {(), (0, 3), (2, 3)} <= seen["shapes"] and seen["double"] == {True, False}
    assert seen["zeros"] > 50 and seen["ties"] > 50


def test_a_planted_bug_is_found_shrunk_and_its_snippet_reproduces():
    with derived_backend("fuzzbad", overrides={"sin": lambda xp, x: xp.cos(x)}):
        result = fz.fuzz("fuzzbad", max_programs=200, seed=0, families=["elementwise"])
        assert result["failures"], result
        first = result["failures"][0]
        assert first["kind"] == "value" and first["ops"] == ["sin"], first
        snippet = first["snippet"]
        body = [ln for ln in snippet.splitlines() if ln.startswith("v")]
        assert body == [next(ln for ln in body if "torch.sin(" in ln)], snippet   # one step
        # the snippet runs as printed on polygrad, and with its two polygrad lines replaced
        # by `import torch` on real torch: the values differ as the message says
        ours, theirs = {}, {}
        default = polygrad.get_default_backend()
        with contextlib.redirect_stdout(None):
            try:
                exec(snippet, ours)
            finally:
                polygrad.set_default_backend(default)
            exec("import torch\n" + "\n".join(
                ln for ln in snippet.splitlines()
                if "polygrad" not in ln and "set_default_backend" not in ln), theirs)
    assert ours["torch"] is polygrad and theirs["torch"] is torch
    assert not np.allclose(ours["v0"].detach().numpy(), theirs["v0"].detach().numpy())


# programs whose answer the last bits of an intermediate value decide: numpy's variance
# and sum round otherwise than torch's, and the tie that follows is made or broken
ROUNDING = [
    ("amax-of-variances-an-ulp-apart", 1, program(
        [[[1.0, 1.5, 1.0], [1.5, 1.5, 1.0]]],
        "var: v0 = x0.var(dim=1, correction=1, keepdim=False)",
        "amax: v1 = v0.amax(dim=0, keepdim=False)")),
    ("clamp-at-a-sum-an-ulp-off", 3, program(
        [[[0.25, 0.25, 0.75], [-0.25, 0.25, -0.75]]],
        "div_: v0 = x0.clone().div_(1 + x0 * x0)",
        "no_grad: with torch.no_grad():;     v1 = v0 * 2",
        "sum_all: v2 = v0.sum()",
        "clamp_t: v3 = v2.clamp(min=v1)")),
    # numpy's BLAS sums the outer product's 0 * -0.5 as 0 + -0 = 0, torch keeps -0; the
    # arguments of copysign are equal as numbers, not as bits (found by the 30-minute run,
    # seed 1001)
    ("sign-of-a-zero-a-product-sum-gives", 1, program(
        [[[1.0, 0.0, -0.5]]],
        "outer_mm: v0 = x0.mT @ x0",
        "copysign: v1 = torch.copysign(x0, v0)")),
]


@pytest.mark.parametrize("name, step, prog", ROUNDING, ids=[r[0] for r in ROUNDING])
def test_a_tie_decided_by_rounding_is_counted_not_reported(name, step, prog):
    # the programs disagree with torch on numpy (the gradient goes to the other side of
    # the tie) ...
    assert fz.compare(fz.run_polygrad(prog, "numpy"), fz.run_torch(prog)) is not None
    # ... at a step torch itself decides otherwise from numpy's arguments
    assert fz.rounding_decided(prog, "numpy") == step
    tally = {}
    assert fz.check(prog, "numpy", tally=tally) is True
    assert tally == {"rounding_decided": 1}


# torch's own gradient keeps 5 digits here: the cofactor of det(v v^T + I), v near 3e5
UNSTEADY = program(
    [[[1.5], [1.0]]],
    "det: v0 = torch.linalg.det(x0 @ x0.mT + torch.eye(x0.shape[-2], dtype=torch.float64))",
    "pow: v1 = (1 + v0 * v0) ** v0",
    "mul: v2 = v1 * x0",
    "det: v3 = torch.linalg.det(v2 @ v2.mT + torch.eye(v2.shape[-2], dtype=torch.float64))")


def test_a_gradient_torch_cannot_pin_down_is_counted_not_reported():
    ref = fz.run_torch(UNSTEADY)
    assert fz.torch_unsteady(UNSTEADY, ref, "dout/dx0")      # torch's own, on any machine
    differing = [b for b in ("numpy", "torch")
                 if fz.compare(fz.run_polygrad(UNSTEADY, b), ref) is not None]
    if not differing:           # a BLAS whose rounding lands on torch's: nothing to excuse
        pytest.skip("polygrad's rounding matches torch's on this machine")
    for backend in differing:
        tally = {}
        assert fz.check(UNSTEADY, backend, tally=tally) is True
        assert tally == {"rounding_decided": 1}


def test_a_wrong_gradient_is_not_excused_as_unsteady():
    # a well-conditioned program: torch's gradient does not move with a 4-ulp nudge, so a
    # backend whose sin differentiates to -cos is reported
    prog = program([[0.5, 1.0]], "sin: v0 = torch.sin(x0)")
    ref = fz.run_torch(prog)
    assert not fz.torch_unsteady(prog, ref, "dout/dx0")
    # and a nudge that moves the values (a floor crossing an integer) excuses nothing
    step = program([[1.0 - 2.0 ** -53, 2.0]], "floor: v0 = torch.floor(x0) * x0")
    assert not fz.torch_unsteady(step, fz.run_torch(step), "dout/dx0")


def test_arguments_are_recorded_before_a_later_in_place_step():
    # the torch backend's host arrays share memory with its tensors: the record of v0 at
    # the sum must not be the NaN the later mul_ writes into it (then the rounding of the
    # sum, 0 here and 2e-16 on torch, which v1 / v1 turns into nan against 1, was missed)
    prog = program([[1.0, -0.75, -0.75]],
                   "layer_norm: v0 = torch.nn.functional.layer_norm(x0, x0.shape[-1:])",
                   "sum: v1 = v0.sum(dim=0, keepdim=False)", "div_raw: v2 = v1 / v1",
                   "mul_alias: v3 = v0.mul_(v2)")
    from polygrad_conformance.checks import to_host
    with polygrad.use_backend("torch"):
        seen = fz._arguments(prog, polygrad, to_host)
    assert np.isfinite(seen[1]["v0"]).all()
    if fz.compare(fz.run_polygrad(prog, "torch"), fz.run_torch(prog)) is not None:
        assert fz.rounding_decided(prog, "torch") == 2


def test_a_bug_after_a_rounding_difference_is_still_reported():
    # sums one ulp above torch's (rounding, not a bug) and a sin that is cos (a bug): the
    # sin step's arguments differ in the last bit, but torch's sin of either is the same,
    # so the disagreement is the backend's
    def sum_up(xp, x, **kw):
        return np.nextafter(xp.sum(x, **kw), np.inf)
    prog = program([[1.0, 2.0]], "sum_all: v0 = x0.sum()", "sin: v1 = torch.sin(v0)")
    with derived_backend("fuzzulp", overrides={"sum": sum_up}):
        assert fz.check(prog, "fuzzulp") is True            # an ulp is within the tolerance
        with derived_backend("fuzzulpcos", overrides={"sum": sum_up,
                                                      "sin": lambda xp, x: xp.cos(x)}):
            assert fz.rounding_decided(prog, "fuzzulpcos") is None
            with pytest.raises(fz.Disagreement) as exc:
                fz.check(prog, "fuzzulpcos")
    assert exc.value.kind == "value"


def test_require_torch_says_what_to_install():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['torch'] = None\n"
         "from polygrad.__main__ import main\n"
         "sys.exit(main(['conformance', '--fuzz', '5', '--backend', 'numpy']))"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "POLYGRAD_LOAD_PLUGINS": "numpy"})
    assert proc.returncode == 5, proc.stderr          # never a pass that tested nothing
    assert proc.stdout == ""
    assert "nothing tested" in proc.stderr and "pip install torch" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--fuzz=0"], "--fuzz takes a positive number of seconds"),
    (["--fuzz=-3"], "--fuzz takes a positive number of seconds"),
    (["--fuzz=5", "--dtype=float32"], "--dtype would be ignored"),
    (["--fuzz=5", "--case=op:sin", "--device=cpu"], "--case, --device would be ignored"),
    (["--fuzz=5", "--readme=README.md"], "--readme would be ignored"),
])
def test_cli_rejects_what_the_fuzzer_cannot_honour(args, message, capsys):
    from polygrad_conformance.cli import main
    assert main(["--backend", "numpy", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_fuzz_writes_the_json_section_and_exits_by_what_it_found(tmp_path):
    md, page = tmp_path / "fuzz.md", tmp_path / "fuzz.html"
    proc = subprocess.run(
        [sys.executable, "-m", "polygrad", "conformance", "--backend", "numpy", "--fuzz", "3",
         "--seed", "2", "--json", "-", "--markdown", str(md), "--html", str(page)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "POLYGRAD_LOAD_PLUGINS": "numpy,torch"})
    data = json.loads(proc.stdout)                 # stdout holds the JSON report, nothing else
    jsonschema.validate(data, load_schema())
    run = data["fuzz"]["backends"][0]
    assert run["backend"] == "numpy" and run["seed"] == 2 and run["programs"] > 0
    assert data["results"] == [] and data["ok"] == (not run["failures"])
    assert proc.returncode == (1 if run["failures"] else 0), proc.stderr
    assert "fuzz numpy:" in proc.stderr and f"{run['programs']} programs" in proc.stderr
    assert "## Differential fuzzing" in md.read_text()
    assert "<h2>Differential fuzzing</h2>" in page.read_text()


def test_cli_fuzz_reports_a_planted_bug(tmp_path, capsys):
    from polygrad_conformance.cli import main
    # multiply is in every program (the weighted sum of the last value): found at once,
    # however slow the machine
    wrong = {"multiply": lambda xp, a, b: xp.multiply(a, b) * 1.001}
    with derived_backend("fuzzcli", overrides=wrong):
        status = main(["--backend", "fuzzcli", "--fuzz", "20", "--json", str(tmp_path / "r.json"),
                       "--markdown", str(tmp_path / "r.md")])
    assert status == 1
    data = json.loads((tmp_path / "r.json").read_text())
    jsonschema.validate(data, load_schema())
    failures = data["fuzz"]["backends"][0]["failures"]
    assert data["ok"] is False and failures and failures[0]["kind"] == "value", failures
    snippet = failures[0]["snippet"]
    assert snippet in (tmp_path / "r.md").read_text()
    assert "torch.set_default_backend('fuzzcli')" in snippet
    assert "fuzz fuzzcli:" in capsys.readouterr().err


def test_pytest_plugin_fuzz_fails_with_the_snippet(pytester, tmp_path):
    report = tmp_path / "r.json"
    wrong = {"multiply": lambda xp, a, b: xp.multiply(a, b) * 1.001}
    with derived_backend("fuzzpt", overrides=wrong):
        result = pytester.runpytest("--pyargs", "polygrad_conformance", "-p", "no:cacheprovider",
                                    "--polygrad-backend=fuzzpt", "--polygrad-fuzz=20",
                                    f"--polygrad-json={report}", "-v")
    result.assert_outcomes(failed=1, deselected=1)
    out = result.stdout.str()
    assert "test_fuzz[fuzzpt] FAILED" in out and "disagreement(s) with torch on fuzzpt" in out
    assert "import polygrad as torch" in out and "torch.set_default_backend('fuzzpt')" in out
    data = json.loads(report.read_text())
    jsonschema.validate(data, load_schema())
    assert data["fuzz"]["backends"][0]["failures"] and not data["ok"]
