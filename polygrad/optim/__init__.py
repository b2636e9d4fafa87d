"""polygrad.optim: torch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and its
learning-rate schedulers (``lr_scheduler``), over polygrad Tensors.

The base class with parameter groups, state_dict and the shared ``step`` is in
``optimizer``; each algorithm has its own module holding only its update rule.
"""

from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
