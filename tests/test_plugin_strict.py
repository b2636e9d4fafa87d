"""The polygrad-strict plugin: polygrad's engine and rules on array-api-strict.

array-api-strict accepts only the standard's vocabulary, so every case below runs
the same polygrad code on it and on the numpy backend from identical inputs and
asks for equal values and gradients: a rule or engine path that leans on numpy-only
behaviour fails here. Needs ``pip install -e ./plugins/polygrad-strict``.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import polygrad as pg

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("polygrad_strict") is None,
    reason="polygrad-strict is not installed: pip install -e ./plugins/polygrad-strict")


@pytest.fixture(scope="module")
def strict():
    """The strict backend, registered in-process (conftest keeps entry points out)."""
    import polygrad_strict
    pg.plugins.register_plugin(polygrad_strict, name="strict")
    try:
        yield "strict"
    finally:
        pg.plugins.unregister_plugin("strict")


# Each case: input shapes (float64 host data from a fixed seed) and fn(pg, *tensors) -> scalar.
CASES = {
    "YT-1 sin chain": ([(25,)], lambda pg, a: (2 * pg.sin(a) + 1).sum()),
    "matmul relu": ([(3, 4), (4, 2)], lambda pg, x, w: pg.maximum(x @ w, 0.0).sum()),
    "reductions": ([(3, 4)], lambda pg, x: (x.sum(dim=1) * x.max()).sum() + x.mean() + x.std()
                   + pg.logsumexp(x, dim=1).sum() + x.prod() + x.min(dim=0).values.sum()),
    "broadcast and scalars": ([(3, 1), (4,)],
                              lambda pg, x, y: (x * y + x / y - 2 * x + 1.5).pow(2).sum()),
    "elementwise": ([(3, 4)], lambda pg, x: pg.where(x > 0, x, 0.1 * x).abs().clamp(min=0.1)
                    .exp().log().tanh().sqrt().sum()),
    "shape ops": ([(2, 3)], lambda pg, x: (pg.cat([x, 2 * x], dim=0).t().reshape(-1)
                                           * pg.arange(12)).sum() + pg.stack([x, x]).sum()),
    "partial basic key": ([(5, 4)], lambda pg, x: x[1].sum() + (x[1:3, ::2] ** 2).sum()),
    "index array with repeats": ([(5, 4)], lambda pg, x: (x[pg.tensor([0, 2, 2])] ** 2).sum()),
    "index array on axis 1": ([(5, 4)], lambda pg, x: (x[:, pg.tensor([3, 0, 3])] ** 2).sum()),
    "2-d index array": ([(5, 4)], lambda pg, x: (x[pg.tensor([[0, 1], [4, 4]])] ** 3).sum()),
    "boolean mask": ([(5, 4)], lambda pg, x: (x[x > 0] ** 2).sum()),
    "batched diagonal": ([(2, 3, 3)], lambda pg, x: (x[..., pg.tensor([0, 2]), pg.tensor([1, 2])]
                                                     ** 2).sum()),
    "setitem in the graph": ([(4,)], lambda pg, x: _setitem(x)),
    "integer true division": ([(3,)], lambda pg, x: (x * (pg.arange(3) / 2)).sum()),
}


def _setitem(x):
    y = x * 2
    y[1] = 5.0
    y[2:] *= 3
    return (y * y).sum()


def _run(backend, shapes, fn, create_graph=False):
    rng = np.random.default_rng(0)
    xs = [pg.from_numpy(rng.standard_normal(s), backend=backend, requires_grad=True)
          for s in shapes]
    with pg.use_backend(backend):      # constants made inside fn land on the same backend
        out = fn(pg, *xs)
    grads = pg.autograd.grad(out, xs, create_graph=create_graph)
    return out, grads, xs


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_numpy(strict, name):
    shapes, fn = CASES[name]
    out, grads, _ = _run(strict, shapes, fn)
    ref_out, ref_grads, _ = _run("numpy", shapes, fn)
    assert out.backend == "strict" and all(g.backend == "strict" for g in grads)
    np.testing.assert_allclose(out.detach().numpy(), ref_out.detach().numpy(), rtol=1e-6)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ["YT-1 sin chain", "matmul relu", "reductions",
                                  "index array with repeats", "broadcast and scalars"])
def test_second_order_matches_numpy(strict, name):
    """create_graph runs the same rules on polygrad's namespace over strict arrays."""
    shapes, fn = CASES[name]

    def second(backend):
        out, grads, xs = _run(backend, shapes, fn, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        return [h.numpy() for h in pg.autograd.grad(total, xs, allow_unused=True,
                                                   materialize_grads=True)]

    for h, ref in zip(second(strict), second("numpy")):
        np.testing.assert_allclose(h, ref, rtol=1e-6, atol=1e-12)


def test_backward_writes_grad_on_strict(strict):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True, backend=strict)
    (2 * pg.sin(a) + 1).sum().backward()
    assert type(a.grad._st.array).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.cos(a.detach().numpy()), rtol=1e-6)


def test_random_numbers_come_from_the_host_generator(strict):
    """array-api-strict has no RNG: Backend.rng=None draws on the host and moves the numbers in."""
    assert pg.get_backend(strict).rng is None
    pg.manual_seed(7)
    a = pg.randn(2, 3, backend=strict)
    r = pg.rand(4, backend=strict, dtype=pg.float64)
    pg.manual_seed(7)
    b = pg.randn(2, 3, backend="numpy")
    assert a.backend == strict and a.dtype == pg.float32 and r.dtype == pg.float64
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert 0.0 <= float(r.min()) and float(r.max()) < 1.0


def test_host_conversions_go_through_dlpack(strict):
    import array_api_strict
    raw = array_api_strict.asarray([1.0, 2.0, 3.0])
    t = pg.asarray(raw)
    assert t.backend == strict
    assert isinstance(t.numpy(), np.ndarray) and t.tolist() == [1.0, 2.0, 3.0]
    assert t.sum().item() == 6.0 and bool(t[0] == 1.0)


def test_transfer_to_numpy_and_back_is_differentiable(strict):
    x = pg.ones(3, backend=strict, requires_grad=True)
    y = (x.to("numpy") * 3).to(strict)
    assert y.backend == strict
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])
    assert x.grad.backend == strict


def test_fake_devices_give_a_clear_cross_device_error(strict):
    x = pg.ones(3, backend=strict, device="device1", requires_grad=True)
    y = pg.ones(3, backend=strict)
    assert str(x.device) == "device1" and str(y.device) == "cpu"
    with pytest.raises(pg.BackendMismatchError, match=r"add\(\).*cpu and device1"):
        x + y
    assert x.grad is None and x.tolist() == [1.0, 1.0, 1.0]
    z = y.to(device="device1")          # moving explicitly works, and stays differentiable
    w = (x * z).sum()
    w.backward()
    assert str(x.grad.device) == "device1"
    np.testing.assert_array_equal(x.grad.to(device="cpu").numpy(), [1.0, 1.0, 1.0])


def test_unknown_device_is_refused_with_the_devices_listed(strict):
    with pytest.raises(pg.BackendUnavailableError, match="device1"):
        pg.zeros(2, backend=strict, device="cuda")


def test_importing_the_plugin_does_not_import_array_api_strict():
    code = ("import sys, polygrad_strict; "
            "print(json.dumps('array_api_strict' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) is False
    assert pg.plugins.check_import_is_light("strict") is None


def test_listed_with_its_distribution():
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    out = subprocess.run([sys.executable, "-m", "polygrad", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    row = rows["strict"]
    assert (row["distribution"], row["version"], row["status"]) == \
        ("polygrad-strict", "0.1.0", "loaded")
    assert row["devices"] == ["cpu", "device1", "device2"]


def test_random_tensors_on_a_fake_device(strict):
    """The host generator hands from_numpy the backend's own device object."""
    pg.manual_seed(3)
    a = pg.randn(2, 2, backend=strict, device="device1")
    b = pg.rand(3, backend=strict, device="cpu")
    assert str(a.device) == "device1" and str(b.device) == "cpu"
    assert a.to(device="cpu").numpy().shape == (2, 2)
