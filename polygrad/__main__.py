"""The ``polygrad`` command: ``python -m polygrad plugins|conformance|demo``.

This module owns argument parsing for the subcommands and the plugin listing;
the conformance suite's own CLI lives in ``polygrad_conformance.cli``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _plugins(args):
    from .plugins import describe
    rows = describe(load=args.load)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
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
    import math

    import polygrad
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "conformance":
        return _conformance(argv[1:])
    parser = argparse.ArgumentParser(prog="polygrad", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list backend plugins and their status")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--load", action="store_true", help="also load backends for version info")
    d = sub.add_parser("demo", help="run the tutorial's sin chain on every backend")
    d.add_argument("--backend", action="append", help="backend name (repeatable)")
    sub.add_parser("conformance", help="run the conformance suite (see 'conformance --help')")
    args = parser.parse_args(argv)
    return {"plugins": _plugins, "demo": _demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
