"""RMSprop (with momentum, centering, weight decay and maximize): torch's update rule."""

from __future__ import annotations

from ..graph.creation import zeros_like
from .optimizer import Optimizer, check_hyper

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, with torch.optim.RMSprop's options and exact formulas (its single-tensor path).

    >>> import polygrad
    >>> w = polygrad.nn.Parameter(polygrad.tensor([1.0]))
    >>> opt = polygrad.optim.RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward(); opt.step(); w.detach()
    tensor([0.9000])
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check_hyper(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like(p)
        return state

    def _step_scalars(self, p, group, state):
        """No number of the update depends on the step count (a hook for
        ``polygrad.compile``, see ``Adam._step_scalars``: a compiled step may replay)."""
        return ()

    def _update(self, p, g, group, state):
        alpha = group["alpha"]
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(g, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()     # torch: addcmul(value=-1)
        else:
            avg = square_avg.sqrt()
        avg = avg + group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(g, avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(g, avg, value=-group["lr"])
