"""``polygrad.autograd.graph``: hooks on the values the graph saves for backward, as
``torch.autograd.graph``.

>>> import polygrad
>>> packed = []
>>> def pack(t):
...     packed.append(tuple(t.shape))
...     return t
>>> x = polygrad.ones(3, requires_grad=True)
>>> with polygrad.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
...     y = (x * x).sum()
>>> packed
[(3,), (3,)]
>>> y.backward(); x.grad
tensor([2., 2., 2.])
"""

from __future__ import annotations

from ..graph.engine import get_extension, set_extension

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks"]


class saved_tensors_hooks:  # noqa: N801 - torch's spelling
    """Inside the block, every value a recorded op saves for backward is passed to
    ``pack_hook(tensor)`` and what it returns is kept instead; backward gets the value back
    from ``unpack_hook(packed)``, which must return a tensor with the same values. The
    graph then holds no reference to the memory (copy-on-write does not copy for it).
    Blocks nest: the innermost hooks apply. Per thread, as grad mode."""

    def __init__(self, pack_hook, unpack_hook):
        if not (callable(pack_hook) and callable(unpack_hook)):
            raise TypeError("saved_tensors_hooks(pack_hook, unpack_hook) takes two callables")
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook
        self._previous = []

    def __enter__(self):
        current = get_extension("saved_hooks")
        if current is not None and current[0] is None:      # disable_saved_tensors_hooks
            raise RuntimeError(current[1])
        self._previous.append(set_extension("saved_hooks", (self.pack_hook, self.unpack_hook)))
        return self

    def __exit__(self, *exc):
        set_extension("saved_hooks", self._previous.pop())
        return False


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - torch's spelling
    """Keep saved values in host memory (``device="cpu"``) until backward needs them, then
    move them back to their device: device memory is freed during the forward pass."""

    def __init__(self, pin_memory=False, device_type="cuda"):
        def pack(t):
            if t.device.type == "cpu":
                return (None, t)
            return (str(t.device), t.to(device="cpu"))

        def unpack(packed):
            device, t = packed
            return t if device is None else t.to(device=device)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801 - torch's spelling
    """Inside the block, entering ``saved_tensors_hooks`` raises ``RuntimeError`` with
    ``error_message`` (for code whose saved values must stay where they are); saving
    itself goes on as without hooks."""

    def __init__(self, error_message):
        self.error_message = error_message
        self._previous = None

    def __enter__(self):
        self._previous = set_extension("saved_hooks", (None, self.error_message))
        return self

    def __exit__(self, *exc):
        set_extension("saved_hooks", self._previous)
        return False


def current_hooks():
    """The (pack, unpack) hooks in effect in this thread, or None."""
    hooks = get_extension("saved_hooks")
    return None if hooks is None or hooks[0] is None else hooks
