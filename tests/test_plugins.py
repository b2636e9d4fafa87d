"""The plugin host in-process: throwaway plugins registered and unregistered inside each test
(installed plugins never leak in; see tests/test_plugin_host.py for real distributions)."""

import numpy as np
import pytest

import polygrad as pg
from polygrad import plugins


def _numpy_copy_backend(name, **extra):
    """A tiny third backend: numpy's namespace under another name."""
    return pg.Backend(name=name, module="numpy", load=lambda: np,
                      array_types=lambda: (), to_numpy=np.asarray,
                      from_numpy=lambda a, device=None: np.array(a), **extra)


class _Plugin:
    def __init__(self, *backends):
        self.backends = backends

    @pg.hookimpl
    def register_backends(self, register):
        for b in self.backends:
            register(b)


@pytest.fixture
def registered():
    names = []

    def register(plugin, name):
        plugins.register_plugin(plugin, name=name)
        names.append(name)
    yield register
    for name in names:
        plugins.unregister_plugin(name)


def test_a_registered_backend_runs_the_engine(registered):
    registered(_Plugin(_numpy_copy_backend("npcopy")), "npcopy-plugin")
    assert "npcopy" in pg.backends()
    a = pg.linspace(0.0, 1.0, steps=5, requires_grad=True, backend="npcopy")
    pg.sin(a).sum().backward()
    assert a.grad.backend == "npcopy"
    np.testing.assert_allclose(a.grad.numpy(), np.cos(np.linspace(0, 1, 5)), rtol=1e-6)
    assert any(r["name"] == "npcopy" and r["status"] == "loaded" for r in plugins.describe())


def test_unregister_removes_the_backend(registered):
    plugins.register_plugin(_Plugin(_numpy_copy_backend("gone")), name="gone-plugin")
    plugins.unregister_plugin("gone-plugin")
    with pytest.raises(pg.UnknownBackendError):
        plugins.get_backend("gone")


def test_duplicate_backend_name_names_both_plugins(registered):
    registered(_Plugin(_numpy_copy_backend("dup")), "first")
    with pytest.raises(pg.PluginError, match=r"plugin 'second'.*'dup'.*plugin 'first'"):
        plugins.register_plugin(_Plugin(_numpy_copy_backend("dup")), name="second")
    assert plugins.get_backend("dup")._plugin == "first"


def test_builtin_name_cannot_be_taken(registered):
    with pytest.raises(pg.PluginError, match="'numpy'"):
        plugins.register_plugin(_Plugin(_numpy_copy_backend("numpy")), name="squatter")


@pytest.mark.parametrize("bad,match", [
    ("not a backend", "not a polygrad.Backend"),
    (_numpy_copy_backend("Bad Name"), "lower-case"),
    (_numpy_copy_backend("weird_dtypes", dtypes=("float32", "float99")), "unknown dtypes"),
])
def test_malformed_backends_are_rejected_with_the_plugin_named(bad, match):
    with pytest.raises(pg.PluginError, match=match) as info:
        plugins.register_plugin(_Plugin(bad), name="broken")
    assert "broken" in str(info.value)
    assert "broken" not in {r["plugin"] for r in plugins.describe()}


def test_misspelt_hook_is_an_error_naming_it():
    class Misspelt:
        @pg.hookimpl
        def register_backend(self, register):     # missing the final "s"
            pass

    with pytest.raises(pg.PluginError, match="register_backend"):
        plugins.register_plugin(Misspelt(), name="misspelt")


def test_declared_unsupported_op_raises_naming_backend_and_op(registered):
    registered(_Plugin(_numpy_copy_backend("nosin", unsupported={"sin": "no sine here"})), "p")
    x = pg.ones(2, backend="nosin")
    with pytest.raises(pg.UnsupportedOperation, match=r"'nosin'.*'sin'.*no sine here"):
        pg.sin(x)
    assert pg.cos(x).backend == "nosin"


def test_listing_is_sorted_and_repeatable():
    first = [(r["plugin"], r["name"]) for r in plugins.describe()]
    assert first == sorted(first) and first == [(r["plugin"], r["name"]) for r in plugins.describe()]
