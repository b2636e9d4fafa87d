"""polygrad.utils.data: torch.utils.data's Dataset, TensorDataset and DataLoader.

Datasets are in ``dataset``, the order of indices (samplers, ``Generator``) in
``sampler``, batching and ``default_collate`` in ``dataloader``. Loading runs in the
calling process: ``num_workers`` is accepted and ignored.
"""

from .dataloader import DataLoader, default_collate, default_convert
from .dataset import Dataset, Subset, TensorDataset
from .sampler import BatchSampler, Generator, RandomSampler, Sampler, SequentialSampler

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate",
           "default_convert", "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler",
           "Generator"]
