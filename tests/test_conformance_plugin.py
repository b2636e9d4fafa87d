"""The pytest front end of the conformance suite, driven with pytester.

It stays inert in unrelated runs (no polygrad import, no header), reports a failing
check as a failed test, fails the run on a strict xfail that passes, rejects an unknown
backend name clearly, and flags a stale unsupported declaration. Throwaway backends are
numpy copies registered in-process (pytester runs in this process).
"""

import importlib
import json

from conftest import derived_backend

import polygrad
from polygrad_conformance.runner import Session

# pytester's in-process runs drop every module they import when they end; what the suite
# imports is imported here first, so that no module (numpy's C extension, polygrad's
# primitive tables) is loaded twice in this process.
Session(["numpy"])
for _name in ("torch", "array_api_compat.torch", "polygrad.nn", "polygrad.optim",
              "polygrad.autograd.functional", "polygrad.autograd.profiler",
              "polygrad_conformance.test_conformance", "polygrad_conformance.report"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

pytest_plugins = ["pytester"]

SUITE = ["--pyargs", "polygrad_conformance", "-p", "no:cacheprovider"]


def test_plugin_is_inert_in_an_unrelated_run(pytester):
    pytester.makepyfile(test_other="""
        import sys

        def test_nothing_of_polygrad_was_imported():
            # only the plugin module, its option table and its (lazy, empty) package are loaded
            loaded = sorted(m for m in sys.modules if m.startswith("polygrad"))
            assert loaded == ["polygrad_conformance", "polygrad_conformance.options",
                              "polygrad_conformance.pytest_plugin"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("polygrad")]   # no header
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "--polygrad-backend" in help_text                        # but it is installed


def test_checks_pass_with_stable_ids_and_the_json_report(pytester, tmp_path):
    out = tmp_path / "r.json"
    result = pytester.runpytest(*SUITE, "--polygrad-backend=numpy", "--polygrad-case=YT-1",
                                "--polygrad-dtype=float64", f"--polygrad-json={out}", "-v")
    result.assert_outcomes(passed=3, skipped=1)      # cross: no other backend requested
    result.stdout.fnmatch_lines(["*test_conformance[[]YT-1/grad-numpy-cpu-float64[]] PASSED*"])
    data = json.loads(out.read_text())
    assert [r["id"] for r in data["results"]] == [
        f"YT-1/{c}-numpy-cpu-float64" for c in ("tutorial", "grad", "torch", "cross")]


def test_a_failing_case_shows_as_failed(pytester):
    with derived_backend("badnp", overrides={"sin": lambda xp, x: xp.sin(x) + 0.5}):
        result = pytester.runpytest(*SUITE, "--polygrad-backend=badnp", "--polygrad-case=op:sin",
                                    "--polygrad-dtype=float64", "-k", "value")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*op:sin/value-badnp-cpu-float64*", "*x tolerance*"])


def test_a_strict_xfail_that_passes_fails_the_run(pytester):
    kf = [polygrad.KnownFailure(match="op:exp/value-*", reason="exp was broken")]
    with derived_backend("xpnp", known_failures=kf):
        result = pytester.runpytest(*SUITE, "--polygrad-backend=xpnp", "--polygrad-case=op:exp",
                                    "--polygrad-dtype=float64", "-k", "value")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*exp was broken*"])
    assert result.ret != 0


def test_a_known_failure_that_still_fails_is_xfailed(pytester):
    kf = [polygrad.KnownFailure(match="op:exp/value-*", reason="exp is broken")]
    with derived_backend("xfnp", known_failures=kf, overrides={"exp": lambda xp, x: x}):
        result = pytester.runpytest(*SUITE, "--polygrad-backend=xfnp", "--polygrad-case=op:exp",
                                    "--polygrad-dtype=float64", "-k", "value")
    result.assert_outcomes(xfailed=1)
    assert result.ret == 0


def test_an_unknown_backend_name_is_a_clear_usage_error(pytester):
    result = pytester.runpytest(*SUITE, "--polygrad-backend=nosuch")
    assert result.ret == 4        # pytest's usage-error status
    result.stderr.fnmatch_lines(["*unknown backend 'nosuch'; installed backends: *numpy*"])


def test_a_stale_unsupported_declaration_is_flagged(pytester):
    with derived_backend("stalenp", unsupported={"sin": "no sin kernel"}):
        result = pytester.runpytest(*SUITE, "--polygrad-backend=stalenp",
                                    "--polygrad-case=op:sin", "--polygrad-dtype=float64")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*op:sin/unsupported-stalenp-cpu-float64*",
                                 "*stale declaration*"])


def test_xdist_and_junitxml_with_the_report_written_once_by_the_controller(pytester, tmp_path):
    out, junit = tmp_path / "r.json", tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        *SUITE, "-n", "2", "--polygrad-backend=numpy", "--polygrad-case=QS-2",
        "--polygrad-case=op:exp", f"--polygrad-json={out}", f"--junitxml={junit}")
    result.assert_outcomes(passed=17, skipped=5)   # cross: one backend; fd: float64 only
    data = json.loads(out.read_text())
    assert len(data["results"]) == 22 and data["ok"]
    assert junit.read_text().count("<testcase") == 22
    assert 'name="test_conformance[op:exp/vjp-numpy-cpu-float32]"' in junit.read_text()
