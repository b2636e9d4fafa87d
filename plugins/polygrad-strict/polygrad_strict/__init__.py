"""polygrad-strict: a polygrad backend over array-api-strict.

array-api-strict implements the Array API standard and nothing else: no
``__array__`` contract to lean on, no random numbers, no mixing of bool and float
in arithmetic, strict Python-scalar promotion. Running polygrad on it checks that
the engine and the rules speak only the standard's vocabulary.

This module owns the Backend declaration and its hook. ``array_api_strict`` is
imported inside the functions below, never when the plugin is imported, so that
listing plugins stays cheap.
"""

import polygrad

__all__ = ["backend", "register_backends"]

#: array-api-strict's fake devices, for testing cross-device errors without a GPU
FAKE_DEVICES = ("device1", "device2")
_CPU = "CPU_DEVICE"


def _load():
    import array_api_strict
    return array_api_strict


def _array_types():
    import array_api_strict
    return (type(array_api_strict.asarray(0.0)),)


def _to_numpy(array):
    # array-api-strict has no dependable __array__: DLPack is the standard's way out
    import numpy
    return numpy.from_dlpack(array, copy=True)


def _native_device(name):
    import array_api_strict
    return array_api_strict.Device(_CPU if name == "cpu" else name)


def _device_of(array):
    import array_api_strict
    for name in ("cpu",) + FAKE_DEVICES:
        if array.device == array_api_strict.Device(_CPU if name == "cpu" else name):
            return name
    return str(array.device)


def _from_numpy(array, *, device=None):
    import array_api_strict
    dev = device
    if device is not None and not isinstance(device, array_api_strict.Device):
        dev = _native_device(str(polygrad.device(device)))   # a name such as "device1"
    return array_api_strict.asarray(array, copy=True, device=dev)


def _info():
    import array_api_strict
    return {"array-api-strict": array_api_strict.__version__,
            "api_version": array_api_strict.__array_api_version__}


def _shares_memory(view, base):
    # array-api-strict wraps numpy arrays: views share the wrapped array's root
    def root(a):
        a = a._array
        while isinstance(getattr(a, "base", None), type(a)):
            a = a.base
        return a
    return root(view) is root(base)


def _quiet():
    # array-api-strict computes with numpy, whose floating-point warnings backward silences
    import numpy
    return numpy.errstate(all="ignore")


backend = polygrad.Backend(
    name="strict",
    module="array_api_strict",
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=lambda: ("cpu",) + FAKE_DEVICES,
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float32", "float64", "complex64", "complex128"),
    # rng=None: array-api-strict has no random numbers. polygrad's stream is computed on the
    # host and moved in with from_numpy anyway; native=True borrows the host's generator.
    rng=None,
    device_of=_device_of,
    native_device=_native_device,
    unsupported={},
    shares_memory=_shares_memory,
    quiet=_quiet,
    info=_info,
)


@polygrad.hookimpl
def register_backends(register):
    """Register the ``strict`` backend."""
    register(backend)
