"""polygrad.utils.data against torch.utils.data: the same datasets batched the same way give
the same values, dtypes, shapes and container types; shuffles are permutations that a
generator (or polygrad.manual_seed) makes repeatable.
"""

import collections

import numpy as np
import pytest

import polygrad
import polygrad.utils.data as data

torch = pytest.importorskip("torch")
tdata = torch.utils.data

Point = collections.namedtuple("Point", "x y")


def _plain(batch):
    """A batch as nested Python values and (dtype name, shape, values) triples, comparable
    across the two libraries."""
    if isinstance(batch, (polygrad.Tensor, torch.Tensor)):
        return ("tensor", str(batch.dtype).split(".")[-1], tuple(batch.shape),
                batch.detach().numpy().tolist())
    if isinstance(batch, dict):
        return {k: _plain(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return (type(batch).__name__,) + tuple(_plain(v) for v in batch)
    if isinstance(batch, (list, tuple)):
        return (type(batch).__name__, [_plain(v) for v in batch])
    return batch


def _tensor_dataset(lib, backend=None):
    x = np.arange(14.0).reshape(7, 2)
    y = np.array([0, 1, 1, 0, 2, 1, 0])
    if lib is torch:
        return tdata.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return data.TensorDataset(polygrad.from_numpy(x, backend=backend),
                              polygrad.from_numpy(y, backend=backend))


SAMPLES = {
    "numbers": [(1, 2.0), (3, 4.5), (5, 6.0)],
    "dicts": [{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}],
    "numpy": [np.ones((2, 2), dtype=np.float32) * i for i in range(3)],
    "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
    "strings": [("a", 1), ("b", 2)],
    "bools": [True, False, True],
}


@pytest.mark.parametrize("kw", [dict(batch_size=2), dict(batch_size=3, drop_last=True),
                                dict(batch_size=1), dict(batch_size=7), dict(batch_size=10),
                                dict(batch_size=None)], ids=str)
def test_tensor_dataset_batches_match_torch(backend, kw):
    loader = data.DataLoader(_tensor_dataset(polygrad, backend), **kw)
    tloader = tdata.DataLoader(_tensor_dataset(torch), **kw)
    ours, theirs = list(loader), list(tloader)
    assert len(loader) == len(tloader) == len(ours)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]
    assert all(t.backend == backend for batch in ours for t in batch)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_default_collate_matches_torch(name):
    samples = SAMPLES[name]
    ours = list(data.DataLoader(samples, batch_size=2))
    theirs = list(tdata.DataLoader(samples, batch_size=2))
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]


def test_dataset_indexing_and_errors_match_torch():
    ds, tds = _tensor_dataset(polygrad), _tensor_dataset(torch)
    assert len(ds) == len(tds) == 7
    assert _plain(list(ds[3])) == _plain(list(tds[3]))
    assert _plain(list(ds[1:3])) == _plain(list(tds[1:3]))
    with pytest.raises(ValueError, match="Size mismatch"):
        data.TensorDataset(polygrad.ones(3), polygrad.ones(4))
    with pytest.raises(NotImplementedError):
        data.Dataset()[0]
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        data.DataLoader(ds, sampler=data.SequentialSampler(ds), shuffle=True)
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([[1, 2], [3]])
    sub = data.Subset(ds, [4, 0])
    assert len(sub) == 2 and int(sub[0][1]) == 2


def _order(loader):
    return [int(i) for _, y in loader for i in y]


def test_shuffle_is_a_permutation_repeatable_with_a_generator(backend):
    n = 50
    ds = data.TensorDataset(polygrad.arange(n), polygrad.arange(n))
    g = data.Generator().manual_seed(0)
    first = _order(data.DataLoader(ds, batch_size=8, shuffle=True, generator=g))
    second = _order(data.DataLoader(ds, batch_size=8, shuffle=True, generator=g))
    again = _order(data.DataLoader(ds, batch_size=8, shuffle=True,
                                   generator=data.Generator().manual_seed(0)))
    other = _order(data.DataLoader(ds, batch_size=8, shuffle=True,
                                   generator=data.Generator().manual_seed(1)))
    assert sorted(first) == list(range(n)) and first != list(range(n))
    assert first == again                 # the same seed, the same order
    assert second != first                # the generator moves on between epochs
    assert other != first
    dropped = _order(data.DataLoader(ds, batch_size=8, shuffle=True, drop_last=True,
                                     generator=data.Generator().manual_seed(0)))
    assert dropped == first[:48]


def test_shuffle_without_generator_follows_manual_seed():
    ds = data.TensorDataset(polygrad.arange(30), polygrad.arange(30))
    polygrad.manual_seed(5)
    a = _order(data.DataLoader(ds, batch_size=4, shuffle=True))
    polygrad.manual_seed(5)
    b = _order(data.DataLoader(ds, batch_size=4, shuffle=True))
    assert a == b and sorted(a) == list(range(30))


def test_numpy_generator_and_samplers():
    ds = list(range(10))
    order = list(data.DataLoader(ds, batch_size=None, shuffle=True,
                                 generator=np.random.default_rng(0)))
    assert sorted(order) == ds
    assert list(data.RandomSampler(ds, num_samples=25,
                                   generator=data.Generator().manual_seed(2)))[:10] != ds
    drawn = list(data.RandomSampler(ds, replacement=True, num_samples=40,
                                    generator=data.Generator().manual_seed(2)))
    assert len(drawn) == 40 and set(drawn) <= set(ds)
    batches = data.BatchSampler(data.SequentialSampler(ds), batch_size=4, drop_last=False)
    assert list(data.DataLoader(ds, batch_sampler=batches))[-1].tolist() == [8, 9]
    assert len(data.DataLoader(ds, batch_sampler=batches)) == 3
    g = data.Generator()
    state = g.get_state()
    assert g.randperm(5) == g.set_state(state).randperm(5)


def test_a_model_trains_from_a_dataloader(backend):
    polygrad.manual_seed(0)
    x = polygrad.randn(64, 3)
    y = x @ polygrad.tensor([[1.0], [-2.0], [0.5]])
    model = polygrad.nn.Linear(3, 1)
    opt = polygrad.optim.SGD(model.parameters(), lr=0.1)
    loader = data.DataLoader(data.TensorDataset(x, y), batch_size=16, shuffle=True,
                             generator=data.Generator().manual_seed(0))
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            polygrad.nn.functional.mse_loss(model(xb), yb).backward()
            opt.step()
    np.testing.assert_allclose(model.weight.detach().numpy(), [[1.0, -2.0, 0.5]], atol=1e-3)


def test_utils_is_a_package_with_data():
    import polygrad.utils
    assert polygrad.utils.data is data
