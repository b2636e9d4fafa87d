"""Reliability under threads, hostile plugins, bad input and failing files (issue 17).

Real threads, real subprocesses and throwaway plugin distributions on PYTHONPATH (built
as tests/test_plugin_host.py builds them); no mocks.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import polygrad as pg
from polygrad.graph.engine import EXTENSION_POINTS, get_extension

# -- 1. threads -------------------------------------------------------------------------------

THREADS, CALLS = 4, 500


def _hammer(fn):
    """Run ``fn`` in THREADS threads started together; re-raise the first error."""
    barrier = threading.Barrier(THREADS)
    errors = []

    def body():
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=body) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("backend,size", [("numpy", 1000), ("numpy", 4), ("torch", 1000),
                                          ("torch", 4)])
def test_concurrent_backward_accumulates_exactly(backend, size):
    if backend == "torch":
        pytest.importorskip("torch")
    w = pg.zeros(size, dtype=pg.float64, backend=backend, requires_grad=True)

    def work():
        for _ in range(CALLS):
            (w * 1.0 + 1.0).sum().backward()
    _hammer(work)
    got = np.asarray(w.grad.tolist())
    assert np.all(got == THREADS * CALLS), (got.min(), got.max())


def _nothing_installed():
    return {name: get_extension(name) for name in EXTENSION_POINTS if get_extension(name)}


def test_profiles_and_anomaly_in_two_threads_left_in_any_order():
    x = pg.ones(3, requires_grad=True)
    step = [threading.Event() for _ in range(4)]
    leftovers, errors = {}, []

    def worker(me, enter_at, exit_at):
        try:
            warnings.simplefilter("ignore")
            step[enter_at].wait()
            with pg.autograd.detect_anomaly(), pg.autograd.profiler.profile() as prof:
                (x * 2).sum().backward()
                step[enter_at + 1].set()
                step[exit_at].wait(timeout=10)
            assert {e.key for e in prof.key_averages()} >= {"multiply", "sum"}
            leftovers[me] = _nothing_installed()
            (x * 2).sum()          # no profile open: nothing more recorded
            assert len(prof.key_averages()) == len({e.key for e in prof.key_averages()})
            if exit_at == 2:
                step[3].set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    # thread a enters first, b second; a leaves last (b's exit sets step 3)
    a = threading.Thread(target=worker, args=("a", 0, 3))
    b = threading.Thread(target=worker, args=("b", 1, 2))
    a.start()
    b.start()
    step[0].set()
    a.join(20)
    b.join(20)
    assert not errors, errors
    assert leftovers == {"a": {}, "b": {}}
    assert _nothing_installed() == {}


def test_nested_profiles_left_out_of_order_leave_nothing_installed():
    x = pg.ones(3, requires_grad=True)
    outer, inner = pg.autograd.profiler.profile(), pg.autograd.profiler.profile()
    outer.__enter__()
    inner.__enter__()
    (x * 2).sum().backward()
    outer.__exit__(None, None, None)        # the outer one first: out of order
    (x / 2).sum()                           # seen by inner only
    inner.__exit__(None, None, None)
    assert _nothing_installed() == {}
    assert "divide" in {e.key for e in inner.key_averages()}
    assert "divide" not in {e.key for e in outer.key_averages()}
    (x - 1).sum()                           # neither records after its exit
    assert "subtract" not in {e.key for e in inner.key_averages()}


def test_three_profiles_middle_left_first():
    x = pg.ones(2)
    p = [pg.autograd.profiler.profile() for _ in range(3)]
    for q in p:
        q.__enter__()
    p[1].__exit__(None, None, None)
    (x + 1)
    p[2].__exit__(None, None, None)
    (x * 3)                                 # p[0] is open again on top: it records this
    p[0].__exit__(None, None, None)
    assert "multiply" in {e.key for e in p[0].key_averages()}
    assert "multiply" not in {e.key for e in p[1].key_averages()}
    assert _nothing_installed() == {}


def test_anomaly_contexts_left_out_of_order_in_one_thread():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = pg.autograd.detect_anomaly(), pg.autograd.detect_anomaly()
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)
        assert pg.autograd.anomaly_mode.is_anomaly_enabled()     # b is still open
        b.__exit__(None, None, None)
    assert not pg.autograd.anomaly_mode.is_anomaly_enabled()
    assert _nothing_installed() == {}


def test_one_detect_anomaly_decorator_used_by_two_threads():
    deco = pg.autograd.detect_anomaly()
    gate = threading.Barrier(2)

    @deco
    def f():
        gate.wait(timeout=10)
        assert pg.autograd.anomaly_mode.is_anomaly_enabled()
        gate.wait(timeout=10)
        return _nothing_installed()
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = [threading.Thread(target=lambda: (f(), out.append(_nothing_installed())))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
    assert out == [{}, {}]


# each thread's work: its record_function label, the op it runs, and whether it profiles
RECORDERS = {"a": ("block_a", "multiply", True), "b": ("block_b", "divide", True),
             "c": ("block_c", "subtract", False)}


def test_record_function_writes_only_into_its_own_threads_profiles():
    """Three threads inside their blocks at the same moments (barriers), one decorated
    function shared by all: a profile holds its own thread's ops and ranges, no other's."""
    from polygrad.autograd.profiler import GC_ROW, profile, record_function
    x = pg.ones(3)
    gate = threading.Barrier(len(RECORDERS))
    shared = record_function("shared")

    @shared
    def both_sides(op):
        gate.wait(timeout=10)          # every thread is inside "shared" at once
        op()
        gate.wait(timeout=10)
    ops = {"multiply": lambda: x * 2, "divide": lambda: x / 2, "subtract": lambda: x - 1}
    keys, errors = {}, []

    def worker(me):
        label, op, profiled = RECORDERS[me]
        try:
            with profile(enabled=profiled) as prof:
                gate.wait(timeout=10)
                with record_function(label):
                    gate.wait(timeout=10)
                    ops[op]()
                    both_sides(ops[op])
                    gate.wait(timeout=10)
            keys[me] = sorted(e.key for e in prof.function_events
                              if e.key != GC_ROW) if profiled else None
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    ts = [threading.Thread(target=worker, args=(me,)) for me in RECORDERS]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors
    for me, (label, op, profiled) in RECORDERS.items():
        if profiled:
            assert keys[me] == sorted([label, op, "shared", op]), (me, keys[me])
    assert shared._open == {}         # every entry left in the thread that made it


# -- 2. hostile plugins -----------------------------------------------------------------------

GOOD = '''
import polygrad

backend = polygrad.Backend(
    name="{backend}", module="numpy", load=lambda: __import__("numpy"),
    array_types=lambda: (__import__("numpy").ndarray,),
    to_numpy=lambda a: a, from_numpy=lambda a, device=None: a.copy())

@polygrad.hookimpl
def register_backends(register):
    register(backend)
'''

HOSTILE = {
    # sorts before "numpy" and registers a backend named numpy
    "aaa_usurper": GOOD.format(backend="numpy"),
    "exiter": "import sys\nsys.exit(3)\n",
    "interrupter": "raise KeyboardInterrupt\n",
    "chatty": "print('hello from a plugin')\n" + GOOD.format(backend="chatty"),
}


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    """Throwaway installed distributions (dist-info with entry points) on PYTHONPATH."""
    root = tmp_path_factory.mktemp("hostile")
    for name, source in HOSTILE.items():
        dist = f"hostile-{name.replace('_', '-')}"
        (root / f"hostile_{name}.py").write_text(source)
        info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[polygrad]\n{name} = hostile_{name}\n")
    # a third-party entry point named like the built-in one
    (root / "hostile_twin.py").write_text(GOOD.format(backend="twinnumpy"))
    info = root / "hostile_twin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-twin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[polygrad]\nnumpy = hostile_twin\n")
    return root


def _py(site, code, *args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    base["PYTHONPATH"] = os.pathsep.join([str(site), base.get("PYTHONPATH", "")])
    base.update(env)
    return subprocess.run([sys.executable, *args, "-c", textwrap.dedent(code)] if code else
                          [sys.executable, *args], capture_output=True, text=True, env=base,
                          timeout=180)


def test_hostile_plugins_are_reported_and_never_displace_or_kill(hostile_site):
    proc = _py(hostile_site, """
        import json, warnings
        import polygrad
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = polygrad.backends()
            b = polygrad.plugins.get_backend("numpy")
            x = float(polygrad.ones(3).sum())
        rows = {r["plugin"]: r for r in polygrad.plugins.describe()}
        print(json.dumps({"names": names, "x": x, "numpy_by": b._plugin,
                          "numpy_dist": rows["numpy"]["distribution"],
                          "status": {k: r["status"] for k, r in rows.items()},
                          "warnings": [str(w.message) for w in caught]}))
    """)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["x"] == 3.0 and out["numpy_dist"] == "polygrad-xp"
    st = out["status"]
    assert st["aaa_usurper"].startswith("failed: ") and "'numpy'" in st["aaa_usurper"]
    assert st["exiter"].startswith("failed: SystemExit")
    assert st["interrupter"].startswith("failed: KeyboardInterrupt")
    assert st["chatty"] == "loaded"
    assert st["numpy (hostile-twin)"].startswith("failed: ")
    assert "hello from a plugin" not in proc.stdout and "hello from a plugin" in proc.stderr


def test_plugins_json_stays_valid_and_listing_never_imports_torch(hostile_site, tmp_path):
    proc = _py(hostile_site, None, "-m", "polygrad", "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)          # the plugin's print went to stderr
    assert {"numpy", "torch", "chatty"} <= {r["name"] for r in rows}
    proc = _py(hostile_site, """
        import io, json, sys, contextlib
        import polygrad.__main__ as cli
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["plugins", "--json"])
            cli.main(["plugins"])
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("torch", "cupy", "dask"))))
    """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


# -- 4. files ---------------------------------------------------------------------------------

FAIL_HALF_WAY = """
    import json, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a too-big write raises EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    kind, path = sys.argv[1], sys.argv[2]
    big = "x" * 100_000
    try:
        if kind == "report":
            from polygrad_conformance.report import _write
            _write(path, json.dumps({"big": big}))
        else:
            from polygrad.base.files import write_atomic
            write_atomic(path, json.dumps({"big": big}))
    except OSError as exc:
        print("failed:", exc.errno)
"""


@pytest.mark.parametrize("kind", ["report", "files"])
def test_a_write_that_fails_half_way_keeps_the_previous_file(tmp_path, kind):
    pytest.importorskip("resource")
    path = tmp_path / "report.json"
    path.write_text('{"previous": true}\n')
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FAIL_HALF_WAY), kind,
                           str(path)], capture_output=True, text=True, timeout=120)
    assert "failed: 27" in proc.stdout, proc.stdout + proc.stderr      # EFBIG
    assert json.loads(path.read_text()) == {"previous": True}
    assert os.listdir(tmp_path) == ["report.json"]                     # no temporary left


def test_report_files_are_written_whole(tmp_path):
    from polygrad_conformance.report import _write
    path = tmp_path / "sub" / "r.json"
    _write(str(path), "{}")
    assert path.read_text() == "{}" and os.stat(path).st_mode & 0o644 == 0o644


@pytest.mark.parametrize("argv", [
    ["conformance", "--backend", "numpy", "--json", "{file}/r.json"],
    ["conformance", "--backend", "numpy", "--html", "{dir}"],
    ["plugins", "--json", "{dir}/missing/r.json"],
])
def test_a_bad_output_path_is_rejected_before_the_run(tmp_path, argv):
    afile = tmp_path / "afile"
    afile.write_text("")
    argv = [a.format(file=afile, dir=tmp_path) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "polygrad", *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "error:" in last and argv[-2] in last and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# -- 3. bad input: torch's behaviour or a clear error, nothing changed ------------------------

BACKENDS = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="torch not installed"))]


def _leaf(backend):
    a = pg.ones(3, dtype=pg.float64, backend=backend, requires_grad=True)
    (a * 2).sum().backward()                        # .grad = 2 before the bad call
    return a


def _unchanged(a):
    assert a.grad.tolist() == [2.0, 2.0, 2.0] and a.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hook, error, needle", [
    (lambda g: g[:2], RuntimeError, "changed the size of value"),
    (lambda g: g.astype(pg.float32), RuntimeError, "changed the type of value"),
    (lambda g: 1.0, TypeError, "returned float"),
])
@pytest.mark.parametrize("on", ["leaf", "intermediate"])
def test_a_bad_hook_raises_and_changes_nothing(backend, hook, error, needle, on):
    a = _leaf(backend)
    b = a * 3
    (a if on == "leaf" else b).register_hook(hook)
    with pytest.raises(error, match=needle):
        (b * 1).sum().backward()
    _unchanged(a)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_a_gradient_of_another_dtype_is_cast_to_the_output_dtype(backend, dtype):
    a = pg.ones(3, dtype=pg.float64, backend=backend, requires_grad=True)
    (a * 2).backward(gradient=pg.ones(3, dtype=getattr(pg, dtype), backend=backend))
    assert a.grad.dtype == pg.float64 and a.grad.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_list_as_gradient_gets_a_clear_error(backend):
    a = _leaf(backend)
    with pytest.raises(TypeError, match=r"gradient must be a Tensor.*polygrad\.tensor"):
        (a * 2).backward(gradient=[1.0, 2.0, 3.0])
    _unchanged(a)


@pytest.mark.parametrize("call, needle", [
    (lambda: pg.tensor("abc"), "not str"),
    (lambda: pg.tensor(None), "not NoneType"),
    (lambda: pg.tensor([1.0, None]), "not NoneType"),
    (lambda: pg.zeros(2.5), "tuple of ints.*2.5"),
    (lambda: pg.ones((2, 2.5)), "tuple of ints.*2.5"),
])
def test_bad_constructor_input_raises_type_error(call, needle):
    with pytest.raises(TypeError, match=needle):
        call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cast_to_int_does_not_require_grad(backend):
    a = _leaf(backend)
    for i in (a.astype(pg.int64), a.to(pg.int64), a.long(), a.bool()):
        assert not i.requires_grad and i.grad_fn is None
    assert a.astype(pg.float32).requires_grad
    _unchanged(a)


def test_sum_of_a_list_of_tensors_is_a_clear_type_error():
    a = _leaf("numpy")
    with pytest.raises(TypeError, match="not a list of Tensors.*stack"):
        pg.sum([a, a])
    _unchanged(a)


# -- 5. pickle keeps backend, device and dtype ------------------------------------------------

@pytest.mark.parametrize("backend, dtype", [("numpy", "float32"), ("numpy", "int16"),
                                            ("numpy", "complex128"), ("torch", "bfloat16"),
                                            ("torch", "float16"), ("torch", "complex64")])
def test_pickle_keeps_backend_device_and_dtype(backend, dtype):
    import pickle
    if backend == "torch":
        pytest.importorskip("torch")
    a = pg.ones(3, dtype=getattr(pg, dtype), backend=backend) * 3
    b = pickle.loads(pickle.dumps(a))
    assert (b.backend, str(b.device), b.dtype) == (backend, str(a.device), a.dtype)
    wide = pg.complex128 if a.dtype.is_complex else pg.float64
    assert b.astype(wide).tolist() == a.astype(wide).tolist()
    p = pickle.loads(pickle.dumps(pg.nn.Parameter(a.astype(wide))))
    assert p.requires_grad and p.dtype == wide and p.backend == backend


def test_pickle_keeps_a_fake_device_of_the_strict_plugin():
    import pickle
    polygrad_strict = pytest.importorskip("polygrad_strict")
    registered = "strict" not in pg.plugins.backend_names(usable=False)
    if registered:
        pg.plugins.register_plugin(polygrad_strict, name="strict")
    try:
        x = pg.ones(3, backend="strict", device="device1", requires_grad=True)
        y = pickle.loads(pickle.dumps(x))
        assert (y.backend, str(y.device), y.dtype, y.requires_grad) == \
            ("strict", "device1", pg.float32, True)
    finally:
        if registered:
            pg.plugins.unregister_plugin("strict")


# -- half precision on torch: .tolist() and .item() as torch gives them -----------------------

HALF_SHAPES = [(), (0,), (3,), (2, 0, 3), (2, 3)]
# values a half type rounds, ties, overflows and flushes, besides random ones
HALF_SPECIALS = [0.0, -0.0, 1.0, 1.00390625, 1e-3, 1e-8, 65504.0, 70000.0, 3.0e38,
                 float("inf"), float("-inf"), float("nan")]


def _same(ours, theirs):
    """Equal as torch's lists, NaN equal to NaN and -0.0 told from 0.0."""
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and \
            all(_same(o, t) for o, t in zip(ours, theirs))
    return type(ours) is type(theirs) and repr(ours) == repr(theirs)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", HALF_SHAPES)
def test_half_precision_tolist_and_item_match_torch(dtype, shape):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(len(shape) * 7 + len(dtype))
    values = torch.randn(shape, generator=gen, dtype=torch.float64) * 1e3
    flat = values.reshape(-1)
    flat[: len(HALF_SPECIALS)] = torch.tensor(HALF_SPECIALS[: flat.numel()], dtype=torch.float64)
    theirs = values.to(getattr(torch, dtype))
    ours = pg.asarray(theirs)          # keeps the array's backend and dtype
    assert (ours.backend, ours.dtype) == ("torch", getattr(pg, dtype))
    assert _same(ours.tolist(), theirs.tolist())
    if theirs.numel() == 1:
        assert _same(ours.item(), theirs.item())
    for i in range(min(theirs.numel(), len(HALF_SPECIALS))):
        assert _same(ours.reshape(-1)[i].item(), theirs.reshape(-1)[i].item())


# -- dask: a lost scheduler is an error, never a silent fall back ----------------------------

CLUSTER = """
import time
from distributed import LocalCluster
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    print(cluster.scheduler_address, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def dask_cluster(tmp_path):
    """The dask backend and a real LocalCluster in its own process group (so that the test
    can kill the scheduler and its worker outright); yields the scheduler's address."""
    import signal
    polygrad_dask = pytest.importorskip("polygrad_dask")
    pytest.importorskip("distributed")
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    registered = "dask" not in pg.plugins.backend_names(usable=False)
    if registered:
        pg.plugins.register_plugin(polygrad_dask, name="dask")
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        yield address, lambda: (os.killpg(proc.pid, signal.SIGKILL), proc.wait())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        polygrad_dask.forget_scheduler()
        if registered:
            pg.plugins.unregister_plugin("dask")


def _wait_for_status(client, statuses, seconds=60):
    import time
    deadline = time.monotonic() + seconds
    while client.status not in statuses and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.status in statuses, client.status


def _dask_work():
    """A leaf on the dask backend and what reads it: each computes on the scheduler."""
    x = pg.linspace(0.0, 1.0, steps=8, backend="dask", requires_grad=True)

    def grad():
        x.grad = None
        (x * x).sum().backward()
        return x.grad.tolist()
    return {"item": lambda: (x * 3).sum().item(), "tolist": lambda: (x + 1).tolist(),
            "compute": lambda: [t.item() for t in pg.compute((x * 2).sum(), (x - 1).sum())],
            "backward": grad}


@pytest.mark.timeout(300, method="thread")   # distributed can hang on a dead scheduler
@pytest.mark.parametrize("read", ["item", "tolist", "compute", "backward"])
def test_a_killed_scheduler_fails_the_next_operation_at_once(dask_cluster, read):
    from distributed import Client

    from polygrad_dask import SchedulerLostError
    address, kill = dask_cluster
    # a reconnect timeout far beyond the test: a read that waited it out could not see
    # the Client still reconnecting after it raised
    client = Client(address, timeout=120)
    try:
        work = _dask_work()
        expected = work[read]()                     # runs on the cluster
        kill()
        _wait_for_status(client, {"connecting"})
        with pytest.raises(SchedulerLostError, match=address.replace(".", r"\.")):
            work[read]()
        assert client.status == "connecting"        # raised without waiting for the reconnect
        assert expected is not None
    finally:
        client.close(timeout=5)


@pytest.mark.timeout(300, method="thread")   # distributed can hang on a dead scheduler
def test_a_lost_scheduler_never_falls_back_to_local_threads(dask_cluster):
    from distributed import Client

    from polygrad_dask import SchedulerLostError, forget_scheduler
    address, kill = dask_cluster
    client = Client(address, timeout=2)
    work = _dask_work()
    expected = work["item"]()
    kill()
    _wait_for_status(client, {"closed"})             # distributed gave up reconnecting
    for _ in range(2):                               # and stays an error
        with pytest.raises(SchedulerLostError, match="forget_scheduler"):
            work["item"]()
    forget_scheduler()                               # asked for: local threads from now on
    assert work["item"]() == pytest.approx(expected)


@pytest.mark.timeout(300, method="thread")   # distributed can hang on a dead scheduler
def test_a_client_closed_on_purpose_computes_locally(dask_cluster):
    from distributed import Client
    address, kill = dask_cluster
    client = Client(address)
    work = _dask_work()
    expected = {name: read() for name, read in work.items()}
    client.close()
    assert {name: read() for name, read in work.items()} == expected


# -- the soak script catches a leak ------------------------------------------------------------

@pytest.mark.parametrize("leak, rc", [(0, 0), (65536, 1)])
def test_the_soak_script_fails_on_growth_and_only_then(leak, rc):
    """benchmarks/soak.py, short: a clean run passes; 64 KiB kept per step fails it."""
    soak = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "soak.py")
    proc = subprocess.run([sys.executable, soak, "--steps", "400", "--every", "100",
                           "--max-growth-mib", "5", "--inject-leak", str(leak)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == rc, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 100, 200, 300, 400]
    assert proc.stdout.rstrip().endswith("ok" if rc == 0 else "FAIL")
