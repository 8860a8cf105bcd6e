"""The regression env: the likelihood formula, seeding of (x, y), the exact conditional moments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_maxrl.common.one_step import OneStepTask
from sb3_maxrl_envs.regression import NOISES, RegressionEnv, RegressionTask, gaussian_likelihood, target_function


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    prediction=st.floats(-3.0, 3.0),
    tau=st.floats(0.01, 2.0),
    noise=st.sampled_from(NOISES),
)
def test_likelihood_is_the_formula_and_in_unit_interval(seed: int, prediction: float, tau: float, noise: str) -> None:
    env = RegressionEnv(noise=noise, tau=tau)
    env.reset(seed=seed)
    _, reward, terminated, truncated, info = env.step(np.array([prediction], dtype=np.float32))
    yhat = float(np.float32(prediction))
    assert (terminated, truncated) == (True, False)
    assert info["prediction"] == yhat and info["target"] == env.y
    assert info["squared_error"] == (env.y - yhat) ** 2
    assert info["likelihood"] == reward == np.exp(-((env.y - yhat) ** 2) / (2 * tau**2))
    assert 0.0 <= info["likelihood"] <= 1.0


def test_perfect_prediction_has_likelihood_one() -> None:
    env = RegressionEnv(noise_scale=0.0)
    obs, _ = env.reset(seed=4)
    assert env.y == float(target_function(env.x)) and obs[0] == np.float32(env.x)
    _, reward, *_ = env.step(np.array([env.y]))
    assert reward == 1.0
    assert gaussian_likelihood(0.3, 0.1, 0.1) == pytest.approx(np.exp(-2.0))


@pytest.mark.parametrize("noise", NOISES)
def test_same_seed_same_x_and_y(noise: str) -> None:
    env = RegressionEnv(noise=noise)
    pairs = []
    for seed in (0, 1, 2, 0, 1, 2):
        env.reset(seed=seed)
        pairs.append((env.x, env.y))
    assert pairs[:3] == pairs[3:]
    assert len(set(pairs[:3])) == 3


@pytest.mark.parametrize("noise", NOISES)
def test_conditional_mean_and_std_match_the_targets_drawn_at_reset(noise: str) -> None:
    env = RegressionEnv(noise=noise)
    n = 5000
    x, y = np.empty(n), np.empty(n)
    for seed in range(n):
        env.reset(seed=seed)
        x[seed], y[seed] = env.x, env.y
    z = (y - env.conditional_mean(x)) / env.conditional_std(x)  # standardized residuals: mean 0, variance 1
    assert abs(z.mean()) < 4.0 / np.sqrt(n)
    fourth_moment = {"gaussian": 3.0, "heteroskedastic": 3.0, "skewed": 9.0}.get(noise, 3.0 * (0.9 + 0.1 * 1e4) / 10.9**2)
    assert abs(z.var() - 1.0) < 4.0 * np.sqrt((fourth_moment - 1.0) / n)
    assert abs(x.mean()) < 4.0 * np.sqrt(1 / 3 / n) and x.min() >= -1.0 and x.max() <= 1.0


def test_conditional_std_closed_forms() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(RegressionEnv(noise="gaussian").conditional_std(x), 0.2)
    np.testing.assert_allclose(RegressionEnv(noise="skewed").conditional_std(x), 0.2)
    np.testing.assert_allclose(RegressionEnv(noise="heteroskedastic").conditional_std(x), 0.2 * (0.25 + 1.5 * np.abs(x)))
    outliers = RegressionEnv(noise="outliers", outlier_prob=0.1, outlier_scale=10.0)
    np.testing.assert_allclose(outliers.conditional_std(x), 0.2 * np.sqrt(0.9 + 0.1 * 100))
    np.testing.assert_allclose(RegressionEnv().conditional_mean(x), 0.5 * np.sin(np.pi * x))


def test_skewed_noise_is_right_skewed_with_mode_below_the_mean() -> None:
    env = RegressionEnv(noise="skewed")
    rng = np.random.default_rng(0)
    residuals = np.array([env.sample_target(0.0, rng) for _ in range(5000)])
    assert residuals.min() >= -0.2  # the mode f(x) - s is also the lower bound
    assert np.median(residuals) < 0.0


def test_step_outside_an_episode_raises() -> None:
    env = RegressionEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1, dtype=np.float32))
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1, dtype=np.float32))


@pytest.mark.parametrize("noise", NOISES)
def test_regression_task_is_the_env_vectorized_over_seeds(noise: str) -> None:
    task, env = RegressionTask(noise=noise, tau=0.3), RegressionEnv(noise=noise, tau=0.3)
    assert isinstance(task, OneStepTask)
    assert task.observation_space == env.observation_space and task.action_space == env.action_space
    seeds = np.array([0, 7, 2**31 + 3])
    predictions = np.linspace(-1.0, 1.0, 5, dtype=np.float32)
    actions = np.tile(predictions[None, :, None], (len(seeds), 1, 1))
    x, y = task.examples(seeds)
    observations, likelihoods = task.observations(seeds), task.likelihoods(seeds, actions)
    assert observations.shape == (3, 1) and observations.dtype == np.float32 and likelihoods.shape == (3, 5)
    for row, seed in enumerate(seeds):
        observation, _ = env.reset(seed=int(seed))
        assert (x[row], y[row]) == (env.x, env.y) and observations[row] == observation
        for column, prediction in enumerate(predictions):
            env.reset(seed=int(seed))
            assert likelihoods[row, column] == pytest.approx(env.step(np.array([prediction]))[1], rel=1e-14, abs=1e-300)
    np.testing.assert_array_equal(task.conditional_std(x), env.conditional_std(x))
    np.testing.assert_array_equal(task.conditional_mean(x), env.conditional_mean(x))


def test_regression_task_rejects_bad_input() -> None:
    task = RegressionTask()
    with pytest.raises(ValueError, match="non-negative ints"):
        task.observations([-1])
    with pytest.raises(ValueError, match=r"actions must have shape \(n_seeds=2, N, 1\)"):
        task.likelihoods([0, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="noise="):
        RegressionTask(noise="uniform")  # type: ignore[arg-type]
