"""Gradients through real third-party Array API code (SciPy, scikit-learn, array-api-extra),
compared with torch.autograd on the same inputs.

SciPy reads ``SCIPY_ARRAY_API=1`` once, when first imported, and other test modules may
import it first; so the cases run in one subprocess per backend (this file run as a
script), which prints a JSON report, and the tests below check it case by case.
The oracle is torch's own functions (torch.logsumexp, torch.cov ...), not SciPy on torch.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import BACKENDS

CASES = ["logsumexp", "softmax", "log_softmax", "xlogy", "erf", "expit", "zscore", "trapezoid",
         "cov", "sinc", "rbf_kernel"]


def _cases(torch):
    """name -> (third-party call on polygrad tensors, torch oracle); both take (x, y)."""
    import array_api_extra as xpx
    import scipy.integrate as si
    import scipy.special as sp
    import scipy.stats as st
    from sklearn.metrics.pairwise import rbf_kernel

    def zscore(x, y):
        return (x - x.mean(1, keepdim=True)) / x.std(1, correction=0, keepdim=True)

    return {
        "logsumexp": (lambda x, y: sp.logsumexp(x, axis=1), lambda x, y: torch.logsumexp(x, 1)),
        "softmax": (lambda x, y: sp.softmax(x, axis=1), lambda x, y: torch.softmax(x, 1)),
        "log_softmax": (lambda x, y: sp.log_softmax(x, axis=1),
                        lambda x, y: torch.log_softmax(x, 1)),
        "xlogy": (lambda x, y: sp.xlogy(x, y), lambda x, y: torch.xlogy(x, y)),
        "erf": (lambda x, y: sp.erf(x), lambda x, y: torch.erf(x)),
        "expit": (lambda x, y: sp.expit(x), lambda x, y: torch.sigmoid(x)),
        "zscore": (lambda x, y: st.zscore(x, axis=1), zscore),
        "trapezoid": (lambda x, y: si.trapezoid(x, axis=1), lambda x, y: torch.trapezoid(x, dim=1)),
        "cov": (lambda x, y: xpx.cov(x), lambda x, y: torch.cov(x)),
        "sinc": (lambda x, y: xpx.sinc(x), lambda x, y: torch.sinc(x)),
        "rbf_kernel": (lambda x, y: rbf_kernel(x, y, gamma=0.5),
                       lambda x, y: torch.exp(-0.5 * torch.cdist(x, y) ** 2)),
    }


def _run(backend):
    """Each case's value and gradient errors against torch, as a dict (the subprocess side)."""
    import numpy as np
    import sklearn
    import torch

    import polygrad as pg
    sklearn.set_config(array_api_dispatch=True)
    rng = np.random.default_rng(0)
    report = {}
    for name, (call, oracle) in _cases(torch).items():
        x_np, y_np = rng.uniform(0.1, 2.0, (3, 5)), rng.uniform(0.1, 2.0, (4, 5))
        if name == "xlogy":
            y_np = rng.uniform(0.1, 2.0, (3, 5))
            x_np[0, 0] = 0.0          # xlogy's special point
        try:
            x = pg.from_numpy(x_np, backend=backend, requires_grad=True)
            y = pg.from_numpy(y_np, backend=backend, requires_grad=True)
            out = call(x, y)
            w = rng.standard_normal(tuple(out.shape))
            loss = (out * pg.from_numpy(w, backend=backend)).sum()
            gx, gy = pg.autograd.grad(loss, (x, y), allow_unused=True)
            tx = torch.tensor(x_np, requires_grad=True)
            ty = torch.tensor(y_np, requires_grad=True)
            tout = oracle(tx, ty)
            tgx, tgy = torch.autograd.grad((tout * torch.tensor(w)).sum(), (tx, ty),
                                           allow_unused=True)
            errs = {"value": _err(out, tout), "grad_x": _err(gx, tgx)}
            if tgy is not None:
                errs["grad_y"] = _err(gy, tgy)
            report[name] = {"type": type(out).__name__, **errs}
        except Exception as exc:   # reported, and the test for this case fails with it
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def _err(ours, theirs):
    import numpy as np
    if ours is None:
        return float("inf")
    a = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    b = theirs.detach().numpy()
    return float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))


@pytest.fixture(scope="module", params=BACKENDS)
def report(request):
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    proc = subprocess.run([sys.executable, __file__, request.param], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", CASES)
def test_gradient_through_library_code_matches_torch(report, name):
    result = report[name]
    assert "error" not in result, result.get("error")
    assert result["type"] == "Tensor"           # the library returned polygrad's type
    tol = 1e-6 if name == "erf" else 1e-10      # erf: polygrad's approximation, < 1.2e-7
    for key in ("value", "grad_x", "grad_y"):
        if key in result:
            assert result[key] < tol, f"{name} {key}: relative error {result[key]:.3g}"


def test_scipy_refuses_to_silently_copy_a_tensor_that_requires_grad():
    """numpy fallbacks inside SciPy call np.asarray: that must raise, not drop the gradient."""
    code = ("import numpy as np, polygrad as pg\n"
            "x = pg.tensor([1.0, 2.0], requires_grad=True)\n"
            "try:\n    np.asarray(x)\nexcept RuntimeError as e:\n    print('raised', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("raised") and "requires grad" in out.stdout


def test_example_differentiate_scipy_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "differentiate_scipy.py")
    out = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("largest difference from torch") == len(BACKENDS)


if __name__ == "__main__":
    os.environ.setdefault("POLYGRAD_LOAD_PLUGINS", "numpy,torch,cupy")
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        sys.exit("run with SCIPY_ARRAY_API=1 (set before SciPy is imported)")
    print(json.dumps(_run(sys.argv[1])))
