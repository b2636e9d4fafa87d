"""The conformance suite's engine and front ends: meta-tests (every SCENARIOS.md id and
every primitive has a case), backend declarations (unsupported, known failures, fused,
skips), the JSON schema, the Markdown and HTML renderings, the CLI and ``run()``.

Throwaway backends are derived from the numpy one and registered in-process
(register_plugin / unregister_plugin in try/finally).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import derived_backend

import polygrad
from polygrad.plugins import get_backend, register_plugin, unregister_plugin
from polygrad_conformance import SCENARIO_IDS, run
from polygrad_conformance.op_table import OP_CASES, OpCase, register_case
from polygrad_conformance.report import load_schema
from polygrad_conformance.runner import Session, execute
from polygrad_conformance.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
#: the spec the suite implements, in the repository beside the suite (shipped in the package)
SCENARIOS_MD = ROOT / "conformance" / "SCENARIOS.md"
#: the shared copy it is kept in sync with, outside the repository
SHARED_SCENARIOS_MD = Path(os.environ.get("POLYGRAD_SCENARIOS_MD",
                                          ROOT.parent / "shared" / "SCENARIOS.md"))


def outcomes(backends, cases, dtypes=("float64",), **kw):
    session = Session(backends, dtypes=dtypes, cases=cases, **kw)
    return {r["id"]: r for r in map(execute, session.checks())}


# -- meta-tests ------------------------------------------------------------------------------

def test_every_scenarios_md_id_has_a_case_in_order():
    ids = [sid for sid, _, _ in SCENARIO_IDS]
    assert list(SCENARIOS) == ids, "scenario functions out of SCENARIOS.md order"
    # the suite reads the ids from the copy it ships; every id row of the file is one, then
    # the buffer scenarios (conformance/buffers.py) follow
    documented = re.findall(r"^\| ((?:QS|YT|BZ)-\d+) ", SCENARIOS_MD.read_text(), re.M)
    tutorial = [i for i in ids if not i.startswith("BUF-")]
    assert documented == tutorial and len(tutorial) == 24
    assert ids[24:] == [f"BUF-{i}" for i in range(1, len(ids) - 23)]
    assert SCENARIO_IDS[0] == ("QS-1", "one-layer net", "001")
    assert SCENARIO_IDS[23] == ("BZ-2", "doubling loop", "003")


def test_the_shipped_scenarios_md_is_the_shared_one():
    if not SHARED_SCENARIOS_MD.exists():
        pytest.skip(f"no shared SCENARIOS.md at {SHARED_SCENARIOS_MD} to compare with (set "
                    f"POLYGRAD_SCENARIOS_MD to its path)")
    assert SCENARIOS_MD.read_bytes() == SHARED_SCENARIOS_MD.read_bytes(), (
        f"{SCENARIOS_MD} differs from {SHARED_SCENARIOS_MD}: copy the spec over and update "
        f"the scenarios that changed")


def test_the_shipped_scenarios_md_is_what_the_package_reads():
    from importlib import resources
    shipped = resources.files("polygrad_conformance").joinpath("SCENARIOS.md").read_bytes()
    assert shipped == SCENARIOS_MD.read_bytes()


def test_every_primitive_has_a_case():
    from polygrad.primitives import PRIMITIVES
    Session(["numpy"])        # loads every table the installation has
    missing = sorted(set(PRIMITIVES) - set(OP_CASES))
    assert not missing, f"primitives without a conformance case: {missing}"


def test_a_plugin_primitive_without_a_case_is_reported_then_covered_by_register_case():
    from polygrad.primitives import Primitive

    prim = Primitive("test_cube", lambda ns, g, out, x: (3 * g * x * x,),
                     lambda ns, ts, out, x: 3 * ts[0] * x * x,
                     impl=lambda xp, x: x * x * x)

    class Plugin:
        @polygrad.hookimpl
        def register_primitives(self, register):
            register(prim)

    register_plugin(Plugin(), name="test-cube")
    try:
        recs = outcomes(["numpy"], ["op:test_cube"])
        assert [r["outcome"] for r in recs.values()] == ["error"]
        assert "no conformance case" in next(iter(recs.values()))["reason"]
        register_case(OpCase("test_cube", lambda rng: [rng.uniform(-1, 1, (2, 3))],
                             torch=lambda xp, x: x ** 3))      # ns.test_cube(x), by name
        recs = outcomes(["numpy"], ["op:test_cube"])
        got = {r["check"]: r["outcome"] for r in recs.values()}
        assert got == {"value": "pass", "vjp": "pass", "grad2": "pass", "jvp": "pass",
                       "fd": "pass", "torch": "pass", "cross": "skip"}, recs
    finally:
        unregister_plugin("test-cube")
        OP_CASES.pop("test_cube", None)


# -- checks find what they should ------------------------------------------------------------

def test_scenario_checks_pass_and_ids_are_stable():
    recs = outcomes(["numpy", "torch"], ["YT-1"], dtypes=("float32",))
    assert list(recs) == [f"YT-1/{c}-{b}-cpu-float32" for b in ("numpy", "torch")
                          for c in ("tutorial", "grad", "torch", "cross")]
    assert all(r["outcome"] == "pass" for r in recs.values()), recs
    assert all(0 <= r["tol_ratio"] <= 1 for r in recs.values())


BROKEN = [  # (override, case, check that must fail)
    ({"sin": lambda xp, x: xp.sin(x) * (1 + 1e-4)}, "op:sin", "value"),
    ({"sin": lambda xp, x: xp.cos(x)}, "YT-1", "grad"),
]


@pytest.mark.parametrize("override,case,check", BROKEN, ids=["value-off-by-1e-4", "yt1-cos"])
def test_a_wrong_forward_fails_with_its_error_measured(override, case, check):
    with derived_backend("badnp", overrides=override):
        recs = outcomes(["badnp"], [case])
    rec = recs[f"{case}/{check}-badnp-cpu-float64"]
    assert rec["outcome"] == "fail"
    assert rec["tol_ratio"] > 1 and rec["worst"]["index"] is not None
    assert "x tolerance" in rec["reason"]


def test_known_failure_is_strict_xfail():
    kf = [polygrad.KnownFailure(match="op:sin/value-*", reason="sin is off")]
    wrong = {"sin": lambda xp, x: xp.sin(x) + 1}
    with derived_backend("kfnp", overrides=wrong, known_failures=kf):
        rec = outcomes(["kfnp"], ["op:sin"])["op:sin/value-kfnp-cpu-float64"]
    assert rec["outcome"] == "xfail" and "sin is off" in rec["reason"]
    with derived_backend("kfnp", known_failures=kf):          # the bug is fixed: XPASS
        rec = outcomes(["kfnp"], ["op:sin"])["op:sin/value-kfnp-cpu-float64"]
    assert rec["outcome"] == "xpass" and "remove it" in rec["reason"]


def test_unsupported_declaration_is_verified_and_a_stale_one_flagged():
    no_sin = {"sin": lambda xp, x: (_ for _ in ()).throw(RuntimeError("no sin here"))}
    with derived_backend("unnp", unsupported={"sin": "no sin kernel"}, overrides=no_sin):
        rec = outcomes(["unnp"], ["op:sin"])["op:sin/unsupported-unnp-cpu-float64"]
    assert rec["outcome"] == "unsupported", rec
    with derived_backend("stalenp", unsupported={"sin": "no sin kernel"}):
        rec = outcomes(["stalenp"], ["op:sin"])["op:sin/unsupported-stalenp-cpu-float64"]
    assert rec["outcome"] == "xpass-unsupported" and "stale declaration" in rec["reason"]


def test_fused_kernel_is_compared_with_the_decomposed_primitives():
    good = {"sigmoid": lambda xp, x: 1 / (1 + xp.exp(-x))}
    bad = {"sigmoid": lambda xp, x: 1 / (1 + xp.exp(-x)) + 1e-3}
    for fused, expected in ((good, "pass"), (bad, "fail")):
        with derived_backend("fusednp", fused=fused):
            recs = outcomes(["fusednp"], ["fused:sigmoid"])
        assert recs["fused:sigmoid/value-fusednp-cpu-float64"]["outcome"] == expected


SKIPS = [  # (session options, id, reason fragment)
    ({"devices": ["cuda:0"]}, "YT-1/grad-numpy-cuda:0-float64", "no CUDA device visible"),
    ({"dtypes": ("float32",)}, "op:sin/fd-numpy-cpu-float32", "float64 only"),
]


@pytest.mark.parametrize("opts,cid,why", SKIPS, ids=["cuda", "fd-float32"])
def test_skips_say_exactly_why(opts, cid, why):
    opts = {"dtypes": ("float64",), **opts}
    recs = outcomes(["numpy"], ["YT-1", "op:sin"], **opts)
    assert recs[cid]["outcome"] == "skip" and why in recs[cid]["reason"]


def test_backend_without_float64_is_skipped_with_the_declaration_named():
    dtypes = tuple(d for d in get_backend("numpy").dtypes if d != "float64")
    with derived_backend("f32np", dtypes=dtypes):
        rec = outcomes(["f32np"], ["YT-1"])["YT-1/tutorial-f32np-cpu-float64"]
    assert rec["outcome"] == "skip"
    assert rec["reason"] == "backend 'f32np' declares no float64"


def test_complex_values_are_compared_as_complex_numbers():
    from polygrad_conformance.checks import compare
    off = compare(np.array([1 + 1j, 2 + 0j]), np.array([1 + 2j, 2 + 0j]), 1e-9, 1e-7)
    assert off["tol_ratio"] > 1e6 and off["worst"]["index"] == [0]     # imaginary part counts
    assert off["worst"]["ref"] == "(1+2j)"                             # JSON-safe
    assert compare(np.array([1 + 1j]), np.array([1 + 1j]), 1e-9, 1e-7)["tol_ratio"] == 0.0


def test_default_backends_are_those_whose_library_is_installed():
    with derived_backend("ghostnp", module="polygrad_no_such_array_library"):
        session = Session()
        assert "ghostnp" not in [b.name for b in session.backends]
        assert "numpy" in [b.name for b in session.backends]
        assert "ghostnp" in session.not_installed
        # asked for by name, it runs, and its checks skip saying why
        assert [b.name for b in Session(["ghostnp"]).backends] == ["ghostnp"]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(polygrad.UnknownBackendError, match="unknown backend 'nosuch'"):
        Session(["nosuch"])


EAGER_PLUGIN = """
import dataclasses

import wave     # the backend's "array library": a stdlib module polygrad never imports

import polygrad
from polygrad_backends.numpy_backend import backend as numpy_backend

backend = dataclasses.replace(numpy_backend, name="eagernp", module="wave")


@polygrad.hookimpl
def register_backends(register):
    register(backend)
"""


def test_plugin_import_check_flags_an_eager_import(tmp_path, monkeypatch):
    """An installed plugin (a module and an entry point) that imports its library eagerly."""
    (tmp_path / "eager_plugin.py").write_text(EAGER_PLUGIN)
    dist = tmp_path / "eager_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: eager-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[polygrad]\neager_plugin = eager_plugin\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))     # the check's fresh interpreter
    monkeypatch.syspath_prepend(str(tmp_path))
    import eager_plugin
    register_plugin(eager_plugin, name="eager_plugin")
    try:
        rec = outcomes(["eagernp"], ["plugin:import"])["plugin:import/lazy-eagernp-any-any"]
    finally:
        unregister_plugin("eager_plugin")
        sys.modules.pop("eager_plugin", None)
    assert rec["outcome"] == "fail", rec
    assert "imports 'wave' at import time; move the import into Backend.load" in rec["reason"]


def test_plugin_import_check_skips_a_backend_registered_in_process():
    with derived_backend("inprocnp"):
        rec = outcomes(["inprocnp"], ["plugin:import"])["plugin:import/lazy-inprocnp-any-any"]
    assert rec["outcome"] == "skip" and "registered in-process" in rec["reason"]


def test_torch_plugin_import_is_lazy():
    pytest.importorskip("torch")
    rec = outcomes(["torch"], ["plugin:import"])["plugin:import/lazy-torch-any-any"]
    assert rec["outcome"] == "pass", rec


# -- report ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_report():
    return run(["numpy", "torch"], cases=["QS-1", "YT-1", "BZ-1", "op:sin", "op:equal"])


def test_report_validates_against_its_schema(small_report):
    data = json.loads(small_report.to_json())
    jsonschema.validate(data, load_schema())
    assert small_report.ok, small_report.failures()
    assert set(data["summary"]) == {"numpy", "torch"}
    bad = dict(data, results=[dict(data["results"][0], outcome="maybe")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, load_schema())


def test_markdown_matrix_rows_in_scenarios_md_order(small_report):
    md = small_report.markdown()
    rows = [line.split()[1] for line in md.splitlines() if re.match(r"\| (QS|YT|BZ)-", line)]
    assert rows == ["QS-1", "YT-1", "BZ-1"]
    assert "| case | numpy/cpu/float32 | numpy/cpu/float64 | torch/cpu/float32 |" in md
    assert "| op:sin | ✅" in md
    assert ("## Skips by reason\n\n| backend | skipped | reason |\n|---|---|---|\n"
            "| numpy | 1 | finite differences run in float64 only") in md
    skips = small_report.data["summary"]["torch"]["skips"]
    assert skips == {"finite differences run in float64 only (eps=1e-6 is below float32 "
                     "resolution)": 1}


class _Checker(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.urls = [], [], []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_is_self_contained_and_well_formed(small_report):
    page = small_report.html()
    checker = _Checker()
    checker.feed(page)
    assert not checker.errors and not checker.stack
    assert not checker.urls and "http://" not in page and "https://" not in page
    for case in ("QS-1 one-layer net", "YT-1 sin chain", "BZ-1 Variable", "op:sin", "op:equal"):
        assert f'<th class="r" title="{case}">{case}</th>' in page


CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                 "google-chrome"))), None)


def _screenshot_colours(html, path):
    """Render ``html`` in headless Chromium: how many pixels of each RGB colour it shows."""
    image = pytest.importorskip("matplotlib.image")
    page, shot = path / "report.html", path / "report.png"
    page.write_text(html, encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={path / 'profile'}",
                    "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = (image.imread(str(shot))[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return {tuple(int(v) for v in c): int(n) for c, n in zip(colours, counts)}


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                             "(Debian: apt install chromium)")
def test_html_renders_in_headless_chromium_coloured_by_outcome(small_report, tmp_path):
    red, green = (0xe0, 0x66, 0x66), (0x93, 0xc4, 0x7d)      # fail, pass far inside tolerance
    (tmp_path / "good").mkdir()
    good = _screenshot_colours(small_report.html(), tmp_path / "good")
    assert good.get(green, 0) > 10_000          # passing cells (BZ-1, op:equal), the legend
    with derived_backend("badnp", overrides={"sin": lambda xp, x: xp.cos(x)}):
        failing = run(["badnp"], cases=["YT-1"], dtypes=["float64"])
    (tmp_path / "bad").mkdir()
    bad = _screenshot_colours(failing.html(), tmp_path / "bad")
    # red shows in the legend of both pages; the failing YT-1 cell adds a cell's worth
    assert bad.get(red, 0) > good.get(red, 0) + 1000


def test_pass_colours_are_banded_and_a_comfortable_pass_is_not_the_colour_of_one():
    from polygrad_conformance.report import PASS_BANDS, _colour
    comfortable, close = PASS_BANDS[0][1], PASS_BANDS[-1][1]
    # a float32 pass far inside its tolerance (0.04) gets the "comfortable" swatch, and only
    # tol_ratio close to 1 gets the legend's "close to failing" one
    assert [_colour("pass", r) for r in (0.0, 1e-9, 0.04, 0.1)] == [comfortable] * 4
    assert _colour("pass", 0.3) not in (comfortable, close)
    assert [_colour("pass", r) for r in (0.51, 1.0)] == [close] * 2
    assert len({c for _, c, _ in PASS_BANDS} | {_colour("fail", None)}) == 4


def _chromium(*args, path):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={path / 'profile'}", *args],
                          check=True, capture_output=True, text=True, timeout=120)


# computes, once laid out, what overflows: the page, and each table outside a scroll box
_LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  const doc = document.documentElement, body = document.body;
  const loose = [...document.querySelectorAll("table")].filter(
      t => !t.closest(".scroll") && t.getBoundingClientRect().right > doc.clientWidth);
  const boxes = [...document.querySelectorAll(".scroll")].map(
      b => [b.scrollWidth, b.clientWidth, b.getBoundingClientRect().right]);
  const first = document.querySelector("table.m th.r");
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({page: [doc.scrollWidth, doc.clientWidth],
      body: [body.scrollWidth, body.clientWidth], loose: loose.length, boxes: boxes,
      sticky: first ? getComputedStyle(first).position : null});
  body.appendChild(out);
});
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                             "(Debian: apt install chromium)")
def test_html_with_four_backends_fits_the_window_in_headless_chromium(tmp_path):
    """numpy, torch, strict (three devices) and dask: 12 columns. Laid out by Chromium at
    1280 px and at 800 px, nothing runs off the right edge: the page does not scroll
    sideways, each matrix scrolls inside its own box, its case column sticky."""
    # a separate process with every installed plugin (conftest keeps this one to the
    # built-in backends), the page written to stdout with --html -
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    backends = ("numpy", "torch", "strict", "dask")
    proc = subprocess.run([sys.executable, "-m", "polygrad", "conformance", "--html", "-",
                           *(f"--backend={b}" for b in backends), "--case=QS-1", "--case=YT-1",
                           "--case=BZ-1", "--case=op:sin", "--case=op:matmul"],
                          capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode in (2, 5):
        pytest.skip(f"needs the {', '.join(backends)} backends installed (pip install -e "
                    f"./plugins/polygrad-strict -e ./plugins/polygrad-dask): {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html_text = proc.stdout
    assert html_text.startswith("<!DOCTYPE html>")
    assert all(f"<th>{b}<br>" in html_text for b in backends)
    page = tmp_path / "report.html"
    page.write_text(html_text.replace("</body>", _LAYOUT_PROBE), encoding="utf-8")
    for width in (1280, 800):
        dom = _chromium("--virtual-time-budget=5000", f"--window-size={width},900",
                        "--dump-dom", page.as_uri(), path=tmp_path).stdout
        layout = json.loads(html_unescape(re.search(r'<pre id="layout">(.*?)</pre>', dom,
                                                    re.S).group(1)))
        (page_w, page_cw), (body_w, body_cw) = layout["page"], layout["body"]
        assert page_w <= page_cw and body_w <= body_cw, (width, layout)
        assert layout["loose"] == 0 and layout["sticky"] == "sticky", (width, layout)
        assert all(right <= page_cw for _, _, right in layout["boxes"]), (width, layout)
        if width == 800:        # 12 columns do not fit in 800 px: their box scrolls
            assert any(sw > cw for sw, cw, _ in layout["boxes"]), layout
    shot = tmp_path / "report.png"
    _chromium("--window-size=1280,900", f"--screenshot={shot}", page.as_uri(), path=tmp_path)
    assert shot.stat().st_size > 10_000


# -- front ends ------------------------------------------------------------------------------

def test_python_api_through_polygrad_conformance():
    import polygrad_conformance
    report = polygrad_conformance.run("numpy", cases=["BZ-1"], dtypes=["float64"])
    assert isinstance(report, polygrad_conformance.Report)
    assert not hasattr(polygrad, "conformance")      # the core never reaches its own kit
    assert report.ok and report.counts("numpy")["pass"] == 3


def _cli(*args):
    env = dict(os.environ, POLYGRAD_LOAD_PLUGINS="numpy,torch")
    return subprocess.run([sys.executable, "-m", "polygrad", "conformance", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_reports_and_exits_zero(tmp_path):
    proc = _cli("--backend", "numpy", "--case", "YT-1", "--case", "op:exp", "--dtype", "float64",
                "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"),
                "--html", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    assert "| YT-1 sin chain | ✅" in proc.stdout
    jsonschema.validate(json.loads((tmp_path / "r.json").read_text()), load_schema())
    assert (tmp_path / "r.md").read_text().startswith("# polygrad conformance report")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_unknown_backend_exits_two_with_the_installed_ones():
    proc = _cli("--backend", "nosuch")
    assert proc.returncode == 2
    assert "unknown backend 'nosuch'; installed backends:" in proc.stderr


def test_cli_exits_one_when_a_check_fails(capsys):
    from polygrad_conformance.cli import main
    with derived_backend("clibad", overrides={"exp": lambda xp, x: xp.exp(x) + 1}):
        status = main(["--backend", "clibad", "--case", "op:exp", "--dtype", "float64",
                       "--quiet"])
    assert status == 1
    assert "FAILED" in capsys.readouterr().out
