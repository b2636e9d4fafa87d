"""The pytest front end, registered through the ``pytest11`` entry point ``polygrad``.

It is inert unless asked for: at import and in every run that neither passes a
``--polygrad-*`` option nor collects ``polygrad_conformance``, it only adds its options.
It imports nothing of polygrad and adds no header. When asked for, it registers
``_Active``, which parametrizes ``test_conformance`` with one test per check id
(``test_conformance[QS-1/grad-torch-cpu-float32]``), marks known failures as strict
xfail, and writes the JSON/Markdown/HTML report once, on the controller under xdist
(workers send their records through ``user_properties``). With ``--polygrad-fuzz=SECONDS``
it runs, instead of the checks, one ``test_fuzz[<backend>]`` per backend: the
differential fuzzer (``fuzz``), failing with the shrunk programs as runnable snippets.
``--polygrad-compiled`` adds a ``compiled`` check per scenario and primitive (and has the
fuzzer run each program compiled too), as the CLI's ``--compiled``.
"""

from __future__ import annotations

import json
import os

from .options import add_pytest_options, option_values

_HERE = os.path.dirname(os.path.abspath(__file__))
_KEY = "polygrad_conformance"
_FUZZ_KEY = "polygrad_fuzz"


def pytest_addoption(parser):
    add_pytest_options(parser.getgroup("polygrad", "polygrad conformance suite"))


def _wanted(config):
    if any(option_values(config).values()):
        return True
    for arg in config.args:          # the paths asked for, not option values (-k conformance)
        arg = str(arg)
        if "polygrad_conformance" in arg:
            return True
        path = os.path.abspath(arg.split("::")[0])
        if path == _HERE or path.startswith(_HERE + os.sep):
            return True
    return False


def pytest_configure(config):
    if _wanted(config):
        activate(config)._session()      # an unknown backend name is a usage error, now


def activate(config):
    """Register the active part (idempotent); the test module calls it too."""
    plugin = config.pluginmanager.get_plugin(_KEY)
    if plugin is None:
        plugin = _Active(config)
        config.pluginmanager.register(plugin, _KEY)
    return plugin


class _Active:
    def __init__(self, config):
        self.config = config
        self.records = []
        self.fuzz_runs = []
        self.fuzzing = option_values(config)["fuzz"] is not None
        self.session = None
        self.started = __import__("time").time()

    def _session(self):
        if self.session is None:
            import pytest

            from polygrad import UnknownBackendError

            from .runner import Session
            opt = option_values(self.config)
            try:
                self.session = Session(opt["backend"], devices=opt["device"],
                                       dtypes=opt["dtype"], cases=opt["case"],
                                       compiled=opt["compiled"])
            except (UnknownBackendError, ValueError) as exc:
                raise pytest.UsageError(f"polygrad conformance: {exc}") from None
        return self.session

    def pytest_report_header(self, config):
        if hasattr(config, "workerinput"):
            return None
        from polygrad.plugins import describe
        rows = [r for r in describe() if r.get("devices") is not None]
        return "polygrad conformance: " + ", ".join(
            f"{r['name']} ({r['status']})" for r in rows)

    def generate(self, metafunc):
        import pytest
        checks = [] if self.fuzzing else self._session().checks()
        params = []
        for c in checks:
            marks = ()
            if c.known is not None:
                marks = (pytest.mark.xfail(strict=True, reason=c.known.reason),)
            params.append(pytest.param(c, id=c.id, marks=marks))
        metafunc.parametrize("polygrad_check", params)

    def generate_fuzz(self, metafunc):
        names = [b.name for b in self._session().backends] if self.fuzzing else []
        metafunc.parametrize("polygrad_fuzz_backend", names, ids=names)

    def pytest_collection_modifyitems(self, config, items):
        """A run is either the checks or the fuzzer: the other test's (empty) item goes."""
        drop = "test_conformance" if self.fuzzing else "test_fuzz"
        gone = [i for i in items if getattr(i, "originalname", None) == drop
                and i.path.parent == __import__("pathlib").Path(_HERE)]
        if gone:
            config.hook.pytest_deselected(items=gone)
            items[:] = [i for i in items if i not in gone]

    def run_fuzz(self, name, item):
        """The fuzzer on one backend inside a test: fails with the shrunk programs."""
        import pytest

        from polygrad.plugins import get_backend

        from . import fuzz
        try:
            fuzz.require_torch()
        except ModuleNotFoundError as exc:   # never a pass that tested nothing
            pytest.fail(str(exc), pytrace=False)
        opt = option_values(self.config)
        reason = get_backend(name).unavailable_reason()
        if reason is None and not get_backend(name).devices():
            reason = f"backend {name!r} declares no device usable here"
        rec = (fuzz.skipped(name, opt["seed"], reason) if reason is not None else
               fuzz.fuzz(name, seconds=opt["fuzz"], seed=opt["seed"], compiled=opt["compiled"]))
        item.user_properties.append((_FUZZ_KEY, json.dumps(rec)))
        if reason is not None:
            pytest.skip(reason)
        if rec["failures"]:
            pytest.fail(f"{len(rec['failures'])} disagreement(s) with torch on {name} after "
                        f"{rec['programs']} programs (seed {rec['seed']}):\n\n" + "\n".join(
                            f["snippet"] for f in rec["failures"]), pytrace=False)

    def run(self, check, item):
        """Run one check inside a test; raise what pytest should report."""
        import pytest

        from .checks import CheckFailed
        from .runner import execute
        known, check.known = check.known, None      # pytest's strict xfail handles it
        try:
            rec = execute(check)
        finally:
            check.known = known
        outcome = rec["outcome"]
        if known is not None:
            rec["outcome"] = "xpass" if outcome == "pass" else "xfail"
        item.user_properties.append((_KEY, json.dumps(rec)))
        if outcome == "skip":
            pytest.skip(rec["reason"])
        if outcome in ("fail", "xpass-unsupported"):
            raise CheckFailed(rec["reason"])
        if outcome == "error":
            raise RuntimeError(rec["reason"])

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == _KEY:
                self.records.append(json.loads(value))
            elif key == _FUZZ_KEY:
                self.fuzz_runs.append(json.loads(value))

    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(self.config, "workerinput"):
            return
        import pytest
        opt = option_values(self.config)
        if self.fuzzing:
            ran = {r["backend"] for r in self.fuzz_runs if r["programs"]}
            self.untested = [f"backend {b.name!r} was not fuzzed" for b in
                             self._session().backends if b.name not in ran
                             and (self._session().requested or not ran)]
        else:
            self.untested = self._session().untested(self.records)
        if self.untested and not opt["allow_empty"] and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        paths = [opt["json"], opt["markdown"], opt["html"]]
        if not (self.records or self.fuzz_runs) or not any(paths):
            return
        import time

        from .report import Report, build
        names = list(dict.fromkeys(r["backend"] for r in self.records + self.fuzz_runs))
        section = None
        if self.fuzzing:
            from .fuzz import section as fuzz_section
            section = fuzz_section(self.fuzz_runs, seconds=opt["fuzz"], seed=opt["seed"],
                                   compiled=opt["compiled"])
        report = Report(build(names, self.records, started=self.started,
                              duration_s=time.time() - self.started, command="pytest",
                              fuzz=section))
        for path, write in zip(paths, (report.write_json, report.write_markdown,
                                       report.write_html)):
            if path:
                write(path)

    def pytest_terminal_summary(self, terminalreporter):
        """Skips counted by reason, and what the run did not test (which fails it)."""
        if hasattr(self.config, "workerinput"):
            return
        from collections import Counter
        skips = Counter((r["backend"], r["reason"]) for r in self.records
                        if r["outcome"] == "skip")
        untested = getattr(self, "untested", [])
        if not skips and not untested:
            return
        tr = terminalreporter
        tr.section("polygrad conformance")
        for (backend, reason), n in skips.most_common():
            tr.write_line(f"{backend}: {n} skipped: {reason}")
        allow = option_values(self.config)["allow_empty"]
        word = "tested less than asked" if allow else "nothing tested"
        for line in untested:
            tr.write_line(f"{word}: {line}", red=not allow)
        if untested and not allow:
            tr.write_line("pass --polygrad-allow-empty if that is what you mean")
