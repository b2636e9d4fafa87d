"""The rest of the Array API 2024.12 standard that needs its own primitive: cumulative_prod,
take_along_axis, tril and triu.

Most other standard functions (sort, roll, tile, repeat, moveaxis, diff, meshgrid ...) are
compositions in ``polygrad.ops`` and get their gradients from the primitives they use.
Non-differentiable ones (argsort, unique_*, searchsorted ...) are listed in ``reductions``.
"""

from . import def_linear as linear, def_primitive as primitive


def _raw_xp(array):
    """The backend namespace of a raw index array (rules build index keys with it)."""
    from ..plugins import owner_of
    return owner_of(array).xp


def along_key(xp, indices, axis):
    """The integer-array key that picks ``indices`` along ``axis`` (take_along_axis's)."""
    ndim = indices.ndim
    axis = axis % ndim
    key = []
    for i, n in enumerate(indices.shape):
        if i == axis:
            key.append(indices)
        else:
            shape = [1] * ndim
            shape[i] = n
            key.append(xp.reshape(xp.arange(n, device=getattr(indices, "device", None)),
                                  tuple(shape)))
    return tuple(key)


def _take_along_vjp(ns, g, out, x, indices, axis=-1):
    key = along_key(_raw_xp(indices), indices, axis)
    return (ns.scatter_add(g, shape=x.shape, key=key), None)


def _take_along_jvp(ns, tangents, out, x, indices, axis=-1):
    return ns.take_along_axis(tangents[0], indices, axis=axis)


def _cumprod_impl(xp, x, axis=None, dtype=None, include_initial=False):
    out = xp.cumulative_prod(x, axis=axis, dtype=dtype)
    if include_initial:
        ax = 0 if axis is None else axis
        shape = list(out.shape)
        shape[ax] = 1
        out = xp.concat([xp.ones(shape, dtype=out.dtype, device=getattr(x, "device", None)), out],
                        axis=ax)
    return out


def _cumprod_vjp(ns, g, out, x, axis=None, dtype=None, include_initial=False):
    # d out_j / d x_i = out_j / x_i for j >= i: a reversed cumulative sum of g * out, over x.
    # Exact away from zeros in x (a zero makes the quotient 0/0; torch has a slower exact path).
    ax = 0 if axis is None else axis % x.ndim
    if include_initial:
        g, out = _drop_first(g, ax), _drop_first(out, ax)
    rev = ns.flip(ns.cumulative_sum(ns.flip(g * out, axis=ax), axis=ax), axis=ax)
    return (rev / x,)


def _drop_first(a, axis):
    key = [slice(None)] * a.ndim
    key[axis] = slice(1, None)
    return a[tuple(key)]


def _cumprod_jvp(ns, tangents, out, x, axis=None, dtype=None, include_initial=False):
    ax = 0 if axis is None else axis % x.ndim
    o = _drop_first(out, ax) if include_initial else out
    t = o * ns.cumulative_sum(tangents[0] / x, axis=ax)
    if include_initial:
        t = ns.concat([ns.zeros_like(_first(out, ax)), t], axis=ax)
    return t


def _first(a, axis):
    key = [slice(None)] * a.ndim
    key[axis] = slice(0, 1)
    return a[tuple(key)]


primitive("take_along_axis", _take_along_vjp, _take_along_jvp, nondiff_args=(1,),
          node_name="TakeAlongDimBackward0")
primitive("cumulative_prod", _cumprod_vjp, _cumprod_jvp, impl=_cumprod_impl,
          node_name="CumprodBackward0")
linear("tril", lambda ns, g, out, x, k=0: (ns.tril(g, k=k),))
linear("triu", lambda ns, g, out, x, k=0: (ns.triu(g, k=k),))
# imag(z) for complex z: the gradient of a real loss is 1j * g in torch's convention
linear("imag", lambda ns, g, out, x: (g * 1j,))


# -- special.erf: not in the standard, but scipy.special looks up ``xp.special.erf`` -----------

_ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
                -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _erf_impl(xp, x):
    # Numerical Recipes' erfcc (relative error < 1.2e-7) in Array API vocabulary; a backend
    # with a native erf overrides "special.erf" by name (Backend.overrides).
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC_COEFFS[-1]
    for c in reversed(_ERFC_COEFFS[:-1]):
        poly = c + t * poly
    erfc = t * xp.exp(-z * z + poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _erf_partial(ns, out, x):
    return 1.1283791670955126 * ns.exp(-(x * x))    # 2 / sqrt(pi) * exp(-x^2)


from . import def_elementwise as _ew  # noqa: E402

_ew("special.erf", _erf_partial, impl=_erf_impl, node_name="ErfBackward0")
