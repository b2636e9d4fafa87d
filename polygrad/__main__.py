"""The ``polygrad`` command: ``python -m polygrad plugins|conformance|demo|new-backend``.

This module owns argument parsing for the subcommands and the plugin listing;
the conformance suite's own CLI lives in ``polygrad_conformance.cli``. ``--version``
prints polygrad's version; output cut short by a closed pipe (``| head``) ends quietly;
a ``POLYGRAD_BACKEND`` that names no usable backend is reported before any work starts.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import math
import os
import re
import sys

import polygrad

from . import __version__
from .base.files import check_writable, write_atomic
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
    if args.json not in (None, "-"):
        problem = check_writable(args.json, "--json")
        if problem:
            print(f"polygrad plugins: error: {problem}", file=sys.stderr)
            return 2
    with contextlib.redirect_stdout(sys.stderr):     # what plugin code prints: not stdout
        rows = describe(load=args.load)
    if args.json is not None:
        text = json.dumps(rows, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            write_atomic(args.json, text + "\n")
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


# --- python -m polygrad new-backend NAME: a plugin package that passes the kit as written ---

_NAME_RE = r"[a-z][a-z0-9_]*"

_SCAFFOLD_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A polygrad backend plugin: {name}."
readme = "README.md"
requires-python = ">=3.10"
license = "MIT"
# polygrad's distribution is polygrad-xp (the import name is polygrad); the PyPI project
# named "polygrad" is a different library. Add your array library here.
dependencies = ["polygrad-xp"]

[project.optional-dependencies]
test = ["polygrad-xp[conformance]", "pytest>=8"]

# The one line that makes this a polygrad plugin: an entry point in the "polygrad" group.
[project.entry-points.polygrad]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

_SCAFFOLD_MODULE = '''\
"""{dist}: the polygrad backend {name!r}.

Generated by ``python -m polygrad new-backend {name}`` as a starting point: numpy's
namespace under the name {name!r}. Point ``_load`` at your array library's Array API
namespace, ``_array_types`` at its array classes, and the two moves at its host copies;
then run ``python -m polygrad conformance --backend {name}``. docs/plugins.md in polygrad's
repository describes every field of ``polygrad.Backend``.

The library is imported only inside the functions: listing plugins stays light.
"""

import polygrad


def _load():
    """The Array API namespace; called once, the first time the backend is used."""
    import numpy
    return numpy


def _array_types():
    """The array classes this backend owns (``polygrad.asarray(raw)`` picks by type)."""
    import numpy
    return (numpy.ndarray, numpy.generic)


def _to_numpy(array):
    """An explicit host copy (force lazy values, copy off a device here)."""
    import numpy
    return numpy.array(array, copy=True)


def _from_numpy(array, *, device=None):
    """The backend's array holding ``array``'s values, on ``device``."""
    import numpy
    return numpy.array(array, copy=True)


backend = polygrad.Backend(
    name={name!r},
    module="numpy",           # the array library's top-level import name
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=lambda: ("cpu",),
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float32", "float64", "complex64", "complex128"),
    device_of=lambda array: "cpu",
    unsupported={{}},          # {{"op": "why this library cannot run it"}}
    known_failures=[],        # polygrad.KnownFailure(match, reason, link): strict xfail
)


@polygrad.hookimpl
def register_backends(register):
    register(backend)
'''

_SCAFFOLD_TEST = '''\
"""The conformance kit on this backend: every tutorial scenario and a case per primitive."""

import json
import subprocess
import sys

import polygrad

NAME = {name!r}


def test_the_backend_is_registered_and_loads():
    rows = {{r["name"]: r for r in polygrad.plugins.describe()}}
    assert rows[NAME]["status"] == "loaded", rows.get(NAME)


def test_the_conformance_kit_passes(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "polygrad", "conformance", "--backend", NAME,
                           "--quiet", "--json", str(report)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = [r for r in json.loads(report.read_text())["results"] if r["backend"] == NAME]
    assert any(r["outcome"] == "pass" for r in results)
'''

_SCAFFOLD_README = '''\
# {dist}

A [polygrad](https://github.com/) backend plugin: tensors with `backend="{name}"`.
Generated by `python -m polygrad new-backend {name}`; it starts as numpy's namespace under
the name `{name}`; edit `{module}.py` to wrap your array library.

```console
$ pip install -e /path/to/polygrad        # polygrad-xp, from its checkout until it is on PyPI
$ pip install -e ".[test]"
$ python -m polygrad plugins              # {name} is listed as loaded
$ python -m polygrad conformance --backend {name}
$ python -m pytest tests
$ python -m pytest --pyargs polygrad_conformance --polygrad-backend={name} -q
```

The conformance run exits non-zero on any failure. Declare what your library cannot do in
`unsupported` and its known bugs in `known_failures`; the kit checks both declarations.
'''


def scaffold_backend(name, directory=None):
    """Write the plugin package ``polygrad-NAME`` (pyproject with the ``polygrad`` entry
    point, the Backend module, a README and a conformance test) into ``directory``
    (default ``./polygrad-NAME``); returns the directory. Raises ValueError on a bad or
    taken name or a non-empty directory."""
    if not re.fullmatch(_NAME_RE, name):
        raise ValueError(f"backend name {name!r}: use lower case letters, digits and _, "
                         f"starting with a letter ({_NAME_RE})")
    taken = {str(r["name"]) for r in describe()}
    if name in taken:
        raise ValueError(f"backend name {name!r} is taken by an installed plugin; "
                         f"'python -m polygrad plugins' lists them")
    dist = "polygrad-" + name.replace("_", "-")
    module = "polygrad_" + name
    directory = os.path.abspath(directory or dist)
    if os.path.exists(directory) and os.listdir(directory):
        raise ValueError(f"{directory} exists and is not empty")
    fields = {"name": name, "dist": dist, "module": module}
    files = {"pyproject.toml": _SCAFFOLD_PYPROJECT, f"{module}.py": _SCAFFOLD_MODULE,
             "README.md": _SCAFFOLD_README,
             os.path.join("tests", "test_conformance.py"): _SCAFFOLD_TEST}
    for rel, template in files.items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(template.format(**fields))
    return directory


def _new_backend(args):
    try:
        directory = scaffold_backend(args.name, args.dir)
    except ValueError as exc:
        print(f"polygrad new-backend: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the plugin package {directory}\n"
          f"next: pip install -e {directory} && "
          f"python -m polygrad conformance --backend {args.name}")
    return 0


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
    n = sub.add_parser("new-backend", help="write a backend plugin package to start from")
    n.add_argument("name", help="the backend's name: lower case, [a-z][a-z0-9_]*")
    n.add_argument("--dir", metavar="PATH",
                   help="the package's directory (default: ./polygrad-NAME)")
    args = parser.parse_args(argv)
    if args.command != "new-backend" and _env_backend_error(args.command):
        return 2
    return {"plugins": _plugins, "demo": _demo, "new-backend": _new_backend}[args.command](args)


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
