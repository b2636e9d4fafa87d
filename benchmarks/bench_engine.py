"""W1 and W2: the engine's overhead and its throughput, against native torch autograd and
against the same computation written by hand in numpy, in one run.

W2: ``z = (z / x) * y`` 1000 times on (2, 3), then backward: µs per op, forward and backward.
W1: the YT-1 sin chain ``(2 * sin(a) + 1).sum()`` and its backward at N=25 and N=1e7.

    python benchmarks/bench_engine.py [--quick]
"""

import argparse
import math
import os
import platform
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit  # noqa: E402

import polygrad as pg  # noqa: E402

warnings.simplefilter("ignore", RuntimeWarning)   # W2 overflows after many divisions: by design


def w2(mod, backend=None, n=1000):
    kw = {"backend": backend} if backend else {}
    x = mod.randn(2, 3, requires_grad=True, **kw)
    y = mod.rand(2, 3, requires_grad=True, **kw)

    def forward():
        z = mod.ones(2, 3, requires_grad=True, **kw)
        for _ in range(n):
            z = (z / x) * y
        return z

    fwd = timeit(forward, repeat=5)
    def fwd_bwd():
        forward().sum().backward()
    both = timeit(fwd_bwd, repeat=5)
    return fwd / (2 * n) * 1e6, (both - fwd) / (2 * n) * 1e6


def w1_polygrad(n, backend):
    a = pg.linspace(0.0, 2 * math.pi, steps=n, requires_grad=True, backend=backend)

    def step():
        a.grad = None
        (2 * pg.sin(a) + 1).sum().backward()
    return timeit(step, repeat=5)


def w1_torch(n):
    import torch
    a = torch.linspace(0.0, 2 * math.pi, steps=n, requires_grad=True)

    def step():
        a.grad = None
        (2 * torch.sin(a) + 1).sum().backward()
    return timeit(step, repeat=5)


def w1_numpy(n):
    a = np.linspace(0.0, 2 * math.pi, n, dtype=np.float32)

    def step():
        b = np.sin(a)
        out = (2 * b + 1).sum()          # forward, as the autograd versions compute it
        g = np.ones_like(a)              # d out / d (2 sin a + 1)
        return out, 2 * g * np.cos(a)    # the hand-written gradient
    return timeit(step, repeat=5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--backend", action="append",
                        help="backend to measure (repeatable; default: numpy and torch)")
    args = parser.parse_args()
    big = 10**5 if args.quick else 10**7
    backends = args.backend or [b for b in ("numpy", "torch") if b in pg.backends()]
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"# polygrad engine benchmarks ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else "") + ")\n")
    rows = []
    ref = w2(torch) if torch else None
    if ref:
        rows.append(["native torch autograd", f"{ref[0]:.2f}", f"{ref[1]:.2f}",
                     f"{sum(ref):.2f}", "1.00"])
    for name in backends:
        f, b = w2(pg, name)
        rows.append([f"polygrad on {name}", f"{f:.2f}", f"{b:.2f}", f"{f + b:.2f}",
                     f"{(f + b) / sum(ref):.2f}" if ref else "-"])
    print("## W2: z = (z / x) * y, 1000 times on (2, 3), µs per op\n")
    print(table(rows, ["", "forward", "backward", "total", "ratio to torch"]), "\n")
    rows = []
    for n in (25, big):
        hand = w1_numpy(n)
        t = w1_torch(n) if torch else None
        for name in backends:
            p = w1_polygrad(n, name)
            rows.append([f"N={n:.0e}" if n > 1000 else f"N={n}", f"polygrad on {name}",
                         f"{p * 1e3:.3f}", f"{p / hand:.2f}", f"{p / t:.2f}" if t else "-"])
        rows.append([f"N={n:.0e}" if n > 1000 else f"N={n}", "numpy by hand", f"{hand * 1e3:.3f}",
                     "1.00", f"{hand / t:.2f}" if t else "-"])
        if t:
            rows.append([f"N={n:.0e}" if n > 1000 else f"N={n}", "native torch autograd",
                         f"{t * 1e3:.3f}", f"{t / hand:.2f}", "1.00"])
    print("## W1: the YT-1 sin chain, forward and backward, ms\n")
    print(table(rows, ["size", "", "ms", "ratio to numpy by hand", "ratio to torch"]))


if __name__ == "__main__":
    main()
