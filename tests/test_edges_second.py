"""Second derivatives at the edges (issue 13), each compared with real torch: the torch-style
functions whose backward formulas torch masks at a singular point (sinc, copysign, logit,
atan2, pow, xlogy, binary_cross_entropy, det ...), where the second derivative is torch's
``nan`` (or ``inf``, or a masked 0) in exactly the places torch's is.

One table: a case is a program written once against a torch-like module (``polygrad`` or
``torch``) and its float64 inputs. The test runs it on both, on every CPU backend: the
value, the gradient of ``sum(w1 * out)`` taken with ``create_graph=True``, and the gradient
of ``sum(w2 * grad)``, with fixed distinct weights so that every entry is checked; NaN
and inf positions must agree. First derivatives at exactly singular matrices are here too
(torch's plain backward of ``det`` gives 0 there, its ``create_graph`` one the cofactor
matrix, which polygrad gives in both modes: docs/semantics.md).
"""

import math

import numpy as np
import pytest

import polygrad

torch = pytest.importorskip("torch")

NAN = float("nan")
INF = math.inf

# (id, program(lib, *leaves) -> tensor, leaves: [data, ...] in float64)
CASES = [
    # -- elementwise rows written as torch's formulas --------------------------------------
    ("sinc_zero", lambda t, x: t.sinc(x), [[0.0, 0.5, -1.0, 2.0, 0.25]]),
    ("copysign_zero", lambda t, x, y: t.copysign(x, y),
     [[0.0, 1.0, -1.0, -0.0, 2.0, 0.0], [1.0, -1.0, 0.0, -1.0, -0.0, -2.0]]),
    ("pow_tensor_base0", lambda t, x, y: x ** y,
     [[0.0, 0.0, 2.0, -1.0, 0.0, 0.0], [0.0, 2.0, 0.5, 2.0, -1.0, 1.0]]),
    ("pow_scalar_base0", lambda t, y: 0.0 ** y, [[-1.0, 0.0, 2.0]]),
    ("pow_scalar_base2", lambda t, y: 2.0 ** y, [[-1.0, 0.0, 2.5]]),
    # stop 23: an exponent of 0 gives the base a 0 gradient whatever arrives (an inf here)
    ("pow_zero_exponent_inf_grad", lambda t, x, y: (x ** 0) / y, [[0.0, 2.0, -1.0], [0.0, 1.0, 0.0]]),
    ("pow_zero_tensor_exponent_inf_grad", lambda t, x, e, y: (x ** e) / y,
     [[0.0, 2.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),
    # stop 23: torch's sign (and sgn) is 0 at NaN (0 / 0 here)
    ("sign_of_nan", lambda t, x, y: t.sign(y / x) * y * x + t.sgn(x / y),
     [[0.0, 2.0, 0.0], [1.0, 1.0, 0.0]]),
    # stop 23: the cofactor of a 1 x 1 matrix is 1, also at nan and inf (torch's)
    ("det_1x1_nan", lambda t, x: t.linalg.det((x / x) @ (x / x).mT + t.eye(1, dtype=t.float64)),
     [[[1.0, 1.0, 0.0]]]),
    # stop 23: mish differentiated twice takes softplus as log1p(exp(x)), torch's: nan past
    # x ~ 709 (exp's 0 * inf), as torch's
    ("mish_large", lambda t, x: t.nn.functional.mish(x), [[-800.0, -10.0, 0.0, 10.0, 400.0, 800.0]]),
    # stop 23: elu, selu, celu as one node of torch's kernel with its backward op: a NaN
    # incoming gradient on the linear side gives NaN in the second derivative, as torch's
    ("elu_nan_incoming", lambda t, x, y: t.nn.functional.elu(x) * y.std().detach(),
     [[1.0, -1.0, 0.0], [[], [], []]]),
    ("celu_selu", lambda t, x: t.nn.functional.celu(x, 2.0) * x + t.nn.functional.selu(x) * x,
     [[-1.0, 0.0, 1.0, -3.0, NAN]]),
    ("det_1x1_inf", lambda t, x: t.linalg.det(t.log(x.abs()) @ t.log(x.abs()).mT + t.eye(1, dtype=t.float64)),
     [[[1.0, 2.0, 0.0]]]),
    ("atan2_origin", lambda t, y, x: t.atan2(y, x),
     [[0.0, 1.0, 0.0, -1.0, 1e-200], [0.0, 0.0, 1.0, -1.0, 1e-200]]),
    ("xlogy_zeros", lambda t, x, y: t.xlogy(x, y),
     [[0.0, 0.0, 1.0, 0.0, 2.0, -2.0], [0.0, 1.0, 0.0, -1.0, 3.0, 0.5]]),
    ("special_xlogy", lambda t, x, y: t.special.xlogy(x, y), [[0.0, 1.0], [0.0, 2.0]]),
    ("xlog1py_edges", lambda t, x, y: t.special.xlog1py(x, y),
     [[0.0, 0.0, 1.0, 0.0, 2.0], [-1.0, 0.0, -1.0, -2.0, 3.0]]),
    ("logit", lambda t, x: t.logit(x), [[0.0, 0.5, 1.0, 0.25, -0.5]]),
    ("logit_eps", lambda t, x: t.logit(x, eps=0.1), [[0.0, 0.5, 1.0, 0.05, 0.1, 0.9]]),
    ("fmax_ties", lambda t, x, y: t.fmax(x, y) * t.fmax(x, y),
     [[1.0, NAN, 2.0, 0.0], [1.0, 1.0, NAN, 0.0]]),
    ("fmin_ties", lambda t, x, y: t.fmin(x, y) ** 3, [[1.0, 2.0, -1.0], [1.0, 1.0, 3.0]]),
    ("round_decimals", lambda t, x: t.round(x * x, decimals=1) + x * x, [[0.25, 1.35, -2.5]]),
    ("remainder_by_zero", lambda t, x, y: t.remainder(x, y) * x, [[1.5, -2.5, 3.0], [0.0, 1.0, -2.0]]),
    ("fmod_by_zero", lambda t, x, y: t.fmod(x, y) * y, [[1.5, -2.5, 3.0], [0.0, 1.0, -2.0]]),
    ("logaddexp_inf", lambda t, x, y: t.logaddexp(x, y),
     [[0.0, INF, -INF, 1.0, 2.0], [0.0, INF, -INF, -INF, 1.0]]),
    ("logaddexp2_inf", lambda t, x, y: t.logaddexp2(x, y), [[0.0, -INF, 1.0], [0.0, -INF, -INF]]),
    ("expit_inf", lambda t, x: t.special.expit(x), [[0.0, INF, -INF, 2.0]]),
    ("lerp_inf_end", lambda t, x, y, w: t.lerp(x, y, w) * w,
     [[0.0, 1.0, INF, 1.0], [0.0, 2.0, 1.0, 3.0], [0.5, 0.0, 0.5, 0.75]]),
    # -- losses ---------------------------------------------------------------------------
    ("bce_edges", lambda t, x, y: t.nn.functional.binary_cross_entropy(x, y, reduction="none"),
     [[0.0, 1.0, 0.5, 1.0, 0.0, 1e-13, 0.3], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.2]]),
    ("bce_mean_weight", lambda t, x, y: t.nn.functional.binary_cross_entropy(
        x, y, weight=t.tensor([1.0, 2.0, 3.0], dtype=t.float64)),
     [[0.2, 0.7, 0.5], [0.0, 1.0, 0.3]]),
    ("bce_logits_inf", lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y),
     [[INF, -INF, 0.0], [1.0, 0.0, 0.5]]),
    ("bce_logits_pos_weight", lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
        x, y, pos_weight=t.tensor([2.0, 1.0, 3.0], dtype=t.float64)),
     [[0.0, -50.0, 2.0], [1.0, 0.0, 0.5]]),
    ("cross_entropy_all_ignored", lambda t, x: t.nn.functional.cross_entropy(
        x, t.tensor([-100, -100])), [[[0.0, 1.0], [2.0, 2.0]]]),
    # -- reductions at zeros and without degrees of freedom (stop 23) -----------------------
    # an axis longer than the rule's grid of products (256): the formula chosen by a zero
    ("cumprod_long_axis", lambda t, x: t.cumprod(x, 0), [[1.0 + (k % 7 - 3) / 50 for k in range(300)]]),
    ("cumprod_long_axis_zero", lambda t, x: t.cumprod(x, 0),
     [[0.0 if k == 290 else 1.0 + (k % 7 - 3) / 50 for k in range(300)]]),
    # torch's cumprod_backward: along one element the gradient itself (no dependence on x);
    # first order, exactly 0 after a slice's first zero (an inf or nan g stays out); with
    # create_graph, where x holds a zero, sum_j g_j prod(x[:k]) cumprod(x[k+1:])_j
    ("cumprod_0d_var_no_dof",
     lambda t, x: x.cumprod(dim=0).var(dim=0, correction=1), [1.0]),
    ("cumprod_one_element_log", lambda t, x: x.cumprod(dim=0).log(), [[0.0]]),
    ("cumprod_zero_normalize",
     lambda t, x: t.nn.functional.normalize(x.cumprod(dim=0), dim=-1), [[0.0, 1.0, 1.0]]),
    ("cumprod_two_zeros_sqrt", lambda t, x: x.cumprod(dim=0).abs().sqrt(),
     [[0.0, 0.0, 4.0]]),
    ("cumprod_zero_inverse", lambda t, x: 1.0 / x.cumprod(dim=0), [[2.0, 0.0, 4.0]]),
    ("cumprod_three_zeros_inverse", lambda t, x: 1.0 / x.cumprod(dim=-1),
     [[0.0, 2.0, 0.0, 3.0, 0.0]]),
    ("cumprod_rows_zeros_sqrt", lambda t, x: x.cumprod(dim=1).abs().sqrt(),
     [[[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]]]),
    # torch's prod_backward: prod_safe_zeros_backward's exclusive cumulative products where
    # x holds a zero (the gradient itself over one element), prod / x where none; the branch
    # not taken passes back exact zeros
    ("prod_two_zeros_sqrt", lambda t, x: x.prod().abs().sqrt(),
     [[[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]]),
    ("prod_two_zeros_log", lambda t, x: x.prod().abs().log(), [[0.0, 3.0, 0.0]]),
    ("prod_dim_zeros_sqrt", lambda t, x: x.prod(dim=1).abs().sqrt(),
     [[[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]]]),
    ("prod_one_element_zero_log", lambda t, x: x.prod().log(), [[0.0]]),
    # var_backward without a degree of freedom: nan at the mean, inf elsewhere (a constant)
    ("var_no_dof_0d", lambda t, x: x.var(correction=1), [2.0]),
    ("std_n_equals_correction", lambda t, x: x.std(dim=0, correction=2),
     [[[1.0, 2.0], [3.0, 3.0]]]),
    # -- reductions ------------------------------------------------------------------------
    ("median_ties", lambda t, x: x.median() * x.median(), [[0.0, 1.0, -1.0, 1.0, 0.0, 2.0]]),
    ("median_dim_ties", lambda t, x: x.median(1).values ** 2,
     [[[0.0, 1.0, 1.0], [-2.0, 0.0, 0.5]]]),
    # -- complex abs through fft: abs's partial z / |z| has a derivative of its own ----------
    ("fft_abs", lambda t, x: t.fft.fft(x).abs(), [[1.0, 0.0, 0.0, 0.0]]),
    ("fft_abs_general", lambda t, x: t.fft.fft(x).abs(), [[1.0, 2.0, 0.0, -1.0]]),
    ("fft_abs_zero_bins", lambda t, x: t.fft.fft(x).abs(), [[1.0, 1.0, 1.0, 1.0]]),
    ("rfft_abs", lambda t, x: t.fft.rfft(x).abs(), [[1.0, 2.0, 0.0, -1.0, 3.0]]),
    ("ifft_abs_ortho", lambda t, x: t.fft.ifft(x, norm="ortho").abs(), [[0.5, -1.0, 2.0]]),
    # -- determinants: the cofactor matrix, also at singular matrices (torch's SVD formula) --
    ("det_singular", lambda t, x: t.linalg.det(x), [[[1.0, 2.0], [2.0, 4.0]]]),
    ("det_torch_singular", lambda t, x: t.det(x), [[[1.0, 0.0], [0.0, 0.0]]]),
    ("det_zero_matrix", lambda t, x: x.det(), [[[0.0, 0.0], [0.0, 0.0]]]),
    ("det_rank1_3x3", lambda t, x: t.linalg.det(x),
     [[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]]),
    ("det_batch_singular_and_regular", lambda t, x: t.linalg.det(x),
     [[[[1.0, 2.0], [2.0, 4.0]], [[2.0, 1.0], [1.0, 3.0]]]]),
    ("det_regular", lambda t, x: t.linalg.det(x), [[[1.0, 2.0], [3.0, 4.0]]]),
    ("det_underflow", lambda t, x: t.linalg.det(x), [[[1e-200, 0.0], [0.0, 1e-200]]]),
    ("logdet_regular", lambda t, x: t.logdet(x), [[[2.0, 1.0], [1.0, 3.0]]]),
    ("eigvalsh_repeated", lambda t, x: t.linalg.eigvalsh(x) ** 2, [[[2.0, 0.0], [0.0, 2.0]]]),
    # -- matrix norms ------------------------------------------------------------------------
    ("matrix_norm_zero", lambda t, x: t.linalg.matrix_norm(x), [[[0.0, 0.0], [0.0, 0.0]]]),
    ("matrix_norm_batch", lambda t, x: t.linalg.matrix_norm(x, dim=(0, 1)),
     [[[[0.0, 3.0], [0.0, 0.0]], [[0.0, 4.0], [0.0, 1.0]]]]),
    ("matrix_norm_nuc", lambda t, x: t.linalg.matrix_norm(x, "nuc"), [[[2.0, 0.0], [0.0, 1.0]]]),
    ("matrix_norm_inf", lambda t, x: t.linalg.matrix_norm(x, INF) ** 2,
     [[[2.0, -1.0], [0.0, 1.0]]]),
    # -- found by the fuzzer: the order of a rule's operations decides a second derivative -
    # torch divides the broadcast gradient (over no element: sums to 0 before dividing)
    ("divide_nothing_by_zero", lambda t, x, y: x.reshape(0, 3) / y, [[], 0.0]),
    ("divide_by_broadcast_zero", lambda t, x, y: x / y, [[1.0, -2.0, 0.0], 0.0]),
    ("mean_of_nothing", lambda t, x, y: t.linalg.vecdot(x.reshape(0, 3).mean(), y), [[], 1.0]),
    ("smooth_l1_of_nothing", lambda t, x, y:
        t.nn.functional.smooth_l1_loss(x.reshape(0, 3), x.reshape(0, 3)).mul_(y), [[], 1.0]),
    ("mean_rows", lambda t, x: x.mean(dim=1), [[[1.0, 2.0], [0.0, -1.0]]]),
    # prod: prod / x_i where the tensor holds no zero (inf / inf is nan), else the products
    # of the others
    ("prod_after_division_by_zero", lambda t, x, y: (x / y).prod(dim=0),
     [1.0, [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]]),
    ("prod_with_inf", lambda t, x: x.prod(), [[2.0, INF, 3.0]]),
    ("prod_with_nan", lambda t, x: x.prod(dim=0), [[[2.0, NAN], [3.0, 1.0]]]),
    ("prod_zero_in_one_row", lambda t, x: x.prod(dim=1), [[[2.0, 0.0, 3.0], [1.0, 2.0, 3.0]]]),

]


def _np(t):
    return np.asarray(t.detach().numpy())


def _weights(lib, like, start):
    return lib.arange(start, like.numel() + start, dtype=lib.float64).reshape(like.shape)


def _run(lib, fn, leaves):
    """value, d(w1 . f)/dx with create_graph, d(w2 . d(w1 . f)/dx)/dx, per leaf."""
    xs = [lib.tensor(d, dtype=lib.float64, requires_grad=True) for d in leaves]
    out = fn(lib, *xs)
    g1 = lib.autograd.grad((out * _weights(lib, out, 1)).sum(), xs, create_graph=True,
                           allow_unused=True)
    g1 = [lib.zeros_like(x) if g is None else g for g, x in zip(g1, xs)]
    second = sum((g * _weights(lib, g, 2)).sum() for g in g1)
    g2 = [None] * len(xs)
    if second.requires_grad:
        g2 = lib.autograd.grad(second, xs, allow_unused=True)
    g2 = [lib.zeros_like(x) if g is None else g for g, x in zip(g2, xs)]
    return [_np(out)] + [_np(g) for g in g1] + [_np(g) for g in g2]


@pytest.mark.parametrize("name,fn,leaves", CASES, ids=[c[0] for c in CASES])
def test_second_derivative_matches_torch(backend, name, fn, leaves):
    want = _run(torch, fn, leaves)
    got = _run(polygrad, fn, leaves)
    n = len(leaves)
    labels = ["value"] + [f"grad {i}" for i in range(n)] + [f"second {i}" for i in range(n)]
    for what, g, w in zip(labels, got, want):
        assert g.shape == w.shape, f"{what}: shape {g.shape} != torch {w.shape}"
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=what)


def test_a_nan_where_torch_has_a_number_fails():
    """The comparison sees a NaN in the wrong place: sinc's true second derivative at 0 is
    -pi^2/3, torch's (and polygrad's) is nan."""
    got = _run(polygrad, lambda t, x: t.sinc(x), [[0.0]])[2]
    assert np.isnan(got).all()
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(got, [-math.pi ** 2 / 3], equal_nan=True)


# -- forward mode: the tangent of each program along fixed directions, against torch's -----
TANGENT_CASES = [
    ("xlogy_zeros", lambda t, x, y: t.xlogy(x, y), [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]]),
    ("sinc_zero", lambda t, x: t.sinc(x), [[0.0, 0.5, 1.0]]),
    ("logit_edges", lambda t, x: t.logit(x), [[0.0, 0.5, 1.0, 1.5]]),
    ("logit_eps", lambda t, x: t.logit(x, eps=0.1), [[0.0, 0.5, 1.0]]),
    ("atan2_origin", lambda t, y, x: t.atan2(y, x), [[0.0, 1.0], [0.0, 2.0]]),
    ("copysign_zero", lambda t, x, y: t.copysign(x, y), [[0.0, 1.0, -2.0], [1.0, -1.0, 0.0]]),
    ("pow_base0", lambda t, x, y: x ** y, [[0.0, 0.0, 2.0], [2.0, -1.0, 0.5]]),
    ("bce_edges", lambda t, x, y: t.nn.functional.binary_cross_entropy(x, y, reduction="none"),
     [[0.0, 1.0, 0.3], [0.0, 1.0, 0.5]]),
    ("bce_mean", lambda t, x, y: t.nn.functional.binary_cross_entropy(x, y),
     [[0.0, 1.0, 0.3], [0.0, 1.0, 0.5]]),
    ("fft_abs_zero_bin", lambda t, x: t.fft.fft(x).abs(), [[1.0, 2.0, 0.0, -1.0]]),
    ("logaddexp_inf", lambda t, x, y: t.logaddexp(x, y), [[0.0, 1.0, -INF], [0.0, -INF, -INF]]),
    ("remainder_by_zero", lambda t, x, y: t.remainder(x, y), [[1.5, -2.5], [0.0, 1.0]]),
    ("lerp", lambda t, x, y: t.lerp(x, y, 0.75), [[0.0, 1.0], [2.0, 3.0]]),
    ("median_ties", lambda t, x: x.median(), [[0.0, 1.0, 1.0, 2.0]]),
    ("det_regular", lambda t, x: t.linalg.det(x), [[[1.0, 2.0], [3.0, 4.0]]]),
]


def _tangent(lib, fn, leaves):
    fa = lib.autograd.forward_ad
    with fa.dual_level():
        xs = [fa.make_dual(lib.tensor(d, dtype=lib.float64),
                           lib.ones(np.shape(d), dtype=lib.float64) * (i + 1))
              for i, d in enumerate(leaves)]
        primal, tangent = fa.unpack_dual(fn(lib, *xs))
        return _np(primal), _np(tangent)


@pytest.mark.parametrize("name,fn,leaves", TANGENT_CASES, ids=[c[0] for c in TANGENT_CASES])
def test_tangent_matches_torch(backend, name, fn, leaves):
    want = _tangent(torch, fn, leaves)
    got = _tangent(polygrad, fn, leaves)
    for what, g, w in zip(("value", "tangent"), got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=what)
