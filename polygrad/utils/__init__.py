"""polygrad.utils: torch.utils's data loading (``polygrad.utils.data``)."""

from . import data  # noqa: F401

__all__ = ["data"]
