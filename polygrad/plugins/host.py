"""The plugin host: discovers backends (and extra primitives) through the ``polygrad``
entry-point group.

Discovery is lazy (never at ``import polygrad``), idempotent, deterministic (entry points
sorted by name, then distribution) and per backend: the entry-point name is the backend's
name, so asking for backend ``dask`` imports polygrad's own entry points (the built-in
backends) and then the entry points named ``dask``, no other plugin. Listing the backends
(``backend_names``, ``describe``, ``python -m polygrad plugins``), registering a plugin by
hand, asking for plugin primitives or for a name no entry point has, and meeting an array
of a type no loaded backend claims import them all (plugins stay light: none of this
imports torch, cupy or dask). So one slow or broken plugin touches only its own backend
and those full listings, never numpy or the others.

Built-in backends are entry points of polygrad's own distribution and load exactly like
third-party ones, but first: a third party registering a backend named ``numpy`` fails
against the built-in, never displaces it; and a backend whose name is another entry
point's belongs to that entry point (a third party registering it fails, whatever the
order of loading). A plugin's import that raises anything, SystemExit and
KeyboardInterrupt included, is that plugin's failure; what it prints goes to stderr.
Environment switches:

- ``POLYGRAD_DISABLE_PLUGINS=a,b``: skip these entry points (the built-in numpy backend,
  the default and the reference, is always loaded);
- ``POLYGRAD_LOAD_PLUGINS=a,b``: load only these (an allow-list; empty loads only numpy);
- ``POLYGRAD_STRICT_PLUGINS=1``: a plugin that fails to load raises instead of warning.

Hooks are called through pluggy (``POLYGRAD_TRACE_PLUGINS=1`` traces them), one plugin at
a time so that each backend and primitive is credited to the plugin that registered it.
Primitives registered by plugins are kept here; the rule table
(``polygrad.primitives.PRIMITIVES``) reads them from ``plugin_primitives()``.

This module owns the registry and the listing; it does not run ops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass

import pluggy

from ..base.dtypes import DTYPES
from ..base.errors import PluginError, UnknownBackendError
from . import hookspecs
from .backend import Backend

__all__ = ["get_backend", "backend_names", "register_plugin", "unregister_plugin",
           "describe", "owner_of", "reload_plugins", "PluginStatus", "check_import_is_light",
           "plugin_primitives"]

GROUP = "polygrad"
# The embedded default backend and the conformance reference: never disabled
# (as pytest's essential plugins), so that polygrad always has one backend.
ESSENTIAL = "numpy"
OUR_DISTRIBUTIONS = ("polygrad-xp", "polygrad")   # our own distribution, by normalised name
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class PluginStatus:
    """One row of ``python -m polygrad plugins``."""

    name: str
    distribution: str
    version: str
    status: str                      # loaded | failed: why | disabled | not installed | unavailable: why
    backends: tuple = ()

    def as_dict(self):
        return dataclasses.asdict(self)


class _Host:
    def __init__(self):
        self.lock = threading.RLock()
        self.loaded = False                         # every entry point tried (full discovery)
        self.builtins = False                       # our own entry points tried
        self.entry_points = None                    # sorted, read once
        self.tried: set = set()                     # entry points loaded or recorded as failed
        self.pm = None
        self.backends: dict[str, Backend] = {}
        self.provider: dict[str, str] = {}          # backend name -> plugin name
        self.status: dict[str, PluginStatus] = {}
        self.primitives: dict[str, list] = {}      # plugin name -> its primitives
        self.primitives_version = 0                # bumped on every change (the table syncs)
        self.owners: dict[type, Backend] = {}
        self.warned: set = set()

    def reset(self):
        version = self.primitives_version
        self.__init__()
        self.primitives_version = version + 1     # never reused: the table must resync


_host = _Host()


def _env_list(var):
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _new_manager():
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("POLYGRAD_TRACE_PLUGINS"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def _entry_points():
    """The group's entry points, ours first: a third party can never displace a built-in
    backend (its collision is reported against it, whatever its name sorts like)."""
    if _host.entry_points is None:
        _host.entry_points = sorted(
            importlib.metadata.entry_points(group=GROUP),
            key=lambda ep: (not _ours(ep), ep.name, ep.dist.name if ep.dist else ""))
    return _host.entry_points


def _key(ep):
    return (ep.name, ep.value, ep.dist.name if ep.dist else "?")


def _load(eps):
    """Load each of ``eps`` not tried yet, in order."""
    with _host.lock:
        if _host.pm is None:
            _host.pm = _new_manager()
        strict = os.environ.get("POLYGRAD_STRICT_PLUGINS", "") not in ("", "0")
        for ep in eps:
            if _key(ep) not in _host.tried:
                _load_one(ep, strict)
                _host.tried.add(_key(ep))     # not reached when strict mode raised


def _enabled(ep):
    """False when the environment's lists switch this entry point off."""
    if ep.name == ESSENTIAL and _ours(ep):
        return True
    disabled = _env_list("POLYGRAD_DISABLE_PLUGINS") or set()
    allowed = _env_list("POLYGRAD_LOAD_PLUGINS")
    return ep.name not in disabled and (allowed is None or ep.name in allowed)


def _load_one(ep, strict):
    dist = ep.dist.name if ep.dist else "?"
    version = ep.dist.version if ep.dist else "?"
    if ep.name in _host.status:
        seen = _host.status[ep.name]
        if _normalise(seen.distribution) != _normalise(dist):   # not a twin install
            _fail(f"{ep.name} ({dist})", dist, version, PluginError(
                f"entry point {ep.name!r} of {dist} has the name of {seen.distribution}'s "
                f"plugin, which is loaded; rename it"), strict)
        return
    if not _enabled(ep):
        _host.status[ep.name] = PluginStatus(ep.name, dist, version, "disabled")
        _host.pm.set_blocked(ep.name)
        return
    try:
        # what a plugin prints goes to stderr: stdout belongs to the program
        # (``plugins --json`` must stay valid JSON)
        with contextlib.redirect_stdout(sys.stderr):
            module = ep.load()
            # a malformed plugin (unknown hook, duplicate backend name) fails like
            # a broken import: the other plugins keep working
            _register(module, ep.name, dist, version, entry_point=True)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001
        # any error of a plugin's import is its own, sys.exit() and ^C-like included
        _fail(ep.name, dist, version, exc, strict)


def _ensure_loaded():
    """Full discovery: every entry point (listing, hand registration, plugin primitives)."""
    if _host.loaded:
        return
    with _host.lock:
        if not _host.loaded:
            _load(_entry_points())
            _host.loaded = True


def _ensure_builtins():
    """Our own entry points (the built-in backends), before any third party's."""
    if _host.builtins:
        return
    with _host.lock:
        if not _host.builtins:
            _load([ep for ep in _entry_points() if _ours(ep)])
            _host.builtins = True


def _ensure_backend(name):
    """Load what can provide backend ``name``: our own entry points, then those named
    ``name``. Only when no entry point has that name (a plugin whose backends are named
    otherwise) are all the others loaded: the one that has it owns the name, so its
    failure, or its being disabled, is the answer."""
    if _host.loaded:
        return
    with _host.lock:
        _ensure_builtins()
        if name not in _host.backends:
            _load([ep for ep in _entry_points() if ep.name == name])
        if name not in _host.backends and _entry_point_named(name) is None:
            _ensure_loaded()


def _ours(ep):
    return ep.dist is not None and _normalise(ep.dist.name) in OUR_DISTRIBUTIONS


def _fail(name, dist, version, exc, strict):
    why = f"{type(exc).__name__}: {exc}"
    msg = (f"polygrad: plugin {name!r} ({dist} {version}) failed to load: {why}; "
           f"run 'python -m polygrad plugins' for details")
    if strict:       # nothing recorded: the next lookup raises again
        raise PluginError(msg) from exc
    _host.status[name] = PluginStatus(name, dist, version, f"failed: {why}")
    if name not in _host.warned:
        _host.warned.add(name)
        warnings.warn(msg, RuntimeWarning, stacklevel=4)


def _register(plugin, name, dist="", version="", entry_point=False):
    """Register a plugin object and run its hooks with a per-plugin ``register`` callback."""
    pm = _host.pm
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        raise PluginError(f"plugin {name!r} ({dist}) is malformed: {exc}") from exc
    except Exception as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        raise PluginError(
            f"plugin {name!r} ({dist}) implements a hook polygrad does not know: {exc}. "
            f"The hooks are {', '.join(_hook_names())}.") from exc
    added, prims = [], []
    others = [p for p in pm.get_plugins() if p is not plugin]
    try:
        # through pluggy (tracing, blocking), restricted to this plugin's implementations
        pm.subset_hook_caller("register_backends", others)(
            register=lambda b: added.append(_validate(b, name, dist, entry_point)))
        pm.subset_hook_caller("register_primitives", others)(
            register=lambda p: prims.append(_validate_primitive(p, name, dist)))
    except Exception:
        pm.unregister(plugin)
        raise
    for b in added:
        b._plugin = name
        _host.backends[b.name] = b
        _host.provider[b.name] = name
    _host.owners.clear()
    _host.status[name] = PluginStatus(name, dist, version, "loaded", tuple(b.name for b in added))
    if prims:
        _host.primitives[name] = prims
        _host.primitives_version += 1


def _normalise(dist):
    return re.sub(r"[-_.]+", "-", dist).lower()


def _validate_primitive(prim, plugin, dist):
    """Duck-typed here (the Primitive class lives a layer up); the rule table checks the rest."""
    name = getattr(prim, "name", None)
    if not isinstance(name, str) or not hasattr(prim, "vjp"):
        raise PluginError(f"plugin {plugin!r} ({dist}) registered {prim!r}, which is not a "
                          f"polygrad.primitives.Primitive")
    for other, prims in _host.primitives.items():
        if any(p.name == name for p in prims):
            raise PluginError(f"plugin {plugin!r} ({dist}) registers primitive {name!r}, which "
                              f"plugin {other!r} already registered")
    return prim


def _entry_point_named(name):
    """The entry point called ``name`` that loads first (enabled or not), or None."""
    for ep in _entry_points():
        if ep.name == name:
            return ep
    return None


def plugin_primitives():
    """``(version, [(plugin, primitive), ...])`` of the primitives plugins registered; the
    version changes whenever the list does."""
    _ensure_loaded()
    return _host.primitives_version, [(plugin, p) for plugin, prims in _host.primitives.items()
                                      for p in prims]


def _hook_names():
    return sorted(n for n in dir(hookspecs) if n.startswith("register_"))


def _validate(backend, plugin, dist, entry_point=False):
    where = f"plugin {plugin!r} ({dist})"
    if not isinstance(backend, Backend):
        raise PluginError(f"{where} registered {backend!r}, which is not a polygrad.Backend")
    if not isinstance(backend.name, str) or not _NAME_RE.match(backend.name):
        raise PluginError(f"{where} registered a backend named {backend.name!r}; names are "
                          f"lower-case letters, digits and underscores, starting with a letter")
    for fname in ("load", "array_types", "to_numpy", "from_numpy", "devices"):
        if not callable(getattr(backend, fname)):
            raise PluginError(f"{where}: backend {backend.name!r} field {fname!r} must be callable")
    owner = _entry_point_named(backend.name) if entry_point else None
    if owner is not None and backend.name != plugin:
        # lazy lookups load the entry point named like the backend: it must be the one
        # that provides it, or which plugin wins would depend on what was asked first
        raise PluginError(f"{where} registers backend {backend.name!r}, which is the name of "
                          f"{owner.dist.name if owner.dist else '?'}'s entry point; a backend "
                          f"belongs to the entry point of its name: rename it")
    if backend.name in _host.backends:
        other = _host.provider.get(backend.name, "?")
        raise PluginError(f"{where} registers backend {backend.name!r}, which plugin {other!r} "
                          f"already registered; rename one or disable a plugin with "
                          f"POLYGRAD_DISABLE_PLUGINS={plugin}")
    bad = [d for d in backend.dtypes if d not in DTYPES]
    if bad:
        raise PluginError(f"{where}: backend {backend.name!r} declares unknown dtypes {bad}; "
                          f"use Array API names such as {sorted(DTYPES)[:4]}")
    return backend


# -- public API -----------------------------------------------------------------------------

def register_plugin(plugin, name=None):
    """Register a plugin object (a module or any object with hook implementations) by hand.

    Tests and notebooks use this; installed plugins use the ``polygrad`` entry-point group.

    >>> import polygrad
    >>> class P:
    ...     @polygrad.hookimpl
    ...     def register_backends(self, register):
    ...         pass
    >>> polygrad.plugins.register_plugin(P(), name="empty")
    >>> polygrad.plugins.unregister_plugin("empty")
    """
    _ensure_loaded()
    name = name or getattr(plugin, "__name__", type(plugin).__name__)
    with _host.lock:
        if name in _host.status and _host.status[name].status == "loaded":
            raise PluginError(f"a plugin named {name!r} is already registered")
        if _host.pm.is_blocked(name):      # disabled as an entry point, registered by hand
            _host.pm.unblock(name)
        _register(plugin, name, dist="(registered in-process)", version="")


def unregister_plugin(name):
    """Remove a plugin registered with ``register_plugin`` and the backends it added."""
    with _host.lock:
        plugin = _host.pm.get_plugin(name) if _host.pm else None
        if plugin is not None:
            _host.pm.unregister(plugin)
        for bname in [b for b, p in _host.provider.items() if p == name]:
            del _host.backends[bname]
            del _host.provider[bname]
        _host.status.pop(name, None)
        _host.owners.clear()
        if _host.primitives.pop(name, None) is not None:
            _host.primitives_version += 1


def reload_plugins():
    """Forget everything discovered and discover again on next use (tests, after pip install)."""
    with _host.lock:
        _host.reset()


def backend_names(usable=True):
    """Sorted names of registered backends; with ``usable`` only those that can run here.

    >>> "numpy" in backend_names()
    True
    """
    _ensure_loaded()
    names = sorted(_host.backends)
    if usable:
        names = [n for n in names if _host.backends[n].unavailable_reason() is None]
    return names


def get_backend(name):
    """The registered Backend called ``name``; the error lists the installed ones.

    >>> get_backend("numpy").name
    'numpy'
    """
    if isinstance(name, Backend):
        return name
    b = _host.backends.get(name)
    if b is None:
        _ensure_backend(name)
        b = _host.backends.get(name)
        if b is None:
            raise UnknownBackendError(_unknown(name))
    return b


def _unknown(name):
    st = _host.status.get(name)
    if st is not None and st.status == "disabled":
        return (f"backend {name!r} is disabled (POLYGRAD_DISABLE_PLUGINS or "
                f"POLYGRAD_LOAD_PLUGINS leave out its plugin, {st.distribution}); "
                f"change those variables to use it")
    if st is not None and st.status.startswith("failed: "):
        return (f"backend {name!r} is unavailable: its plugin ({st.distribution} {st.version}) "
                f"failed to load: {st.status[len('failed: '):]}; fix or uninstall it "
                f"(see 'python -m polygrad plugins')")
    return (f"unknown backend {name!r}; installed backends: "
            f"{', '.join(backend_names(usable=False)) or 'none'}. Install a plugin that "
            f"provides it, or see 'python -m polygrad plugins'.")


def owner_of(array):
    """The backend that owns a raw array's type, or None. Only libraries already imported are asked."""
    b = _host.owners.get(type(array))
    if b is not None:
        return b
    _ensure_builtins()
    b = _claim(array)
    if b is None and not _host.loaded and _array_like(array):
        _ensure_loaded()                 # an array no loaded backend claims: ask every plugin
        b = _claim(array)
    return b


def _array_like(obj):
    return hasattr(obj, "__array_namespace__") or (hasattr(obj, "shape") and
                                                    hasattr(obj, "dtype"))


def _claim(array):
    for name in sorted(_host.backends):
        backend = _host.backends[name]
        if backend.module.split(".")[0] not in sys.modules:
            continue          # the library was never imported, so it owns no live array
        try:
            types = backend.array_types()
        except Exception:  # noqa: BLE001 - a broken backend must not break ownership lookups
            continue
        for t in types:
            _host.owners.setdefault(t, backend)
    return _host.owners.get(type(array))


def describe(load=False):
    """Rows for ``python -m polygrad plugins``: one per plugin and backend."""
    _ensure_loaded()
    rows = []
    for pname in sorted(_host.status):
        st = _host.status[pname]
        if not st.backends:
            rows.append({"plugin": pname, "name": pname, "distribution": st.distribution,
                         "version": st.version, "status": st.status, "devices": [], "dtypes": []})
            continue
        for bname in st.backends:
            b = _host.backends[bname]
            reason = b.unavailable_reason()
            if reason and not b.installed():
                status = "not installed"
            elif reason:
                status = f"unavailable: {reason}"
            else:
                status = "loaded"
            row = {"plugin": pname, "name": bname, "distribution": st.distribution,
                   "version": st.version, "status": status,
                   "devices": list(b.devices()) if status == "loaded" else [],
                   "dtypes": list(b.dtypes), "unsupported": dict(b.unsupported),
                   "fused": sorted(b.fused), "lazy": b.lazy}
            if status == "not installed":
                row["reason"] = reason
            if load and status == "loaded" and b.info is not None:
                row["info"] = dict(b.info())
            rows.append(row)
    return rows


_LIGHT_CHECK = r"""
import importlib.metadata, json, sys
import polygrad
name = sys.argv[1]
eps = [ep for ep in importlib.metadata.entry_points(group="polygrad") if ep.name == name]
if not eps:
    print(json.dumps({"error": f"no entry point named {name!r} in group 'polygrad'"}))
    sys.exit()
before = set(sys.modules)
plugin = eps[0].load()
added = {m.split(".")[0] for m in set(sys.modules) - before}
found = []
hook = getattr(plugin, "register_backends", None)
if hook is not None:
    hook(register=found.append)
heavy = sorted({b.module for b in found if b.module.split(".")[0] in added})
print(json.dumps({"heavy": heavy, "value": eps[0].value}))
"""


def check_import_is_light(entry_point_name):
    """None when importing the plugin ``entry_point_name`` imports none of its backends'
    array libraries; otherwise what is wrong. Runs in a fresh interpreter.

    >>> check_import_is_light("numpy") is None
    True
    """
    proc = subprocess.run([sys.executable, "-c", _LIGHT_CHECK, entry_point_name],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"plugin {entry_point_name!r} failed to import: {last}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in result:
        return result["error"]
    if result["heavy"]:
        mods = ", ".join(repr(m) for m in result["heavy"])
        return (f"plugin {entry_point_name!r} ({result['value']}) imports {mods} at import time; "
                f"move the import into Backend.load and the functions it calls, so that "
                f"'import polygrad' and plugin listing stay light")
    return None
