"""Gradients at the edges (issue 13), each compared with real torch: zeros, ties, NaN,
0-d and empty shapes, n == correction, scalar bases, and the dtype of ``.grad``.

One table: a case is a program written once against a torch-like module (``polygrad``
itself or ``torch``) and its inputs; the test runs it on both, on every CPU backend, and
compares the outputs, the gradients and the gradients' dtypes.
"""

import math

import numpy as np
import pytest

import polygrad
import polygrad.ops as pg_ops

torch = pytest.importorskip("torch")

NAN = float("nan")
INF = math.inf


def _f64(*data):
    return [(d, "float64") for d in data]


def _f32(*data):
    return [(d, "float32") for d in data]


# (id, program(lib, *leaves) -> tensor or tuple of tensors, leaves: [(data, dtype)])
CASES = [
    # -- prod at zeros ----------------------------------------------------------------------
    ("prod_one_zero", lambda t, x: x.prod(), _f64([2.0, 0.0, 3.0])),
    ("prod_two_zeros", lambda t, x: x.prod(), _f64([2.0, 0.0, 0.0, 3.0])),
    ("prod_dim_zeros", lambda t, x: x.prod(1), _f64([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0],
                                                       [1.0, 2.0, 4.0]])),
    ("prod_dim_keepdim", lambda t, x: x.prod(0, keepdim=True),
     _f64([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 5.0, 4.0]])),
    ("prod_zero_f32", lambda t, x: x.prod(-1), _f32([[2.0, 0.0, 3.0], [1.0, 2.0, 3.0]])),
    ("prod_all_zero", lambda t, x: x.prod(), _f64([0.0, 0.0])),
    # -- norms and std at a zero point -----------------------------------------------------
    ("norm2_zero", lambda t, x: x.norm(), _f64([0.0, 0.0, 0.0])),
    ("norm3_zero", lambda t, x: x.norm(3), _f64([0.0, 0.0, 0.0])),
    ("norm05_zero", lambda t, x: x.norm(0.5), _f64([0.0, 0.0, 0.0])),
    ("norm2_dim_zero", lambda t, x: x.norm(2, 1), _f64([[0.0, 0.0], [3.0, 4.0]])),
    ("norm3_partial_zero", lambda t, x: x.norm(3), _f64([0.0, 1.0, -2.0])),
    ("norm05_partial_zero", lambda t, x: x.norm(0.5), _f64([0.0, 1.0, -2.0])),
    ("norm1_inf_dim", lambda t, x: x.norm(1, 0) + x.norm(float("inf"), 0),
     _f64([[0.0, 1.0], [0.0, -1.0]])),
    ("std_constant", lambda t, x: x.std(), _f64([1.0, 1.0, 1.0])),
    ("std_dim_constant", lambda t, x: x.std(1), _f64([[2.0, 2.0], [1.0, 3.0]])),
    ("norm2_zero_f32", lambda t, x: x.norm(), _f32([0.0, 0.0])),
    # -- pow at exponent 0 and base 0 ----------------------------------------------------------
    ("pow0_at_zero", lambda t, x: x ** 0, _f64([0.0, 1.0, 2.0])),
    ("pow0_tensor_exp", lambda t, x, y: x ** y, _f64([0.0, 0.0, 2.0], [0.0, 1.0, 0.0])),
    ("pow_base0_exp2", lambda t, x: x ** 2.0, _f64([0.0, 3.0])),
    ("pow_scalar_base0", lambda t, x: 0.0 ** x, _f64([1.0, 2.0])),
    # -- remainder and fmod ----------------------------------------------------------------------
    ("mod_scalar", lambda t, x: 2 * x + x % 1, _f64([0.5, 1.7, -2.3])),
    ("remainder_both", lambda t, x, y: t.remainder(x, y), _f64([5.5, -3.2, 7.0], [2.0, 1.5, -3.0])),
    ("mod_both", lambda t, x, y: x % y, _f64([5.5, -3.2, 7.0], [2.0, 1.5, -3.0])),
    ("fmod_both", lambda t, x, y: t.fmod(x, y), _f64([5.5, -3.2, 7.0], [2.0, 1.5, -3.0])),
    ("fmod_method_scalar", lambda t, x: x.fmod(1.5), _f64([5.5, -3.2, 7.0])),
    ("remainder_f32", lambda t, x, y: x.remainder(y), _f32([5.5, -3.2], [2.0, 1.5])),
    # -- max/min(dim) route to the index; amax/amin split; clamp ties go to x ------------------
    ("max_dim_ties", lambda t, x: x.max(1).values, _f64([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]])),
    ("min_dim_ties", lambda t, x: x.min(0, keepdim=True)[0],
     _f64([[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]])),
    ("max_fn_dim_ties", lambda t, x: t.max(x, 1)[0], _f64([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]])),
    ("amax_ties", lambda t, x: x.amax(1), _f64([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]])),
    ("amin_ties", lambda t, x: t.amin(x, 0), _f64([[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]])),
    ("max_all_ties", lambda t, x: x.max(), _f64([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]])),
    ("clamp_tensor_min_ties", lambda t, x, lo: t.clamp(x, min=lo),
     _f64([1.0, 2.0, 3.0], [1.0, 3.0, 3.0])),
    ("clamp_tensor_max_ties", lambda t, x, hi: t.clamp(x, max=hi),
     _f64([1.0, 2.0, 3.0], [1.0, 1.0, 3.0])),
    ("clamp_tensor_both_ties", lambda t, x, lo, hi: t.clamp(x, lo, hi),
     _f64([1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [2.0, 2.0, 3.0])),
    ("clamp_method_tensor_min", lambda t, x, lo: x.clamp(min=lo),
     _f64([1.0, 2.0, 3.0], [1.0, 3.0, 0.0])),
    ("clamp_method_tensor_max", lambda t, x, hi: x.clamp(max=hi),
     _f64([1.0, 2.0, 3.0], [1.0, 3.0, 0.0])),
    # -- gradients in their input's dtype ----------------------------------------------------
    ("grad_dtype_mul64", lambda t, x, y: x * y, [([1.0, 2.0], "float32"), ([3.0, 4.0], "float64")]),
    ("grad_dtype_scalar_base", lambda t, x: 2.0 ** x, _f32([1.0, 2.5])),
    ("grad_dtype_add_bcast", lambda t, x, y: x + y, [([1.0, 2.0], "float32"), ([[3.0], [4.0]], "float64")]),
    ("pow_int_tensor_f32", lambda t, x: x.pow(t.tensor([2, 3])), _f32([1.5, 2.0])),
    ("pow_int_tensor_op_f32", lambda t, x: x ** t.tensor([2, 3]), _f32([1.5, 2.0])),
    # -- NaN inputs ---------------------------------------------------------------------------
    ("max_nan", lambda t, x: x.max(), _f64([NAN, 1.0, 0.2])),
    ("max_two_nan", lambda t, x: x.max(), _f64([NAN, NAN, 0.2])),
    # amax/amin with a NaN in a slice: every element of that slice NaN (0 / 0), as torch's
    ("amax_nan", lambda t, x: x.amax(), _f64([NAN, 1.0, 0.2])),
    ("amax_dim_nan", lambda t, x: x.amax(0), _f64([[1.0, NAN, 1.0], [1.0, 2.0, 0.0]])),
    ("amin_dim_nan", lambda t, x: x.amin(1), _f64([[1.0, NAN, 1.0], [1.0, 2.0, 0.0]])),
    ("median_nan", lambda t, x: x.median(), _f64([NAN, 1.0, NAN])),
    ("max_dim_nan", lambda t, x: x.max(1).values, _f64([[NAN, 1.0, 0.2], [1.0, 2.0, 0.0]])),
    ("min_nan", lambda t, x: x.min(), _f64([1.0, NAN, 0.2])),
    ("relu_nan", lambda t, x: t.relu(x), _f64([NAN, 1.0, -0.2])),
    ("abs_nan", lambda t, x: x.abs(), _f64([NAN, 1.0, -0.2])),
    # -- 0-d and empty ---------------------------------------------------------------------------
    ("cumsum_0d", lambda t, x: x.cumsum(0), _f64(2.5)),
    ("mean_dim0_0d", lambda t, x: x.mean(0), _f64(2.5)),
    ("var_dim0_0d", lambda t, x: x.var(0, unbiased=False), _f64(2.5)),
    ("std_dim0_0d", lambda t, x: x.std(0, unbiased=False), _f64(2.5)),
    ("squeeze_tuple_non1", lambda t, x: x.squeeze((0,)), _f64([[1.0, 2.0]] * 2)),
    ("squeeze_tuple_mixed", lambda t, x: x.squeeze((0, 1)), _f64([[1.0, 2.0]])),
    ("softmax_empty", lambda t, x: t.softmax(x, 1), _f64([[]] * 2)),
    ("log_softmax_empty", lambda t, x: t.log_softmax(x, 1), _f64([[]] * 2)),
    ("logsumexp_empty", lambda t, x: t.logsumexp(x, 1), _f64([[]] * 2)),
    # -- n == correction --------------------------------------------------------------------------
    ("var_n_eq_correction", lambda t, x: x.var(), _f64([1.5])),
    ("std_n_eq_correction", lambda t, x: x.std(1), _f64([[1.5], [2.0]])),
    # -- scalar bases --------------------------------------------------------------------------
    ("scalar_base_pow", lambda t, x: 2.0 ** x, _f64([0.0, 1.5, -1.0])),
    ("scalar_base_pow_f32", lambda t, x: 3 ** x, _f32([0.0, 1.5])),
    # -- torch-style functions with torch's backward formulas at their singular points ------
    # median(): every element equal to the median shares its gradient; a NaN is the median
    ("median_ties", lambda t, x: x.median(), _f64([0.0, 1.0, -1.0, 1.0, 0.0, 2.0])),
    ("median_ties_2d", lambda t, x: t.median(x), _f64([[1.0, 1.0], [1.0, 0.0]])),
    ("median_nan", lambda t, x: x.median(), _f64([1.0, NAN, 2.0, NAN])),
    ("median_neg_inf", lambda t, x: x.median(), _f64([1.0, -math.inf, -math.inf])),
    ("median_dim_ties", lambda t, x: x.median(1), _f64([[0.0, 1.0, 1.0], [-2.0, 0.0, 0.5]])),
    ("median_dim_nan", lambda t, x: x.median(0, keepdim=True),
     _f64([[1.0, NAN], [NAN, 2.0], [0.0, NAN]])),
    # xlogy: d/dy = x / y (nan at 0, 0); d/dx = log(y), 0 where x == 0 and y <= 0
    ("xlogy_zeros", lambda t, x, y: t.xlogy(x, y),
     _f64([0.0, 0.0, 1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, -1.0, 3.0, 2.0])),
    ("special_xlogy_zeros", lambda t, x, y: t.special.xlogy(x, y),
     _f64([0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0])),
    ("xlog1py_edges", lambda t, x, y: t.special.xlog1py(x, y),
     _f64([0.0, 0.0, 1.0, 0.0, 2.0], [-1.0, 0.0, -1.0, -2.0, 3.0])),
    ("xlogy_f32", lambda t, x, y: t.xlogy(x, y), _f32([0.0, 2.0], [0.0, 0.5])),
    # atan2: 0 at the origin (also where x^2 + y^2 underflows)
    ("atan2_origin", lambda t, y, x: t.atan2(y, x),
     _f64([0.0, 1.0, 0.0, -1.0, 1e-200, -0.0], [0.0, 0.0, 1.0, -1.0, 1e-200, 0.0])),
    # pow: d/dy at base 0 is 0 for y >= 0 and -inf for y < 0
    ("pow_base0_exps", lambda t, x, y: x ** y,
     _f64([0.0, 0.0, 0.0, 0.0, 2.0], [0.0, 2.0, -1.0, 0.5, -1.0])),
    ("pow_scalar_base0_neg", lambda t, y: 0.0 ** y, _f64([-1.0, 2.0, 0.0])),
    # copysign: out / x, 0 at x == 0
    ("copysign_zeros", lambda t, x, y: t.copysign(x, y),
     _f64([0.0, 1.0, -1.0, -0.0, 2.0], [1.0, -1.0, 0.0, -1.0, -0.0])),
    # fmax / fmin: all of a tie goes to the first argument; a NaN is ignored
    ("fmax_ties_nan", lambda t, x, y: t.fmax(x, y),
     _f64([1.0, NAN, 2.0, 0.0, NAN], [1.0, 1.0, NAN, 0.0, NAN])),
    ("fmin_ties_nan", lambda t, x, y: t.fmin(x, y),
     _f64([1.0, NAN, 2.0, -0.0, 3.0], [1.0, 1.0, NAN, 0.0, 2.0])),
    ("fmax_method_f32", lambda t, x, y: x.fmax(y), _f32([1.0, 2.0], [1.0, 3.0])),
    # sinc: 1 and gradient 0 at 0
    ("sinc_zero", lambda t, x: t.sinc(x), _f64([0.0, 0.5, -1.0, 2.0, 1e-9])),
    ("sinc_method_f32", lambda t, x: x.sinc(), _f32([0.0, 0.25])),
    # logit: inf at 0 and 1, nan outside [0, 1]; with eps, 0 outside [eps, 1 - eps]
    ("logit_edges", lambda t, x: t.logit(x), _f64([0.0, 0.5, 1.0, -0.5, 1.5])),
    ("logit_eps", lambda t, x: t.logit(x, eps=0.1), _f64([0.0, 0.5, 1.0, 0.05, 0.1, 0.9])),
    ("logit_method", lambda t, x: x.logit(1e-6), _f64([0.0, 0.25, 1.0])),
    ("special_logit", lambda t, x: t.special.logit(x), _f64([0.0, 0.25, 1.0])),
    # binary cross entropy: (x - y) / max(x (1 - x), 1e-12), logs clamped at -100
    ("bce_edges", lambda t, x, y: t.nn.functional.binary_cross_entropy(x, y),
     _f64([0.0, 1.0, 0.5, 1.0, 0.0, 1e-13, 0.3], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.2])),
    ("bce_weight_sum", lambda t, x, y: t.nn.functional.binary_cross_entropy(
        x, y, weight=t.tensor([1.0, 2.0, 3.0], dtype=x.dtype), reduction="sum"),
     _f64([0.0, 1.0, 0.25], [0.0, 0.0, 1.0])),
    ("bce_none_f32", lambda t, x, y: t.nn.functional.binary_cross_entropy(
        x, y, reduction="none"), _f32([0.0, 1.0, 0.25], [0.0, 1.0, 0.5])),
    # det of singular matrices: tests/test_edges_second.py (torch's plain backward gives 0
    # there, its create_graph backward the cofactor matrix: docs/semantics.md)
    # logdet: nan where det < 0, with no gradient there (torch's where over slogdet)
    ("logdet_negative_det", lambda t, x: t.logdet(x), _f64([[0.0, 1.0], [1.0, 0.0]])),
    ("logdet_batch", lambda t, x: x.logdet(),
     _f64([[[0.0, 1.0], [1.0, 0.0]], [[2.0, 1.0], [1.0, 3.0]]])),
    # matrix norms: the Frobenius norm's gradient is 0 at the zero matrix; torch's signature
    ("matrix_norm_zero", lambda t, x: t.linalg.matrix_norm(x), _f64([[0.0, 0.0], [0.0, 0.0]])),
    ("matrix_norm_batch_zero", lambda t, x: t.linalg.matrix_norm(x, "fro"),
     _f64([[[0.0, 0.0], [0.0, 0.0]], [[3.0, 0.0], [4.0, 0.0]]])),
    ("matrix_norm_nuc", lambda t, x: t.linalg.matrix_norm(x, "nuc"), _f64([[2.0, 0.0], [0.0, 1.0]])),
    ("matrix_norm_2", lambda t, x: t.linalg.matrix_norm(x, 2), _f64([[2.0, 0.0], [0.0, 1.0]])),
    ("matrix_norm_m2", lambda t, x: t.linalg.matrix_norm(x, -2), _f64([[2.0, 0.0], [0.0, 1.0]])),
    ("matrix_norm_1_ties", lambda t, x: t.linalg.matrix_norm(x, 1), _f64([[2.0, -1.0], [0.0, 1.0]])),
    ("matrix_norm_m1", lambda t, x: t.linalg.matrix_norm(x, -1), _f64([[2.0, -1.0], [0.0, 3.0]])),
    ("matrix_norm_inf", lambda t, x: t.linalg.matrix_norm(x, math.inf),
     _f64([[2.0, -1.0], [0.0, 1.0]])),
    ("matrix_norm_minf", lambda t, x: t.linalg.matrix_norm(x, -math.inf),
     _f64([[2.0, -1.0], [0.0, 3.0]])),
    ("matrix_norm_dim_keepdim", lambda t, x: t.linalg.matrix_norm(x, "fro", dim=(0, 2),
                                                                  keepdim=True),
     _f64([[[0.0, 0.0]], [[0.0, 0.0]]])),
    ("matrix_norm_nuc_dim", lambda t, x: t.linalg.matrix_norm(x, "nuc", (2, 0)),
     _f64([[[1.0, 2.0]], [[3.0, 0.0]]])),
    ("matrix_norm_dtype", lambda t, x: t.linalg.matrix_norm(x, dtype=t.float64),
     _f32([[0.0, 3.0], [4.0, 0.0]])),
    ("linalg_norm_matrix_zero", lambda t, x: t.linalg.norm(x), _f64([[0.0, 0.0], [0.0, 0.0]])),
    ("linalg_norm_ords", lambda t, x: t.linalg.norm(x, "nuc") + t.linalg.norm(x, 1)
     + t.linalg.norm(x, dim=1).sum() + t.linalg.norm(x[0], math.inf),
     _f64([[3.0, 4.0], [0.0, 1.0]])),
    # |fft(x)|, and .real as a property
    ("fft_abs", lambda t, x: t.fft.fft(x).abs(), _f64([1.0, 0.0, 0.0, 0.0])),
    ("rfft_real", lambda t, x: t.fft.rfft(x).real, _f64([1.0, 2.0, 0.0, 0.0])),
    ("fft_imag", lambda t, x: t.fft.fft(x).imag, _f64([1.0, 2.0, 0.0, -1.0])),
    # lerp as torch's two formulas (|weight| < 0.5 or not): exact at weight 1, inf ends
    ("lerp_inf_end", lambda t, x, y, w: t.lerp(x, y, w),
     _f64([0.0, 1.0, INF, 1.0], [0.0, 2.0, 1.0, -INF], [0.5, 0.0, 0.5, 0.25])),
    ("lerp_scalar_weights", lambda t, x, y: t.lerp(x, y, 1.0) + x.lerp(y, 0.7) + t.lerp(x, y, -0.6),
     _f64([1.0, 2.0, 3.0], [2.0, -1.0, 3.0])),
    # eigenvalues only: no division by the gaps of repeated eigenvalues
    ("eigvalsh_repeated", lambda t, x: t.linalg.eigvalsh(x), _f64([[2.0, 0.0], [0.0, 2.0]])),
    ("eigh_values_repeated", lambda t, x: t.linalg.eigh(x)[0],
     _f64([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])),
    # expit (the sigmoid row): 0, not nan, at -inf
    ("expit_inf", lambda t, x: t.special.expit(x), _f64([0.0, INF, -INF])),
    # binary_cross_entropy_with_logits with pos_weight: -sigmoid(-z) weighted, also at z == 0
    ("bce_logits_pos_weight_zero", lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
        x, y, pos_weight=t.tensor([2.0, 1.0, 3.0], dtype=x.dtype)),
     _f64([0.0, -50.0, 50.0], [1.0, 0.0, 1.0])),
    ("bce_logits_pos_weight_inf", lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(
        x, y, pos_weight=t.tensor([2.0, 0.5], dtype=x.dtype), reduction="sum"),
     _f64([INF, -40.0], [0.0, 1.0])),     # (at -inf torch's forward is nan: 0 * -inf)
    # every target ignored: nan, with a zero gradient (torch's kernel skips ignored targets)
    ("cross_entropy_all_ignored", lambda t, x: t.nn.functional.cross_entropy(
        x, t.tensor([-100, -100])), _f64([[0.0, 1.0], [2.0, 2.0]])),
    ("cross_entropy_all_ignored_smoothing", lambda t, x: t.nn.functional.cross_entropy(
        x, t.tensor([1, 1]), ignore_index=1, label_smoothing=0.1), _f64([[0.0, 1.0], [2.0, 2.0]])),
    ("nll_all_ignored", lambda t, x: t.nn.functional.nll_loss(x, t.tensor([-100])),
     _f64([[-1.0, -2.0]])),
    # a -inf logit in a row (a masked class) leaves the loss of the other classes finite
    ("cross_entropy_masked_logit", lambda t, x: t.nn.functional.cross_entropy(
        x, t.tensor([1, 0])), _f64([[0.0, 1.0, -INF], [2.0, -INF, 2.0]])),
    ("cross_entropy_unbatched", lambda t, x: t.nn.functional.cross_entropy(x, t.tensor(1)),
     _f64([0.0, 1.0, -INF])),
    ("nll_weight_ignore_inf", lambda t, x: t.nn.functional.nll_loss(
        x, t.tensor([0, 1, 2]), weight=t.tensor([1.0, 2.0, 0.5], dtype=x.dtype), ignore_index=2),
     _f64([[-1.0, -INF, -2.0], [-INF, -3.0, 0.0], [-1.0, -1.0, -INF]])),
    # clamp with tensor bounds: a NaN x passes no gradient, as torch's
    ("clamp_tensor_bound_nan_x", lambda t, x, hi: t.clamp(x, max=hi),
     _f64([NAN, 1.0, 2.0], [0.0, NAN, 3.0])),
    ("clamp_tensor_both_nan_x", lambda t, x, lo, hi: x.clamp(lo, hi),
     _f64([NAN, 0.5], [0.0, 0.0], [1.0, 1.0])),
    # division by a Python zero: inf gradients, as torch's (it raised ZeroDivisionError)
    ("divide_by_python_zero", lambda t, x: x / 0.0 + x / -0.0 + x / 0, _f64([1.0, 0.0, -2.0])),
    ("div_inplace_by_zero", lambda t, x: (lambda y: (y.div_(0.0), y * x)[1])(x.clone()),
     _f64([1.0, 2.0])),
    # Tensor.max(other) / min(other): elementwise, ties split as maximum's
    ("max_method_other", lambda t, x, y: x.max(y) + x.min(y) * 2,
     _f64([1.0, 2.0, 3.0], [1.0, 3.0, 0.0])),
    # softmax of a row with +inf: nan, as torch's (a row of -inf too)
    ("softmax_pos_inf", lambda t, x: t.softmax(x, -1), _f64([[0.0, INF], [-INF, -INF], [0.0, 1.0]])),
    ("log_softmax_pos_inf", lambda t, x: t.log_softmax(x, -1), _f64([[0.0, INF], [0.0, 1.0]])),
    # round(decimals=): a zero gradient
    ("round_decimals", lambda t, x: t.round(x, decimals=1) + x.round(decimals=-1) + x,
     _f64([0.25, 1.35, -2.5, 15.0])),
]


def _make(lib, data, dtype):
    return lib.tensor(data, dtype=getattr(lib, dtype), requires_grad=True)


def _np(t):
    return np.asarray(t.detach().numpy())


def _dtype_name(dt):
    return str(dt).rsplit(".", 1)[-1]


def _outputs(out):
    return list(out) if isinstance(out, tuple) else [out]


def _run(lib, fn, leaves):
    xs = [_make(lib, d, dt) for d, dt in leaves]
    outs = _outputs(fn(lib, *xs))
    loss = None
    for o in outs:
        if not o.dtype.is_floating_point:
            continue
        # fixed, distinct weights so that every gradient entry is checked
        w = lib.arange(1, o.numel() + 1, dtype=o.dtype).reshape(o.shape)
        term = (o * w).sum()
        loss = term if loss is None else loss + term
    grads = [None] * len(xs)
    if loss is not None and loss.requires_grad:
        loss.backward()
        grads = [x.grad for x in xs]
    return outs, grads


def _same(a, b, what, rtol):
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("name,fn,leaves", CASES, ids=[c[0] for c in CASES])
def test_edge_matches_torch(backend, name, fn, leaves):
    want_outs, want_grads = _run(torch, fn, leaves)
    got_outs, got_grads = _run(polygrad, fn, leaves)
    assert len(got_outs) == len(want_outs)
    for i, (g, w) in enumerate(zip(got_outs, want_outs)):
        assert _dtype_name(g.dtype) == _dtype_name(w.dtype), f"output {i} dtype"
        rtol = 1e-6 if w.dtype == torch.float32 else 1e-12
        _same(_np(g), _np(w), f"output {i}", rtol)
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        if w is None:
            assert g is None or not np.any(_np(g)), f"grad {i}: torch has none"
            continue
        assert g is not None, f"grad {i}: torch has one, polygrad none"
        assert _dtype_name(g.dtype) == _dtype_name(w.dtype), f"grad {i} dtype"
        rtol = 1e-5 if w.dtype == torch.float32 else 1e-10
        _same(_np(g), _np(w), f"grad {i}", rtol)


# -- double backward of a scalar base --------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scalar_base_pow_double_backward(backend, dtype):
    def second(lib):
        x = lib.tensor([0.5, -1.0, 2.0], dtype=getattr(lib, dtype), requires_grad=True)
        (g,) = lib.autograd.grad((2.0 ** x).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        return _np(g), _np(gg), _dtype_name(gg.dtype)
    got, want = second(polygrad), second(torch)
    assert got[2] == want[2]
    _same(got[0], want[0], "grad", 1e-5)
    _same(got[1], want[1], "grad of grad", 1e-5)


# -- setitem on a 0-d result, take ---------------------------------------------------------

def test_setitem_on_0d_result(backend):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = (x * 2).sum()
        y[...] = 7.0
        z = (x * 3).sum() * 1.0
        z[()] = z * 2
        z.backward()
        return float(y), float(z), _np(x.grad)
    got, want = run(polygrad), run(torch)
    assert got[:2] == want[:2]
    _same(got[2], want[2], "grad", 1e-12)


@pytest.mark.parametrize("make", [lambda t, x: x.detach()[0, 1], lambda t, x: x.detach().sum(),
                                  lambda t, x: x.detach().max()], ids=["index", "sum", "max"])
def test_setitem_on_0d_result_without_graph(backend, make):
    def run(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
        y = make(lib, x)
        y[()] = 5.0
        y[...] = y * 2
        return y.shape, float(y)
    assert run(polygrad) == run(torch)


def test_take(backend):
    def run(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        y = lib.take(x, lib.tensor([3, 0, 3]))
        (y * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        return _np(y), _np(x.grad)
    got, want = run(polygrad), run(torch)
    _same(got[0], want[0], "take", 0)
    _same(got[1], want[1], "take grad", 0)


def test_array_api_take_axis(backend):
    x = pg_ops.asarray([[1.0, 2.0], [3.0, 4.0]])
    x.requires_grad_(True)
    y = pg_ops.take(x, pg_ops.asarray([1, 1]), axis=1)
    y.sum().backward()
    assert y.tolist() == [[2.0, 2.0], [4.0, 4.0]]
    assert x.grad.tolist() == [[0.0, 2.0], [0.0, 2.0]]


# -- cumsum 0-d and linspace without its endpoint -----------------------------------------------

def test_cumulative_sum_0d_keeps_shape(backend):
    assert polygrad.cumsum(polygrad.tensor(2.5), 0).shape == ()


@pytest.mark.parametrize("start,stop,num", [(0.0, 1.0, 248), (-3.5, 7.25, 31), (1.0, 1e6, 7),
                                            (0.0, -1.0, 1), (2.0, 3.0, 0)])
def test_linspace_endpoint_false_bit_exact(backend, start, stop, num):
    got = pg_ops.linspace(start, stop, num, endpoint=False, dtype=pg_ops.float64)
    want = np.linspace(start, stop, num, endpoint=False)
    assert np.array_equal(np.asarray(got.numpy()), want)
    assert math.isfinite(float(num))
