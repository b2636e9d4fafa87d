"""polygrad-dask: a lazy polygrad backend over dask.array.

Forward and backward build dask graphs; nothing runs until a value is asked for
(``.numpy()``, ``.item()``, ``bool()``, ``polygrad.compute(*tensors)``), and then
it runs on whatever scheduler is active: a ``dask.distributed.Client`` when one
exists, dask's threaded scheduler otherwise. polygrad's rules are written in Array
API vocabulary, so they run on chunked arrays unchanged.

A lost scheduler is an error, never a silent fall back: once a computation ran on a
distributed Client, every later one checks that Client first. If the scheduler went away
(killed, crashed, unreachable), the computation raises ``SchedulerLostError`` at once,
naming the scheduler's address, instead of waiting out distributed's reconnect timeout
and then running on local threads. Closing the Client (or its cluster) on purpose is not
a loss: work then runs locally, as dask does.

This module owns the Backend declaration and its hook. dask is imported inside the
functions below, never when the plugin is imported.
"""

import sys
import weakref

import polygrad

__all__ = ["backend", "register_backends", "materialize", "SchedulerLostError",
           "forget_scheduler"]

#: chunking of tensors made by polygrad's constructors; wrap a dask array to choose your own
CHUNKS = "auto"

_DATA_SHAPED = ("its output shape depends on the data, and dask arrays of unknown shape cannot "
                "enter polygrad's graph; compute the input first (polygrad.compute) and move it "
                "to numpy with .to('numpy')")
_NO_LINALG = "dask.array.linalg has no {}; move the tensor to numpy or torch with .to(...) for it"
UNSUPPORTED = {
    "nonzero": _DATA_SHAPED,
    "unique_all": _DATA_SHAPED,
    "unique_counts": _DATA_SHAPED,
    "unique_inverse": _DATA_SHAPED,
    "linalg.det": _NO_LINALG.format("det"),
    "linalg.slogdet": _NO_LINALG.format("slogdet"),
    "linalg.logabsdet": _NO_LINALG.format("slogdet"),
    "linalg.eigh": _NO_LINALG.format("eigh"),
    "linalg.svd": "dask's svd supports only full_matrices=False (tall-and-skinny); move the "
                  "tensor to numpy or torch with .to(...) for it",
    "linalg.svdvals": "polygrad's svdvals goes through svd with full_matrices=True, which dask's "
                      "svd does not support; move the tensor to numpy or torch with .to(...)",
    "linalg.pinv": _NO_LINALG.format("pinv"),
    "linalg.matrix_rank": "dask's svd has no compute_uv=False, which matrix_rank needs; move "
                          "the tensor to numpy or torch with .to(...) for it",
    "take_along_axis": "dask indexes with one integer array at a time, and take_along_axis "
                       "needs one per axis; move the tensor to numpy or torch with .to(...)",
}


def _load():
    import types

    import array_api_compat.dask.array as compat

    class Namespace(types.ModuleType):
        """array_api_compat's dask namespace, with the functions below put right."""

        def __getattr__(self, name):
            return getattr(compat, name)

    xp = Namespace("polygrad_dask.xp", compat.__doc__)
    xp.eye = _eye
    return xp


def _eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    # dask.array.eye loses blocks when n_cols > n_rows ("Missing dependency"); a comparison
    # of two aranges is the same matrix, lazy and chunked.
    import array_api_compat.dask.array as compat
    n_cols = n_rows if n_cols is None else n_cols
    rows = compat.arange(n_rows)[:, None] + k
    out = rows == compat.arange(n_cols)[None, :]
    return compat.astype(out, dtype if dtype is not None else compat.float64)


def _cholesky(xp, x, upper=False):
    # array_api_compat passes the call on to dask, whose default is the upper factor
    import dask.array
    return dask.array.linalg.cholesky(x, lower=not upper)


def _array_types():
    import dask.array
    return (dask.array.Array,)


class SchedulerLostError(ConnectionError):
    """The distributed scheduler the computations ran on is gone."""


_used = {"client": None}        # weakref to the distributed Client that last ran our work


def _client_lost(client):
    # distributed drops its scheduler comm when the connection breaks ("connecting", then
    # "closed" once it gives up reconnecting); a close asked for keeps it
    return client.status == "connecting" or (client.status in ("closing", "closed")
                                             and client.scheduler_comm is None)


def _lost_error(client):
    address = getattr(client, "_scheduler_identity", {}).get("address") or \
        getattr(getattr(client, "cluster", None), "scheduler_address", None) or \
        _address(client)
    return SchedulerLostError(
        f"polygrad-dask: the dask scheduler at {address} is gone (the Client lost its "
        f"connection; status {client.status!r}), so this computation cannot run; polygrad "
        f"does not move it to local threads behind your back. Start the scheduler again, "
        f"connect a new distributed.Client to it and recompute from the inputs (what was "
        f"persisted on the lost cluster is gone), or call polygrad_dask.forget_scheduler() "
        f"to compute on local threads from now on.")


def _address(client):
    try:
        return client.scheduler.address
    except Exception:  # noqa: BLE001 - the address is only for the message
        return "(unknown address)"


def _check_scheduler():
    """The Client our work runs on (None: local threads); raise if the last one was lost."""
    if "distributed" not in sys.modules:
        return None                  # never used a cluster in this process
    from distributed import default_client
    try:
        current = default_client()
    except ValueError:               # no Client
        current = None
    if current is not None and current.status == "running":
        _used["client"] = weakref.ref(current)
        return current
    last = _used["client"]() if _used["client"] is not None else None
    for client in (current, last):
        if client is not None and _client_lost(client):
            raise _lost_error(client)
    return None


def _guarded(compute):
    """Run ``compute()`` after checking the scheduler; a loss while it runs (its futures
    cancelled) raises SchedulerLostError too."""
    client = _check_scheduler()
    try:
        return compute()
    except Exception as exc:
        if client is not None and _client_lost(client):
            raise _lost_error(client) from exc
        raise


def forget_scheduler():
    """After a ``SchedulerLostError``: compute on local threads from now on (until a new
    distributed Client is made).

    >>> forget_scheduler()
    """
    _used["client"] = None


def _to_numpy(array):
    import numpy
    return numpy.asarray(_guarded(array.compute))


def _from_numpy(array, *, device=None):
    import dask.array
    return dask.array.from_array(array.copy(), chunks=CHUNKS)


def materialize(arrays):
    """Compute lazy arrays together, keeping them as dask arrays (on the workers when a
    distributed Client is active), so that later graphs start from the results.

    >>> import dask.array as da
    >>> materialize([da.ones(3) + 1])[0].sum().compute()
    np.float64(6.0)
    """
    import dask

    def persist():
        persisted = dask.persist(*arrays)
        try:
            from distributed import default_client, wait
            wait(list(persisted), timeout=None) if default_client() is not None else None
        except (ImportError, ValueError):   # no distributed, or no client: persist was synchronous
            pass
        return list(persisted)
    return _guarded(persist)


def _scatter_add(xp, g, shape, key):
    """zeros(shape) with g added at key (repeated indices add up): a weighted bincount over
    the flat positions the key selects, which chunks well whatever the key."""
    import math

    import dask.array

    from polygrad.primitives.indexing import is_basic, scatter_add_generic
    if is_basic(key):
        return scatter_add_generic(xp, g, shape, key)
    n = math.prod(shape)
    positions = xp.reshape(_getitem(xp, xp.reshape(xp.arange(n), shape), key), (-1,))
    weights = xp.reshape(g, (-1,)).rechunk(positions.chunks)
    flat = dask.array.bincount(positions, weights=weights, minlength=n)
    return xp.reshape(xp.astype(flat, g.dtype), shape)


def _getitem(xp, x, key):
    # A boolean mask selects a data-dependent number of elements: dask leaves the size
    # unknown (nan), so the mask is computed here to give the graph a shape.
    from polygrad.primitives.indexing import _getitem_impl
    out = _getitem_impl(xp, x, key)
    if any(s != s for s in out.shape):
        out = _guarded(out.compute_chunk_sizes)
    return out


def _info():
    import dask
    info = {"dask": dask.__version__}
    try:
        from distributed import default_client
        info["scheduler"] = default_client().scheduler.address
    except (ImportError, ValueError):
        info["scheduler"] = "local (no distributed Client)"
    return info


backend = polygrad.Backend(
    name="dask",
    module="dask",
    load=_load,
    array_types=_array_types,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    devices=lambda: ("cpu",),
    dtypes=("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float32", "float64", "complex64", "complex128"),
    rng=None,                       # native=True borrows the host's, moved in with from_numpy
    device_of=lambda array: "cpu",
    unsupported=UNSUPPORTED,
    overrides={"scatter_add": _scatter_add, "getitem": _getitem, "linalg.cholesky": _cholesky},
    lazy=True,
    materialize=materialize,
    # a dask array is a graph, never a view of another's memory: a leaf's .grad may keep it
    # (copying would only add a graph layer to every backward)
    owns=lambda array: True,
    info=_info,
)


@polygrad.hookimpl
def register_backends(register):
    """Register the ``dask`` backend."""
    register(backend)
