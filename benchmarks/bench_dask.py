"""W1 on dask: the YT-1 sin chain ``(2 * sin(a) + 1).sum()`` and its backward at N=1e8,
chunked over a 2-worker LocalCluster, against the numpy backend in one process.

The point is that it runs, on data of any size; on a 2-core machine parity is the goal
(the same cores do the same arithmetic, plus dask's scheduling and the two processes).
The dask timing includes building the lazy graphs, computing ``out`` and ``a.grad`` in one
pass on the workers and keeping ``a.grad`` there, as numpy keeps it in memory.

    python benchmarks/bench_dask.py [--n 1e7] [--chunk 2.5e6] [--repeat 3]
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit  # noqa: E402

import polygrad as pg  # noqa: E402


def sin_chain(backend, n):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=n, requires_grad=True, backend=backend)
    out = (2 * pg.sin(a) + 1).sum()
    out.backward()
    pg.compute(out, a.grad)          # a no-op on numpy; one pass on the cluster for dask
    return out.item(), a.grad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=float, default=1e8, help="elements (default 1e8)")
    p.add_argument("--chunk", type=float, default=2.5e7,
                   help="elements per dask chunk (default 2.5e7: two chunks per worker at 1e8)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    n, chunk = int(args.n), int(args.chunk)

    import dask
    from distributed import Client, LocalCluster

    import polygrad_dask
    numpy_s = timeit(lambda: sin_chain("numpy", n), repeat=args.repeat, warmup=1)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    polygrad_dask.CHUNKS = chunk
    try:
        with dask.config.set({"array.chunk-size": f"{chunk * 4}B"}):
            t0 = time.perf_counter()
            value, grad = sin_chain("dask", n)
            first = time.perf_counter() - t0
            assert grad.backend == "dask" and abs(value - n) < 1e-3 * n, value
            del grad
            dask_s = timeit(lambda: sin_chain("dask", n), repeat=args.repeat, warmup=0)
    finally:
        client.close()
        cluster.close()
    rows = [["numpy backend, 1 process", f"{numpy_s:.3f}", "1.00"],
            [f"dask backend, 2-worker LocalCluster, {math.ceil(n / chunk)} chunks",
             f"{dask_s:.3f}", f"{dask_s / numpy_s:.2f}"]]
    print(f"W1 sin chain, forward + backward, N={n:.0e}, float32 "
          f"(dask first run incl. warm-up: {first:.3f} s)\n")
    print(table(rows, ["backend", "seconds", "ratio to numpy"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
