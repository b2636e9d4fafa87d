"""Printing tensors the way torch prints them: ``tensor([0.0000, 0.2618], requires_grad=True)``.

Works from the host copy's ``tolist()``, so it needs no array library of its own.
"""

import math

_LINE = 80


def _fmt_numbers(values, is_float):
    finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    if not is_float:
        strs = [str(v) for v in values]
    elif finite and all(v == int(v) for v in finite) and max(finite, default=0) < 1e8:
        strs = [_special(v) or f"{v:.0f}." for v in values]
    else:
        nonzero = [v for v in finite if v != 0]
        sci = bool(nonzero) and (max(nonzero) / min(nonzero) > 1000.0 or max(nonzero) > 1e8
                                 or min(nonzero) < 1e-4)
        strs = [_special(v) or (f"{v:.4e}" if sci else f"{v:.4f}") for v in values]
    width = max((len(s) for s in strs), default=0)
    return [s.rjust(width) for s in strs]


def _special(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return None


def _flatten(x):
    if isinstance(x, list):
        out = []
        for item in x:
            out.extend(_flatten(item))
        return out
    return [x]


def _nest(x, strs, indent, it):
    if not isinstance(x, list):
        return next(it)
    if not x:
        return "[]"
    if not isinstance(x[0], list):
        items = [next(it) for _ in x]
        lines, line = [], ""
        for i, s in enumerate(items):
            piece = s + ("," if i < len(items) - 1 else "")
            if line and len(line) + 1 + len(piece) > _LINE - indent:
                lines.append(line)
                line = piece
            else:
                line = piece if not line else line + " " + piece
        lines.append(line)
        return "[" + ("\n" + " " * (indent + 1)).join(lines) + "]"
    inner = [_nest(sub, strs, indent + 1, it) for sub in x]
    sep = ",\n" + ("\n" if isinstance(x[0][0], list) else "") + " " * (indent + 1)
    return "[" + sep.join(inner) + "]"


def format_tensor(t):
    backend = t._backend
    suffix = []
    dt = t.dtype
    if backend.lazy:
        body = f"<lazy {backend.name} array, shape={t.shape}>"
    else:
        try:
            host = backend.to_numpy(t._st.array)
            data = host.tolist()
        except Exception as exc:  # noqa: BLE001 - printing must never fail
            data, body = None, f"<unprintable: {exc}>"
        if data is not None:
            flat = _flatten(data)
            is_float = dt.is_floating_point
            if dt.is_complex:
                strs = [str(v) for v in flat]
            elif dt.name == "bool":
                strs = [str(v) for v in flat]
            else:
                strs = _fmt_numbers(flat, is_float)
            body = _nest(data, strs, len("tensor("), iter(strs))
            if not flat and t.ndim > 0:
                suffix.append(f"size={t.shape}")
    dev = t.device
    if dev.type != "cpu":
        suffix.append(f"device='{dev}'")
    if dt.name not in ("float32", "int64", "bool") or (dt.name == "int64" and False):
        suffix.append(f"dtype=polygrad.{dt.name}")
    node = t._node
    if node is not None:
        if t.grad_fn is not None:
            suffix.append(f"grad_fn=<{type(node).__name__}>")
        else:
            suffix.append("requires_grad=True")
    return "tensor(" + ", ".join([body] + suffix) + ")"
