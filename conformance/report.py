"""The report: JSON (the source of truth, schema ``polygrad-conformance/1``) and what is
rendered from it, a Markdown matrix and op table, and a self-contained HTML page.

This module owns the report's shape and its renderings; it runs nothing. ``Report``
wraps the JSON dict; ``render_markdown(data)`` and ``render_html(data)`` work on the
plain dict too, so a JSON file from another machine renders the same way.
"""

from __future__ import annotations

import html
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from importlib import resources

from polygrad.base.files import check_writable, write_atomic

from .checks import FD, TOLERANCES
from .scenarios import SCENARIO_IDS

# how a lazy backend's results are marked: they are computed before any comparison
LAZY = "lazy: results computed before comparison"

SCHEMA = "polygrad-conformance/1"
SUITE_VERSION = "1.0"
FAILING = ("fail", "error", "xpass", "xpass-unsupported")
OUTCOMES = ("pass", "fail", "error", "xfail", "xpass", "skip", "unsupported",
            "xpass-unsupported")

__all__ = ["Report", "build", "render_markdown", "render_html", "load_schema", "SCHEMA"]


def load_schema():
    """The JSON Schema every report validates against (shipped in the package)."""
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text())


def _backend_meta(name):
    from polygrad.plugins import describe, get_backend
    b = get_backend(name)
    # the plugin listing's row of this backend (rows of plugins without backends have no
    # "unsupported"); none for a backend copy that was never registered
    row = next((r for r in describe() if r["name"] == name and "unsupported" in r), {})
    reason = b.unavailable_reason()
    info = {}
    if reason is None and b.info is not None:
        try:
            info = {k: str(v) for k, v in b.info().items()}
        except Exception as exc:  # noqa: BLE001 - a broken info() must not lose the report
            info = {"error": f"{type(exc).__name__}: {exc}"}
    return {"name": b.name, "plugin": row.get("plugin", ""),
            "distribution": row.get("distribution", ""), "version": row.get("version", ""),
            "module": b.module,
            "status": "available" if reason is None else f"unavailable: {reason}",
            "devices": list(b.devices()) if reason is None else [],
            "dtypes": list(b.dtypes), "unsupported": dict(b.unsupported),
            "known_failures": [{"match": k.match, "reason": k.reason, "link": k.link}
                               for k in b.known_failures],
            "fused": sorted(b.fused), "lazy": bool(b.lazy), "info": info}


def build(backends, records, *, started, duration_s, command="", fuzz=None):
    """The report dict for ``records`` (what ``runner.execute`` returns) and, when the
    fuzzer ran, its section (``fuzz.section``)."""
    import numpy

    import polygrad

    from .runner import BASE_SEED
    summary = {}
    for name in backends:
        mine = [r for r in records if r["backend"] == name]
        counts = Counter(r["outcome"] for r in mine)
        ratios = [r for r in mine if r["tol_ratio"] is not None and r["outcome"] != "skip"]
        worst = max(ratios, key=lambda r: r["tol_ratio"], default=None)
        passing = max((r for r in ratios if r["outcome"] == "pass"),
                      key=lambda r: r["tol_ratio"], default=None)
        summary[name] = {"counts": {o: counts.get(o, 0) for o in OUTCOMES},
                         "total": len(mine),
                         "worst_tol_ratio": worst["tol_ratio"] if worst else None,
                         "worst_id": worst["id"] if worst else None,
                         # how close the passing checks come to their tolerance
                         "worst_pass_tol_ratio": passing["tol_ratio"] if passing else None,
                         "worst_pass_id": passing["id"] if passing else None,
                         # skipped checks counted by reason, most frequent first
                         "skips": dict(Counter(r["reason"] for r in mine
                                               if r["outcome"] == "skip").most_common())}
    data = {
        "schema": SCHEMA, "suite_version": SUITE_VERSION, "polygrad_version": polygrad.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(duration_s, 3), "command": command, "seed": BASE_SEED,
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "machine": platform.machine(), "numpy": numpy.__version__},
        "reference": {"backend": "numpy", "device": "cpu", "dtype": "float64",
                      "oracle": "torch.autograd (float64, cpu) when torch is installed",
                      "fd": dict(FD)},
        "tolerances": {k: dict(v) for k, v in TOLERANCES.items()},
        "backends": [_backend_meta(n) for n in backends],
        "results": records,
        "summary": summary,
        "ok": not any(r["outcome"] in FAILING for r in records),
    }
    if fuzz is not None:
        data["fuzz"] = fuzz
        data["ok"] = data["ok"] and not any(r["failures"] for r in fuzz["backends"])
    return data


class Report:
    """A conformance run's result; ``report.data`` is the JSON dict.

    >>> import polygrad_conformance as pc
    >>> r = pc.run("numpy", cases=["YT-1"], dtypes=["float64"])
    >>> r.ok, r.counts("numpy")["pass"] > 0
    (True, True)
    """

    def __init__(self, data):
        self.data = data

    @property
    def ok(self):
        """True when nothing failed, errored or passed a strict xfail."""
        return self.data["ok"]

    @property
    def results(self):
        return self.data["results"]

    def counts(self, backend):
        return self.data["summary"][backend]["counts"]

    def failures(self):
        return [r for r in self.results if r["outcome"] in FAILING]

    def fuzz_failures(self):
        """The fuzzer's disagreements: ``{"backend", "kind", "message", "ops", "snippet"}``."""
        return [{"backend": run["backend"], **f}
                for run in self.data.get("fuzz", {}).get("backends", []) for f in run["failures"]]

    def to_json(self):
        return json.dumps(self.data, indent=1, allow_nan=False)

    def write_json(self, path):
        _write(path, self.to_json())

    def markdown(self):
        return render_markdown(self.data)

    def html(self):
        return render_html(self.data)

    def write_markdown(self, path):
        _write(path, self.markdown())

    def write_html(self, path):
        _write(path, self.html())

    def __repr__(self):
        parts = [f"{b}: {s['counts']['pass']} pass, "
                 f"{sum(s['counts'][o] for o in FAILING)} failing"
                 for b, s in self.data["summary"].items() if s["total"]]
        parts += [f"fuzz {r['backend']}: {r['programs']} programs, "
                  f"{len(r['failures'])} disagreements"
                  for r in self.data.get("fuzz", {}).get("backends", [])]
        return f"<Report {'ok' if self.ok else 'FAILED'}; {'; '.join(parts)}>"

    def skip_lines(self):
        """One line per backend and skip reason: how many checks skipped, and why.

        >>> import polygrad_conformance as pc
        >>> pc.run("numpy", cases=["op:sin"], dtypes=["float32"]).skip_lines()[0]
        'numpy: 1 skipped: finite differences run in float64 only (eps=1e-6 is below float32 resolution)'
        """
        return [f"{b}: {n} skipped: {reason}" for b, s in self.data["summary"].items()
                for reason, n in s.get("skips", {}).items()]

    def _repr_markdown_(self):      # notebooks show the matrix
        return self.markdown()


def _write(path, text):
    """Atomically (``polygrad.base.files.write_atomic``: a temporary file in the same folder,
    then ``os.replace``), so that a failed write (disk full, a file size limit) leaves the
    previous report as it was; a missing folder is made first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, text)


def check_path(path, option):
    """None when a report can be written to ``path`` (its folder is made if missing);
    otherwise a message naming ``option``, what is wrong and the fix."""
    return check_writable(path, option, make_folders=True)


# -- cells ------------------------------------------------------------------------------------

def _columns(data):
    cols = []
    for r in data["results"]:
        key = (r["backend"], r["device"], r["dtype"])
        if r["kind"] != "plugin" and key not in cols:
            cols.append(key)
    return cols


def _cell_state(records):
    """One cell from the checks of a case on one column: the worst outcome wins."""
    if not records:
        return "none", None, ""
    rank = {o: i for i, o in enumerate(("xpass-unsupported", "xpass", "error", "fail", "xfail",
                                        "unsupported", "pass", "skip"))}
    worst = min(records, key=lambda r: rank[r["outcome"]])
    ratios = [r["tol_ratio"] for r in records if r["tol_ratio"] is not None
              and r["outcome"] not in ("skip",)]
    ratio = max(ratios) if ratios else None
    return worst["outcome"], ratio, worst


def _md_cell(records):
    state, ratio, worst = _cell_state(records)
    if state == "none":
        return ""
    if state == "pass":
        return f"✅ {ratio:.1e}" if ratio is not None else "✅"
    if state == "skip":
        return f"➖ {_short(worst['reason'])}"
    if state == "unsupported":
        return "🚫 unsupported"
    if state == "xfail":
        return f"⚠️ xfail: {_short(worst['reason'])}"
    return f"❌ {worst['check']}: {_short(worst['reason'])}"


def _short(text, n=70):
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def _group(data):
    by = defaultdict(list)
    for r in data["results"]:
        by[(r["case"], r["backend"], r["device"], r["dtype"])].append(r)
    return by


def _case_rows(data):
    titles = {sid: title for sid, title, _ in SCENARIO_IDS}
    seen = []
    for r in data["results"]:
        if r["case"] not in seen:
            seen.append(r["case"])
    scen = [c for c, _, _ in SCENARIO_IDS if c in seen]
    ops = [c for c in seen if c.startswith("op:")]
    fused = [c for c in seen if c.startswith("fused:")]
    plugin = [c for c in seen if c.startswith("plugin:")]
    return titles, scen, ops, fused, plugin


def _legend():
    return ("Cells: ✅ pass (worst tol_ratio = error / tolerance; ≤ 1 passes), ❌ fail or error "
            "(the check and why), ⚠️ xfail (a declared known failure), 🚫 unsupported (declared "
            "and verified), ➖ skip (why).")


def render_markdown(data):
    """The Markdown report: header, tutorial matrix, op table, per-backend summary."""
    cols = _columns(data)
    by = _group(data)
    titles, scen, ops, fused, plugin = _case_rows(data)
    head = "| case | " + " | ".join("/".join(c) for c in cols) + " |"
    rule = "|---|" + "---|" * len(cols)
    out = [f"# polygrad conformance report ({data['schema']})", "",
           f"polygrad {data['polygrad_version']}, suite {data['suite_version']}, "
           f"{data['started']}, {data['duration_s']:.1f} s, python "
           f"{data['environment']['python']}.", ""]
    for b in data["backends"]:
        info = ", ".join(f"{k} {v}" for k, v in b["info"].items())
        out.append(f"- **{b['name']}** ({b['distribution'] or 'in-process'} {b['version']}): "
                   f"{b['status']}; devices {', '.join(b['devices']) or '-'}"
                   + (f"; {info}" if info else "") + (f"; {LAZY}" if b.get("lazy") else ""))
    ref = data["reference"]
    tol = ", ".join(f"{k}: atol {v['atol']:g} rtol {v['rtol']:g}"
                    for k, v in data["tolerances"].items())
    out.append("")
    if data["results"]:         # a fuzzer-only run has no checks to explain
        out += [f"Reference: {ref['backend']} {ref['dtype']} on identical inputs; oracle: "
                f"{ref['oracle']}; finite differences: {ref['fd']['scheme']}, eps "
                f"{ref['fd']['eps']:g}, atol {ref['fd']['atol']:g}, rtol "
                f"{ref['fd']['rtol']:g}.", f"Tolerances: {tol}.", "", _legend(), ""]
    if scen:
        out += ["## Tutorial scenarios", "", head, rule]
        for c in scen:
            cells = [_md_cell(by.get((c, *col), [])) for col in cols]
            out.append(f"| {c} {titles.get(c, '')} | " + " | ".join(cells) + " |")
        out.append("")
    if ops or fused:
        out += ["## Primitives", "", head, rule]
        for c in ops + fused:
            cells = [_md_cell(by.get((c, *col), [])) for col in cols]
            out.append(f"| {c} | " + " | ".join(cells) + " |")
        out.append("")
    if data["results"]:
        out += ["## Summary", "", "| backend | " + " | ".join(OUTCOMES)
                + " | worst tol_ratio | worst passing tol_ratio |",
                "|---|" + "---|" * (len(OUTCOMES) + 2)]
        for name, s in data["summary"].items():
            out.append(f"| {name} | " + " | ".join(str(s["counts"][o]) for o in OUTCOMES)
                       + f" | {_ratio(s['worst_tol_ratio'])} ({s['worst_id'] or '-'}) | "
                       f"{_ratio(s.get('worst_pass_tol_ratio'))} "
                       f"({s.get('worst_pass_id') or '-'}) |")
        out.append("")
    out += _md_compiled(data)
    if "fuzz" in data:
        out += _md_fuzz(data["fuzz"])
    skips = [(name, reason, n) for name, s in data["summary"].items()
             for reason, n in s.get("skips", {}).items()]
    if skips:
        out += ["## Skips by reason", "", "| backend | skipped | reason |", "|---|---|---|"]
        out += [f"| {name} | {n} | {_short(reason, 300)} |" for name, reason, n in skips]
        out.append("")
    bad = [r for r in data["results"] if r["outcome"] in FAILING]
    stale = [r for r in bad if r["outcome"] in ("xpass", "xpass-unsupported")]
    pl = [r for r in data["results"] if r["kind"] == "plugin"]
    if pl:
        out += ["## Plugin checks", ""]
        out += [f"- `{r['id']}`: {r['outcome']}" + (f": {r['reason']}" if r["reason"] else "")
                for r in pl]
        out.append("")
    if stale:
        out += ["## Stale declarations", ""]
        out += [f"- `{r['id']}`: {r['reason']}" for r in stale]
        out.append("")
    if bad:
        out += [f"## Failures ({len(bad)})", ""]
        out += [f"- `{r['id']}` **{r['outcome']}**: {_short(r['reason'], 300)}" for r in bad[:200]]
        if len(bad) > 200:
            out.append(f"- … and {len(bad) - 200} more (see the JSON)")
        out.append("")
    return "\n".join(out)


def _compiled(data):
    """The ``compiled`` records: counts per backend and kind, and the lines that say what
    did not replay (declared skips and eager fallbacks), each once."""
    recs = [r for r in data["results"] if r["check"] == "compiled"]
    counts = defaultdict(Counter)
    for r in recs:
        counts[r["backend"]][(r["kind"], r["outcome"])] += 1
    declared = {}
    for r in recs:
        if r["outcome"] == "skip" and r["kind"] == "scenario":
            declared.setdefault(f"{r['case']}: skipped: {r['reason']}", None)
        elif "(declared)" in r.get("note", ""):
            declared.setdefault(f"{r['case']}: {r['note'].split('; ', 1)[1]}", None)
    return recs, counts, list(declared)


def _md_compiled(data):
    recs, counts, declared = _compiled(data)
    if not recs:
        return []
    out = ["## Compiled", "", "Each scenario and primitive also run through `polygrad.compile` "
           "(traced, then replayed) and compared with its eager run on the same backend, "
           "values and gradients (`--compiled`).", "",
           "| backend | scenarios passing | ops passing | failing | skipped |",
           "|---|---|---|---|---|"]
    for backend, c in counts.items():
        def n(kind, outcomes=("pass",), c=c):
            return sum(v for (k, o), v in c.items() if (kind is None or k == kind)
                       and o in outcomes)
        out.append(f"| {backend} | {n('scenario')} of {n('scenario', OUTCOMES)} | {n('op')} "
                   f"of {n('op', OUTCOMES)} | {n(None, FAILING)} | {n(None, ('skip',))} |")
    out.append("")
    if declared:
        out += ["Declared skips and eager fallbacks (the rest of each scenario replays):", ""]
        out += [f"- {_short(line, 300)}" for line in declared]
        out.append("")
    return out


def _html_compiled(data):
    recs, counts, declared = _compiled(data)
    if not recs:
        return ""
    e = html.escape
    rows = "".join(
        f"<li><b>{e(b)}</b>: " + ", ".join(f"{v} {e(k)} {e(o)}" for (k, o), v in sorted(c.items()))
        + "</li>" for b, c in counts.items())
    notes = "".join(f"<li>{e(line)}</li>" for line in declared)
    return ("<h2>Compiled</h2><p>Each scenario and primitive also run through "
            "<code>polygrad.compile</code> (traced, then replayed) and compared with its eager "
            f"run on the same backend, values and gradients.</p><ul>{rows}</ul>"
            + (f"<p>Declared skips and eager fallbacks (the rest of each scenario "
               f"replays):</p><ul>{notes}</ul>" if notes else ""))


def _fuzz_head(fz):
    budget = (f"{fz['seconds_per_backend']:g} s per backend"
              if fz.get("seconds_per_backend") else "a fixed number of programs")
    return (f"Seed {fz['seed']}, {budget}; oracle {fz['oracle']}; closeness "
            f"{fz['tolerance']['rule']} with atol {fz['tolerance']['atol']:g}, rtol "
            f"{fz['tolerance']['rtol']:g}; op families: {', '.join(fz['families'])}. "
            + ("Each program also runs compiled (`polygrad.compile`, traced then replayed), "
               "compared with its eager run (a `compiled` disagreement); a program the "
               "compiler runs eagerly, with a warning, counts as a fallback. "
               if fz.get("compiled") else "")
            + "A program whose answer the last bits of an intermediate value decide (a tie "
            "a sum taken in another order makes or breaks, a zero's sign; torch, run on the "
            "backend's arguments of that step, answers otherwise too), or whose gradient "
            "torch's own moves beyond the tolerance when the inputs move by 4 ulps and its "
            "values do not, counts as decided by rounding. "
            "Each disagreement is shrunk to a minimal program, printed as a script that "
            "runs it on polygrad; the same lines under `import torch` are the oracle.")


def _md_fuzz(fz):
    compiled = bool(fz.get("compiled"))
    out = ["## Differential fuzzing", "", _fuzz_head(fz), "",
           "| backend | programs | rejected by torch | decided by rounding | disagreements "
           "| seconds |" + (" compiled fallbacks |" if compiled else ""),
           "|---|---|---|---|---|---|" + ("---|" if compiled else "")]
    for r in fz["backends"]:
        n = len(r["failures"])
        out.append(f"| {r['backend']} | {r['programs']} | {r['rejected']} | "
                   f"{r.get('rounding_decided', '-')} | "
                   + (f"➖ skipped: {_short(r['skipped'])}" if r.get("skipped")
                      else "✅ 0" if n == 0 else f"❌ {n}")
                   + f" | {r['duration_s']:.0f} |"
                   + (f" {r.get('compiled_fallbacks', '-')} |" if compiled else ""))
    out.append("")
    for r in fz["backends"]:
        for f in r["failures"]:
            out += [f"### {r['backend']}: {f['kind']} ({', '.join(f['ops'])})", "",
                    _short(f["message"], 600), "", "```python", f["snippet"].rstrip(), "```", ""]
    return out


# -- HTML ---------------------------------------------------------------------------------------

#: the colours of passing cells by how close tol_ratio comes to 1, in bands the legend names
#: one by one: a comfortable float32 pass (tol_ratio 0.04) is green, not the colour of 1
PASS_BANDS = ((0.1, "#93c47d", "pass, tol_ratio ≤ 0.1"),
              (0.5, "#d9ead3", "pass, 0.1 < tol_ratio ≤ 0.5"),
              (float("inf"), "#ffe599", "pass, 0.5 < tol_ratio ≤ 1 (close to failing)"))
STATE_COLOURS = {"fail": "#e06666", "error": "#e06666", "xpass": "#e06666",
                 "xpass-unsupported": "#e06666", "xfail": "#f6b26b", "unsupported": "#b4a7d6",
                 "skip": "#eeeeee", "none": "#ffffff"}


def _colour(state, ratio):
    if state != "pass":
        return STATE_COLOURS[state]
    ratio = 0.0 if ratio is None else ratio
    return next(colour for bound, colour, _ in PASS_BANDS if ratio <= bound)


def _html_cell(records):
    state, ratio, worst = _cell_state(records)
    if state == "none":
        return '<td class="c"></td>'
    label = {"pass": "✓", "skip": "–", "unsupported": "unsupported", "xfail": "xfail"}.get(
        state, "✗")
    if state == "pass" and ratio is not None:
        label = f"✓ {ratio:.0e}"
    elif label == "✗":
        label = f"✗ {worst['check']}"
    tip = "; ".join(f"{r['check']}: {r['outcome']}" + (
        f" tol_ratio {r['tol_ratio']:.2e}" if r["tol_ratio"] is not None else "")
        + (f" ({r['reason']})" if r["reason"] else "") for r in records)
    return (f'<td class="c" style="background:{_colour(state, ratio)}" '
            f'title="{html.escape(tip[:1500])}">{html.escape(label)}</td>')


def _ratio(x):
    return "-" if x is None else f"{x:.2e}"


def _html_fuzz(fz):
    e = html.escape
    rows = "".join(
        f"<tr><th class=\"r\">{e(r['backend'])}</th><td>{r['programs']}</td>"
        f"<td>{r['rejected']}</td><td>{r.get('rounding_decided', '-')}</td>"
        f"<td style=\"background:"
        + (f"{STATE_COLOURS['skip']}\">skipped: {e(r['skipped'])}" if r.get("skipped") else
           f"{STATE_COLOURS['fail']}\">{len(r['failures'])}" if r["failures"] else
           f"{PASS_BANDS[0][1]}\">0")
        + f"</td><td>{r['duration_s']:.0f}</td></tr>" for r in fz["backends"])
    cases = "".join(
        f"<h3>{e(r['backend'])}: {e(f['kind'])} ({e(', '.join(f['ops']))})</h3>"
        f"<p>{e(f['message'])}</p><pre>{e(f['snippet'])}</pre>"
        for r in fz["backends"] for f in r["failures"])
    return ("<h2>Differential fuzzing</h2>"
            f"<p>{e(_fuzz_head(fz)).replace('`import torch`', '<code>import torch</code>')}"
            "</p><div class=\"scroll\"><table><tr><th>backend</th>"
            "<th>programs</th><th>rejected by torch</th><th>decided by rounding</th>"
            "<th>disagreements</th><th>seconds</th>"
            f"</tr>{rows}</table></div>{cases}")


def render_html(data):
    """A single static page (no external resources) colouring the matrix by tol_ratio."""
    cols = _columns(data)
    by = _group(data)
    titles, scen, ops, fused, plugin = _case_rows(data)
    e = html.escape
    # two short header lines instead of one long "backend/device/dtype"
    head = "<tr><th class=\"r\">case</th>" + "".join(
        f"<th>{e(b)}<br><small>{e(dev)} {e(dt)}</small></th>" for b, dev, dt in cols) + "</tr>"

    def table(cases, with_titles):
        rows = []
        for c in cases:
            name = f"{c} {titles.get(c, '')}" if with_titles else c
            rows.append(f"<tr><th class=\"r\" title=\"{e(name)}\">{e(name)}</th>"
                        + "".join(_html_cell(by.get((c, *col), [])) for col in cols) + "</tr>")
        # a wide matrix scrolls inside its box; the case column stays in view (sticky)
        return f'<div class="scroll"><table class="m">{head}{"".join(rows)}</table></div>'

    summary = "".join(
        f"<tr><th class=\"r\">{e(n)}</th>"
        + "".join(f"<td>{s['counts'][o]}</td>" for o in OUTCOMES)
        + f"<td>{_ratio(s['worst_tol_ratio'])}</td></tr>" for n, s in data["summary"].items())
    bad = [r for r in data["results"] if r["outcome"] in FAILING][:200]
    fails = "".join(f"<li><code>{e(r['id'])}</code> <b>{e(r['outcome'])}</b>: "
                    f"{e(r['reason'][:400])}</li>" for r in bad)
    backends = "".join(f"<li><b>{e(b['name'])}</b>: {e(b['status'])}; devices "
                       f"{e(', '.join(b['devices']) or '-')}; "
                       f"{e(', '.join(f'{k} {v}' for k, v in b['info'].items()))}"
                       f"{'; ' + e(LAZY) if b.get('lazy') else ''}</li>"
                       for b in data["backends"])
    style = ("body{font-family:sans-serif;margin:1.5em;color:#222;overflow-wrap:anywhere}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}th.r{text-align:left;font-weight:"
             "normal;white-space:nowrap;max-width:16em;overflow:hidden;text-overflow:ellipsis}"
             ".scroll{max-width:100%;overflow-x:auto}.scroll table{margin:0}"
             "table.m th{white-space:nowrap;overflow-wrap:normal}"
             "table.m th.r{position:sticky;left:0;background:#fff;z-index:1}"
             "td.c{text-align:center;white-space:nowrap;overflow-wrap:normal}"
             "pre{white-space:pre-wrap;background:#f6f6f6;padding:.6em;font-size:12px}"
             ".legend span{display:inline-block;padding:2px 8px;margin:0 6px 4px 0}")
    swatches = [(colour, label) for _, colour, label in PASS_BANDS] + [
        (STATE_COLOURS["fail"], "fail / error / xpass"), (STATE_COLOURS["xfail"], "xfail"),
        (STATE_COLOURS["unsupported"], "unsupported"), (STATE_COLOURS["skip"], "skip")]
    legend = '<p class="legend">' + "".join(
        f'<span style="background:{c}">{e(label)}</span>' for c, label in swatches) + "</p>"
    matrices = ""
    if scen:
        matrices += f"<h2>Tutorial scenarios</h2>{table(scen, True)}"
    if ops or fused:
        matrices += f"<h2>Primitives</h2>{table(ops + fused, False)}"
    if data["results"]:
        matrices += ("<h2>Summary</h2><div class=\"scroll\"><table><tr><th>backend</th>"
                     + "".join(f"<th>{o}</th>" for o in OUTCOMES)
                     + f"<th>worst tol_ratio</th></tr>{summary}</table></div>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>polygrad conformance</title><style>{style}</style></head><body>"
        f"<h1>polygrad conformance report</h1><p>{e(data['schema'])}; polygrad "
        f"{e(data['polygrad_version'])}; {e(data['started'])}; {data['duration_s']:.1f} s; "
        f"reference {e(data['reference']['backend'])} {e(data['reference']['dtype'])}; "
        f"<b>{'all checks pass' if data['ok'] else 'FAILURES'}</b></p><ul>{backends}</ul>"
        f"{legend if data['results'] else ''}{matrices}{_html_compiled(data)}"
        + (_html_fuzz(data["fuzz"]) if "fuzz" in data else "")
        + (f"<h2>Failures</h2><ul>{fails}</ul>" if fails else "")
        + "</body></html>\n")
