"""``polygrad.conformance``: the conformance suite's Python front end, re-exported lazily.

The suite itself lives in the ``polygrad_conformance`` package (the repository's
conformance/ folder); this module only makes ``polygrad.conformance.run("numpy")`` work.
"""

from polygrad_conformance import OpCase, Report, register_case, run

__all__ = ["run", "Report", "OpCase", "register_case"]
