"""Comparison helpers and tolerances: how a check decides pass or fail, and what it measures.

This module owns the tolerance table (per check kind and dtype, recorded in every
report) and the ``Recorder`` a check writes its comparisons into. It does not know
cases, backends or front ends.

The closeness rule is numpy's ``allclose``: ``|got - ref| <= atol + rtol * |ref|``
elementwise, summarised as ``tol_ratio = max(|got - ref| / (atol + rtol * |ref|))``,
so a check passes when ``tol_ratio <= 1``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import polygrad

__all__ = ["TOLERANCES", "FD", "tolerance", "Recorder", "CheckFailed", "compare", "to_host"]

#: per check kind and dtype; ``cross`` compares two backends that may each be ``tol``
#: away from the reference, hence twice the tolerance (written here, never computed elsewhere)
TOLERANCES = {
    "float32": {"atol": 1e-5, "rtol": 1e-4},
    "float64": {"atol": 1e-9, "rtol": 1e-7},
    "cross-float32": {"atol": 2e-5, "rtol": 2e-4},
    "cross-float64": {"atol": 2e-9, "rtol": 2e-7},
    # the closed forms of the tutorials and the dot-product tests sum many terms
    "closed-float32": {"atol": 1e-4, "rtol": 1e-4},
    "closed-float64": {"atol": 1e-9, "rtol": 1e-7},
}

#: central finite differences, gradcheck's float64 defaults
FD = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "scheme": "central", "dtype": "float64"}


def tolerance(check, dtype):
    """The ``{"atol", "rtol"}`` a check uses for a dtype.

    >>> tolerance("vjp", "float32")
    {'atol': 1e-05, 'rtol': 0.0001}
    """
    if check == "fd":
        return {"atol": FD["atol"], "rtol": FD["rtol"]}
    if check == "cross":
        return dict(TOLERANCES[f"cross-{dtype}"])
    if check in ("tutorial", "jvp"):
        return dict(TOLERANCES[f"closed-{dtype}"])
    return dict(TOLERANCES[dtype])


class CheckFailed(AssertionError):
    """A check's comparison or behaviour assertion failed; the message says which and by how much."""


def to_host(value):
    """A float64-or-native numpy copy of a Tensor, raw array, number or sequence of them."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):             # nonzero, unique_* and their namedtuples
        return [to_host(v) for v in value]
    if isinstance(value, polygrad.Tensor):         # force: whether or not it requires grad
        return np.asarray(value.numpy(force=True))
    mod = type(value).__module__.split(".")[0]
    if mod == "torch":
        return value.detach().numpy(force=True).copy()   # force: conj/neg views, ZeroTensors
    if hasattr(value, "shape") and mod not in ("numpy",):
        owner = polygrad.plugins.owner_of(value)
        if owner is not None:
            return np.asarray(owner.to_numpy(value))
    return np.asarray(value)


def compare(got, ref, atol, rtol):
    """Metrics of ``got`` against ``ref``: max_abs_err, max_rel_err, tol_ratio, worst index.

    >>> compare(np.array([1.0, 2.0]), np.array([1.0, 2.1]), 0.0, 0.1)["worst"]["index"]
    [1]
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return {"max_abs_err": math.inf, "max_rel_err": math.inf, "tol_ratio": math.inf,
                "worst": {"index": [], "got": None, "ref": None},
                "message": f"shape {got.shape} != reference shape {ref.shape}"}
    if got.dtype == bool or ref.dtype == bool or got.dtype.kind in "iu" and ref.dtype.kind in "iu":
        bad = got != ref
        n = int(np.count_nonzero(bad))
        idx = [int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)] if n else []
        worst = {"index": idx, "got": _scalar(got, idx), "ref": _scalar(ref, idx)}
        return {"max_abs_err": float(n), "max_rel_err": float(n),
                "tol_ratio": math.inf if n else 0.0, "worst": worst}
    # complex values compare as complex numbers: |got - ref| over |ref|, never the real part
    wide = np.complex128 if got.dtype.kind == "c" or ref.dtype.kind == "c" else np.float64
    g = got.astype(wide)
    r = ref.astype(wide)
    if g.size == 0:
        return {"max_abs_err": 0.0, "max_rel_err": 0.0, "tol_ratio": 0.0,
                "worst": {"index": [], "got": None, "ref": None}}
    same_nan = np.isnan(g) & np.isnan(r)
    same_inf = np.isinf(g) & (g == r)
    diff = np.where(same_nan | same_inf, 0.0, np.abs(g - r))
    diff = np.where(np.isnan(diff), np.inf, diff)
    bound = atol + rtol * np.abs(np.where(np.isfinite(r), r, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / bound)
        rel = diff / np.maximum(np.abs(r), np.finfo(np.float64).tiny)
    flat = int(np.argmax(ratio))
    idx = [int(i) for i in np.unravel_index(flat, ratio.shape)]
    return {"max_abs_err": float(diff.max()), "max_rel_err": float(np.nan_to_num(rel).max()),
            "tol_ratio": float(ratio.max()),
            "worst": {"index": idx, "got": _scalar(g, idx), "ref": _scalar(r, idx)}}


def _scalar(a, idx):
    if a.ndim and len(idx) != a.ndim:
        return None
    v = a[tuple(idx)] if a.ndim else a[()]
    v = v.item()
    if isinstance(v, complex) or isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class Recorder:
    """What one check found: comparisons (with metrics) and failed behaviour assertions.

    >>> rec = Recorder(atol=1e-9, rtol=1e-7)
    >>> rec.close("x", np.ones(2), np.ones(2)); rec.ok
    True
    """

    def __init__(self, atol, rtol):
        self.atol = atol
        self.rtol = rtol
        self.metrics = []        # one dict per compared tensor
        self.failures = []       # messages of failed assertions

    # -- comparisons ------------------------------------------------------------------
    def close(self, name, got, ref, atol=None, rtol=None):
        """Compare ``got`` with ``ref`` under this check's tolerance (or an explicit one)."""
        got, ref = to_host(got), to_host(ref)
        if isinstance(ref, list) or isinstance(got, list):
            if not isinstance(got, list) or not isinstance(ref, list) or len(got) != len(ref):
                self.fail(f"{name}: got {_kind(got)}, reference {_kind(ref)}")
                return
            for i, (g, r) in enumerate(zip(got, ref)):
                self.close(f"{name}[{i}]", g, r, atol, rtol)
            return
        if got is None or ref is None:
            if got is not ref:
                self.fail(f"{name}: got {_kind(got)}, reference {_kind(ref)}")
            return
        atol = self.atol if atol is None else atol
        rtol = self.rtol if rtol is None else rtol
        m = compare(got, ref, atol, rtol)
        m["tensor"] = name
        self.metrics.append(m)
        if m["tol_ratio"] > 1.0:
            w = m["worst"]
            why = m.get("message") or (
                f"max |err| {m['max_abs_err']:.3g} at {w['index']} (got {w['got']!r}, "
                f"expected {w['ref']!r}), {m['tol_ratio']:.3g} x tolerance "
                f"(atol={atol:g}, rtol={rtol:g})")
            self.failures.append(f"{name}: {why}")

    # -- behaviour ----------------------------------------------------------------------
    def true(self, cond, message):
        """Record ``message`` as a failure unless ``cond`` holds."""
        if not cond:
            self.failures.append(message)

    def fail(self, message):
        self.failures.append(message)

    def equal(self, name, got, expected):
        """Exact equality of plain values (strings, shapes, counts)."""
        if got != expected:
            self.failures.append(f"{name}: got {got!r}, expected {expected!r}")

    def raises(self, exc_type, fragment, fn, what):
        """``fn()`` must raise ``exc_type`` whose message contains ``fragment``."""
        try:
            fn()
        except exc_type as exc:
            if fragment.lower() not in str(exc).lower():
                self.failures.append(f"{what}: {type(exc).__name__} raised but its message does "
                                     f"not mention {fragment!r}: {exc}")
            return exc
        except Exception as exc:  # noqa: BLE001 - the wrong type is the finding
            self.failures.append(f"{what}: expected {exc_type.__name__} mentioning {fragment!r}, "
                                 f"got {type(exc).__name__}: {exc}")
            return exc
        self.failures.append(f"{what}: expected {exc_type.__name__} mentioning {fragment!r}, "
                             f"nothing was raised")
        return None

    def warns(self, fragment, fn, what):
        """``fn()`` must emit a warning whose message contains ``fragment``; returns fn's value."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = fn()
        if not any(fragment in str(w.message) for w in caught):
            self.failures.append(f"{what}: expected a warning mentioning {fragment!r}, got "
                                 f"{[str(w.message) for w in caught] or 'none'}")
        return value

    # -- outcome ----------------------------------------------------------------------
    @property
    def ok(self):
        return not self.failures

    def worst(self):
        """The metric with the largest tol_ratio, or None when nothing was compared."""
        return max(self.metrics, key=lambda m: m["tol_ratio"], default=None)

    def finish(self):
        if self.failures:
            raise CheckFailed("; ".join(self.failures))


class NullRecorder(Recorder):
    """Records nothing: used when the real torch runs a scenario as the oracle."""

    def __init__(self):
        super().__init__(0.0, 0.0)

    def close(self, *a, **k):
        pass

    def true(self, *a, **k):
        pass

    def fail(self, *a, **k):
        pass

    def equal(self, *a, **k):
        pass

    def raises(self, exc_type, fragment, fn, what):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            return exc
        return None

    def warns(self, fragment, fn, what):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()


def _kind(v):
    if v is None:
        return "None"
    if isinstance(v, list):
        return f"a sequence of {len(v)}"
    return f"an array of shape {np.shape(v)}"
