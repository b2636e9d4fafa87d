"""``python -m polygrad conformance`` (and ``polygrad conformance``): run the suite from a shell.

Options: ``--backend NAME`` (repeatable; default every installed backend), ``--device``,
``--dtype`` (repeatable), ``--case ID`` (repeatable), ``--json/--markdown/--html PATH``.
It shows a progress bar while it runs (rich, when installed), prints the Markdown matrix,
appends it to ``$GITHUB_STEP_SUMMARY`` when that is set, and exits 0 only when nothing
failed. This module owns argument parsing and output; the checks live in ``runner``.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser():
    p = argparse.ArgumentParser(
        prog="polygrad conformance",
        description="Run polygrad's conformance suite: every tutorial scenario and every "
                    "primitive on each backend, gradients compared.")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help="backend to test (repeatable; default: every installed backend)")
    p.add_argument("--device", action="append", metavar="DEVICE",
                   help="device such as cpu or cuda:0 (repeatable; default: every device)")
    p.add_argument("--dtype", action="append", choices=("float32", "float64"),
                   help="dtype (repeatable; default: float32 and float64)")
    p.add_argument("--case", action="append", metavar="ID",
                   help="only this case, e.g. QS-1 or op:sin (repeatable)")
    p.add_argument("--json", metavar="PATH", help="write the JSON report here")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown report here")
    p.add_argument("--html", metavar="PATH", help="write the HTML report here")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def _progress(total):
    """A rich progress bar when rich is installed and stderr is a terminal, else dots."""
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    except ImportError:
        return None, lambda done, n, rec: None
    bar = Progress(TextColumn("[bold]conformance"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[failed]} failing  {task.fields[last]}"),
                   transient=True, console=_console())
    task = bar.add_task("run", total=total, failed=0, last="")
    failed = [0]

    def update(done, n, rec):
        if rec["outcome"] in ("fail", "error", "xpass", "xpass-unsupported"):
            failed[0] += 1
        bar.update(task, completed=done, failed=failed[0], last=rec["id"])
    return bar, update


def _console():
    from rich.console import Console
    return Console(stderr=True)


def main(argv=None):
    """Entry point; returns the exit status (0: nothing failed, 1: failures, 2: bad usage)."""
    args = _parser().parse_args(argv)
    import time

    from polygrad.errors import UnknownBackendError

    from .report import Report, build
    from .runner import Session, execute
    started = time.time()
    try:
        session = Session(args.backend, devices=args.device, dtypes=args.dtype, cases=args.case)
    except (UnknownBackendError, ValueError) as exc:
        print(f"polygrad conformance: {exc}", file=sys.stderr)
        return 2
    checks = session.checks()
    bar, update = _progress(len(checks))
    records = []
    if bar is not None:
        bar.start()
    try:
        for i, check in enumerate(checks):
            records.append(execute(check))
            update(i + 1, len(checks), records[-1])
    finally:
        if bar is not None:
            bar.stop()
    names = [b.name for b in session.backends]
    command = "polygrad conformance " + " ".join(argv if argv is not None else sys.argv[1:])
    report = Report(build(names, records, started=started, duration_s=time.time() - started,
                          command=command.strip()))
    for path, write in ((args.json, report.write_json), (args.markdown, report.write_markdown),
                        (args.html, report.write_html)):
        if path:
            write(path)
    md = report.markdown()
    if not args.quiet:
        print(md)
    else:
        print(repr(report))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(md + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
