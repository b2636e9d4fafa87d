"""Random numbers per backend (the Array API standard has none).

A backend may declare its own generator (``Backend.rng``); otherwise polygrad
uses the default backend's generator on the host and moves the numbers in with
the backend's ``from_numpy``, so every backend can make random tensors.
"""

from __future__ import annotations

from .defaults import DEFAULT_BACKEND
from .host import _host, get_backend

__all__ = ["seed_all", "generator"]

_seed = {"value": None}


def seed_all(seed):
    """Seed the generators of all backends loaded so far, and remember it for later ones."""
    _seed["value"] = seed
    for backend in list(_host.backends.values()):
        if backend._rng is not None:
            backend._rng.seed(seed)
    return _Seeded(seed)


class _Seeded:
    def __init__(self, seed):
        self.seed = seed

    def initial_seed(self):
        return self.seed


def generator(backend):
    """``backend``'s random generator, created (and seeded, if a seed was set) on first use."""
    rng = backend._rng
    if rng is None:
        rng = backend._rng = _make(backend)
    return rng


def _make(backend):
    if backend.rng is not None:
        rng = backend.rng()
    else:
        rng = HostRNG(backend)
    if _seed["value"] is not None:
        rng.seed(_seed["value"])
    return rng


class HostRNG:
    """Random numbers from the host generator (numpy's), moved in with ``from_numpy``."""

    def __init__(self, backend):
        self.backend = backend
        self.host = generator(get_backend(DEFAULT_BACKEND))

    def seed(self, seed):
        self.host.seed(seed)

    def _draw(self, kind, shape, dtype, device):
        host_array = getattr(self.host, kind)(shape, dtype=None, device=None)
        out = self.backend.from_numpy(host_array, device=device)
        return self.backend.xp.astype(out, dtype) if dtype is not None else out

    def random(self, shape, *, dtype=None, device=None):
        return self._draw("random", shape, dtype, device)

    def normal(self, shape, *, dtype=None, device=None):
        return self._draw("normal", shape, dtype, device)
