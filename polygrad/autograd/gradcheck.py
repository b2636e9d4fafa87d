"""``gradcheck`` and ``gradgradcheck``, with torch.autograd's signatures: a function's
analytical gradients (the backward pass) against central finite differences.

What it owns: building both jacobians, comparing them and saying which entry differs.
What it does not: the rules themselves (``polygrad.primitives``) or the engine.

Both jacobians are built and compared on the inputs' own backend with polygrad ops (a
perturbed input is ``x + eps * e_j``; an analytical row is one ``autograd.grad`` with a
one-hot cotangent; the comparison is numpy's ``allclose`` formula), so a plugin author can
point it at a new backend unchanged. Layout as torch's: one ``(input.numel(), output.numel())``
block per (output, input) pair. ``fast_mode`` compares the single number ``v^T J u`` for
random ``u`` and ``v`` instead of the whole matrix, as torch's fast mode does (from backward,
and with ``check_forward_ad`` from forward mode too).
``check_forward_ad`` also checks forward mode (one one-hot tangent per input element).
Complex inputs are not supported (torch checks them through their real and imaginary parts).
"""

from __future__ import annotations

import warnings

from .. import ops
from ..base import grad_mode
from ..graph import backward as _backward
from ..graph.creation import randn_like
from ..graph.tensor import Tensor
from . import forward_ad as fwAD

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """A gradient check failed (raised when ``raise_exception=True``)."""


def _autograd_grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
                   allow_unused=None):
    # autograd.grad itself; this module is imported by the autograd package, so not from it
    return _backward.grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                          allow_unused, False, ns=ops)


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _diff_outputs(outputs):
    return [o for o in outputs if isinstance(o, Tensor) and
            (o.dtype.is_floating_point or o.dtype.is_complex)]


def _check_inputs(inputs):
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of the them have requires_grad=True.")
    for i in diff:
        x = inputs[i]
        if x.dtype.is_complex:
            raise NotImplementedError(f"gradcheck: input {i} is complex ({x.dtype.name}); "
                                      f"polygrad's gradcheck checks real inputs only")
        if x.dtype != ops.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          f"point or complex. This check will likely fail if all the inputs are "
                          f"not of double precision floating point or complex.", stacklevel=3)
    return diff


def _flat(t, like):
    """``t`` detached, flattened, on ``like``'s backend (where every jacobian block lives)."""
    t = t.detach()
    if t._backend is not like._backend:
        t = t.to(like.backend)
    return ops.reshape(t, (-1,))


def _block(vectors, shape, like, axis=0):
    """Stack equal-length vectors into a (rows, cols) block; zeros when there are none."""
    if not vectors or 0 in shape:
        return ops.zeros(shape, dtype=like.dtype, device=like.device)
    return ops.reshape(ops.stack(vectors, axis=axis), shape)


def _basis(x, j):
    """The j-th one-hot tensor shaped (and typed, and placed) like ``x``."""
    n = x.numel()
    eye = ops.eye(n, dtype=x.dtype, device=x.device)
    return ops.reshape(eye[j], tuple(x.shape))


def _run(func, inputs, like, replace=None):
    """``func`` with inputs ``replace``d ({index: values}; the new leaf requires grad as the
    input did, since func may differentiate itself, as gradgradcheck's does), outputs flat."""
    args = list(inputs)
    for i, values in (replace or {}).items():
        args[i] = values.detach().requires_grad_(inputs[i].requires_grad)
    return [_flat(o, like) for o in _diff_outputs(_as_tuple(func(*args)))]


def _numerical(func, inputs, diff, sizes, eps, like):
    """jac[o][k]: (inputs[diff[k]].numel(), outputs[o].numel()) by central differences."""
    jac = [[] for _ in sizes]
    for i in diff:
        x = inputs[i].detach()
        rows = [[] for _ in sizes]
        for j in range(x.numel()):
            e = _basis(x, j) * eps
            plus = _run(func, inputs, like, {i: x + e})
            minus = _run(func, inputs, like, {i: x - e})
            for o in range(len(sizes)):
                rows[o].append((plus[o] - minus[o]) / (2 * eps))
        for o, size in enumerate(sizes):
            jac[o].append(_block(rows[o], (x.numel(), size), like))
    return jac


def _analytical(func, inputs, diff, like):
    """The same blocks from the backward pass: one grad call per output element."""
    with grad_mode.enable_grad():
        outs = _diff_outputs(_as_tuple(func(*inputs)))
    xs = [inputs[i] for i in diff]
    jac = []
    for out in outs:
        cols = [[] for _ in xs]
        for j in range(out.numel() if out.requires_grad else 0):
            gs = _autograd_grad(out, xs, _basis(out, j), retain_graph=True, allow_unused=True)
            for k, (g, x) in enumerate(zip(gs, xs)):
                if g is None:
                    g = ops.zeros_like(x)
                elif tuple(g.shape) != tuple(x.shape):
                    raise GradcheckError(f"Gradient has incorrect size: got {tuple(g.shape)} for "
                                         f"input {diff[k]} of shape {tuple(x.shape)}")
                cols[k].append(_flat(g, like))
        jac.append([_block(c, (x.numel(), out.numel()), like, axis=1)
                    for c, x in zip(cols, xs)])
    return jac


def _forward(func, inputs, diff, sizes, like):
    """The same blocks from forward mode: one one-hot tangent per input element."""
    jac = [[] for _ in sizes]
    for i in diff:
        x = inputs[i].detach()
        rows = [[] for _ in sizes]
        for j in range(x.numel()):
            with fwAD.dual_level():
                args = [fwAD.make_dual(x, _basis(x, j)) if k == i else
                        (a.detach() if isinstance(a, Tensor) else a)
                        for k, a in enumerate(inputs)]
                outs = _diff_outputs(_as_tuple(func(*args)))
                ts = [fwAD.unpack_dual(o).tangent for o in outs]
            for o, (out, t) in enumerate(zip(outs, ts)):
                rows[o].append(_flat(ops.zeros_like(out) if t is None else t, like))
        for o, size in enumerate(sizes):
            jac[o].append(_block(rows[o], (x.numel(), size), like))
    return jac


def _undefined(func, inputs, diff):
    """torch's undefined-gradient check: with every output's gradient zero (torch passes
    undefined ones; a Function sees zeros unless it asked for None), each input's gradient
    is None or zero."""
    with grad_mode.enable_grad():
        outs = [o for o in _diff_outputs(_as_tuple(func(*inputs))) if o.requires_grad]
    if not outs:
        return None
    try:
        gs = _autograd_grad(outs, [inputs[i] for i in diff], [ops.zeros_like(o) for o in outs],
                            allow_unused=True)
    except RuntimeError as exc:
        return (f"Expected backward function to handle undefined output grads ({exc}). Please "
                f"look at \"Notes about undefined output gradients\" in "
                f"\"tools/autograd/derivatives.yaml\"")
    for g in gs:
        if g is not None and g.numel() and bool(ops.any(g.detach() != 0)):
            return ("Expected all input grads to be undefined or zero when all output grads are "
                    "undefined or zero. Please look at \"Notes about undefined output "
                    "gradients\" in \"tools/autograd/derivatives.yaml\"")
    return None


def _fail(msg, raise_exception):
    if raise_exception:
        raise GradcheckError(msg)
    return False


def _close(a, b, rtol, atol):
    """numpy's allclose (|a - b| <= atol + rtol |b|), on the blocks' backend."""
    if a.numel() == 0:
        return True
    return bool(ops.all(ops.abs(a - b) <= atol + rtol * ops.abs(b)))


def _compare(num, ana, diff, atol, rtol, what):
    for o, (n_blocks, a_blocks) in enumerate(zip(num, ana)):
        for k, (n, a) in enumerate(zip(n_blocks, a_blocks)):
            if not _close(a, n, rtol, atol):
                return (f"Jacobian mismatch for output {o} with respect to input {diff[k]},\n"
                        f"numerical:{n}\n{what}:{a}\n")
    return None


def _dot(a, b):
    return float(ops.sum(a * b)) if a.numel() else 0.0


def _fast(func, inputs, diff, atol, rtol, eps, backward, forward, like):
    """torch's fast mode: compare ``v^T J u`` from finite differences with the same number
    from the backward pass (``(v^T J) . u``) and from forward mode (``v . (J u)``)."""
    us = {i: randn_like(inputs[i].detach()) for i in diff}
    plus = _run(func, inputs, like, {i: inputs[i].detach() + eps * u for i, u in us.items()})
    minus = _run(func, inputs, like, {i: inputs[i].detach() - eps * u for i, u in us.items()})
    with grad_mode.enable_grad():
        outs = _diff_outputs(_as_tuple(func(*inputs)))
    vs = [randn_like(out.detach()) for out in outs]
    tangents = [None] * len(outs)
    if forward:
        with fwAD.dual_level():
            args = [fwAD.make_dual(a.detach(), us[k]) if k in us else
                    (a.detach() if isinstance(a, Tensor) else a) for k, a in enumerate(inputs)]
            tangents = [fwAD.unpack_dual(o).tangent
                        for o in _diff_outputs(_as_tuple(func(*args)))]
    for o, (out, v) in enumerate(zip(outs, vs)):
        v_flat = _flat(v, like)
        numerical = _dot(v_flat, (plus[o] - minus[o]) / (2 * eps))
        checks = []
        if backward:
            analytical = 0.0
            if out.requires_grad:
                gs = _autograd_grad(out, [inputs[i] for i in diff], v, retain_graph=True,
                                    allow_unused=True)
                analytical = sum(_dot(_flat(g, like), _flat(us[i], like))
                                 for g, i in zip(gs, diff) if g is not None)
            checks.append(("analytical", analytical))
        if forward:
            t = tangents[o]
            checks.append(("analytical (forward mode)",
                           0.0 if t is None else _dot(v_flat, _flat(t, like))))
        for what, value in checks:
            if not abs(value - numerical) <= atol + rtol * abs(numerical):
                return (f"Jacobian mismatch for output {o} (fast mode: v^T J u for random u, "
                        f"v),\nnumerical:{numerical}\n{what}:{value}\n")
    return None


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    """Check ``func``'s gradients at ``inputs`` against central finite differences.

    Returns True, or raises ``GradcheckError`` (returns False with
    ``raise_exception=False``) naming the output and input whose jacobians differ.
    Use float64 inputs: float32 differences are too coarse for the default tolerances.
    ``check_undefined_grad``: zero output gradients give zero input gradients.
    ``check_batched_grad`` is accepted and not checked (polygrad's vmap is a loop).

    >>> import polygrad
    >>> x = polygrad.tensor([0.5, 1.5], dtype=polygrad.float64, requires_grad=True)
    >>> polygrad.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs)
    like = inputs[diff[0]]              # the jacobian blocks live on this input's backend
    if fast_mode:
        msg = _fast(func, inputs, diff, atol, rtol, eps, check_backward_ad, check_forward_ad,
                    like)
        if msg is None and check_backward_ad and check_undefined_grad:
            msg = _undefined(func, inputs, diff)
        return True if msg is None else _fail(msg, raise_exception)
    sizes = [o.numel() for o in _run(func, inputs, like)]
    num = _numerical(func, inputs, diff, sizes, eps, like)
    if check_backward_ad:
        ana = _analytical(func, inputs, diff, like)
        again = _analytical(func, inputs, diff, like)
        for b1, b2 in zip(ana, again):
            for a1, a2 in zip(b1, b2):
                if a1.numel() and float(ops.max(ops.abs(a1 - a2))) > nondet_tol:
                    return _fail(f"Backward is not reentrant, i.e., running backward with same "
                                 f"input and grad_output multiple times gives different values, "
                                 f"although analytical gradient matches numerical gradient. The "
                                 f"tolerance for nondeterminism was {nondet_tol}.",
                                 raise_exception)
        msg = _compare(num, ana, diff, atol, rtol, "analytical")
        if msg is None and check_undefined_grad:
            msg = _undefined(func, inputs, diff)
        if msg is not None:
            return _fail(msg, raise_exception)
    if check_forward_ad:
        msg = _compare(num, _forward(func, inputs, diff, sizes, like), diff, atol, rtol,
                       "analytical (forward mode)")
        if msg is not None:
            return _fail(msg, raise_exception)
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False,
                  masked=False):
    """Check second derivatives: ``gradcheck`` of the map ``(inputs, grad_outputs) ->
    autograd.grad(func(inputs), inputs, grad_outputs, create_graph=True)``.

    ``grad_outputs`` default to random normal tensors shaped like the outputs.

    >>> import polygrad
    >>> x = polygrad.tensor([0.5, 1.5], dtype=polygrad.float64, requires_grad=True)
    >>> polygrad.autograd.gradgradcheck(lambda t: (t ** 3).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs)
    if grad_outputs is None:
        with grad_mode.no_grad():
            outs = _diff_outputs(_as_tuple(func(*inputs)))
        grad_outputs = tuple(randn_like(o.detach()).requires_grad_() for o in outs)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def first_derivative(*args):
        xs, gos = args[:n_in], args[n_in:]
        outs = _diff_outputs(_as_tuple(func(*xs)))
        pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
        wrt = [xs[i] for i in diff]
        if not pairs:
            return tuple(ops.zeros_like(x) for x in wrt)
        gs = _autograd_grad([p[0] for p in pairs], wrt, [p[1] for p in pairs],
                            create_graph=True, allow_unused=True)
        return tuple(ops.zeros_like(x) if g is None else g for g, x in zip(gs, wrt))

    return gradcheck(first_derivative, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                     check_forward_ad=check_fwd_over_rev, check_backward_ad=check_rev_over_rev,
                     fast_mode=fast_mode)
