"""``polygrad.compile``: trace a function once per guard key, replay forward and backward as
raw backend calls (``compiled``), from a record of the primitives it applied (``tracer``)
turned into straight-line code (``program``). The guide is docs/compile.md.
"""

from .compiled import Compiled, CompileStats, CompileWarning, UntraceableError, compile

__all__ = ["compile", "Compiled", "CompileStats", "CompileWarning", "UntraceableError"]
