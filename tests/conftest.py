"""Test-wide settings: only polygrad's own backends load, whatever else is installed.

Third-party plugins installed in the environment (plugins/polygrad-strict, -dask)
must not leak into these tests; tests that need them opt in explicitly.
"""

import os

os.environ.setdefault("POLYGRAD_LOAD_PLUGINS", "numpy,torch,cupy")
os.environ.pop("POLYGRAD_BACKEND", None)

import importlib.util  # noqa: E402

import pytest  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy"] + (["torch"] if HAS_TORCH else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test once per built-in CPU backend, with it as the default."""
    import polygrad
    with polygrad.use_backend(request.param):
        yield request.param
