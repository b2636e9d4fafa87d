"""Anomaly mode: a NaN made in backward raises, naming the node (as torch names it) and the
file and line of the forward call; off, nothing is recorded or checked."""

import inspect
import warnings

import numpy as np
import pytest
import torch

import polygrad as pg
from polygrad.autograd import Function, detect_anomaly, set_detect_anomaly
from polygrad.autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled
from polygrad.graph import engine

THIS_FILE = __file__
# 0/0 on purpose: numpy's warnings about it are expected
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _zero_over_zero(lib):
    x = lib.zeros(2, requires_grad=True)
    z = lib.zeros(2, requires_grad=True)
    line = inspect.currentframe().f_lineno + 1
    loss = (x / z).sum()            # d/dz of x/z at 0/0 is nan: DivBackward0's 1th output
    return loss, x, z, line


def _torch_message(build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            loss = build()
            with pytest.raises(RuntimeError) as err:
                loss.backward()
    return str(err.value)


def test_nan_in_backward_names_op_and_forward_line(backend):
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        with detect_anomaly():
            loss, x, z, line = _zero_over_zero(pg)
            with pytest.raises(RuntimeError) as err:
                loss.backward()
    msg = str(err.value)
    ref = _torch_message(lambda: _zero_over_zero(torch)[0])
    assert msg.splitlines()[0] == ref == "Function 'DivBackward0' returned nan values in its " \
                                         "1th output."
    assert f'File "{THIS_FILE}", line {line}' in msg and "(x / z).sum()" in msg
    assert x.grad is None and z.grad is None     # a failed backward leaves .grad alone
    assert engine.get_extension("anomaly") is None


def test_decorator_and_create_graph(backend):
    def second_derivative(lib):
        x = lib.tensor([0.0], requires_grad=True)
        (g,) = lib.autograd.grad((x * x).sqrt().sum(), x, create_graph=True)   # 0 * inf
        g.sum().backward()

    messages = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError) as err:
            detect_anomaly()(second_derivative)(pg)        # polygrad's is also a decorator
        messages.append(str(err.value).splitlines()[0])
        with pytest.raises(RuntimeError) as err, torch.autograd.detect_anomaly():
            second_derivative(torch)
        messages.append(str(err.value))
    assert messages[0] == messages[1] == \
        "Function 'MulBackward0' returned nan values in its 0th output."
    assert not is_anomaly_enabled()


def test_custom_function_node_is_checked(backend):
    class NanBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    x = pg.ones(2, requires_grad=True)
    with set_detect_anomaly(True):
        y = NanBackward.apply(x)
        assert "traceback_" in y.grad_fn.metadata
        with pytest.raises(RuntimeError, match="Function 'NanBackwardBackward' returned nan"):
            y.sum().backward()


def test_off_records_nothing_and_lets_nan_through(backend):
    loss, x, z, _ = _zero_over_zero(pg)
    assert loss.grad_fn.metadata is None
    loss.backward()
    assert np.isnan(z.grad.numpy()).all()


def test_check_nan_false_records_but_does_not_check(backend):
    with set_detect_anomaly(True, check_nan=False):
        assert is_anomaly_enabled() and not is_anomaly_check_nan_enabled()
        loss, x, z, line = _zero_over_zero(pg)
        assert any(f"line {line}" in frame for frame in loss.grad_fn.metadata["traceback_"])
        loss.backward()
    assert np.isnan(z.grad.numpy()).all()


def test_set_detect_anomaly_is_immediate_and_restores():
    assert not is_anomaly_enabled()
    switch = set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
    finally:
        switch.__exit__(None, None, None)
    assert not is_anomaly_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with detect_anomaly():
            with set_detect_anomaly(False):
                assert not is_anomaly_enabled()
            assert is_anomaly_enabled()
    assert not is_anomaly_enabled()


def _divide(x, z):
    return (x / z).sum()


DIVIDE_LINE = inspect.getsourcelines(_divide)[1] + 1


def test_compiled_call_in_anomaly_mode_names_the_op_inside(backend):
    """A compiled function called in anomaly mode runs its ops eagerly (docs/compile.md), so
    a NaN made in its backward names the op and its line inside the function, also once the
    function's replay is warm; outside anomaly mode the replay lets the NaN through."""
    f = pg.compile(_divide)
    x, z = pg.zeros(2, requires_grad=True), pg.zeros(2, requires_grad=True)
    for _ in range(3):                              # traced, then the hit path
        f(x, z).backward()
    assert f.stats.hits == 2 and np.isnan(z.grad.numpy()).all()
    x.grad = z.grad = None
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        with detect_anomaly():
            loss = f(x, z)
            with pytest.raises(RuntimeError) as err:
                loss.backward()
    msg = str(err.value)
    assert msg.splitlines()[0] == "Function 'DivBackward0' returned nan values in its 1th output."
    assert f'File "{THIS_FILE}", line {DIVIDE_LINE}' in msg and "(x / z).sum()" in msg
    assert x.grad is None and z.grad is None
    assert f.stats.fallbacks == 1
    f(x, z).backward()                              # anomaly mode off again: the replay
    assert f.stats.hits == 3 and np.isnan(z.grad.numpy()).all()
