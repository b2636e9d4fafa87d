"""Differentiate SciPy code with polygrad: scipy.special.logsumexp and scipy.stats.zscore.

SciPy accepts any array that has ``__array_namespace__`` when ``SCIPY_ARRAY_API=1`` is set
before SciPy is first imported. polygrad's Tensor is such an array, and its namespace
records the graph, so SciPy's own code becomes differentiable on every polygrad backend.
The gradients are printed beside torch.autograd's on the same inputs.

Run: python examples/differentiate_scipy.py
"""

import os

os.environ["SCIPY_ARRAY_API"] = "1"      # before scipy is imported

import importlib.util  # noqa: E402

_missing = [m for m in ("scipy", "torch") if importlib.util.find_spec(m) is None]
if _missing:                  # scipy is differentiated, torch is the reference
    raise SystemExit(f"this example needs {' and '.join(_missing)}: pip install "
                     f"{' '.join(_missing)} (or, from the checkout, pip install '.[examples]')")

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402
import scipy.stats  # noqa: E402

import polygrad  # noqa: E402


def torch_reference(x_np):
    """The same two losses written with torch, differentiated by torch.autograd."""
    import torch
    x = torch.tensor(x_np, requires_grad=True)
    lse = torch.logsumexp(x, dim=1).sum()
    (g_lse,) = torch.autograd.grad(lse, x)
    z = (x - x.mean(1, keepdim=True)) / x.std(1, correction=0, keepdim=True)
    (g_z,) = torch.autograd.grad((z * z * z).sum(), x)
    return g_lse.numpy(), g_z.numpy()


def main():
    x_np = np.random.default_rng(0).normal(size=(2, 4))
    g_lse_torch, g_z_torch = torch_reference(x_np)
    for backend in polygrad.backends():
        if backend not in ("numpy", "torch"):
            continue
        x = polygrad.from_numpy(x_np, backend=backend, requires_grad=True)
        lse = scipy.special.logsumexp(x, axis=1)         # SciPy's code, on polygrad tensors
        (g_lse,) = polygrad.autograd.grad(lse.sum(), x)
        z = scipy.stats.zscore(x, axis=1)
        (g_z,) = polygrad.autograd.grad((z * z * z).sum(), x)
        print(f"--- backend {backend!r}: logsumexp is {lse.grad_fn.name()}, "
              f"zscore is {z.grad_fn.name()}")
        print("d logsumexp / dx (polygrad)\n", g_lse.numpy())
        print("d logsumexp / dx (torch)\n", g_lse_torch)
        print("d sum(zscore**3) / dx (polygrad)\n", g_z.numpy())
        print("d sum(zscore**3) / dx (torch)\n", g_z_torch)
        worst = max(np.abs(g_lse.numpy() - g_lse_torch).max(),
                    np.abs(g_z.numpy() - g_z_torch).max())
        print(f"largest difference from torch: {worst:.2e}")
        assert worst < 1e-10


if __name__ == "__main__":
    main()
