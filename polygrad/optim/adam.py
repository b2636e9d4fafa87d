"""Adam (with amsgrad, weight decay, decoupled weight decay and maximize): torch's update rule."""

from __future__ import annotations

import math

from ..graph.creation import zeros_like
from ..ops import maximum
from .optimizer import Optimizer, check_hyper

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, with torch.optim.Adam's options and exact formulas (its single-tensor path).

    >>> import polygrad
    >>> w = polygrad.nn.Parameter(polygrad.tensor([1.0]))
    >>> opt = polygrad.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.detach()
    tensor([0.9000])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        check_hyper(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check_hyper(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(p)
        return state

    def _step_scalars(self, p, group, state):
        """The Python numbers of ``p``'s update that depend on its step count:
        ``(-step_size, sqrt(1 - beta2 ** step))``, each handed to the array ops as it is.

        A hook for ``polygrad.compile``: a compiled training step replays the array ops
        and calls this again on every replay (after the step count's increment), so these
        numbers are the program's inputs rather than constants of one step."""
        lr, (beta1, beta2) = group["lr"], group["betas"]
        step = state["step"]
        return -(lr / (1 - beta1 ** step)), math.sqrt(1 - beta2 ** step)

    def _update(self, p, g, group, state):
        (beta1, beta2), eps = group["betas"], group["eps"]
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        neg_step_size, bias_correction2_sqrt = self._step_scalars(p, group, state)
        if group["amsgrad"]:
            state["max_exp_avg_sq"].copy_(maximum(state["max_exp_avg_sq"], exp_avg_sq))
            denom = state["max_exp_avg_sq"].sqrt() / bias_correction2_sqrt + eps
        else:
            denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
        p.addcdiv_(exp_avg, denom, value=neg_step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
