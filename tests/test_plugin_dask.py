"""The polygrad-dask plugin: lazy, chunked autograd, on a real dask.distributed cluster.

Gradients of a chunked computation must equal the numpy backend's on the same data;
values are computed only when asked. The training test starts a real LocalCluster
(two worker processes on localhost) and compares every step with numpy.
Needs ``pip install -e ./plugins/polygrad-dask`` and distributed.
"""

import importlib.util

import numpy as np
import pytest

import polygrad as pg

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("polygrad_dask") is None
    or importlib.util.find_spec("distributed") is None,
    reason="polygrad-dask is not installed: pip install -e ./plugins/polygrad-dask distributed")


@pytest.fixture(scope="module")
def dask_backend():
    """The dask backend, registered in-process (conftest keeps entry points out)."""
    import polygrad_dask
    pg.plugins.register_plugin(polygrad_dask, name="dask")
    try:
        yield "dask"
    finally:
        pg.plugins.unregister_plugin("dask")


@pytest.fixture(scope="module")
def client(dask_backend):
    """A real two-process LocalCluster on localhost, shut down afterwards."""
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


class _CountComputes:
    """Counts graph executions on dask's local schedulers."""

    def __enter__(self):
        from dask.callbacks import Callback
        self.n = 0
        self._cb = Callback(start=lambda dsk: setattr(self, "n", self.n + 1))
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)


def _chunked(host, chunks):
    import dask.array as da
    return pg.asarray(da.from_array(host, chunks=chunks))


def test_forward_and_backward_stay_lazy_until_asked(dask_backend):
    host = np.linspace(0.0, 2.0 * np.pi, 1000)
    with _CountComputes() as count:
        a = _chunked(host, 100).requires_grad_()
        out = (2 * pg.sin(a) + 1).sum()
        out.backward()
        assert count.n == 0, "building forward and backward computed something"
        assert type(a.grad._st.array).__name__ == "Array" and a.grad.backend == "dask"
        np.testing.assert_allclose(a.grad.numpy(), 2 * np.cos(host), rtol=1e-12)
        assert count.n == 1
        value = out.item()
        assert count.n == 2 and value == pytest.approx((2 * np.sin(host) + 1).sum())


def test_compute_materializes_several_tensors_in_one_pass(dask_backend):
    x = _chunked(np.arange(12.0), 4)
    y, z = (x * 2).exp(), x.sum()
    with _CountComputes() as count:
        pg.compute(y, z)
        assert count.n == 1
        before = count.n
        np.testing.assert_allclose(z.numpy(), 66.0)
        np.testing.assert_allclose(y.numpy(), np.exp(2 * np.arange(12.0)))
    assert before == 1 and y.backend == "dask"


@pytest.mark.parametrize("name, fn", [
    ("index array with repeats", lambda x: (x[pg.tensor([0, 7, 7, 3])] ** 2).sum()),
    ("index array on axis 1", lambda x: (x[:, pg.tensor([2, 0, 2])] ** 2).sum()),
    ("boolean mask", lambda x: (x[x > 0] ** 3).sum()),
    ("partial basic key", lambda x: x[1].sum() + (x[2:9:3] ** 2).sum()),
    ("reductions", lambda x: pg.logsumexp(x, dim=1).sum() + x.std() + x.max()),
    ("matmul and broadcast", lambda x: ((x @ x.t() - 1.5) * x.sum(dim=1)).sum()),
])
def test_chunked_gradients_equal_numpy(dask_backend, name, fn):
    host = np.random.default_rng(1).standard_normal((10, 3))
    x = _chunked(host, (3, 2)).requires_grad_()
    ref = pg.from_numpy(host, backend="numpy", requires_grad=True)
    with pg.use_backend(dask_backend):
        out = fn(x)
    g, = pg.autograd.grad(out, x)
    g_ref, = pg.autograd.grad(fn(ref), ref)
    assert g.backend == "dask"
    np.testing.assert_allclose(out.item(), fn(ref).item(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-12, atol=1e-14)


def test_declared_unsupported_ops_raise_naming_backend_and_op(dask_backend):
    x = _chunked(np.array([0.0, 1.0, 2.0]), 2)
    with pytest.raises(pg.UnsupportedOperation, match=r"'dask'.*'nonzero'.*depends on the data"):
        pg.nonzero(x)


def test_logistic_regression_on_a_local_cluster_matches_numpy(client, dask_backend):
    """Train on rows chunked over two worker processes; every step equals numpy's."""
    import dask.array as da
    from distributed import get_task_stream, wait
    rng = np.random.default_rng(0)
    n, d, steps, lr = 4000, 5, 4, 0.5
    X_host = rng.standard_normal((n, d))
    y_host = (X_host @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0) * 1.0
    X_dask = client.persist(da.from_array(X_host, chunks=(n // 8, d)))
    y_dask = client.persist(da.from_array(y_host, chunks=n // 8))
    wait([X_dask, y_dask])
    holders = {w for ws in client.who_has(X_dask).values() for w in ws}
    assert X_dask.numblocks[0] >= 4 and len(holders) == 2, "data is not spread over both workers"

    def model(backend, X, y):
        w = pg.zeros(d, dtype=pg.float64, backend=backend, requires_grad=True)
        b = pg.zeros((), dtype=pg.float64, backend=backend, requires_grad=True)
        for _ in range(steps):
            z = X @ w + b
            loss = (pg.logaddexp(z * 0.0, z) - y * z).mean()
            loss.backward()
            yield loss.item(), w.grad.numpy(), b.grad.item()
            with pg.no_grad():
                w -= lr * w.grad
                b -= lr * b.grad
            w.grad = None
            b.grad = None
            pg.compute(w, b)          # keep the parameters' graphs short

    on_cluster = model(dask_backend, pg.asarray(X_dask), pg.asarray(y_dask))
    reference = model("numpy", pg.from_numpy(X_host, backend="numpy"),
                      pg.from_numpy(y_host, backend="numpy"))
    losses = []
    with get_task_stream(client) as stream:
        for (loss, gw, gb), (loss_ref, gw_ref, gb_ref) in zip(on_cluster, reference):
            np.testing.assert_allclose(loss, loss_ref, rtol=1e-12)
            np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(gb, gb_ref, rtol=1e-10, atol=1e-14)
            losses.append(loss)
    assert len(losses) == steps and losses[-1] < losses[0]
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the cluster's two workers did not both compute: {workers}"


def test_importing_the_plugin_does_not_import_dask():
    assert pg.plugins.check_import_is_light("dask") is None


def test_cluster_example_trains_on_a_running_scheduler(client):
    """examples/dask_cluster.py, pointed at this cluster's scheduler with --scheduler."""
    import os
    import subprocess
    import sys
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "dask_cluster.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    proc = subprocess.run(
        [sys.executable, example, "--scheduler", client.scheduler.address, "--rows", "20000",
         "--chunk-rows", "2500", "--steps", "3"], capture_output=True, text=True, env=env,
        timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "in 8 chunks" in proc.stdout and "2 workers" in proc.stdout
    assert proc.stdout.count("step ") == 3



@pytest.mark.parametrize("op, call, why", [
    ("take_along_axis", lambda f, t: f(t, pg.zeros((3, 2), dtype=pg.int64, backend="dask"),
                                       axis=1), "one integer array at a time"),
    ("linalg.det", lambda f, t: f(t[:, :3]), "no det"),
])
def test_unsupported_errors_survive_shape_diagnosis(dask_backend, op, call, why):
    """Inputs that would not broadcast must still report the declared gap, not a shape error."""
    t = _chunked(np.ones((3, 4)), 2)
    fn = pg
    for part in op.split("."):
        fn = getattr(fn, part)
    with pytest.raises(pg.UnsupportedOperation, match=why):
        call(fn, t)


def test_eye_with_more_columns_than_rows(dask_backend):
    """dask.array.eye drops blocks when n_cols > n_rows; the plugin builds it another way."""
    x = pg.eye(4, 5, k=1, backend=dask_backend, requires_grad=True)
    ((x + 1) ** 2).sum().backward()
    np.testing.assert_array_equal(x.detach().numpy(), np.eye(4, 5, k=1))
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (np.eye(4, 5, k=1) + 1))


def test_conformance_report_marks_dask_lazy(dask_backend):
    from polygrad_conformance import run
    report = run(["numpy", "dask"], cases=["YT-1"], dtypes=["float64"])
    assert report.ok, report.failures()
    lazy = {b["name"]: b["lazy"] for b in report.data["backends"]}
    assert lazy == {"numpy": False, "dask": True}
    line = next(x for x in report.markdown().splitlines() if x.startswith("- **dask**"))
    assert "lazy: results computed before comparison" in line
    assert "lazy: results computed" not in next(
        x for x in report.markdown().splitlines() if x.startswith("- **numpy**"))
