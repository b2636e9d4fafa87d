"""polygrad.optim's RMSprop, Adagrad, AdamW and lr_scheduler against torch.optim: a small
float64 model trains a few steps from the same weights on the same batches in both
libraries, and the parameters, the rates and the state_dicts must agree.
"""

import numpy as np
import pytest

import polygrad
import polygrad.nn as nn
import polygrad.optim as optim

torch = pytest.importorskip("torch")

OPTIMIZERS = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.05, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.9), maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
]

SCHEDULERS = [
    ("StepLR", dict(step_size=2, gamma=0.5)),
    ("StepLR", dict(step_size=3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=3)),           # runs past T_max: torch's rise back up
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 1.0 / (epoch + 1))),
]

RNG = np.random.default_rng(7)
STEPS = 8


def _batches(n=STEPS):
    return [(RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))) for _ in range(n)]


def _model(lib, backend=None):
    if lib is torch:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                   torch.nn.Linear(4, 2)).double()
    model = nn.Sequential(nn.Linear(3, 4, dtype=polygrad.float64, backend=backend), nn.Tanh(),
                          nn.Linear(4, 2, dtype=polygrad.float64, backend=backend))
    return model


def _copy_weights(model, tmodel, backend):
    model.load_state_dict({k: polygrad.from_numpy(v.detach().numpy().copy(), backend=backend)
                           for k, v in tmodel.state_dict().items()})


def _train(lib, model, opt, sched, batches, backend=None):
    """Steps of the usual loop; returns the rates the scheduler reported after each step."""
    rates = []
    for x, y in batches:
        if lib is torch:
            x, y = torch.from_numpy(x), torch.from_numpy(y)
        else:
            x, y = polygrad.from_numpy(x, backend=backend), polygrad.from_numpy(y, backend=backend)
        opt.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
            rates.append(sched.get_last_lr())
    return rates


def _both(backend, opt_name, opt_kw, sched_name=None, sched_kw=None, batches=None):
    tmodel = _model(torch)
    model = _model(polygrad, backend)
    _copy_weights(model, tmodel, backend)
    topt = getattr(torch.optim, opt_name)(tmodel.parameters(), **opt_kw)
    opt = getattr(optim, opt_name)(model.parameters(), **opt_kw)
    tsched = sched = None
    if sched_name:
        tsched = getattr(torch.optim.lr_scheduler, sched_name)(topt, **sched_kw)
        sched = getattr(optim.lr_scheduler, sched_name)(opt, **sched_kw)
    batches = _batches() if batches is None else batches
    ours = _train(polygrad, model, opt, sched, batches, backend)
    theirs = _train(torch, tmodel, topt, tsched, batches)
    return (model, opt, sched, ours), (tmodel, topt, tsched, theirs)


def _assert_same_parameters(model, tmodel, backend):
    theirs = dict(tmodel.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(theirs)
    for name, p in model.named_parameters():
        assert p.backend == backend and p.dtype == polygrad.float64
        np.testing.assert_allclose(p.detach().numpy(), theirs[name].detach().numpy(),
                                   rtol=1e-9, atol=1e-9, err_msg=name)


def _assert_same_state(state, tstate):
    assert list(state) == list(tstate)
    for key, value in state.items():
        tvalue = tstate[key]
        if isinstance(tvalue, torch.Tensor):
            np.testing.assert_allclose(np.asarray(value.numpy() if hasattr(value, "numpy")
                                                  else value, dtype=np.float64),
                                       tvalue.double().numpy(), rtol=1e-9, atol=1e-9,
                                       err_msg=key)
        else:
            assert value == tvalue, key


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_optimizer_trains_like_torch(backend, name, kw):
    (model, opt, _, _), (tmodel, topt, _, _) = _both(backend, name, kw)
    _assert_same_parameters(model, tmodel, backend)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert list(ours["state"]) == list(theirs["state"])
    for i, state in ours["state"].items():
        _assert_same_state(state, theirs["state"][i])


SCHEDULER_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)]   # no lambda reprs:
                                                                       # xdist needs stable ids


@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=SCHEDULER_IDS)
def test_scheduler_rates_and_training_match_torch(backend, name, kw):
    (model, opt, sched, ours), (tmodel, topt, tsched, theirs) = _both(
        backend, "SGD", dict(lr=0.1, momentum=0.5), name, kw)
    assert ours == theirs                         # the same floats: the same formulas
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
    _assert_same_parameters(model, tmodel, backend)
    state, tstate = sched.state_dict(), tsched.state_dict()
    assert state == tstate


@pytest.mark.parametrize("name,kw", SCHEDULERS[:1] + SCHEDULERS[3:4] + SCHEDULERS[5:],
                         ids=["StepLR", "Cosine", "LambdaLR"])
def test_scheduler_state_dict_resumes_like_torch(backend, name, kw):
    batches = _batches(2 * STEPS)
    (_, _, sched, _), (_, _, tsched, _) = _both(backend, "Adam", dict(lr=0.1), name, kw,
                                                batches[:STEPS])
    saved = sched.state_dict()
    # a fresh optimizer and scheduler, resumed from the saved state, continue as torch's does
    param = nn.Parameter(polygrad.zeros(2, dtype=polygrad.float64))
    tparam = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt2, topt2 = optim.SGD([param], lr=0.1), torch.optim.SGD([tparam], lr=0.1)
    sched2 = getattr(optim.lr_scheduler, name)(opt2, **kw)
    tsched2 = getattr(torch.optim.lr_scheduler, name)(topt2, **kw)
    sched2.load_state_dict(saved)
    tsched2.load_state_dict(tsched.state_dict())
    for g, tg in zip(opt2.param_groups, topt2.param_groups):
        g["lr"], tg["lr"] = sched2.get_last_lr()[0], tsched2.get_last_lr()[0]
    for _ in range(4):
        opt2.step()
        topt2.step()
        sched2.step()
        tsched2.step()
        assert sched2.get_last_lr() == tsched2.get_last_lr()


def test_closed_form_epoch_argument_matches_torch():
    for name, kw in SCHEDULERS[:5]:
        opt = optim.SGD([nn.Parameter(polygrad.ones(1))], lr=0.1)
        topt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
        sched = getattr(optim.lr_scheduler, name)(opt, **kw)
        tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
        for epoch in (3, 5, 1):
            opt.step()
            topt.step()
            with pytest.warns(UserWarning, match="epoch parameter"):
                sched.step(epoch)
            with pytest.warns(UserWarning):
                tsched.step(epoch)
            assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15), name


def test_scheduler_warns_when_stepped_before_the_optimizer():
    opt = optim.SGD([nn.Parameter(polygrad.ones(1))], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    with pytest.raises(TypeError, match="not an Optimizer"):
        optim.lr_scheduler.StepLR(object(), 1)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.lr_scheduler.ExponentialLR(optim.SGD([nn.Parameter(polygrad.ones(1))], lr=1.0),
                                         0.5, last_epoch=3)


def test_adagrad_state_exists_before_the_first_step_as_torchs():
    p, tp = nn.Parameter(polygrad.ones(2)), torch.nn.Parameter(torch.ones(2))
    ours = optim.Adagrad([p], initial_accumulator_value=0.3).state_dict()
    theirs = torch.optim.Adagrad([tp], initial_accumulator_value=0.3).state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    _assert_same_state(ours["state"][0], theirs["state"][0])


@pytest.mark.parametrize("make,message", [
    (lambda p: optim.RMSprop(p, lr=-1), "Invalid learning rate"),
    (lambda p: optim.RMSprop(p, alpha=-1), "Invalid alpha value"),
    (lambda p: optim.RMSprop(p, momentum=-1), "Invalid momentum value"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value"),
    (lambda p: optim.Adagrad(p, eps=-1), "Invalid epsilon value"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
])
def test_bad_hyperparameters_raise_like_torch(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(polygrad.ones(1))])


def test_a_new_optimizer_is_its_update_rule():
    class SignSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

        def _update(self, p, g, group, state):
            p.add_(g.sign(), alpha=-group["lr"])

    w = nn.Parameter(polygrad.tensor([1.0, -2.0]))
    unused = nn.Parameter(polygrad.tensor([5.0]))
    opt = SignSGD([w, unused], lr=0.5, weight_decay=0.1)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.5, -1.5])
    np.testing.assert_allclose(unused.detach().numpy(), [5.0])     # no grad: untouched
    assert opt.state == {w: {}}
