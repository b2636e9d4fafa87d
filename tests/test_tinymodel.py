"""YT-5 / YT-6: the Fundamentals tutorial's TinyModel, given torch's initial weights,
trains exactly as it does in torch (loss, gradients, updated weights), and gradients
accumulate over five passes until zero_grad.
"""

import numpy as np
import pytest

import polygrad

torch = pytest.importorskip("torch")

BATCH_SIZE, DIM_IN, HIDDEN_SIZE, DIM_OUT = 16, 1000, 100, 10


def tiny_model(lib):
    """The tutorial's class, verbatim but for the library it is given."""
    class TinyModel(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer1 = lib.nn.Linear(DIM_IN, HIDDEN_SIZE)
            self.relu = lib.nn.ReLU()
            self.layer2 = lib.nn.Linear(HIDDEN_SIZE, DIM_OUT)

        def forward(self, x):
            x = self.layer1(x)
            x = self.relu(x)
            x = self.layer2(x)
            return x
    return TinyModel()


@pytest.fixture
def pair(backend):
    """A torch TinyModel and a polygrad one holding the same weights, and the same data."""
    torch.manual_seed(0)
    theirs = tiny_model(torch)
    ours = tiny_model(polygrad)
    with torch.no_grad():
        ours.load_state_dict({k: polygrad.tensor(v.numpy()).to(backend)
                              for k, v in theirs.state_dict().items()})
    x = torch.randn(BATCH_SIZE, DIM_IN)
    ideal = torch.randn(BATCH_SIZE, DIM_OUT)
    data = (polygrad.from_numpy(x.numpy(), backend=backend),
            polygrad.from_numpy(ideal.numpy(), backend=backend))
    return ours, theirs, data, (x, ideal)


def _close(ours, theirs, rtol=2e-5, atol=2e-6):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol,
                               atol=atol)


def test_yt5_one_training_step_matches_torch(pair, backend):
    ours, theirs, (x, ideal), (tx, tideal) = pair
    assert all(p.backend == backend and p.dtype == polygrad.float32 for p in ours.parameters())
    optimizer = polygrad.optim.SGD(ours.parameters(), lr=0.001)
    toptimizer = torch.optim.SGD(theirs.parameters(), lr=0.001)

    print(ours.layer2.weight[0][0:10])               # the tutorial's cell runs
    _close(ours.layer2.weight[0][0:10], theirs.layer2.weight[0][0:10])
    assert ours.layer2.weight.grad is None

    prediction = ours(x)
    loss = (ideal - prediction).pow(2).sum()
    tloss = (tideal - theirs(tx)).pow(2).sum()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    before = {k: v.numpy().copy() for k, v in ours.state_dict().items()}
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        _close(p.grad, tp.grad, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(p.detach().numpy(), before[name])   # unchanged so far

    optimizer.step()
    toptimizer.step()
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        _close(p, tp)
        assert not np.array_equal(p.detach().numpy(), before[name])
    _close(ours.layer2.weight.grad[0][0:10], theirs.layer2.weight.grad[0][0:10], 1e-4, 1e-4)


def test_yt6_gradients_accumulate_until_zero_grad(pair, backend):
    ours, theirs, (x, ideal), (tx, tideal) = pair
    optimizer = polygrad.optim.SGD(ours.parameters(), lr=0.001)
    (ideal - ours(x)).pow(2).sum().backward()
    one = ours.layer2.weight.grad.numpy().copy()
    ours.zero_grad()

    for _ in range(0, 5):
        prediction = ours(x)
        loss = (ideal - prediction).pow(2).sum()
        loss.backward()
        (tideal - theirs(tx)).pow(2).sum().backward()
    print(ours.layer2.weight.grad[0][0:10])
    np.testing.assert_allclose(ours.layer2.weight.grad.numpy(), 5 * one, rtol=1e-4, atol=1e-3)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        _close(p.grad, tp.grad, rtol=1e-4, atol=1e-3)

    grads = [p.grad for p in ours.parameters()]
    optimizer.zero_grad(set_to_none=False)
    for p, g in zip(ours.parameters(), grads):
        assert p.grad is g and not p.grad.numpy().any()
    print(ours.layer2.weight.grad[0][0:10])
    optimizer.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_several_training_steps_track_torch(pair):
    ours, theirs, (x, ideal), (tx, tideal) = pair
    optimizer = polygrad.optim.SGD(ours.parameters(), lr=0.001, momentum=0.9)
    toptimizer = torch.optim.SGD(theirs.parameters(), lr=0.001, momentum=0.9)
    for _ in range(4):
        for opt, model, a, b in ((optimizer, ours, x, ideal), (toptimizer, theirs, tx, tideal)):
            opt.zero_grad()
            loss = (b - model(a)).pow(2).sum()
            loss.backward()
            opt.step()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        _close(p, tp, rtol=1e-4, atol=1e-5)
