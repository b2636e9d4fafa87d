"""polygrad.nn.functional: torch.nn.functional's activations and losses, on every backend.

Each function checks its arguments and calls a primitive (``polygrad.nn.primitives``)
or composes a few; the differentiation rules live with the primitives. Losses take
torch's ``reduction=`` ("mean", "sum" or "none"). This module owns no state.
"""

from __future__ import annotations

import math
import warnings

from ..graph.creation import arange, rand_like, zeros_like
from ..graph.engine import apply
from ..ops import logaddexp, take, take_along_axis, where
from ..ops.torch_names import torch_softmax
from ..primitives import PRIMITIVES as P
from . import functional_more as _more
from .functional_more import *  # noqa: F403  (activations, norms, losses: functional_more)

__all__ = ["relu", "sigmoid", "tanh", "linear", "softmax", "log_softmax", "dropout", "mse_loss",
           "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "nll_loss",
           "cross_entropy"] + _more.__all__

# -- activations ------------------------------------------------------------------------------

def relu(input, inplace=False):
    """max(input, 0), elementwise; its node prints as ``ReluBackward0``.

    >>> import polygrad
    >>> polygrad.nn.functional.relu(polygrad.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    if inplace:
        return input._inplace("relu")
    return apply(P["relu"], input)


def sigmoid(input):
    """1 / (1 + exp(-input)), computed without overflow for large ``|input|``.

    >>> import polygrad
    >>> polygrad.nn.functional.sigmoid(polygrad.tensor([0.0]))
    tensor([0.5000])
    """
    return apply(P["sigmoid"], input)


def tanh(input):
    """Hyperbolic tangent, elementwise.

    >>> import polygrad
    >>> polygrad.nn.functional.tanh(polygrad.tensor([0.0]))
    tensor([0.])
    """
    return apply(P["tanh"], input)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` in one graph node (torch's ``AddmmBackward0``).

    >>> import polygrad
    >>> polygrad.nn.functional.linear(polygrad.ones(2, 3), polygrad.ones(4, 3)).shape
    polygrad.Size([2, 4])
    """
    if weight.ndim != 2:
        raise ValueError(f"linear(): weight must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear(): input has shape {tuple(input.shape)} but weight has shape "
            f"{tuple(weight.shape)}: the last dimension of the input must equal "
            f"in_features={weight.shape[1]}")
    if bias is None:
        return apply(P["linear"], input, weight)
    return apply(P["linear"], input, weight, bias)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(input) normalised along ``dim``, computed stably (the maximum is subtracted first).

    >>> import polygrad
    >>> polygrad.nn.functional.softmax(polygrad.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    return torch_softmax("softmax", input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(input)) along ``dim``, as ``x - logsumexp(x)`` without overflow.

    >>> import polygrad
    >>> polygrad.nn.functional.log_softmax(polygrad.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    return torch_softmax("log_softmax", input, dim, dtype)


def dropout(input, p=0.5, training=True, inplace=False):
    """In training, zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; otherwise return ``input`` itself. The draw is the input's backend's
    (``polygrad.manual_seed`` makes it repeatable; it cannot equal torch's draw).

    >>> import polygrad
    >>> polygrad.nn.functional.dropout(polygrad.ones(3), p=0.5, training=False)
    tensor([1., 1., 1.])
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        scale = zeros_like(input)
    else:
        keep = rand_like(input) >= p                    # kept with probability 1 - p
        scale = keep.astype(input.dtype) * (1.0 / (1.0 - p))
    return input.mul_(scale) if inplace else input * scale


# -- losses -------------------------------------------------------------------------------------

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error, ``(input - target)**2`` reduced; node ``MseLossBackward0``.
    With ``weight`` (input's shape), the mean is ``sum(weight * err) / sum(weight)``, as torch.

    >>> import polygrad
    >>> polygrad.nn.functional.mse_loss(polygrad.tensor([1.0, 3.0]), polygrad.zeros(2))
    tensor(5.)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    _warn_size(input, target)
    if weight is not None:
        _check_weight(weight, input)
        err = apply(P["mse_loss"], input, target, reduction="none")
        return _weighted_by(err * weight, weight, reduction)
    return apply(P["mse_loss"], input, target, reduction=reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error, ``|input - target|`` reduced (gradient ``sign``, 0 at a tie).

    >>> import polygrad
    >>> polygrad.nn.functional.l1_loss(polygrad.tensor([1.0, -3.0]), polygrad.zeros(2))
    tensor(2.)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    _warn_size(input, target)
    err = (input - target).abs()
    if weight is not None:
        _check_weight(weight, input)
        return _weighted_by(err * weight, weight, reduction)
    return _more._reduce(err, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross entropy of probabilities; each log is clamped at -100, as torch's.

    Its gradient is torch's: ``(x - y) / max(x (1 - x), 1e-12)`` for the input (0 where
    ``x == y`` is 0 or 1), ``-logit(x)`` for the target, and torch's double backward.

    >>> import polygrad
    >>> polygrad.nn.functional.binary_cross_entropy(polygrad.tensor([0.5]), polygrad.ones(1))
    tensor(0.6931)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         f"size.")
    if bool(((input < 0) | (input > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    if weight is None:
        return apply(P["binary_cross_entropy"], input, target, reduction=reduction)
    return _more._reduce(apply(P["binary_cross_entropy"], input, target) * weight, reduction)


def _warn_size(input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            f"broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=3)


def _check_weight(weight, input):
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"Weights and input must have the same size (weight {weight.shape}, "
                         f"input {input.shape}).")


def _weighted_by(loss, weight, reduction):
    """torch's weighted mean: the weighted sum over the sum of the weights."""
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _more._reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Binary cross entropy on logits, stable for any ``|input|`` (QS-1).

    One primitive, ``BinaryCrossEntropyWithLogitsBackward0``; a backend may supply a
    fused kernel for it (torch does). ``weight`` and ``pos_weight`` as in torch.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.binary_cross_entropy_with_logits(polygrad.tensor([1e4, -1e4]), polygrad.zeros(2))
    tensor(5000.)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    if weight is None and pos_weight is None:
        return apply(P["binary_cross_entropy_with_logits"], input, target, reduction=reduction)
    if pos_weight is None:
        loss = apply(P["binary_cross_entropy_with_logits"], input, target, reduction="none")
    else:
        # pw y softplus(-z) + (1 - y) softplus(z), each softplus as logaddexp(0, +-z): the
        # gradients are torch's, (pw y + 1 - y) sigmoid(z) - pw y for z (also at z == 0,
        # where abs and relu lost half of it) and pw softplus(-z) - softplus(z) for y
        # (finite or inf, not inf - inf, at infinite z)
        zero = zeros_like(input)
        loss = (pos_weight * target * logaddexp(zero, -input)
                + (1.0 - target) * logaddexp(zero, input))
    if weight is not None:
        loss = loss * weight
    return _more._reduce(loss, reduction)


def _class_axis(input):
    return 0 if input.ndim == 1 else 1


def _one_hot(target, input, axis):
    """A float mask, 1 where the class axis equals the target (0 for ignored targets)."""
    n_classes = input.shape[axis]
    classes = arange(n_classes, backend=input._backend, device=input.device,
                     dtype=target.dtype)
    shape = [1] * input.ndim
    shape[axis] = n_classes
    hit = target.unsqueeze(axis) == classes.reshape(shape)
    return hit.astype(input.dtype)


def _target_mask(target, input, axis, ignore_index):
    """The one-hot of the targets, zero where a target equals ``ignore_index`` (which may
    be a valid class)."""
    keep = (target != ignore_index).astype(input.dtype).unsqueeze(axis)
    return _one_hot(target, input, axis) * keep


def _check_targets(input, target, ignore_index):
    axis = _class_axis(input)
    expected = input.shape[:axis] + input.shape[axis + 1:]
    if tuple(target.shape) != tuple(expected):
        raise ValueError(f"Expected target of shape {tuple(expected)} (the input shape "
                         f"{tuple(input.shape)} without its class dimension {axis}), got "
                         f"{tuple(target.shape)}")
    n_classes = input.shape[axis]
    bad = ((target < 0) | (target >= n_classes)) & (target != ignore_index)
    if bool(bad.any()):
        raise IndexError(f"Target {int(target[bad][0])} is out of bounds: class indices must "
                         f"lie in [0, {n_classes - 1}] (or equal ignore_index={ignore_index})")
    return axis


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of class indices, ``-input[n, target[n]]`` (weighted).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.nll_loss(polygrad.tensor([[-1.0, -2.0]]), polygrad.tensor([1]))
    tensor(2.)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    if target.dtype.is_floating_point:
        raise TypeError("nll_loss() expects class indices (an integer target); for class "
                        "probabilities use cross_entropy()")
    axis = _check_targets(input, target, ignore_index)
    # the targets' entries gathered (not a one-hot product: a -inf logit elsewhere in a row
    # would make 0 * -inf), 0 where the target is ignored
    keep = target != ignore_index
    index = where(keep, target, zeros_like(target))
    picked = take_along_axis(input, index.unsqueeze(axis), axis=axis).squeeze(axis)
    w = keep.astype(input.dtype)
    if weight is not None:
        _along(weight, input, axis)         # checks its shape
        w = w * take(weight, index.reshape(-1), axis=0).reshape(index.shape)
    picked = where(keep, -picked * w, 0.0)
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    # torch divides by the total weight of the targets
    return _by_total(picked.sum(), w.sum(), target, ignore_index)


def _by_total(num, total, target, ignore_index):
    """``num / total``; where every target is ignored, nan with a zero gradient (torch's
    kernel skips ignored targets; a division by the zero total would make it nan)."""
    none_kept = (target == ignore_index).all()
    return where(none_kept, math.nan, num / where(none_kept, 1.0, total))


def _along(weight, input, axis):
    if tuple(weight.shape) != (input.shape[axis],):
        raise ValueError(f"weight must have shape ({input.shape[axis]},) (one per class), got "
                         f"{tuple(weight.shape)}")
    shape = [1] * input.ndim
    shape[axis] = input.shape[axis]
    return weight.reshape(shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits against class indices or class probabilities, as torch's.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.cross_entropy(polygrad.zeros(1, 4), polygrad.tensor([2]))
    tensor(1.3863)
    """
    reduction = _more._reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    axis = _class_axis(input)
    logp = log_softmax(input, dim=axis)
    n_classes = input.shape[axis]
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"class-probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if label_smoothing > 0:
            target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target
        if weight is not None:
            terms = terms * _along(weight, input, axis)
        return _more._reduce(-terms.sum(axis), reduction)     # mean: over the batch, as torch
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    # torch's label smoothing: a uniform term over the classes, masked like the targets
    keep = (target != ignore_index).astype(input.dtype)
    w = _along(weight, input, axis) if weight is not None else 1.0
    smooth = where(keep != 0, -(logp * w).sum(axis), 0.0)    # an ignored NaN row: 0
    if reduction == "mean":
        hit = _target_mask(target, input, axis, ignore_index)
        denom = (hit * w).sum() if weight is not None else keep.sum()
        smooth = _by_total(smooth.sum(), denom, target, ignore_index)
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1.0 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)
