"""polygrad.nn: modules, parameters, initialisers and functional ops of the tutorials.

``Module`` and ``Parameter`` are in ``module`` and ``parameter``, layers and losses in
``modules``, the functional ops in ``functional`` (their primitives in ``primitives``),
initialisers in ``init``.
"""

from . import functional, init  # noqa: F401
from . import modules_more as _more
from .module import Module, RemovableHandle
from .modules import (
                      BCELoss,
                      BCEWithLogitsLoss,
                      CrossEntropyLoss,
                      Dropout,
                      Flatten,
                      Identity,
                      L1Loss,
                      Linear,
                      LogSoftmax,
                      ModuleDict,
                      ModuleList,
                      MSELoss,
                      NLLLoss,
                      ParameterDict,
                      ParameterList,
                      ReLU,
                      Sequential,
                      Sigmoid,
                      Softmax,
                      Tanh,
                      Unflatten,
)
from .modules_more import *  # noqa: F403  (activations, norms, Embedding, more losses)
from .parameter import Parameter

__all__ = ["Module", "Parameter", "RemovableHandle", "Linear", "Identity", "Flatten",
           "Unflatten", "Dropout", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss",
           "functional", "init"] + _more.__all__
