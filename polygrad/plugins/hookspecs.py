"""The hooks a polygrad plugin may implement. Mark implementations with ``polygrad.hookimpl``."""

import pluggy

hookspec = pluggy.HookspecMarker("polygrad")
hookimpl = pluggy.HookimplMarker("polygrad")


@hookspec
def register_backends(register):
    """Register Backend declarations by calling ``register(backend)`` once per backend."""


@hookspec
def register_primitives(register):
    """Register extra differentiable primitives by calling ``register(primitive)``."""
