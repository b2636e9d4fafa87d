"""The cupy backend's contract: what holds on every machine, and what holds on a GPU.

Without CUDA (CI, developers' machines) the backend must list itself with a status and
a reason, refuse to make tensors with that reason, stay out of ``sys.modules``, and a
tensor on any non-CPU device must refuse a silent host copy. The GPU tests below run on
a machine where cupy sees a CUDA device and skip elsewhere with the backend's reason.
The scenarios shared with torch-on-CUDA (YT-1, QS-1, TinyModel, create_graph, .to()
chains, the profiler) are in tests/test_cuda.py.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import polygrad
from polygrad.plugins import get_backend, register_plugin, unregister_plugin
from polygrad.primitives.raw import raw_namespace

CUPY = get_backend("cupy")
REASON = CUPY.unavailable_reason()
needs_gpu = pytest.mark.skipif(REASON is not None, reason=f"cupy backend: {REASON}")


def _run(code, **env):
    """Run python code in a fresh interpreter; env values of None remove the variable."""
    full = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- on every machine -------------------------------------------------------------------------

def _expected_status():
    if importlib.util.find_spec("cupy") is None:
        return "not installed"
    return "loaded" if REASON is None else f"unavailable: {REASON}"


@pytest.mark.parametrize("allow", [None, "numpy,cupy"])
def test_plugins_json_lists_cupy_with_status_and_reason(allow):
    out = _run("import runpy, sys; sys.argv = ['polygrad', 'plugins', '--json']; "
               "runpy.run_module('polygrad', run_name='__main__')",
               POLYGRAD_LOAD_PLUGINS=allow)
    rows = {r["name"]: r for r in json.loads(out)}
    row = rows["cupy"]
    assert row["distribution"] == "polygrad-xp"
    assert row["status"] == _expected_status()
    if row["status"] == "not installed":
        assert "cupy" in row["reason"] and "not installed" in row["reason"]
        assert row["devices"] == []
    elif REASON is not None:
        assert "no CUDA device visible" in row["status"]
    else:
        assert row["devices"][0] == "cuda:0"
    assert row["fused"] == ["binary_cross_entropy_with_logits"]


def test_plugins_table_shows_cupy_status():
    out = _run("import runpy, sys; sys.argv = ['polygrad', 'plugins']; "
               "runpy.run_module('polygrad', run_name='__main__')")
    line = next(ln for ln in out.splitlines() if ln.startswith("cupy "))
    assert _expected_status().split(":")[0] in line


@pytest.mark.skipif(REASON is None, reason="cupy can run here: the unavailable path is moot")
def test_unusable_cupy_is_not_listed_and_refuses_tensors_with_the_reason():
    assert "cupy" not in polygrad.backends()
    assert "cupy" in polygrad.plugins.backend_names(usable=False)
    with pytest.raises(polygrad.BackendUnavailableError, match="cupy") as err:
        polygrad.zeros(2, backend="cupy")
    assert REASON in str(err.value)
    with pytest.raises(polygrad.BackendUnavailableError):
        polygrad.set_default_backend("cupy")
    assert polygrad.get_default_backend() == "numpy"


@pytest.mark.skipif(REASON is None, reason="cupy can run here: the unavailable path is moot")
def test_moving_to_unusable_cupy_says_why_and_leaves_the_tensor_alone():
    x = polygrad.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    with pytest.raises(polygrad.BackendUnavailableError, match="can't move to backend 'cupy'"):
        x.to("cupy")
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_cuda_without_a_gpu_backend_names_the_extras():
    if polygrad.cuda.is_available():
        pytest.skip("a backend here has a CUDA device")
    with pytest.raises(RuntimeError, match=r"torch or cupy extra \(pip install -e"):
        polygrad.tensor([1.0]).cuda()


def test_importing_the_plugin_does_not_import_cupy():
    assert polygrad.plugins.check_import_is_light("cupy") is None
    out = _run("import sys, polygrad_backends.cupy_backend as m; "
               "print('cupy' in sys.modules, m.backend.name)")
    assert out.split() == ["False", "cupy"]


def test_listing_with_cupy_installed_but_no_driver_never_imports_cupy(tmp_path):
    """A stand-in ``cupy`` package that records being imported: with no CUDA driver the
    status comes from the driver probe alone."""
    if REASON is None or "no NVIDIA driver" not in (_probe_reason() or ""):
        pytest.skip("a CUDA driver is present: the probe rightly goes on to ask cupy")
    marker = tmp_path / "imported"
    pkg = tmp_path / "cupy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('stand-in cupy')\n")
    out = _run("import json, polygrad\n"
               "row = [r for r in polygrad.plugins.describe() if r['name'] == 'cupy'][0]\n"
               "print(json.dumps([row['status'], polygrad.backends()]))",
               PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               POLYGRAD_LOAD_PLUGINS="numpy,cupy")
    status, usable = json.loads(out.strip().splitlines()[-1])
    assert status.startswith("unavailable: no CUDA device visible"), status
    assert usable == ["numpy"]
    assert not marker.exists(), "listing plugins imported cupy"


def _probe_reason():
    from polygrad_backends.cupy_backend import _driver_reason
    return _driver_reason()


def test_driver_probe_honours_cuda_visible_devices():
    out = _run("from polygrad_backends.cupy_backend import _driver_reason as r; print(r())",
               CUDA_VISIBLE_DEVICES="")
    assert out.strip().startswith("no CUDA device visible"), out


# -- host copies of device tensors: refused with a way out, on a fake device -------------------

def _fake_gpu_backend():
    """A throwaway backend over array-api-strict whose arrays live on its fake "device1"."""
    import array_api_strict as xps

    def native(name):
        return xps.Device("CPU_DEVICE" if name == "cpu" else name)

    return polygrad.Backend(
        name="fakegpu", module="array_api_strict", load=lambda: xps,
        array_types=lambda: (type(xps.asarray(0.0)),),
        to_numpy=lambda a: np.from_dlpack(xps.asarray(a, device=native("cpu")), copy=True),
        from_numpy=lambda a, device=None: xps.asarray(
            a, copy=True, device=device if isinstance(device, xps.Device) else
            native(str(device or "cpu"))),
        devices=lambda: ("cpu", "device1"),
        native_device=native,
        device_of=lambda a: "cpu" if a.device == native("cpu") else str(a.device).split("'")[1],
        dtypes=("bool", "int64", "float32", "float64"))


class _FakeGpuPlugin:
    def __init__(self, backend):
        self.backend = backend

    @polygrad.hookimpl
    def register_backends(self, register):
        register(self.backend)


@pytest.fixture
def fakegpu():
    pytest.importorskip("array_api_strict")
    register_plugin(_FakeGpuPlugin(_fake_gpu_backend()), name="fakegpu")
    try:
        yield
    finally:
        unregister_plugin("fakegpu")


def _on_device1(values, requires_grad=False):
    return polygrad.from_numpy(np.asarray(values, dtype=np.float64), backend="fakegpu",
                               device="device1", requires_grad=requires_grad)


HOST_COPIES = [
    ("numpy()", lambda t: t.numpy()),
    ("__array__", lambda t: np.asarray(t)),
    ("__array__ with dtype", lambda t: np.asarray(t, dtype=np.float32)),
]


@pytest.mark.parametrize("what, convert", HOST_COPIES, ids=[h[0] for h in HOST_COPIES])
def test_host_copy_of_a_device_tensor_says_how_to_move_it(fakegpu, what, convert):
    x = _on_device1([1.0, 2.0])
    assert str(x.device) == "device1"
    with pytest.raises(TypeError) as err:
        convert(x)
    msg = str(err.value)
    assert "device1" in msg and "fakegpu" in msg
    assert ".cpu()" in msg and ".to('numpy')" in msg
    # the ways out the message names work, and give the values
    np.testing.assert_array_equal(x.cpu().numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.to("numpy").numpy(), [1.0, 2.0])


def test_host_copy_of_a_torch_meta_tensor_says_how_to_move_it():
    torch = pytest.importorskip("torch")
    x = polygrad.asarray(torch.empty(3, device="meta"))
    assert x.backend == "torch" and x.device.type == "meta"
    for convert in (lambda t: t.numpy(), np.asarray):
        with pytest.raises(TypeError, match=r"meta(:0)? tensor of backend 'torch'.*\.cpu\(\)"):
            convert(x)


def test_requires_grad_is_named_before_the_device(fakegpu):
    x = _on_device1([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()


def test_gradient_flows_back_across_a_device_move(fakegpu):
    x = _on_device1([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("numpy")                   # device1 -> numpy's cpu, differentiably
    assert y.backend == "numpy" and str(y.device) == "cpu"
    (y * y).sum().backward()
    assert x.grad.backend == "fakegpu" and str(x.grad.device) == "device1"
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [2.0, 4.0, 6.0])


def test_to_backend_keeps_the_device_the_target_has(fakegpu):
    x = polygrad.tensor([1.0, 2.0])
    assert str(x.to("fakegpu").device) == "cpu"          # numpy's cpu -> fakegpu's cpu
    y = _on_device1([1.0, 2.0])
    moved = y.to("fakegpu", device=polygrad.device("cpu"))   # a device object, not a name
    assert str(moved.device) == "cpu"


# -- on a GPU ------------------------------------------------------------------------------------

@pytest.fixture
def cp():
    import cupy
    return cupy


@needs_gpu
def test_gpu_tensor_lives_on_cuda_and_refuses_host_copies(cp):
    x = polygrad.arange(4.0, backend="cupy")
    assert x.backend == "cupy" and str(x.device) == "cuda:0"
    assert isinstance(x._st.array, cp.ndarray)
    with pytest.raises(TypeError, match=r"cuda:0 tensor of backend 'cupy'.*\.cpu\(\)"):
        np.asarray(x)
    with pytest.raises(TypeError, match=r"\.to\('numpy'\)"):
        x.numpy()
    np.testing.assert_array_equal(x.cpu().numpy(), [0.0, 1.0, 2.0, 3.0])
    assert "device='cuda:0'" in repr(x)


@needs_gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0", polygrad.device("cuda", 0)])
def test_device_names(device):
    x = polygrad.zeros(2, backend="cupy", device=device)
    assert str(x.device) == "cuda:0"
    assert str(polygrad.from_numpy(np.ones(2), backend="cupy", device=device).device) == "cuda:0"


@needs_gpu
def test_manual_seed_makes_cupy_random_numbers_repeat():
    draws = []
    for _ in range(2):
        polygrad.manual_seed(7)
        draws.append((polygrad.randn(5, backend="cupy").cpu().numpy(),
                      polygrad.rand(5, backend="cupy", dtype=polygrad.float32).cpu().numpy()))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert draws[0][1].dtype == np.float32 and (0 <= draws[0][1]).all() and (draws[0][1] < 1).all()


@needs_gpu
def test_dlpack_moves_between_cupy_and_torch_share_the_buffer(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch here has no CUDA build")
    x = polygrad.arange(6.0, backend="cupy")
    y = x.to("torch")                        # stays on the GPU: zero copy
    assert y.backend == "torch" and str(y.device) == "cuda:0"
    assert y._st.array.data_ptr() == x._st.array.data.ptr
    z = y.to("cupy")
    assert z._st.array.data.ptr == x._st.array.data.ptr
    y.add_(1.0)                              # copy-on-write: the shared buffer is not touched
    np.testing.assert_array_equal(x.cpu().numpy(), np.arange(6.0))
    np.testing.assert_array_equal(y.cpu().numpy(), np.arange(6.0) + 1)


@needs_gpu
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_bce_with_logits_matches_the_decomposition(reduction, dtype):
    import dataclasses

    import polygrad.nn  # noqa: F401  (installs the loss primitives)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((64, 3)) * 30          # large logits: the stable form matters
    y = rng.random((64, 3))
    decomposed = dataclasses.replace(CUPY, fused={})
    outs = []
    for b in (CUPY, decomposed):
        zt = polygrad.from_numpy(z, backend=b, dtype=dtype)
        yt = polygrad.from_numpy(y, backend=b, dtype=dtype)
        # the raw namespace resolves the fused kernel, or the primitive's decomposed impl
        outs.append(raw_namespace(b).binary_cross_entropy_with_logits(zt._st.array, yt._st.array,
                                                          reduction=reduction).get())
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(outs[0], outs[1], rtol=tol, atol=tol)
    assert outs[0].dtype == np.dtype(dtype)


@needs_gpu
def test_bce_with_logits_on_cupy_matches_torch():
    torch = pytest.importorskip("torch")
    z = np.linspace(-40, 40, 12).reshape(3, 4)
    y = np.linspace(0, 1, 12).reshape(3, 4)
    zt = polygrad.from_numpy(z, backend="cupy", requires_grad=True)
    loss = polygrad.nn.functional.binary_cross_entropy_with_logits(
        zt, polygrad.from_numpy(y, backend="cupy"))
    loss.backward()
    ref_z = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(ref_z, torch.tensor(y))
    ref.backward()
    assert math.isclose(loss.item(), ref.item(), rel_tol=1e-12)
    np.testing.assert_allclose(zt.grad.cpu().numpy(), ref_z.grad.numpy(), rtol=1e-10)


@needs_gpu
def test_scatter_add_through_indexing_accumulates_repeated_indices():
    x = polygrad.arange(5.0, backend="cupy", requires_grad=True)
    idx = polygrad.asarray(np.array([0, 2, 2, 4, 4, 4]), backend="cupy")
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [1.0, 0.0, 2.0, 0.0, 3.0])


@needs_gpu
def test_device_timer_and_synchronize():
    start, stop = CUPY.device_timer("cuda:0")
    start.record()
    polygrad.ones(1000, 1000, backend="cupy").sum()
    stop.record()
    CUPY.synchronize()
    assert stop.query() and start.elapsed_time(stop) >= 0.0
    assert CUPY.device_timer("cpu") is None


@needs_gpu
def test_info_names_the_gpu():
    info = CUPY.info()
    assert info["cupy"] and info["device"]
