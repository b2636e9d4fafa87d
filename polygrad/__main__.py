"""The ``polygrad`` command: ``python -m polygrad plugins|conformance|demo``.

This module owns argument parsing for the subcommands and the plugin listing;
the conformance suite's own CLI lives in ``polygrad_conformance.cli``. ``--version``
prints polygrad's version; output cut short by a closed pipe (``| head``) ends quietly;
a ``POLYGRAD_BACKEND`` that names no usable backend is reported before any work starts.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys

import polygrad

from . import __version__
from .plugins import describe

ENV_BACKEND = "POLYGRAD_BACKEND"
# the exit status of a process killed by SIGPIPE, as `yes | head` reports it under pipefail
EXIT_BROKEN_PIPE = 128 + 13


def check_env_backend(environ=None):
    """None when ``POLYGRAD_BACKEND`` is unset, empty or names a usable backend; else the
    message saying what is wrong with it: the variable, its value, a did-you-mean and the
    backends that are usable here."""
    environ = os.environ if environ is None else environ
    name = environ.get(ENV_BACKEND, "").strip()
    if not name:
        return None
    rows = describe()
    usable = sorted({str(r["name"]) for r in rows if r["status"] == "loaded"})
    if name in usable:
        return None
    row = next((r for r in rows if r["name"] == name), None)
    fix = (f"Set {ENV_BACKEND} to one of: {', '.join(usable) or '(none)'}, or unset it; "
           f"'python -m polygrad plugins' lists every backend with its status.")
    if row is not None:
        status = row["status"]
        if status == "disabled":
            why = "is disabled (POLYGRAD_DISABLE_PLUGINS or POLYGRAD_LOAD_PLUGINS)"
        else:
            reason = row.get("reason") or ""
            why = f"is {status}" + (f" ({reason})" if reason and reason not in status
                                     and "not installed" not in reason else "")
        return f"{ENV_BACKEND}={name!r}: the backend {name!r} {why}. {fix}"
    known = sorted({str(r["name"]) for r in rows})
    close = difflib.get_close_matches(name, known, n=1) or \
        difflib.get_close_matches(name.lower(), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{ENV_BACKEND}={name!r} names no installed backend.{hint} {fix}"


def _plugins(args):
    rows = describe(load=args.load)
    if args.json is not None:
        text = json.dumps(rows, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return 0
    headers = ("name", "distribution", "version", "status", "devices", "dtypes")
    table = [[str(r["name"]), r["distribution"], r["version"], r["status"],
              ",".join(r["devices"]) or "-", ",".join(r["dtypes"]) or "-"] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0


def _demo(args):
    """The tutorial's sin chain (YT-1) on every usable backend."""
    names = args.backend or polygrad.backends()
    ok = True
    for name in names:
        a = polygrad.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True, backend=name)
        out = (2 * polygrad.sin(a) + 1).sum()
        out.backward()
        expected = 2 * polygrad.cos(a.detach())
        err = float((a.grad - expected).abs().max())
        ok &= err < 1e-5
        print(f"{name:>8}: a.grad == 2cos(a)  max error {err:.2e}  {'ok' if err < 1e-5 else 'FAIL'}")
    return 0 if ok else 1


def _conformance(argv):
    try:
        from polygrad_conformance.cli import main as conformance_main
    except ImportError as exc:
        print(f"the conformance suite is not available: {exc}", file=sys.stderr)
        return 2
    return conformance_main(argv)


def _env_backend_error(command):
    """Print what is wrong with POLYGRAD_BACKEND; True when ``command`` must stop for it."""
    msg = check_env_backend()
    if msg is None:
        return False
    if command == "plugins":      # the listing is how one finds the right name: warn only
        print(f"polygrad: warning: {msg}", file=sys.stderr)
        return False
    print(f"polygrad {command}: error: {msg}", file=sys.stderr)
    return True


def _main(argv):
    if argv and argv[0] == "conformance":
        if _env_backend_error("conformance"):
            return 2
        return _conformance(argv[1:])
    parser = argparse.ArgumentParser(prog="polygrad", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"polygrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list backend plugins and their status")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="print JSON instead of a table (to PATH when given; - is stdout)")
    p.add_argument("--load", action="store_true", help="also load backends for version info")
    d = sub.add_parser("demo", help="run the tutorial's sin chain on every backend")
    d.add_argument("--backend", action="append", help="backend name (repeatable)")
    sub.add_parser("conformance", help="run the conformance suite (see 'conformance --help')")
    args = parser.parse_args(argv)
    if _env_backend_error(args.command):
        return 2
    return {"plugins": _plugins, "demo": _demo}[args.command](args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            rc = _main(argv)
        finally:                    # also after argparse's exit (--help, --version):
            sys.stdout.flush()      # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, and keep the interpreter's own
        # final flush from reporting the same broken pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return rc


if __name__ == "__main__":
    sys.exit(main())
