"""Eager polygrad at earlier commits against the working tree: has eager got slower?

Each revision is checked out into a temporary git worktree and imported from there (its
``polygrad``, ``polygrad_backends`` and ``polygrad_conformance`` folders, as the installed
package maps them); native torch runs beside them as a fixed peer. Every round runs each
contender once, in turn, as a fresh subprocess on one core (``taskset -c 0`` where it
exists, one BLAS and torch thread), timing this process's CPU time; the table shows the
median over the rounds and each tree's ratio to the first revision.

    python benchmarks/bench_eager_history.py REV [REV ...] [--rounds 7]

e.g. ``e8809be`` (before polygrad.compile) against the working tree: the tiny eager
workloads W2 (µs per op), W1 N=25, the W3 TinyModel SGD step and W4 (µs per step), all on
the numpy backend. Revisions must be at least as new as the repository's current layout
(backends/ installed as polygrad_backends).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from _util import table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"polygrad": "polygrad", "polygrad_backends": "backends",
            "polygrad_conformance": "conformance"}

# one contender's run: argv[1] is the folder holding the packages, or "torch"
CHILD = r'''
import json, math, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
where = sys.argv[1]
if where == "torch":
    import torch as lib
    lib.set_num_threads(1)
    kw = {}
else:
    sys.path.insert(0, where)
    import polygrad as lib
    import polygrad_backends
    assert polygrad_backends.__file__.startswith(where), polygrad_backends.__file__
    kw = {"backend": "numpy"}


def best(f, number, repeat=5):
    f()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        for _ in range(number):
            f()
        times.append((time.process_time() - t) / number)
    return min(times)


def tensor(a, grad=False):
    t = lib.from_numpy(a.copy(), **kw) if kw else lib.from_numpy(a.copy())
    return t.requires_grad_() if grad else t


rng = np.random.default_rng(0)
x0 = rng.uniform(0.5, 1.5, (2, 3)).astype(np.float32)    # z stays near 1: no inf, no subnormals
x, y = tensor(x0, True), tensor(x0, True)


def w2():
    z = lib.ones(2, 3, requires_grad=True, **kw)
    for _ in range(1000):
        z = (z / x) * y
    z.sum().backward()


a = lib.linspace(0.0, 2 * math.pi, steps=25, requires_grad=True, **kw)


def w1():
    a.grad = None
    (2 * lib.sin(a) + 1).sum().backward()


net = lib.nn.Sequential(lib.nn.Linear(1000, 100, **kw), lib.nn.ReLU(),
                        lib.nn.Linear(100, 10, **kw))
opt = lib.optim.SGD(net.parameters(), lr=1e-3)
inputs = tensor(rng.standard_normal((16, 1000)).astype(np.float32))
ideal = tensor(rng.standard_normal((16, 10)).astype(np.float32))


def w3():
    (ideal - net(inputs)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()


ones, zeros = lib.ones(5, **kw), lib.zeros(3, **kw)
w = tensor(rng.standard_normal((5, 3)).astype(np.float32), True)
b = tensor(rng.standard_normal(3).astype(np.float32), True)


def w4():
    w.grad = b.grad = None
    lib.nn.functional.binary_cross_entropy_with_logits(lib.matmul(ones, w) + b,
                                                       zeros).backward()


print(json.dumps({"W2 µs/op": best(w2, 2) / 2000 * 1e6, "W1 N=25 µs": best(w1, 300) * 1e6,
                  "W3 tiny µs": best(w3, 50) * 1e6, "W4 µs": best(w4, 300) * 1e6}))
'''


def checkout(rev, into):
    """``rev`` as a worktree under ``into``, and a folder of links that imports it."""
    tree = os.path.join(into, f"tree-{rev}")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, rev],
                   check=True, capture_output=True)
    return tree, links(tree, os.path.join(into, f"import-{rev}"))


def links(tree, folder):
    os.makedirs(folder)
    for name, path in PACKAGES.items():
        os.symlink(os.path.join(tree, path), os.path.join(folder, name))
    return folder


def run(where):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               POLYGRAD_LOAD_PLUGINS="numpy,torch")
    env.pop("PYTHONPATH", None)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    out = subprocess.run(pin + [sys.executable, "-c", CHILD, where], capture_output=True,
                         text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode:
        sys.exit(f"{where}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("revs", nargs="+", help="earlier commits to compare with the working tree")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median taken)")
    p.add_argument("--no-torch", action="store_true", help="leave native torch out")
    args = p.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="polygrad-eager-")
    trees = []
    try:
        contenders = {}
        for rev in args.revs:
            tree, folder = checkout(rev, scratch)
            trees.append(tree)
            contenders[rev] = folder
        contenders["working tree"] = links(ROOT, os.path.join(scratch, "import-working"))
        if not args.no_torch:
            contenders["native torch"] = "torch"
        runs = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, where in contenders.items():
                runs[name].append(run(where))
    finally:
        for tree in trees:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree],
                           capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    keys = list(runs[args.revs[0]][0])
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in keys}
               for name, rs in runs.items()}
    first = medians[args.revs[0]]
    rows = [[name] + [f"{m[k]:.2f} ({m[k] / first[k]:.2f}×)" for k in keys]
            for name, m in medians.items()]
    print(f"CPU time, median of {args.rounds} interleaved rounds, one core; "
          f"(ratio to {args.revs[0]})\n")
    print(table(rows, ["tree"] + keys))


if __name__ == "__main__":
    main()
