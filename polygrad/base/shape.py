"""``polygrad.Size``: a tensor's shape, the tuple that ``x.shape`` and ``x.size()`` return.

As ``torch.Size``: a tuple of ints (equal to and hashing like the plain tuple), with
``numel()``, a repr that names it, and slices and sums that stay Sizes. This module owns
the type only. ``Size(...)`` checks its items; the Tensor builds its shape with
``tuple.__new__(Size, array.shape)``, which skips the check (a backend's shape holds ints)
and costs what ``tuple(array.shape)`` did, where the checked constructor costs several
times that on every ``x.shape``.
"""

from __future__ import annotations

import math
import operator

__all__ = ["Size"]


class Size(tuple):
    """A tensor's shape: a tuple of ints with ``numel()``, as ``torch.Size``.

    >>> import polygrad
    >>> s = polygrad.zeros(2, 3).shape
    >>> s, s.numel(), s == (2, 3)
    (polygrad.Size([2, 3]), 6, True)
    """

    __slots__ = ()

    def __new__(cls, sizes=()):
        try:
            return tuple.__new__(cls, map(operator.index, sizes))
        except TypeError:
            pass
        items = tuple(sizes)
        for i, s in enumerate(items):
            # a lazy backend (dask) gives nan for a size it does not know yet
            if not hasattr(type(s), "__index__") and not (isinstance(s, float) and s != s):
                raise TypeError(f"polygrad.Size() takes an iterable of 'int' (item {i} is "
                                f"'{type(s).__name__}'); pass int({s!r}) or round it") from None
        return tuple.__new__(cls, (s if isinstance(s, float) else operator.index(s)
                                   for s in items))

    def numel(self):
        """The number of elements of a tensor of this shape (1 for ``Size([])``)."""
        return math.prod(self)

    def __repr__(self):
        return f"polygrad.Size({list(self)})"

    __str__ = __repr__

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(other + tuple(self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))
