"""The conformance kit's ``compiled`` checks: every tutorial and buffer scenario run through
``polygrad.compile`` (``ctx.compile``) against its eager run, the ``--compiled`` /
``--polygrad-compiled`` options, and the differential fuzzer comparing each program compiled
against eager. A backend with a deliberately broken ``Backend.lower`` hook (its backward
programs scale every gradient by 1.001, its eager ops untouched) shows that the checks and
the fuzzer fail, with what reproduces it. Also the two compiler bugs the compiled runs found.
"""

import importlib.util
import json
import re
import subprocess
import sys
import warnings

import jsonschema
import numpy as np
import pytest
from conftest import derived_backend

import polygrad as pg
from polygrad.compiler import CompileWarning
from polygrad_conformance import fuzz, run
from polygrad_conformance.report import load_schema
from polygrad_conformance.runner import Session, execute
from polygrad_conformance.scenarios import NOT_COMPILED, SCENARIO_IDS

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (the fuzzer's "
                                 "oracle)")


def _off_backward(program):
    """A broken ``lower``: backward programs return every float array scaled by 1.001."""
    if program.name != "backward":
        return None
    run_program = program.function

    def lowered(*arrays):
        return tuple(a * 1.001 if getattr(getattr(a, "dtype", None), "kind", "") == "f" else a
                     for a in run_program(*arrays))
    return lowered


# -- scenarios -------------------------------------------------------------------------------

def _compiled_records(backend, dtypes, cases=None):
    session = Session([backend], dtypes=dtypes, cases=cases, compiled=True)
    return [execute(c) for c in session.checks()
            if c.kind == "scenario" and c.check == "compiled"]


def test_every_scenario_compiled_matches_eager(any_backend):
    """Every scenario x dtype (float64 only on the slower plugin backends) passes compiled,
    except the declared skips, which say why."""
    dtypes = ["float64", "float32"] if any_backend in ("numpy", "torch") else ["float64"]
    ids = {sid for sid, _, _ in SCENARIO_IDS}
    if any_backend == "dask":
        # its 1000-step loop is a 2000-op lazy graph on dask, ~30 s a run, eager or compiled
        # (the conformance run itself covers it: polygrad conformance --compiled)
        ids.discard("YT-12")
    records = _compiled_records(any_backend, dtypes, cases=sorted(ids))
    bad = [f"{r['id']}: {r['outcome']}: {r['reason']}" for r in records
           if r["outcome"] not in ("pass", "skip")]
    assert not bad, "\n".join(bad)
    assert {r["case"] for r in records} == ids
    skipped = {r["case"] for r in records if r["outcome"] == "skip"}
    assert skipped == set(NOT_COMPILED) == {"YT-2"}
    assert all(r["reason"].startswith("not compiled: ") for r in records
               if r["outcome"] == "skip")
    # every passing record replayed something: its note counts the replays
    for r in records:
        if r["outcome"] == "pass":
            replayed = int(re.search(r"(\d+) of \d+ calls replayed", r["note"]).group(1))
            assert replayed > 0 or "(declared)" in r["note"], r


def test_a_broken_lowering_fails_the_compiled_check_alone():
    with derived_backend("offlower", lower=_off_backward):
        out = {r["id"]: r for r in map(execute, Session(
            ["offlower"], dtypes=["float64"], cases=["QS-1", "QS-7"], compiled=True).checks())}
    bad = out["QS-1/compiled-offlower-cpu-float64"]
    assert bad["outcome"] == "fail"
    assert "w.grad" in bad["reason"] and "b.grad" in bad["reason"]
    assert 1e-4 < bad["max_rel_err"] < 2e-3          # the planted 1.001
    # the eager checks of the same scenario never use the lowering
    assert out["QS-1/grad-offlower-cpu-float64"]["outcome"] == "pass"
    assert out["QS-1/tutorial-offlower-cpu-float64"]["outcome"] == "pass"
    # QS-7 falls back to eager (declared): the lowering is never used, and it passes
    assert out["QS-7/compiled-offlower-cpu-float64"]["outcome"] == "pass"
    assert "eager fallback (declared)" in out["QS-7/compiled-offlower-cpu-float64"]["note"]


def test_an_unexpected_fallback_and_a_stale_declaration_fail(monkeypatch):
    """A compiled function that runs eagerly where the scenario expects a replay fails the
    check (a compiled check that only traces tests nothing); so does a declared fallback
    that replays."""
    from polygrad_conformance import scenarios

    def replays(T, c):
        x = c.make(c.normal(3), requires_grad=True)
        y = c.compile(lambda x: (x * x).sum(), falls_back="it was said to")(x)
        y.backward()
        return {"x.grad": x.grad}

    def falls_back(T, c):
        x = c.make(c.normal(3), requires_grad=True)
        y = c.compile(lambda x: x.sin().sum() if float(x.sum()) > -100 else x)(x)
        y.backward()
        return {"x.grad": x.grad}

    for fn, message in ((replays, "stale declaration"), (falls_back, "ran eagerly")):
        monkeypatch.setitem(scenarios.SCENARIOS, "QS-2", fn)
        (rec,) = _compiled_records("numpy", ["float64"], cases=["QS-2"])
        assert rec["outcome"] == "fail" and message in rec["reason"], rec


def test_compiled_report_validates_and_shows_the_compiled_section():
    report = run("numpy", cases=["QS-1", "YT-2", "QS-7", "op:sin"], dtypes=["float64"],
                 compiled=True)
    data = json.loads(report.to_json())
    jsonschema.validate(data, load_schema())
    kinds = {(r["case"], r["check"]) for r in data["results"]}
    assert {("QS-1", "compiled"), ("op:sin", "compiled"), ("YT-2", "compiled")} <= kinds
    md = report.markdown()
    assert "## Compiled" in md and "| numpy | 2 of 3 | 1 of 1 | 0 | 1 |" in md
    assert "YT-2: skipped: not compiled" in md and "QS-7: eager fallback (declared)" in md
    assert "<h2>Compiled</h2>" in report.html()
    # without --compiled there is no compiled check and no section
    plain = run("numpy", cases=["QS-1"], dtypes=["float64"])
    assert not any(r["check"] == "compiled" for r in plain.results)
    assert "## Compiled" not in plain.markdown()


def test_cli_compiled_flag(tmp_path):
    path = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "polygrad", "conformance", "--backend", "numpy",
                           "--case", "QS-6", "--case", "op:exp", "--dtype", "float64",
                           "--compiled", "--quiet", "--json", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(path.read_text())
    compiled = {r["id"]: r["outcome"] for r in data["results"] if r["check"] == "compiled"}
    assert compiled == {"QS-6/compiled-numpy-cpu-float64": "pass",
                        "op:exp/compiled-numpy-cpu-float64": "pass"}


def test_pytest_plugin_compiled_option():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--pyargs", "polygrad_conformance", "--polygrad-backend=numpy",
                           "--polygrad-case=QS-3", "--polygrad-dtype=float64",
                           "--polygrad-compiled", "-rA"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout and "QS-3/compiled-numpy-cpu-float64" in proc.stdout


# -- the fuzzer ------------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fuzzer_compiled_agrees_with_eager(backend, seed):
    """The fixed-seed runs of tests/test_conformance_fuzz.py, compiled too: no disagreement
    beyond its list of open disagreements with torch; in-place programs fall back to eager
    and are counted, not failed."""
    from test_conformance_fuzz import known_signatures
    rec = fuzz.fuzz(backend, max_programs=60, seed=seed, compiled=True,
                    known=known_signatures(backend), shrink_seconds=30)
    assert rec["programs"] == 60
    # eager against torch is test_conformance_fuzz's: here, compiled against eager
    compiled = [f for f in rec["failures"] if f["kind"] == "compiled"]
    assert compiled == [], "\n".join(f["snippet"] for f in compiled)
    assert 0 < rec["compiled_fallbacks"] < rec["programs"]


@needs_torch
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_create_graph_through_a_compiled_call_keeps_detach_and_no_grad(backend):
    """The compiled fuzzer found it: create_graph replays the recorded ops through the
    engine, where x.detach() read the same slot as x (one array), so the second derivative
    was not cut (``x.detach() * x``: compiled d2 = 2, eager 0). A tensor seen on the other
    side of the graph from its array's slot now reads an alias slot. The grad_mode family,
    compiled against eager, finds nothing."""
    rec = fuzz.fuzz(backend, max_programs=300, seed=0, compiled=True, families=["grad_mode"],
                    max_failures=1, shrink_seconds=30)
    assert rec["failures"] == [], rec["failures"][0]["snippet"] if rec["failures"] else ""


def _run_snippet(snippet, compiled):
    if not compiled:
        snippet = snippet.replace("@torch.compile\n", "")
    ns = {}
    before = pg.get_default_backend()
    try:        # the snippet sets the default backend: put it back for the tests after this
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(snippet.replace("print(", "_ = ("), ns)
        return [None if g is None else np.asarray(g.numpy()) for g in ns["gs"]]
    finally:
        pg.set_default_backend(before)


@needs_torch
def test_fuzzer_reports_a_broken_lowering_with_a_snippet_that_reproduces_it():
    with derived_backend("offlower", lower=_off_backward):
        rec = fuzz.fuzz("offlower", max_programs=60, seed=1, compiled=True, max_failures=1,
                        shrink_seconds=30)
        assert rec["failures"], "the planted 1.001 went unnoticed"
        found = rec["failures"][0]
        assert found["kind"] == "compiled" and found["message"].startswith("d")
        snippet = found["snippet"]
        assert "@torch.compile" in snippet and "set_default_backend('offlower')" in snippet
        assert snippet.count("\n") < 25, snippet          # shrunk
        got, eager = _run_snippet(snippet, True), _run_snippet(snippet, False)
    ratios = [g / e for g, e in zip(got, eager) if g is not None and np.any(e != 0)]
    assert ratios and any(np.allclose(r[np.isfinite(r)], 1.001) for r in ratios), (got, eager)


@needs_torch
def test_fuzz_section_records_compiled():
    rec = fuzz.fuzz("numpy", max_programs=5, seed=3, compiled=True)
    section = fuzz.section([rec], seed=3, compiled=True)
    from polygrad_conformance.report import Report, build
    report = Report(build(["numpy"], [], started=0.0, duration_s=1.0, fuzz=section))
    jsonschema.validate(json.loads(report.to_json()), load_schema())
    assert "| compiled fallbacks |" in report.markdown()
    assert "Each program also runs compiled" in report.markdown()


@needs_torch
def test_fallback_program_is_counted_not_a_disagreement():
    program = fuzz.Program([np.array([1.0, -2.0, 0.5])],
                           [("mul", "v0 = x0 * x0", ("x0", "x0")),
                            ("mul_alias", "v1 = v0.mul_(x0)", ("v0", "x0"))], double=True)
    tally = {}
    assert fuzz.check(program, "numpy", compiled=True, tally=tally)
    assert tally == {"compiled_fallbacks": 1}


# -- the compiler bugs the compiled runs found -------------------------------------------------

def test_enable_grad_inside_under_no_grad_is_tracked_compiled(backend):
    """YT-9: a function decorated with enable_grad(), compiled and called under no_grad():
    its output requires grad as eager's does (it runs eagerly, with a warning)."""
    @pg.enable_grad()
    def add(x, y):
        return x + y

    f = pg.compile(add)
    a, b = pg.ones(2, requires_grad=True), pg.ones(2)
    with pg.no_grad(), pytest.warns(CompileWarning, match="enable_grad"):
        outs = [f(a, b), f(a, b)]
    for out in outs:
        assert out.requires_grad
        a.grad = None
        out.sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), np.ones(2))


def test_a_view_of_an_argument_returned_compiled_stays_a_view(any_backend):
    """BUF-4 on dask: a compiled function returning a view of its argument gave a new tensor,
    so writes through it did not reach the base (wrong values on dask, wrong gradients on
    numpy). It runs eagerly now, with a warning."""
    def run_(compiled):
        with pg.use_backend(any_backend):
            x = pg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
            b = x * 1.0
            def tail(b):
                return b[:, 1:]
            f = pg.compile(tail) if compiled else tail
            if compiled:
                f(b)
            v = f(b)
            v.mul_(2.0)
            (b * b).sum().backward()
            return b.detach().numpy(), x.grad.numpy()
    eager = run_(False)
    with pytest.warns(CompileWarning, match="view of an argument"):
        got = run_(True)
    for g, e in zip(got, eager):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e))
