"""polygrad.nn: modules, parameters, initialisers and functional ops of the tutorials.

``Module`` and ``Parameter`` are in ``module`` and ``parameter``, layers and losses in
``modules``, the functional ops in ``functional`` (their primitives in ``primitives``),
initialisers in ``init``.
"""

from . import functional, init  # noqa: F401
from .module import Module
from .modules import (BCEWithLogitsLoss, CrossEntropyLoss, Identity, Linear, LogSoftmax,
                      ModuleList, MSELoss, NLLLoss, ReLU, Sequential, Sigmoid, Softmax, Tanh)
from .parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "Identity", "ReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "Sequential", "ModuleList", "MSELoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "NLLLoss", "functional", "init"]
