"""The order in which a DataLoader reads a dataset: samplers and a seedable ``Generator``.

Shuffles cannot reproduce torch's (its random stream is its own); they are reproducible
within polygrad: with ``generator=`` from that generator, without it from a seed drawn
from polygrad's global generator, so ``polygrad.manual_seed`` fixes them.
"""

from __future__ import annotations

import random

from ...graph.creation import randint, randperm
from ...plugins.random import Generator as _StreamGenerator

__all__ = ["Generator", "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler"]


class Generator:
    """A seedable source of shuffles (torch.Generator's seeding API).

    >>> g = Generator().manual_seed(0)
    >>> g.initial_seed()
    0
    """

    def __init__(self, device="cpu"):
        self.device = device
        self._rng = random.Random()
        self.seed()

    def manual_seed(self, seed):
        self._initial_seed = int(seed)
        self._rng.seed(self._initial_seed)
        return self

    def seed(self):
        """Seed from the OS's entropy; returns the seed."""
        self.manual_seed(random.SystemRandom().randrange(2 ** 63))
        return self._initial_seed

    def initial_seed(self):
        return self._initial_seed

    def get_state(self):
        return self._rng.getstate()

    def set_state(self, state):
        self._rng.setstate(state)
        return self

    def randperm(self, n):
        """A random permutation of ``range(n)`` as a list."""
        order = list(range(n))
        self._rng.shuffle(order)
        return order

    def randrange(self, n, k):
        return [self._rng.randrange(n) for _ in range(k)]


def _generator(generator):
    if generator is not None:
        return generator
    seed = int(randint(0, 2 ** 62, ()).item())      # follows polygrad.manual_seed
    return Generator().manual_seed(seed)


def _permutation(generator, n):
    if isinstance(generator, _StreamGenerator):      # polygrad.Generator (torch.Generator's)
        return randperm(n, generator=generator, backend="numpy").tolist()
    if hasattr(generator, "randperm"):
        return generator.randperm(n)
    if hasattr(generator, "permutation"):           # a numpy.random.Generator
        return [int(i) for i in generator.permutation(n)]
    raise TypeError(f"generator must be a polygrad.Generator, a polygrad.utils.data.Generator "
                    f"or a numpy.random.Generator, got {type(generator).__name__}")


class Sampler:
    """Base class: an iterable of dataset indices."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new permutation of the indices on every pass (or draws with replacement).

    >>> sorted(RandomSampler(range(4), generator=Generator().manual_seed(1)))
    [0, 1, 2, 3]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        generator = _generator(self.generator)
        if self.replacement:
            if isinstance(generator, _StreamGenerator):
                yield from randint(0, n, (self.num_samples,), generator=generator,
                                   backend="numpy").tolist()
                return
            if not hasattr(generator, "randrange"):
                raise TypeError("sampling with replacement needs a polygrad Generator")
            yield from generator.randrange(n, self.num_samples)
            return
        for _ in range(self.num_samples // n):
            yield from _permutation(generator, n)
        yield from _permutation(generator, n)[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
