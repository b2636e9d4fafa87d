"""W3 and W4: training steps with polygrad.nn and polygrad.optim, against native torch
autograd and against the same step written by hand in numpy, in one run.

W3: the YT-5 TinyModel (Linear 1000->100, ReLU, Linear 100->10, batch 16): forward,
    loss = (ideal - pred).pow(2).sum(), backward, SGD step, zero_grad; µs per step on
    the numpy and torch backends and in native torch.
W3 large: batch 512, Linear 4096->4096->4096->10, the same step: polygrad-on-numpy
    against a hand-written numpy step (forward, manual backward, in-place SGD), and
    polygrad-on-torch against native torch.
W4: QS-1's one-layer net, binary_cross_entropy_with_logits forward and backward.

BLAS and torch run on ``--threads`` threads (default 1, as the targets are stated).

    python benchmarks/bench_tinymodel.py [--quick] [--threads 1] [--no-large]
"""

import argparse
import os
import sys


def _set_threads(argv):
    # BLAS reads these once, at import: set them before numpy or torch is imported
    n = "1"
    if "--threads" in argv:
        n = argv[argv.index("--threads") + 1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    return int(n)


THREADS = _set_threads(sys.argv)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit, timeit_interleaved  # noqa: E402

import polygrad as pg  # noqa: E402


def model(lib, sizes, **kw):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(lib.nn.Linear(a, b, **kw))
        if i < len(sizes) - 2:
            layers.append(lib.nn.ReLU())
    return lib.nn.Sequential(*layers)


def step_fn(lib, net, x, ideal, lr):
    optimizer = lib.optim.SGD(net.parameters(), lr=lr)

    def step():
        prediction = net(x)
        loss = (ideal - prediction).pow(2).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


def polygrad_step(backend, sizes, batch, init, lr):
    net = model(pg, sizes, backend=backend)
    net.load_state_dict({k: pg.from_numpy(v, backend=backend) for k, v in init.items()})
    x = pg.from_numpy(np.random.default_rng(1).standard_normal((batch, sizes[0]),
                                                              dtype=np.float32), backend=backend)
    ideal = pg.from_numpy(np.random.default_rng(2).standard_normal((batch, sizes[-1]),
                                                                  dtype=np.float32),
                          backend=backend)
    return step_fn(pg, net, x, ideal, lr)


def torch_step(sizes, batch, init, lr):
    import torch
    net = model(torch, sizes)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((batch, sizes[0]),
                                                                 dtype=np.float32))
    ideal = torch.from_numpy(np.random.default_rng(2).standard_normal((batch, sizes[-1]),
                                                                     dtype=np.float32))
    return step_fn(torch, net, x, ideal, lr)


def numpy_step(sizes, batch, init, lr):
    """The same training step by hand: forward, manual backward, in-place SGD."""
    n = len(sizes) - 1
    ws = [init[f"{2 * i}.weight"].copy() for i in range(n)]
    bs = [init[f"{2 * i}.bias"].copy() for i in range(n)]
    x = np.random.default_rng(1).standard_normal((batch, sizes[0]), dtype=np.float32)
    ideal = np.random.default_rng(2).standard_normal((batch, sizes[-1]), dtype=np.float32)

    def step():
        acts = [x]
        h = x
        for i in range(n):
            h = h @ ws[i].T + bs[i]
            if i < n - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        g = 2.0 * (h - ideal)                 # d/dpred of sum((ideal - pred)**2)
        for i in reversed(range(n)):
            gw = g.T @ acts[i]
            gb = g.sum(axis=0)
            if i:
                g = (g @ ws[i]) * (acts[i] > 0)
            ws[i] -= lr * gw
            bs[i] -= lr * gb
    return step


def init_weights(sizes):
    rng = np.random.default_rng(0)
    out = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        bound = 1 / np.sqrt(a)
        out[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (b, a)).astype(np.float32)
        out[f"{2 * i}.bias"] = rng.uniform(-bound, bound, b).astype(np.float32)
    return out


def w3(sizes, batch, repeat, number, has_torch, hand_numpy=False, lr=1e-3):
    # lr keeps the weights finite over every timed step (NaN and inf arithmetic times differently)
    init = init_weights(sizes)
    steps = {"polygrad numpy": polygrad_step("numpy", sizes, batch, init, lr)}
    if hand_numpy:
        steps["numpy by hand"] = numpy_step(sizes, batch, init, lr)
    if has_torch:
        steps["polygrad torch"] = polygrad_step("torch", sizes, batch, init, lr)
        steps["native torch"] = torch_step(sizes, batch, init, lr)
    rows = timeit_interleaved(steps, repeat, number=number)
    return rows


def w4(repeat, number, has_torch):
    F = pg.nn.functional
    rows = {}

    def make(lib, functional, **kw):
        x, y = lib.ones(5, **kw), lib.zeros(3, **kw)
        w = lib.randn(5, 3, requires_grad=True, **kw)
        b = lib.randn(3, requires_grad=True, **kw)

        def step():
            w.grad = b.grad = None
            z = lib.matmul(x, w) + b
            functional.binary_cross_entropy_with_logits(z, y).backward()
        return step
    rows["polygrad numpy"] = timeit(make(pg, F, backend="numpy"), repeat, number=number)
    if has_torch:
        import torch
        rows["polygrad torch"] = timeit(make(pg, F, backend="torch"), repeat, number=number)
        rows["native torch"] = timeit(make(torch, torch.nn.functional), repeat, number=number)
    return rows


def report(title, rows, pairs):
    print(f"\n{title}")
    body = [(name, f"{s * 1e6:,.0f}") for name, s in rows.items()]
    print(table(body, ["implementation", "µs per step"]))
    for a, b in pairs:
        if a in rows and b in rows:
            print(f"  {a} / {b}: {rows[a] / rows[b]:.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    p.add_argument("--no-large", action="store_true", help="skip W3 large")
    args = p.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(THREADS)
        has_torch = True
    except ImportError:
        has_torch = False
    repeat, number = (3, 20) if args.quick else (9, 100)
    print(f"threads={THREADS}  repeats={repeat}  (median)")
    rows = w3([1000, 100, 10], 16, repeat, number, has_torch)
    report("W3 TinyModel step (Linear 1000->100, ReLU, Linear 100->10, batch 16, SGD)", rows,
           [("polygrad numpy", "native torch"), ("polygrad torch", "native torch")])
    rows = w4(repeat, number * 5, has_torch)
    report("W4 one-layer BCE-with-logits forward + backward (QS-1 shapes)", rows,
           [("polygrad numpy", "native torch"), ("polygrad torch", "native torch")])
    if not args.no_large:
        rows = w3([4096, 4096, 4096, 10], 512, 2 if args.quick else 5, 1, has_torch,
                  hand_numpy=True, lr=1e-6)
        report("W3 large (batch 512, Linear 4096->4096->4096->10, SGD)", rows,
               [("polygrad numpy", "numpy by hand"), ("polygrad torch", "native torch")])


if __name__ == "__main__":
    main()
