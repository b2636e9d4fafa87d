"""R1: the cost of the same numbers on every backend. polygrad's default stream (Philox4x64-10
computed on the host with numpy's integer ops) against numpy's native generator (PCG64 in C)
and against polygrad's opt-in native path (``Generator(native=True)``), for 1e6 numbers.

Reported as ratios to numpy's own ``default_rng().random`` / ``standard_normal``; the
absolute times are printed for context only.

    python benchmarks/bench_random.py [--quick]
"""

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit_interleaved  # noqa: E402

import polygrad as pg  # noqa: E402
from polygrad.plugins.random import Generator  # noqa: E402


def rows(n, repeat):
    rng = np.random.default_rng(0)
    ours = Generator().manual_seed(0)
    native = Generator(native=True).manual_seed(0)
    out = []
    for label, np_fn, pg_fn, dtype in [
        ("rand float64", lambda: rng.random(n), pg.rand, pg.float64),
        ("rand float32", lambda: rng.random(n, dtype=np.float32), pg.rand, pg.float32),
        ("randn float64", lambda: rng.standard_normal(n), pg.randn, pg.float64),
        ("randn float32", lambda: rng.standard_normal(n, dtype=np.float32), pg.randn,
         pg.float32),
    ]:
        t = timeit_interleaved({
            "numpy": np_fn,
            "philox": lambda f=pg_fn, d=dtype: f(n, dtype=d, generator=ours, backend="numpy"),
            "native": lambda f=pg_fn, d=dtype: f(n, dtype=d, generator=native, backend="numpy"),
        }, repeat=repeat)
        out.append([label, f"{t['numpy'] * 1e3:.1f}", f"{t['philox'] * 1e3:.1f}",
                    f"{t['philox'] / t['numpy']:.1f}x", f"{t['native'] / t['numpy']:.1f}x"])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 numbers, 3 repeats")
    args = parser.parse_args()
    n, repeat = (100_000, 3) if args.quick else (1_000_000, 7)
    print(f"R1: {n:.0e} random numbers on the numpy backend ({platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores), median of {repeat}")
    print(table(rows(n, repeat), ["draw", "numpy ms", "polygrad ms", "polygrad / numpy",
                                  "native=True / numpy"]))
