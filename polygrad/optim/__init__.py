"""polygrad.optim: the tutorials' optimizers (SGD, Adam, AdamW) over polygrad Tensors.

The base class with parameter groups and state_dict is in ``optimizer``; each
algorithm has its own module.
"""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
