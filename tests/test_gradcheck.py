"""autograd.gradcheck / gradgradcheck against torch.autograd's on the same functions.

The oracle is torch's own verdict: each case is a function written with methods both
libraries share (``lib`` is ``polygrad`` or ``torch``), some with correct gradients and some
with a deliberately wrong backward or double backward (custom Functions). Both checkers run
on the same inputs with ``raise_exception=False`` and must agree, on the numpy and torch
backends and, for a plain case, on the strict and dask plugins too.
"""

import importlib
import importlib.util

import numpy as np
import pytest
import torch

import polygrad as pg
from polygrad.autograd import GradcheckError, gradcheck, gradgradcheck

RNG = np.random.default_rng(3)
# torch's forward_ad warns about its own internals (torch.jit.script) on this version
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")


def _custom(lib, backward, forward=lambda x: x ** 2, jvp=None):
    """A custom Function of ``lib`` computing ``forward`` with given backward (and jvp) rules."""
    class Custom(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.x = x
            return forward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(g, x)

    if jvp is not None:
        Custom.jvp = staticmethod(lambda ctx, t: jvp(t, ctx.x))
    return Custom.apply


# name, function(lib, *inputs), input shapes; whether first / second derivatives are right is
# torch's verdict, not written here
CASES = [
    ("sin_mul", lambda lib, x, y: x.sin() * y, [(3,), (3,)]),
    ("two_outputs", lambda lib, x, y: (x.exp() * y.sum(), (x @ y.T).tanh()), [(2, 3), (4, 3)]),
    ("broadcast", lambda lib, x, y: (x * y + y).softmax(-1), [(2, 3), (3,)]),
    ("zero_d", lambda lib, x, y: (x * y).log1p(), [(), ()]),
    ("empty", lambda lib, x, y: x.exp() + y.sum(), [(0, 3), (2,)]),
    ("relu_at_ties", lambda lib, x, y: lib.maximum(x, y) + x.abs(), [(4,), (4,)]),
    ("right_custom", lambda lib, x, y: _custom(lib, lambda g, x: 2 * g * x)(x) * y,
     [(3,), (3,)]),
    ("wrong_custom", lambda lib, x, y: _custom(lib, lambda g, x: 3 * g * x)(x) + y,
     [(3,), (3,)]),
    ("wrong_jvp", lambda lib, x, y: _custom(lib, lambda g, x: 2 * g * x,
                                            jvp=lambda t, x: 3 * t * x)(x) * y, [(3,), (3,)]),
    # right within tolerance, but a zero output gradient gives a nonzero input gradient
    ("zero_grad_leaks", lambda lib, x, y: _custom(lib, lambda g, x: 2 * g * x + (g == 0) * 1e-7)(x)
     + y, [(3,), (3,)]),
    # first derivative right, second wrong: the backward cuts its graph at x
    ("wrong_double", lambda lib, x, y: _custom(lib, lambda g, x: 2 * g * x.detach())(x) * y,
     [(3,), (3,)]),
]


def _inputs(lib, data):
    # zeros + values: torch.tensor of an empty array has strides 0, which torch's gradcheck
    # refuses (a layout matter polygrad does not have)
    return tuple((lib.zeros(d.shape, dtype=lib.float64) + lib.tensor(d, dtype=lib.float64))
                 .detach().requires_grad_() for d in data)


def _data(shapes, name):
    data = [RNG.uniform(0.2, 1.5, s) for s in shapes]
    if name == "relu_at_ties":                 # ties of maximum, and a kink of abs is avoided
        data[1][:2] = data[0][:2]
    return data


@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck", "fast", "forward",
                                   "fast_forward"])
def test_verdict_matches_torch(backend, name, fn, shapes, check):
    data = _data(shapes, name)
    verdicts = [_verdict(lib, mod, fn, data, check)
                for lib, mod in ((pg, pg.autograd), (torch, torch.autograd))]
    assert verdicts[0] == verdicts[1], f"polygrad says {verdicts[0]}, torch {verdicts[1]}"


def _verdict(lib, mod, fn, data, check):
    inputs = _inputs(lib, data)
    kw = {"raise_exception": False}
    if check.startswith("fast"):
        kw["fast_mode"] = True
    if check.endswith("forward"):
        kw.update(check_forward_ad=True, check_backward_ad=False)

    def f(*args):
        return fn(lib, *args)
    try:
        if check == "gradgradcheck":
            go = _inputs(lib, _first_outputs(fn, lib, inputs))
            return mod.gradgradcheck(f, inputs, go, **kw)
        return mod.gradcheck(f, inputs, **kw)
    except (RuntimeError, NotImplementedError) as exc:    # e.g. a custom Function has no jvp
        return f"raises {type(exc).__name__}"


_GO = {}


def _first_outputs(fn, lib, inputs):
    """Fixed random cotangents shaped like the outputs, the same for both libraries."""
    outs = fn(lib, *[x.detach() for x in inputs])
    outs = outs if isinstance(outs, tuple) else (outs,)
    key = tuple(tuple(o.shape) for o in outs)
    if key not in _GO:
        _GO[key] = [RNG.standard_normal(tuple(o.shape)) for o in outs]
    return _GO[key]


@pytest.fixture(scope="module")
def plugin_backends():
    """The example plugins (strict, dask) registered in-process where installed, beside the
    built-in backends (conftest keeps entry points out)."""
    added = []
    for module_name, name in (("polygrad_strict", "strict"), ("polygrad_dask", "dask")):
        if importlib.util.find_spec(module_name) is not None:
            pg.plugins.register_plugin(importlib.import_module(module_name), name=name)
            added.append(name)
    try:
        yield added
    finally:
        for name in added:
            pg.plugins.unregister_plugin(name)


def test_wrong_gradient_fails_on_every_backend(plugin_backends):
    """The known-right and known-wrong cases on every backend here, plugins included."""
    cases = {c[0]: c[1] for c in CASES}

    def right(a, b):
        return cases["sin_mul"](pg, a, b)

    def wrong(a, b):
        return cases["wrong_custom"](pg, a, b)

    names = pg.backends()
    assert set(plugin_backends) <= set(names)
    for name in names:
        x = pg.tensor([0.4, 1.1], dtype=pg.float64, backend=name).requires_grad_()
        y = pg.tensor([0.7, 0.2], dtype=pg.float64, backend=name).requires_grad_()
        assert gradcheck(right, (x, y)), name
        assert gradgradcheck(right, (x, y)), name
        assert gradcheck(right, (x, y), fast_mode=True, check_forward_ad=True), name
        assert not gradcheck(wrong, (x, y), raise_exception=False), name


def test_failure_message_names_output_and_input(backend):
    x = pg.tensor([0.5, 1.5], dtype=pg.float64, requires_grad=True)
    before = x.detach().clone()
    with pytest.raises(GradcheckError, match="output 0 with respect to input 0"):
        gradcheck(_custom(pg, lambda g, x: 3 * g * x), (x,))
    assert isinstance(GradcheckError("x"), RuntimeError)
    assert x.grad is None and pg.equal(x.detach(), before)      # nothing changed


BAD = [
    (lambda: gradcheck(lambda x: x * 2, (pg.ones(2, dtype=pg.float64),)), ValueError,
     "at least one input tensor to require gradient"),
    (lambda: gradcheck(lambda x: x * 2, pg.ones(2, dtype=pg.complex128, requires_grad=True)),
     NotImplementedError, "complex"),
]


@pytest.mark.parametrize("call,exc,words", BAD, ids=[b[2][:24] for b in BAD])
def test_errors(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_float32_warns_as_torch():
    x32 = pg.tensor([0.5, 1.5], requires_grad=True)
    with pytest.warns(UserWarning, match="not a double precision"):
        gradcheck(lambda x: x * 2, (x32,), eps=1e-3, atol=1e-2, rtol=1e-2)


def test_nondeterministic_backward_is_caught():
    calls = []

    def backward(g, x):
        calls.append(1)
        return 2 * g * x * (1 + 1e-3 * len(calls))

    x = pg.tensor([0.5, 1.5], dtype=pg.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="not reentrant"):
        gradcheck(_custom(pg, backward), (x,), atol=1, rtol=1)
