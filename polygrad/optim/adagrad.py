"""Adagrad (with learning-rate decay, weight decay and maximize): torch's update rule."""

from __future__ import annotations

from ..graph.creation import full_like
from .optimizer import Optimizer, check_hyper

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, with torch.optim.Adagrad's options and exact formulas (dense gradients).

    As torch's, it makes every parameter's state when built, so ``state_dict()`` holds
    it before the first step.

    >>> import polygrad
    >>> w = polygrad.nn.Parameter(polygrad.tensor([1.0]))
    >>> opt = polygrad.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.detach()
    tensor([0.9000])
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        check_hyper(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check_hyper(initial_accumulator_value >= 0.0,
                    f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)

    def _init_state(self, p, group):
        return {"step": 0, "sum": full_like(p, group["initial_accumulator_value"])}

    def _step_scalars(self, p, group, state):
        """``(-clr,)``, the decayed learning rate at ``p``'s step count, handed to the array
        ops as it is (a hook for ``polygrad.compile``, see ``Adam._step_scalars``)."""
        return (-(group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])),)

    def _update(self, p, g, group, state):
        state["step"] += 1
        (neg_clr,) = self._step_scalars(p, group, state)
        state["sum"].addcmul_(g, g, value=1)
        std = state["sum"].sqrt() + group["eps"]
        p.addcdiv_(g, std, value=neg_clr)
