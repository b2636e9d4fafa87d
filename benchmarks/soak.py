"""Soak: many TinyModel training steps, watching the process's resident memory (RSS).

A leak of one small array per step is invisible in a short benchmark and fatal in a day
of training. This runs the YT-5 TinyModel step (Linear 1000->100, ReLU, Linear 100->10,
batch 16: forward, squared-error loss, backward, SGD step, zero_grad) ``--steps`` times,
in ``--threads`` threads (each its own model), prints the RSS every ``--every`` steps and
exits 1 when RSS grew more than ``--max-growth-mib`` between the first report (after the
warm-up allocations: BLAS buffers, the allocator's arenas) and the last.

    python benchmarks/soak.py [--steps 100000] [--every 10000] [--backend numpy]
                              [--threads 1] [--max-growth-mib 20] [--inject-leak BYTES]

``--inject-leak`` keeps that many bytes per step on purpose, to check the check.
"""

import argparse
import os
import sys
import threading
import time

import numpy as np

import polygrad as pg

BATCH, DIM_IN, HIDDEN, DIM_OUT = 16, 1000, 100, 10


def rss_mib():
    """Resident memory of this process now (Linux: /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


class TinyModel(pg.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = pg.nn.Linear(DIM_IN, HIDDEN)
        self.relu = pg.nn.ReLU()
        self.layer2 = pg.nn.Linear(HIDDEN, DIM_OUT)

    def forward(self, x):
        return self.layer2(self.relu(self.layer1(x)))


def trainer(backend, seed):
    """A closure running one training step; returns the step's loss as a float."""
    rng = np.random.default_rng(seed)
    with pg.use_backend(backend):
        model = TinyModel()
    opt = pg.optim.SGD(model.parameters(), lr=1e-4)
    x = pg.from_numpy(rng.standard_normal((BATCH, DIM_IN)).astype(np.float32), backend=backend)
    ideal = pg.from_numpy(rng.standard_normal((BATCH, DIM_OUT)).astype(np.float32),
                          backend=backend)

    def step():
        loss = (ideal - model(x)).pow(2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100_000, help="steps in all threads together")
    ap.add_argument("--every", type=int, default=10_000, help="report RSS every N steps")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-growth-mib", type=float, default=20.0)
    ap.add_argument("--inject-leak", type=int, default=0, metavar="BYTES",
                    help="keep BYTES more per step (checks that the soak catches a leak)")
    args = ap.parse_args(argv)
    if args.steps < 2 * args.every:
        ap.error("--steps must be at least twice --every (growth is measured between reports)")

    done = [0]
    lock = threading.Lock()
    errors = []
    steps = [trainer(args.backend, seed) for seed in range(args.threads)]
    final = [None] * args.threads
    hoard = []

    def work(i):
        try:
            while True:
                with lock:
                    if done[0] >= args.steps:
                        return
                    done[0] += 1
                final[i] = steps[i]()
                if args.inject_leak:
                    hoard.append(b"x" * args.inject_leak)   # written, so resident
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    print(f"soak: {args.steps} TinyModel steps on {args.backend}, {args.threads} thread(s), "
          f"RSS every {args.every}")
    print(f"{'steps':>8}  {'RSS MiB':>8}  {'s':>7}")
    print(f"{0:>8}  {rss_mib():8.1f}  {0.0:7.1f}")
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    marks, next_mark = [], args.every
    while next_mark <= args.steps and not errors:
        if done[0] >= next_mark:
            marks.append((next_mark, rss_mib()))
            print(f"{next_mark:>8}  {marks[-1][1]:8.1f}  {time.perf_counter() - t0:7.1f}",
                  flush=True)
            next_mark += args.every
        else:
            time.sleep(0.01)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    losses = [float(f.item()) for f in final if f is not None]
    if not all(np.isfinite(losses)):
        print(f"soak: FAIL, a loss is not finite: {losses}")
        return 1
    growth = marks[-1][1] - marks[0][1]
    per_step = growth * 2**20 / (marks[-1][0] - marks[0][0])
    verdict = "ok" if growth <= args.max_growth_mib else "FAIL"
    print(f"soak: RSS grew {growth:+.1f} MiB from step {marks[0][0]} to {marks[-1][0]} "
          f"({per_step:+.1f} bytes/step; limit {args.max_growth_mib} MiB): {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
