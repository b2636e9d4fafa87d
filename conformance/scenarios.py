"""The tutorial scenarios of conformance/SCENARIOS.md, one function per id, written against
the torch API.

Each function receives ``T`` (``polygrad`` on the backend under test, or real ``torch``
as the oracle) and a ``Ctx`` with the dtype, device, identical host inputs (``ctx.normal``,
``ctx.uniform``, moved with ``ctx.make``) and a recorder for the tutorial's own claims
(closed forms, node names, errors). It returns the tensors to compare across backends,
against the float64 reference and against torch. This module owns the scenario code;
the id list is read from SCENARIOS.md, shipped in this package (the spec: what each
scenario runs and what must hold). The checks that run them live in ``runner``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from importlib import resources

import numpy as np

from .buffers import BUFFER_IDS, BUFFER_SCENARIOS, VIEW_OUT
from .checks import to_host


def read_scenario_ids(text=None):
    """``(id, short title, tutorial seed file)`` of each row of SCENARIOS.md, in its order.

    ``text`` defaults to the SCENARIOS.md shipped in this package. A row is a table line
    ``| QS-1 one-layer net | ...``; its seed file is the first one its section heading
    names (``## Quickstart tutorial (seeds 001 / 004)``).

    >>> read_scenario_ids()[0]
    ('QS-1', 'one-layer net', '001')
    """
    if text is None:
        text = resources.files(__package__).joinpath("SCENARIOS.md").read_text(encoding="utf-8")
    ids, seed = [], ""
    for line in text.splitlines():
        heading = re.match(r"^## .*\bseeds? (\d{3})", line)
        if heading:
            seed = heading.group(1)
        row = re.match(r"^\| ((?:QS|YT|BZ)-\d+) ([^|]*?) \|", line)
        if row:
            ids.append((row.group(1), row.group(2), seed))
    return ids


#: (id, short title, tutorial seed file), read from SCENARIOS.md (shipped in this package),
#: then the buffer scenarios (``BUF-*``, conformance/buffers.py: views and in-place writes)
SCENARIO_IDS = read_scenario_ids() + BUFFER_IDS

SCENARIOS = {}      # id -> function(T, ctx) -> dict of tensors (the buffer ones added last)
#: id -> why the scenario has no compiled run (the ``compiled`` check skips, saying so)
NOT_COMPILED = {}


def scenario(sid, not_compiled=None):
    def deco(fn):
        SCENARIOS[sid] = fn
        if not_compiled:
            NOT_COMPILED[sid] = not_compiled
        return fn
    return deco


class Ctx:
    """What a scenario gets besides ``T``: dtype, device, identical inputs, a recorder.

    ``in_dtype`` is the dtype host inputs are rounded to before ``make`` moves them, so
    the float64 reference of a float32 run sees exactly the float32 inputs.
    """

    def __init__(self, T, dtype, device, in_dtype, seed, make, chk, oracle=False,
                 compiled=False):
        self.T = T
        self.dtype = getattr(T, dtype)
        self.dtype_name = dtype
        self.device = device
        self.in_dtype = in_dtype
        self.rng = np.random.default_rng(seed)
        self._make = make
        self.chk = chk
        self.oracle = oracle
        # a compiled run: ``compile`` wraps with polygrad.compile; the graph is then one
        # CompiledBackward node per compiled call, so claims about eager node names are off
        self.compiled = compiled
        self.compiled_fns = []      # (Compiled, declared fallback reason or None)

    def _round(self, a):
        return np.asarray(a, dtype=np.float64).astype(self.in_dtype)

    def normal(self, *shape):
        return self._round(self.rng.standard_normal(shape))

    def uniform(self, *shape, lo=0.0, hi=1.0):
        return self._round(self.rng.uniform(lo, hi, size=shape))

    def make(self, host, requires_grad=False):
        """A leaf on the backend under test holding ``host`` (rounded to ``in_dtype``)."""
        return self._make(self._round(host).astype(self.dtype_name), requires_grad)

    def kw(self):
        """dtype and device keywords for the tutorial's constructors."""
        return {"dtype": self.dtype, "device": self.device}

    def close(self, name, got, expected):
        self.chk.close(name, got, expected)

    def compile(self, fn, *, warm=True, falls_back=None):
        """``fn`` as the scenario calls it: ``fn`` itself in an eager run and for the torch
        oracle, ``polygrad.compile(fn)`` in a compiled run (the ``compiled`` check).

        ``warm``: ``fn`` is pure, so each call runs it once more first: the first call with
        a guard key traces (and gives the eager result), and the call the scenario sees
        replays. A function with side effects (``backward()`` inside), or called in a loop,
        passes ``warm=False``. ``falls_back``: why ``fn`` cannot be replayed (the compiled
        check then requires that it ran eagerly, and gave the eager result).
        """
        if not self.compiled:
            return fn
        compiled = self.T.compile(fn)
        self.compiled_fns.append((compiled, falls_back))
        if not warm:
            return compiled

        def warmed(*args, **kwargs):
            compiled(*args, **kwargs)
            return compiled(*args, **kwargs)
        return warmed


def _attr(T, path):
    """``T.autograd.functional`` as the tutorial spells it, with a clear error when missing."""
    obj = T
    for i, part in enumerate(path.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            import importlib
            module = ".".join([T.__name__, *path.split(".")[: i + 1]])
            importlib.import_module(module)     # ImportError when the module does not exist
            raise AttributeError(f"{module} exists but is not reachable as an attribute: the "
                                 f"tutorial uses {T.__name__}.{path} without importing it"
                                 ) from exc
    return obj


def _name(fn):
    return None if fn is None else type(fn).__name__


def _h(t):
    return to_host(t).astype(np.float64)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- Quickstart (seeds 001 / 004) ----------------------------------------------------------

@scenario("QS-1")
def qs1(T, c):
    x = T.ones(5, **c.kw())
    y = T.zeros(3, **c.kw())
    w = c.make(c.normal(5, 3), requires_grad=True)
    b = c.make(c.normal(3), requires_grad=True)

    def forward(x, w, b, y):
        z = T.matmul(x, w) + b
        return z, T.nn.functional.binary_cross_entropy_with_logits(z, y)
    z, loss = c.compile(forward)(x, w, b, y)
    loss.backward()
    if not c.compiled:      # compiled, both come from one CompiledBackward node
        c.chk.equal("z.grad_fn", _name(z.grad_fn), "AddBackward0")
        c.chk.equal("loss.grad_fn", _name(loss.grad_fn), "BinaryCrossEntropyWithLogitsBackward0")
    dz = _sigmoid(_h(z)) / 3.0               # d mean(bce(z, 0)) / dz
    c.close("b.grad == sigmoid(z)/3", b.grad, dz)
    c.close("w.grad == outer(x, sigmoid(z)/3)", w.grad, np.outer(np.ones(5), dz))
    return {"z": z, "loss": loss, "w.grad": w.grad, "b.grad": b.grad}


@scenario("QS-2")
def qs2(T, c):
    x = c.make(c.normal(4))
    double = c.compile(lambda x: x * 2)
    c.chk.true(not double(x).requires_grad, "an op on a tensor without requires_grad is tracked")
    x.requires_grad_(True)
    y = c.compile(lambda x: (x * x).sum())(x)
    c.chk.true(y.requires_grad, "after requires_grad_(True), later ops are not tracked")
    y.backward()
    c.close("x.grad == 2x", x.grad, 2 * _h(x))
    return {"y": y, "x.grad": x.grad}


@scenario("QS-3")
def qs3(T, c):
    x = T.ones(5, **c.kw())
    w = c.make(c.normal(5, 3), requires_grad=True)
    b = c.make(c.normal(3), requires_grad=True)
    affine = c.compile(lambda x, w, b: T.matmul(x, w) + b)
    z = affine(x, w, b)
    c.chk.true(z.requires_grad, "z.requires_grad is False outside no_grad()")
    with T.no_grad():
        z2 = affine(x, w, b)
    c.chk.true(not z2.requires_grad, "z.requires_grad is True inside no_grad()")
    c.chk.true(not z.detach().requires_grad, "z.detach().requires_grad is True")
    c.close("no_grad value == tracked value", z2, _h(z))
    return {"z": z, "z_no_grad": z2}


@scenario("QS-4")
def qs4(T, c):
    x = c.make(c.normal(3), requires_grad=True)
    exp_sum = c.compile(lambda x: x.exp().sum())
    y = exp_sum(x)
    y.backward()
    c.chk.raises(RuntimeError, "retain_graph", y.backward, "a second backward()")
    x.grad = None
    y2 = exp_sum(x)
    y2.backward(retain_graph=True)
    y2.backward()
    c.close("x.grad after two passes with retain_graph == 2 exp(x)", x.grad, 2 * np.exp(_h(x)))
    return {"x.grad": x.grad}


@scenario("QS-5")
def qs5(T, c):
    def square(inp, transpose):
        out = (inp + 1).pow(2)
        return out.t() if transpose else out

    out_vals = {}
    for label, n, m, transpose in (("t", 4, 5, True), ("eye5", 5, 5, False)):
        inp = T.eye(n, m, requires_grad=True, **c.kw())
        # a compiler limitation (docs/compile.md): a returned view of a tensor made inside
        out = c.compile(square, falls_back=VIEW_OUT if transpose else None)(inp, transpose)
        out.backward(T.ones_like(out), retain_graph=True)
        first = inp.grad.clone()
        out.backward(T.ones_like(out), retain_graph=True)
        second = inp.grad.clone()
        inp.grad.zero_()
        out.backward(T.ones_like(out), retain_graph=True)
        third = inp.grad.clone()
        expected = 2.0 * (np.eye(n, m) + 1.0)         # 4 on the diagonal, 2 elsewhere
        c.close(f"{label}: first call", first, expected)
        c.close(f"{label}: second call accumulates", second, 2 * expected)
        c.close(f"{label}: third call after zero_()", third, expected)
        out_vals.update({f"{label}.first": first, f"{label}.second": second,
                         f"{label}.third": third})
    return out_vals


@scenario("QS-6")
def qs6(T, c):
    host = c.normal(4)
    grads = []
    f = c.compile(lambda x: (x.sin() * x).sum())
    for seed in (None, T.tensor(1.0, **c.kw())):
        x = c.make(host, requires_grad=True)
        loss = f(x)
        loss.backward() if seed is None else loss.backward(seed)
        grads.append(x.grad)
    c.close("backward() == backward(tensor(1.0))", grads[0], _h(grads[1]))
    h = host.astype(np.float64)
    c.close("x.grad == sin x + x cos x", grads[0], np.sin(h) + h * np.cos(h))
    return {"implicit": grads[0], "explicit": grads[1]}


@scenario("QS-7")
def qs7(T, c):
    def step(x, it):
        if float(x.detach().sum()) > 0:          # control flow on values
            y = (x * x).sum()
        else:
            y = x.exp().sum()
        for _ in range(it):                       # a loop whose length changes too
            y = y * 2
        return y

    step = c.compile(step, falls_back="data-dependent control flow: float(x.detach().sum())")
    out = {}
    for it, n in enumerate((2, 3, 5)):           # the shape changes every iteration
        x = c.make(c.normal(n), requires_grad=True)
        h = _h(x)
        expected = 2 * h if float(x.detach().sum()) > 0 else np.exp(h)
        y = step(x, it)
        expected = expected * 2 ** it
        y.backward()
        c.close(f"iteration {it}: x.grad", x.grad, expected)
        out[f"iter{it}.x.grad"] = x.grad
    return out


# -- Fundamentals of Autograd (seeds 000 / 002) -------------------------------------------

def _sin_chain(T, c):
    a = T.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True, **c.kw())

    def sin_double(a):
        b = T.sin(a)
        return b, 2 * b
    b, cc = c.compile(sin_double)(a)
    d = cc + 1
    out = d.sum()
    return a, b, cc, d, out


@scenario("YT-1")
def yt1(T, c):
    a, b, _, d, out = _sin_chain(T, c)
    out.backward()
    c.close("a.grad == 2 cos(a)", a.grad, 2 * np.cos(_h(a)))
    if not c.compiled:      # compiled, b comes from a CompiledBackward node
        c.chk.true("grad_fn=<SinBackward0>" in repr(b),
                   f"print(b) lacks grad_fn=<SinBackward0>: {b!r}")
    c.chk.true("grad_fn=<SumBackward0>" in repr(out),
               f"print(out) lacks grad_fn=<SumBackward0>: {out!r}")
    return {"d": d, "out": out, "a.grad": a.grad}


@scenario("YT-2", not_compiled="it inspects the eager graph's own nodes (grad_fn."
          "next_functions); a compiled call is one CompiledBackward node by design")
def yt2(T, c):
    a, _, _, d, _ = _sin_chain(T, c)

    def names(fn):
        return tuple((_name(f), i) for f, i in fn.next_functions)

    c.chk.equal("d.grad_fn", _name(d.grad_fn), "AddBackward0")
    add = d.grad_fn
    c.chk.equal("d.grad_fn.next_functions", names(add), (("MulBackward0", 0), (None, 0)))
    mul = add.next_functions[0][0]
    c.chk.equal("MulBackward0.next_functions", names(mul), (("SinBackward0", 0), (None, 0)))
    sin = mul.next_functions[0][0]
    c.chk.equal("SinBackward0.next_functions", names(sin), (("AccumulateGrad", 0),))
    acc = sin.next_functions[0][0]
    c.chk.equal("AccumulateGrad.next_functions", names(acc), ())
    c.chk.true(a.grad_fn is None, "a.grad_fn is not None for a leaf")
    return {"d": d}


@scenario("YT-3")
def yt3(T, c):
    a, b, cc, d, out = _sin_chain(T, c)
    out.backward(retain_graph=True)
    grad = c.chk.warns("retain_grad", lambda: cc.grad, "reading c.grad on a non-leaf")
    c.chk.true(grad is None, "c.grad on a non-leaf is not None")
    a.grad = None
    cc.retain_grad()
    out.backward()
    c.close("c.grad after retain_grad() == 1", cc.grad, np.ones(25))
    return {"a.grad": a.grad, "c.grad": cc.grad}


@scenario("YT-4")
def yt4(T, c):
    a, b, _, _, _ = _sin_chain(T, c)
    if str(c.device) == "cpu":                       # plt.plot converts to NumPy
        xs, ys = np.asarray(a.detach()), np.asarray(b.detach())
        c.close("np.asarray(b.detach())", ys, np.sin(xs.astype(np.float64)))
    c.chk.raises(RuntimeError, "detach()", lambda: a.numpy(), "a.numpy() on a tensor that "
                 "requires grad")
    return {"b": b.detach()}


def _tiny_model(T, c):
    class TinyModel(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1 = T.nn.Linear(1000, 100)
            self.activation = T.nn.ReLU()
            self.linear2 = T.nn.Linear(100, 10)

        def forward(self, x):
            return self.linear2(self.activation(self.linear1(x)))

    model = TinyModel()
    for layer, (n_out, n_in) in ((model.linear1, (100, 1000)), (model.linear2, (10, 100))):
        bound = 1.0 / math.sqrt(n_in)
        layer.weight = T.nn.Parameter(c.make(c.uniform(n_out, n_in, lo=-bound, hi=bound)))
        layer.bias = T.nn.Parameter(c.make(c.uniform(n_out, lo=-bound, hi=bound)))
    return model


@scenario("YT-5")
def yt5(T, c):
    model = _tiny_model(T, c)
    inp = c.make(c.uniform(16, 1000))
    ideal = c.make(c.uniform(16, 10))
    optimizer = T.optim.SGD(model.parameters(), lr=0.001)
    c.chk.true(model.linear2.weight.grad is None, "layer2.weight.grad is not None before backward")
    before = model.linear2.weight[0][0:10].clone().detach()
    prediction = c.compile(model)(inp)
    loss = (ideal - prediction).pow(2).sum()
    loss.backward()
    grad = model.linear2.weight.grad[0][0:10].clone()
    c.close("weights unchanged by backward()", model.linear2.weight[0][0:10], _h(before))
    optimizer.step()
    after = model.linear2.weight[0][0:10]
    c.close("step(): w - lr * grad", after, _h(before) - 0.001 * _h(grad))
    return {"loss": loss, "linear2.weight.grad": model.linear2.weight.grad,
            "linear1.bias.grad": model.linear1.bias.grad, "after_step": after}


@scenario("YT-6")
def yt6(T, c):
    model = _tiny_model(T, c)
    inp = c.make(c.uniform(16, 1000))
    ideal = c.make(c.uniform(16, 10))
    optimizer = T.optim.SGD(model.parameters(), lr=0.001)
    grads = []

    def train_pass():
        loss = (ideal - model(inp)).pow(2).sum()
        loss.backward()
        return loss

    train_pass = c.compile(train_pass, warm=False)       # the later passes replay
    for _ in range(5):
        train_pass()
        grads.append(model.linear2.weight.grad.clone())
    c.close("five passes accumulate: 5 x the first", grads[-1], 5 * _h(grads[0]))
    optimizer.zero_grad(set_to_none=False)
    c.close("zero_grad(set_to_none=False) zeroes", model.linear2.weight.grad, np.zeros((10, 100)))
    optimizer.zero_grad()
    c.chk.true(model.linear2.weight.grad is None, "zero_grad() (set_to_none=True) leaves a grad")
    return {"first": grads[0], "fifth": grads[-1]}


@scenario("YT-7")
def yt7(T, c):
    a = T.ones(2, 3, requires_grad=True, **c.kw())
    double = c.compile(lambda a: 2 * a)
    b1 = double(a)
    c.chk.true(b1.requires_grad, "b1 = 2 * a is not tracked")
    a.requires_grad = False
    b2 = double(a)
    c.chk.true(not b2.requires_grad, "b2 = 2 * a is tracked after a.requires_grad = False")
    c.close("b2 == 2", b2, np.full((2, 3), 2.0))
    return {"b1": b1, "b2": b2}


@scenario("YT-8")
def yt8(T, c):
    a = T.ones(2, 3, requires_grad=True, **c.kw()) * 2
    b = T.ones(2, 3, requires_grad=True, **c.kw()) * 3
    add = c.compile(lambda a, b: a + b)
    c1 = add(a, b)
    c.chk.true(c1.requires_grad, "c1 = a + b is not tracked")
    with T.no_grad():
        c2 = add(a, b)
    c.chk.true(not c2.requires_grad, "c2 = a + b inside no_grad() is tracked")
    c3 = c.compile(lambda a, b: a * b)(a, b)
    c.chk.true(c3.requires_grad, "c3 = a * b after no_grad() is not tracked")
    return {"c1": c1, "c2": c2, "c3": c3}


@scenario("YT-9")
def yt9(T, c):
    def add_tensors1(x, y):
        return x + y

    @T.no_grad()
    def add_tensors2(x, y):
        return x + y

    @T.enable_grad()
    def add_tensors3(x, y):
        return x + y

    add_tensors1, add_tensors2 = c.compile(add_tensors1), c.compile(add_tensors2)
    add_tensors3 = c.compile(add_tensors3, falls_back="enable_grad() inside a function "
                             "called under no_grad()")
    a = T.ones(2, 3, requires_grad=True, **c.kw()) * 2
    b = T.ones(2, 3, requires_grad=True, **c.kw()) * 3
    c.chk.true(add_tensors1(a, b).requires_grad, "undecorated function is not tracked")
    c.chk.true(not add_tensors2(a, b).requires_grad, "@no_grad() function is tracked")
    with T.no_grad():
        with T.enable_grad():
            inner = a + b
        c.chk.true(inner.requires_grad, "enable_grad() inside no_grad() is not tracked")
        c.chk.true(add_tensors3(a, b).requires_grad, "@enable_grad() inside no_grad() untracked")
        c.chk.true(not (a + b).requires_grad, "no_grad() is not restored after enable_grad()")
    return {"sum": add_tensors2(a, b)}


@scenario("YT-10")
def yt10(T, c):
    x = c.make(c.uniform(5), requires_grad=True)
    y = c.compile(lambda x: x.detach())(x)
    c.close("y == x", y, _h(x))
    c.chk.true(not y.requires_grad, "x.detach() requires grad")
    c.chk.true("requires_grad=True" in repr(x), f"print(x) lacks requires_grad=True: {x!r}")
    c.chk.true("requires_grad" not in repr(y), f"print(y) mentions requires_grad: {y!r}")
    return {"y": y}


@scenario("YT-11")
def yt11(T, c):
    a = T.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True, **c.kw())
    c.chk.raises(RuntimeError, "leaf Variable that requires grad", lambda: T.sin_(a),
                 "sin_(a) on a leaf that requires grad")
    c.chk.true(a.grad is None and a.grad_fn is None, "the failed sin_ changed the leaf")
    c.close("the failed sin_ left a unchanged", a, np.linspace(0.0, 2.0 * math.pi, 25))
    x = c.make(c.normal(4), requires_grad=True)
    if not c.oracle:
        # Beyond PyTorch: changing a saved tensor in place keeps what backward needs.
        def copy_sin(x):
            y = x * 1.0
            return y, y.sin()
        y, z = c.compile(copy_sin)(x)
        y.add_(1.0)
        z.sum().backward()
        c.close("backward after y.add_() uses the saved y: cos(x)", x.grad, np.cos(_h(x)))
    return {"a": a.detach()}


@scenario("YT-12")
def yt12(T, c):
    x = c.make(c.uniform(2, 3, lo=0.5, hi=1.5))
    y = x.clone()
    z = T.ones(2, 3, **c.kw())
    profiler = _attr(T, "autograd.profiler")
    step = c.compile(lambda z, x, y: (z / x) * y, warm=False)    # traced once, replayed
    with profiler.profile() as prf:
        with profiler.record_function("doubling"):
            for _ in range(1000):
                z = step(z, x, y)
    averages = prf.key_averages()
    counts = {evt.key: evt.count for evt in averages}
    for kind in ("div", "mul"):
        hits = {k: n for k, n in counts.items() if kind in k.lower()}
        c.chk.true(any(n == 1000 for n in hits.values()),
                   f"no profiler row for {kind} with 1000 calls: {hits or counts}")
    c.chk.true(any("doubling" in k for k in counts), "record_function('doubling') has no row")
    table = averages.table(sort_by="self_cpu_time_total")
    c.chk.true("1000" in table and "Self CPU" in table, f"table lacks counts or Self CPU:\n{table}")
    path = os.path.join(tempfile.mkdtemp(prefix="polygrad-trace-"), "trace.json")
    prf.export_chrome_trace(path)
    import json
    with open(path) as f:
        trace = json.load(f)
    c.chk.true(bool(trace), "export_chrome_trace wrote an empty trace")
    c.close("z stays 1 (y == x)", z, np.ones((2, 3)))
    return {"z": z}


_WHILE = "data-dependent control flow: while y.data.norm() < 1000"


def _doubling(T, c, x):
    y = x * 2
    k = 1
    while y.data.norm() < 1000:
        y = y * 2
        k += 1
    return y, k


@scenario("YT-13")
def yt13(T, c):
    x = c.make(c.normal(3), requires_grad=True)
    y, k = c.compile(lambda x: _doubling(T, c, x), falls_back=_WHILE)(x)
    c.chk.raises(RuntimeError, "grad can be implicitly created only for scalar outputs",
                 y.backward, "y.backward() on a non-scalar y")
    v = T.tensor([0.1, 1.0, 0.0001], **c.kw())
    y.backward(v)
    c.close("x.grad == v * 2**k", x.grad, _h(v) * 2.0 ** k)
    return {"y": y, "x.grad": x.grad}


def _exp_adder(x, y):
    return 2 * x.exp() + 3 * y


@scenario("YT-14")
def yt14(T, c):
    jacobian = _attr(T, "autograd.functional").jacobian
    out = {}
    for n in (1, 3):
        inputs = (c.make(c.uniform(n)), c.make(c.uniform(n)))
        jx, jy = jacobian(c.compile(_exp_adder), inputs)
        c.close(f"n={n}: d/dx == diag(2 e^x)", jx, np.diag(2 * np.exp(_h(inputs[0]))))
        c.close(f"n={n}: d/dy == 3 I", jy, 3 * np.eye(n))
        out.update({f"n{n}.dx": jx, f"n{n}.dy": jy})
    return out


@scenario("YT-15")
def yt15(T, c):
    F = _attr(T, "autograd.functional")

    def pow_reducer(x):
        return x.pow(3).sum()

    def do_some_doubling(x):
        return _doubling(T, c, x)[0]

    x = c.make(c.uniform(3, lo=0.5, hi=1.5))
    v = c.make(c.normal(3))
    h = _h(x)
    forward_mode = "forward-mode AD runs eagerly (docs/compile.md)"
    hess = F.hessian(c.compile(pow_reducer), x)
    c.close("hessian == diag(6x)", hess, np.diag(6 * h))
    _, hvp = F.hvp(c.compile(pow_reducer, falls_back=forward_mode), x, v)
    _, vhp = F.vhp(c.compile(pow_reducer), x, v)
    c.close("hvp == 6 x v", hvp, 6 * h * _h(v))
    c.close("hvp == vhp (symmetric Hessian)", vhp, _h(hvp))
    inputs = c.make(c.normal(3))
    grads = T.tensor([0.1, 1.0, 0.0001], **c.kw())
    y, k = _doubling(T, c, inputs)
    output, vjp = F.vjp(c.compile(do_some_doubling, falls_back=_WHILE), inputs, v=grads)
    c.close("vjp == v * 2**k", vjp, _h(grads) * 2.0 ** k)
    c.close("vjp output", output, _h(y))
    xs = (c.make(c.uniform(3)), c.make(c.uniform(3)))
    t = c.make(c.normal(3))
    _, jvp = F.jvp(c.compile(_exp_adder, falls_back=forward_mode), xs, (t, t))
    c.close("jvp == 2 e^x t + 3 t", jvp, 2 * np.exp(_h(xs[0])) * _h(t) + 3 * _h(t))
    return {"hessian": hess, "hvp": hvp, "vhp": vhp, "vjp": vjp, "jvp": jvp}


# -- Blitz (seed 003) ---------------------------------------------------------------------------

@scenario("BZ-1")
def bz1(T, c):
    x = T.autograd.Variable(T.ones(2, 2, **c.kw()), requires_grad=True)

    def forward(x):
        y = x + 2
        z = y * y * 3
        return y, z.mean()
    y, out = c.compile(forward)(x)
    out.backward()
    c.close("x.grad == 4.5", x.grad, np.full((2, 2), 4.5))
    c.close("out == 27", out, np.float64(27.0))
    c.chk.true(not x.data.requires_grad, "x.data requires grad")
    c.chk.true(y.grad_fn is not None, "y.grad_fn is None")
    c.chk.true(x.grad_fn is None, "x.grad_fn is not None for a leaf")
    return {"x.grad": x.grad, "out": out}


@scenario("BZ-2")
def bz2(T, c):
    x = c.make(c.normal(3), requires_grad=True)
    y, k = c.compile(lambda x: _doubling(T, c, x), falls_back=_WHILE)(x)
    gradients = T.tensor([0.1, 1.0, 0.0001], **c.kw())
    y.backward(gradients)
    c.close("x.grad == gradients * 2**k", x.grad, _h(gradients) * 2.0 ** k)
    return {"y": y, "x.grad": x.grad}


SCENARIOS.update(BUFFER_SCENARIOS)     # after the tutorials', in SCENARIO_IDS order
