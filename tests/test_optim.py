"""polygrad.optim against torch.optim: SGD and Adam option tables run five steps on the
same parameters and gradients; state_dict round trips; in-place updates; clear errors.
"""

import itertools

import numpy as np
import pytest

import polygrad
import polygrad.nn as nn
import polygrad.optim as optim

torch = pytest.importorskip("torch")

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, maximize=True),
    dict(lr=0.05, weight_decay=0.1),
] + [
    dict(lr=0.05, momentum=0.9, dampening=d, weight_decay=wd, nesterov=n, maximize=m)
    for d, wd, n, m in itertools.product((0.0, 0.3), (0.0, 0.01), (False, True), (False, True))
    if not (n and d)          # torch: Nesterov needs zero dampening
]
ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.05),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
CASES = [("SGD", kw) for kw in SGD_CASES] + [("Adam", kw) for kw in ADAM_CASES]

RNG = np.random.default_rng(1)
SHAPES = [(4, 3), (3,)]


def _quadratic_step(params, targets, lib):
    """A loss whose gradients change from step to step: sum((p - target)**3 / 3 + p**2)."""
    loss = 0
    for p, t in zip(params, targets):
        d = p - t
        loss = loss + (d * d * d / 3 + p * p).sum()
    return loss


def _run(lib, name, kw, values, targets, backend=None, steps=5):
    if lib is torch:
        params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
        targets = [torch.from_numpy(t) for t in targets]
    else:
        params = [nn.Parameter(polygrad.from_numpy(v.copy(), backend=backend)) for v in values]
        targets = [polygrad.from_numpy(t, backend=backend) for t in targets]
    opt = getattr(lib.optim, name)(params, **kw)
    for _ in range(steps):
        opt.zero_grad()
        _quadratic_step(params, targets, lib).backward()
        opt.step()
    return params, opt


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_five_steps_match_torch(backend, name, kw):
    values = [RNG.standard_normal(s) for s in SHAPES]
    targets = [RNG.standard_normal(s) for s in SHAPES]
    ours, _ = _run(polygrad, name, kw, values, targets, backend)
    theirs, _ = _run(torch, name, kw, values, targets)
    for p, t in zip(ours, theirs):
        assert p.backend == backend
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("name,kw", [CASES[5], ("Adam", ADAM_CASES[4])], ids=["SGD", "Adam"])
def test_state_dict_round_trip_continues_like_torch(backend, name, kw):
    values = [RNG.standard_normal(s) for s in SHAPES]
    targets = [RNG.standard_normal(s) for s in SHAPES]
    ours, opt = _run(polygrad, name, kw, values, targets, backend, steps=3)
    theirs, topt = _run(torch, name, kw, values, targets, steps=3)
    saved = opt.state_dict()
    tsaved = topt.state_dict()
    assert saved["param_groups"][0].keys() == tsaved["param_groups"][0].keys()
    assert saved["param_groups"] == tsaved["param_groups"]
    assert saved["state"].keys() == tsaved["state"].keys()
    for i, state in saved["state"].items():
        assert state.keys() == tsaved["state"][i].keys()
    # a fresh optimizer on copies of the parameters, loaded, continues identically
    fresh = [nn.Parameter(p.detach().clone()) for p in ours]
    opt2 = getattr(optim, name)(fresh, lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    tg = [polygrad.from_numpy(t, backend=backend) for t in targets]
    for params, o in ((ours, opt), (fresh, opt2)):
        o.zero_grad()
        _quadratic_step(params, tg, polygrad).backward()
        o.step()
    for a, b in zip(ours, fresh):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # the loaded state is a copy: stepping one optimizer leaves the other's state alone
    key = "momentum_buffer" if name == "SGD" else "exp_avg"
    assert opt2.state[fresh[0]][key] is not opt.state[ours[0]][key]


def test_load_state_dict_checks_group_structure():
    a, b = nn.Parameter(polygrad.ones(2)), nn.Parameter(polygrad.ones(3))
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    opt = optim.SGD([a], lr=0.5)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(saved)
    opt2 = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.5)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt2.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == 0.5 and opt2.param_groups[1]["lr"] == 0.5


def test_step_updates_parameters_in_place(backend):
    p = nn.Parameter(polygrad.randn(5, 4))
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p], lr=0.1, amsgrad=True)):
        before_array = p.array
        before = p.detach().numpy().copy()
        version = p._version
        (p * p).sum().backward()
        opt.step()
        opt.step()
        assert p.array is before_array          # the same buffer, written in place
        assert p._version > version
        assert not np.array_equal(p.detach().numpy(), before)
        opt.zero_grad()


def test_param_groups_and_defaults():
    a, b = nn.Parameter(polygrad.ones(2)), nn.Parameter(polygrad.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert opt.param_groups[1]["momentum"] == 0.5
    c = nn.Parameter(polygrad.ones(1))
    opt.add_param_group({"params": [c], "lr": 0.01})
    (a.sum() + b.sum() + c.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.detach().numpy(), [0.0, 0.0])
    np.testing.assert_allclose(c.detach().numpy(), [0.99])
    assert "Parameter Group 2" in repr(opt) and "lr: 0.01" in repr(opt)
    named = optim.Adam(nn.Linear(2, 1).named_parameters())
    assert named.param_groups[0]["param_names"] == ["weight", "bias"]


def test_zero_grad_yt6_and_closure():
    p = nn.Parameter(polygrad.ones(3))
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and p.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with polygrad.no_grad():
        loss = opt.step(closure)         # the closure runs with grad enabled, as in torch
    assert loss.item() == 3.0
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 0.8, 0.8])


ERRORS = [
    (lambda o, p: o.SGD(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda o, p: o.SGD(p, momentum=-0.1), ValueError, "Invalid momentum value: -0.1"),
    (lambda o, p: o.SGD(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda o, p: o.SGD(p, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda o, p: o.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "Nesterov momentum requires"),
    (lambda o, p: o.Adam(p, lr=-0.5), ValueError, "Invalid learning rate: -0.5"),
    (lambda o, p: o.Adam(p, eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda o, p: o.Adam(p, betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0"),
    (lambda o, p: o.Adam(p, betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1"),
    (lambda o, p: o.SGD([]), ValueError, "optimizer got an empty parameter list"),
    (lambda o, p: o.SGD(p[0]), TypeError, "iterable of Tensors or dicts"),
    (lambda o, p: o.SGD([{"params": set(p)}]), TypeError, "ordered collections"),
    (lambda o, p: o.SGD([1.0]), TypeError, "can only optimize Tensors"),
    (lambda o, p: o.SGD([p[0] * 2]), ValueError, "can't optimize a non-leaf Tensor"),
    (lambda o, p: o.SGD([{"params": p}, {"params": p}]), ValueError,
     "more than one parameter group"),
]


@pytest.mark.parametrize("make,exc,message", ERRORS, ids=[e[2] for e in ERRORS])
def test_bad_arguments_raise_like_torch(make, exc, message):
    with pytest.raises(exc, match=message):
        make(optim, [nn.Parameter(polygrad.ones(2))])
    with pytest.raises(exc, match=message):      # the oracle: torch says the same
        make(torch.optim, [torch.nn.Parameter(torch.ones(2))])
