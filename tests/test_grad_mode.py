"""Grad modes (YT-8, YT-9): context managers, decorators, nesting, thread-locality."""

import threading

import pytest

import polygrad as pg


def _ab():
    a = pg.ones(2, 3, requires_grad=True) * 2
    b = pg.ones(2, 3, requires_grad=True) * 3
    return a, b


def test_yt8_no_grad_block(backend):
    a, b = _ab()
    c1 = a + b
    with pg.no_grad():
        c2 = a + b
    c3 = a * b
    assert c1.requires_grad and not c2.requires_grad and c3.requires_grad
    assert c2.tolist() == [[5.0] * 3] * 2


def test_yt9_decorators_and_enable_grad(backend):
    a, b = _ab()

    @pg.no_grad()
    def add_no_grad(x, y):
        return x + y

    @pg.enable_grad()
    def add_with_grad(x, y):
        return x + y

    assert not add_no_grad(a, b).requires_grad
    with pg.no_grad():
        assert add_with_grad(a, b).requires_grad
        with pg.enable_grad():
            assert (a * b).requires_grad
        assert not (a * b).requires_grad
    assert pg.is_grad_enabled()


def test_set_grad_enabled_as_call_context_and_decorator(backend):
    a, b = _ab()
    with pg.set_grad_enabled(False):
        assert not (a + b).requires_grad
    assert pg.is_grad_enabled()
    pg.set_grad_enabled(False)
    try:
        assert not pg.is_grad_enabled()
    finally:
        pg.set_grad_enabled(True)

    @pg.set_grad_enabled(False)
    def f():
        return pg.is_grad_enabled()

    assert pg.is_grad_enabled() and f() is False and pg.is_grad_enabled()


def test_inference_mode(backend):
    a, b = _ab()
    with pg.inference_mode():
        assert not (a + b).requires_grad and pg.is_inference_mode_enabled()
    assert not pg.is_inference_mode_enabled() and pg.is_grad_enabled()


def test_mode_is_restored_after_an_exception(backend):
    with pytest.raises(ValueError):
        with pg.no_grad():
            raise ValueError("boom")
    assert pg.is_grad_enabled()


def test_grad_mode_is_thread_local(backend):
    results = {}
    started = threading.Barrier(2)

    def worker():
        started.wait()
        x = pg.ones(2, requires_grad=True)
        results["worker"] = (pg.is_grad_enabled(), (x * 2).requires_grad)

    with pg.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        t.join()
        results["main"] = pg.is_grad_enabled()
    assert results == {"worker": (True, True), "main": False}


def test_threads_run_backward_concurrently(backend):
    errors = []

    def worker(seed):
        try:
            for _ in range(20):
                x = pg.tensor([float(seed), 2.0], requires_grad=True)
                (x * x).sum().backward()
                assert x.grad.tolist() == [2.0 * seed, 4.0]
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
