"""The layers of polygrad.nn: Linear, shape layers, Dropout, activations, containers, losses.

Each is a thin Module over ``polygrad.nn.functional`` or over a few differentiable
Tensor ops (so its gradient needs no rule of its own); reprs match torch's.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict

from ..graph.creation import empty
from ..graph.tensor import Tensor
from . import functional as F
from . import init
from .module import Module, _addindent
from .parameter import Parameter

__all__ = ["Linear", "Identity", "Flatten", "Unflatten", "Dropout", "ReLU", "Sigmoid", "Tanh",
           "Softmax", "LogSoftmax", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "NLLLoss"]


class Linear(Module):
    """``y = x @ weight.T + bias``, initialised as torch does (uniform in ±1/sqrt(in_features)).

    >>> import polygrad
    >>> polygrad.nn.Linear(1000, 100)
    Linear(in_features=1000, out_features=100, bias=True)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *,
                 backend=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        kw = {"device": device, "dtype": dtype, "backend": backend}
        self.weight = Parameter(empty(out_features, in_features, **kw))
        if bias:
            self.bias = Parameter(empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class ReLU(Module):
    """max(x, 0), elementwise.

    >>> import polygrad
    >>> polygrad.nn.ReLU()(polygrad.tensor([-1.0, 1.0]))
    tensor([0., 1.])
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    """softmax along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim``."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Flatten(Module):
    """Flattens dims ``start_dim``..``end_dim`` into one (all but the batch dim by default).

    >>> import polygrad
    >>> polygrad.nn.Flatten()(polygrad.ones(2, 3, 4)).shape
    polygrad.Size([2, 12])
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (which may hold one -1).

    >>> import polygrad
    >>> polygrad.nn.Unflatten(1, (3, 4))(polygrad.ones(2, 12)).shape
    polygrad.Size([2, 3, 4])
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(dim, int):
            raise TypeError(f"invalid argument: dim should be an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)) or \
                not all(isinstance(n, int) for n in unflattened_size):
            raise TypeError(f"unflattened_size must be a tuple of ints, got "
                            f"{unflattened_size!r}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input):
        ndim = input.ndim
        if not -ndim <= self.dim < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {self.dim})")
        dim = self.dim % ndim
        shape = tuple(input.shape)
        return input.reshape(shape[:dim] + tuple(self.unflattened_size) + shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout(Module):
    """In training, zeroes each element with probability ``p`` and scales the rest by
    ``1 / (1 - p)``; in eval mode, the identity. The random draw is the input's backend's
    (``polygrad.manual_seed`` makes it repeatable; it cannot equal torch's draw).

    >>> import polygrad
    >>> drop = polygrad.nn.Dropout(0.5).eval()
    >>> drop(polygrad.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


# -- containers ---------------------------------------------------------------------------------
# Sequential, ModuleList and ParameterList are lists kept in one of Module's tables under the
# keys "0".."n-1"; ModuleDict and ParameterDict are dicts kept there under their own keys.
# The two bases below hold what each family shares; a container names its table and, for
# the parameter ones, how a value is stored.

def _position(container, idx):
    """Integer index ``idx`` (negative counts from the end) as a position, checked as torch does."""
    n = len(container)
    try:
        i = operator.index(idx)
    except TypeError:
        raise TypeError(f"{type(container).__name__} indices must be integers or slices, not "
                        f"{type(idx).__name__}") from None
    if not -n <= i < n:
        raise IndexError(f"index {idx} is out of range for {type(container).__name__} of "
                         f"length {n}")
    return i % n


def _key(container, idx):
    return list(container._table())[_position(container, idx)]


class _ListContainer(Module):
    """A list of values held in ``self.<_table_name>`` under the keys "0".."n-1"."""

    _table_name = "_modules"

    def _table(self):
        return self.__dict__[self._table_name]

    def _store(self, key, value):
        setattr(self, key, value)

    def _from_slice(self, idx):
        return type(self)(list(self._table().values())[idx])

    def _renumber(self, values):
        self._table().clear()
        for i, value in enumerate(values):
            self._store(str(i), value)

    def __len__(self):
        return len(self._table())

    def __iter__(self):
        return iter(self._table().values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._from_slice(idx)
        return self._table()[_key(self, idx)]

    def __setitem__(self, idx, value):
        self._store(_key(self, idx), value)

    def __delitem__(self, idx):
        values = list(self._table().values())
        n = len(values)
        gone = set(range(n)[idx]) if isinstance(idx, slice) else {_position(self, idx)}
        self._renumber([v for i, v in enumerate(values) if i not in gone])  # keys stay 0..n-1

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        """Add ``value`` at the end."""
        self._store(str(len(self)), value)
        return self

    def extend(self, values):
        """Append each of ``values``."""
        for value in values:
            self.append(value)
        return self

    def insert(self, index, value):
        """Insert ``value`` before position ``index``."""
        values = list(self._table().values())
        values.insert(index, value)
        self._renumber(values)

    def pop(self, idx=-1):
        """Remove and return the value at ``idx``."""
        value = self[idx]
        del self[idx]
        return value


class _DictContainer(Module):
    """A dict of values held in ``self.<_table_name>`` under their own (string) keys."""

    _table_name = "_modules"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.update(values)

    def _table(self):
        return self.__dict__[self._table_name]

    def _store(self, key, value):
        setattr(self, key, value)

    def __getitem__(self, key):
        return self._table()[key]

    def __setitem__(self, key, value):
        self._store(key, value)

    def __delitem__(self, key):
        del self._table()[key]

    def __len__(self):
        return len(self._table())

    def __iter__(self):
        return iter(self._table())

    def __contains__(self, key):
        return key in self._table()

    def keys(self):
        return self._table().keys()

    def items(self):
        return self._table().items()

    def values(self):
        return self._table().values()

    def clear(self):
        self._table().clear()

    def pop(self, key):
        value = self[key]
        del self[key]
        return value

    def update(self, values):
        """Add ``values``: a mapping, or an iterable of ``(key, value)`` pairs."""
        if isinstance(values, (dict, _DictContainer)):
            pairs = values.items()
        else:
            pairs = []
            for j, pair in enumerate(values):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(f"{type(self).__name__} update sequence element #{j} "
                                     f"should be a (key, value) pair")
                pairs.append(pair)
        for key, value in pairs:
            self[key] = value


class Sequential(_ListContainer):
    """Modules run one after the other; built from arguments or an OrderedDict.

    >>> import polygrad
    >>> net = polygrad.nn.Sequential(polygrad.nn.Linear(4, 2), polygrad.nn.ReLU())
    >>> net(polygrad.ones(3, 4)).shape
    polygrad.Size([3, 2])
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def _from_slice(self, idx):
        return type(self)(OrderedDict(list(self._modules.items())[idx]))   # names kept

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_ListContainer):
    """A list of modules whose parameters the parent module sees.

    >>> import polygrad
    >>> layers = polygrad.nn.ModuleList([polygrad.nn.Linear(2, 2) for _ in range(3)])
    >>> len(list(layers.parameters()))
    6
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __repr__(self):
        # torch compresses runs of identical children: "(0-2): 3 x Linear(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for start, end, r in runs:
            text = f"({start}): {r}" if start == end else \
                f"({start}-{end}): {end - start + 1} x {r}"
            lines.append(_addindent(text, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(_DictContainer):
    """A dict of modules whose parameters the parent module sees (insertion ordered).

    >>> import polygrad
    >>> heads = polygrad.nn.ModuleDict({"a": polygrad.nn.Linear(2, 1)})
    >>> [name for name, _ in heads.named_parameters()]
    ['a.weight', 'a.bias']
    """

    def _store(self, key, value):
        self.add_module(key, value)


def _as_parameter(value):
    """What torch's ParameterList/Dict store: a Parameter, a plain tensor wrapped as one."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    if value is not None and not isinstance(value, Parameter):
        raise TypeError(f"cannot store a {type(value).__name__} as a parameter; pass a "
                        f"polygrad Tensor or nn.Parameter")
    return value


def _parameter_lines(container, items):
    # torch's ParameterList layout (its ParameterDict prints the legacy type names instead)
    lines = []
    for key, p in items:
        size = "x".join(str(n) for n in p.shape)
        lines.append(f"    ({key}): Parameter containing: [{p.dtype} of size {size}]")
    if not lines:
        return container._get_name() + "()"
    return container._get_name() + "(\n" + "\n".join(lines) + "\n)"


class ParameterList(_ListContainer):
    """A list of parameters that the parent module registers (tensors become Parameters).

    >>> import polygrad
    >>> ps = polygrad.nn.ParameterList([polygrad.ones(2), polygrad.zeros(3)])
    >>> [name for name, _ in ps.named_parameters()]
    ['0', '1']
    """

    _table_name = "_parameters"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _store(self, key, value):
        self.register_parameter(key, _as_parameter(value))

    def __repr__(self):
        return _parameter_lines(self, self._parameters.items())


class ParameterDict(_DictContainer):
    """A dict of parameters that the parent module registers (tensors become Parameters).

    >>> import polygrad
    >>> pd = polygrad.nn.ParameterDict({"scale": polygrad.ones(2)})
    >>> [name for name, _ in pd.named_parameters()]
    ['scale']
    """

    _table_name = "_parameters"

    def _store(self, key, value):
        self.register_parameter(key, _as_parameter(value))

    def __repr__(self):
        return _parameter_lines(self, self._parameters.items())


# -- losses -------------------------------------------------------------------------------------

class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = F._more._reduction(reduction, size_average, reduce)


class MSELoss(_Loss):
    """Mean squared error.

    >>> import polygrad
    >>> polygrad.nn.MSELoss()(polygrad.tensor([2.0]), polygrad.zeros(1))
    tensor(4.)
    """

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy on logits (stable for any logit)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class NLLLoss(_Loss):
    """Negative log likelihood of class indices."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross entropy of logits against class indices or probabilities."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class L1Loss(_Loss):
    """Mean absolute error, ``|input - target|`` reduced (gradient ``sign``, 0 at a tie).

    >>> import polygrad
    >>> polygrad.nn.L1Loss()(polygrad.tensor([1.0, -3.0]), polygrad.zeros(2))
    tensor(2.)
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross entropy of probabilities; each log is clamped at -100, as torch's
    (``nn.functional.binary_cross_entropy`` says where its gradient differs).

    >>> import polygrad
    >>> polygrad.nn.BCELoss()(polygrad.tensor([0.5]), polygrad.tensor([1.0]))
    tensor(0.6931)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)
