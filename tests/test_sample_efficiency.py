"""Test-time sample efficiency on the exact pass@k curve: closed-form crossings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sb3_maxrl.common.exact_evaluation import (
    exact_pass_at_real_k,
    pass_at_k_from_probabilities,
    sample_efficiency_ratio,
    samples_to_reach,
)


def test_the_real_k_curve_matches_the_integer_ks() -> None:
    probabilities = np.array([0.0, 1e-4, 0.03, 0.5, 1.0])
    exact = pass_at_k_from_probabilities(probabilities, ks=[1, 7, 64, 1000])
    for k, value in exact.pass_at_k.items():
        assert exact_pass_at_real_k(probabilities, k) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("p, target", [(0.1, 0.5), (0.01, 0.9), (0.3, 0.3), (0.999, 0.9999999)])
def test_one_start_state_crosses_where_the_closed_form_says(p: float, target: float) -> None:
    # 1 - (1 - p)^k = target  <=>  k = log(1 - target) / log(1 - p)
    assert samples_to_reach([p], target) == pytest.approx(math.log1p(-target) / math.log1p(-p), rel=1e-8)


def test_a_curve_whose_limit_is_below_the_target_never_reaches_it() -> None:
    # half the start states are never solved: pass@k -> 0.5 from below
    assert samples_to_reach([0.0, 0.2], 0.51) == math.inf
    assert samples_to_reach([0.0, 0.2], 0.49) < math.inf
    assert sample_efficiency_ratio([0.0, 0.2], [0.1, 0.1], k=64) == 0.0


def test_the_ratio_of_two_single_states_is_the_ratio_of_their_log_failure_rates() -> None:
    # the reference reaches 1 - 0.9^64 at k = 64; p = 0.2 reaches it at 64 log(0.9) / log(0.8)
    assert sample_efficiency_ratio([0.2], [0.1], k=64) == pytest.approx(math.log(0.8) / math.log(0.9), rel=1e-8)
    assert sample_efficiency_ratio([0.1], [0.2], k=64) == pytest.approx(math.log(0.9) / math.log(0.8), rel=1e-8)
    assert sample_efficiency_ratio([0.1, 0.4], [0.1, 0.4], k=16) == pytest.approx(1.0, rel=1e-8)


def test_a_mixture_crosses_where_its_equation_has_its_root() -> None:
    # two states with q = 1 - p of 0.5 and 0.25 = 0.5^2: pass@k = 1 - (x + x^2) / 2 with x = 0.5^k; target 0.9 gives
    # x^2 + x - 0.2 = 0, x = (-1 + sqrt(1.8)) / 2, k = -log2(x)
    x = (-1 + math.sqrt(1.8)) / 2
    assert samples_to_reach([0.5, 0.75], 0.9) == pytest.approx(-math.log2(x), rel=1e-8)


def test_bad_targets_and_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        samples_to_reach([0.5], 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        samples_to_reach([1.5], 0.5)
    with pytest.raises(ValueError, match="k must be > 0"):
        exact_pass_at_real_k([0.5], 0)


def test_a_policy_whose_pass_at_1_already_reaches_the_target_needs_one_sample() -> None:
    # pass@1 = 0.9 > the reference's pass@64 = 1 - 0.99^64 = 0.47: one sample, the ratio is k
    assert samples_to_reach([0.9], 1 - 0.99**64) < 1
    assert sample_efficiency_ratio([0.9], [0.01], k=64) == 64.0
    assert sample_efficiency_ratio([0.9], [0.0], k=16) == 16.0  # the reference never succeeds
