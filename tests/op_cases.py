"""The per-primitive test table: inputs, options and the torch oracle for each op.

One row per primitive of the core table. ``args`` builds numpy inputs from a
seeded generator (the domain lives in the builder); ``torch`` is the same
computation written with torch, the independent oracle; ``grad`` lists the
positions that are differentiated.
"""

from dataclasses import dataclass, field
from typing import Callable

import polygrad


@dataclass
class OpCase:
    name: str
    args: Callable          # rng -> list of numpy arrays / Python values
    torch: Callable         # (torch, *args) -> torch result
    opts: dict = field(default_factory=dict)
    grad: tuple = (0,)      # differentiated positions
    second_order: bool = True
    call: Callable = None   # (pg_ops, *args) -> result, when not ops.<name>(*args, **opts)
    fd: bool = True         # False where float64 finite differences cannot see the op


def r(*shape, lo=-2.0, hi=2.0):
    return lambda rng: rng.uniform(lo, hi, size=shape)


def pos(*shape):
    return r(*shape, lo=0.5, hi=2.0)


def unit(*shape):
    return r(*shape, lo=-0.9, hi=0.9)


def away_from_zero(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def two(a, b):
    return lambda rng: [a(rng), b(rng)]


def one(a):
    return lambda rng: [a(rng)]


U = lambda name: OpCase(name, one(r(2, 3)), lambda t, x: getattr(t, name)(x))  # noqa: E731

CASES = [
    # elementwise binary (with broadcasting)
    OpCase("add", two(r(2, 3), r(3)), lambda t, x, y: x + y, grad=(0, 1)),
    OpCase("subtract", two(r(2, 3), r(3)), lambda t, x, y: x - y, grad=(0, 1)),
    OpCase("multiply", two(r(2, 3), r(2, 1)), lambda t, x, y: x * y, grad=(0, 1)),
    OpCase("divide", two(r(2, 3), away_from_zero(3)), lambda t, x, y: x / y, grad=(0, 1)),
    OpCase("pow", two(pos(2, 3), r(2, 3)), lambda t, x, y: x ** y, grad=(0, 1)),
    OpCase("maximum", two(r(2, 3), r(2, 3)), lambda t, x, y: t.maximum(x, y), grad=(0, 1)),
    OpCase("minimum", two(r(2, 3), r(2, 3)), lambda t, x, y: t.minimum(x, y), grad=(0, 1)),
    OpCase("logaddexp", two(r(2, 3), r(3)), lambda t, x, y: t.logaddexp(x, y), grad=(0, 1)),
    OpCase("atan2", two(r(2, 3), away_from_zero(2, 3)), lambda t, x, y: t.atan2(x, y),
           grad=(0, 1)),
    OpCase("hypot", two(away_from_zero(2, 3), away_from_zero(2, 3)),
           lambda t, x, y: t.hypot(x, y), grad=(0, 1)),
    OpCase("copysign", two(away_from_zero(2, 3), away_from_zero(2, 3)),
           lambda t, x, y: t.copysign(x, y), grad=(0,)),
    # elementwise unary
    U("negative"), OpCase("positive", one(r(2, 3)), lambda t, x: +x),
    U("exp"), U("expm1"), U("sin"), U("cos"), U("tanh"), U("sinh"), U("cosh"), U("atan"),
    U("asinh"), U("square"), U("sign"), U("floor"), U("ceil"), U("round"), U("trunc"),
    OpCase("abs", one(away_from_zero(2, 3)), lambda t, x: t.abs(x)),
    OpCase("log", one(pos(2, 3)), lambda t, x: t.log(x)),
    OpCase("log1p", one(pos(2, 3)), lambda t, x: t.log1p(x)),
    OpCase("log2", one(pos(2, 3)), lambda t, x: t.log2(x)),
    OpCase("log10", one(pos(2, 3)), lambda t, x: t.log10(x)),
    OpCase("sqrt", one(pos(2, 3)), lambda t, x: t.sqrt(x)),
    OpCase("reciprocal", one(away_from_zero(2, 3)), lambda t, x: t.reciprocal(x)),
    OpCase("tan", one(unit(2, 3)), lambda t, x: t.tan(x)),
    OpCase("asin", one(unit(2, 3)), lambda t, x: t.asin(x)),
    OpCase("acos", one(unit(2, 3)), lambda t, x: t.acos(x)),
    OpCase("atanh", one(unit(2, 3)), lambda t, x: t.atanh(x)),
    OpCase("acosh", one(r(2, 3, lo=1.5, hi=3.0)), lambda t, x: t.acosh(x)),
    OpCase("real", one(r(2, 3)), lambda t, x: x, second_order=False),
    OpCase("conj", one(r(2, 3)), lambda t, x: x, second_order=False),
    # selection
    OpCase("where", lambda rng: [rng.uniform(size=(2, 3)) > 0.5, r(2, 3)(rng), r(3)(rng)],
           lambda t, c, x, y: t.where(c, x, y), grad=(1, 2)),
    OpCase("clip", one(r(2, 3)), lambda t, x: t.clamp(x, -0.5, 0.7), opts={"min": -0.5, "max": 0.7}),
    # reductions
    OpCase("sum", one(r(2, 3, 4)), lambda t, x: t.sum(x, dim=(0, 2)), opts={"axis": (0, 2)}),
    OpCase("mean", one(r(2, 3, 4)), lambda t, x: t.mean(x, dim=1, keepdim=True),
           opts={"axis": 1, "keepdims": True}),
    OpCase("prod", one(away_from_zero(2, 3)), lambda t, x: t.prod(x, dim=1), opts={"axis": 1}),
    OpCase("max", one(r(2, 3)), lambda t, x: t.amax(x, dim=1), opts={"axis": 1}),
    OpCase("min", one(r(2, 3)), lambda t, x: t.amin(x, dim=0), opts={"axis": 0}),
    OpCase("var", one(r(3, 4)), lambda t, x: t.var(x, dim=1, correction=1),
           opts={"axis": 1, "correction": 1.0}),
    OpCase("std", one(r(3, 4)), lambda t, x: t.std(x, dim=0, correction=0),
           opts={"axis": 0, "correction": 0.0}),
    OpCase("logsumexp", one(r(2, 3)), lambda t, x: t.logsumexp(x, dim=1), opts={"axis": 1}),
    OpCase("cumulative_sum", one(r(2, 3)), lambda t, x: t.cumsum(x, dim=1), opts={"axis": 1}),
    # linear algebra
    OpCase("matmul", two(r(2, 3), r(3, 4)), lambda t, x, y: x @ y, grad=(0, 1)),
    OpCase("vecdot", two(r(2, 3), r(2, 3)), lambda t, x, y: (x * y).sum(-1), grad=(0, 1)),
    OpCase("tensordot", two(r(2, 3, 4), r(3, 4, 2)), lambda t, x, y: t.tensordot(x, y, dims=2),
           opts={"axes": 2}, grad=(0, 1)),
    # shape
    OpCase("reshape", one(r(2, 3)), lambda t, x: x.reshape(3, 2),
           call=lambda pg, x: pg.reshape(x, (3, 2))),
    OpCase("permute_dims", one(r(2, 3, 4)), lambda t, x: x.permute(2, 0, 1),
           call=lambda pg, x: pg.permute_dims(x, (2, 0, 1))),
    OpCase("matrix_transpose", one(r(2, 3, 4)), lambda t, x: x.mT),
    OpCase("expand_dims", one(r(2, 3)), lambda t, x: x.unsqueeze(1), opts={"axis": 1}),
    OpCase("squeeze", one(r(2, 1, 3)), lambda t, x: x.squeeze(1), opts={"axis": 1}),
    OpCase("broadcast_to", one(r(3, 1)), lambda t, x: x.expand(2, 3, 4),
           call=lambda pg, x: pg.broadcast_to(x, (2, 3, 4))),
    OpCase("flip", one(r(2, 3)), lambda t, x: t.flip(x, (1,)), opts={"axis": 1}),
    # a float32 round trip: finite differences at eps=1e-6 would only see rounding
    OpCase("astype", one(r(2, 3)), lambda t, x: x.to(t.float32).to(t.float64), fd=False,
           call=lambda pg, x: pg.astype(pg.astype(x, pg.float32), pg.float64)),
    OpCase("concat", two(r(2, 3), r(1, 3)), lambda t, x, y: t.cat([x, y], 0), grad=(0, 1),
           call=lambda pg, x, y: pg.concat([x, y], axis=0)),
    OpCase("stack", two(r(2, 3), r(2, 3)), lambda t, x, y: t.stack([x, y], 1), grad=(0, 1),
           call=lambda pg, x, y: pg.stack([x, y], axis=1)),
    OpCase("copy", two(r(2, 3), r(2, 3)), lambda t, x, y: y.clone(), grad=(1,),
           call=lambda pg, x, y: x.clone().copy_(y)),
    # indexing
    OpCase("getitem", one(r(4, 3)), lambda t, x: x[1:3, ::2],
           call=lambda pg, x: x[1:3, ::2]),
    OpCase("take", one(r(4, 3)), lambda t, x: x[t.tensor([0, 2, 2])],
           call=lambda pg, x: pg.take(x, polygrad.asarray([0, 2, 2], backend=x.backend), axis=0)),
    OpCase("scatter_add", one(r(2, 3)), lambda t, x: t.zeros(4, 3, dtype=x.dtype).index_add(
        0, t.tensor([1, 3]), x), call=lambda pg, x: pg.scatter_add(
        x, shape=(4, 3), key=(x._backend.xp.asarray([1, 3]),))),
    OpCase("setitem", two(r(4, 3), r(3)), lambda t, x, v: _torch_setitem(t, x, v), grad=(0, 1),
           call=lambda pg, x, v: pg.setitem(x, v, key=1)),
]


def _torch_setitem(t, x, v):
    y = x.clone()
    y[1] = v
    return y


CASE_BY_NAME = {c.name: c for c in CASES}
