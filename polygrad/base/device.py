"""``polygrad.device``: a backend-independent device name such as ``cpu`` or ``cuda:0``."""

__all__ = ["device"]


class device:
    """A device name, torch style: ``polygrad.device("cuda")``, ``device("cuda", 1)``.

    Backends translate it to their own device objects; "cuda" means the default
    CUDA-capable backend's first GPU.

    >>> import polygrad
    >>> polygrad.device("cuda:1").index
    1
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        type = str(type)
        if ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        same_index = self.index == other.index or {self.index, other.index} <= {None, 0}
        return self.type == other.type and same_index

    def __hash__(self):
        return hash(self.type)
