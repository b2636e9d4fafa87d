"""What a graph node saves, as torch shows it: saved_tensors_hooks / save_on_cpu /
disable_saved_tensors_hooks, ``grad_fn._saved_*``, and the node names of indexing; each
compared with real torch."""

from __future__ import annotations

import numpy as np
import pytest

import polygrad as pg

torch = pytest.importorskip("torch")


def _lib(lib, B):
    def make(values, rg=False):
        kw = {} if lib is torch else {"backend": B}
        return lib.tensor(values, dtype=lib.float64, requires_grad=rg, **kw)
    return make


PROGRAMS = {
    "mul": lambda lib, x, w: (x * w).sum(),
    "exp_sin": lambda lib, x, w: (x.exp() * w.sin()).sum(),
    "matmul": lambda lib, x, w: (x.reshape(2, 2) @ w.reshape(2, 2)).sum(),
    "views": lambda lib, x, w: (x[1:] * w[:-1]).sum() + x.t().sum(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_pack_and_unpack_see_what_torch_saves(name, backend):
    """The same number of packs with the same shapes and values; unpack's result is used
    (a hook that doubles every saved value changes the gradient as torch's does)."""
    got, want = {}, {}
    for lib, out in ((pg, got), (torch, want)):
        make = _lib(lib, backend)
        x = make([0.5, -1.0, 2.0, 0.25], rg=True)
        w = make([1.5, 0.5, -0.5, 2.0], rg=True)
        packed = []

        def pack(t, packed=packed):
            packed.append(sorted(np.asarray(t.detach().tolist()).ravel().round(12).tolist()))
            return t

        with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t * 2):
            loss = PROGRAMS[name](lib, x, w)
        loss.backward()
        out["packed"] = sorted(packed)
        out["grads"] = (np.array(x.grad.tolist()), np.array(w.grad.tolist()))
    assert got["packed"] == want["packed"]
    for g, t in zip(got["grads"], want["grads"]):
        np.testing.assert_allclose(g, t, rtol=1e-12)


def test_hooks_replace_copy_on_write():
    """With clone-on-pack, a later write does not touch what backward reads, and the graph
    holds no reference to the memory (nothing is copied at the write)."""
    x = pg.tensor([1.0, 2.0], dtype=pg.float64, requires_grad=True)
    c = pg.tensor([3.0, 4.0], dtype=pg.float64)
    with pg.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        y = (x * c).sum()
    assert c._st.buf.saved == 0
    c.mul_(10)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_hooks_nest_and_are_per_block():
    calls = []
    x = pg.ones(2, requires_grad=True)
    with pg.autograd.graph.saved_tensors_hooks(lambda t: calls.append("outer") or t, lambda t: t):
        with pg.autograd.graph.saved_tensors_hooks(lambda t: calls.append("inner") or t,
                                                   lambda t: t):
            (x * x).sum()
        (x.sin()).sum()
    (x * x).sum()
    assert calls == ["inner", "inner", "outer"]


def test_save_on_cpu_gives_the_same_gradients(backend):
    x = pg.tensor([0.5, 1.5], dtype=pg.float64, requires_grad=True, backend=backend)
    with pg.autograd.graph.save_on_cpu():
        y = (x.exp() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.5]) * (1 + np.array([0.5, 1.5])))


def test_disable_saved_tensors_hooks_refuses_hooks():
    with pg.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
        x = pg.ones(2, requires_grad=True)
        (x * x).sum().backward()          # saving goes on as usual
        with pytest.raises(RuntimeError, match="no hooks here"):
            with pg.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                pass
    with torch.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
        with pytest.raises(RuntimeError, match="no hooks here"):
            with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                pass


def test_unpack_must_return_a_tensor():
    x = pg.ones(2, requires_grad=True)
    with pg.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: 3):
        y = (x * x).sum()
    with pytest.raises(TypeError, match="unpack hook"):
        y.backward()
    assert x.grad is None


SAVED = [
    ("mul", lambda x, y: x * y, ["_saved_self", "_saved_other"]),
    ("mul scalar", lambda x, y: x * 2.0, ["_saved_other"]),
    ("exp", lambda x, y: x.exp(), ["_saved_result"]),
    ("pow", lambda x, y: x.pow(y), ["_saved_self", "_saved_exponent"]),
    ("sum dim", lambda x, y: x.sum(0, keepdim=True), ["_saved_dim", "_saved_keepdim"]),
    ("matmul", lambda x, y: x.reshape(2, 2) @ y.reshape(2, 2), ["_saved_self", "_saved_mat2"]),
]


@pytest.mark.parametrize("name,fn,attrs", SAVED, ids=[s[0] for s in SAVED])
def test_saved_attributes_match_torch(name, fn, attrs, backend):
    mk = _lib(pg, backend)
    mt = _lib(torch, None)
    xp, yp = mk([0.5, 1.5, 2.0, 3.0], rg=True), mk([1.0, 2.0, 0.5, 1.5], rg=True)
    xt, yt = mt([0.5, 1.5, 2.0, 3.0], rg=True), mt([1.0, 2.0, 0.5, 1.5], rg=True)
    gp, gt = fn(xp, yp).grad_fn, fn(xt, yt).grad_fn
    for attr in attrs:
        a, b = getattr(gp, attr), getattr(gt, attr)
        if isinstance(b, torch.Tensor):
            np.testing.assert_allclose(np.array(a.tolist()), np.array(b.tolist()))
        elif isinstance(b, tuple):
            assert tuple(a if isinstance(a, tuple) else (a,)) == b
        else:
            assert a == b, attr


def test_saved_values_are_freed_with_the_graph():
    x = pg.ones(2, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    with pytest.raises(RuntimeError, match="after they have already been freed"):
        _ = node._saved_result
    with pytest.raises(AttributeError):
        _ = (x + x).grad_fn._saved_self      # add saves nothing, as torch's AddBackward0


KEYS = ["0", "1:", ":", "0, 1:", "1:, 0", ":, 0", "..., 0", "None", "0, None", "idx",
        ":, idx", "mask", "..., 1:", "::2", "0, 1, 2", "()", "..."]


@pytest.mark.parametrize("key", KEYS)
def test_indexing_node_names_match_torch(key):
    names = []
    for lib in (pg, torch):
        x = lib.ones(3, 4, 5, requires_grad=True)
        idx = lib.tensor([0, 1])  # noqa: F841 - used by eval
        mask = x > 0  # noqa: F841 - used by eval
        names.append(eval(f"x[{key}]").grad_fn.name())
    assert names[0] == names[1]
