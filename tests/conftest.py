"""Test-wide settings: only polygrad's own backends load, whatever else is installed.

Third-party plugins installed in the environment (plugins/polygrad-strict, -dask)
must not leak into these tests; tests that need them opt in explicitly.

Hypothesis runs under the ``ci`` profile when the ``CI`` variable is set (reproducible:
derandomized, no example database) and under ``dev`` otherwise; neither has a deadline,
so a loaded machine cannot fail a test by being slow. ``--hypothesis-profile`` overrides.
"""

import contextlib
import dataclasses
import importlib.util
import os

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:          # hypothesis is a test dependency; without it its tests skip
    settings = None
else:
    settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci" if os.environ.get("CI", "").lower() not in ("", "0", "false")
                          else "dev")


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


#: the example plugins' backends, where installed (tests that want them opt in)
PLUGIN_BACKENDS = [n for n in ("strict", "dask") if importlib.util.find_spec(f"polygrad_{n}")]


@pytest.fixture(params=BACKENDS + PLUGIN_BACKENDS, scope="module")
def any_backend(request):
    """numpy and torch, then the example plugins' strict (the standard only) and dask (no
    views of its own, lazy), each plugin registered in-process for the module's tests."""
    import polygrad
    name = request.param
    if name in PLUGIN_BACKENDS:
        polygrad.plugins.register_plugin(importlib.import_module(f"polygrad_{name}"), name=name)
    try:
        yield name
    finally:
        if name in PLUGIN_BACKENDS:
            polygrad.plugins.unregister_plugin(name)


def pytest_collection_modifyitems(config, items):
    # tests/test_cupy.py's GPU tests carry its `needs_gpu` skipif ("cupy backend: <why>");
    # tests/test_cuda.py is marked as a whole. `-m gpu` selects them, `-m "not gpu"` drops them.
    gpu = pytest.mark.gpu
    for item in items:
        if any(m.name == "skipif" and str(m.kwargs.get("reason", "")).startswith("cupy backend:")
               for m in item.iter_markers()):
            item.add_marker(gpu)


@contextlib.contextmanager
def derived_backend(name, **changes):
    """A copy of the numpy backend under another name (fields replaced by ``changes``),
    registered as a plugin for the block: a real third-party backend for tests."""
    import polygrad
    from polygrad.plugins import get_backend, register_plugin, unregister_plugin
    backend = dataclasses.replace(get_backend("numpy"), name=name, **changes)

    class Plugin:
        @polygrad.hookimpl
        def register_backends(self, register):
            register(backend)

    register_plugin(Plugin(), name=f"test-{name}")
    try:
        yield backend
    finally:
        unregister_plugin(f"test-{name}")
