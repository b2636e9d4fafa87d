"""The numpy backend: numpy 2's own namespace, which follows the Array API standard.

The compat wrapper is skipped where numpy complies (it costs a Python call per op);
the few functions it lacks or spells differently are overrides below.
"""

import math

import polygrad


def _load():
    import numpy
    return numpy


def _array_types():
    import numpy
    return (numpy.ndarray, numpy.generic)


def _to_numpy(array):
    import numpy
    return numpy.asarray(array)


def _from_numpy(array, *, device=None):
    import numpy
    return numpy.array(array, copy=True)


def _astype(xp, x, dtype, /, *, copy=True, device=None):
    """``astype``, whose copy of an expanded array (a zero stride: memory overlaps) is
    C-contiguous, as torch's clone of an expanded tensor: numpy's ``order="K"`` lays it out
    in the order its strides sort, so that a later ``reshape`` copied where torch's views
    (``x.repeat(2, 1, 1).reshape(-1)`` then an in-place write)."""
    if copy and x.ndim > 1 and 0 in x.strides and x.size > 1:
        return xp.array(x, dtype=dtype, order="C", copy=True)
    return xp.astype(x, dtype, copy=copy)


def _column_major(name):
    """numpy's ``linalg.<name>`` with its matrices laid out as torch's (LAPACK's column-major
    matrices: torch's inv, solve and cholesky return them so), so that a ``reshape`` of the
    result copies where torch's does and an in-place write through it reaches what torch's
    reaches."""
    def op(xp, *args, **kwargs):
        out = getattr(xp.linalg, name)(*args, **kwargs)
        if out.ndim < 2:
            return out
        return xp.swapaxes(xp.ascontiguousarray(xp.swapaxes(out, -1, -2)), -1, -2)
    op.__name__ = name
    return op


def _scatter_add(xp, g, shape, key):
    z = xp.zeros(shape, dtype=g.dtype)
    xp.add.at(z, key, g)
    return z


_AXPY_BLOCK = 1 << 15     # elements per block: 128 KiB of float32, inside a core's L2


def _axpy(xp, y, x, alpha):
    """``y += alpha * x`` in place (optimizer updates) without an ``alpha * x`` temporary.

    numpy has no axpy; for large contiguous arrays of one dtype the update runs block by
    block through one small reused buffer, so a 4096x4096 step allocates (and page-faults)
    128 KiB instead of 64 MiB. Elementwise the arithmetic is that of ``y += alpha * x``.
    """
    if (y.size >= 8 * _AXPY_BLOCK and x.shape == y.shape and x.dtype == y.dtype
            and y.dtype.kind in "fc" and y.flags.c_contiguous and x.flags.c_contiguous
            and (x is y or not xp.may_share_memory(x, y))):
        yf, xf = y.reshape(-1), x.reshape(-1)
        buf = xp.empty(_AXPY_BLOCK, dtype=y.dtype)
        for i in range(0, yf.size, _AXPY_BLOCK):
            j = min(i + _AXPY_BLOCK, yf.size)
            b = buf[:j - i]
            xp.multiply(xf[i:j], alpha, out=b)
            xp.add(yf[i:j], b, out=yf[i:j])
        return y
    y += alpha * x
    return y


_SELECT_MIN = 4096        # below this numpy's own where is as fast


def _erf(xp, x):
    """numpy has no erf: scipy's where installed, else the C library's (math.erf) per
    element, exact to an ulp and faster than polygrad's generic float64 series."""
    try:
        from scipy.special import erf
    except ImportError:
        import math
        erf = _ERF_UFUNC or _erf_ufunc(math.erf)
        out = erf(x)
        return out.astype(x.dtype) if hasattr(out, "astype") else x.dtype.type(out)
    return erf(x)


_ERF_UFUNC = None


def _gelu(xp, x, approximate="none"):
    """torch's gelu through the erf above (polygrad's own series is a few ulps off)."""
    return polygrad.primitives.nn.gelu_forward(xp, x, approximate, erf=_erf)


def _sigmoid(xp, x):
    """torch's formula, 1 / (1 + exp(-x)) (closer to torch's values than polygrad's
    overflow-free form, in fewer calls): 0 where exp(-x) overflows, as torch's (so that
    -inf * sigmoid(-inf) is NaN in silu's and mish's gradients, as torch's), without
    numpy's overflow warning."""
    import numpy
    with numpy.errstate(over="ignore"):
        return 1.0 / (1.0 + numpy.exp(-x))


def _erf_ufunc(fn):
    global _ERF_UFUNC
    import numpy
    _ERF_UFUNC = numpy.frompyfunc(fn, 1, 1)
    return _ERF_UFUNC


def _where(xp, condition, x1, x2, /):
    """``where`` as numpy computes it, without numpy's per-element branch on large masks.

    numpy's where branches on every element, so on a mask that is neither mostly true nor
    mostly false (ReLU's backward: about half) it runs ~15x slower than a multiply. For
    same-shape arrays of one dtype (or ``x2`` a literal +0, the gradient gates' case) the
    selection is done on the bits instead: ``x2 ^ ((x1 ^ x2) & mask)``, exact for every value,
    NaN, infinity and signed zero included. Anything else is numpy's own where.
    """
    c, a, b = condition, x1, x2
    if (type(c) is not xp.ndarray or c.dtype != bool or c.size < _SELECT_MIN
            or type(a) is not xp.ndarray or a.shape != c.shape or a.dtype.kind not in "fiu"):
        return xp.where(c, a, b)
    if type(b) is xp.ndarray:
        if b.shape != c.shape or b.dtype != a.dtype:
            return xp.where(c, a, b)
    elif not ((type(b) is int or type(b) is float and a.dtype.kind == "f")
              and b == 0 and math.copysign(1.0, b) > 0):
        return xp.where(c, a, b)     # (0.0 with integers promotes to float64: numpy's way)
    else:
        b = None                 # a weak scalar +0: the result keeps x1's dtype
    uint = {1: xp.uint8, 2: xp.uint16, 4: xp.uint32, 8: xp.uint64}[a.dtype.itemsize]
    mask = c.astype(uint)
    xp.negative(mask, out=mask)          # all ones where the condition holds
    if b is None:
        xp.bitwise_and(mask, a.view(uint), out=mask)
    else:
        bits = xp.bitwise_xor(a.view(uint), b.view(uint))
        xp.bitwise_and(bits, mask, out=bits)
        xp.bitwise_xor(bits, b.view(uint), out=mask)
    return mask.view(a.dtype)


class _Rng:
    """numpy's PCG64 generator, for ``native=True`` draws (polygrad's default stream is
    Philox on the host); returns host arrays, so backends without a generator borrow it."""

    def __init__(self):
        import numpy
        self._np = numpy
        self.gen = numpy.random.default_rng()

    def seed(self, seed):
        self.gen = self._np.random.default_rng(seed)

    def random(self, shape, *, dtype=None, device=None):
        out = self.gen.random(shape)
        return out.astype(dtype, copy=False) if dtype is not None else out

    def normal(self, shape, *, dtype=None, device=None):
        out = self.gen.standard_normal(shape)
        return out.astype(dtype, copy=False) if dtype is not None else out


def _root(array):
    base = getattr(array, "base", None)
    while base is not None and hasattr(base, "base") and hasattr(base, "shape"):
        array, base = base, base.base
    return array


def _shares_memory(view, base):
    # a view op's result is a view of its input when both lead to one root array
    return _root(view) is _root(base)


_REDUCE_OPTS = {"axis", "dtype", "keepdims"}


def _lower(program):
    """A program recorded by ``polygrad.compile`` with three numpy wrappers called as what
    they wrap, whose checks decide nothing after the trace (shapes are fixed by the guards):
    ``sum`` as ``add.reduce`` (``axis`` passed: the two default it differently),
    ``reshape(x, shape)`` as ``x.reshape(shape)`` and ``matrix_transpose(x)`` (x 2-d or more,
    or the trace would have failed) as ``x.swapaxes(-1, -2)``. A small array's sum or reshape
    costs several times its kernel in the wrapper. None when no op is one of them."""
    import operator

    import numpy

    from polygrad.compiler.program import Op, build
    ops = []
    for op in program.ops:
        fn, args, opts = op.fn, op.args, op.opts
        if fn is numpy.sum and len(args) == 1 and set(opts) <= _REDUCE_OPTS:
            # axis always (the two default it differently); dtype and keepdims when not
            # the default (keywords cost a ufunc method time to parse)
            opts = {"axis": opts.get("axis"), **{k: v for k, v in opts.items() if k != "axis"
                                                   and v is not None and v is not False}}
            op = Op(numpy.add.reduce, args, opts, op.out, op.prim)
        elif fn is numpy.reshape and len(args) == 2 and not opts and type(args[1]) is tuple \
                and all(type(n) is int for n in args[1]):
            op = Op(operator.methodcaller("reshape", args[1]), args[:1], {}, op.out, op.prim)
        elif fn is numpy.matrix_transpose and len(args) == 1 and not opts:
            op = Op(operator.methodcaller("swapaxes", -1, -2), args, {}, op.out, op.prim)
        ops.append(op)
    if all(a is b for a, b in zip(ops, program.ops)):
        return None
    return build(ops, program.inputs, program.outputs, program.consts, program.name).function


def _info():
    import numpy
    return {"numpy": numpy.__version__}


def _quiet():
    import numpy
    return numpy.errstate(all="ignore")


backend = polygrad.Backend(
    name="numpy",
    module="numpy",
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=lambda: ("cpu",),
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64", "complex64", "complex128"),
    rng=_Rng,
    device_of=lambda array: "cpu",
    overrides={"scatter_add": _scatter_add, "axpy_": _axpy, "where": _where, "special.erf": _erf,
               "gelu": _gelu, "sigmoid": _sigmoid, "astype": _astype,
               **{f"linalg.{name}": _column_major(name) for name in ("inv", "solve", "cholesky")}},
    owns=lambda array: getattr(array, "base", 0) is None and array.flags.writeable,
    shares_memory=_shares_memory,
    lower=_lower,
    quiet=_quiet,
    info=_info,
)


@polygrad.hookimpl
def register_backends(register):
    register(backend)
