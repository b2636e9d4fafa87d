"""polygrad's conformance suite (installed as ``polygrad_conformance``): every tutorial
scenario of SCENARIOS.md (shipped beside this file) and every primitive, on every requested
backend, compared with a float64 reference, finite differences, torch.autograd and the
other backends.

Three front ends share one engine (``runner``): the CLI (``python -m polygrad conformance``),
the pytest plugin (``pytest --pyargs polygrad_conformance --polygrad-backend=NAME``) and
``run()`` below. Importing this package imports polygrad but no array library.
"""

from __future__ import annotations

import time

__all__ = ["run", "Report", "OpCase", "register_case", "SCENARIO_IDS"]

# Lazy: pytest auto-loads .pytest_plugin in every run, which imports this package; it
# must not pull numpy or polygrad in along with it.
_LAZY = {"Report": ".report", "OpCase": ".op_table", "register_case": ".op_table",
         "SCENARIO_IDS": ".scenarios"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polygrad_conformance' has no attribute {name!r}")


def run(backends=None, *, devices=None, dtypes=None, cases=None, progress=None,
        compiled=False):
    """Run the suite on ``backends`` (a name, a list, or None for every installed one).
    ``compiled``: also a ``compiled`` check per scenario and primitive (polygrad.compile
    against the eager run).

    ``progress(done, total, record)`` is called after each check.

    >>> import polygrad_conformance
    >>> polygrad_conformance.run("numpy", cases=["BZ-1"], dtypes=["float64"]).ok
    True
    """
    from .report import Report, build
    from .runner import Session, execute
    if isinstance(backends, str):
        backends = [backends]
    started = time.time()
    session = Session(backends, devices=devices, dtypes=dtypes, cases=cases, compiled=compiled)
    checks = session.checks()
    records = []
    for i, check in enumerate(checks):
        records.append(execute(check))
        if progress is not None:
            progress(i + 1, len(checks), records[-1])
    names = [b.name for b in session.backends]
    return Report(build(names, records, started=started, duration_s=time.time() - started,
                        command=f"polygrad_conformance.run({names!r})"))
