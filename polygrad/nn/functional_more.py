"""More of torch.nn.functional: the pointwise activations (``leaky_relu`` ... ``glu``), the
normalisations (``layer_norm``, ``rms_norm``, ``group_norm``, ``instance_norm``,
``normalize``), distances, ``one_hot``,
``embedding``, ``pad`` and the losses beyond ``functional``'s (``smooth_l1_loss`` ...
``soft_margin_loss``). ``polygrad.nn.functional`` re-exports ``__all__``.

Each is a composition of the differentiable namespace's ops, written so that its gradient
is torch's at the edges too, where the calculus leaves a choice:

- a piecewise function is a ``where`` whose condition is torch's backward mask
  (``leaky_relu``: ``x > 0``, so at 0 the gradient is the negative slope; ``hardtanh``:
  0 on the bounds; ``softshrink``: 0 at ``|x| == lambd``);
- a branch that would overflow where it is not taken (``expm1`` of a large ``x`` in
  ``elu``) reads a safe input (``where(x > 0, 0, x)``), so no ``0 * inf`` reaches the
  gradient;
- a value clamped by torch under ``no_grad`` (``cosine_similarity``'s norms,
  ``gaussian_nll_loss``'s variance) is clamped here in value only: ``n + (clamp(n) - n)``
  with the difference detached.

Not here (yet): convolutions, pooling, ``interpolate`` and ``batch_norm``.
"""

from __future__ import annotations

import builtins
import math
import warnings

from ..graph.creation import arange
from ..graph.engine import apply
from ..graph.tensor import Tensor
from ..ops import array_api as _ops
from ..ops import linalg as _linalg
from ..ops import special as _special
from ..primitives import PRIMITIVES as P
from ..primitives.nn import REDUCTIONS

__all__ = [
    "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "hardtanh",
    "relu6", "hardswish", "hardsigmoid", "softsign", "tanhshrink", "softshrink",
    "hardshrink", "threshold", "logsigmoid", "glu", "normalize", "cosine_similarity",
    "pairwise_distance", "one_hot", "embedding", "pad", "layer_norm", "rms_norm", "group_norm",
    "instance_norm",
    "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "softmin", "prelu",
    "cosine_embedding_loss", "triplet_margin_loss",
    "leaky_relu_", "elu_", "celu_", "selu_", "hardtanh_", "threshold_",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ONE_SIXTH_F32 = 0.1666666716337204     # float32(1 / 6), as torch's hardsigmoid backward


def _reduction(reduction, size_average=None, reduce=None):
    if size_average is not None or reduce is not None:
        # torch's legacy flags, mapped as torch maps them
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction; use one of "
                         f"'none', 'mean' or 'sum'")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _out(input, result, inplace):
    return input.copy_(result) if inplace else result


def _float_input(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return input


# -- activations ------------------------------------------------------------------------------

def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where ``x > 0``, ``negative_slope * x`` elsewhere (the gradient at 0 is the
    slope, as torch's).

    >>> import polygrad
    >>> polygrad.nn.functional.leaky_relu(polygrad.tensor([-1.0, 2.0]), 0.1)
    tensor([-0.1000,  2.0000])
    """
    _float_input("leaky_relu", input)
    return _out(input, apply(P["leaky_relu"], input, negative_slope=negative_slope), inplace)


def _elu(input, alpha, scale, input_scale):
    # one node of torch's kernel (EluBackward0), differentiated by its backward op
    return apply(P["elu"], input, alpha=float(alpha), scale=float(scale),
                 input_scale=float(input_scale))


def elu(input, alpha=1.0, inplace=False):
    """``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.elu(polygrad.tensor([0.0, 1.0]))
    tensor([0., 1.])
    """
    _float_input("elu", input)
    return _out(input, _elu(input, alpha, 1.0, 1.0), inplace)


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with torch's constants.

    >>> import polygrad
    >>> polygrad.nn.functional.selu(polygrad.tensor([0.0]))
    tensor([0.])
    """
    _float_input("selu", input)
    return _out(input, _elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace)


def celu(input, alpha=1.0, inplace=False):
    """``x`` where ``x > 0``, ``alpha * (exp(x / alpha) - 1)`` elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.celu(polygrad.tensor([0.0]))
    tensor([0.])
    """
    _float_input("celu", input)
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _out(input, _elu(input, alpha, 1.0, 1.0 / alpha), inplace)


def gelu(input, approximate="none"):
    """``x * Phi(x)`` (``approximate="tanh"``: torch's tanh approximation).

    >>> import polygrad
    >>> polygrad.nn.functional.gelu(polygrad.tensor([0.0]))
    tensor([0.])
    """
    _float_input("gelu", input)
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return apply(P["gelu"], input, approximate=approximate)


def silu(input, inplace=False):
    """``x * sigmoid(x)``.

    >>> import polygrad
    >>> polygrad.nn.functional.silu(polygrad.tensor([0.0]))
    tensor([0.])
    """
    _float_input("silu", input)
    return _out(input, apply(P["silu"], input), inplace)


def _softplus1(x):
    return _ops.logaddexp(x, 0.0)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``.

    >>> import polygrad
    >>> polygrad.nn.functional.mish(polygrad.tensor([0.0]))
    tensor([0.])
    """
    _float_input("mish", input)
    return _out(input, apply(P["mish"], input), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.

    >>> import polygrad
    >>> polygrad.nn.functional.softplus(polygrad.tensor([0.0]))
    tensor([0.6931])
    """
    _float_input("softplus", input)
    # torch's kernels, x where beta x > threshold, and their gradients (one node)
    return apply(P["softplus"], input, beta=beta, threshold=threshold)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``input`` clamped to [min_val, max_val]; the gradient is 0 on and beyond the bounds
    and at NaN, as torch's (``clamp`` passes it on the bounds).

    >>> import polygrad
    >>> polygrad.nn.functional.hardtanh(polygrad.tensor([-2.0, 0.5]))
    tensor([-1.0000,  0.5000])
    """
    _float_input("hardtanh", input)
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # torch's backward mask is min_val < x < max_val: no gradient on the bounds nor at NaN
    return _out(input, apply(P["hardtanh"], input, min_val=min_val, max_val=max_val), inplace)


def relu6(input, inplace=False):
    """``hardtanh(x, 0, 6)`` (gradient 0 at 0 and at 6).

    >>> import polygrad
    >>> polygrad.nn.functional.relu6(polygrad.tensor([-1.0, 7.0]))
    tensor([0., 6.])
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``, differentiated as torch's (``x/3 + 1/2`` inside (-3, 3),
    0 at -3 and below, 1 at 3 and above).

    >>> import polygrad
    >>> polygrad.nn.functional.hardswish(polygrad.tensor([-4.0, 4.0]))
    tensor([-0., 4.])
    """
    _float_input("hardswish", input)
    return _out(input, apply(P["hardswish"], input), inplace)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``; the gradient is 1/6 strictly inside (-3, 3), 0 elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.hardsigmoid(polygrad.tensor([0.0]))
    tensor([0.5000])
    """
    _float_input("hardsigmoid", input)
    # torch's backward multiplies by the float literal 1.0f / 6.0f, in every dtype: the
    # middle piece is x / 6 + 1/2 in value and has that slope (x - x.detach() is 0 there)
    d = input.detach()
    mid = (d / 6.0 + 0.5) + (input - d) * _ONE_SIXTH_F32
    out = _ops.where(input <= -3.0, 0.0, _ops.where(input >= 3.0, 1.0, mid))
    return _out(input, out, inplace)


def softsign(input):
    """``x / (1 + |x|)``.

    >>> import polygrad
    >>> polygrad.nn.functional.softsign(polygrad.tensor([1.0]))
    tensor([0.5000])
    """
    return input / (1.0 + _ops.abs(input))


def tanhshrink(input):
    """``x - tanh(x)``.

    >>> import polygrad
    >>> polygrad.nn.functional.tanhshrink(polygrad.tensor([0.0]))
    tensor([0.])
    """
    return input - _ops.tanh(input)


def _check_lambd(lambd):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between (gradient 0
    at ``|x| == lambd``).

    >>> import polygrad
    >>> polygrad.nn.functional.softshrink(polygrad.tensor([1.0, 0.2]))
    tensor([0.5000, 0.0000])
    """
    _check_lambd(lambd)
    # torch's value is ``x * 0`` inside the band, so NaN stays NaN; its gradient there is 0
    # (torch's vectorized kernel: its scalar tail passes the gradient at NaN), and 0 even for
    # an infinite incoming one, hence the detached zero
    outside = _ops.abs(input) > lambd
    return _ops.where(outside, _ops.where(input > 0, input - lambd, input + lambd),
                      input.detach() * 0)


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, 0 elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.hardshrink(polygrad.tensor([1.0, 0.2]))
    tensor([1., 0.])
    """
    return _ops.where((input >= -lambd) & (input <= lambd), 0.0, input)


def threshold(input, threshold, value, inplace=False):
    """``value`` where ``x <= threshold``, ``x`` elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.threshold(polygrad.tensor([0.5, 2.0]), 1.0, 5.0)
    tensor([5., 2.])
    """
    return _out(input, _ops.where(input <= threshold, value, input), inplace)


def logsigmoid(input):
    """``log(sigmoid(x))``, computed as ``-softplus(-x)`` (stable for any ``x``).

    >>> import polygrad
    >>> polygrad.nn.functional.logsigmoid(polygrad.tensor([0.0]))
    tensor([-0.6931])
    """
    return -_softplus1(-input)


def glu(input, dim=-1):
    """``a * sigmoid(b)``, ``a`` and ``b`` the halves of ``input`` along ``dim``.

    >>> import polygrad
    >>> polygrad.nn.functional.glu(polygrad.tensor([2.0, 0.0]))
    tensor([1.])
    """
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.ndim
    n = input.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    head = (slice(None),) * d
    a, b = input[head + (slice(0, n // 2),)], input[head + (slice(n // 2, n),)]
    return a * apply(P["sigmoid"], b)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-input)`` along ``dim``.

    >>> import polygrad
    >>> polygrad.nn.functional.softmin(polygrad.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    if dtype is not None:
        input = input.astype(dtype)
    if dim is None:
        warnings.warn("Implicit dimension choice for softmin has been deprecated. Change the "
                      "call to include dim=X as an argument.", UserWarning, stacklevel=2)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return (-input).softmax(dim)


def prelu(input, weight):
    """``x`` where ``x > 0``, ``weight * x`` elsewhere; ``weight`` has one entry per channel
    (dimension 1) or a single one.

    >>> import polygrad
    >>> polygrad.nn.functional.prelu(polygrad.tensor([-1.0, 2.0]), polygrad.tensor([0.25]))
    tensor([-0.2500,  2.0000])
    """
    if weight.ndim > 1:
        raise RuntimeError("prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim}")
    n = weight.numel()
    if n != 1:
        channels = input.shape[1] if input.ndim >= 2 else (input.shape[0] if input.ndim else 1)
        if n != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {n} and channel size = {channels}.")
        if input.ndim >= 2:
            weight = weight.reshape((1, n) + (1,) * (input.ndim - 2))
    return _ops.where(input > 0, input, weight * input)


# the inplace spellings torch.nn.functional has
def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def selu_(input):
    return selu(input, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)


# -- normalisation and distances -------------------------------------------------------------

def _clamped_in_value(n, eps):
    """``max(n, eps)`` in value, ``n`` in gradient: torch clamps these under no_grad."""
    d = n.detach()
    return n + (_ops.clip(d, min=eps) - d)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``.

    >>> import polygrad
    >>> polygrad.nn.functional.normalize(polygrad.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    denom = input.norm(p, dim, True).clamp(min=eps)
    result = input / denom
    if out is not None:
        return out.copy_(result)
    return result


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between ``x1`` and ``x2`` along ``dim``, each norm at least
    ``eps`` (in value; as torch's, the gradient is the unclamped norm's).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.cosine_similarity(polygrad.tensor([[1.0, 0.0]]), polygrad.tensor([[1.0, 1.0]]))
    tensor([0.7071])
    """
    shape = _ops.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    if tuple(x1.shape) != shape:
        x1 = _ops.broadcast_to(x1, shape)
    if tuple(x2.shape) != shape:
        x2 = _ops.broadcast_to(x2, shape)
    n1 = _clamped_in_value(_linalg.vector_norm(x1, axis=dim, keepdims=True), eps)
    n2 = _clamped_in_value(_linalg.vector_norm(x2, axis=dim, keepdims=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` along the last dimension.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.pairwise_distance(polygrad.tensor([[3.0, 4.0]]), polygrad.zeros(1, 2), eps=0.0)
    tensor([5.])
    """
    last = builtins.max(x1.ndim, x2.ndim) - 1
    return (x1 - x2 + eps).norm(p, last, keepdim)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last
    ``len(normalized_shape)`` dimensions (the biased variance, as torch's).

    >>> import polygrad
    >>> polygrad.nn.functional.layer_norm(polygrad.tensor([[1.0, 3.0]]), (2,))
    tensor([[-1.0000,  1.0000]])
    """
    dims = _norm_dims("layer_norm", input, normalized_shape)
    # one node, differentiated by torch's kernel's formula (see polygrad.primitives.nn)
    out = apply(P["layer_norm"], input, axes=dims, eps=eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last ``len(normalized_shape)``
    dimensions (``eps`` the dtype's machine epsilon by default, as torch's).

    >>> import polygrad
    >>> polygrad.nn.functional.rms_norm(polygrad.tensor([[3.0, 4.0]]), (2,), eps=0.0)
    tensor([[0.8485, 1.1314]])
    """
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    if input.ndim < k:
        raise ValueError(f"Input tensor must have at least {k} dimensions, but got "
                         f"{input.ndim}")
    dims = _norm_dims("rms_norm", input, normalized_shape)
    if eps is None:
        eps = _ops.finfo(input.dtype).eps
    out = input * _ops.reciprocal(_ops.sqrt((input * input).mean(dims, True) + eps))
    return out if weight is None else out * weight


def _per_channel(t, input):
    return t.reshape((1, -1) + (1,) * (input.ndim - 2))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of ``num_groups`` groups of channels of each sample (input ``(N, C,
    *)``), then scale and shift per channel.

    >>> import polygrad
    >>> polygrad.nn.functional.group_norm(polygrad.tensor([[1.0, 3.0]]), 1)
    tensor([[-1.0000,  1.0000]])
    """
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, True)
    var = x.var(-1, keepdim=True, correction=0)
    out = ((x - mean) * _ops.reciprocal(_ops.sqrt(var + eps))).reshape(tuple(input.shape))
    if weight is not None:
        out = out * _per_channel(weight, input)
    if bias is not None:
        out = out + _per_channel(bias, input)
    return out


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its spatial dimensions (input ``(N, C,
    *)``); with running statistics, update them in place (the batch's mean of the
    per-instance means and unbiased variances, as torch's), or normalise with them when
    ``use_input_stats`` is False.

    >>> import polygrad
    >>> polygrad.nn.functional.instance_norm(polygrad.tensor([[[1.0, 3.0]]]))
    tensor([[[-1.0000,  1.0000]]])
    """
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or higher input (got {input.ndim}D input)")
    spatial = tuple(range(2, input.ndim))
    count = math.prod(input.shape[2:])
    if use_input_stats:
        if count <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input "
                             f"size {list(input.shape)}")
        mean = input.mean(spatial, True)
        var = input.var(spatial, keepdim=True, correction=0)
        if running_mean is not None or running_var is not None:
            _update_running(input, mean, var, count, running_mean, running_var, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when "
                             "use_input_stats is false")
        mean, var = _per_channel(running_mean, input), _per_channel(running_var, input)
    out = (input - mean) * _ops.reciprocal(_ops.sqrt(var + eps))
    if weight is not None:
        out = out * _per_channel(weight, input)
    if bias is not None:
        out = out + _per_channel(bias, input)
    return out


def _update_running(input, mean, var, count, running_mean, running_var, momentum):
    # torch's: the per-instance statistics (the variance unbiased) averaged over the batch,
    # blended into the running ones in place, outside autograd
    n, c = input.shape[0], input.shape[1]
    if running_mean is not None:
        batch = mean.detach().reshape(n, c).mean(0)
        running_mean.data = running_mean.detach() * (1.0 - momentum) + batch * momentum
    if running_var is not None:
        batch = var.detach().reshape(n, c).mean(0) * (count / (count - 1))
        running_var.data = running_var.detach() * (1.0 - momentum) + batch * momentum


def _norm_dims(name, input, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in shape)}], but got input of size"
                           f"{list(input.shape)}")
    return tuple(range(input.ndim - k, input.ndim))


# -- indices: one_hot, embedding ------------------------------------------------------------

def one_hot(tensor, num_classes=-1):
    """``tensor``'s class indices as int64 one-hot vectors along a new last dimension.

    >>> import polygrad
    >>> polygrad.nn.functional.one_hot(polygrad.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    if tensor.dtype.name != "int64":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(tensor.max()) + 1
    if tensor.numel():
        if builtins.bool((tensor < 0).any()):
            raise RuntimeError("Class values must be non-negative.")
        if builtins.bool((tensor >= num_classes).any()):
            raise RuntimeError("Class values must be smaller than num_classes.")
    classes = arange(num_classes, backend=tensor._backend, device=tensor.device,
                     dtype=tensor.dtype)
    return (_ops.expand_dims(tensor, axis=-1) == classes).astype(tensor.dtype)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """The rows of ``weight`` at the indices ``input``; the row ``padding_idx`` gets no
    gradient; ``max_norm`` renormalises the rows looked up, in place, as torch's.

    >>> import polygrad
    >>> polygrad.nn.functional.embedding(polygrad.tensor([1]), polygrad.eye(2))
    tensor([[0., 1.]])
    """
    if input.dtype.name not in ("int64", "int32"):
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got {input.dtype.name} "
                           f"instead (while checking arguments for embedding)")
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding(): scale_grad_by_freq and sparse gradients are "
                                  "not supported")
    if input.numel() and builtins.bool(((input < 0) | (input >= n)).any()):
        raise IndexError("index out of range in self")
    flat = input.reshape(-1)
    if max_norm is not None:
        _renorm_rows(weight, flat, max_norm, norm_type)
    rows = _ops.take(weight, flat, axis=0)
    if padding_idx is not None:
        rows = _ops.where(_ops.expand_dims(flat == padding_idx, axis=-1), rows.detach(), rows)
    return rows.reshape(tuple(input.shape) + (weight.shape[1],))


def _renorm_rows(weight, flat, max_norm, norm_type):
    # torch's embedding_renorm_: each looked-up row whose norm exceeds max_norm is scaled to
    # max_norm / (norm + 1e-7), in place and outside autograd
    from_graph = weight.detach()
    norms = _linalg.vector_norm(from_graph, ord=norm_type, axis=1, keepdims=True)
    rows = _ops.arange(weight.shape[0], dtype=flat.dtype, device=weight.device)
    used = _ops.any(_ops.expand_dims(flat, axis=1) == rows, axis=0)
    scale = _ops.where(_ops.expand_dims(used, axis=1) & (norms > max_norm),
                       max_norm / (norms + 1e-7), 1.0)
    weight.data = from_graph * scale.astype(weight.dtype)


# -- pad -----------------------------------------------------------------------------------------

def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions (``pad`` is (left, right) from the last
    dimension back; negative values crop). Modes: "constant" (``value``, 0 by default),
    "reflect", "replicate", "circular".

    >>> import polygrad
    >>> polygrad.nn.functional.pad(polygrad.tensor([1.0, 2.0]), (1, 2))
    tensor([0., 1., 2., 0., 0.])
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(pad) // 2
    if k > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the "
                           "input dimension but got padding length "
                           f"{len(pad)} and input of dimension {input.ndim}")
    if mode == "constant":
        return _pad_constant(input, pad, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument.")
    if k > 3 or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError("Only 2D, 3D, 4D, 5D padding with non-constant padding are "
                                  "supported for now")
    out = input
    for i in range(k):
        d = input.ndim - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        n = out.shape[d]
        if mode == "reflect" and (left >= n or right >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the "
                               f"corresponding input dimension, but got: padding ({left}, "
                               f"{right}) at dimension {d} of input {list(input.shape)}")
        if mode == "circular" and (left > n or right > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        pos = list(range(-left, n + right))
        if mode == "reflect":
            pos = [(n - 1) - builtins.abs((n - 1) - builtins.abs(j)) for j in pos]
        elif mode == "replicate":
            pos = [builtins.min(builtins.max(j, 0), n - 1) for j in pos]
        else:   # torch crops a negative side first and wraps within what is left
            lo, m = builtins.max(-left, 0), n - builtins.max(-left, 0) - builtins.max(-right, 0)
            pos = [lo + (j - lo) % m for j in pos] if m > 0 else pos
        idx = _ops.asarray(pos, dtype="int64", device=input.device)
        out = _ops.take(out, idx, axis=d)
    return out


def _pad_constant(input, pad, value):
    out = input
    for i in range(len(pad) // 2):
        d = input.ndim - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        n = out.shape[d]
        start, stop = builtins.max(-left, 0), n - builtins.max(-right, 0)
        if start or stop != n:
            if stop < start:
                raise RuntimeError(f"The input size {n}, plus negative padding {left} and "
                                   f"{right} resulted in a negative output size, which is "
                                   f"invalid. Check dimension {d} of your input.")
            out = out[(slice(None),) * d + (slice(start, stop),)]
        parts = []
        for width in (builtins.max(left, 0), builtins.max(right, 0)):
            shape = list(out.shape)
            shape[d] = width
            parts.append(_ops.full(tuple(shape), value, dtype=out.dtype, device=out.device)
                         if width else None)
        if parts[0] is not None or parts[1] is not None:
            out = _ops.concat([p for p in (parts[0], out, parts[1]) if p is not None], axis=d)
    return out


# -- losses ----------------------------------------------------------------------------------

def _warn_size(input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            f"broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=3)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, ``|d| - 0.5 beta`` elsewhere (``d`` the
    difference); ``beta == 0`` is the L1 loss.

    >>> import polygrad
    >>> polygrad.nn.functional.smooth_l1_loss(polygrad.tensor([0.5, 3.0]), polygrad.zeros(2))
    tensor(1.3125)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_size(input, target)
    if beta == 0:       # torch's l1_loss: abs, then the reduction (their nodes)
        return _reduce(_ops.abs(input - target), reduction)
    # torch's kernels (one node, SmoothL1LossBackward0) and their double backward
    return apply(P["smooth_l1_loss"], input, target, reduction=reduction, beta=beta)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d^2`` where ``|d| < delta``, ``delta (|d| - 0.5 delta)`` elsewhere.

    >>> import polygrad
    >>> polygrad.nn.functional.huber_loss(polygrad.tensor([0.5, 3.0]), polygrad.zeros(2))
    tensor(1.3125)
    """
    reduction = _reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _warn_size(input, target)
    if weight is None:      # torch's kernels (one node, HuberLossBackward0)
        return apply(P["huber_loss"], input, target, reduction=reduction, delta=delta)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    # torch's: the unreduced loss times the weight, then the reduction
    loss = apply(P["huber_loss"], input, target, reduction="none", delta=delta)
    return _reduce(loss * weight, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    """The Kullback-Leibler divergence of ``target`` from ``input`` (log-probabilities):
    ``target * (log(target) - input)``, 0 where ``target`` is 0; "batchmean" divides the
    sum by the batch size.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.kl_div(polygrad.tensor([0.0]), polygrad.tensor([1.0]), reduction="sum")
    tensor(0.)
    """
    if reduction == "batchmean":
        reduction_enum = "sum"
    else:
        reduction_enum = _reduction(reduction, size_average, reduce)
        if reduction_enum == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size "
                          "and the support size.'batchmean' divides only by the batch size, "
                          "and aligns with the KL div math definition.'mean' will be changed "
                          "to behave the same as 'batchmean' in the next major release.",
                          UserWarning, stacklevel=2)
    if log_target:
        loss = _ops.exp(target) * (target - input)
    else:
        loss = _special.xlogy(target, target) - target * input
    out = _reduce(loss, reduction_enum)
    if reduction == "batchmean" and input.ndim != 0:
        out = out / input.shape[0]
    return out


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """The negative log likelihood of ``target`` under a Poisson of rate ``exp(input)``
    (``log_input=False``: rate ``input``); ``full`` adds Stirling's term where target > 1.

    >>> import polygrad
    >>> polygrad.nn.functional.poisson_nll_loss(polygrad.tensor([0.0]), polygrad.tensor([1.0]))
    tensor(1.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if log_input:
        loss = _ops.exp(input) - target * input
    else:
        loss = input - target * _ops.log(input + eps)
    if full:
        stirling = target * _ops.log(target) - target + 0.5 * _ops.log(2.0 * math.pi * target)
        loss = loss + _ops.where(target <= 1, 0.0, stirling)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """The negative log likelihood of ``target`` under a Gaussian of mean ``input`` and
    variance ``var`` (clamped to ``eps`` in value, as torch's).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.gaussian_nll_loss(polygrad.tensor([0.0]), polygrad.tensor([2.0]), polygrad.ones(1))
    tensor(2.)
    """
    if not isinstance(var, Tensor):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = _ops.full(tuple(input.shape), float(var), dtype=input.dtype, device=input.device)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = _ops.expand_dims(var, axis=-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in REDUCTIONS:
        raise ValueError(reduction + " is not valid")
    if builtins.bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = _clamped_in_value(var, eps)
    d = input - target
    loss = 0.5 * (_ops.log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2.0 * math.pi)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)`` (the gradient passes at 0, as
    torch's clamp_min).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.margin_ranking_loss(polygrad.tensor([1.0]), polygrad.tensor([2.0]), polygrad.ones(1))
    tensor(1.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same "
                           f"dimension but got sizes: input1: {input1.shape}, input2: "
                           f"{input2.shape}, target: {target.shape} ")
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``x`` where ``target == 1``, ``max(0, margin - x)`` where ``target == -1``.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.hinge_embedding_loss(polygrad.tensor([0.3, 2.0]), polygrad.tensor([-1.0, 1.0]))
    tensor(1.3500)
    """
    reduction = _reduction(reduction, size_average, reduce)
    zeros = 0.0
    margin_clamp = (margin - input).clamp(min=0)
    loss = _ops.where(target != 1, margin_clamp, zeros) + _ops.where(target != -1, input, zeros)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-target * input))``, as torch computes it.

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.soft_margin_loss(polygrad.tensor([0.0]), polygrad.tensor([1.0]))
    tensor(0.6931)
    """
    reduction = _reduction(reduction, size_average, reduce)
    return _reduce(_ops.log1p(_ops.exp(-input * target)), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1``, cos computed as torch's (squared norms plus 1e-12).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.cosine_embedding_loss(polygrad.tensor([[1.0, 0.0]]), polygrad.tensor([[0.0, 1.0]]),
    ...                         polygrad.tensor([1.0]))
    tensor(1.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if input1.ndim != input2.ndim or tuple(input1.shape) != tuple(input2.shape):
        raise RuntimeError(f"cosine_embedding_loss : All input tensors should have same "
                           f"dimension but got sizes: input1: {input1.shape}, input2: "
                           f"{input2.shape}, target: {target.shape} ")
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + 1e-12
    mag2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / _ops.sqrt(mag1 * mag2)
    pos = _ops.where(target == 1, 1.0 - cos, 0.0)
    neg = _ops.where(target == -1, (cos - margin).clamp(min=0), 0.0)
    return _reduce(pos + neg, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))``, ``d`` the
    ``pairwise_distance`` (``swap``: the smaller of d(a, n) and d(p, n)).

    >>> import polygrad
    >>> F = polygrad.nn.functional
    >>> F.triplet_margin_loss(polygrad.zeros(1, 2), polygrad.zeros(1, 2), polygrad.ones(1, 2),
    ...                       eps=0.0)
    tensor(0.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    if margin <= 0:
        raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got "
                         f"{margin} instead")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = _ops.minimum(d_neg, d_swap)
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)
