"""The Array API ``fft`` extension's primitives: fft, ifft, fftn, ifftn, rfft, irfft, hfft
and ihfft. Each is linear, so each row gives only its transpose (the adjoint, in torch's
convention for complex gradients: ``grad = dL/dRe + 1j dL/dIm``).

The adjoint of a transform with normalisation ``norm`` is the inverse transform with the
dual normalisation (``backward`` <-> ``forward``, ``ortho`` stays), cut or zero-padded
back to the input's length. rfftn, irfftn, fftshift and friends are compositions in
``polygrad.ops.fft``.
"""

from .table import def_linear as linear

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _resize(ns, a, axis, size):
    """``a`` cut or zero-padded to ``size`` along ``axis``."""
    n = a.shape[axis]
    if n == size:
        return a
    key = [slice(None)] * a.ndim
    if n > size:
        key[axis] = slice(0, size)
        return a[tuple(key)]
    # zero-padding is scatter_add into zeros: the same call on raw arrays and on Tensors
    shape = list(a.shape)
    shape[axis] = size
    key = [slice(None)] * a.ndim
    key[axis] = slice(0, n)
    return ns.scatter_add(a, shape=tuple(shape), key=tuple(key))


def _is_real(ns, x):
    return not ns.isdtype(x.dtype, "complex floating")


def _as_input(ns, g, x):
    """A real input gets the real part of its (complex) gradient, as torch does."""
    return ns.real(g) if _is_real(ns, x) else g


def _c2c_transpose(inverse):
    def transpose(ns, g, out, x, n=None, axis=-1, norm="backward"):
        adj = ns.fft.fft if inverse else ns.fft.ifft
        gx = adj(g, axis=axis, norm=_DUAL[norm])
        return (_as_input(ns, _resize(ns, gx, axis, x.shape[axis]), x),)
    return transpose


def _c2c_n_transpose(inverse):
    def transpose(ns, g, out, x, s=None, axes=None, norm="backward"):
        adj = ns.fft.fftn if inverse else ns.fft.ifftn
        axes = tuple(range(-len(s), 0)) if axes is None and s is not None else axes
        gx = adj(g, axes=axes, norm=_DUAL[norm])
        for ax in (axes if axes is not None else range(x.ndim)):
            gx = _resize(ns, gx, ax, x.shape[ax])
        return (_as_input(ns, gx, x),)
    return transpose


def _rfft_transpose(ns, g, out, x, n=None, axis=-1, norm="backward"):
    size = n if n is not None else x.shape[axis]
    full = _resize(ns, g, axis, size)            # the adjoint of keeping n // 2 + 1 bins
    gx = ns.real(ns.fft.ifft(full, axis=axis, norm=_DUAL[norm]))
    return (_resize(ns, gx, axis, x.shape[axis]),)


def _double_inner_bins(ns, spec, n, axis):
    """``spec`` with every bin doubled but the DC bin (and an even n's Nyquist bin).

    A ``where`` on a boolean mask, not a product with real weights, so that no complex
    dtype has to be named (a backend may declare none)."""
    h = spec.shape[axis]
    shape = [1] * spec.ndim
    shape[axis] = h
    idx = ns.reshape(ns.arange(h, device=getattr(spec, "device", None)), tuple(shape))
    edge = idx == 0
    if n % 2 == 0:
        edge = edge | (idx == h - 1)
    return ns.where(edge, spec, 2.0 * spec)


def _irfft_transpose(ns, g, out, x, n=None, axis=-1, norm="backward"):
    size = n if n is not None else 2 * (x.shape[axis] - 1)
    spec = ns.fft.rfft(g, axis=axis, norm=_DUAL[norm])
    spec = _double_inner_bins(ns, spec, size, axis % g.ndim)
    return (_as_input(ns, _resize(ns, spec, axis, x.shape[axis]), x),)


def _hfft_transpose(ns, g, out, x, n=None, axis=-1, norm="backward"):
    # hfft(x) = irfft(conj(x)) with the dual normalisation
    (gx,) = _irfft_transpose(ns, g, out, x, n=n, axis=axis, norm=_DUAL[norm])
    return (gx if _is_real(ns, gx) else ns.conj(gx),)


def _ihfft_transpose(ns, g, out, x, n=None, axis=-1, norm="backward"):
    # ihfft(x) = conj(rfft(x)) with the dual normalisation
    return _rfft_transpose(ns, ns.conj(g), out, x, n=n, axis=axis, norm=_DUAL[norm])


def _complex_input(name):
    """The forward of a transform whose input the standard wants complex: torch transforms a
    real input as complex (array-api-strict refuses it), so it is cast first."""
    def impl(xp, x, **opts):
        if not xp.isdtype(x.dtype, "complex floating"):
            x = xp.astype(x, xp.complex128 if x.dtype == xp.float64 else xp.complex64)
        return getattr(xp.fft, name)(x, **opts)
    return impl


linear("fft.fft", _c2c_transpose(inverse=False), node_name="FftC2CBackward0",
       impl=_complex_input("fft"))
linear("fft.ifft", _c2c_transpose(inverse=True), node_name="FftC2CBackward0",
       impl=_complex_input("ifft"))
linear("fft.fftn", _c2c_n_transpose(inverse=False), node_name="FftC2CBackward0",
       impl=_complex_input("fftn"))
linear("fft.ifftn", _c2c_n_transpose(inverse=True), node_name="FftC2CBackward0",
       impl=_complex_input("ifftn"))
linear("fft.rfft", _rfft_transpose, node_name="FftR2CBackward0")
linear("fft.irfft", _irfft_transpose, node_name="FftC2RBackward0", impl=_complex_input("irfft"))
linear("fft.hfft", _hfft_transpose, node_name="FftC2RBackward0", impl=_complex_input("hfft"))
linear("fft.ihfft", _ihfft_transpose, node_name="FftR2CBackward0")
