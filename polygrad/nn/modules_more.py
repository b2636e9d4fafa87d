"""The Modules over ``functional_more``: the activations (``LeakyReLU`` ... ``GLU``),
``CosineSimilarity``, ``PairwiseDistance``, ``Embedding``, ``LayerNorm``, ``RMSNorm`` and
the losses (``SmoothL1Loss`` ... ``SoftMarginLoss``). Each is a thin Module over its
functional form; parameters are initialised and reprs written as torch's.
"""

from __future__ import annotations

from ..graph.creation import empty
from . import functional_more as F
from . import init
from . import init as _init
from .module import Module
from .modules import _Loss
from .parameter import Parameter

__all__ = [
    "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus", "Hardtanh",
    "ReLU6", "Hardswish", "Hardsigmoid", "Softsign", "Tanhshrink", "Softshrink", "Hardshrink",
    "Threshold", "LogSigmoid", "GLU", "CosineSimilarity", "PairwiseDistance", "Embedding",
    "LayerNorm", "RMSNorm", "GroupNorm", "SmoothL1Loss", "HuberLoss", "KLDivLoss", "PoissonNLLLoss",
    "GaussianNLLLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss",
    "Softmin", "PReLU", "CosineEmbeddingLoss", "TripletMarginLoss", "ZeroPad1d", "ZeroPad2d",
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
    "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
]


def _inplace(inplace, lead=""):
    return (lead + "inplace=True") if inplace else ""


class _Pointwise(Module):
    """An activation without parameters: ``fn(input, **options)``."""

    fn = None
    options: tuple = ()

    def forward(self, input):
        return type(self).fn(input, **{k: getattr(self, k) for k in self.options})


class LeakyReLU(_Pointwise):
    """``x`` where ``x > 0``, ``negative_slope * x`` elsewhere.

    >>> import polygrad
    >>> polygrad.nn.LeakyReLU(0.1)(polygrad.tensor([-1.0]))
    tensor([-0.1000])
    """

    fn = staticmethod(F.leaky_relu)
    options = ("negative_slope", "inplace")

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + _inplace(self.inplace, ", ")


class ELU(_Pointwise):
    """``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere."""

    fn = staticmethod(F.elu)
    options = ("alpha", "inplace")

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace(self.inplace, ", ")


class CELU(ELU):
    """``x`` where ``x > 0``, ``alpha * (exp(x / alpha) - 1)`` elsewhere."""

    fn = staticmethod(F.celu)


class SELU(_Pointwise):
    """``scale * elu(x, alpha)`` with torch's constants."""

    fn = staticmethod(F.selu)
    options = ("inplace",)

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return _inplace(self.inplace)


class SiLU(SELU):
    """``x * sigmoid(x)``."""

    fn = staticmethod(F.silu)


class Mish(SELU):
    """``x * tanh(softplus(x))``."""

    fn = staticmethod(F.mish)


class Hardswish(SELU):
    """``x * relu6(x + 3) / 6``."""

    fn = staticmethod(F.hardswish)


class Hardsigmoid(SELU):
    """``relu6(x + 3) / 6``."""

    fn = staticmethod(F.hardsigmoid)


class GELU(_Pointwise):
    """``x * Phi(x)`` (``approximate="tanh"``: the tanh approximation)."""

    fn = staticmethod(F.gelu)
    options = ("approximate",)

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(_Pointwise):
    """``log(1 + exp(beta x)) / beta`` (``x`` where ``beta x > threshold``)."""

    fn = staticmethod(F.softplus)
    options = ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(_Pointwise):
    """``x`` clamped to [min_val, max_val] (gradient 0 on the bounds)."""

    fn = staticmethod(F.hardtanh)
    options = ("min_val", "max_val", "inplace")

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace
        if min_val > max_val:
            raise ValueError("min_val cannot be greater than max_val")

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace(self.inplace, ", ")


class ReLU6(Hardtanh):
    """``hardtanh(x, 0, 6)``."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace(self.inplace)


class Softsign(_Pointwise):
    """``x / (1 + |x|)``."""

    fn = staticmethod(F.softsign)


class Tanhshrink(_Pointwise):
    """``x - tanh(x)``."""

    fn = staticmethod(F.tanhshrink)


class LogSigmoid(_Pointwise):
    """``log(sigmoid(x))``."""

    fn = staticmethod(F.logsigmoid)


class Softshrink(_Pointwise):
    """``x -/+ lambd`` outside [-lambd, lambd], 0 inside."""

    fn = staticmethod(F.softshrink)
    options = ("lambd",)

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Softshrink):
    """``x`` outside [-lambd, lambd], 0 inside."""

    fn = staticmethod(F.hardshrink)


class Threshold(_Pointwise):
    """``value`` where ``x <= threshold``, ``x`` elsewhere."""

    fn = staticmethod(F.threshold)
    options = ("threshold", "value", "inplace")

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + _inplace(self.inplace, ", ")


class GLU(_Pointwise):
    """``a * sigmoid(b)`` over the halves of ``dim``."""

    fn = staticmethod(F.glu)
    options = ("dim",)

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x)`` along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmin(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class PReLU(Module):
    """``x`` where ``x > 0``, ``weight * x`` elsewhere, ``weight`` learnt (``num_parameters``
    entries, all ``init``).

    >>> import polygrad
    >>> polygrad.nn.PReLU()
    PReLU(num_parameters=1)
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None, *, backend=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, device=device, dtype=dtype,
                                      backend=backend))
        self.reset_parameters()

    def reset_parameters(self):
        _init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class _Pad(Module):
    """``pad`` with a fixed ``padding`` (an int: that on every side) and ``mode``."""

    mode = "constant"
    sides = 2

    def __init__(self, padding, value=None):
        super().__init__()
        self.padding = (padding,) * self.sides if isinstance(padding, int) else \
            tuple(padding)
        if value is not None:
            self.value = value

    def forward(self, input):
        if self.mode == "constant":
            return F.pad(input, self.padding, "constant", getattr(self, "value", 0.0))
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        if self.mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ZeroPad1d(_Pad):
    """Zero padding of the last dimension."""

    def __init__(self, padding):
        super().__init__(padding)
        self.value = 0.0

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ZeroPad1d):
    """Zero padding of the last two dimensions."""

    sides = 4


class ConstantPad1d(_Pad):
    """Padding of the last dimension with ``value``."""

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad2d(ConstantPad1d):
    """Padding of the last two dimensions with ``value``."""

    sides = 4


class ConstantPad3d(ConstantPad1d):
    """Padding of the last three dimensions with ``value``."""

    sides = 6


class ReflectionPad1d(_Pad):
    """Reflection padding of the last dimension."""

    mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Reflection padding of the last two dimensions."""

    sides = 4


class ReplicationPad1d(_Pad):
    """Replication padding of the last dimension."""

    mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Replication padding of the last two dimensions."""

    sides = 4


class CircularPad1d(_Pad):
    """Circular padding of the last dimension."""

    mode = "circular"


class CircularPad2d(CircularPad1d):
    """Circular padding of the last two dimensions."""

    sides = 4


class CosineSimilarity(Module):
    """The cosine similarity of two inputs along ``dim``."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` along the last dimension."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors, initialised from N(0, 1) (the
    ``padding_idx`` row zero), as torch's.

    >>> import polygrad
    >>> polygrad.nn.Embedding(10, 3)
    Embedding(10, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None, *, backend=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, device=device,
                                          dtype=dtype, backend=backend),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and "
                                     "embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm,
                           self.norm_type, self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s


def _shape(normalized_shape):
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(normalized_shape)


class LayerNorm(Module):
    """Layer normalisation over the last ``len(normalized_shape)`` dimensions, with a
    learnt scale (ones) and shift (zeros).

    >>> import polygrad
    >>> polygrad.nn.LayerNorm(4)
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None, *, backend=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        kw = {"device": device, "dtype": dtype, "backend": backend}
        if elementwise_affine:
            self.weight = Parameter(empty(*self.normalized_shape, **kw))
            if bias:
                self.bias = Parameter(empty(*self.normalized_shape, **kw))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the last ``len(normalized_shape)`` dimensions,
    with a learnt scale (ones).

    >>> import polygrad
    >>> polygrad.nn.RMSNorm(4)
    RMSNorm((4,), eps=None, elementwise_affine=True)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None, *, backend=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty(*self.normalized_shape, device=device, dtype=dtype,
                                          backend=backend))
            init.ones_(self.weight)
        else:
            self.register_parameter("weight", None)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Group normalisation of ``num_channels`` channels in ``num_groups`` groups, with a
    learnt per-channel scale (ones) and shift (zeros).

    >>> import polygrad
    >>> polygrad.nn.GroupNorm(2, 4)
    GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, bias=True, device=None,
                 dtype=None, *, backend=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        kw = {"device": device, "dtype": dtype, "backend": backend}
        if affine:
            self.weight = Parameter(empty(num_channels, **kw))
            init.ones_(self.weight)
            if bias:
                self.bias = Parameter(empty(num_channels, **kw))
                init.zeros_(self.bias)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


# -- losses ----------------------------------------------------------------------------------

class SmoothL1Loss(_Loss):
    """``smooth_l1_loss`` with ``beta``."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """``huber_loss`` with ``delta``."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(Module):
    """``kl_div`` (``reduction`` may also be "batchmean")."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__()
        self.reduction = reduction if reduction == "batchmean" else \
            F._reduction(reduction, size_average, reduce)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """``poisson_nll_loss``."""

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                  eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """``gaussian_nll_loss``."""

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                   reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """``margin_ranking_loss``."""

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``hinge_embedding_loss``."""

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return F.hinge_embedding_loss(input, target, margin=self.margin,
                                      reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``soft_margin_loss``."""

    def forward(self, input, target):
        return F.soft_margin_loss(input, target, reduction=self.reduction)



class CosineEmbeddingLoss(_Loss):
    """``cosine_embedding_loss``."""

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``triplet_margin_loss``."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got "
                             f"{margin} instead")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)
