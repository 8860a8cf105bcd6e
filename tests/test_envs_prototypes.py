"""The Gaussian-prototypes classification task: examples as a function of the seed, the test set, exact pass@k."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_maxrl import MaxRL, StartStateWrapper, evaluate_pass_at_k
from sb3_maxrl.common.one_step import OneStepTask, evaluate_one_step
from sb3_maxrl.common.start_states import EVAL_SEED_BASE
from sb3_maxrl_envs import PrototypesEnv, PrototypesTask
from sb3_maxrl_envs.prototypes import TEST_SEED_BASE


def test_passes_sb3_check_env_and_is_a_one_step_task() -> None:
    check_env(PrototypesEnv(n_classes=10, dim=4))
    env = PrototypesEnv(n_classes=10, dim=4, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (16, 32, 3) and PrototypesEnv().render() is None
    assert isinstance(PrototypesTask(), OneStepTask)
    env = gym.make("MaxRL/Prototypes-v0")
    assert env.action_space == gym.spaces.Discrete(1000) and env.observation_space.shape == (64,)


def test_reset_seed_fixes_the_example_and_matches_the_vectorized_task() -> None:
    env = PrototypesEnv(n_classes=50, dim=6)
    seeds = [0, 1, 7, 2**31 - 1, 2**40 + 3]
    observations, labels = env.task.examples(seeds)
    for seed, observation, label in zip(seeds, observations, labels, strict=True):
        first, info = env.reset(seed=seed)
        again, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, observation)
        assert info["example_seed"] == seed
        _, reward, terminated, truncated, step_info = env.step(label)
        assert (reward, terminated, truncated, step_info["is_success"], step_info["label"]) == (1.0, True, False, True, label)
    assert len({tuple(o) for o in observations}) == len(seeds)
    env.reset(seed=3)
    label = int(env.task.labels([3])[0])
    _, reward, _, _, info = env.step((label + 1) % 50)
    assert reward == 0.0 and info["is_success"] is False and info["prediction"] == (label + 1) % 50


def test_episodes_last_one_step_and_bad_arguments_say_what_to_do() -> None:
    env = PrototypesEnv(n_classes=5, dim=2)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(RuntimeError, match="one step"):
        env.step(0)
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        PrototypesTask(n_classes=1)
    with pytest.raises(ValueError, match="noise"):
        PrototypesTask(noise=-1.0)
    with pytest.raises(ValueError, match=r"seeds must lie in \[0, 2\^63\)"):
        PrototypesTask(n_classes=5).examples([-1])
    with pytest.raises(ValueError, match="shape"):
        PrototypesTask(n_classes=5).likelihoods([0, 1], np.zeros(3, dtype=np.int64))


def test_examples_have_unit_variance_uniform_labels_and_the_claimed_difficulty() -> None:
    task = PrototypesTask()  # C = 1000, dim = 64, noise = 1.5, as in CLAIMS.md
    observations, labels = task.examples(np.arange(20_000))
    assert abs(float(observations.mean())) < 0.02
    np.testing.assert_allclose(observations.std(axis=0), 1.0, atol=0.06)
    counts = np.bincount(labels, minlength=task.n_classes)
    assert counts.min() >= 3 and counts.max() <= 45  # ~20 per class
    assert 0.93 <= task.nearest_prototype_accuracy() <= 0.96  # the Bayes rule; CLAIMS.md: 95%


def test_test_set_is_fixed_held_out_and_depends_on_the_task_seed() -> None:
    task = PrototypesTask(n_classes=20, dim=4, n_test=100)
    np.testing.assert_array_equal(task.test_seeds, TEST_SEED_BASE + np.arange(100))
    assert TEST_SEED_BASE == EVAL_SEED_BASE  # the library's training stream never draws these seeds
    np.testing.assert_array_equal(task.test_set[0], PrototypesTask(n_classes=20, dim=4, n_test=100).test_set[0])
    other = PrototypesTask(n_classes=20, dim=4, n_test=100, task_seed=1)
    assert not np.allclose(task.test_set[0], other.test_set[0])
    assert not np.allclose(task.prototypes, other.prototypes)


def test_exact_pass_at_k_equals_sampled_pass_at_k_within_sampling_error() -> None:
    th.manual_seed(0)
    task = PrototypesTask(n_classes=8, dim=4, noise=0.5)
    env = DummyVecEnv([lambda: StartStateWrapper(PrototypesEnv(n_classes=8, dim=4, noise=0.5)) for _ in range(4)])
    model = MaxRL("MlpPolicy", env, policy_kwargs=dict(net_arch=[]), seed=0)
    with th.no_grad():  # a non-uniform policy, neither right nor wrong everywhere
        model.policy.action_net.weight.normal_(0.0, 1.0)
    seeds = np.arange(60)
    exact = evaluate_one_step(model, task, seeds, ks=(1, 4, 16))
    sampled = evaluate_pass_at_k(model, env, list(seeds), n_samples=64, ks=(1, 4, 16))
    assert 0.1 < exact.pass_at_k[1] < 0.9
    for k in (1, 4, 16):
        per_seed = 1.0 - (1.0 - exact.success_probabilities) ** k
        standard_error = np.sqrt(np.sum(per_seed * (1.0 - per_seed) / (64 // k))) / len(seeds)
        assert abs(sampled.pass_at_k[k] - exact.pass_at_k[k]) < 4.0 * standard_error + 1e-3
    np.testing.assert_allclose(sampled.mean_likelihoods.mean(), exact.success_probabilities.mean(), atol=0.03)
