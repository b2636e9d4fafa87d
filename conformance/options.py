"""The suite's options, declared once: the CLI (``--backend``) and the pytest plugin
(``--polygrad-backend``) both read this table, so names, choices and help cannot drift.

This module owns the table and how it becomes argparse arguments and pytest options; it
imports nothing of polygrad (the pytest plugin reads it in every pytest run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Option", "OPTIONS", "add_cli_arguments", "add_pytest_options", "option_values"]


@dataclass(frozen=True)
class Option:
    """One option: ``--NAME`` on the CLI, ``--polygrad-NAME`` under pytest."""

    name: str
    help: str
    kwargs: dict = field(default_factory=dict)
    cli: bool = True
    pytest: bool = True

    @property
    def dest(self):
        return self.name.replace("-", "_")


_REPEAT = {"action": "append"}

OPTIONS = (
    Option("backend", "backend to test (repeatable; default: every installed backend)",
           {**_REPEAT, "metavar": "NAME"}),
    Option("device", "device such as cpu or cuda:0 (repeatable; default: every device of "
           "each backend)", {**_REPEAT, "metavar": "DEVICE"}),
    Option("dtype", "dtype (repeatable; default: float32 and float64)",
           {**_REPEAT, "choices": ("float32", "float64")}),
    Option("case", "only this case, e.g. QS-1, op:sin, fused:softmax or plugin:import "
           "(repeatable)", {**_REPEAT, "metavar": "ID"}),
    Option("compiled", "also run every scenario and primitive case through polygrad.compile "
           "(traced, then replayed) and compare it with the eager run: a compiled check each; "
           "with --fuzz, each program is also run compiled", {"action": "store_true"}),
    Option("allow-empty", "exit 0 even when nothing was tested: a requested backend missing "
           "or unavailable, a --case that matches nothing, a backend whose checks all skipped",
           {"action": "store_true"}),
    Option("fuzz", "instead of the checks, run the differential fuzzer for SECONDS on each "
           "backend: random torch-style programs compared with real torch (needs torch)",
           {"type": float, "metavar": "SECONDS"}),
    Option("seed", "the fuzzer's seed: the same seed draws the same programs (default 0)",
           {"type": int, "default": 0, "metavar": "N"}),
    Option("json", "write the JSON report here (- for stdout)", {"metavar": "PATH"}),
    Option("markdown", "write the Markdown report here (- for stdout)", {"metavar": "PATH"}),
    Option("html", "write the HTML report here (- for stdout)", {"metavar": "PATH"}),
    Option("readme", "replace the matrix between the conformance markers of this README",
           {"metavar": "PATH"}, pytest=False),
    Option("quiet", "print only the summary", {"action": "store_true"}, pytest=False),
)


def add_cli_arguments(parser):
    """Add every CLI option of the table to an ``argparse.ArgumentParser``."""
    for opt in OPTIONS:
        if opt.cli:
            parser.add_argument(f"--{opt.name}", dest=opt.dest, help=opt.help, **opt.kwargs)


def add_pytest_options(group):
    """Add every pytest option of the table to a pytest option group."""
    for opt in OPTIONS:
        if opt.pytest:
            group.addoption(f"--polygrad-{opt.name}", dest=f"polygrad_{opt.dest}",
                            help=opt.help, **opt.kwargs)


def option_values(config):
    """The pytest options' values under the CLI's names: ``{"backend": [...], ...}``."""
    return {opt.dest: config.getoption(f"polygrad_{opt.dest}", None)
            for opt in OPTIONS if opt.pytest}
