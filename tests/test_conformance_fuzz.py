"""Differential fuzzing: random small programs from the primitive table, polygrad's
gradients on each backend against torch.autograd (float64, same inputs)."""

import numpy as np
import pytest
from conftest import BACKENDS
from hypothesis import HealthCheck, given, settings

from polygrad_conformance.fuzz import programs, run_polygrad, run_torch

pytest.importorskip("torch")


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(program=programs())
def test_random_programs_match_torch(backend, program):
    value, grads = run_polygrad(program, backend)
    t_value, t_grads = run_torch(program)
    np.testing.assert_allclose(value, t_value, rtol=1e-9, atol=1e-9, err_msg=str(program))
    for i, (g, tg) in enumerate(zip(grads, t_grads)):
        np.testing.assert_allclose(g, tg, rtol=1e-7, atol=1e-9,
                                   err_msg=f"d out / d x{i} of {program}")

