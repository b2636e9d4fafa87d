"""``polygrad.profiler``: the same module as ``polygrad.autograd.profiler``, so that
``from polygrad.profiler import profile, record_function`` works as torch.profiler's does.

>>> import polygrad.profiler, polygrad.autograd.profiler
>>> polygrad.profiler is polygrad.autograd.profiler
True
"""

import sys

from .autograd import profiler as _profiler

sys.modules[__name__] = _profiler     # one module under both names, not a copy
