"""Buffer scenarios (``BUF-*``): views, aliases and in-place writes (docs/memory.md), so that
a third-party backend is held to the same memory model as the built-in ones.

Each runs as the tutorial scenarios do (``T`` is polygrad on the backend under test, or
torch as the oracle). Where torch would refuse a backward because a saved value was
overwritten, polygrad copies on write; the torch oracle then runs under
``saved_tensors_hooks(clone, identity)``, which is exactly copy-on-write.
"""

from __future__ import annotations

import contextlib

__all__ = ["BUFFER_SCENARIOS", "BUFFER_IDS", "VIEW_OUT"]

BUFFER_SCENARIOS = {}
BUFFER_IDS = []


#: why a compiled function that returns a view runs eagerly (docs/compile.md; the ``compiled``
#: check fails as stale once polygrad.compile replays it)
VIEW_OUT = ("it returns a view (of an argument, or of a tensor made inside): a replayed output "
            "would not share the memory of its base")


def _buf(sid, title):
    def deco(fn):
        BUFFER_SCENARIOS[sid] = fn
        BUFFER_IDS.append((sid, title, ""))
        return fn
    return deco


def _cow(T, c):
    """Copy-on-write for the torch oracle; polygrad does it by itself."""
    if c.oracle:
        return T.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t)
    return contextlib.nullcontext()


@_buf("BUF-1", "write into a saved operand")
def buf1(T, c):
    with _cow(T, c):
        x = c.make(c.normal(3), requires_grad=True)
        m = c.make(c.normal(3, 2))
        y = c.compile(lambda x, m: (x @ m).sum())(x, m)
        m[0].add_(10.0)                 # through a view of the saved matrix
        y.backward()
    return {"x.grad": x.grad, "m": m}


@_buf("BUF-2", "write into a view reaches its base")
def buf2(T, c):
    x = c.make(c.normal(2, 3), requires_grad=True)
    b = c.compile(lambda x: x * 1.0)(x)
    v = b[:, 1:]
    w = b.reshape(-1)
    v.mul_(x[:, 1:])                    # recorded: the base's node becomes CopySlices
    c.compile(lambda b, w: b.sum() + (w * w).sum())(b, w).backward()
    return {"b": b, "w": w, "x.grad": x.grad}


@_buf("BUF-3", "optimizer step while a graph holds the weight")
def buf3(T, c):
    w = c.make(c.normal(4), requires_grad=True)
    loss = c.compile(lambda w: (w * w * w).sum())(w)
    loss.backward(retain_graph=True)
    T.optim.SGD([w], lr=0.1, momentum=0.9).step()
    return {"w": w, "w.grad": w.grad}


@_buf("BUF-4", "views share memory, other ops do not")
def buf4(T, c):
    x = c.make(c.normal(2, 3))
    v, t, s = c.compile(lambda x: (x[0], x.t(), x.reshape(3, 2)), falls_back=VIEW_OUT)(x)
    f, r = c.compile(lambda x: (T.flip(x, (0,)), T.roll(x, 0)),
                     falls_back=VIEW_OUT)(x)     # roll(x, 0) is a view of a copy
    x[0, 0] = 100.0                     # every view sees it; flip and roll do not
    return {"v": v, "t": t, "s": s, "f": f, "r": r}


@_buf("BUF-5", "in-place keeps dtype, retain_grad and the graph")
def buf5(T, c):
    x = c.make(c.normal(3), requires_grad=True)
    y, z = c.compile(lambda x: (x * 2.0, x * 3.0))(x)
    y.retain_grad()
    y.mul_(x)
    z.zero_()
    c.compile(lambda y, z: (y * y + z).sum())(y, z).backward()
    return {"y": y, "y.grad": y.grad, "x.grad": x.grad}


@_buf("BUF-6", "write through a view of a view")
def buf6(T, c):
    x = c.make(c.normal(3, 4), requires_grad=True)
    s = c.make(c.normal(3), requires_grad=True)
    b = c.compile(lambda x: x * 1.0)(x)
    v = b.t()[1:].t()                   # a strided view of a transposed view
    v[:, 0].copy_(c.compile(lambda s: s * 2.0)(s))
    c.compile(lambda b: (b * b).sum())(b).backward()
    return {"b": b, "x.grad": x.grad, "s.grad": s.grad}


@_buf("BUF-7", "untracked writes copy only for the graph")
def buf7(T, c):
    with _cow(T, c):
        x = c.make(c.normal(3), requires_grad=True)
        w = c.make(c.normal(3))
        y = c.compile(lambda x, w: (x * w).sum())(x, w)
        with T.no_grad():
            w.mul_(10.0)
            x.sub_(1.0)                 # a leaf updated under no_grad, as an optimizer does
        y.backward()
    return {"x": x, "w": w, "x.grad": x.grad}
