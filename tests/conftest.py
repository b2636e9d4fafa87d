"""Test-wide settings: only polygrad's own backends load, whatever else is installed.

Third-party plugins installed in the environment (plugins/polygrad-strict, -dask)
must not leak into these tests; tests that need them opt in explicitly.
"""

import importlib.util
import os

import pytest


def pytest_configure(config):
    # pytest loads this file for any run from the repository root (testpaths); a conformance
    # run (pytest --pyargs polygrad_conformance --polygrad-backend=NAME) picks its own backends
    if config.getoption("polygrad_backend", None):
        return
    os.environ.setdefault("POLYGRAD_LOAD_PLUGINS", "numpy,torch,cupy")
    os.environ.pop("POLYGRAD_BACKEND", None)


HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy"] + (["torch"] if HAS_TORCH else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test once per built-in CPU backend, with it as the default."""
    import polygrad
    with polygrad.use_backend(request.param):
        yield request.param
