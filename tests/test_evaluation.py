"""pass@k: the estimator against brute-force enumeration, evaluate_pass_at_k and PassAtKEvalCallback."""

from __future__ import annotations

import csv
import itertools
import math
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_maxrl import MaxRL, StartStateWrapper, default_eval_seeds
from sb3_maxrl.common.callbacks import PassAtKEvalCallback
from sb3_maxrl.common.evaluation import evaluate_pass_at_k, geometric_ks, pass_at_k
from sb3_maxrl_envs import make_minigrid

MAZE = "MaxRL/Maze-9x9-v0"


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    th.set_num_threads(1)


class SeedOutcomeEnv(gym.Env):
    """
    An episode's outcome depends on its reset seed only: success iff the seed is even (binary), or
    likelihood ``(seed % 5) / 4`` (continuous). Episodes last ``1 + seed % 3`` steps.
    """

    observation_space = spaces.Box(0.0, 1.0, (2,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, continuous: bool = False):
        self.continuous = continuous
        self.start_seed = -1
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.start_seed = -1 if seed is None else seed
        self.t = 0
        return np.array([self.start_seed % 2, 0.5], dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        done = self.t >= 1 + self.start_seed % 3
        info: dict[str, Any] = {}
        if done and self.continuous:
            info["likelihood"] = (self.start_seed % 5) / 4
        elif done:
            info["is_success"] = self.start_seed % 2 == 0
        return np.array([self.start_seed % 2, 0.5], dtype=np.float32), float(done), done, False, info


def seed_outcome_vec_env(n_envs: int, continuous: bool = False) -> DummyVecEnv:
    return DummyVecEnv([lambda: StartStateWrapper(SeedOutcomeEnv(continuous))] * n_envs)


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    return Fraction(sum(1 for subset in subsets if any(subset)), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n: int) -> None:
    for k in range(1, n + 1):
        for c in range(n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)), abs=1e-14)


def test_pass_at_k_vectorized_and_large_n() -> None:
    counts = np.array([[0, 3], [9, 10]])
    result = pass_at_k(10, counts, 2)
    assert isinstance(result, np.ndarray) and result.shape == (2, 2)
    np.testing.assert_allclose(result, [[0.0, 1 - 21 / 45], [1.0, 1.0]], atol=1e-15)
    assert isinstance(pass_at_k(10, 3, 2), float)
    # pass@1 is c / n; large n without overflow, against exact big-integer binomials
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001, rel=1e-12)
    for n, c, k in [(1000, 500, 10), (1024, 3, 512), (4096, 1, 4096), (2000, 1990, 5)]:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-11, abs=1e-15)


def test_pass_at_k_errors() -> None:
    with pytest.raises(ValueError, match=r"raise n_samples to >= 9"):
        pass_at_k(8, 2, 9)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        pass_at_k(8, 2, 0)
    with pytest.raises(ValueError, match=r"in \[0, n=8\]"):
        pass_at_k(8, np.array([2, 9]), 1)
    with pytest.raises(ValueError, match="integer success counts"):
        pass_at_k(8, 2.5, 1)


def test_geometric_ks() -> None:
    assert geometric_ks(1) == [1]
    assert geometric_ks(2) == [1, 2]
    assert geometric_ks(12) == [1, 2, 4, 8, 12]
    assert geometric_ks(16) == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match="n_samples"):
        geometric_ks(0)


@pytest.mark.parametrize("n_envs", [1, 3, 8])
def test_evaluate_exact_outcomes_per_start_state(n_envs: int) -> None:
    model = MaxRL("MlpPolicy", SeedOutcomeEnv(), seed=0)
    seeds = [10, 11, 12, 13, 14]
    result = evaluate_pass_at_k(model, seed_outcome_vec_env(n_envs), seeds, n_samples=4)
    np.testing.assert_array_equal(result.start_seeds, seeds)
    np.testing.assert_array_equal(result.success_counts, [4, 0, 4, 0, 4])
    np.testing.assert_array_equal(result.episode_lengths, np.repeat([[2], [3], [1], [2], [3]], 4, axis=1))
    assert result.pass_at_k == {1: pytest.approx(0.6), 2: pytest.approx(0.6), 4: pytest.approx(0.6)}
    assert result.neg_log_pass_at_k[4] == pytest.approx(-math.log(0.6))
    assert result.mean_likelihood == pytest.approx(0.6)
    # two start states never succeed: floored at 1 / (2 n) = 1 / 8
    assert result.nll == pytest.approx(2 / 5 * math.log(8))
    assert result.metrics()["mean_ep_length"] == pytest.approx(2.2)


def test_evaluate_continuous_likelihood_and_floors() -> None:
    model = MaxRL("MlpPolicy", SeedOutcomeEnv(continuous=True), seed=0)
    result = evaluate_pass_at_k(model, seed_outcome_vec_env(2, continuous=True), [10, 11, 12, 13, 14], 4, ks=[1, 3])
    np.testing.assert_allclose(result.mean_likelihoods, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(result.success_counts, [0, 0, 0, 0, 4])
    assert result.pass_at_k == {1: pytest.approx(0.2), 3: pytest.approx(0.2)}
    assert result.mean_likelihood == pytest.approx(0.5)
    assert result.nll == pytest.approx(-(math.log(1 / 8) + math.log(0.25) + math.log(0.5) + math.log(0.75)) / 5)
    half = evaluate_pass_at_k(model, seed_outcome_vec_env(2, continuous=True), [12], 2, success_threshold=0.5)
    assert half.pass_at_k == {1: 1.0, 2: 1.0}

    never = evaluate_pass_at_k(model, seed_outcome_vec_env(2), [11, 13], 4)
    assert never.pass_at_k[4] == 0.0
    assert never.neg_log_pass_at_k[4] == pytest.approx(math.log(2 * 4 * 2))  # floor 1 / (2 n S)
    assert never.nll == pytest.approx(math.log(8))


def test_evaluate_int_start_seeds_are_the_held_out_ones() -> None:
    model = MaxRL("MlpPolicy", SeedOutcomeEnv(), seed=0)
    result = evaluate_pass_at_k(model, SeedOutcomeEnv(), 3, n_samples=2)
    np.testing.assert_array_equal(result.start_seeds, default_eval_seeds(3))
    np.testing.assert_array_equal(result.success_counts, [2, 0, 2])  # 2**31 is even


def test_evaluate_input_errors() -> None:
    model = MaxRL("MlpPolicy", SeedOutcomeEnv(), seed=0)
    with pytest.raises(ValueError, match="raise n_samples to >= 8"):
        evaluate_pass_at_k(model, seed_outcome_vec_env(1), [1], n_samples=4, ks=[1, 8])
    with pytest.raises(ValueError, match="StartStateWrapper"):
        evaluate_pass_at_k(model, DummyVecEnv([SeedOutcomeEnv]), [1], n_samples=2)
    with pytest.raises(ValueError, match="start_seeds is empty"):
        evaluate_pass_at_k(model, seed_outcome_vec_env(1), [], n_samples=2)


def check_consistent(result: Any, n_samples: int, n_start_states: int) -> None:
    counts = result.success_counts
    assert counts.shape == (n_start_states,) and np.issubdtype(counts.dtype, np.integer)
    assert np.all((counts >= 0) & (counts <= n_samples))
    values = [result.pass_at_k[k] for k in sorted(result.pass_at_k)]
    assert all(0.0 <= a <= b <= 1.0 for a, b in itertools.pairwise(values))
    assert result.pass_at_k[1] == pytest.approx(counts.mean() / n_samples)
    assert result.pass_at_k[n_samples] == pytest.approx(np.mean(counts > 0))
    assert result.mean_likelihood == pytest.approx(result.pass_at_k[1])  # binary task


def test_evaluate_on_minigrid_maxrl_and_ppo() -> None:
    def make_env() -> gym.Env:
        return make_minigrid("MiniGrid-Empty-Random-5x5-v0", nav_actions=True)  # random policy: ~80% success

    env = make_vec_env(make_env, n_envs=8, seed=0, wrapper_class=StartStateWrapper)
    maxrl = MaxRL("MlpPolicy", env, seed=0)
    result = evaluate_pass_at_k(maxrl, env, 4, n_samples=8)
    check_consistent(result, 8, 4)
    assert 0 < result.success_counts.sum() < 32, "an untrained policy should solve some but not all episodes"
    assert result.pass_at_k[8] > result.pass_at_k[1]

    deterministic = evaluate_pass_at_k(maxrl, env, 4, n_samples=2, deterministic=True)
    assert set(deterministic.success_counts.tolist()) <= {0, 2}, "a greedy policy repeats the same episode"
    assert len(set(deterministic.pass_at_k.values())) == 1

    ppo = PPO("MlpPolicy", env, n_steps=16, seed=0)
    check_consistent(evaluate_pass_at_k(ppo, MAZE, [5, 6, 7], n_samples=4, n_envs=4), 4, 3)


def read_csv(path: str) -> list[dict[str, str]]:
    with open(path) as file:
        return list(csv.DictReader(file))


def test_callback_logs_exact_values(tmp_path: Any) -> None:
    model = MaxRL("MlpPolicy", seed_outcome_vec_env(2), group_size=4, n_groups=2, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = PassAtKEvalCallback(
        seed_outcome_vec_env(3),
        eval_seeds=[10, 11, 12, 13, 14],
        n_samples=4,
        eval_freq=5,
        log_path=str(tmp_path),
        best_model_save_path=str(tmp_path),
        verbose=0,
    )
    model.learn(40, callback=callback)
    eval_rows = [row for row in read_csv(str(tmp_path / "progress.csv")) if row.get("eval/pass@1")]
    assert len(eval_rows) == len(callback.evaluations_timesteps) >= 2
    expected = {"pass@1": 0.6, "pass@2": 0.6, "pass@4": 0.6, "neg_log_pass@1": -math.log(0.6), "mean_likelihood": 0.6}
    expected.update(nll=2 / 5 * math.log(8), mean_ep_length=2.2)
    for row in eval_rows:
        assert {key: float(row[f"eval/{key}"]) for key in expected} == pytest.approx(expected)
    data = np.load(tmp_path / "pass_at_k_evaluations.npz")
    np.testing.assert_array_equal(data["timesteps"], callback.evaluations_timesteps)
    np.testing.assert_array_equal(data["ks"], [1, 2, 4])
    np.testing.assert_allclose(data["pass_at_k"], 0.6)
    np.testing.assert_array_equal(data["success_counts"][-1], [4, 0, 4, 0, 4])
    assert (tmp_path / "best_model.zip").exists()


def test_callback_evaluates_once_at_training_end_when_stale() -> None:
    model = MaxRL("MlpPolicy", seed_outcome_vec_env(2), group_size=2, n_groups=1, seed=0)
    callback = PassAtKEvalCallback(seed_outcome_vec_env(1), eval_seeds=[2], n_samples=2, eval_freq=0, verbose=0)
    model.learn(10, callback=callback)
    assert callback.evaluations_timesteps == [model.num_timesteps]
    assert callback.last_result is not None and callback.last_result.pass_at_k == {1: 1.0, 2: 1.0}


def test_callback_argument_errors() -> None:
    with pytest.raises(ValueError, match="best_metric='pass@3'"):
        PassAtKEvalCallback(seed_outcome_vec_env(1), n_samples=4, best_metric="pass@3")
    with pytest.raises(ValueError, match="raise n_samples to >= 8"):
        PassAtKEvalCallback(seed_outcome_vec_env(1), n_samples=4, ks=[8])
    with pytest.raises(ValueError, match="StartStateWrapper"):
        PassAtKEvalCallback(DummyVecEnv([SeedOutcomeEnv]))
    callback = PassAtKEvalCallback(seed_outcome_vec_env(1), n_samples=4, best_metric="nll")
    assert not callback.higher_is_better and callback.eval_seeds == default_eval_seeds(16)
