"""The engine's behaviour as the tutorials show it, on numpy and torch (the `backend` fixture):
graph shape and node names, accumulation, retain_graph, seeds, hooks, retain_grad,
create_graph, autograd.grad, and that a failing backward leaves .grad as it was."""

import math
import warnings

import numpy as np
import pytest

import polygrad as pg


def _np(t):
    return t.detach().numpy()


def test_yt1_sin_chain_gradient_is_2cos(backend):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True)
    b = pg.sin(a)
    c = 2 * b
    d = c + 1
    out = d.sum()
    out.backward()
    np.testing.assert_allclose(_np(a.grad), 2 * np.cos(_np(a)), rtol=1e-6, atol=1e-6)
    assert "grad_fn=<SinBackward0>" in repr(b)
    assert "grad_fn=<SumBackward0>" in repr(out)
    assert a.grad.backend == backend


def test_yt2_graph_walk_names_and_structure(backend):
    a = pg.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True)
    d = 2 * pg.sin(a) + 1
    nf = d.grad_fn.next_functions
    assert type(d.grad_fn).__name__ == "AddBackward0"
    assert [type(n).__name__ if n else None for n, _ in nf] == ["MulBackward0", None]
    assert [i for _, i in nf] == [0, 0]
    nf2 = nf[0][0].next_functions
    assert [type(n).__name__ if n else None for n, _ in nf2] == ["SinBackward0", None]
    nf3 = nf2[0][0].next_functions
    assert [type(n).__name__ for n, _ in nf3] == ["AccumulateGrad"]
    assert nf3[0][0].variable is a
    assert nf3[0][0].next_functions == ()
    assert a.grad_fn is None and a.is_leaf and not d.is_leaf
    assert repr(d.grad_fn).startswith("<AddBackward0 object at 0x")


def test_yt3_non_leaf_grad_is_none_with_a_warning_about_retain_grad(backend):
    a = pg.ones(3, requires_grad=True)
    c = a * 2
    c.sum().backward()
    with pytest.warns(UserWarning, match="retain_grad"):
        assert c.grad is None


def test_retain_grad_keeps_the_non_leaf_gradient(backend):
    a = pg.ones(3, requires_grad=True)
    c = a * 2
    c.retain_grad()
    (c * c).sum().backward()
    np.testing.assert_allclose(_np(c.grad), [4.0, 4.0, 4.0])
    assert c.retains_grad


def test_qs4_second_backward_without_retain_graph_names_retain_graph(backend):
    x = pg.ones(3, requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    before = _np(x.grad).copy()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    np.testing.assert_array_equal(_np(x.grad), before)


def test_qs5_accumulation_and_zero(backend):
    inp = pg.eye(4, 5, requires_grad=True)
    out = (inp + 1).pow(2).t()
    expected = np.full((4, 5), 2.0) + 2.0 * np.eye(4, 5)
    out.backward(pg.ones_like(out), retain_graph=True)
    np.testing.assert_allclose(_np(inp.grad), expected)
    out.backward(pg.ones_like(out), retain_graph=True)
    np.testing.assert_allclose(_np(inp.grad), 2 * expected)
    inp.grad.zero_()
    out.backward(pg.ones_like(out), retain_graph=True)
    np.testing.assert_allclose(_np(inp.grad), expected)


def test_qs5_eye5_variant_without_transpose(backend):
    inp = pg.eye(5, requires_grad=True)
    out = (inp + 1).pow(2)
    out.backward(pg.ones_like(out))
    np.testing.assert_allclose(_np(inp.grad), 2.0 + 2.0 * np.eye(5))


def test_qs6_implicit_seed_equals_explicit_one(backend):
    pg.manual_seed(0)
    w = pg.randn(5, 3, requires_grad=True)
    (pg.ones(5) @ w).sum().backward()
    g1 = _np(w.grad).copy()
    w.grad = None
    (pg.ones(5) @ w).sum().backward(pg.tensor(1.0))
    np.testing.assert_array_equal(_np(w.grad), g1)


def test_qs7_dynamic_graph_control_flow_and_changing_shapes(backend):
    w = pg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    for n in range(1, 6):
        w.grad = None
        x = pg.arange(n * 3, dtype=pg.float32).reshape(n, 3)
        y = x * w
        out = y.sum() if n % 2 else (y * y).sum()
        out.backward()
        xs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
        want = xs.sum(0) if n % 2 else (2 * xs * xs * _np(w)).sum(0)
        np.testing.assert_allclose(_np(w.grad), want, rtol=1e-5)


def test_yt13_and_bz2_vector_backward(backend):
    pg.manual_seed(1)
    x = pg.randn(3, requires_grad=True)
    y = x * 2
    k = 1
    while y.data.norm() < 1000:
        y = y * 2
        k += 1
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        y.backward()
    assert x.grad is None
    v = pg.tensor([0.1, 1.0, 0.0001], dtype=pg.float)
    y.backward(v)
    np.testing.assert_allclose(_np(x.grad), _np(v) * 2.0 ** k, rtol=1e-6)


def test_bz1_variable_mean(backend):
    x = pg.autograd.Variable(pg.ones(2, 2), requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    np.testing.assert_allclose(_np(x.grad), np.full((2, 2), 4.5))
    assert y.grad_fn is not None and x.grad_fn is None
    assert not y.data.requires_grad and _np(y.data).tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_broadcast_gradients_are_summed_to_input_shapes(backend):
    a = pg.ones(2, 1, 3, requires_grad=True)
    b = pg.ones(4, 1, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (2, 1, 3) and b.grad.shape == (4, 1)
    np.testing.assert_allclose(_np(a.grad), np.full((2, 1, 3), 4.0))
    np.testing.assert_allclose(_np(b.grad), np.full((4, 1), 6.0))


def test_shared_subexpression_accumulates(backend):
    x = pg.tensor(3.0, requires_grad=True)
    y = x * x
    (y + y * x).backward()      # d/dx (x^2 + x^3) = 2x + 3x^2
    assert x.grad.item() == pytest.approx(6 + 27)


def test_grads_of_two_leaves_do_not_alias(backend):
    a = pg.ones(3, requires_grad=True)
    b = pg.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(10)
    np.testing.assert_allclose(_np(b.grad), np.ones(3))


def test_user_seed_is_copied_not_aliased(backend):
    a = pg.ones(3, requires_grad=True)
    v = pg.tensor([1.0, 2.0, 3.0])
    (a + 0).backward(v)
    a.grad.zero_()
    np.testing.assert_allclose(_np(v), [1.0, 2.0, 3.0])


def test_backward_inputs_restricts_accumulation(backend):
    a = pg.ones(2, requires_grad=True)
    b = pg.ones(2, requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad is not None and b.grad is None


def test_autograd_grad_returns_without_accumulating(backend):
    x = pg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = pg.autograd.grad((x ** 3).sum(), x)
    np.testing.assert_allclose(_np(g), [3.0, 12.0])
    assert x.grad is None


def test_autograd_grad_unused_input(backend):
    x = pg.ones(2, requires_grad=True)
    y = pg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        pg.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = pg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None
    (gz,) = pg.autograd.grad((x * 2).sum(), [y], allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(_np(gz), [0.0, 0.0])


def test_create_graph_gives_higher_order(backend):
    x = pg.tensor(0.7, dtype=pg.float64, requires_grad=True)
    y = pg.sin(x) * x.exp()
    (g,) = pg.autograd.grad(y, x, create_graph=True)
    (h,) = pg.autograd.grad(g, x)
    v = 0.7
    assert g.item() == pytest.approx(math.exp(v) * (math.cos(v) + math.sin(v)))
    assert h.item() == pytest.approx(2 * math.exp(v) * math.cos(v))
    # third order through two create_graph passes (on a fresh graph: the last call freed it)
    y = pg.sin(x) * x.exp()
    (g1,) = pg.autograd.grad(y, x, create_graph=True)
    (g2,) = pg.autograd.grad(g1, x, create_graph=True)
    (g3,) = pg.autograd.grad(g2, x)
    assert g3.item() == pytest.approx(2 * math.exp(v) * (math.cos(v) - math.sin(v)))


def test_backward_create_graph_makes_grad_differentiable(backend):
    x = pg.tensor([1.0, 2.0], dtype=pg.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = pg.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(_np(h), [6.0, 12.0])


def test_tensor_hook_can_replace_the_gradient(backend):
    x = pg.ones(3, requires_grad=True)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.shape) or g * 10)
    handle = x.register_hook(lambda g: g + 1)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.full(3, 21.0))
    assert seen == [(3,)]
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.full(3, 2.0))


def test_deep_chain_does_not_hit_the_recursion_limit(backend):
    x = pg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_saved_values_are_released_after_backward(backend):
    x = pg.ones(3, requires_grad=True)
    y = x.exp()
    z = y * 2
    z.sum().backward()
    assert z.grad_fn.saved is None and y.grad_fn.saved is None


def test_backward_on_tensor_without_grad_explains(backend):
    with pytest.raises(RuntimeError, match="does not require grad"):
        pg.ones(2).sum().backward()


def test_seed_shape_mismatch_is_reported(backend):
    x = pg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(2,\).*\(3,\)"):
        (x * 2).backward(pg.ones(2))
    assert x.grad is None


def test_failing_backward_leaves_grads_as_they_were(backend):
    a = pg.ones(2, requires_grad=True)
    b = pg.ones(2, requires_grad=True)
    shared = a * 3
    first = (shared * b).sum()
    first.backward()
    grads = _np(a.grad).copy(), _np(b.grad).copy()
    # a graph that reaches a freed node part-way: b's branch runs, then the freed one fails
    second = (shared * 2).sum() + (b * 5).sum()
    with pytest.raises(RuntimeError, match="retain_graph"):
        second.backward()
    np.testing.assert_array_equal(_np(a.grad), grads[0])
    np.testing.assert_array_equal(_np(b.grad), grads[1])


def test_no_warning_on_leaf_grad(backend):
    x = pg.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None


# -- what a node keeps for backward (Primitive.saves) ---------------------------------------

def test_relu_keeps_its_output_not_its_input(backend):
    """Like torch's saved tensors: the pre-activation is freed once the user lets go of it."""
    import gc
    import weakref
    x = pg.randn(64, 32, requires_grad=True)
    h = x * 3.0                                   # a non-leaf pre-activation
    y = pg.nn.functional.relu(h)
    assert (h._st.buf.saved, y._st.buf.saved) == (0, 1)   # relu holds only its output
    probe = weakref.ref(h._st.array) if backend == "numpy" else None
    del h
    gc.collect()
    if probe is not None:
        assert probe() is None                    # no graph node holds the input
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(y.detach().numpy() > 0, 3.0, 0.0))


@pytest.mark.parametrize("op,pinned", [
    (lambda a, b: a + b, (0, 0)),                 # add needs neither input
    (lambda a, b: a * b, (1, 1)),                 # multiply needs both
    (lambda a, b: a / b, (1, 1)),                 # divide keeps everything (declares nothing)
    (lambda a, b: pg.exp(a) + b, (0, 0)),         # exp needs only its output
], ids=["add", "multiply", "divide", "exp"])
def test_only_what_the_rule_reads_is_pinned_against_in_place_writes(op, pinned, backend):
    a0, b0 = np.array([0.5, 1.5, 2.0]), np.array([2.0, 4.0, 8.0])
    leaves = [pg.tensor(v, requires_grad=True) for v in (a0, b0)]
    a, b = (t * 1.0 for t in leaves)              # non-leaves, which may be written in place
    out = op(a, b)
    assert (a._st.buf.saved, b._st.buf.saved) == pinned
    buffers = a._st.array, b._st.array
    with pg.no_grad():
        a.mul_(10.0)
        b.mul_(10.0)
    # the memory is written in place (every alias sees it); a node holding it got a private
    # copy first (copy-on-write), and nothing else was copied
    assert a._st.array is buffers[0] and b._st.array is buffers[1]
    assert (a._st.buf.saved, b._st.buf.saved) == (0, 0)
    if pinned == (1, 1):                          # out's node (a * b, a / b) holds copies
        held = out.grad_fn.saved[0]
        assert all(h is not buffers[0] and h is not buffers[1] for h in held)
    out.sum().backward()                          # and backward is unaffected by the writes
    ref = [pg.tensor(v, requires_grad=True) for v in (a0, b0)]
    op(ref[0] * 1.0, ref[1] * 1.0).sum().backward()
    for got, want in zip(leaves, ref):
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy())


def test_unsaved_values_keep_shape_and_dtype_for_the_engine(backend):
    x = pg.randn(4, 1, requires_grad=True)
    y = pg.randn(3, requires_grad=True)
    (x + y).sum().backward()                      # broadcast: summed back by the kept shapes
    assert tuple(x.grad.shape) == (4, 1) and tuple(y.grad.shape) == (3,)
    xs, out = (x + y).grad_fn.saved
    assert "not saved: shape (4, 1)" in repr(xs[0])
