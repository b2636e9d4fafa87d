"""Module: the base class of polygrad.nn layers, with torch.nn.Module's API.

It owns registration (parameters, buffers, submodules assigned as attributes),
traversal (``parameters``, ``named_modules`` ...), forward and forward-pre hooks, train/eval,
``zero_grad``, ``state_dict`` / ``load_state_dict``, moving (``to``) and torch's repr. Concrete
layers are in ``polygrad.nn.modules``.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, namedtuple

from ..base import grad_mode
from ..graph.creation import asarray
from ..graph.tensor import Tensor
from ..ops.transfer import parse_to_args
from .parameter import Parameter

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(s, num_spaces):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join(num_spaces * " " + line for line in lines)


class Module:
    """Base class for layers and models: subclass it, assign layers in ``__init__``,
    write ``forward``.

    >>> import polygrad
    >>> class Net(polygrad.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = polygrad.nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> [name for name, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; "
                            f"Module.__init__() takes none")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", OrderedDict())
        # torch's names, so code that inspects them (``if m._forward_hooks:``) still runs
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", OrderedDict())
        setattr_(self, "_forward_hooks_always_called", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function')

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if not (d.get("_forward_pre_hooks") or d.get("_forward_hooks")):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args, kwargs):
        # torch's order and return conventions: a pre-hook may replace the arguments (a
        # non-tuple result becomes a 1-tuple), a forward hook may replace the output
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        called = set()
        try:
            output = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    result = hook(self, args, kwargs, output)
                else:
                    result = hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:       # noqa: BLE001 - the forward's error is the one to see
                        pass
            raise
        return output

    # -- hooks --------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call ``hook(module, args)`` before each forward; it may return new args.

        With ``with_kwargs=True`` it is ``hook(module, args, kwargs)`` and may return
        ``(args, kwargs)``. The handle's ``remove()`` takes it off again.

        >>> import polygrad
        >>> lin = polygrad.nn.Linear(2, 2)
        >>> handle = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
        >>> float(lin(polygrad.ones(2)).sum()) == float(lin.bias.sum())
        True
        >>> handle.remove()
        """
        handle = RemovableHandle(self._forward_pre_hooks,
                                 extra_dict=self._forward_pre_hooks_with_kwargs)
        _add_hook(self._forward_pre_hooks, handle.id, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """Call ``hook(module, args, output)`` after each forward; it may return a new output.

        With ``with_kwargs=True`` it is ``hook(module, args, kwargs, output)``; with
        ``always_call=True`` it also runs (with output None) when forward raises.

        >>> import polygrad
        >>> relu = polygrad.nn.ReLU()
        >>> handle = relu.register_forward_hook(lambda m, args, out: out + 1)
        >>> relu(polygrad.tensor([-1.0]))
        tensor([1.])
        >>> handle.remove()
        """
        handle = RemovableHandle(self._forward_hooks,
                                 extra_dict=[self._forward_hooks_with_kwargs,
                                             self._forward_hooks_always_called])
        _add_hook(self._forward_hooks, handle.id, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        return handle

    # -- registration -------------------------------------------------------------------------
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")

    def register_parameter(self, name, param):
        """Add a parameter (or None) under ``name``."""
        self._check_init("parameters")
        _check_name(self, name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (polygrad.nn.Parameter or None required)")
        if param is not None and not param.is_leaf:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                             f"parameters must be created explicitly; wrap the value with "
                             f"nn.Parameter(value.detach()).")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a tensor that is state but not a parameter (saved in state_dict if persistent)."""
        self._check_init("buffers")
        _check_name(self, name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (polygrad Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_init("module")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'module name can\'t contain ".", nor be empty, got "{name}"')
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._discard(name)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (polygrad.nn.Parameter or None expected)")
            params[name] = None
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            self._check_init("module")
            self._discard(name)
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (polygrad.nn.Module or None expected)")
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(polygrad Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def _discard(self, name):
        d = self.__dict__
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            d[key].pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(key)
            if table is not None and name in table:
                del table[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(name, parameter)`` pairs, named as torch names them (``layer1.weight``)."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters, in registration order (what optimizers take)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn`` on every submodule, then on this module (weight init idiom)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ---------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode on this module and its descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the parameters' gradients: to None (default) or to zeros in place."""
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An ordered dict of parameters and persistent buffers, keyed as torch keys them."""
        if args:      # torch still accepts (destination, prefix, keep_vars) positionally
            destination, prefix, keep_vars = (list(args) + [destination, prefix, keep_vars])[:3]
        out = OrderedDict() if destination is None else destination
        for module_prefix, module in self.named_modules(prefix=prefix.rstrip(".")):
            for name, value in _own_state(module):
                key = module_prefix + ("." if module_prefix else "") + name
                out[key] = value if keep_vars else value.detach()
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` into the parameters and buffers.

        Every key and shape is checked before anything is written, so a failing
        call leaves the module unchanged. Values may be polygrad Tensors of any
        backend or raw arrays (a numpy array, a torch tensor).
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = OrderedDict()
        for module_prefix, module in self.named_modules():
            for name, value in _own_state(module):
                key = module_prefix + ("." if module_prefix else "") + name
                own[key] = (module, name, value)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if missing:
                errors.append("Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        values = {}
        for key, (_module, _name, current) in own.items():
            if key not in state_dict:
                continue
            value = _as_tensor(state_dict[key], key)
            if tuple(value.shape) != tuple(current.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(value.shape)} from checkpoint, the shape in current "
                              f"model is {tuple(current.shape)}.")
            values[key] = value
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with grad_mode.no_grad():
            for key, value in values.items():
                module, name, current = own[key]
                if assign:
                    _assign(module, name, current, value)
                else:
                    current.copy_(value)
        return _IncompatibleKeys(missing, unexpected)

    # -- moving --------------------------------------------------------------------------------
    def to(self, *args, backend=None, device=None, dtype=None):
        """Move parameters and buffers to a backend or device, or cast floating ones to ``dtype``.

        Parameters keep their identity (an optimizer built before still holds them).
        """
        backend, device, dtype = parse_to_args(args, backend, device, dtype)

        def move(t):
            dt = dtype if dtype is not None and t.dtype.is_floating_point else None
            return t.to(backend=backend, device=device, dtype=dt)
        return self._apply(move)

    def _apply(self, fn):
        with grad_mode.no_grad():
            for module in self.modules():
                for p in module._parameters.values():
                    if p is not None:
                        _rehome(p, fn(p.detach()))
                        if p._grad is not None:
                            p._grad = fn(p._grad)
                for name, b in module._buffers.items():
                    if b is not None:
                        module._buffers[name] = fn(b)
        return self

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def half(self):
        return self.to(dtype="float16")

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None):
        return self.to(device="cuda" if device is None else f"cuda:{int(device)}")

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override it)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        # torch's algorithm, so that reprs compare equal line for line
        extra_repr = self.extra_repr()
        extra_lines = extra_repr.split("\n") if extra_repr else []
        child_lines = [f"({key}): " + _addindent(repr(module), 2)
                       for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``remove()`` (or leaving a ``with``) takes the
    hook off. Handles are numbered once per process, as torch's."""

    next_id = 0

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extra = [extra_dict] if isinstance(extra_dict, dict) else (extra_dict or [])
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extra)

    def remove(self):
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            table = ref()
            if table is not None:
                table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _add_hook(table, hook_id, hook, prepend):
    table[hook_id] = hook
    if prepend:
        table.move_to_end(hook_id, last=False)


def _check_name(module, name, what):
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
    if "." in name or name == "":
        raise KeyError(f'{what} name can\'t contain ".", nor be empty, got "{name}"')
    if hasattr(type(module), name) or (name in module.__dict__):
        raise KeyError(f"attribute '{name}' already exists")


def _own_state(module):
    for name, p in module._parameters.items():
        if p is not None:
            yield name, p
    for name, b in module._buffers.items():
        if b is not None and name not in module._non_persistent_buffers_set:
            yield name, b


def _as_tensor(value, key):
    if isinstance(value, Tensor):
        return value
    try:
        return asarray(value)
    except Exception as exc:       # noqa: BLE001 - reworded with the key that failed
        raise TypeError(f"state_dict[{key!r}] is a {type(value).__name__}, which polygrad "
                        f"cannot read as a tensor ({exc}); pass a polygrad Tensor or an "
                        f"array") from exc


def _assign(module, name, current, value):
    value = value.detach()
    if isinstance(current, Parameter):
        module._parameters[name] = Parameter(value, requires_grad=current.requires_grad)
    else:
        module._buffers[name] = value


def _rehome(p, moved):
    """Point Parameter ``p`` at ``moved``'s buffer and backend, keeping the object."""
    if moved._st is not p._st:
        p._st, p._backend = moved._st, moved._backend


def _zero_grad(p, set_to_none):
    if p._grad is None:
        return
    if set_to_none:
        p._grad = None
    else:
        g = p._grad
        if g.grad_fn is not None:
            g.detach_()
        else:
            g.requires_grad_(False)
        with grad_mode.no_grad():
            g.zero_()
