"""Estimators against their exact targets (the registry, docs/estimators.md), by exact enumeration on a softmax bandit."""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction
from math import comb
from typing import get_args

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sb3_maxrl import ESTIMATORS, group_advantages, loo_weights, truncated_ml_weight
from sb3_maxrl.common.estimators import (
    BASELINES,
    ESTIMATOR_REGISTRY,
    BaselineName,
    BinaryLikelihoodWarning,
    EstimatorName,
    _loo_weights_full,
    _loo_weights_truncated,
    _unit_interval_quadrature,
    check_estimator_args,
    get_estimator,
    register_estimator,
)

LOGITS = np.array([0.3, -0.4, 0.1])
BINARY_ARMS = np.array([1.0, 0.0, 0.0])
CONTINUOUS_ARMS = np.array([0.9, 0.35, 0.05])
BINARY_ONLY = [name for name, entry in ESTIMATOR_REGISTRY.items() if entry.binary_only]
ignore_binary_warning = pytest.mark.filterwarnings("ignore::sb3_maxrl.common.estimators.BinaryLikelihoodWarning")


def expected_gradient(arm_likelihoods: np.ndarray, group_size: int, estimator: str, **kwargs) -> tuple[np.ndarray, float]:
    """E[(1/N) sum_i A_i grad log pi(a_i)] over every N-tuple of arms, and the pass rate p."""
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    tuples = np.array(list(itertools.product(range(len(probs)), repeat=group_size)))
    tuple_probs = probs[tuples].prod(axis=1)
    advantages = group_advantages(arm_likelihoods[tuples], estimator, **kwargs)
    scores = np.eye(len(probs))[tuples] - probs  # (M, N, arms): grad_theta log softmax
    per_tuple = (advantages[..., None] * scores).mean(axis=1)
    return tuple_probs @ per_tuple, float(probs @ arm_likelihoods)


def grad_pass_rate(arm_likelihoods: np.ndarray) -> np.ndarray:
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    return probs * (arm_likelihoods - probs @ arm_likelihoods)


@pytest.mark.parametrize("group_size", [2, 3, 5])
@pytest.mark.parametrize(
    ("estimator", "arms", "target_truncation"),
    [
        ("reinforce", BINARY_ARMS, 1),
        ("reinforce", CONTINUOUS_ARMS, 1),
        ("rloo", BINARY_ARMS, 1),
        ("rloo", CONTINUOUS_ARMS, 1),
        ("maxrl_full_cv", BINARY_ARMS, None),  # N l / K is a ratio estimator: unbiased for binary l only
    ],
)
def test_unbiased_estimators_hit_their_target(group_size, estimator, arms, target_truncation):
    gradient, pass_rate = expected_gradient(arms, group_size, estimator)
    target = truncated_ml_weight(pass_rate, target_truncation or group_size) * grad_pass_rate(arms)
    np.testing.assert_allclose(gradient, target, rtol=0, atol=1e-10)


@pytest.mark.parametrize("group_size", [2, 3, 4, 6])
def test_maxrl_raw_targets_j_n_and_practical_maxrl_targets_j_n_minus_1(group_size):
    raw, pass_rate = expected_gradient(BINARY_ARMS, group_size, "maxrl_raw")
    practical, _ = expected_gradient(BINARY_ARMS, group_size, "maxrl")
    np.testing.assert_allclose(raw, truncated_ml_weight(pass_rate, group_size) * grad_pass_rate(BINARY_ARMS), atol=1e-10)
    np.testing.assert_allclose(
        practical, truncated_ml_weight(pass_rate, group_size - 1) * grad_pass_rate(BINARY_ARMS), atol=1e-10
    )
    assert not np.allclose(raw, practical, atol=1e-6), "J_N and J_{N-1} must be distinguishable here"


def test_dr_grpo_is_scaled_pass_rate_gradient():
    gradient, _ = expected_gradient(CONTINUOUS_ARMS, 4, "dr_grpo")
    np.testing.assert_allclose(gradient, (1 - 1 / 4) * grad_pass_rate(CONTINUOUS_ARMS), atol=1e-10)


@pytest.mark.parametrize("arms", [BINARY_ARMS, CONTINUOUS_ARMS], ids=["binary", "continuous"])
@pytest.mark.parametrize("baseline", ["loo_pass", "loo_omega_mean", "none", 0.3])
@pytest.mark.parametrize(("group_size", "truncation"), [(3, 1), (3, 2), (3, 3), (5, 2), (5, 4), (5, None)])
def test_generalized_maxrl_targets_j_t(arms, baseline, group_size, truncation):
    gradient, pass_rate = expected_gradient(arms, group_size, "maxrl_general", truncation=truncation, baseline=baseline)
    target_t = group_size if truncation is None else truncation
    target = truncated_ml_weight(pass_rate, target_t) * grad_pass_rate(arms)
    np.testing.assert_allclose(gradient, target, rtol=0, atol=1e-10)


def test_group_baseline_equals_practical_maxrl_for_binary_likelihoods():
    likelihoods = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(
        group_advantages(likelihoods, "maxrl_general", baseline="group"), group_advantages(likelihoods, "maxrl"), atol=1e-12
    )


def test_biased_loo_mean_of_weighted_likelihoods_is_not_used():
    """MATH.md 7: subtracting the others' mean of omega_j l_j is biased; our baselines are not that."""
    likelihoods = np.array([[0.9, 0.2, 0.4]])
    omega = loo_weights(likelihoods)
    weighted = omega * likelihoods
    invalid_baseline = (weighted.sum(axis=1, keepdims=True) - weighted) / 2
    for baseline in ("loo_pass", "loo_omega_mean"):
        advantages = group_advantages(likelihoods, "maxrl_general", baseline=baseline)
        assert not np.allclose(advantages, weighted - invalid_baseline)


def exact_loo_weights(values: list[Fraction], truncation: int) -> list[Fraction]:
    group_size = len(values)
    weights = []
    for i in range(group_size):
        failures = [1 - v for j, v in enumerate(values) if j != i]
        elementary = [Fraction(1)] + [Fraction(0)] * (group_size - 1)
        for a in failures:
            for k in range(group_size - 1, 0, -1):
                elementary[k] += a * elementary[k - 1]
        weights.append(sum(elementary[k] / comb(group_size - 1, k) for k in range(truncation)))
    return weights


@pytest.mark.parametrize("group_size", [2, 3, 7, 12, 16])
def test_loo_weights_match_exact_rational_arithmetic(group_size):
    rng = np.random.default_rng(group_size)
    numerators = rng.integers(0, 1001, size=group_size)
    numerators[0], numerators[-1] = 0, 1000
    values = [Fraction(int(n), 1000) for n in numerators]
    likelihoods = np.array([[float(v) for v in values]])
    for truncation in sorted({1, 2, max(1, group_size // 2), group_size - 1, group_size}):
        exact = np.array([float(w) for w in exact_loo_weights(values, truncation)])
        computed = loo_weights(likelihoods, truncation)[0]
        np.testing.assert_allclose(computed, exact, rtol=1e-9, atol=0)


def test_quadrature_and_recurrence_agree_at_t_equals_n():
    likelihoods = torch.rand(3, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_loo_weights_full(likelihoods), _loo_weights_truncated(likelihoods, 64), rtol=1e-11, atol=0)


@pytest.mark.parametrize("group_size", [2, 5, 16, 64])
def test_binary_weights_are_n_over_k(group_size):
    rng = np.random.default_rng(group_size)
    likelihoods = (rng.random((20, group_size)) < 0.4).astype(float)
    omega = loo_weights(likelihoods)
    successes = likelihoods.sum(axis=1, keepdims=True)
    expected = np.where(likelihoods == 1, group_size / np.maximum(successes, 1), group_size / (successes + 1))
    np.testing.assert_allclose(omega, expected, rtol=1e-12)
    maxrl_raw = group_advantages(likelihoods, "maxrl_raw")
    np.testing.assert_allclose(group_advantages(likelihoods, "maxrl_general", baseline="none"), maxrl_raw, rtol=1e-12)


def test_weighted_mean_is_group_pass_probability():
    """MATH.md 9: (1/N) sum_j omega_j l_j = 1 - prod_j (1 - l_j) exactly at T = N."""
    likelihoods = np.random.default_rng(1).random((10, 33))
    omega = loo_weights(likelihoods)
    np.testing.assert_allclose((omega * likelihoods).mean(axis=1), 1 - np.prod(1 - likelihoods, axis=1), rtol=1e-12)


@ignore_binary_warning
@pytest.mark.parametrize("group_size", [1024, 4096])
@pytest.mark.parametrize("kind", ["binary", "continuous", "extremes"])
def test_loo_weights_stay_finite_and_bounded_for_large_groups(group_size, kind):
    rng = np.random.default_rng(0)
    if kind == "binary":
        likelihoods = (rng.random((2, group_size)) < 0.01).astype(float)
    elif kind == "continuous":
        likelihoods = rng.random((2, group_size)) ** 4
    else:
        likelihoods = rng.choice([0.0, 1.0, 1e-300, 0.5], size=(2, group_size), p=[0.9, 0.001, 0.089, 0.01])
    omega = loo_weights(likelihoods)
    assert np.isfinite(omega).all()
    assert (omega >= 1 - 1e-9).all() and (omega <= group_size * (1 + 1e-9)).all()
    for estimator in ESTIMATORS:
        assert np.isfinite(group_advantages(likelihoods, estimator)).all(), estimator


def test_truncated_weights_large_group():
    likelihoods = np.random.default_rng(2).random((1, 256)) * 0.01
    omega = loo_weights(likelihoods, truncation=32)
    assert np.isfinite(omega).all() and (omega >= 1).all() and (omega <= 32).all()


@pytest.mark.parametrize("estimator", ["maxrl", "maxrl_raw", "maxrl_general", "reinforce", "rloo", "grpo", "dr_grpo"])
def test_all_fail_groups_give_zero_update(estimator):
    assert (group_advantages(np.zeros((3, 8)), estimator) == 0).all()


def test_full_control_variate_keeps_minus_one_on_all_fail_groups():
    assert (group_advantages(np.zeros((1, 4)), "maxrl_full_cv") == -1).all()


@pytest.mark.parametrize("estimator", ["maxrl", "maxrl_full_cv", "maxrl_general", "rloo", "grpo", "dr_grpo"])
def test_all_success_groups_give_zero_update(estimator):
    assert np.abs(group_advantages(np.ones((3, 8)), estimator)).max() < 1e-12


@ignore_binary_warning
def test_tensor_in_tensor_out_and_dtype_preserved():
    likelihoods = torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float32)
    advantages = group_advantages(likelihoods, "maxrl")
    assert isinstance(advantages, torch.Tensor) and advantages.dtype == torch.float32
    assert isinstance(group_advantages(likelihoods.numpy(), "rloo"), np.ndarray)


@ignore_binary_warning
@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 12)), elements=st.floats(0, 1)),
    st.sampled_from(ESTIMATORS),
)
def test_advantages_shape_and_finiteness(likelihoods, estimator):
    advantages = group_advantages(likelihoods, estimator)
    assert advantages.shape == likelihoods.shape
    assert np.isfinite(advantages).all()


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 10)), elements=st.floats(0, 1)),
    st.data(),
)
def test_loo_weights_bounds(likelihoods, data):
    truncation = data.draw(st.integers(1, likelihoods.shape[1]))
    omega = loo_weights(likelihoods, truncation)
    assert omega.shape == likelihoods.shape
    assert (omega >= 1 - 1e-12).all() and (omega <= truncation + 1e-9).all()
    # omega_i does not depend on l_i
    changed = likelihoods.copy()
    changed[:, 0] = 1 - changed[:, 0]
    np.testing.assert_allclose(loo_weights(changed, truncation)[:, 0], omega[:, 0], rtol=1e-10)


@pytest.mark.parametrize(
    ("likelihoods", "kwargs", "match"),
    [
        (np.zeros(4), {}, "2-D"),
        (np.zeros((2, 1)), {}, "group_size must be >= 2"),
        (np.array([[0.5, 1.2]]), {}, r"\[0, 1\]"),
        (np.array([[0.5, -0.1]]), {}, r"\[0, 1\]"),
        (np.array([[0.5, np.nan]]), {}, "NaN"),
        (np.array([[0.5, np.inf]]), {}, "NaN or inf"),
        (np.zeros((2, 4)), {"estimator": "ppo"}, "Unknown estimator"),
        (np.zeros((2, 4)), {"estimator": "maxrl_general", "truncation": 5}, r"truncation must be in \[1, group_size=4\]"),
        (np.zeros((2, 4)), {"estimator": "maxrl_general", "truncation": 0}, "truncation must be in"),
        (np.zeros((2, 4)), {"estimator": "maxrl_general", "truncation": 2.0}, r"truncation must be in .* \(an int\)"),
        (np.zeros((2, 4)), {"estimator": "maxrl", "truncation": 2}, "only applies to estimator='maxrl_general'"),
        (np.zeros((2, 4)), {"estimator": "maxrl_general", "baseline": "mean"}, "Unknown baseline"),
        (np.zeros((2, 4)), {"estimator": "grpo", "baseline": "none"}, "baseline='none' only applies to estimator='maxrl_g"),
        (np.zeros((2, 4)), {"estimator": "maxrl", "eps": 0.1}, "eps=0.1 only applies to estimator='grpo'"),
        (np.zeros((2, 4)), {"estimator": "grpo", "eps": 0.0}, "eps must be a float > 0"),
    ],
)
def test_bad_input_is_a_clear_error(likelihoods, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_advantages(likelihoods, **kwargs)


def test_truncated_ml_weight_limits():
    assert truncated_ml_weight(0.25, 1) == pytest.approx(1.0)
    assert truncated_ml_weight(0.25, 200) == pytest.approx(4.0)
    assert truncated_ml_weight(0.0, 7) == pytest.approx(7.0)


def test_option_names_are_the_literals() -> None:
    assert ESTIMATORS == get_args(EstimatorName) and BASELINES == get_args(BaselineName)
    for baseline in BASELINES:  # every named baseline is implemented
        group_advantages(np.array([[0.2, 0.7, 1.0]]), "maxrl_general", baseline=baseline)


@pytest.mark.parametrize("n_nodes", [1, 2, 7, 64, 300])
def test_gauss_legendre_nodes_integrate_polynomials_exactly(n_nodes: int) -> None:
    """The quadrature behind loo_weights (numpy's leggauss on [0, 1]) is exact up to degree 2 n_nodes - 1.

    Rounding: 5e-14 at 64 nodes, 2e-12 at 300 (scipy's roots_legendre, used before: 5e-12).
    """
    nodes, weights = _unit_interval_quadrature(n_nodes)
    assert nodes.dtype == weights.dtype == torch.float64 and len(nodes) == n_nodes
    assert ((nodes > 0) & (nodes < 1)).all() and (weights > 0).all()
    for degree in sorted({0, 1, n_nodes, 2 * n_nodes - 1}):
        assert float((weights * nodes**degree).sum()) == pytest.approx(1 / (degree + 1), rel=1e-11, abs=1e-15)


def test_registry_holds_every_literal_name_once() -> None:
    """Adding an estimator = one registered function; the Literal names it for type checkers."""
    assert sorted(ESTIMATOR_REGISTRY) == sorted(ESTIMATORS)
    for name, entry in ESTIMATOR_REGISTRY.items():
        assert entry.name == name and entry.target and entry.formula.startswith("``")
        assert get_estimator(name) is entry
    with pytest.raises(ValueError, match="Unknown estimator 'ppo'; choose one of"):
        get_estimator("ppo")
    with pytest.raises(ValueError, match="'rloo' is already registered"):
        register_estimator("rloo", target="grad p")(lambda likelihoods: likelihoods)


def test_a_registered_estimator_is_used_by_name_with_its_options() -> None:
    def _scaled_reinforce(likelihoods: torch.Tensor, *, eps: float) -> torch.Tensor:
        """``eps l_i``"""
        return eps * likelihoods

    register_estimator("scaled_reinforce", target="eps grad p", options=("eps",))(_scaled_reinforce)  # type: ignore[arg-type]  (not in the Literal)
    try:
        likelihoods = np.array([[0.2, 0.5, 1.0]])
        np.testing.assert_array_equal(group_advantages(likelihoods, "scaled_reinforce", eps=0.5), 0.5 * likelihoods)
        with pytest.raises(ValueError, match="truncation=2 only applies to estimator='maxrl_general'"):
            check_estimator_args("scaled_reinforce", 2, 3, "loo_pass")
    finally:
        del ESTIMATOR_REGISTRY["scaled_reinforce"]


def test_binary_only_estimators_target_no_j_t_on_continuous_likelihoods() -> None:
    """Issue 21.5: a 3-arm bandit, N = 4, l in {0.9, 0.35, 0}, every 4-tuple of arms enumerated.

    Every grad J_T is w_T(p) grad p, a multiple of grad p; the binary-only estimators' expected gradient has a part
    orthogonal to grad p (14-15% of its norm), so no T (no scale at all) matches it. maxrl_general is exact for J_4.
    """
    arms = np.array([0.9, 0.35, 0.0])
    direction = grad_pass_rate(arms)
    assert sorted(BINARY_ONLY) == ["maxrl", "maxrl_full_cv", "maxrl_raw"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinaryLikelihoodWarning)
        for estimator in BINARY_ONLY:
            gradient, _ = expected_gradient(arms, 4, estimator)
            best_multiple = (gradient @ direction) / (direction @ direction) * direction
            assert np.linalg.norm(gradient - best_multiple) > 0.1 * np.linalg.norm(gradient), estimator
    gradient, pass_rate = expected_gradient(arms, 4, "maxrl_general")
    np.testing.assert_allclose(gradient, truncated_ml_weight(pass_rate, 4) * direction, rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", BINARY_ONLY)
def test_binary_only_estimators_warn_once_on_continuous_likelihoods(estimator: str) -> None:
    with pytest.warns(BinaryLikelihoodWarning, match=rf"estimator='{estimator}' .*binary.*estimator='maxrl_general'"):
        group_advantages(np.array([[0.9, 0.35, 0.0, 0.0]]), estimator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's default: a warning once per message and place
        for _ in range(3):
            group_advantages(np.array([[0.9, 0.35, 0.0, 0.0]]), estimator)
    assert [warning.category for warning in caught] == [BinaryLikelihoodWarning]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_no_warning_where_the_target_holds(estimator: str) -> None:
    likelihoods = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    if not get_estimator(estimator).binary_only:
        likelihoods = np.array([[0.9, 0.35, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        group_advantages(likelihoods, estimator)
