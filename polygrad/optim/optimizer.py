"""The Optimizer base class: parameter groups, per-parameter state, state_dict, zero_grad,
and the ``step`` template every built-in optimizer shares.

``step`` owns the loop: groups, parameters without a gradient skipped, ``maximize``,
weight decay (coupled, or decoupled as AdamW's), ``no_grad``. A subclass (``sgd``,
``adam``, ``rmsprop``, ``adagrad``) writes only its update rule: ``_init_state`` and
``_update``. The bookkeeping follows torch.optim.Optimizer so that a training loop
ports unchanged. Updates write parameters in place.
"""

from __future__ import annotations

import copy

from ..base import grad_mode
from ..graph.tensor import Tensor
from ..nn.module import _zero_grad

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _typename(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def check_hyper(ok, message):
    """Raise ValueError(message) unless ``ok`` (hyperparameter checks, worded as torch's)."""
    if not ok:
        raise ValueError(message)


class Optimizer:
    """Base class of optimizers: holds ``param_groups`` (a list of dicts) and ``state``.

    >>> import polygrad
    >>> w = polygrad.nn.Parameter(polygrad.ones(2))
    >>> opt = polygrad.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w
    Parameter containing:
    tensor([0.8000, 0.8000], requires_grad=True)
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}; pass [tensor] or "
                            f"model.parameters()")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list; pass the parameters to "
                             "optimize, e.g. model.parameters()")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (missing ones default)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some "
                                 "param names are missing")
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {_typename(p)}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor; optimize the leaves it was "
                                 "computed from, or x.detach().requires_grad_()")
        param_group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none=True):
        """Reset gradients: to None (the default) or, with ``set_to_none=False``, to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                _zero_grad(p, set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns the closure's loss.

        The gradient handed to ``_update`` is negated under ``maximize`` and carries
        coupled weight decay (``g + weight_decay * p``); with ``decoupled_weight_decay``
        the parameter is shrunk by ``1 - lr * weight_decay`` instead. That is the
        order torch's single-tensor implementations use.
        """
        loss = self._closure_loss(closure)
        with grad_mode.no_grad():
            for group in self.param_groups:
                weight_decay = group.get("weight_decay", 0)
                decoupled = group.get("decoupled_weight_decay", False)
                for p in group["params"]:
                    g = p._grad
                    if g is None:
                        continue
                    if group.get("maximize", False):
                        g = -g
                    if weight_decay != 0:
                        if decoupled:
                            p.mul_(1 - group["lr"] * weight_decay)
                        else:
                            g = g + p * weight_decay
                    state = self.state.get(p)
                    if state is None:
                        state = self._init_state(p, group)
                        if state is not None:
                            self.state[p] = state
                    self._update(p, g, group, state)
        return loss

    def _init_state(self, p, group):
        """The new state of ``p`` before its first update (None keeps no state, as SGD
        without momentum)."""
        return {}

    def _update(self, p, g, group, state):
        """Update ``p`` in place from its gradient ``g`` (the update rule; subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither step() nor "
                                  f"_update()")

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with grad_mode.enable_grad():
            return closure()

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are replaced by their position across groups, as torch does.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict()``.

        The groups must match in number and size; nothing changes when they do not.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than this optimizer "
                             f"({len(self.param_groups)})")
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group ({len(saved['params'])} "
                                 f"parameters saved, {len(group['params'])} here)")
        id_map = {}
        for saved, group in zip(saved_groups, self.param_groups):
            id_map.update(zip(saved["params"], group["params"]))
        state = {}
        for key, value in state_dict["state"].items():
            p = id_map.get(key)
            if p is None:
                continue
            state[p] = {k: _cast_state(k, v, p) for k, v in value.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                new["param_names"] = group["param_names"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(key, value, p):
    """A copy of a saved state value on the parameter's backend and device (and dtype)."""
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    with grad_mode.no_grad():
        dtype = p.dtype if value.dtype.is_floating_point else None
        out = value.to(p.backend, device=p.device, dtype=dtype)
        return out.clone() if out is value else out
