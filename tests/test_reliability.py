"""Reliability under threads, hostile plugins, bad input and failing files (issue 17).

Real threads, real subprocesses and throwaway plugin distributions on PYTHONPATH (built
as tests/test_plugin_host.py builds them); no mocks.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import polygrad as pg
from polygrad.graph.engine import EXTENSION_POINTS, get_extension

# -- 1. threads -------------------------------------------------------------------------------

THREADS, CALLS = 4, 500


def _hammer(fn):
    """Run ``fn`` in THREADS threads started together; re-raise the first error."""
    barrier = threading.Barrier(THREADS)
    errors = []

    def body():
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=body) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("backend,size", [("numpy", 1000), ("numpy", 4), ("torch", 1000),
                                          ("torch", 4)])
def test_concurrent_backward_accumulates_exactly(backend, size):
    if backend == "torch":
        pytest.importorskip("torch")
    w = pg.zeros(size, dtype=pg.float64, backend=backend, requires_grad=True)

    def work():
        for _ in range(CALLS):
            (w * 1.0 + 1.0).sum().backward()
    _hammer(work)
    got = np.asarray(w.grad.tolist())
    assert np.all(got == THREADS * CALLS), (got.min(), got.max())


def _nothing_installed():
    return {name: get_extension(name) for name in EXTENSION_POINTS if get_extension(name)}


def test_profiles_and_anomaly_in_two_threads_left_in_any_order():
    x = pg.ones(3, requires_grad=True)
    step = [threading.Event() for _ in range(4)]
    leftovers, errors = {}, []

    def worker(me, enter_at, exit_at):
        try:
            warnings.simplefilter("ignore")
            step[enter_at].wait()
            with pg.autograd.detect_anomaly(), pg.autograd.profiler.profile() as prof:
                (x * 2).sum().backward()
                step[enter_at + 1].set()
                step[exit_at].wait(timeout=10)
            assert {e.key for e in prof.key_averages()} >= {"multiply", "sum"}
            leftovers[me] = _nothing_installed()
            (x * 2).sum()          # no profile open: nothing more recorded
            assert len(prof.key_averages()) == len({e.key for e in prof.key_averages()})
            if exit_at == 2:
                step[3].set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    # thread a enters first, b second; a leaves last (b's exit sets step 3)
    a = threading.Thread(target=worker, args=("a", 0, 3))
    b = threading.Thread(target=worker, args=("b", 1, 2))
    a.start()
    b.start()
    step[0].set()
    a.join(20)
    b.join(20)
    assert not errors, errors
    assert leftovers == {"a": {}, "b": {}}
    assert _nothing_installed() == {}


def test_nested_profiles_left_out_of_order_leave_nothing_installed():
    x = pg.ones(3, requires_grad=True)
    outer, inner = pg.autograd.profiler.profile(), pg.autograd.profiler.profile()
    outer.__enter__()
    inner.__enter__()
    (x * 2).sum().backward()
    outer.__exit__(None, None, None)        # the outer one first: out of order
    (x / 2).sum()                           # seen by inner only
    inner.__exit__(None, None, None)
    assert _nothing_installed() == {}
    assert "divide" in {e.key for e in inner.key_averages()}
    assert "divide" not in {e.key for e in outer.key_averages()}
    (x - 1).sum()                           # neither records after its exit
    assert "subtract" not in {e.key for e in inner.key_averages()}


def test_three_profiles_middle_left_first():
    x = pg.ones(2)
    p = [pg.autograd.profiler.profile() for _ in range(3)]
    for q in p:
        q.__enter__()
    p[1].__exit__(None, None, None)
    (x + 1)
    p[2].__exit__(None, None, None)
    (x * 3)                                 # p[0] is open again on top: it records this
    p[0].__exit__(None, None, None)
    assert "multiply" in {e.key for e in p[0].key_averages()}
    assert "multiply" not in {e.key for e in p[1].key_averages()}
    assert _nothing_installed() == {}


def test_anomaly_contexts_left_out_of_order_in_one_thread():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = pg.autograd.detect_anomaly(), pg.autograd.detect_anomaly()
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)
        assert pg.autograd.anomaly_mode.is_anomaly_enabled()     # b is still open
        b.__exit__(None, None, None)
    assert not pg.autograd.anomaly_mode.is_anomaly_enabled()
    assert _nothing_installed() == {}


def test_one_detect_anomaly_decorator_used_by_two_threads():
    deco = pg.autograd.detect_anomaly()
    gate = threading.Barrier(2)

    @deco
    def f():
        gate.wait(timeout=10)
        assert pg.autograd.anomaly_mode.is_anomaly_enabled()
        gate.wait(timeout=10)
        return _nothing_installed()
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = [threading.Thread(target=lambda: (f(), out.append(_nothing_installed())))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
    assert out == [{}, {}]
