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
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_maxrl import MaxRL, StartStateWrapper, default_eval_seeds
from sb3_maxrl.common.callbacks import PassAtKEvalCallback
from sb3_maxrl.common.estimators import symmetric_means
from sb3_maxrl.common.evaluation import evaluate_pass_at_k, geometric_ks, pass_at_k, pass_at_k_from_likelihoods
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


def brute_force_bernoulli_pass_at_k(likelihoods: list[float], k: int) -> Fraction:
    """The mean over all k-subsets of ``1 - prod (1 - l)``, in exact rational arithmetic."""
    subsets = list(itertools.combinations([Fraction(value) for value in likelihoods], k))
    return sum((1 - math.prod(1 - value for value in subset) for subset in subsets), Fraction(0)) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_from_likelihoods_matches_enumeration(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = [
        rng.random(n),
        rng.random(n) * 1e-3,  # rare successes: pass@k far from 1
        rng.choice([0.0, 1.0, 0.3, 1e-9, 1 - 1e-9], size=n),  # exact 0s and 1s among continuous values
    ]
    for row in rows:
        for k in range(1, n + 1):
            exact = float(brute_force_bernoulli_pass_at_k(row.tolist(), k))
            assert pass_at_k_from_likelihoods(row, k) == pytest.approx(exact, rel=1e-12, abs=1e-14)
    # vectorized over start states: one row each
    batch = np.stack(rows)
    for k in range(1, n + 1):
        expected = [float(brute_force_bernoulli_pass_at_k(row.tolist(), k)) for row in rows]
        result = pass_at_k_from_likelihoods(batch, k)
        assert isinstance(result, np.ndarray) and result.shape == (3,)
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 5, 12, 64, 1024])
def test_pass_at_k_from_likelihoods_reduces_to_counts_for_binary_likelihoods(n: int) -> None:
    counts = sorted({0, 1, 2, n // 3, n // 2, n - 1, n} & set(range(n + 1)))
    ks = sorted({1, 2, 3, n // 4, n // 2, n - 1, n} & set(range(1, n + 1)))
    rng = np.random.default_rng(n)
    for c in counts:
        binary = rng.permutation(np.array([1.0] * c + [0.0] * (n - c)))
        for k in ks:
            expected = pass_at_k(n, c, k)
            assert pass_at_k_from_likelihoods(binary, k) == expected  # exact: counted like pass_at_k
            # the recurrence itself, which the binary shortcut skips, reduces to the combinatorial formula
            recurrence = 1.0 - symmetric_means(th.from_numpy(1.0 - binary), k)[k].item()
            assert recurrence == pytest.approx(expected, abs=1e-12)
            # likelihoods a hair (1e-13) from binary go through the recurrence; pass@k moves by at most k * 1e-13
            nudged = np.abs(binary - 1e-13)
            assert pass_at_k_from_likelihoods(nudged, k) == pytest.approx(expected, abs=1e-12 + k * 1e-13)


def test_pass_at_k_from_likelihoods_large_n_is_stable() -> None:
    likelihoods = np.random.default_rng(0).random((3, 1024)) * np.array([[1.0], [1e-2], [1e-5]])
    ks = geometric_ks(1024)
    curves = np.array([pass_at_k_from_likelihoods(likelihoods, k) for k in ks])  # (len(ks), 3)
    assert np.all((curves >= 0.0) & (curves <= 1.0))
    assert np.all(np.diff(curves, axis=0) >= 0.0), "pass@k must not fall with k"
    assert np.all(np.diff(curves[:, 1:], axis=0) > 0.0), "pass@k must rise with k until it saturates"
    # absolute error within n ulps: pass@1 is the mean likelihood, pass@n averages over the one n-subset
    np.testing.assert_allclose(curves[0], likelihoods.mean(axis=1), rtol=1e-12, atol=1024 * 2.0**-52)
    np.testing.assert_allclose(curves[-1], -np.expm1(np.log1p(-likelihoods).sum(axis=1)), rtol=1e-12, atol=1024 * 2.0**-52)


def test_pass_at_k_from_likelihoods_errors() -> None:
    with pytest.raises(ValueError, match="raise n_samples to >= 5"):
        pass_at_k_from_likelihoods([0.5] * 4, 5)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        pass_at_k_from_likelihoods([0.5] * 4, 0)
    with pytest.raises(ValueError, match=r"finite and in \[0, 1\]"):
        pass_at_k_from_likelihoods([0.5, 1.5], 1)
    with pytest.raises(ValueError, match=r"finite and in \[0, 1\]"):
        pass_at_k_from_likelihoods([0.5, np.nan], 1)
    with pytest.raises(ValueError, match="last axis"):
        pass_at_k_from_likelihoods(np.float64(0.5), 1)
    with pytest.raises(ValueError, match="last axis"):
        pass_at_k_from_likelihoods(np.zeros((3, 0)), 1)


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
    # default: each episode succeeds with probability l; a start state with constant l has pass@k = 1 - (1 - l)^k
    expected = {k: np.mean([1 - (1 - p) ** k for p in [0.0, 0.25, 0.5, 0.75, 1.0]]) for k in (1, 3)}
    assert result.pass_at_k == pytest.approx(expected, abs=1e-12)
    assert result.pass_at_k[1] == pytest.approx(result.mean_likelihood, abs=1e-12)
    assert result.mean_likelihood == pytest.approx(0.5)
    thresholded = evaluate_pass_at_k(
        model, seed_outcome_vec_env(2, continuous=True), [10, 11, 12, 13, 14], 4, ks=[1, 3], success_threshold=1.0
    )
    assert thresholded.pass_at_k == {1: pytest.approx(0.2), 3: pytest.approx(0.2)}
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
    # a DummyVecEnv's envs are wrapped in StartStateWrapper for the user; a SubprocVecEnv's cannot be
    unwrapped = evaluate_pass_at_k(model, DummyVecEnv([SeedOutcomeEnv]), [10, 11], n_samples=2)
    np.testing.assert_array_equal(unwrapped.success_counts, [2, 0])
    subprocess_env = SubprocVecEnv([SeedOutcomeEnv], start_method="fork")
    try:
        with pytest.raises(ValueError, match="StartStateWrapper"):
            evaluate_pass_at_k(model, subprocess_env, [1], n_samples=2)
    finally:
        subprocess_env.close()
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
    subprocess_env = SubprocVecEnv([SeedOutcomeEnv], start_method="fork")
    try:
        with pytest.raises(ValueError, match="StartStateWrapper"):
            PassAtKEvalCallback(subprocess_env)
    finally:
        subprocess_env.close()
    callback = PassAtKEvalCallback(seed_outcome_vec_env(1), n_samples=4, best_metric="nll")
    assert not callback.higher_is_better and callback.eval_seeds == default_eval_seeds(16)


def test_callback_pass_at_k_on_continuous_likelihoods(tmp_path: Any) -> None:
    regression = "MaxRL/Regression-v0"  # one step, likelihood exp(-(y - yhat)^2 / (2 tau^2)): never exactly 1
    model = MaxRL("MlpPolicy", regression, group_size=4, n_groups=2, seed=0)
    callback = PassAtKEvalCallback(
        regression, eval_seeds=range(8), n_samples=8, eval_freq=2, best_model_save_path=str(tmp_path), n_envs=2, verbose=0
    )
    model.learn(24, callback=callback)
    assert len(callback.results) >= 2
    for result in callback.results:
        assert result.success_counts.sum() == 0
        assert 0.0 < result.pass_at_k[1] < result.pass_at_k[2] < result.pass_at_k[8] < 1.0
        assert result.pass_at_k[1] == pytest.approx(result.mean_likelihood, abs=1e-12)
    assert callback.best_value == max(result.pass_at_k[1] for result in callback.results) > 0.0
    assert (tmp_path / "best_model.zip").exists()

    thresholded = evaluate_pass_at_k(model, regression, range(8), 8, success_threshold=1.0, n_envs=2)
    assert set(thresholded.pass_at_k.values()) == {0.0}, "counting only likelihood-1 episodes sees no success"


def test_held_out_seeds_that_are_training_seeds_are_refused():
    from sb3_maxrl import MaxRL, PassAtKEvalCallback

    model = MaxRL("MlpPolicy", "MaxRL/Maze-9x9-v0", group_size=2, n_groups=2, train_seeds=[5, 6, 7], seed=0)
    callback = PassAtKEvalCallback("MaxRL/Maze-9x9-v0", eval_seeds=[7, 8], n_samples=2, n_envs=2, verbose=0)
    with pytest.raises(ValueError, match="also training seeds"):
        model.learn(10, callback=callback)


def test_held_out_layouts_reached_by_other_seeds_are_refused():
    """A 5x5 maze has 4 layouts: other seeds reset to the held-out layout, and the env's start_state_key says so."""
    from sb3_maxrl import MaxRL, PassAtKEvalCallback
    from sb3_maxrl_envs import make_maze

    model = MaxRL("MlpPolicy", make_maze(size=5), group_size=2, n_groups=2, train_seeds=range(100), seed=0)
    callback = PassAtKEvalCallback(make_maze(size=5), eval_seeds=[10**6], n_samples=2, verbose=0)
    with pytest.raises(ValueError, match="same start state"):
        model.learn(10, callback=callback)
    probe = make_maze(size=5).unwrapped
    other = next(seed for seed in range(10**6 + 1, 10**6 + 100) if probe.start_state_key(seed) != probe.start_state_key(10**6))
    distinct_train = MaxRL("MlpPolicy", make_maze(size=5), group_size=2, n_groups=2, train_seeds=[other], seed=0)
    callback = PassAtKEvalCallback(make_maze(size=5), eval_seeds=[10**6], n_samples=2, eval_freq=4, verbose=0)
    distinct_train.learn(10, callback=callback)
    assert callback.last_result is not None


def test_evaluate_pass_at_k_on_a_raw_minigrid_id_is_its_binary_success_task() -> None:
    from sb3_maxrl.common.env_ids import make_group_vec_env

    env_id = "MiniGrid-Empty-5x5-v0"
    model = MaxRL("MlpPolicy", env_id, group_size=2, n_groups=2, seed=0)  # the id as given, as in the README
    th.manual_seed(0)  # the policy's samples
    by_id = evaluate_pass_at_k(model, env_id, 3, 4, n_envs=2, seed=5)
    th.manual_seed(0)
    by_task = evaluate_pass_at_k(
        model, make_vec_env(lambda: make_minigrid(env_id), 2, wrapper_class=StartStateWrapper), 3, 4, seed=5
    )
    assert by_id.pass_at_k == by_task.pass_at_k and np.array_equal(by_id.likelihoods, by_task.likelihoods)
    assert np.array_equal(by_id.episode_lengths, by_task.episode_lengths)
    venv = make_group_vec_env(env_id, 2)
    assert venv.observation_space == model.observation_space and venv.num_envs == 2
