"""W5: hessian of sum(exp(x) * sin(x)) at N=100, polygrad (numpy and torch backends) against
torch.autograd.functional.hessian, in one run, on the same float64 input.

polygrad's hessian is reverse-over-reverse: one forward and one create_graph backward
build the gradient's graph, then one raw-array backward pass per row replays it
(``jacobian``'s row loop, graph sorted once); with ``vectorize=True`` a single backward
pass carries all rows on a batch axis (torch uses vmap for the same). Nothing in either
knows the function is elementwise. The target is polygrad-on-numpy <= 0.5x torch's
default (``vectorize=False``) time; each vectorize=True row compares like with like too.

    python benchmarks/bench_hessian.py [--n 100] [--threads 1] [--quick]
"""

import argparse
import os
import sys


def _set_threads(argv):
    # BLAS reads these once, at import: set them before numpy or torch is imported
    n = argv[argv.index("--threads") + 1] if "--threads" in argv else "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    return int(n)


THREADS = _set_threads(sys.argv)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _util import table, timeit  # noqa: E402

import polygrad as pg  # noqa: E402
from polygrad.autograd import functional as F  # noqa: E402


def f(x):
    return (x.exp() * x.sin()).sum()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(THREADS)
    from torch.autograd.functional import hessian as torch_hessian

    data = np.random.default_rng(0).uniform(-1.0, 1.0, args.n)
    ref = np.diag(2 * np.exp(data) * np.cos(data))          # the closed form
    repeat = 3 if args.quick else 9
    tx = torch.tensor(data)
    runs = {
        "torch hessian (vectorize=False)": lambda: torch_hessian(f, tx),
        "torch hessian (vectorize=True)": lambda: torch_hessian(f, tx, vectorize=True),
    }
    for name in ("numpy", "torch"):
        px = pg.tensor(data, backend=name)
        runs[f"polygrad on {name}"] = (lambda px=px: F.hessian(f, px))
        runs[f"polygrad on {name} (vectorize=True)"] = (
            lambda px=px: F.hessian(f, px, vectorize=True))
    rows, times = [], {}
    for label, fn in runs.items():
        h = fn()
        h = h.detach().numpy() if hasattr(h, "detach") and not isinstance(h, pg.Tensor) \
            else h.to("numpy").numpy()
        np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-12)   # same answer first
        times[label] = timeit(fn, repeat=repeat, warmup=1)
    base = times["torch hessian (vectorize=False)"]
    for label, t in times.items():
        rows.append([label, f"{t * 1e3:.2f}", f"{t / base:.2f}x"])
    print(f"W5 hessian of sum(exp(x)*sin(x)), N={args.n}, float64, {THREADS} thread(s)\n")
    print(table(rows, ["run", "ms", "vs torch (vectorize=False)"]))
    ratio = times["polygrad on numpy"] / base
    print(f"\npolygrad on numpy / torch: {ratio:.2f}x (target <= 0.5x): "
          f"{'met' if ratio <= 0.5 else 'NOT met'}")
    vec = times["polygrad on numpy (vectorize=True)"] / times["torch hessian (vectorize=True)"]
    print(f"vectorize=True, polygrad on numpy / torch (vmap): {vec:.2f}x")


if __name__ == "__main__":
    main()
