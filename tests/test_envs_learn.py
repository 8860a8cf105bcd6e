"""MaxRL learns each registered task at its smallest size in a short run (real envs, held-out start states)."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_maxrl import MaxRL, StartStateWrapper, evaluate_pass_at_k


def vec_env(env_id: str, n_envs: int, **env_kwargs):
    return make_vec_env(env_id, n_envs=n_envs, wrapper_class=StartStateWrapper, seed=0, env_kwargs=env_kwargs)


@pytest.mark.slow
def test_maxrl_learns_the_9x9_maze():
    env = vec_env("MaxRL/Maze-9x9-v0", 8)
    model = MaxRL(
        "MlpPolicy", env, group_size=8, n_groups=8, learning_rate=3e-3, n_epochs=4, batch_size=2048, clip_range=0.2, seed=0
    )
    before = evaluate_pass_at_k(model, env, 16, 8, ks=[1]).pass_at_k[1]
    model.learn(40_000)
    after = evaluate_pass_at_k(model, env, 16, 8, ks=[1]).pass_at_k[1]
    assert after >= 0.07 and after > 2 * before, (before, after)


@pytest.mark.slow
def test_maxrl_learns_digits_classification():
    model = MaxRL("MlpPolicy", vec_env("MaxRL/Digits-v0", 16), group_size=16, n_groups=32, learning_rate=3e-3, seed=0)
    test_env = vec_env("MaxRL/Digits-v0", 16, split="test")
    before = evaluate_pass_at_k(model, test_env, list(range(64)), 4, ks=[1]).pass_at_k[1]
    model.learn(30_000)
    after = evaluate_pass_at_k(model, test_env, list(range(64)), 4, ks=[1]).pass_at_k[1]
    assert before < 0.3 and after >= 0.5, (before, after)


@pytest.mark.slow
def test_maxrl_general_learns_regression_with_a_calibrated_spread():
    env = vec_env("MaxRL/Regression-v0", 16)
    model = MaxRL(
        "MlpPolicy",
        env,
        group_size=16,
        n_groups=4,
        learning_rate=1e-2,
        estimator="maxrl_general",
        n_epochs=1,  # the paper's on-policy update: several clipped epochs shrink the std here
        clip_range=None,
        seed=0,
    )
    before = evaluate_pass_at_k(model, env, 64, 4, ks=[1]).mean_likelihood
    model.learn(30_000)
    after = evaluate_pass_at_k(model, env, 64, 4, ks=[1]).mean_likelihood
    learned_std = float(np.exp(model.policy.log_std.detach().numpy()).item())
    target_std = np.sqrt(0.2**2 - 0.1**2)  # sqrt(Var(y|x) - tau^2) for the default gaussian noise
    assert after > before + 0.03, (before, after)
    assert 0.5 * target_std < learned_std < 2 * target_std, learned_std
