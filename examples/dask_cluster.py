"""Logistic regression with polygrad on a dask.distributed cluster.

The data is generated on the workers, in many chunks, and never comes to this
process; polygrad's forward and backward build lazy dask graphs over it, and each
step computes the loss and the gradients in one pass on the cluster. The model code
(``train``) names no backend: it takes the data's, so on a numpy array that fits in
memory the same function runs on polygrad's numpy backend.

    pip install -e . ./plugins/polygrad-dask distributed    # from the repository root
    python examples/dask_cluster.py                       # a 2-worker LocalCluster here
    python examples/dask_cluster.py --rows 200000 --steps 5
    python examples/dask_cluster.py --scheduler tcp://HOST:8786

On a real cluster, start ``dask scheduler`` on one machine and ``dask worker
tcp://HOST:8786`` on the others (each with numpy, dask and array-api-compat
installed; polygrad itself is needed only here), then pass ``--scheduler``.
"""

import argparse
import time

import polygrad as pg


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", help="address of a running dask scheduler (tcp://host:port); "
                   "default: start a LocalCluster with 2 workers here")
    p.add_argument("--rows", type=int, default=1_000_000, help="training examples")
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--chunk-rows", type=int, default=62_500, help="rows per chunk")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.5)
    return p.parse_args(argv)


def make_data(args):
    """Features and labels generated on the workers, chunked by rows, held there."""
    import dask.array as da
    from distributed import progress
    rng = da.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.features), chunks=(args.chunk_rows, args.features))
    w_true = da.linspace(-1.0, 1.0, args.features)
    y = ((X @ w_true + 0.5 * rng.standard_normal(args.rows, chunks=args.chunk_rows)) > 0) * 1.0
    X, y = X.persist(), y.persist()
    print(f"generating {args.rows:,} x {args.features} examples in {X.numblocks[0]} chunks "
          f"({X.nbytes / 2**20:.0f} MiB) on the workers")
    progress(X, y)                  # dask's progress bar, in the terminal or a notebook
    print()
    return pg.asarray(X), pg.asarray(y)


def train(X, y, args):
    """Full-batch gradient descent; returns the losses."""
    d = X.shape[1]
    w = pg.zeros(d, dtype=pg.float64, backend=X.backend, requires_grad=True)
    b = pg.zeros((), dtype=pg.float64, backend=X.backend, requires_grad=True)
    losses = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        z = X @ w + b
        loss = (pg.logaddexp(z * 0.0, z) - y * z).mean()    # binary cross-entropy with logits
        loss.backward()
        pg.compute(loss, w.grad, b.grad)                     # one pass over the chunks
        with pg.no_grad():
            w -= args.lr * w.grad
            b -= args.lr * b.grad
        w.grad = None
        b.grad = None
        pg.compute(w, b)                                     # keep the parameters' graphs short
        losses.append(loss.item())
        print(f"step {step:3d}  loss {losses[-1]:.6f}  {time.perf_counter() - t0:6.2f} s")
    return losses


def main(argv=None):
    args = parse_args(argv)
    import importlib.util
    missing = [m for m in ("dask", "distributed", "polygrad_dask")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"this example needs {', '.join(missing)}; from the repository root: "
                         "pip install -e . ./plugins/polygrad-dask distributed")
    from distributed import Client, LocalCluster
    if args.scheduler:
        client = Client(args.scheduler)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    print(f"scheduler {client.scheduler.address}, "
          f"{len(client.scheduler_info()['workers'])} workers")
    try:
        X, y = make_data(args)
        losses = train(X, y, args)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0 if losses[-1] < losses[0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
