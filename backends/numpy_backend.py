"""The numpy backend: numpy 2's own namespace, which follows the Array API standard.

The compat wrapper is skipped where numpy complies (it costs a Python call per op);
the few functions it lacks or spells differently are overrides below.
"""

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


def _scatter_add(xp, g, shape, key):
    z = xp.zeros(shape, dtype=g.dtype)
    xp.add.at(z, key, g)
    return z


class _Rng:
    """numpy's PCG64 generator; returns host arrays, so other backends can borrow it."""

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


def _info():
    import numpy
    return {"numpy": numpy.__version__}


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
    overrides={"scatter_add": _scatter_add},
    owns=lambda array: getattr(array, "base", 0) is None and array.flags.writeable,
    info=_info,
)


@polygrad.hookimpl
def register_backends(register):
    register(backend)
