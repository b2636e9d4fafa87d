"""Layer 1, backends and plugins: the ``Backend`` declaration a plugin hands over, the
plugin host that discovers plugins through the ``polygrad`` entry-point group, the choice
of default backend, and random generators per backend.

It knows dtypes and devices (``polygrad.base``) and nothing above: no primitive, no
Tensor. Listing plugins imports no array library.
"""

from .backend import Backend, KnownFailure
from .hookspecs import hookimpl, hookspec
from .host import (
                   PluginStatus,
                   _host,  # noqa: F401  (tests inspect the host's state)
                   backend_names,
                   check_import_is_light,
                   describe,
                   get_backend,
                   owner_of,
                   plugin_primitives,
                   register_plugin,
                   reload_plugins,
                   unregister_plugin,
)

__all__ = ["Backend", "KnownFailure", "hookimpl", "hookspec", "PluginStatus", "backend_names",
           "check_import_is_light", "describe", "get_backend", "owner_of", "plugin_primitives",
           "register_plugin", "reload_plugins", "unregister_plugin"]
