"""Choosing backends at runtime, ownership of existing arrays, moving tensors between
backends (differentiably), and the errors for mixing, unknown names and missing dtypes."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import HAS_TORCH

import polygrad as pg

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def _run(code, **env):
    full = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_default_backend_is_numpy():
    assert pg.get_default_backend() == "numpy"
    assert pg.zeros(2).backend == "numpy"


@needs_torch
def test_polygrad_backend_environment_variable():
    assert _run("import polygrad; print(polygrad.zeros(2).backend)", POLYGRAD_BACKEND="torch") == \
        "torch"


@needs_torch
def test_set_default_backend_and_use_backend_nesting():
    try:
        pg.set_default_backend("torch")
        assert pg.ones(1).backend == "torch"
        with pg.use_backend("numpy"):
            assert pg.ones(1).backend == "numpy"
            with pg.use_backend("torch"):
                assert pg.ones(1).backend == "torch"
            assert pg.ones(1).backend == "numpy"
        assert pg.ones(1).backend == "torch"
    finally:
        pg.set_default_backend("numpy")


@needs_torch
def test_use_backend_is_thread_local():
    seen = {}

    def worker():
        seen["worker"] = pg.ones(1).backend

    with pg.use_backend("torch"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["main"] = pg.ones(1).backend
    assert seen == {"worker": "numpy", "main": "torch"}


@needs_torch
def test_wrapping_an_existing_array_picks_its_owner():
    import torch
    assert pg.tensor(np.ones(2)).backend == "numpy"
    assert pg.asarray(torch.ones(2)).backend == "torch"
    with pg.use_backend("torch"):
        assert pg.asarray(np.ones(2)).backend == "numpy"
    assert pg.tensor(np.ones(2), backend="torch").backend == "torch"
    arr = np.ones(3)
    assert pg.asarray(arr).array is arr          # no copy
    assert pg.tensor(arr).array is not arr       # tensor() copies, as torch.tensor does


@needs_torch
def test_mixing_backends_names_both_and_how_to_move():
    a, b = pg.ones(2), pg.ones(2, backend="torch")
    with pytest.raises(pg.BackendMismatchError, match=r"'numpy' and 'torch'.*\.to\("):
        a + b


def test_unknown_backend_lists_installed_ones():
    with pytest.raises(pg.UnknownBackendError, match=r"unknown backend 'nope'.*numpy"):
        pg.zeros(2, backend="nope")
    with pytest.raises(LookupError):
        pg.set_default_backend("nope")


def test_dtype_the_backend_lacks():
    with pytest.raises(TypeError, match=r"backend 'numpy' has no dtype bfloat16"):
        pg.zeros(2, dtype=pg.bfloat16)


def test_device_the_backend_lacks():
    with pytest.raises(pg.BackendUnavailableError, match="no device 'cuda'"):
        pg.zeros(2, device="cuda", backend="numpy")


def test_shapes_that_do_not_broadcast_name_op_and_shapes(backend):
    with pytest.raises(ValueError, match=r"multiply\(\): shapes \(2, 3\) and \(4,\) cannot be "
                                         r"broadcast"):
        pg.ones(2, 3) * pg.ones(4)
    with pytest.raises(ValueError, match=r"matmul\(\): shapes \(2, 3\) and \(4, 5\) are not "
                                         r"aligned"):
        pg.ones(2, 3) @ pg.ones(4, 5)


@needs_torch
@pytest.mark.parametrize("src,dst", [("numpy", "torch"), ("torch", "numpy")])
def test_to_another_backend_is_differentiable(src, dst):
    x = pg.tensor([0.5, 1.0, 2.0], dtype=pg.float64, requires_grad=True, backend=src)
    y = x.to(dst)
    assert y.backend == dst and y.grad_fn is not None
    assert type(y.grad_fn).__name__ == "ToCopyBackward0"
    (y.exp() * 3).sum().backward()
    assert x.grad.backend == src
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([0.5, 1.0, 2.0]))


@needs_torch
def test_zero_copy_move_is_copy_on_write():
    x = pg.tensor([1.0, 2.0])
    y = x.to("torch")
    y.add_(10)                   # must not change x, even if DLPack shared the buffer
    assert x.tolist() == [1.0, 2.0] and y.tolist() == [11.0, 12.0]


@needs_torch
def test_to_dtype_and_device_forms():
    x = pg.ones(2)
    assert x.to(pg.float64).dtype == pg.float64
    assert x.to("float64").dtype == pg.float64
    assert x.to(device="cpu") is x
    assert x.to("torch", dtype=pg.float64).dtype == pg.float64


@needs_torch
def test_cuda_without_a_gpu_says_what_to_install():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: .to('cuda') works here")
    with pytest.raises(RuntimeError, match="no installed backend can use device 'cuda'"):
        pg.ones(2).to("cuda")


def test_plugins_listing_cli_json():
    import json
    rows = json.loads(_run("import sys; from polygrad.__main__ import main; "
                           "sys.exit(main(['plugins', '--json']))"))
    by_name = {r["name"]: r for r in rows}
    assert by_name["numpy"]["status"] == "loaded"
    assert by_name["numpy"]["distribution"] == "polygrad-xp"
    assert "float64" in by_name["numpy"]["dtypes"] and by_name["numpy"]["devices"] == ["cpu"]


def test_demo_command_runs_the_sin_chain():
    out = _run("import sys; from polygrad.__main__ import main; sys.exit(main(['demo']))")
    assert "numpy: a.grad == 2cos(a)" in out and "ok" in out


# -- the numpy backend's branch-free where --------------------------------------------------

WHERE_DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint16", "uint64",
                "complex64", "bool"]


@pytest.mark.parametrize("dtype", WHERE_DTYPES)
@pytest.mark.parametrize("other", ["array", "0", "0.0", "-0.0", "1", "broadcast"])
def test_numpy_where_override_is_bit_exact(dtype, other):
    """Same bits, dtype and shape as numpy's where, NaN, infinities and -0.0 included."""
    from polygrad_backends.numpy_backend import _where
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((70, 130)) * 100).astype(dtype)
    b = (rng.standard_normal((70, 130)) * 100).astype(dtype)
    c = rng.random((70, 130)) > 0.5
    if a.dtype.kind == "f":
        a[0, :4] = [np.nan, -0.0, 7.0, -np.inf]
        b[0, :4] = [1.0, 2.0, np.inf, np.nan]
        c[0, :4] = [True, True, False, True]
    a = a[:, ::-1]                       # a strided view on the way in
    x2 = {"array": b, "0": 0, "0.0": 0.0, "-0.0": -0.0, "1": 1, "broadcast": b[0]}[other]
    got, ref = _where(np, c, a, x2), np.where(c, a, x2)
    assert (got.dtype, got.shape) == (ref.dtype, ref.shape)
    assert got.tobytes() == ref.tobytes()


def test_relu_backward_on_numpy_uses_the_override():
    x = pg.tensor(np.linspace(-1, 1, 10_000), requires_grad=True, backend="numpy")
    pg.nn.functional.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (np.linspace(-1, 1, 10_000) > 0) * 1.0)
    assert pg.plugins.get_backend("numpy").op("where").__name__ == "_where"
