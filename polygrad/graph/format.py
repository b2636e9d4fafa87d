"""Printing tensors the way torch 2.13 prints them: ``tensor([0.0000, 0.2618], requires_grad=True)``.

A port of torch's ``_tensor_str``: one formatter per tensor (integer, fixed or scientific
notation, chosen from the non-zero finite values), large tensors summarised with ``...``
(``set_printoptions(threshold=, edgeitems=)``), lines wrapped at ``linewidth``. It reads the
host copy (``Backend.to_numpy``) through slicing, ``reshape``, ``item`` and ``tolist`` only,
so it needs no array library of its own. The suffixes follow torch's, plus
``backend='torch'`` where the tensor's backend is not the default one (as torch shows
``device='cuda:0'``). This module owns the print options; ``polygrad.set_printoptions``
sets them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

from ..base import dtypes as _dtypes
from ..plugins.defaults import default_backend, default_device, pick_backend

__all__ = ["format_tensor", "set_printoptions", "get_printoptions", "printoptions"]


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrintOptions()
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, math.inf, 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Set how tensors print, as ``torch.set_printoptions`` (process-wide).

    >>> import polygrad
    >>> polygrad.set_printoptions(threshold=5)
    >>> polygrad.arange(10)
    tensor([0, 1, 2,  ..., 7, 8, 9])
    >>> polygrad.set_printoptions(profile="default")
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"unknown print profile {profile!r}; use one of {list(_PROFILES)}")
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = _PROFILES[profile]
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    """The current print options, as keyword arguments for ``set_printoptions``."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs):
    """Change the print options inside the block only."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """torch's ``_Formatter``: one width and notation for every value of a tensor."""

    def __init__(self, values, floating):
        self.floating, self.int_mode, self.sci_mode, self.max_width = floating, True, False, 1
        p = PRINT_OPTS.precision
        if not floating:
            self.max_width = max([1] + [len(f"{v}") for v in values])
            return
        finite = [v for v in values if math.isfinite(v) and v != 0]
        if not finite:
            return
        lo, hi = min(abs(v) for v in finite), max(abs(v) for v in finite)
        self.int_mode = all(v == math.ceil(v) for v in finite)
        self.sci_mode = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
                         if PRINT_OPTS.sci_mode is None else PRINT_OPTS.sci_mode)
        if self.sci_mode:
            widths = [len(f"{v:.{p}e}") for v in finite]
        elif self.int_mode:
            widths = [len(f"{v:.0f}") + 1 for v in finite]
        else:
            widths = [len(f"{v:.{p}f}") for v in finite]
        self.max_width = max(widths)

    def format(self, v):
        p = PRINT_OPTS.precision
        if not self.floating:
            s = f"{v}"
        elif self.sci_mode:
            s = f"{v:{self.max_width}.{p}e}"
        elif self.int_mode:
            s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            s = f"{v:.{p}f}"
        return s.rjust(self.max_width)


def _summarized(host, summarize):
    """The values a formatter looks at: all of them, or only the printed edges."""
    e = PRINT_OPTS.edgeitems
    if not summarize or host.ndim == 0:
        return host.reshape(-1).tolist()
    if host.shape[0] > 2 * e:
        parts = [host[i] for i in range(e)] + [host[i] for i in range(len(host) - e, len(host))]
    else:
        parts = [host[i] for i in range(host.shape[0])]
    if host.ndim == 1:
        return [p.item() for p in parts]
    if not e:
        return []
    return [v for p in parts for v in _summarized(p, summarize)]


def _value(v, fmts):
    if len(fmts) == 1:
        return fmts[0].format(v)
    real, imag = fmts[0].format(v.real), (fmts[1].format(v.imag) + "j").lstrip()
    return real + imag if imag[0] in "+-" else real + "+" + imag


def _vector(host, indent, summarize, fmts):
    width = fmts[0].max_width + 2 + (fmts[1].max_width + 1 if len(fmts) == 2 else 0)
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / width))
    e = PRINT_OPTS.edgeitems
    if summarize and not e:
        data = ["..."]
    elif summarize and host.shape[0] > 2 * e:
        data = ([_value(v, fmts) for v in host[:e].tolist()] + [" ..."] +
                [_value(v, fmts) for v in host[-e:].tolist()])
    else:
        data = [_value(v, fmts) for v in host.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(host, indent, summarize, fmts):
    if host.ndim == 0:
        return _value(host.item(), fmts)
    if host.ndim == 1:
        return _vector(host, indent, summarize, fmts)
    e, n = PRINT_OPTS.edgeitems, host.shape[0]
    if summarize and n > 2 * e:
        rows = ([_nested(host[i], indent + 1, summarize, fmts) for i in range(e)] + ["..."] +
                [_nested(host[i], indent + 1, summarize, fmts) for i in range(n - e, n)])
    else:
        rows = [_nested(host[i], indent + 1, summarize, fmts) for i in range(n)]
    return "[" + ("," + "\n" * (host.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _body(host, dt, indent):
    numel = math.prod(host.shape)
    summarize = numel > PRINT_OPTS.threshold
    values = _summarized(host, summarize)
    if dt.is_complex:
        fmts = [_Formatter([v.real for v in values], True),
                _Formatter([v.imag for v in values], True)]
    else:
        fmts = [_Formatter(values, dt.is_floating_point)]
    return _nested(host, indent, summarize, fmts)


def _with_suffixes(text, suffixes, indent):
    out = [text]
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > PRINT_OPTS.linewidth:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"


def format_tensor(t):
    prefix = "tensor("
    indent = len(prefix)
    backend, dt = t._backend, t.dtype
    suffixes = []
    # where new tensors go: the default backend, or the one set_default_device's device picks
    home, home_device = default_backend(), default_device()
    if home_device is not None:
        home = pick_backend(home, home_device)
    if backend is not home:
        suffixes.append(f"backend='{backend.name}'")
    dev = t.device
    if dev.type != (home_device or "cpu").split(":")[0]:
        suffixes.append(f"device='{dev}'")
    default = _dtypes.get_default_dtype()
    if backend.lazy:
        body = f"<lazy {backend.name} array, shape={tuple(t.shape)}>"
        if dt is not default:
            suffixes.append(f"dtype=polygrad.{dt.name}")
    elif t.numel() == 0:
        body = "[]"
        if t.ndim != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        if dt is not default:              # no values to tell an int64 tensor by
            suffixes.append(f"dtype=polygrad.{dt.name}")
    else:
        try:
            body = _body(backend.to_numpy(t._st.array), dt, indent)
        except Exception as exc:  # noqa: BLE001 - printing must never fail
            body = f"<unprintable: {exc}>"
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(t.shape)}")
        if dt not in (default, _dtypes.default_complex(), _dtypes.int64, _dtypes.bool):
            suffixes.append(f"dtype=polygrad.{dt.name}")
    if t._node is not None:
        suffixes.append(f"grad_fn=<{type(t._node).__name__}>" if t.grad_fn is not None
                        else "requires_grad=True")
    if t._tangent is not None:
        suffixes.append(f"tangent={t._tangent}")
    return _with_suffixes(prefix + body, suffixes, indent)
