"""Peak memory of the W3-large training step: polygrad on numpy against the same step
written by hand in numpy (and polygrad on torch against native torch), each contender in a
process of its own so that one's peak cannot hide another's.

Peak resident memory over ``--steps`` training steps (Linux's VmHWM, reset once the model
and inputs exist, so initialisation's peak does not count; ``ru_maxrss`` where it cannot be
reset), and that peak minus the resident memory before the steps (the libraries' own
import footprint and the model cancel).
The ratio polygrad / by-hand is what carries over between machines.

    python benchmarks/bench_memory.py [--steps 3] [--sizes 4096,4096,4096,10] [--batch 512]
"""

import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def child(name, sizes, batch, steps):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path.insert(0, HERE)
    sys.argv = [sys.argv[0]]              # bench_tinymodel reads --threads from argv
    import bench_tinymodel as bt
    init = bt.init_weights(sizes)
    lr = 1e-6
    if name == "polygrad numpy":
        step = bt.polygrad_step("numpy", sizes, batch, init, lr)
    elif name == "polygrad torch":
        step = bt.polygrad_step("torch", sizes, batch, init, lr)
    elif name == "native torch":
        step = bt.torch_step(sizes, batch, init, lr)
    else:
        step = bt.numpy_step(sizes, batch, init, lr)
    before = _rss_mib()
    reset = _reset_peak()          # the steps' peak, not the model's initialisation
    for _ in range(steps):
        step()
    peak = _peak_mib() if reset else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux
    print(json.dumps({"name": name, "peak_mib": peak, "base_mib": before, "reset": reset}))


def _reset_peak():
    """Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--sizes", default="4096,4096,4096,10")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        child(args.child, sizes, args.batch, args.steps)
        return
    names = ["polygrad numpy", "numpy by hand"]
    try:
        import importlib.util
        if importlib.util.find_spec("torch"):
            names += ["polygrad torch", "native torch"]
    except ImportError:
        pass
    rows = {}
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--steps",
                              str(args.steps), "--sizes", args.sizes, "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True)
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"W3 large peak memory ({args.sizes}, batch {args.batch}, {args.steps} steps)")
    print("| contender | peak RSS MiB | above the model's footprint MiB |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['peak_mib']:.0f} | {r['peak_mib'] - r['base_mib']:.0f} |")
    for a, b in (("polygrad numpy", "numpy by hand"), ("polygrad torch", "native torch")):
        if a in rows and b in rows:
            ra, rb = rows[a], rows[b]
            print(f"  {a} / {b}: peak {ra['peak_mib'] / rb['peak_mib']:.2f}x, above footprint "
                  f"{(ra['peak_mib'] - ra['base_mib']) / (rb['peak_mib'] - rb['base_mib']):.2f}x")


if __name__ == "__main__":
    main()
