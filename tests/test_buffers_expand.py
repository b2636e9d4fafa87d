"""Writes into expanded views against real torch (issue 13), on numpy, torch, strict and dask.

torch refuses an in-place write only where the written-to tensor overlaps itself (a
dimension of stride 0 and size above 1): ``v = b.expand(3, 4); v[1] = 7`` or
``v[1:2].mul_(2)`` write into ``b`` (so every row of ``v`` shows it), ``v[:, 0].mul_(2)``
is refused before anything changes, and ``fill_``/``zero_`` of an overlapping view are
allowed (every copy gets the same number; recorded, the backward through them is refused).
Each case runs in three modes (nothing requires grad; recorded; under no_grad with a graph
around it) and compares the errors, the values of the base and of two of its views, the
version counter and the gradients with torch's.
"""

from __future__ import annotations

import numpy as np
import pytest

import polygrad as pg

torch = pytest.importorskip("torch")

# (name, base shape, view of the base, key of the region written)
EVERY = slice(None)
CASES = [
    ("row", (4,), lambda b: b.expand(3, 4), 1),
    ("row-slice", (4,), lambda b: b.expand(3, 4), slice(1, 2)),
    ("row-part", (4,), lambda b: b.expand(3, 4), (1, slice(1, 3))),
    ("column", (4,), lambda b: b.expand(3, 4), (EVERY, 0)),            # refused
    ("two-rows", (4,), lambda b: b.expand(3, 4), slice(1, None)),      # refused
    ("all", (4,), lambda b: b.expand(3, 4), Ellipsis),                 # refused
    ("no-rows", (4,), lambda b: b.expand(3, 4), slice(0, 0)),          # empty
    ("no-columns", (4,), lambda b: b.expand(3, 4), (EVERY, slice(0, 0))),  # empty, stride 0
    ("dim1-column", (2, 1), lambda b: b.expand(2, 3), (EVERY, 1)),
    ("dim1-row", (2, 1), lambda b: b.expand(2, 3), 0),                 # refused
    ("transposed", (2,), lambda b: b.expand(3, 2).T, (EVERY, 2)),
    ("transposed-row", (2,), lambda b: b.expand(3, 2).T, 1),           # refused
    ("twice", (2,), lambda b: b.expand(3, 2)[None].expand(2, 3, 2), (1, 2)),
    ("twice-plane", (2,), lambda b: b.expand(3, 2)[None].expand(2, 3, 2), (EVERY, 0)),
    ("0-d", (), lambda b: b.expand(3), 1),
    ("0-d-slice", (), lambda b: b.expand(3), slice(2, 3)),
    ("0-d-all", (), lambda b: b.expand(3), slice(1, None)),            # refused
    ("reshaped", (2,), lambda b: b.expand(2, 3, 2).reshape(6, 2), 4),
    ("unsqueezed", (3,), lambda b: b.expand(2, 3).unsqueeze(-1), (1, EVERY, 0)),
]

# an in-place op on the expanded view ``v`` through its region ``key`` (y: region's shape)
OPS = {
    "setitem": lambda v, key, y: v.__setitem__(key, y),
    "setitem-number": lambda v, key, y: v.__setitem__(key, 7.0),
    "mul_": lambda v, key, y: v[key].mul_(y),
    "add_": lambda v, key, y: v[key].add_(y),
    "sub_-alpha": lambda v, key, y: v[key].sub_(y, alpha=2),        # numpy's fused axpy
    "copy_": lambda v, key, y: v[key].copy_(y),
    "fill_": lambda v, key, y: v[key].fill_(-2.5),
    "zero_": lambda v, key, y: v[key].zero_(),
}

MODES = ["plain", "recorded", "no_grad"]


def run(lib, case, op, mode, backend=None):
    """The program of one case under ``lib`` (polygrad or torch): error, values, grads."""
    _, shape, view, key = case
    kw = {} if lib is torch else {"backend": backend}
    rng = np.random.default_rng(13)

    def make(values, rg=False):
        return lib.tensor(values, dtype=lib.float64, requires_grad=rg, **kw)

    graph = mode != "plain"
    x = make(rng.uniform(-1, 1, shape), rg=graph)
    base = x * 1.5 if graph else x
    v, w = view(base), base.expand(2, *shape)      # w: another view, made before the write
    y = make(rng.uniform(-1, 1, tuple(v[key].shape)), rg=mode == "recorded")
    before, version = base.detach().tolist(), base._version
    error = None
    try:
        if mode == "no_grad":
            with lib.no_grad():
                OPS[op](v, key, y)
        else:
            OPS[op](v, key, y)
    except RuntimeError as exc:
        error = str(exc)[:86]
    out = {"error": error, "base": base, "v": v, "w": w, "version": base._version - version}
    if error is not None:
        out["unchanged"] = base.detach().tolist() == before and out["version"] == 0
    if graph:
        loss = (base * make(rng.uniform(-1, 1, base.shape))).sum() + \
            (v * make(rng.uniform(-1, 1, v.shape))).sum() + \
            (w * make(rng.uniform(-1, 1, w.shape))).sum()
        try:
            loss.backward()
            out["x.grad"], out["y.grad"] = x.grad, y.grad
        except RuntimeError as exc:
            out["backward error"] = str(exc)[:86]
    return {k: np.array(t.detach().tolist()) if hasattr(t, "detach") else t
            for k, t in out.items()}


@pytest.fixture(scope="module")
def B(any_backend):
    return any_backend


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_write_into_expanded_view_matches_torch(B, case, op, mode):
    # copy-on-write is torch with every saved value cloned (docs/memory.md)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        want = run(torch, case, op, mode)
    got = run(pg, case, op, mode, B)
    assert got["error"] == want["error"]
    assert sorted(got) == sorted(want)
    for k, value in want.items():
        if k.endswith(".grad") and value is not None:     # sums, perhaps in another order
            np.testing.assert_allclose(got[k], value, rtol=1e-12, atol=1e-14, err_msg=k)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[k], value, err_msg=k)
        else:
            assert got[k] == value, k


def test_table_has_allowed_and_refused_writes():
    """The table above is worth running: torch allows some of its writes and refuses others,
    and some of them are empty."""
    errors = [run(torch, case, op, "recorded")["error"] for case in CASES for op in OPS]
    assert any(e is None for e in errors) and any(e is not None for e in errors)
    assert any(np.prod(c[2](torch.zeros(c[1]))[c[3]].shape) == 0 for c in CASES)


def test_fuzzer_repro():
    """tests/test_conformance_fuzz.py's shrunk repro, on numpy: a sum written into one
    element of an expanded view of a non-leaf."""
    x0 = pg.tensor(1.0, requires_grad=True, dtype=pg.float64)
    v0 = x0 * 1
    v1 = v0.expand(2)
    v1[1:] = v1.sum()
    v1.sum().backward()
    assert (v0.item(), v1.tolist(), x0.grad.item()) == (2.0, [2.0, 2.0], 4.0)   # torch's


def test_new_axis_view_backward_and_write(B):
    """A view with a new axis (``x[None]``): its backward and a write through it, which
    carry a key with None to a setitem (dask and strict index with no None)."""
    def program(lib, kw):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True, **kw)
        b = x * 1.5
        v = b[None]
        v[0, 1:].mul_(lib.tensor([2.0, 3.0], dtype=lib.float64, **kw))
        (v * lib.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=lib.float64, **kw)).sum().backward()
        return b.tolist(), v.tolist(), x.grad.tolist()

    assert program(pg, {"backend": B}) == program(torch, {})


def test_write_into_a_detached_expanded_view_is_refused(B):
    """``detach()`` of an expanded view overlaps as the view does: a write is refused
    before anything changes, as torch's is."""
    for lib, kw in ((pg, {"backend": B}), (torch, {})):
        b = lib.tensor([1.0, 2.0], dtype=lib.float64, **kw)
        d = b.expand(3, 2).detach()
        with pytest.raises(RuntimeError, match="more than one element of the written-to"):
            d.add_(1.0)
        assert b.tolist() == [1.0, 2.0] and b._version == 0


# index_put_ and masked_fill_ of one number into an expanded view (torch: deprecated, allowed;
# recorded, its backward is refused): the elements the key picks get the number
ADVANCED = {
    "masked_fill_": lambda lib, v: v.masked_fill_(
        lib.asarray([[True, False, False, False], [False, True, False, False],
                     [False, False, False, False]]), 0.5),
    "index-rows": lambda lib, v: v.__setitem__([0, 2], 5.0),
    "index-pairs": lambda lib, v: v.__setitem__(([0, 1], [0, 3]), -1.0),
}


@pytest.mark.filterwarnings("ignore:Use of (index_put_|masked_fill_) on expanded tensors")
@pytest.mark.parametrize("recorded", [False, True], ids=["plain", "recorded"])
@pytest.mark.parametrize("op", sorted(ADVANCED))
def test_index_put_of_a_number_into_an_expanded_view(B, op, recorded):
    try:
        ADVANCED[op](_Lib(B), pg.zeros((3, 4), backend=B))
    except (IndexError, NotImplementedError) as exc:     # not an expand matter
        pytest.skip(f"{B} cannot write with this key into any tensor: {exc}")

    def program(lib, kw):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=recorded, **kw)
        base = x * 1.5 if recorded else x
        v = base.expand(3, 4)
        ADVANCED[op](lib if lib is torch else _Lib(B), v)
        out = [base.tolist(), v.tolist(), base._version]
        if recorded:
            try:
                base.sum().backward()
                out.append(x.grad.tolist())
            except RuntimeError as exc:
                out.append(str(exc)[:86])
        return out

    assert program(pg, {"backend": B}) == program(torch, {})


class _Lib:
    """polygrad with arrays made on backend ``B``."""

    def __init__(self, backend):
        self.backend = backend

    def asarray(self, values):
        return pg.asarray(values, backend=self.backend)


def test_index_put_of_a_tensor_into_an_expanded_view_is_refused(B):
    """torch allows it (deprecated), and where two values reach one element the last one
    wins; polygrad refuses it, before anything changes (docs/memory.md, deviations)."""
    b = pg.tensor([1.0, 2.0, 3.0], dtype=pg.float64, backend=B)
    v = b.expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to"):
        v[[0, 1], [0, 0]] = pg.tensor([7.0, 8.0], dtype=pg.float64, backend=B)
    assert b.tolist() == [1.0, 2.0, 3.0] and b._version == 0


def test_double_backward_through_a_write_into_an_expanded_view(B):
    """create_graph through the CopySlices of a row written in an expanded view (the
    write-back rule runs on polygrad's differentiable namespace)."""
    def program(lib, kw):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True, **kw)
        y = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True, **kw)
        b = x * x
        v = b.expand(2, 3)
        v[1].mul_(y * x)
        gx, gy = lib.autograd.grad((v * v).sum() + b.sum(), (x, y), create_graph=True)
        (gx.sum() + (gy * gy).sum()).backward()
        return [gx.tolist(), gy.tolist(), x.grad.tolist(), y.grad.tolist()]

    np.testing.assert_allclose(program(pg, {"backend": B}), program(torch, {}), rtol=1e-12)


def test_recorded_setitem_with_new_axes_broadcasts_the_value(B):
    """``x[None] = value`` (recorded): the value broadcasts to the region, empty or not."""
    def program(lib, kw):
        x0 = lib.zeros((0, 3), dtype=lib.float64, requires_grad=True, **kw)
        v0 = x0.clone()
        v0[None] = x0.sum()
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64,
                       requires_grad=True, **kw)
        y = x * 2
        y[None, 1] = x[0] * 3
        (y * lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64, **kw)).sum() \
            .backward()
        return list(v0.shape), y.tolist(), x.grad.tolist()

    assert program(pg, {"backend": B}) == program(torch, {})
