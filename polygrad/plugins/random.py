"""Random numbers: one counter-based stream that every backend shares, or each backend's own.

The Array API standard has no random numbers, and each array library's generator gives
other numbers for the same seed. By default polygrad draws from Philox4x64-10 (Salmon et
al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), a counter-based generator:
block ``i`` of the stream is a pure function of the key (the seed) and the counter
``i``, so a ``Generator`` is just ``(seed, offset)``. The bits, and the floats made from
them, are computed on the host with the Array API ops of the host namespace (numpy's)
and moved in with the backend's ``from_numpy``: ``manual_seed(0)`` then
``randn(3, backend=B)`` gives bitwise the same numbers for every backend B.

``Generator(native=True)`` (and ``polygrad.manual_seed(s, native=True)`` for the default
generator) draws with each backend's own generator instead (``Backend.rng``: numpy's
PCG64, torch's, cupy's on the GPU): faster where the host is the bottleneck (a GPU), but
the numbers then differ between backends. A backend without one borrows the host's.

This module owns the generators and the conversions from bits to numbers; the creation
functions (``polygrad.rand``, ``randn``, ...) that wrap the results in Tensors live in
``polygrad.graph.creation``.
"""

from __future__ import annotations

import math
import operator
import os
import threading

from ..base import dtypes as _dtypes
from .defaults import DEFAULT_BACKEND
from .host import get_backend

__all__ = ["Generator", "default_generator", "manual_seed", "philox4x64"]

_M64 = (1 << 64) - 1
_PHILOX_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)     # the multipliers
_PHILOX_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)     # the Weyl key increments
_CHUNK = 1 << 16           # blocks per pass: the round's temporaries stay in the cache
# mantissa bits (with the implicit one) of each floating dtype: a uniform number is
# k * 2**-m with m random bits, exact in that dtype, so it can never round up to 1.0
_MANTISSA = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
_ALGORITHM = "philox4x64-10"


def _host():
    return get_backend(DEFAULT_BACKEND)


def _mulhilo(xp, a, m):
    """The high and low 64-bit words of ``a * m`` (uint64 arrays; the standard has no
    128-bit product, so the high word is built from 32-bit halves, as Hacker's Delight's
    mulhu: no partial sum overflows 64 bits)."""
    u64 = xp.uint64
    lo32, s32 = xp.asarray(0xFFFFFFFF, dtype=u64), xp.asarray(32, dtype=u64)
    m_lo, m_hi = xp.asarray(m & 0xFFFFFFFF, dtype=u64), xp.asarray(m >> 32, dtype=u64)
    a_lo, a_hi = a & lo32, a >> s32
    t = a_hi * m_lo + ((a_lo * m_lo) >> s32)
    u = a_lo * m_hi + (t & lo32)
    hi = a_hi * m_hi + (t >> s32) + (u >> s32)
    return hi, a * xp.asarray(m, dtype=u64)


def philox4x64(xp, counter, key, rounds=10):
    """Philox4x64: four uint64 counter arrays and a key of two ints to four uint64 arrays.

    Written with Array API integer ops, so it runs in any namespace with uint64.

    >>> import numpy as np
    >>> z = np.zeros(1, dtype=np.uint64)
    >>> hex(int(philox4x64(np, (z, z, z, z), (0, 0))[0][0]))     # Random123's known answer
    '0x16554d9eca36314c'
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key[0] & _M64, key[1] & _M64
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + _PHILOX_W[0]) & _M64, (k1 + _PHILOX_W[1]) & _M64
        hi0, lo0 = _mulhilo(xp, c0, _PHILOX_M[0])
        hi1, lo1 = _mulhilo(xp, c2, _PHILOX_M[1])
        c0 = hi1 ^ c1 ^ xp.asarray(k0, dtype=xp.uint64)
        c2 = hi0 ^ c3 ^ xp.asarray(k1, dtype=xp.uint64)
        c1, c3 = lo1, lo0
    return c0, c1, c2, c3


def _check_seed(seed):
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}; "
                        f"pass int(seed)") from None
    if not -(1 << 63) <= seed <= _M64:
        raise ValueError(f"seed must lie in [-2**63, 2**64), got {seed}; reduce it, "
                         f"e.g. seed % 2**64")
    return seed & _M64          # torch's convention: -1 is the seed 2**64 - 1


class Generator:
    """A source of random numbers: a seed and a position in the Philox4x64-10 stream it keys.

    The same seed gives the same numbers on every backend and device. With
    ``native=True`` the draws come from each backend's own generator, seeded with the
    same seed (faster on a GPU; other numbers on each backend). ``device`` is accepted
    for torch's signature: the counter-based stream does not depend on it.

    >>> g = Generator().manual_seed(0)
    >>> g.initial_seed(), g.get_state()["offset"]
    (0, 0)
    """

    def __init__(self, device=None, *, native=False):
        self.device = device
        self.native = bool(native)
        self._lock = threading.Lock()
        self._natives = {}            # backend name -> that backend's generator (native=True)
        self._seed, self._offset = 0, 0
        self.seed()

    def __repr__(self):
        kind = "native" if self.native else _ALGORITHM
        return f"<polygrad.Generator {kind} seed={self._seed} offset={self._offset}>"

    # -- torch.Generator's seeding API ---------------------------------------------------
    def manual_seed(self, seed):
        """Restart the stream from ``seed`` (an int in [-2**63, 2**64)); returns self."""
        seed = _check_seed(seed)
        with self._lock:
            self._seed, self._offset = seed, 0
            for rng in self._natives.values():
                rng.seed(seed)
        return self

    def seed(self):
        """Seed from the operating system's entropy; returns the seed."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        """The seed the stream started from."""
        return self._seed

    def get_state(self):
        """The stream's position, as a small dict ``set_state`` takes back.

        >>> g = Generator().manual_seed(3)
        >>> state = g.get_state()
        >>> Generator().set_state(state).get_state() == state
        True
        """
        if self.native:
            raise RuntimeError("a native Generator's state lives in each backend's own "
                               "generator and cannot be saved here; use Generator() "
                               "(counter-based, the default) to save and restore a stream")
        with self._lock:
            return {"algorithm": _ALGORITHM, "seed": self._seed, "offset": self._offset}

    def set_state(self, state):
        """Go back to a position ``get_state`` returned; returns self."""
        if self.native:
            raise RuntimeError("a native Generator's state cannot be set; use Generator() "
                               "(counter-based, the default)")
        if not isinstance(state, dict) or set(state) != {"algorithm", "seed", "offset"}:
            raise TypeError(f"set_state expects the dict get_state returns ({{'algorithm', "
                            f"'seed', 'offset'}}), got {state!r}")
        if state["algorithm"] != _ALGORITHM:
            raise ValueError(f"state of algorithm {state['algorithm']!r}; this generator "
                             f"runs {_ALGORITHM!r}")
        seed, offset = state["seed"], state["offset"]
        if not (type(seed) is int and 0 <= seed <= _M64 and type(offset) is int
                and 0 <= offset <= _M64):
            raise ValueError(f"state's seed and offset must be ints in [0, 2**64), got "
                             f"seed={seed!r}, offset={offset!r}")
        with self._lock:
            self._seed, self._offset = seed, offset
        return self

    # -- drawing (the creation functions call these; they return the backend's arrays) ---
    def random_raw(self, n):
        """The next ``n`` uint64 words of the stream, on the host. Each call starts at a
        fresh 4-word block, so a draw depends only on the seed, the offset and ``n``."""
        blocks = -(-n // 4)
        with self._lock:
            start, seed = self._offset, self._seed
            self._offset += blocks
        return _words(start, blocks, seed)[:n]

    def draw_uniform(self, backend, shape, dtype, device=None):
        """Uniform numbers in [0, 1) of a floating ``dtype`` (a DType)."""
        name = _check_float(dtype, "rand")
        if self.native:
            return self._native(backend).random(shape, dtype=backend.native_dtype(dtype),
                                                device=device)
        xp = _host().xp
        n = math.prod(shape)
        m = _MANTISSA[name]
        u = xp.astype(self.random_raw(n) >> xp.asarray(64 - m, dtype=xp.uint64), xp.float64)
        return _move(backend, xp.reshape(u * 2.0 ** -m, shape), dtype, device)

    def draw_normal(self, backend, shape, dtype, device=None):
        """Standard normal numbers of a floating ``dtype``, by Box-Muller in float64
        (rounded once to ``dtype``)."""
        _check_float(dtype, "randn")
        if self.native:
            return self._native(backend).normal(shape, dtype=backend.native_dtype(dtype),
                                                device=device)
        xp = _host().xp
        n = math.prod(shape)
        words = self.random_raw(2 * -(-n // 2))
        top = xp.astype(words >> xp.asarray(11, dtype=xp.uint64), xp.float64) * 2.0 ** -53
        radius = xp.sqrt(-2.0 * xp.log(1.0 - top[0::2]))       # 1 - u lies in (0, 1]
        angle = (2.0 * math.pi) * top[1::2]
        z = xp.reshape(xp.stack([radius * xp.cos(angle), radius * xp.sin(angle)], axis=1),
                       (-1,))
        return _move(backend, xp.reshape(z[:n], shape), dtype, device)

    def draw_integers(self, backend, low, high, shape, dtype, device=None):
        """Integers in [low, high): ``low + word % (high - low)`` (bias below
        (high - low) / 2**64), in ``dtype`` (a DType)."""
        span = high - low
        if self.native:
            u = self.draw_uniform(backend, shape, _dtypes.float64, device)
            xp = backend.xp
            return xp.astype(xp.floor(u * span) + low, backend.native_dtype(dtype))
        xp = _host().xp
        words = self.random_raw(math.prod(shape)) % xp.asarray(span, dtype=xp.uint64)
        # int64 arithmetic wraps: right modulo 2**64, so spans above 2**63 work too
        out = xp.astype(words, xp.int64) + xp.asarray(low, dtype=xp.int64)
        return _move(backend, xp.reshape(out, shape), dtype, device)

    def draw_permutation(self, backend, n, dtype, device=None):
        """A random permutation of ``range(n)``: the order that sorts ``n`` random words."""
        if self.native:
            xp = backend.xp
            order = xp.argsort(self.draw_uniform(backend, (n,), _dtypes.float64, device))
            return xp.astype(order, backend.native_dtype(dtype))
        xp = _host().xp
        return _move(backend, xp.argsort(self.random_raw(n), stable=True), dtype, device)

    def _native(self, backend):
        rng = self._natives.get(backend.name)
        if rng is None:
            rng = backend.rng() if backend.rng is not None else _Borrowed(self, backend)
            rng.seed(self._seed)
            self._natives[backend.name] = rng
        return rng


def _words(start, blocks, seed):
    """``4 * blocks`` words: Philox4x64-10 of the counters ``start .. start + blocks - 1``
    (in the counter's first word) under the key ``(seed, 0)``."""
    xp = _host().xp
    out = []
    for lo in range(0, blocks, _CHUNK):
        c0 = xp.arange(start + lo, start + min(blocks, lo + _CHUNK), dtype=xp.uint64)
        zero = xp.zeros_like(c0)
        out.append(xp.stack(philox4x64(xp, (c0, zero, zero, zero), (seed, 0)), axis=1))
    if not out:
        return xp.zeros((0,), dtype=xp.uint64)
    return xp.reshape(xp.concat(out), (-1,))


def _check_float(dtype, what):
    name = _dtypes.as_dtype(dtype).name
    if name not in _MANTISSA:
        raise TypeError(f"{what} makes floating-point numbers ({', '.join(_MANTISSA)}), "
                        f"not {name}; for integers use polygrad.randint")
    return name


def _move(backend, host_array, dtype, device):
    """A host array as ``backend``'s array of ``dtype``: cast on the host when it has the
    dtype (so every backend gets the same rounding), else on the backend."""
    host = _host()
    dtype = _dtypes.as_dtype(dtype)
    if dtype.name in host.dtypes:
        host_array = host.xp.astype(host_array, host.native_dtype(dtype), copy=False)
        if backend is host and device in (None, "cpu"):
            return host_array
        return backend.from_numpy(host_array, device=device)
    return backend.xp.astype(backend.from_numpy(host_array, device=device),
                             backend.native_dtype(dtype))


class _Borrowed:
    """The native generator of a backend without one: the host's, moved in with from_numpy."""

    def __init__(self, owner, backend):
        self.owner, self.backend = owner, backend

    def seed(self, seed):
        pass                    # the owner's host generator carries the seed

    def _draw(self, kind, shape, dtype, device):
        host = _host()
        array = getattr(self.owner._native(host), kind)(shape, dtype=None, device=None)
        out = self.backend.from_numpy(array, device=device)
        return self.backend.xp.astype(out, dtype) if dtype is not None else out

    def random(self, shape, *, dtype=None, device=None):
        return self._draw("random", shape, dtype, device)

    def normal(self, shape, *, dtype=None, device=None):
        return self._draw("normal", shape, dtype, device)


#: the generator of ``polygrad.rand``, ``randn``, ... when no ``generator=`` is given
default_generator = Generator()


def manual_seed(seed, native=False):
    """Seed the default generator; ``native=True`` switches it to each backend's own
    generator (until the next ``manual_seed``). Returns the default generator."""
    seed = _check_seed(seed)
    default_generator.native = bool(native)
    return default_generator.manual_seed(seed)
