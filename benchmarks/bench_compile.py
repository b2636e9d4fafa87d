"""polygrad.compile on the small-array workloads (issue 15): compiled polygrad against
eager polygrad, native torch autograd and the same computation written by hand in numpy,
contenders interleaved, timed in CPU time (``timeit_cpu``), ratios from one run.

W2: ``z = (z / x) * y`` 1000 times on (2, 3), forward and backward: µs per op.
W1: ``(2 * sin(a) + 1).sum()`` and its backward at N=25.
W3: the YT-5 TinyModel training step (Linear 1000->100, ReLU, Linear 100->10, batch 16,
    loss, backward, SGD step, zero_grad); the forward and loss are compiled, backward runs
    the compiled backward program, the optimizer runs eagerly.

"compiled" compiles the forward (and loss); ``backward()`` is called on its result and runs
the compiled backward program. "compiled+backward" compiles a function that also calls
``loss.backward()`` inside (W3: and ``optimizer.step()``, ``optimizer.zero_grad()``): the
forward, the backward, the gradients' accumulation into ``.grad`` and the update are then
one program.
W3 Adam: the same step with torch's Adam (its moments and step count are state).
W4: QS-1's one-layer net, binary_cross_entropy_with_logits forward and backward.

Also the first call's time (the trace) of each compiled workload. Run on one core:

    taskset -c 0 python benchmarks/bench_compile.py [--quick]
"""

import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"      # BLAS reads these once, at import

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit_interleaved  # noqa: E402

import polygrad as pg  # noqa: E402


def timeit_cpu(fns, repeat=7, warmup=2, number=1):
    """``_util.timeit_interleaved`` on this process's CPU time (``time.process_time``).

    On a shared machine a wall-clock block absorbs other processes' time slices in
    proportion to its length, which inflates slow contenders more than fast ones; CPU time
    counts only this process's work. Contenders still run interleaved (A, B, A, B ...)."""
    return timeit_interleaved(fns, repeat, warmup, number, clock=time.process_time)


def _first_call(make):
    """Seconds of the first trace of a freshly compiled step (with Adam, of the second call:
    the first creates the optimizer's state and runs eagerly)."""
    step, compiled = make()
    step()
    if compiled.stats.fallbacks:
        step()
    return compiled.stats.last_trace_time


# -- W2 ----------------------------------------------------------------------------------------

def _w2_values():
    # y = x keeps z near 1 for every n: no overflow, underflow or subnormal arithmetic,
    # whose cost would differ between contenders
    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 3)).astype(np.float32)
    return x, x.copy()


def w2_polygrad(backend, n, compiled):
    x, y = (pg.from_numpy(v, backend=backend).requires_grad_() for v in _w2_values())

    def chain(z, x, y):
        for _ in range(n):
            z = (z / x) * y
        return z
    f = pg.compile(chain) if compiled else chain

    def step():
        z = pg.ones(2, 3, requires_grad=True, backend=backend)
        f(z, x, y).sum().backward()
    return step, f


def w2_torch(n):
    import torch
    x, y = (torch.from_numpy(v).requires_grad_() for v in _w2_values())

    def step():
        z = torch.ones(2, 3, requires_grad=True)
        for _ in range(n):
            z = (z / x) * y
        z.sum().backward()
    return step


def w2_numpy(n):
    x, y = _w2_values()

    def step():
        z = np.ones((2, 3), np.float32)
        zs = []
        for _ in range(n):
            zs.append(z)
            z = (z / x) * y
        g = np.ones_like(z)
        gx = np.zeros_like(x)
        gy = np.zeros_like(y)
        for z in reversed(zs):          # d((z / x) * y): dz = g*y/x, dx = -g*y*z/x², dy = g*z/x
            q = z / x
            gy += g * q
            gq = g * y
            gx -= gq * q / x
            g = gq / x
        return g, gx, gy
    return step


# -- W1 ----------------------------------------------------------------------------------------

def w1_polygrad(backend, n, compiled, whole=False):
    a = pg.linspace(0.0, 2 * np.pi, steps=n, requires_grad=True, backend=backend)

    def loss(a):
        return (2 * pg.sin(a) + 1).sum()

    def loss_and_grad(a):           # backward() inside: one program for both
        out = loss(a)
        out.backward()
        return out.detach()
    if whole:
        f = pg.compile(loss_and_grad)

        def step():
            a.grad = None
            f(a)
        return step, f
    f = pg.compile(loss) if compiled else loss

    def step():
        a.grad = None
        f(a).backward()
    return step, f


def w1_torch(n):
    import torch
    a = torch.linspace(0.0, 2 * np.pi, steps=n, requires_grad=True)

    def step():
        a.grad = None
        (2 * torch.sin(a) + 1).sum().backward()
    return step


def w1_numpy(n):
    a = np.linspace(0.0, 2 * np.pi, n, dtype=np.float32)

    def step():
        out = (2 * np.sin(a) + 1).sum()
        return out, 2 * np.cos(a)
    return step


# -- W3 ----------------------------------------------------------------------------------------

SIZES, BATCH, LR = (1000, 100, 10), 16, 1e-3


def _init():
    rng = np.random.default_rng(0)
    out = {}
    for i, (a, b) in enumerate(zip(SIZES, SIZES[1:])):
        bound = 1 / np.sqrt(a)
        out[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (b, a)).astype(np.float32)
        out[f"{2 * i}.bias"] = rng.uniform(-bound, bound, b).astype(np.float32)
    x = np.random.default_rng(1).standard_normal((BATCH, SIZES[0]), dtype=np.float32)
    ideal = np.random.default_rng(2).standard_normal((BATCH, SIZES[-1]), dtype=np.float32)
    return out, x, ideal


def _model(lib, **kw):
    return lib.nn.Sequential(lib.nn.Linear(SIZES[0], SIZES[1], **kw), lib.nn.ReLU(),
                             lib.nn.Linear(SIZES[1], SIZES[2], **kw))


def w3_polygrad(backend, compiled, whole=False, opt="SGD"):
    init, x, ideal = _init()
    net = _model(pg, backend=backend)
    net.load_state_dict({k: pg.from_numpy(v, backend=backend) for k, v in init.items()})
    x, ideal = pg.from_numpy(x, backend=backend), pg.from_numpy(ideal, backend=backend)
    optimizer = getattr(pg.optim, opt)(net.parameters(), lr=LR)

    def loss(x, ideal):
        return (ideal - net(x)).pow(2).sum()

    def train_step(x, ideal):       # the whole step: one program
        out = loss(x, ideal)
        out.backward()
        optimizer.step()
        optimizer.zero_grad()
        return out.detach()
    if whole:
        f = pg.compile(train_step)

        def step():
            f(x, ideal)
        return step, f
    f = pg.compile(loss) if compiled else loss

    def step():
        f(x, ideal).backward()
        optimizer.step()
        optimizer.zero_grad()
    return step, f


def w3_torch(opt="SGD"):
    import torch
    init, x, ideal = _init()
    net = _model(torch)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    x, ideal = torch.from_numpy(x), torch.from_numpy(ideal)
    optimizer = getattr(torch.optim, opt)(net.parameters(), lr=LR)

    def step():
        (ideal - net(x)).pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


def w3_numpy():
    init, x, ideal = _init()
    w1, b1 = init["0.weight"].copy(), init["0.bias"].copy()
    w2, b2 = init["2.weight"].copy(), init["2.bias"].copy()

    def step():
        h = np.maximum(x @ w1.T + b1, 0)
        pred = h @ w2.T + b2
        g = 2.0 * (pred - ideal)
        gw2, gb2 = g.T @ h, g.sum(axis=0)
        gh = (g @ w2) * (h > 0)
        gw1, gb1 = gh.T @ x, gh.sum(axis=0)
        for p, gp in ((w2, gw2), (b2, gb2), (w1, gw1), (b1, gb1)):
            p -= LR * gp
    return step


def w3_numpy_adam(beta1=0.9, beta2=0.999, eps=1e-8):
    """W3's step with torch's Adam update (single-tensor form), by hand."""
    init, x, ideal = _init()
    w1, b1 = init["0.weight"].copy(), init["0.bias"].copy()
    w2, b2 = init["2.weight"].copy(), init["2.bias"].copy()
    params = (w2, b2, w1, b1)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    count = [0]

    def step():
        h = np.maximum(x @ w1.T + b1, 0)
        pred = h @ w2.T + b2
        g = 2.0 * (pred - ideal)
        gw2, gb2 = g.T @ h, g.sum(axis=0)
        gh = (g @ w2) * (h > 0)
        gw1, gb1 = gh.T @ x, gh.sum(axis=0)
        count[0] += 1
        t = count[0]
        step_size = LR / (1 - beta1 ** t)
        bc2 = np.sqrt(1 - beta2 ** t)
        for p, gp, mk, vk in zip(params, (gw2, gb2, gw1, gb1), m, v):
            mk += (gp - mk) * (1 - beta1)
            vk *= beta2
            vk += gp * gp * (1 - beta2)
            p -= step_size * mk / (np.sqrt(vk) / bc2 + eps)
    return step


# -- W4 ----------------------------------------------------------------------------------------

def w4_polygrad(backend, compiled, whole=False):
    F = pg.nn.functional
    x, y = pg.ones(5, backend=backend), pg.zeros(3, backend=backend)
    w = pg.randn(5, 3, requires_grad=True, backend=backend)
    b = pg.randn(3, requires_grad=True, backend=backend)

    def loss(w, b):
        return F.binary_cross_entropy_with_logits(pg.matmul(x, w) + b, y)

    def loss_and_grad(w, b):        # backward() inside: one program for both
        out = loss(w, b)
        out.backward()
        return out.detach()
    if whole:
        f = pg.compile(loss_and_grad)

        def step():
            w.grad = b.grad = None
            f(w, b)
        return step, f
    f = pg.compile(loss) if compiled else loss

    def step():
        w.grad = b.grad = None
        f(w, b).backward()
    return step, f


def w4_torch():
    import torch
    x, y = torch.ones(5), torch.zeros(3)
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)

    def step():
        w.grad = b.grad = None
        torch.nn.functional.binary_cross_entropy_with_logits(torch.matmul(x, w) + b,
                                                             y).backward()
    return step


def w4_numpy():
    rng = np.random.default_rng(0)
    x, y = np.ones(5, np.float32), np.zeros(3, np.float32)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)

    def step():
        z = x @ w + b
        loss = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean()
        gz = (1 / (1 + np.exp(-z)) - y) / z.size
        return loss, np.outer(x, gz), gz
    return step


# -- the run -----------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = p.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    backends = [b for b in ("numpy", "torch") if b in pg.backends()]
    repeat = 3 if args.quick else 9
    n2 = 1000
    work = {
        "W2 (µs per op)": (
            {f"{kind} {b}": w2_polygrad(b, n2, kind == "compiled")[0]
             for b in backends for kind in ("compiled", "eager")},
            w2_torch(n2) if torch else None, w2_numpy(n2), 2 * n2, 2 if args.quick else 5,
            lambda: w2_polygrad("numpy", n2, True)),
        "W1 N=25 (µs)": (
            {"compiled+backward numpy": w1_polygrad("numpy", 25, True, whole=True)[0],
             **{f"{kind} {b}": w1_polygrad(b, 25, kind == "compiled")[0]
                for b in backends for kind in ("compiled", "eager")}},
            w1_torch(25) if torch else None, w1_numpy(25), 1, 200,
            lambda: w1_polygrad("numpy", 25, True, whole=True)),
        "W3 TinyModel step (µs)": (
            {"compiled+backward numpy": w3_polygrad("numpy", True, whole=True)[0],
             **{f"{kind} {b}": w3_polygrad(b, kind == "compiled")[0]
                for b in backends for kind in ("compiled", "eager")}},
            w3_torch() if torch else None, w3_numpy(), 1, 50,
            lambda: w3_polygrad("numpy", True, whole=True)),
        "W3 TinyModel step with Adam (µs)": (
            {"compiled+backward numpy": w3_polygrad("numpy", True, True, "Adam")[0],
             **{f"{kind} {b}": w3_polygrad(b, kind == "compiled", False, "Adam")[0]
                for b in backends for kind in ("compiled", "eager")}},
            w3_torch("Adam") if torch else None, w3_numpy_adam(), 1, 50,
            lambda: w3_polygrad("numpy", True, True, "Adam")),
        "W4 BCE step (µs)": (
            {"compiled+backward numpy": w4_polygrad("numpy", True, whole=True)[0],
             **{f"{kind} {b}": w4_polygrad(b, kind == "compiled")[0]
                for b in backends for kind in ("compiled", "eager")}},
            w4_torch() if torch else None, w4_numpy(), 1, 200,
            lambda: w4_polygrad("numpy", True, whole=True)),
    }
    print(f"threads=1  repeats={repeat}  (median of interleaved runs, CPU time)")
    for title, (ours, ref, hand, per, number, make) in work.items():
        fns = dict(ours)
        if ref is not None:
            fns["native torch"] = ref
        fns["numpy by hand"] = hand
        rows = timeit_cpu(fns, repeat=repeat, number=number)
        trace = _first_call(make)
        body = []
        for name, s in rows.items():
            body.append([name, f"{s / per * 1e6:.2f}",
                         f"{s / rows['native torch']:.2f}" if ref is not None else "-",
                         f"{s / rows['numpy by hand']:.2f}"])
        print(f"\n## {title}; first call (trace) of the fastest compiled numpy form: "
              f"{trace * 1e3:.1f} ms\n")
        print(table(body, ["", "time", "/ native torch", "/ numpy by hand"]))


if __name__ == "__main__":
    main()
