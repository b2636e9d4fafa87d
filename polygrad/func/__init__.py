"""``polygrad.func``: torch.func's function transforms, built on polygrad's autograd:
``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian``,
``vmap``, ``linearize``, ``functional_call``, ``stack_module_state`` and
``functionalize``, with torch.func's signatures and result structure.

How each is computed (there are no functorch levels here, so each transform is the
autograd call it stands for):

- a transform's inputs become fresh leaves (``x.detach().requires_grad_()``), or a view of
  ``x`` when ``x`` already requires grad; the gradient is taken with ``create_graph``
  exactly when the function's graph reaches a leaf outside the transform or carries a
  forward tangent, and a result keeps its graph only where it reaches a leaf outside
  (``_Transform``). That is what makes transforms compose (``grad(grad(f))``,
  ``jacfwd(jacrev(f))``) and gives torch.func's ``requires_grad`` on results;
- ``jvp`` and ``jacfwd`` are native forward mode (``autograd.forward_ad``); forward-AD
  levels do not nest (as in torch.autograd.forward_ad), so inside an open level they
  compute the same numbers by the double-vjp trick / reverse mode;
- ``vmap`` is a loop: ``func`` runs once per index of the mapped dimension and the results
  are stacked at ``out_dims`` (so a result's ``grad_fn`` is a stack). Values and
  gradients are those of the batched call; a backward pass inside keeps its graph for the
  next row (``autograd.looped_vmap``); random ops draw independently per row (torch's
  ``randomness="different"``) and are not refused.

Argument and result structures (pytrees) may be tensors, tuples, lists and dicts.
What this module does not own: the autograd engine, forward mode and the jacobian loops
(``polygrad.autograd``), modules (``polygrad.nn``).
"""

from __future__ import annotations

import functools
import threading
import weakref

from .. import ops
from ..autograd import forward_ad as fwAD
from ..autograd import functional as _functional
from ..autograd import grad as _autograd_grad
from ..autograd import looped_vmap as _looped_vmap
from ..base import grad_mode
from ..graph.creation import zeros, zeros_like
from ..graph.engine import forward_ad_state, toposort
from ..graph.node import AccumulateGrad
from ..graph.tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap",
           "functional_call", "linearize", "stack_module_state", "functionalize", "rearrange"]


# -- pytrees: tensors in tuples, lists and dicts ---------------------------------------------

def _flatten(tree):
    """(leaves, rebuild): ``rebuild(leaves)`` makes the same structure again."""
    if isinstance(tree, (tuple, list)):
        parts = [_flatten(t) for t in tree]
        sizes = [len(p[0]) for p in parts]
        kind = type(tree)

        def rebuild(leaves):
            out, at = [], 0
            for (_, rb), n in zip(parts, sizes):
                out.append(rb(leaves[at:at + n]))
                at += n
            if kind is tuple or kind is list:
                return kind(out)
            return kind(*out)           # a namedtuple
        return [leaf for p in parts for leaf in p[0]], rebuild
    if isinstance(tree, dict):
        keys = list(tree)
        inner, rb = _flatten([tree[k] for k in keys])
        return inner, lambda leaves: dict(zip(keys, rb(leaves)))
    return [tree], lambda leaves: leaves[0]


def _tree_map(fn, tree):
    leaves, rebuild = _flatten(tree)
    return rebuild([fn(x) for x in leaves])


def _argnums(argnums, n, name):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums or not all(isinstance(a, int) for a in nums):
        raise RuntimeError(f"{name}: argnums must be an int or a non-empty tuple of ints, "
                           f"got {argnums!r}")
    norm = []
    for a in nums:
        if not -n <= a < n:
            raise RuntimeError(f"{name}: Got argnums={a}, but only {n} positional inputs")
        norm.append(a % n)
    if len(set(norm)) != len(norm):
        raise RuntimeError(f"{name}: argnums must be unique, got {argnums!r}")
    return single, tuple(norm)


# -- one running transform: its own leaves, and what it hands back -------------------------

_fresh = weakref.WeakSet()      # the node of every leaf a transform made for its inputs


class _Scopes(threading.local):
    active = ()                 # the running transforms' own leaf nodes, outermost first


_scopes = _Scopes()


class _Transform:
    """One transform call: the leaves it makes for its inputs (``lift``) and what it hands
    back (``finish``). A result keeps its graph only where the graph reaches a leaf that is
    outside: one of the user's, or one of an enclosing transform that is still running;
    leaves of this transform and of inner transforms that have returned are internal, so
    ``grad(f)(x)`` on a plain ``x`` returns a tensor without a graph, as torch.func does."""

    def __init__(self, name):
        self.name, self.own = name, set()

    def __enter__(self):
        _scopes.active = (*_scopes.active, self.own)
        return self

    def __exit__(self, *exc):
        _scopes.active = tuple(s for s in _scopes.active if s is not self.own)
        return False

    def lift(self, x):
        """A new differentiable tensor standing for ``x``: a fresh leaf (carrying ``x``'s
        tangent in an open forward level), or a view of ``x`` when ``x`` requires grad."""
        if not isinstance(x, Tensor):
            raise ValueError(f"{self.name}: expected every differentiated input to be a "
                             f"Tensor, got {type(x).__name__}; pass numbers as tensors or "
                             f"leave them out of argnums")
        if not (x.dtype.is_floating_point or x.dtype.is_complex):
            raise RuntimeError(f"{self.name}: only Tensors of floating point dtype can require "
                               f"gradients; got {x.dtype.name}. Convert it first: x.double()")
        if x.requires_grad:
            return x.view_as(x)
        tangent = x._tangent if forward_ad_state.level else None
        leaf = self.leaf(x.detach())
        return leaf if tangent is None else fwAD.make_dual(leaf, tangent)

    def leaf(self, t):
        t = t.requires_grad_()
        _fresh.add(t._node)
        self.own.add(t._node)
        return t

    def outside(self, tensors):
        """True when ``tensors``' graphs reach a leaf outside this transform."""
        enclosing = set()
        for s in _scopes.active:
            if s is not self.own:
                enclosing |= s
        roots = [t._node for t in tensors if isinstance(t, Tensor) and t._node is not None]
        return any(type(node) is AccumulateGrad and (node not in _fresh or node in enclosing)
                   for node in toposort(roots))

    def needs_graph(self, tensors):
        """Differentiate with create_graph: the result must reach outside, or carry a
        tangent (forward mode through the backward pass)."""
        if forward_ad_state.level and any(isinstance(t, Tensor) and t._tangent is not None
                                          for t in tensors):
            return True
        return self.outside(tensors)

    def finish(self, tree):
        return _tree_map(self._finish_one, tree)

    def _finish_one(self, t):
        if not isinstance(t, Tensor) or self.outside([t]):
            return t
        tangent = t._tangent if forward_ad_state.level else None
        r = t.detach()
        if tangent is None:
            return r
        if not self.outside([tangent]):
            tangent = tangent.detach()
        return fwAD.make_dual(r, tangent)


def _grad_of(outputs, inner, grad_outputs, create_graph, retain_graph=None):
    """autograd.grad with zeros (not None) for inputs the outputs do not reach."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return tuple(zeros_like(x) for x in inner)
    gs = _autograd_grad([p[0] for p in pairs], inner, [p[1] for p in pairs],
                        retain_graph=retain_graph, create_graph=create_graph,
                        allow_unused=True)
    return tuple(zeros_like(x) if g is None else g for g, x in zip(gs, inner))


def _split_aux(out, has_aux, name):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{name}(f)(*args): output of function f should be a tuple: "
                           f"(output, aux) if has_aux is True")
    return out


def _lift_args(tr, args, nums):
    """args with the trees at ``nums`` lifted; the lifted trees, in argnums order."""
    args = list(args)
    lifted = []
    for a in nums:
        args[a] = _tree_map(tr.lift, args[a])
        lifted.append(args[a])
    return args, lifted


# -- grad, grad_and_value, vjp ---------------------------------------------------------------

def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning ``(gradient, value)`` of scalar ``func`` (with ``has_aux``:
    ``(gradient, (value, aux))``), the gradient with respect to ``args[argnums]``.

    >>> import polygrad
    >>> from polygrad.func import grad_and_value
    >>> grad_and_value(lambda x: (x ** 2).sum())(polygrad.tensor([1.0, 2.0]))
    (tensor([2., 4.]), tensor(5.))
    """
    def wrapper(*args, **kwargs):
        single, nums = _argnums(argnums, len(args), "grad_and_value")
        with _Transform("grad_and_value") as tr, grad_mode.enable_grad():
            args, lifted = _lift_args(tr, args, nums)
            out, aux = _split_aux(func(*args, **kwargs), has_aux, "grad_and_value")
            if not isinstance(out, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(out)}")
            if out.ndim != 0:
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"scalar Tensor, got tensor with {out.ndim} dims. Maybe you "
                                   f"wanted to use the vjp or jacrev APIs instead?")
            inner, rebuild = _flatten(lifted)
            gs = _grad_of([out], inner, [None], create_graph=tr.needs_graph([out]))
            grads = rebuild(list(gs))
            grads = tr.finish(grads[0] if single else tuple(grads))
            if has_aux:
                return grads, (tr.finish(out), tr.finish(aux))
            return grads, tr.finish(out)
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """The gradient of scalar ``func`` with respect to ``args[argnums]``, as a function.

    >>> import polygrad
    >>> from polygrad.func import grad
    >>> grad(lambda x: x.sin().sum())(polygrad.zeros(2))
    tensor([1., 1.])
    """
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func, *primals, has_aux=False):
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` returns one gradient per primal.

    >>> import polygrad
    >>> from polygrad.func import vjp
    >>> out, vjp_fn = vjp(lambda x: x ** 2, polygrad.tensor([1.0, 3.0]))
    >>> vjp_fn(polygrad.ones(2))
    (tensor([2., 6.]),)
    """
    tr = _Transform("vjp")
    with tr, grad_mode.enable_grad():
        lifted = _tree_map(tr.lift, primals)
        out, aux = _split_aux(func(*lifted), has_aux, "vjp")
        flat_out, _ = _flatten(out)
        for o in flat_out:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"vjp(f, *primals): Expected f to return a Tensor or a "
                                   f"structure of Tensors, got {type(o)}")
        inner, rebuild = _flatten(lifted)
        graph = tr.needs_graph(flat_out)
        result = (tr.finish(out),)
        aux = tr.finish(aux)

    def vjp_fn(cotangents, *, retain_graph=True, create_graph=None):
        cts, _ = _flatten(cotangents)
        if len(cts) != len(flat_out):
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as "
                               f"pytree structure of outputs to the function: {len(flat_out)} "
                               f"tensors expected, got {len(cts)}")
        for c, o in zip(cts, flat_out):
            if tuple(c.shape) != tuple(o.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output has a shape of "
                                   f"{tuple(c.shape)} and output has a shape of "
                                   f"{tuple(o.shape)}.")
        cg = graph or tr.needs_graph(cts)
        if create_graph is not None:
            cg = create_graph
        with tr, grad_mode.enable_grad():
            gs = _grad_of(flat_out, inner, cts, create_graph=cg, retain_graph=retain_graph)
            return tuple(tr.finish(rebuild(list(gs))))

    return (*result, vjp_fn, aux) if has_aux else (*result, vjp_fn)


# -- jvp, jacrev, jacfwd, hessian ------------------------------------------------------------

def _check_tree_pair(primals, tangents, name):
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{name}(f, primals, tangents): Expected primals to be a tuple. "
                           f"E.g. it should be valid to call f(*primals).")
    p, _ = _flatten(primals)
    t, _ = _flatten(tangents)
    if len(p) != len(t):
        raise RuntimeError(f"{name}(f, primals, tangents): Expected primals and tangents to "
                           f"have the same python structure. For example, if primals is a "
                           f"tuple of 3 tensors, tangents also must be.")
    for a, b in zip(p, t):
        if not isinstance(a, Tensor) or not isinstance(b, Tensor):
            raise RuntimeError(f"{name}(f, primals, tangents): Expected primals and tangents "
                               f"to only contain Tensors")
        if tuple(a.shape) != tuple(b.shape):
            # torch's own words (it fails in make_dual)
            raise RuntimeError(f"Trying to set a forward gradient that has a different size "
                               f"than that of the original Tensor, this is not supported. "
                               f"Tensor is of size {list(a.shape)} while the given forward "
                               f"gradient is of size {list(b.shape)}.")
    return p, t


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``(func(*primals), J @ tangents)`` in forward mode.

    >>> import polygrad
    >>> from polygrad.func import jvp
    >>> jvp(lambda x: x ** 2, (polygrad.tensor([1.0, 3.0]),), (polygrad.ones(2),))[1]
    tensor([2., 6.])
    """
    if strict:
        raise RuntimeError("jvp(f, primals, tangents): strict=True is not implemented")
    p, t = _check_tree_pair(primals, tangents, "jvp")
    if forward_ad_state.level:
        return _jvp_by_double_vjp(func, primals, t, has_aux)
    tr = _Transform("jvp")
    with tr, fwAD.dual_level():
        flat = []
        for x, v in zip(p, t):
            base = x.view_as(x) if x.requires_grad else x.detach()
            flat.append(fwAD.make_dual(base, v.to(x.dtype) if v.dtype != x.dtype else v))
        _, rebuild = _flatten(primals)
        out, aux = _split_aux(func(*rebuild(flat)), has_aux, "jvp")
        flat_out, rebuild_out = _flatten(out)
        pieces = [fwAD.unpack_dual(o) for o in flat_out]
        primal_out = [u.primal for u in pieces]
        tangent_out = [zeros_like(u.primal) if u.tangent is None else u.tangent
                       for u in pieces]
    result = (tr.finish(rebuild_out(primal_out)), tr.finish(rebuild_out(tangent_out)))
    return (*result, tr.finish(aux)) if has_aux else result


def linearize(func, *primals):
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` is the JVP of ``func`` at
    ``primals`` (each call runs ``jvp`` again; torch's saves the linearised graph instead).

    >>> import polygrad
    >>> from polygrad.func import linearize
    >>> out, jvp_fn = linearize(lambda x: x.sin(), polygrad.zeros(2))
    >>> jvp_fn(polygrad.ones(2))
    tensor([1., 1.])
    """
    with _Transform("linearize") as tr:
        out = tr.finish(func(*primals))

    def jvp_fn(*tangents):
        return jvp(func, primals, tangents)[1]
    return out, jvp_fn


def _jvp_by_double_vjp(func, primals, tangents, has_aux):
    """J v inside an open forward level (levels do not nest): the map u -> (u^T J) v is
    linear in u, and its gradient in u is J v."""
    with _Transform("jvp") as tr, grad_mode.enable_grad():
        lifted = _tree_map(tr.lift, primals)
        out, aux = _split_aux(func(*lifted), has_aux, "jvp")
        flat_out, rebuild_out = _flatten(out)
        inner, _ = _flatten(lifted)
        us = [tr.leaf(zeros_like(o)) for o in flat_out]
        gs = _grad_of(flat_out, inner, us, create_graph=True, retain_graph=True)
        pairs = [(g, v) for g, v in zip(gs, tangents) if g.requires_grad]
        jv = [None] * len(us)
        if pairs:
            jv = _autograd_grad([g for g, _ in pairs], us, [v for _, v in pairs],
                                create_graph=True, allow_unused=True)
        jv = [zeros_like(o) if j is None else j for j, o in zip(jv, flat_out)]
        result = (tr.finish(rebuild_out(flat_out)), tr.finish(rebuild_out(jv)))
        return (*result, tr.finish(aux)) if has_aux else result


def _jac_reverse(func, args, argnums, has_aux, name):
    """jacrev's work: one reverse pass per output element (batched where the rules allow),
    nested as torch.func's result (the output tree, then argnums)."""
    single, nums = _argnums(argnums, len(args), name)
    with _Transform(name) as tr, grad_mode.enable_grad():
        args, lifted = _lift_args(tr, args, nums)
        out, aux = _split_aux(func(*args), has_aux, name)
        flat_out, rebuild_out = _flatten(out)
        for o in flat_out:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{name}: Expected f to return a Tensor or a structure of "
                                   f"Tensors, got {type(o)}")
        inner, rebuild_in = _flatten(lifted)
        graph = tr.needs_graph(flat_out)
        blocks = _functional._jac_reverse(tuple(flat_out), tuple(inner), graph, False,
                                          vectorize=not graph)
        per_out = []
        for row in blocks:
            tree = rebuild_in(list(row))
            per_out.append(tree[0] if single else tuple(tree))
        jac = tr.finish(rebuild_out(per_out))
        return (jac, tr.finish(aux)) if has_aux else jac


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """The Jacobian of ``func`` with respect to ``args[argnums]``, by reverse mode: one
    backward pass per output element (batched into one where the rules allow).

    >>> import polygrad
    >>> from polygrad.func import jacrev
    >>> jacrev(lambda x: x ** 2)(polygrad.tensor([1.0, 3.0]))
    tensor([[2., 0.],
            [0., 6.]])
    """
    def wrapper(*args):
        return _jac_reverse(func, args, argnums, has_aux, "jacrev")
    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian of ``func`` with respect to ``args[argnums]``, by forward mode: one
    forward pass per input element (reverse mode inside an open forward-AD level).

    >>> import polygrad
    >>> from polygrad.func import jacfwd
    >>> jacfwd(lambda x: x.sin())(polygrad.zeros(2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")

    def wrapper(*args):
        if forward_ad_state.level:
            return _jac_reverse(func, args, argnums, has_aux, "jacfwd")
        return _jacfwd(func, args, argnums, has_aux)
    return wrapper


def _jacfwd(func, args, argnums, has_aux):
    single, nums = _argnums(argnums, len(args), "jacfwd")
    leaves = [_flatten(args[a]) for a in nums]
    flat_in = [x for lv, _ in leaves for x in lv]
    for x in flat_in:
        if not isinstance(x, Tensor):
            raise ValueError(f"jacfwd: expected every differentiated input to be a Tensor, got "
                             f"{type(x).__name__}")

    def inner_func(*diff_args):
        full = list(args)
        for a, v in zip(nums, diff_args):
            full[a] = v
        return func(*full)

    primal_tree = tuple(args[a] for a in nums)
    columns = None              # columns[o][k]: tangents of output o, one per element of input k
    out_tree = aux = None
    for k, x in enumerate(flat_in):
        eye = ops.eye(x.numel(), dtype=x.dtype, device=x.device)
        for j in range(x.numel()):
            seeds = [ops.reshape(eye[j], tuple(x.shape)) if i == k else zeros_like(y)
                     for i, y in enumerate(flat_in)]
            tangent_tree, at = [], 0
            for lv, rb in leaves:
                tangent_tree.append(rb(seeds[at:at + len(lv)]))
                at += len(lv)
            res = jvp(inner_func, primal_tree, tuple(tangent_tree), has_aux=has_aux)
            out_tree = res[0]
            if has_aux:
                aux = res[2]
            flat_t, _ = _flatten(res[1])
            if columns is None:
                columns = [[[] for _ in flat_in] for _ in flat_t]
            for o, t in enumerate(flat_t):
                columns[o][k].append(t)
    if columns is None:         # no input elements: run once for the output's structure
        res = jvp(inner_func, primal_tree, primal_tree, has_aux=has_aux)
        out_tree, aux = res[0], (res[2] if has_aux else None)
        columns = [[[] for _ in flat_in] for _ in _flatten(out_tree)[0]]
    flat_out, rebuild_out = _flatten(out_tree)
    per_out = []
    for o, out in enumerate(flat_out):
        row = []
        for k, x in enumerate(flat_in):
            shape = tuple(out.shape) + tuple(x.shape)
            if columns[o][k]:
                row.append(ops.reshape(ops.stack(columns[o][k], axis=-1), shape))
            else:
                row.append(zeros(shape, dtype=out.dtype, device=out.device))
        at, tree = 0, []
        for lv, rb in leaves:
            tree.append(rb(row[at:at + len(lv)]))
            at += len(lv)
        per_out.append(tree[0] if single else tuple(tree))
    jac = rebuild_out(per_out)
    return (jac, aux) if has_aux else jac


def hessian(func, argnums=0):
    """The Hessian of scalar ``func``: ``jacfwd(jacrev(func, argnums), argnums)``, as torch's.

    >>> import polygrad
    >>> from polygrad.func import hessian
    >>> hessian(lambda x: (x ** 3).sum())(polygrad.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)


# -- vmap --------------------------------------------------------------------------------------

def _dims_tree(dims, tree, name, what):
    """``dims`` broadcast over ``tree``'s leaves (an int or None applies to all of them)."""
    leaves, _ = _flatten(tree)
    if dims is None or isinstance(dims, int):
        return [dims] * len(leaves)
    d_leaves, _ = _flatten(dims)
    if isinstance(tree, (tuple, list)) and isinstance(dims, (tuple, list)):
        if len(dims) != len(tree):
            raise ValueError(f"{name}: {what} is not compatible with the structure of the "
                             f"inputs: expected {len(tree)} entries, got {len(dims)}")
        out = []
        for d, t in zip(dims, tree):
            out.extend(_dims_tree(d, t, name, what))
        return out
    if isinstance(tree, dict) and isinstance(dims, dict):
        return [x for k in tree for x in _dims_tree(dims[k], tree[k], name, what)]
    if len(d_leaves) == len(leaves):
        return d_leaves
    raise ValueError(f"{name}: {what}={dims!r} is not compatible with the structure of the "
                     f"inputs")


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``func`` mapped over dimension ``in_dims`` of its inputs, results stacked at
    ``out_dims`` (a loop over the mapped dimension; see the module docstring).

    >>> import polygrad
    >>> from polygrad.func import vmap
    >>> vmap(lambda row: row.sum())(polygrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([3., 7.])
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    fname = getattr(func, "__name__", type(func).__name__)

    def wrapper(*args, **kwargs):
        if not isinstance(in_dims, (int, tuple)):
            raise ValueError(f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>): expected "
                             f"`in_dims` to be int or a (potentially nested) tuple matching the "
                             f"structure of inputs, got: {type(in_dims)}.")
        if isinstance(in_dims, int):
            dims = [in_dims] * len(_flatten(args)[0])
        else:
            if len(in_dims) != len(args):
                raise ValueError(f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>): in_dims is "
                                 f"not compatible with the structure of `inputs`. in_dims has "
                                 f"{len(in_dims)} entries but inputs has {len(args)} positional "
                                 f"arguments")
            dims = _dims_tree(in_dims, args, "vmap", "in_dims")
        leaves, rebuild = _flatten(args)
        sizes = []
        for x, d in zip(leaves, dims):
            if d is None:
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>): Got "
                                 f"in_dim={d} for an input but the input is of type "
                                 f"{type(x)}. We cannot vmap over non-Tensor arguments, please "
                                 f"use None as the respective in_dim")
            if not -x.ndim <= d < x.ndim:
                raise ValueError(f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>): Got "
                                 f"in_dim={d} for some input, but that input is a Tensor of "
                                 f"dimensionality {x.ndim} so expected in_dim to satisfy "
                                 f"-{x.ndim} <= in_dim < {x.ndim}.")
            sizes.append(x.shape[d])
        if not sizes:
            raise ValueError(f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>): Got all "
                             f"in_dims=None. At least one input must be a Tensor mapped over "
                             f"a dimension")
        if len(set(sizes)) > 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                             f"dimension, got sizes {sizes} for the mapped dimension")
        batch = sizes[0]
        results = []
        _looped_vmap.depth += 1
        try:
            for b in range(max(batch, 1)):
                # a 0-size batch runs one row of zeros, only to learn the outputs' shapes
                row = [x if d is None else
                       x[(slice(None),) * (d % x.ndim) + (b,)] if batch else
                       zeros(tuple(x.shape[:d % x.ndim]) + tuple(x.shape[d % x.ndim + 1:]),
                             dtype=x.dtype, device=x.device)
                       for x, d in zip(leaves, dims)]
                results.append(func(*rebuild(row), **kwargs))
        finally:
            _looped_vmap.depth -= 1
        _, rebuild_out = _flatten(results[0])
        o_dims = _dims_tree(out_dims, results[0], "vmap", "out_dims")
        outs = []
        for k, d in enumerate(o_dims):
            column = [_flatten(r)[0][k] for r in results]
            if not all(isinstance(c, Tensor) for c in column):
                raise ValueError(f"vmap({fname}, ...): `{fname}` must only return Tensors, got "
                                 f"type {type(column[0])}. Did you mean to set out_dims= to "
                                 f"None for output?")
            if d is None:
                outs.append(column[0])
                continue
            nd = column[0].ndim + 1
            if not -nd <= d < nd:
                raise ValueError(f"vmap({fname}, ...): out_dims={d} is out of range for an "
                                 f"output of dimensionality {nd - 1}")
            if batch:
                outs.append(ops.stack(column, axis=d % nd))
            else:
                shape = list(column[0].shape)
                shape.insert(d % nd, 0)
                outs.append(zeros(tuple(shape), dtype=column[0].dtype,
                                  device=column[0].device))
        return rebuild_out(outs)
    return wrapper


def functionalize(func, *, remove="mutations"):
    """``func`` with the same results, as torch's functionalize promises. torch rewrites the
    in-place ops and views it traces into out-of-place ones (for compilers); polygrad runs
    eagerly, where calling ``func`` itself already has those semantics.

    >>> import polygrad
    >>> def f(x):
    ...     y = x.clone()
    ...     y.add_(1)
    ...     return y
    >>> polygrad.func.functionalize(f)(polygrad.zeros(2))
    tensor([1., 1.])
    """
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for "
                           f"remove={remove}. Valid options are:\n     remove='mutations': all "
                           f"inplace and out= operators will be removed from the program, and "
                           f"replaced with their out-of-place equivalents.\n     "
                           f"remove='mutations_and_views': In addition to the above, all "
                           f"aliasing operators {{view}} will be replaced with their non-aliasing "
                           f"counterparts, {{view}}_copy.\n")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper


# -- functional_call -------------------------------------------------------------------------

def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """Call ``module`` with its parameters and buffers replaced by the tensors in
    ``parameter_and_buffer_dicts`` (names as in ``named_parameters()``), then restore them.

    >>> import polygrad
    >>> lin = polygrad.nn.Linear(2, 1)
    >>> params = {"weight": polygrad.ones(1, 2), "bias": polygrad.zeros(1)}
    >>> polygrad.func.functional_call(lin, params, (polygrad.tensor([[1.0, 2.0]]),))
    tensor([[3.]])
    """
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        values = dict(dicts)
    elif isinstance(dicts, (list, tuple)) and all(isinstance(d, dict) for d in dicts):
        values = {}
        for d in dicts:
            for k in d:
                if k in values:
                    raise ValueError(f"{k} appeared in multiple dictionaries; behavior of "
                                     f"functional call is ambiguous")
            values.update(d)
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple "
                         f"of dicts, but got {type(dicts)}")
    slots = _module_slots(module)
    if tie_weights:
        by_id = {}
        for name, (_, _, original) in slots.items():
            by_id.setdefault(id(original), []).append(name)
        for names in by_id.values():
            given = [n for n in names if n in values]
            if given:
                first = values[given[0]]
                for n in given[1:]:
                    if values[n] is not first:
                        raise ValueError(f"functional_call got multiple values for keys "
                                         f"{given}, which are tied. Consider using "
                                         f"tie_weights=False")
                for n in names:
                    values.setdefault(n, first)
    unexpected = [k for k in values if k not in slots]
    if strict:
        missing = [k for k in slots if k not in values]
        if missing or unexpected:
            lines = [f"Error(s) in reparametrizing for {type(module).__name__}:"]
            if unexpected:
                lines.append("Unexpected key(s): " + ", ".join(repr(k) for k in unexpected)
                             + ".")
            if missing:
                lines.append("Missing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError("\n\t".join(lines))
    saved = []          # (dict, key, original value or _ABSENT), undone in reverse order
    try:
        for name, value in values.items():
            if name in slots:
                owner, kind, original = slots[name]
                store = owner.__dict__[kind]
            else:       # as torch: an unknown name is set as a plain attribute for the call
                owner = module
                for part in name.split(".")[:-1]:
                    owner = getattr(owner, part)
                store, original = owner.__dict__, owner.__dict__.get(name.rsplit(".", 1)[-1],
                                                                      _ABSENT)
            leaf = name.rsplit(".", 1)[-1]
            saved.append((store, leaf, original))
            store[leaf] = value
        if args is None:
            args = ()
        elif not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, leaf, original in reversed(saved):
            if original is _ABSENT:
                store.pop(leaf, None)
            else:
                store[leaf] = original


_ABSENT = object()


def stack_module_state(models):
    """``(params, buffers)``: each of the models' parameters and buffers stacked on a new
    leading dimension, by name (for ``vmap`` over ``functional_call``, model ensembling).
    Stacked parameters are new leaves that require grad when every model's does.

    >>> import polygrad
    >>> params, buffers = polygrad.func.stack_module_state([polygrad.nn.Linear(2, 1)] * 3)
    >>> params["weight"].shape, params["weight"].requires_grad
    (polygrad.Size([3, 1, 2]), True)
    """
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/"
                           "eval mode.")
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(tensors, name):
        needs = [t.requires_grad for t in tensors]
        if any(needs) and not all(needs):
            raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
        out = ops.stack([t.detach() for t in tensors])
        return out.requires_grad_() if all(needs) else out

    all_params = [dict(m.named_parameters()) for m in models]
    all_buffers = [dict(m.named_buffers()) for m in models]
    params = {k: stacked([p[k] for p in all_params], k) for k in all_params[0]}
    buffers = {k: stacked([b[k] for b in all_buffers], k) for k in all_buffers[0]}
    return params, buffers


def _module_slots(module, prefix=""):
    """name -> (owning module, "_parameters" or "_buffers", current value), tied names too."""
    slots = {}
    d = module.__dict__
    for kind in ("_parameters", "_buffers"):
        for name, value in d.get(kind, {}).items():
            if value is not None:
                slots[prefix + name] = (module, kind, value)
    for name, sub in d.get("_modules", {}).items():
        if sub is not None:
            slots.update(_module_slots(sub, prefix + name + "."))
    return slots


# -- rearrange (einops' reader-friendly reshape + permute) ------------------------------------

def rearrange(tensor, pattern, **axes_lengths):
    """``einops.rearrange`` as ``torch.func.rearrange``: ``"b h w c -> b (c h w)"`` reorders,
    merges (parentheses) and splits (sizes in ``axes_lengths``) axes by name; ``...`` stands
    for the axes not named. A sequence of tensors is stacked along a new first axis first.
    One reshape, one permute, one reshape: views where the memory allows, as torch's.

    >>> import polygrad
    >>> x = polygrad.zeros(32, 30, 40, 3)
    >>> rearrange(x, "b (h1 h) (w1 w) c -> (b h1 w1) h w c", h1=2, w1=2).shape
    polygrad.Size([128, 15, 20, 3])
    """
    if not isinstance(tensor, Tensor):
        tensor = ops.stack(list(tensor), axis=0)
    if "->" not in pattern:
        raise ValueError(f"rearrange pattern {pattern!r} has no '->'")
    left_text, right_text = (side.strip() for side in pattern.split("->", 1))
    left, right = _rearrange_side(left_text), _rearrange_side(right_text)
    shape = tuple(tensor.shape)
    n_ell = len(shape) - (len(left) - (1 if ["..."] in left else 0))
    if ["..."] not in left and len(left) != len(shape) or n_ell < 0:
        raise ValueError(f"rearrange: pattern {left_text!r} has {len(left)} axes, the tensor "
                         f"has {len(shape)}")
    ell = [f"...{i}" for i in range(n_ell)]
    left = _expand_ellipsis(left, ell)
    right = _expand_ellipsis(right, ell)
    sizes = dict(axes_lengths)
    for group, n in zip(left, shape):
        unknown = [a for a in group if a not in sizes]
        known = 1
        for a in group:
            if a in sizes:
                known *= sizes[a]
        if len(unknown) > 1:
            raise ValueError(f"rearrange: can't infer the sizes of {unknown} in {group}; give "
                             f"all but one as keywords")
        if unknown:
            if known == 0 or n % known:
                raise ValueError(f"rearrange: axis of size {n} can't be split into {group}")
            sizes[unknown[0]] = n // known
        elif known != n:
            raise ValueError(f"rearrange: {group} has size {known}, the axis {n}")
    names = [a for g in left for a in g]
    out_names = [a for g in right for a in g]
    if sorted(names) != sorted(out_names) or len(set(names)) != len(names):
        raise ValueError(f"rearrange: both sides of {pattern!r} must name the same axes, "
                         f"each once")
    x = tensor.reshape(tuple(sizes[a] for a in names))
    x = x.permute(*[names.index(a) for a in out_names])
    return x.reshape(tuple(_prod(sizes[a] for a in g) for g in right))


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def _rearrange_side(text):
    groups, current = [], None
    for token in text.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            if current is not None:
                raise ValueError(f"rearrange: nested parentheses in {text!r}")
            current = []
        elif token == ")":
            if current is None:
                raise ValueError(f"rearrange: unbalanced ')' in {text!r}")
            groups.append(current)
            current = None
        elif current is not None:
            current.append(token)
        else:
            groups.append([token])
    if current is not None:
        raise ValueError(f"rearrange: unbalanced '(' in {text!r}")
    return groups


def _expand_ellipsis(groups, ell):
    out = []
    for g in groups:
        if g == ["..."]:
            out.extend([a] for a in ell)
        elif "..." in g:
            out.append([a for x in g for a in (ell if x == "..." else [x])])
        else:
            out.append(g)
    return out
