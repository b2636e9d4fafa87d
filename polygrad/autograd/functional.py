"""``autograd.functional``: jacobian, hessian, vjp, jvp, hvp and vhp with torch's signatures,
argument structure (a Tensor or a tuple of Tensors) and return structure.

How each is computed: ``vjp`` is one reverse pass; ``jvp`` is native forward mode
(tangents through the primitives' JVP rules, ``forward_ad``); ``hvp`` is forward-over-
reverse (tangents through a ``create_graph`` gradient); ``vhp`` is reverse-over-reverse.
``jacobian`` runs one reverse pass per output element (or, with
``strategy="forward-mode"``, one forward pass per input element); ``hessian`` is the
jacobian of the gradient. The row passes run the engine directly on raw arrays with a
one-hot seed: the graph is built once and replayed (``retain_graph``).

There is no vmap in polygrad. ``vectorize=True`` runs all rows of a reverse-mode jacobian in
one backward pass instead: the unchanged VJP rules run on a namespace whose arrays carry
a batch axis (``_batched``); where some rule has no batching rule (index-array scatters,
custom Functions, hooks) it falls back to the row loop, with the same result.
"""

from __future__ import annotations

from .. import ops
from ..base import grad_mode
from ..graph.creation import ones_like, zeros, zeros_like
from ..graph.engine import get_extension, run_backward, toposort
from ..graph.node import AccumulateGrad, Node
from ..graph.tensor import Tensor, wrap
from ..primitives.raw import raw_namespace
from . import forward_ad as fwAD
from . import grad
from ._batched import Batched, BatchedNamespace

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# -- argument and result structure (as torch.autograd.functional) ---------------------------

def _as_tuple(inp, arg_name, fn_name):
    is_tuple = isinstance(inp, tuple)
    if not is_tuple:
        inp = (inp,)
    for i, el in enumerate(inp):
        if not isinstance(el, Tensor):
            where = f"value at index {i}" if is_tuple else f"given {arg_name}"
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a "
                            f"tuple of Tensors but the {where} has type {type(el)}.")
    return is_tuple, inp


def _unpack(res, to_unpack):
    """Undo ``_as_tuple``: one flag, or (outputs, inputs) flags for a nested result."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _preprocess(inputs, create_graph, need_graph):
    """New Tensor objects for the inputs, so that the function's use of them is told apart
    from the same tensors captured by the function (torch's ``_grad_preprocess``)."""
    res = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            res.append(inp.view_as(inp))
        else:
            res.append(inp.detach().requires_grad_(need_graph))
    return tuple(res)


def _postprocess(res, create_graph):
    if create_graph:
        return res
    return tuple(r.detach() if not isinstance(r, tuple) else _postprocess(r, False)
                 for r in res)


def _validate_v(v, other, is_other_tuple):
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got "
                               f"{len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for idx, (el_v, el_other) in enumerate(zip(v, other)):
        if tuple(el_v.shape) != tuple(el_other.shape):
            prepend = f"Entry {idx} in " if is_other_tuple else ""
            raise RuntimeError(f"{prepend}v has invalid size: should be {tuple(el_other.shape)} "
                               f"but got {tuple(el_v.shape)}.")


def _v_or_one(v, inputs, is_inputs_tuple, create_graph, fn_name):
    if v is not None:
        _, v = _as_tuple(v, "v", fn_name)
        v = _preprocess(v, create_graph, need_graph=False)
        _validate_v(v, inputs, is_inputs_tuple)
        return v
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the input to the user-provided "
                           "function is a single Tensor with a single element.")
    return (ones_like(inputs[0]),)


_STRICT_MSG = {
    "outputs": "Output {i} of the user-provided function does not require gradients. The "
               "outputs must be computed in a differentiable manner from the input when "
               "running in strict mode.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided "
                "function with respect to input {i} is independent of the input. This is not "
                "allowed in strict mode. You should ensure that your function is twice "
                "differentiable and that the jacobian depends on the inputs (this would be "
                "violated by a linear function for example).",
    "back": "The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
                   "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian. This is not allowed in strict mode as it "
                         "prevents from using the double backward trick to replace forward "
                         "mode AD.",
    "graph": "The jacobian of the user-provided function is independent of input {i}. This is "
             "not allowed in strict mode when create_graph=True.",
    "graph2": "The hessian of the user-provided function is independent of input {i}. This is "
              "not allowed in strict mode when create_graph=True.",
}


def _check_requires_grad(tensors, kind, strict):
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(_STRICT_MSG["back"].format(i=i))
        if not t.requires_grad:
            raise RuntimeError(_STRICT_MSG[kind].format(i=i))


def _fill_in_zeros(grads, refs, strict, create_graph, stage):
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_STRICT_MSG[stage].format(i=i))
            g = zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            key = "graph2" if "double" in stage else "graph"
            raise RuntimeError(_STRICT_MSG[key].format(i=i))
        res.append(g)
    return tuple(res)


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """autograd.grad over the outputs that require grad; all None when none does."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    outs, gos = zip(*pairs)
    return grad(outs, inputs, gos, retain_graph=retain_graph, create_graph=create_graph,
                allow_unused=True)


def _single_output(out, fn_name, strict):
    is_tuple, outputs = _as_tuple(out, "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict)
    if is_tuple:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn_name} should "
                           f"contain a single element")
    return outputs


# -- the public functions --------------------------------------------------------------------

def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: one reverse pass.

    >>> import polygrad
    >>> from polygrad.autograd.functional import vjp
    >>> vjp(lambda x: 2 * x, polygrad.ones(2), polygrad.tensor([1.0, 3.0]))[1]
    tensor([2., 6.])
    """
    with grad_mode.enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function",
                                              "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
            v = _preprocess(v, create_graph, need_graph=False)
            _validate_v(v, outputs, is_outputs_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
    with grad_mode.set_grad_enabled(create_graph or grad_mode.is_grad_enabled()):
        res = _grad(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "back")
    return (_unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
            _unpack(_postprocess(res, create_graph), is_inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)`` in native forward mode (tangents through the JVP rules).

    >>> import polygrad
    >>> from polygrad.autograd.functional import jvp
    >>> jvp(lambda x: x * x, polygrad.tensor([1.0, 2.0]), polygrad.ones(2))[1]
    tensor([2., 4.])
    """
    with grad_mode.enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        # strict mode asks which inputs reach the outputs: the reverse graph tells; with
        # create_graph the outputs are differentiable in the inputs, as torch's are
        inputs = _preprocess(inputs, create_graph, need_graph=strict or create_graph)
        v = _v_or_one(v, inputs, is_inputs_tuple, create_graph, "jvp")
        with fwAD.dual_level():
            duals = tuple(fwAD.make_dual(x, t) for x, t in zip(inputs, v))
            outputs = func(*duals)
            is_outputs_tuple, outputs = _as_tuple(
                outputs, "outputs of the user-provided function", "jvp")
            unpacked = [fwAD.unpack_dual(o) for o in outputs]
        outputs = tuple(u.primal for u in unpacked)
        if strict:
            _check_requires_grad(outputs, "outputs", strict)
            reached = set(toposort([o._node for o in outputs]))
            for i, x in enumerate(inputs):
                if x._node not in reached:
                    raise RuntimeError(_STRICT_MSG["back"].format(i=i))
        res = _fill_in_zeros([u.tangent for u in unpacked], outputs, strict, create_graph,
                             "back")
    return (_unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
            _unpack(_postprocess(res, create_graph), is_outputs_tuple))


def _basis_rows(out, create_graph):
    """One-hot seeds for each element of ``out``, shaped like it (raw arrays, or Tensors)."""
    n = out.numel()
    eye = ops.eye(n, dtype=out.dtype, device=out.device)._st.array
    xp = out._backend.xp
    shape = tuple(out.shape)
    rows = [xp.reshape(eye[j, ...], shape) for j in range(n)]   # a full key, as the standard wants
    if create_graph:
        return [wrap(r, out._backend) for r in rows]
    return rows


def _stack(pieces, shape, create_graph, backend):
    if create_graph:
        if len(pieces) == 1 and tuple(pieces[0].shape) == shape:
            return pieces[0]    # a scalar's gradient is its own jacobian: no extra nodes
        return ops.reshape(ops.stack(pieces), shape)
    xp = backend.xp
    return wrap(xp.reshape(xp.stack(pieces), shape), backend)


def _jac_batched(out, inputs):
    """d out / d inputs in one backward pass carrying all ``out.numel()`` one-hot seeds on a
    batch axis (``_batched``), or None when some node's rule cannot be batched."""
    if get_extension("anomaly") is not None or get_extension("node_observer") is not None:
        return None             # those watch each node's pass: give them the row loop
    backend = out._backend
    xp = raw_namespace(backend)
    n = out.numel()
    bns = BatchedNamespace(xp, n)
    eye = ops.eye(n, dtype=out.dtype, device=out.device)._st.array
    grads = {out._node: Batched(xp.reshape(eye, (n, *out.shape)), bns)}
    targets = {x._node for x in inputs}
    captured = {}
    try:
        for node in reversed(toposort([out._node])):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node in targets:
                captured[node] = g
            if type(node) is AccumulateGrad:
                continue
            if node.hooks or node.prim is None or type(node).apply_vjp is not Node.apply_vjp:
                return None     # custom nodes and hooks expect one gradient, not a batch
            for parent, gi in zip(node.parents, node.apply_vjp(g, False, ns=bns)):
                if parent is None or gi is None:
                    continue
                if not isinstance(gi, Batched):
                    return None
                prev = grads.get(parent)
                grads[parent] = gi if prev is None else prev + gi
    except Exception:  # noqa: BLE001 - no batching rule, or a rule that needs one row:
        return None    # the row loop then gives the answer (or the real error)
    result = []
    for x in inputs:
        g = captured.get(x._node)
        if g is not None and g.shape != tuple(x.shape):
            return None
        result.append(None if g is None else
                      wrap(xp.reshape(g.a, tuple(out.shape) + tuple(x.shape)), backend))
    return result


def _jac_reverse(outputs, inputs, create_graph, strict, vectorize=False):
    """One reverse pass per output element, replaying the graph with a one-hot seed; with
    ``vectorize``, one pass for all of them where every rule can be batched."""
    targets = {x._node for x in inputs}
    jac = []
    for i, out in enumerate(outputs):
        rows = [[] for _ in inputs]
        batched = None
        if vectorize and out.requires_grad and not create_graph and out.numel() > 1:
            batched = _jac_batched(out, inputs)
        if batched is not None:
            jac.append(tuple(_empty_jac(out, x) if b is None else b
                             for b, x in zip(batched, inputs)))
            continue
        if out.requires_grad:
            order = toposort([out._node])       # once: every row replays the same graph
            for seed in _basis_rows(out, create_graph):
                got = run_backward([out._node], [seed], retain_graph=True, order=order,
                                   create_graph=create_graph, capture=targets, accumulate=False,
                                   ns=ops)
                for k, x in enumerate(inputs):
                    g = got.get(x._node)
                    if g is None:
                        if strict:
                            raise RuntimeError(
                                f"Output {i} of the user-provided function is independent of "
                                f"input {k}. This is not allowed in strict mode.")
                        g = _zero_like(x, create_graph)
                    elif create_graph and strict and not (isinstance(g, Tensor) and
                                                          g.requires_grad):
                        raise RuntimeError(_STRICT_MSG["graph"].format(i=i))
                    elif create_graph and not isinstance(g, Tensor):
                        g = _wrap(g, x)
                    rows[k].append(g)
        else:
            rows = [[_zero_like(x, create_graph)] * out.numel() for x in inputs]
        jac.append(tuple(
            _stack(r, tuple(out.shape) + tuple(x.shape), create_graph, x._backend)
            if r else _empty_jac(out, x) for r, x in zip(rows, inputs)))
    return tuple(jac)


def _wrap(g, like):
    return wrap(g, like._backend)


def _zero_like(x, create_graph):
    z = zeros_like(x)
    return z if create_graph else z._st.array


def _empty_jac(out, x):
    return zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype, device=x.device)


def _jac_forward(func, inputs, create_graph, strict):
    """One forward-mode pass per input element (tangent = one-hot), outputs' tangents stacked."""
    if strict:
        raise RuntimeError('polygrad.autograd.functional.jacobian: `strict=True` and '
                           '`strategy="forward-mode"` are not supported together (yet). Please '
                           'either set `strict=False` or `strategy="reverse-mode"`.')
    if create_graph:
        raise RuntimeError('polygrad.autograd.functional.jacobian: `create_graph=True` and '
                           '`strategy="forward-mode"` are not supported together (yet). Please '
                           'either set `create_graph=False` or `strategy="reverse-mode"`.')
    columns = None          # columns[o][k]: tangents of output o for each element of input k
    is_outputs_tuple = False
    outs = None
    zeros = [zeros_like(x) for x in inputs]
    for k, x in enumerate(inputs):
        for seed in _basis_rows(x, create_graph=True):
            tangents = [seed if j == k else zeros[j] for j in range(len(inputs))]
            with fwAD.dual_level():
                duals = tuple(fwAD.make_dual(xi, t) for xi, t in zip(inputs, tangents))
                is_outputs_tuple, outs = _as_tuple(
                    func(*duals), "outputs of the user-provided function", "jacobian")
                ts = [fwAD.unpack_dual(o).tangent for o in outs]
            if columns is None:
                columns = [[[] for _ in inputs] for _ in outs]
            for o, (out, t) in enumerate(zip(outs, ts)):
                columns[o][k].append(zeros_like(out) if t is None else t.detach())
    jac = []
    for o, out in enumerate(outs):
        row = []
        for k, x in enumerate(inputs):
            col = ops.stack(columns[o][k], axis=-1)       # (*out.shape, x.numel())
            row.append(ops.reshape(col, tuple(out.shape) + tuple(x.shape)).detach())
        jac.append(tuple(row))
    return is_outputs_tuple, tuple(jac)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, structured as torch's.

    >>> import polygrad
    >>> from polygrad.autograd.functional import jacobian
    >>> jacobian(lambda x: 3 * x, polygrad.ones(2))
    tensor([[3., 0.],
            [0., 3.]])
    """
    return _jacobian(func, inputs, create_graph, strict, vectorize, strategy)


def _jacobian(func, inputs, create_graph, strict, vectorize, strategy, fresh=False):
    """``fresh``: the inputs are new leaves only this call sees (hessian's inner jacobian),
    so they need no separating view."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode". '
                         f'Got {strategy!r}.')
    if strategy == "forward-mode":
        with grad_mode.enable_grad():
            is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
            inputs = _preprocess(inputs, create_graph, need_graph=False)
            is_outputs_tuple, jac = _jac_forward(func, inputs, create_graph, strict)
        return _unpack(jac, (is_outputs_tuple, is_inputs_tuple))
    with grad_mode.enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        if not fresh:
            inputs = _preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function",
                                              "jacobian")
        _check_requires_grad(outputs, "outputs", strict)
        if vectorize and strict:
            raise RuntimeError("polygrad.autograd.functional.jacobian: `strict=True` and "
                               "`vectorized=True` are not supported together. Please either "
                               "set `strict=False` or `vectorize=False`.")
        jac = _jac_reverse(outputs, inputs, create_graph, strict, vectorize)
    return _unpack(_postprocess(jac, create_graph), (is_outputs_tuple, is_inputs_tuple))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: the jacobian of its gradient.

    >>> import polygrad
    >>> from polygrad.autograd.functional import hessian
    >>> hessian(lambda x: (x ** 3).sum(), polygrad.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def ensure_single_output_function(*inp):
        out = func(*inp)
        _single_output(out, "hessian", strict)
        return out.squeeze() if out.ndim else out

    def jac_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        # inp are the outer jacobian's own new leaves (or duals): no view needed
        jac = _jacobian(ensure_single_output_function, inp, True, False, False,
                        "reverse-mode", fresh=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _unpack(res, (is_inputs_tuple, is_inputs_tuple))


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)``: reverse-over-reverse.

    >>> import polygrad
    >>> from polygrad.autograd.functional import vhp
    >>> vhp(lambda x: (x ** 3).sum(), polygrad.tensor([1.0, 2.0]), polygrad.ones(2))[1]
    tensor([ 6., 12.])
    """
    with grad_mode.enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vhp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        v = _v_or_one(v, inputs, is_inputs_tuple, create_graph, "vhp")
        outputs = _single_output(func(*inputs), "vhp", strict)
        jac = _grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
    with grad_mode.set_grad_enabled(create_graph or grad_mode.is_grad_enabled()):
        res = _grad(jac, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back")
    return (_unpack(_postprocess(outputs, create_graph), False),
            _unpack(_postprocess(res, create_graph), is_inputs_tuple))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)``: forward-over-reverse (tangents through the gradient's graph).

    >>> import polygrad
    >>> from polygrad.autograd.functional import hvp
    >>> hvp(lambda x: (x ** 3).sum(), polygrad.tensor([1.0, 2.0]), polygrad.ones(2))[1]
    tensor([ 6., 12.])
    """
    with grad_mode.enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hvp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        v = _v_or_one(v, inputs, is_inputs_tuple, create_graph, "hvp")
        with fwAD.dual_level():
            duals = tuple(fwAD.make_dual(x, t) for x, t in zip(inputs, v))
            outputs = _single_output(func(*duals), "hvp", strict)
            jac = _grad(outputs, duals, create_graph=True)
            _check_requires_grad(jac, "jacobian", strict)
            tangents = [None if g is None else fwAD.unpack_dual(g).tangent for g in jac]
            outputs = tuple(fwAD.unpack_dual(o).primal for o in outputs)
        res = _fill_in_zeros(tangents, inputs, strict, create_graph, "double_back_trick")
    return (_unpack(_postprocess(outputs, create_graph), False),
            _unpack(_postprocess(res, create_graph), is_inputs_tuple))
