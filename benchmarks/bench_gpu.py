"""W1 and W3 large on a GPU: polygrad on cupy and on torch-cuda against native torch CUDA
autograd, in one run. Target: polygrad <= 1.10x native torch.

W1: the YT-1 sin chain at N=1e8: a = linspace(0, 2pi, N, requires_grad), out =
    (2*sin(a) + 1).sum(), out.backward(); ms per forward+backward.
W3 large: batch 512, Linear 4096->4096->4096->10 with ReLU, loss = (ideal - pred).pow(2).sum(),
    backward, SGD step, zero_grad; ms per step.

Every timed call ends with a device synchronize (both libraries queue work), after warmup;
the figure is the median of --repeat runs. float32 throughout; TF32 off in torch (cupy does
not use it by default), so both sides do the same arithmetic. Without a GPU the rows for it
are skipped with a message; ``--quick`` shrinks the sizes (and, without a GPU, runs the same
code on torch's CPU so the script itself is exercised).

    python benchmarks/bench_gpu.py [--quick] [--repeat 10] [--json PATH] [--markdown PATH]
"""

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import table  # noqa: E402

import polygrad as pg  # noqa: E402

TARGET = 1.10


# -- what can run here ------------------------------------------------------------------------

def gpu_targets():
    """(name, kind, sync, reason): kind is "native" or a polygrad backend name."""
    out = []
    try:
        import torch
        torch_cuda = torch.cuda.is_available()
    except ImportError:
        torch, torch_cuda = None, False
    why_torch = None if torch_cuda else "torch here has no CUDA device"
    sync_torch = torch.cuda.synchronize if torch_cuda else None
    out.append(("torch native (cuda)", "native", sync_torch, why_torch))
    out.append(("polygrad on torch (cuda)", "torch", sync_torch, why_torch))
    cupy = pg.get_backend("cupy")
    why_cupy = cupy.unavailable_reason()
    out.append(("polygrad on cupy (cuda)", "cupy", cupy.synchronize, why_cupy))
    return out


def cpu_targets():
    import torch  # noqa: F401 - the CPU fallback needs torch: fail here, clearly, without it
    return [("torch native (cpu)", "native", None, None),
            ("polygrad on torch (cpu)", "torch", None, None)]


def timed(fn, sync, repeat, warmup):
    """Median ms of ``fn`` with a synchronize before each clock read."""
    def run():
        fn()
        if sync is not None:
            sync()
    for _ in range(warmup):
        run()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1e3


def release():
    """Give cached device memory back between implementations (both allocators cache)."""
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
    if pg.get_backend("cupy").unavailable_reason() is None:
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()


# -- W1: the sin chain --------------------------------------------------------------------------

def w1(kind, device, n):
    if kind == "native":
        import torch
        a = torch.linspace(0, 2 * math.pi, n, device=device, requires_grad=True)
    else:
        a = pg.linspace(0, 2 * math.pi, n, backend=kind, device=device, dtype=pg.float32,
                        requires_grad=True)

    def step():
        a.grad = None
        out = (2 * (a.sin()) + 1).sum()
        out.backward()

    def check():
        got = a.grad.detach().cpu().numpy()[:: max(1, n // 1000)]
        ref = 2 * np.cos(a.detach().cpu().numpy()[:: max(1, n // 1000)])
        return float(np.max(np.abs(got - ref)))
    return step, check


# -- W3 large: a training step ------------------------------------------------------------------

def w3(kind, device, sizes, batch):
    rng = np.random.default_rng(0)
    init = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        bound = 1 / math.sqrt(a)
        init[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (b, a)).astype(np.float32)
        init[f"{2 * i}.bias"] = rng.uniform(-bound, bound, (b,)).astype(np.float32)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    ideal = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
    if kind == "native":
        import torch as lib
        move = lambda a: lib.from_numpy(a).to(device)  # noqa: E731
        kw = {}
    else:
        lib = pg
        move = lambda a: pg.from_numpy(a, backend=kind, device=device)  # noqa: E731
        kw = {"backend": kind}
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(lib.nn.Linear(a, b, **kw))
        if i < len(sizes) - 2:
            layers.append(lib.nn.ReLU())
    net = lib.nn.Sequential(*layers).to(device)
    net.load_state_dict({k: move(v) for k, v in init.items()})
    xt, it = move(x), move(ideal)
    opt = lib.optim.SGD(net.parameters(), lr=1e-6)
    last = {}

    def step():
        pred = net(xt)
        loss = (it - pred).pow(2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        last["loss"] = loss

    def check():
        return float(last["loss"].item())
    return step, check


# -- the run ------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs (median reported)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown table here")
    args = p.parse_args(argv)
    n = 10_000 if args.quick else 100_000_000
    sizes, batch = ((64, 64, 64, 10), 16) if args.quick else ((4096, 4096, 4096, 10), 512)
    repeat = args.repeat or (3 if args.quick else 10)

    targets = [t for t in gpu_targets()]
    runnable = [t for t in targets if t[3] is None]
    device = "cuda"
    for name, _, _, reason in targets:
        if reason is not None:
            print(f"skipped {name}: {reason}")
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    except ImportError:
        print("skipped everything: torch (the native baseline) is not installed")
        return 0
    if not runnable:
        if not args.quick:
            print("no CUDA device visible: nothing to measure (run with --quick to exercise "
                  "the script on the CPU)")
            return 0
        print("no CUDA device visible: --quick runs the same code on torch's CPU instead")
        runnable, device = cpu_targets(), "cpu"
    elif not any(kind == "native" for _, kind, _, _ in runnable):
        print("no native torch CUDA baseline: times are given without ratios")

    workloads = [(f"W1 sin chain N={n:.0e}", lambda kind: w1(kind, device, n)),
                 (f"W3 large batch {batch}, {'->'.join(map(str, sizes))}",
                  lambda kind: w3(kind, device, sizes, batch))]
    results = []
    for wname, make in workloads:
        base = None
        for name, kind, sync, _ in runnable:
            step, check = make(kind)
            ms = timed(step, sync, repeat, warmup=3)
            value = check()
            if kind == "native":
                base = ms
            results.append({"workload": wname, "implementation": name, "ms": ms,
                            "check": value, "native_ms": None})
            print(f"{wname:40s} {name:28s} {ms:10.3f} ms  (check {value:.3g})", flush=True)
            del step, check
            release()
        for r in results:
            if r["workload"] == wname:
                r["native_ms"] = base
    rows = []
    for r in results:
        ratio = r["ms"] / r["native_ms"] if r["native_ms"] else None
        r["ratio"] = ratio
        verdict = "" if ratio is None or r["implementation"].startswith("torch native") else (
            "ok" if ratio <= TARGET else "over")
        rows.append([r["workload"], r["implementation"], f"{r['ms']:.3f}",
                     "-" if ratio is None else f"{ratio:.2f}x", verdict])
    md = table(rows, ["workload", "implementation", "ms (median)", "vs torch native",
                      f"<= {TARGET:.2f}x"])
    device_name = device
    if device == "cuda":
        device_name = torch.cuda.get_device_name(0)
    header = (f"bench_gpu on {device_name}: torch {torch.__version__}, python "
              f"{platform.python_version()}, median of {repeat}, float32"
              + (" (--quick)" if args.quick else ""))
    print("\n" + header + "\n\n" + md)
    meta = {"device": device_name, "torch": torch.__version__, "quick": args.quick,
            "repeat": repeat, "target_ratio": TARGET, "date": time.strftime("%Y-%m-%d"),
            "results": results}
    cupy = pg.get_backend("cupy")
    if cupy.unavailable_reason() is None:
        meta["cupy"] = dict(cupy.info())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(f"{header}\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
