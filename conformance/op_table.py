"""One conformance case per primitive: input domain, call and torch oracle (like JAX's LAX_GRAD_OPS).

A row says how to build host inputs from a seeded numpy generator (the domain: ``log``
gets positive inputs), how to call the op with a namespace, and which inputs are
differentiated. The same ``call`` runs on polygrad's differentiable namespace and on
``array_api_compat.torch`` with real torch tensors, so torch.autograd is an independent
oracle for every row without a second spelling; rows whose call needs polygrad-only
spelling (``setitem``, ``scatter_add``, nn ops) give a ``torch`` function too.

Plugins that register primitives add their case with ``register_case(OpCase(...))``.
This module owns the table; ``runner`` turns rows into checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import polygrad

__all__ = ["OpCase", "OP_CASES", "register_case", "case_for"]


@dataclass
class OpCase:
    """How to exercise one primitive.

    ``args(rng)`` returns host inputs: float64 numpy arrays (rounded to the dtype under
    test and moved with ``from_numpy``), integer or boolean arrays (moved as they are) and
    plain Python values. ``call(ns, *xs)`` runs the op; default ``ns.<name>(*xs, **opts)``.
    ``torch(xp, *xs)`` is the oracle spelling when it differs (``xp`` is
    ``array_api_compat.torch``; ``xp.nn_functional`` is ``torch.nn.functional``).
    """

    name: str
    args: Callable
    call: Callable | None = None
    torch: Callable | None = None
    opts: dict = field(default_factory=dict)
    grad: tuple | None = None         # differentiated positions; default: float inputs
    second_order: bool = True        # every differentiable row checks create_graph
    fd: bool = True                   # False where eps=1e-6 differences cannot see the op
    float32: bool = True              # False for ops on integer/boolean inputs only
    symmetric: bool = False           # inputs are symmetric matrices: so are all directions
    why_not_fd: str = ""

    def run(self, ns, *xs):
        if self.call is not None:
            return self.call(ns, *xs)
        fn = ns
        for part in self.name.split("."):
            fn = getattr(fn, part)
        return fn(*xs, **self.opts)


# -- input domains ---------------------------------------------------------------------------

def r(*shape, lo=-2.0, hi=2.0):
    return lambda rng: rng.uniform(lo, hi, size=shape)


def pos(*shape):
    return r(*shape, lo=0.5, hi=2.0)


def unit(*shape):
    return r(*shape, lo=-0.9, hi=0.9)


def away(*shape):
    """Away from zero (and from integers, where floor/round jump): |x| in [0.55, 1.95]."""
    def build(rng):
        mag = rng.uniform(0.55, 0.95, size=shape) + rng.integers(0, 2, size=shape)
        return mag * rng.choice([-1.0, 1.0], size=shape)
    return build


def fractional(*shape):
    """Pairs (x, y) with x / y at least 0.2 away from an integer, where remainder and fmod
    jump: y in +-[1.0, 1.2], x = y * (k + f) with k in -2..2 and f in [0.2, 0.8]."""
    def build(rng):
        y = rng.uniform(1.0, 1.2, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return [y * (rng.integers(-2, 3, size=shape) + rng.uniform(0.2, 0.8, size=shape)), y]
    return build


def grid(*shape):
    """Small integers as floats, so comparisons and unique values see ties."""
    return lambda rng: rng.integers(-2, 3, size=shape).astype(np.float64)


def ints(*shape, lo=0, hi=8):
    return lambda rng: rng.integers(lo, hi, size=shape)


def bools(*shape):
    return lambda rng: rng.uniform(size=shape) > 0.5


def special(*_):
    return lambda rng: np.array([1.5, np.nan, np.inf, -np.inf, -0.0, -2.0])


def args(*builders):
    return lambda rng: [b(rng) for b in builders]


def _index(x, values):
    """A raw integer index array on ``x``'s backend and device (a torch tensor for the oracle).

    Raw, not a Tensor: an op takes a raw array its Tensors' backend claims, which keeps it
    working on the backend copies the suite makes (``fused``, ``unsupported`` checks).
    """
    if isinstance(x, polygrad.Tensor):
        return polygrad.from_numpy(np.asarray(values), backend=x.backend,
                                   device=str(x.device)).array
    import torch
    return torch.tensor(values, device=x.device)


def _torch_setitem(xp, x, v):
    y = x.clone()
    y[1] = v
    return y


def _torch_scatter_add(xp, x):
    import torch
    return torch.zeros(4, 3, dtype=x.dtype).index_add(0, torch.tensor([1, 3]), x)


def well_conditioned(n):
    return lambda rng: rng.uniform(-1, 1, (n, n)) + 3 * np.eye(n)


def spd(n):
    """Symmetric positive definite with well-separated eigenvalues."""
    def build(rng):
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        return (q * np.arange(1.0, n + 1.0)) @ q.T
    return build


def _torch():
    import torch
    return torch


def _logabsdet(ns, x):
    # by its own name where the namespace spells it (polygrad.ops spells every primitive);
    # torch's slogdet returns it as its second output
    fn = getattr(ns.linalg, "logabsdet", None)
    return fn(x) if fn is not None else ns.linalg.slogdet(x).logabsdet


def _eigh_invariant(ns, x):
    w, v = ns.linalg.eigh(x)
    return ns.concat([ns.expand_dims(w, axis=0), v * v], axis=0)


def _torch_unique_all(x):
    # array_api_compat.torch has no unique_all (pytorch#36748): spelt out with torch.unique
    import torch
    values, inverse, counts = torch.unique(x, return_inverse=True, return_counts=True)
    first = torch.stack([torch.nonzero(x == v)[0, 0] for v in values])
    return values, first, inverse, counts


def _pg_nn(name):
    def call(ns, *xs):
        import polygrad.nn.functional as F
        return getattr(F, name)(*xs)
    return call


def _torch_nn(name):
    def call(xp, *xs):
        import torch.nn.functional as F
        return getattr(F, name)(*xs)
    return call


def nn_case(name, builder, pg=None, torch=None, **kw):
    return OpCase(name, builder, call=pg or _pg_nn(name), torch=torch or _torch_nn(name), **kw)


def U(name, dom=r):
    return OpCase(name, args(dom(2, 3)))


def B(name, a=r, b=r):
    return OpCase(name, args(a(2, 3), b(3)))


def N(name, builder, **kw):
    return OpCase(name, builder, **kw)


_ND_INT = {"float32": False}

OP_CASES: dict[str, OpCase] = {}


def register_case(case):
    """Add (or replace) the conformance case of a primitive; plugins call this for theirs.

    >>> register_case(OpCase("sin", args(r(2, 3)))).name
    'sin'
    """
    if not isinstance(case, OpCase):
        raise TypeError(f"register_case expects an OpCase, got {case!r}")
    OP_CASES[case.name] = case
    return case


def case_for(name):
    return OP_CASES.get(name)


_ROWS = [
    # elementwise binary, broadcasting the second input
    B("add"), B("subtract"), OpCase("multiply", args(r(2, 3), r(2, 1))),
    B("divide", r, away), OpCase("pow", args(pos(2, 3), r(2, 3))),
    OpCase("maximum", args(r(2, 3), r(2, 3))), OpCase("minimum", args(r(2, 3), r(2, 3))),
    B("logaddexp"), OpCase("atan2", args(r(2, 3), away(2, 3))),
    OpCase("hypot", args(away(2, 3), away(2, 3))),
    OpCase("copysign", args(away(2, 3), away(2, 3)), grad=(0,)),
    # elementwise unary
    U("negative"), U("positive"), U("exp"), U("expm1"), U("sin"), U("cos"), U("tanh"),
    U("sinh"), U("cosh"), U("atan"), U("asinh"), U("square"),
    OpCase("abs", args(away(2, 3))),
    U("log", pos), U("log1p", pos), U("log2", pos), U("log10", pos), U("sqrt", pos),
    U("reciprocal", away), U("tan", unit), U("asin", unit), U("acos", unit), U("atanh", unit),
    OpCase("acosh", args(r(2, 3, lo=1.5, hi=3.0))),
    OpCase("sign", args(away(2, 3))), OpCase("floor", args(away(2, 3))),
    OpCase("ceil", args(away(2, 3))), OpCase("round", args(away(2, 3))),
    OpCase("trunc", args(away(2, 3))),
    OpCase("real", args(r(2, 3))), OpCase("conj", args(r(2, 3))),
    # selection
    OpCase("where", args(bools(2, 3), r(2, 3), r(3))),
    OpCase("clip", args(r(2, 3)), opts={"min": -0.5, "max": 0.7}),
    # reductions
    OpCase("sum", args(r(2, 3, 4)), opts={"axis": (0, 2)}),
    OpCase("mean", args(r(2, 3, 4)), opts={"axis": 1, "keepdims": True}),
    OpCase("prod", args(away(2, 3)), opts={"axis": 1}),
    OpCase("max", args(r(2, 3)), opts={"axis": 1}), OpCase("min", args(r(2, 3)), opts={"axis": 0}),
    OpCase("var", args(r(3, 4)), opts={"axis": 1, "correction": 1.0}),
    OpCase("std", args(r(3, 4)), opts={"axis": 0, "correction": 0.0}),
    OpCase("logsumexp", args(r(2, 3)), opts={"axis": 1},
           torch=lambda xp, x: __import__("torch").logsumexp(x, dim=1)),
    OpCase("cumulative_sum", args(r(2, 3)), opts={"axis": 1}),
    OpCase("logcumsumexp", args(r(2, 3)), opts={"axis": 1},
           torch=lambda xp, x: __import__("torch").logcumsumexp(x, dim=1)),
    # linear algebra
    OpCase("matmul", args(r(2, 3), r(3, 4))), OpCase("vecdot", args(r(2, 3), r(2, 3))),
    OpCase("tensordot", args(r(2, 3, 4), r(3, 4, 2)), opts={"axes": 2}),
    # shape
    OpCase("reshape", args(r(2, 3)), call=lambda ns, x: ns.reshape(x, (3, 2))),
    OpCase("permute_dims", args(r(2, 3, 4)), call=lambda ns, x: ns.permute_dims(x, (2, 0, 1))),
    OpCase("matrix_transpose", args(r(2, 3, 4))),
    OpCase("expand_dims", args(r(2, 3)), opts={"axis": 1}),
    OpCase("squeeze", args(r(2, 1, 3)), opts={"axis": 1}),
    OpCase("broadcast_to", args(r(3, 1)), call=lambda ns, x: ns.broadcast_to(x, (2, 3, 4))),
    OpCase("flip", args(r(2, 3)), opts={"axis": 1}),
    OpCase("astype", args(r(2, 3)), fd=False, why_not_fd="a float32 round trip: eps=1e-6 "
           "differences see only rounding",
           call=lambda ns, x: ns.astype(ns.astype(x, ns.float32), ns.float64)),
    OpCase("concat", args(r(2, 3), r(1, 3)), call=lambda ns, x, y: ns.concat([x, y], axis=0)),
    OpCase("stack", args(r(2, 3), r(2, 3)), call=lambda ns, x, y: ns.stack([x, y], axis=1)),
    OpCase("copy", args(r(2, 3), r(2, 3)), call=lambda ns, x, y: x.clone().copy_(y)),
    # indexing
    OpCase("getitem", args(r(4, 3)), call=lambda ns, x: x[1:3, ::2]),
    OpCase("take", args(r(4, 3)),
           call=lambda ns, x: ns.take(x, _index(x, [0, 2, 2]), axis=0)),
    OpCase("scatter_add", args(r(2, 3)), torch=_torch_scatter_add,
           call=lambda ns, x: ns.scatter_add(x, shape=(4, 3), key=(_index(x, [1, 3]),))),
    OpCase("setitem", args(r(4, 3), r(3)), torch=_torch_setitem,
           call=lambda ns, x, v: ns.setitem(x, v, key=1)),
    # moving between backends: there and back, through the host backend numpy
    OpCase("to", args(r(2, 3)), call=lambda ns, x: x.to("numpy").to(x.backend) * 1.0,
           torch=lambda xp, x: x * 1.0),
    # nn primitives (polygrad.nn.functional against torch.nn.functional)
    nn_case("relu", args(away(2, 3))),
    nn_case("sigmoid", args(r(2, 3))),
    nn_case("leaky_relu", args(away(2, 3)), pg=lambda ns, x: _F().leaky_relu(x, 0.1),
            torch=lambda xp, x: __import__("torch").nn.functional.leaky_relu(x, 0.1)),
    nn_case("hardtanh", args(r(2, 3)), pg=lambda ns, x: _F().hardtanh(x, -1.0, 1.0),
            torch=lambda xp, x: __import__("torch").nn.functional.hardtanh(x, -1.0, 1.0)),
    # their first-order backward ops (differentiated again under create_graph)
    OpCase("threshold_backward", args(r(2, 3), away(2, 3)),
           call=lambda ns, g, x: ns.threshold_backward(g, x),
           torch=lambda xp, g, x: _torch().ops.aten.threshold_backward(g, x, 0)),
    OpCase("leaky_relu_backward", args(r(2, 3), away(2, 3)),
           call=lambda ns, g, x: ns.leaky_relu_backward(g, x, negative_slope=0.1),
           torch=lambda xp, g, x: _torch().ops.aten.leaky_relu_backward(g, x, 0.1, False)),
    OpCase("hardtanh_backward", args(r(2, 3), away(2, 3)),
           call=lambda ns, g, x: ns.hardtanh_backward(g, x, min_val=-1.0, max_val=1.0),
           torch=lambda xp, g, x: _torch().ops.aten.hardtanh_backward(g, x, -1.0, 1.0)),
    OpCase("lerp", args(r(2, 3), r(2, 3), r(2, 3)),
           call=lambda ns, x, e, w: ns.lerp(x, e, w),
           torch=lambda xp, x, e, w: _torch().lerp(x, e, w)),
    nn_case("elu", args(r(2, 3)), pg=lambda ns, x: _F().celu(x, 2.0),
            torch=lambda xp, x: __import__("torch").nn.functional.celu(x, 2.0)),
    OpCase("elu_backward", args(r(2, 3), r(2, 3)),
           call=lambda ns, g, x: ns.elu_backward(g, x, alpha=2.0, scale=1.5, input_scale=0.5),
           torch=lambda xp, g, x: _torch().ops.aten.elu_backward(g, 2.0, 1.5, 0.5, False, x)),
    nn_case("softplus", args(r(2, 3)), pg=lambda ns, x: _F().softplus(x, beta=2.0, threshold=1.0),
            torch=lambda xp, x: __import__("torch").nn.functional.softplus(x, 2.0, 1.0)),
    OpCase("softplus_backward", args(r(2, 3), r(2, 3)),
           call=lambda ns, g, x: ns.softplus_backward(g, x, beta=2.0, threshold=1.0),
           torch=lambda xp, g, x: _torch().ops.aten.softplus_backward(g, x, 2.0, 1.0)),
    # smooth_l1_loss, huber_loss and their backward ops (torch's kernels; the reduction enum
    # of aten: 0 none, 1 mean, 2 sum)
    nn_case("smooth_l1_loss", args(r(2, 3), r(2, 3)),
            pg=lambda ns, x, y: _F().smooth_l1_loss(x, y, beta=0.75),
            torch=lambda xp, x, y: __import__("torch").nn.functional.smooth_l1_loss(
                x, y, beta=0.75)),
    OpCase("smooth_l1_loss_backward", args(r(1, 1), r(2, 3), r(2, 3)),
           call=lambda ns, g, x, y: ns.smooth_l1_loss_backward(g, x, y, reduction="mean",
                                                               beta=0.75),
           torch=lambda xp, g, x, y: _torch().ops.aten.smooth_l1_loss_backward(
               g, x, y, 1, 0.75)),
    nn_case("huber_loss", args(r(2, 3), r(2, 3)),
            pg=lambda ns, x, y: _F().huber_loss(x, y, reduction="sum", delta=0.75),
            torch=lambda xp, x, y: __import__("torch").nn.functional.huber_loss(
                x, y, reduction="sum", delta=0.75)),
    OpCase("huber_loss_backward", args(r(2, 3), r(2, 3), r(2, 3)),
           call=lambda ns, g, x, y: ns.huber_loss_backward(g, x, y, reduction="none",
                                                           delta=0.75),
           torch=lambda xp, g, x, y: _torch().ops.aten.huber_loss_backward(
               g, x, y, 0, 0.75)),
    nn_case("gelu", args(r(2, 3))),
    nn_case("silu", args(r(2, 3))),
    nn_case("mish", args(r(2, 3))),
    nn_case("hardswish", args(r(2, 3, lo=-4.0, hi=4.0))),   # the three pieces (not at +-3)
    OpCase("hardswish_backward", args(r(2, 3), r(2, 3, lo=-4.0, hi=4.0)),
           torch=lambda xp, g, x: _torch().ops.aten.hardswish_backward(g, x)),
    nn_case("linear", args(r(2, 3), r(4, 3), r(4))),
    nn_case("layer_norm", args(r(2, 3, 4)), pg=lambda ns, x: _F().layer_norm(x, (3, 4), eps=1e-3),
            torch=lambda xp, x: __import__("torch").nn.functional.layer_norm(x, (3, 4),
                                                                             eps=1e-3)),
    nn_case("softmax", args(r(2, 3)), pg=lambda ns, x: _F().softmax(x, dim=1),
            torch=lambda xp, x: __import__("torch").softmax(x, dim=1)),
    nn_case("log_softmax", args(r(2, 3)), pg=lambda ns, x: _F().log_softmax(x, dim=1),
            torch=lambda xp, x: __import__("torch").log_softmax(x, dim=1)),
    nn_case("binary_cross_entropy_with_logits",
            lambda rng: [rng.uniform(-2, 2, size=(2, 3)), rng.uniform(0, 1, size=(2, 3))]),
    nn_case("mse_loss", args(r(2, 3), r(2, 3))),
    # the rest of the Array API standard: extensions linalg, fft, special
    OpCase("take_along_axis", lambda rng: [rng.uniform(-2, 2, (3, 4)), rng.integers(0, 4, (3, 2))],
           opts={"axis": 1}, torch=lambda xp, x, i: _torch().take_along_dim(x, i, dim=1)),
    OpCase("cumulative_prod", args(away(2, 3)), opts={"axis": 1},
           torch=lambda xp, x: _torch().cumprod(x, dim=1)),
    OpCase("tril", args(r(3, 3)), torch=lambda xp, x: _torch().tril(x)),
    OpCase("triu", args(r(3, 3)), opts={"k": 1}, torch=lambda xp, x: _torch().triu(x, 1)),
    OpCase("imag", args(r(2, 3)), call=lambda ns, x: ns.imag(x * 1j)),
    OpCase("special.erf", args(r(2, 3)), torch=lambda xp, x: _torch().special.erf(x)),
    OpCase("special.erfinv", args(r(2, 3, lo=-0.95, hi=0.95)),
           torch=lambda xp, x: _torch().special.erfinv(x)),
    OpCase("lgamma", args(r(2, 3, lo=-2.5, hi=4.0)), torch=lambda xp, x: _torch().lgamma(x)),
    OpCase("polygamma", args(r(2, 3, lo=-2.5, hi=4.0)), opts={"n": 1},
           torch=lambda xp, x: _torch().polygamma(1, x)),
    # torch-only elementwise rows (torch's backward formulas; their edges: tests/test_edges*)
    OpCase("xlogy", args(r(2, 3), pos(2, 3)), torch=lambda xp, x, y: _torch().xlogy(x, y)),
    OpCase("xlog1py", args(r(2, 3), pos(2, 3)),
           torch=lambda xp, x, y: _torch().special.xlog1py(x, y)),
    OpCase("sinc", args(away(2, 3)), torch=lambda xp, x: _torch().sinc(x)),
    OpCase("logit", args(r(2, 3, lo=0.1, hi=0.9)), opts={"eps": 0.05},
           torch=lambda xp, x: _torch().logit(x, eps=0.05)),
    OpCase("binary_cross_entropy", args(r(2, 3, lo=0.1, hi=0.9), r(2, 3, lo=0.0, hi=1.0)),
           torch=lambda xp, x, y: _torch().nn.functional.binary_cross_entropy(
               x, y, reduction="none")),
    OpCase("binary_cross_entropy_backward",
           args(r(2, 3), r(2, 3, lo=0.1, hi=0.9), r(2, 3, lo=0.0, hi=1.0)),
           torch=lambda xp, g, x, y: _torch().ops.aten.binary_cross_entropy_backward(
               g, x, y, None, 0)),
    OpCase("linalg.det", args(well_conditioned(3))),
    OpCase("linalg.logabsdet", args(well_conditioned(3)), call=lambda ns, x: _logabsdet(ns, x)),
    OpCase("linalg.inv", args(well_conditioned(3))),
    OpCase("linalg.solve", args(well_conditioned(3), r(3, 2))),
    OpCase("linalg.cholesky", args(spd(3)), symmetric=True),
    # eigenvectors have arbitrary signs: compare eigenvalues and v*v, which do not
    OpCase("linalg.eigh", args(spd(3)), call=lambda ns, x: _eigh_invariant(ns, x),
           symmetric=True),
    OpCase("linalg.svdvals", args(r(3, 2))),
    OpCase("linalg.pinv", args(r(3, 2))),
    OpCase("linalg.vector_norm", args(away(2, 3)), opts={"axis": 1},
           torch=lambda xp, x: _torch().linalg.vector_norm(x, dim=1)),
    N("linalg.matrix_rank", args(r(3, 3))),
    N("linalg.svd", args(r(3, 2)), call=lambda ns, x: ns.linalg.svd(x)[1]),
    N("linalg.qr", args(r(3, 3)), call=lambda ns, x: ns.abs(ns.linalg.qr(x)[1])),
    N("linalg.slogdet", args(well_conditioned(3))),
    *(OpCase(f"fft.{n}", args(r(2, 4))) for n in (
        "fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "hfft", "ihfft")),
    # nondifferentiable: a forward-value check only
    *(N(n, args(grid(2, 3), grid(2, 3))) for n in (
        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal")),
    *(N(n, args(bools(2, 3), bools(2, 3)), **_ND_INT) for n in (
        "logical_and", "logical_or", "logical_xor")),
    N("logical_not", args(bools(2, 3)), **_ND_INT),
    *(N(n, args(special())) for n in ("isnan", "isinf", "isfinite", "signbit")),
    *(N(n, args(ints(2, 3, lo=-8), ints(2, 3, lo=-8)), **_ND_INT) for n in (
        "bitwise_and", "bitwise_or", "bitwise_xor")),
    N("bitwise_invert", args(ints(2, 3, lo=-8)), **_ND_INT),
    *(N(n, args(ints(2, 3), ints(2, 3, hi=3)), **_ND_INT) for n in (
        "bitwise_left_shift", "bitwise_right_shift")),
    N("floor_divide", args(away(2, 3), away(2, 3))),
    OpCase("remainder", fractional(2, 3)),
    OpCase("fmod", fractional(2, 3), torch=lambda xp, x, y: xp.fmod(x, y)),
    N("nextafter", args(r(2, 3), r(2, 3))),
    N("argmax", args(r(2, 3)), opts={"axis": 1}), N("argmin", args(r(2, 3)), opts={"axis": 0}),
    N("all", args(bools(2, 3)), opts={"axis": 1}, **_ND_INT),
    N("any", args(bools(2, 3)), opts={"axis": 0}, **_ND_INT),
    N("count_nonzero", args(grid(2, 3)), opts={"axis": 1}),
    N("argsort", args(r(2, 3)), opts={"axis": 1}),
    N("nonzero", args(grid(2, 3))),
    N("searchsorted", lambda rng: [np.sort(rng.uniform(-2, 2, 6)), rng.uniform(-2, 2, 4)]),
    *(N(n, args(grid(7))) for n in ("unique_values", "unique_counts", "unique_inverse")),
    N("unique_all", args(grid(7)), torch=lambda xp, x: _torch_unique_all(x)),
]


def _F():
    import polygrad.nn.functional as F
    return F


for _row in _ROWS:
    register_case(_row)
