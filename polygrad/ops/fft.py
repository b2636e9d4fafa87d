"""``polygrad.ops.fft``: the Array API fft extension on Tensors.

fft, ifft, fftn, ifftn, rfft, irfft, hfft and ihfft are primitives with transposes in
``polygrad.primitives.fft``; rfftn and irfftn compose rfft/irfft with fftn/ifftn;
fftshift and ifftshift are rolls; fftfreq and rfftfreq create arrays on the default
backend.
"""

from __future__ import annotations

from ..base.dtypes import get_default_dtype
from ..graph.engine import apply
from ..primitives import PRIMITIVES as P
from . import array_api as pg


def _one(name):
    prim = P["fft." + name]

    def fn(x, /, *, n=None, axis=-1, norm="backward"):
        return apply(prim, x, n=n, axis=axis, norm=norm)
    fn.__name__ = name
    fn.__doc__ = f"The Array API ``fft.{name}``, differentiable (a linear primitive)."
    return fn


fft, ifft, rfft, irfft, hfft, ihfft = (_one(n) for n in ("fft", "ifft", "rfft", "irfft",
                                                         "hfft", "ihfft"))


def fftn(x, /, *, s=None, axes=None, norm="backward"):
    axes, s = _axes_sizes(x, s, axes)
    return apply(P["fft.fftn"], x, s=s, axes=axes, norm=norm)


def ifftn(x, /, *, s=None, axes=None, norm="backward"):
    axes, s = _axes_sizes(x, s, axes)
    return apply(P["fft.ifftn"], x, s=s, axes=axes, norm=norm)


def _axes_sizes(x, s, axes):
    if axes is None:
        axes = tuple(range(-len(s), 0)) if s is not None else tuple(range(-x.ndim, 0))
    return tuple(axes), (tuple(s) if s is not None else None)


def rfftn(x, /, *, s=None, axes=None, norm="backward"):
    axes, s = _axes_sizes(x, s, axes)
    out = rfft(x, n=s[-1] if s else None, axis=axes[-1], norm=norm)
    if len(axes) > 1:
        out = fftn(out, s=s[:-1] if s else None, axes=axes[:-1], norm=norm)
    return out


def irfftn(x, /, *, s=None, axes=None, norm="backward"):
    axes, s = _axes_sizes(x, s, axes)
    if len(axes) > 1:
        x = ifftn(x, s=s[:-1] if s else None, axes=axes[:-1], norm=norm)
    return irfft(x, n=s[-1] if s else None, axis=axes[-1], norm=norm)


def fftshift(x, /, *, axes=None):
    axes = tuple(range(x.ndim)) if axes is None else _as_axes(axes)
    return pg.roll(x, tuple(x.shape[a] // 2 for a in axes), axis=axes)


def ifftshift(x, /, *, axes=None):
    axes = tuple(range(x.ndim)) if axes is None else _as_axes(axes)
    return pg.roll(x, tuple(-(x.shape[a] // 2) for a in axes), axis=axes)


def _as_axes(axes):
    return (axes,) if isinstance(axes, int) else tuple(axes)


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    k = pg.astype(pg.arange(n, device=device), dtype or get_default_dtype())
    return pg.where(k < (n + 1) // 2, k, k - n) / (n * d)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    k = pg.astype(pg.arange(n // 2 + 1, device=device), dtype or get_default_dtype())
    return k / (n * d)


FUNCTIONS = [fft, ifft, fftn, ifftn, rfft, irfft, rfftn, irfftn, hfft, ihfft, fftshift,
             ifftshift, fftfreq, rfftfreq]
__all__ = [fn.__name__ for fn in FUNCTIONS]
