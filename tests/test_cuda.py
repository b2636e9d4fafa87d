"""The tutorials on a GPU: every CUDA-capable backend (torch on CUDA, cupy) against torch's
own autograd on the CPU as the oracle.

Each test runs once per CUDA backend and skips, with that backend's reason, where it has
no CUDA device (so on CPU-only machines everything here skips and nothing errors).
cupy-only checks (DLPack pointers, the fused kernel, the RNG) are in tests/test_cupy.py.
"""

import math

import numpy as np
import pytest

import polygrad
from polygrad.plugins import get_backend

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


def _no_cuda_reason(name):
    backend = get_backend(name)
    reason = backend.unavailable_reason()
    if reason is not None:
        return f"{name} backend: {reason}"
    if not any(d.startswith("cuda") for d in backend.devices()):
        return f"{name} backend: no CUDA device visible (its devices: {list(backend.devices())})"
    return None


CUDA_BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(
    _no_cuda_reason(name) is not None, reason=str(_no_cuda_reason(name))), id=name)
    for name in ("torch", "cupy")]


@pytest.fixture(params=CUDA_BACKENDS)
def gpu(request):
    """The name of a CUDA backend, made the default backend for the test."""
    with polygrad.use_backend(request.param):
        yield request.param


def host(t):
    return t.detach().cpu().numpy()


def test_yt1_sin_chain(gpu):
    a = polygrad.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True, device="cuda")
    b = polygrad.sin(a)
    c = 2 * b
    d = c + 1
    out = d.sum()
    out.backward()
    assert str(a.device) == "cuda:0" and str(a.grad.device) == "cuda:0"
    assert a.grad.backend == gpu
    np.testing.assert_allclose(host(a.grad), 2 * np.cos(host(a)), rtol=1e-5, atol=1e-6)
    assert "grad_fn=<SinBackward0>" in repr(b) and "device='cuda:0'" in repr(b)
    assert "grad_fn=<SumBackward0>" in repr(out)


def test_qs1_one_layer_net_matches_torch(gpu):
    rng = np.random.default_rng(0)
    w0, b0 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    f64 = polygrad.float64        # the oracle runs in float64; so does every input here
    x, y = polygrad.ones(5, dtype=f64, device="cuda"), polygrad.zeros(3, dtype=f64, device="cuda")
    w = polygrad.from_numpy(w0, device="cuda", requires_grad=True)
    b = polygrad.from_numpy(b0, device="cuda", requires_grad=True)
    z = polygrad.matmul(x, w) + b
    loss = polygrad.nn.functional.binary_cross_entropy_with_logits(z, y)
    loss.backward()
    assert "grad_fn=<AddBackward0>" in repr(z)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    tz = torch.matmul(torch.ones(5, dtype=torch.float64), tw) + tb
    tl = torch.nn.functional.binary_cross_entropy_with_logits(tz, torch.zeros(3,
                                                                             dtype=torch.float64))
    tl.backward()
    assert math.isclose(loss.item(), tl.item(), rel_tol=1e-12)
    np.testing.assert_allclose(host(w.grad), tw.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(host(b.grad), tb.grad.numpy(), rtol=1e-10)


def test_tinymodel_sgd_step_matches_torch(gpu):
    polygrad.manual_seed(0)
    model = polygrad.nn.Sequential(polygrad.nn.Linear(1000, 100), polygrad.nn.ReLU(),
                                   polygrad.nn.Linear(100, 10)).to("cuda")
    ref = torch.nn.Sequential(torch.nn.Linear(1000, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    ref.load_state_dict({k: torch.from_numpy(host(v)) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(1)
    x, ideal = rng.random((16, 1000), dtype=np.float32), rng.random((16, 10), dtype=np.float32)
    opt = polygrad.optim.SGD(model.parameters(), lr=0.001)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.001)
    assert model[2].weight.grad is None
    loss = (polygrad.from_numpy(ideal, device="cuda") -
            model(polygrad.from_numpy(x, device="cuda"))).pow(2).sum()
    loss.backward()
    opt.step()
    ref_loss = (torch.from_numpy(ideal) - ref(torch.from_numpy(x))).pow(2).sum()
    ref_loss.backward()
    ref_opt.step()
    assert str(model[2].weight.device) == "cuda:0"
    assert math.isclose(loss.item(), ref_loss.item(), rel_tol=1e-4)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(host(p), q.detach().numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    assert host(model[2].weight[0][0:10]).shape == (10,)


def test_create_graph_second_derivative(gpu):
    x = polygrad.tensor([0.5, -1.0, 2.0], device="cuda", requires_grad=True)
    (g,) = polygrad.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (h,) = polygrad.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(host(g), 3 * host(x) ** 2, rtol=1e-6)
    np.testing.assert_allclose(host(h), 6 * host(x), rtol=1e-6)
    assert h.backend == gpu


def test_to_cpu_and_back_carries_the_gradient(gpu):
    x = polygrad.tensor([1.0, 2.0, 3.0], requires_grad=True, backend="numpy")
    y = x.to(gpu, device="cuda")
    assert str(y.device) == "cuda:0"
    z = (y * y).to("numpy")
    z.sum().backward()
    assert x.grad.backend == "numpy"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_host_copy_of_a_gpu_tensor_is_refused_with_a_way_out(gpu):
    x = polygrad.ones(3, device="cuda")
    for convert in (lambda t: t.numpy(), np.asarray):
        with pytest.raises(TypeError, match=r"cuda:0 tensor.*\.cpu\(\) or \.to\('numpy'\)"):
            convert(x)
    np.testing.assert_array_equal(x.cpu().numpy(), [1.0, 1.0, 1.0])
    assert x.sum().item() == 3.0


def test_cuda_module_sees_the_gpu(gpu):
    assert polygrad.cuda.is_available() and polygrad.cuda.device_count() >= 1
    assert polygrad.tensor([1.0], backend="numpy").cuda().device.type == "cuda"
    polygrad.cuda.synchronize()


def test_profiler_has_cuda_columns(gpu):
    profiler = pytest.importorskip("polygrad.autograd.profiler")
    x = polygrad.ones(256, 256, device="cuda")
    y = polygrad.ones(256, 256, device="cuda") * 2
    z = polygrad.ones(256, 256, device="cuda")
    with profiler.profile(use_cuda=True) as prf:
        for _ in range(20):
            z = (z / x) * y
    table = prf.key_averages().table(sort_by="self_cpu_time_total")
    assert "Self CUDA" in table and "CUDA total" in table
    rows = {e.key: e for e in prf.key_averages()}
    div = [e for k, e in rows.items() if "div" in k]
    assert div and div[0].count == 20 and div[0].self_cuda_time_total > 0


def test_numpy_to_cupy_to_torch_cuda_chain_carries_gradients_back():
    for name in ("cupy", "torch"):
        reason = _no_cuda_reason(name)
        if reason is not None:
            pytest.skip(reason)
    x = polygrad.tensor([0.5, 1.0, 2.0], requires_grad=True, backend="numpy")
    y = polygrad.sin(x.to("cupy"))              # numpy -> cupy (host upload)
    z = y.to("torch", device="cuda")            # cupy -> torch, same GPU (DLPack)
    assert z.backend == "torch" and str(z.device) == "cuda:0"
    (z * z).sum().backward()
    assert x.grad.backend == "numpy"
    xs = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.sin(xs) * np.cos(xs), rtol=1e-12)
