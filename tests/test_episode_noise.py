"""Independent episodes within a group on stochastic tasks (slippery FrozenLake, MiniGrid Dynamic-Obstacles)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_maxrl_envs  # noqa: F401  (registers MaxRL/FrozenLake-v0)
from sb3_maxrl import MaxRL, StartStateWrapper, evaluate_pass_at_k
from sb3_maxrl.common.group_rollouts import collect_group_episodes
from sb3_maxrl.common.start_states import EpisodeStart, StartStateStream
from sb3_maxrl_envs.frozen_lake import exact_success_probability
from sb3_maxrl_envs.minigrid_wrappers import make_minigrid

LEFT, DOWN, RIGHT, UP = range(4)
#: A good policy for the slippery 4x4 lake: success probability about 0.74 within the 100-step limit.
LAKE_POLICY = np.array([LEFT, UP, UP, UP, LEFT, LEFT, LEFT, LEFT, UP, DOWN, LEFT, LEFT, LEFT, RIGHT, DOWN, LEFT])


def make_lake() -> gym.Env:
    return StartStateWrapper(gym.make("MaxRL/FrozenLake-v0"))


def exact_lake_success(policy: np.ndarray) -> float:
    return exact_success_probability(make_lake(), np.eye(4)[policy])


def fixed_act(policy: np.ndarray):
    def act(observations):
        actions = policy[np.asarray(observations, dtype=np.int64)]
        return actions, actions, np.zeros(len(actions))

    return act


def group_agreement(outcomes: np.ndarray) -> float:
    """Share of groups whose episodes all had the same outcome."""
    return float(np.mean(outcomes.min(axis=1) == outcomes.max(axis=1)))


@pytest.fixture(scope="module")
def lake_p() -> float:
    return exact_lake_success(LAKE_POLICY)


@pytest.mark.parametrize("episode_noise", ["independent", "shared"])
def test_fixed_policy_outcomes_inside_a_group_are_independent_only_with_own_noise(episode_noise, lake_p):
    n_groups, group_size = 150, 4
    venv = DummyVecEnv([make_lake for _ in range(4)])
    stream = StartStateStream(seed=1)
    noise_seeds = stream.take_noise_seeds(n_groups * group_size) if episode_noise == "independent" else None
    episodes = collect_group_episodes(
        venv, stream.take(n_groups), group_size, fixed_act(LAKE_POLICY), noise_seeds=noise_seeds
    )
    outcomes = episodes.likelihood_matrix
    expected_agreement = lake_p**group_size + (1 - lake_p) ** group_size
    sd = np.sqrt(expected_agreement * (1 - expected_agreement) / n_groups)
    if episode_noise == "independent":
        assert abs(outcomes.mean() - lake_p) < 4 * np.sqrt(lake_p * (1 - lake_p) / outcomes.size)
        assert abs(group_agreement(outcomes) - expected_agreement) < 4 * sd
    else:  # common random numbers: a deterministic policy replays the same slips in every episode of a group
        assert group_agreement(outcomes) == 1.0


def linear_lake_model(policy: np.ndarray) -> MaxRL:
    """A MaxRL model whose policy (linear on the one-hot state) takes ``policy[state]`` deterministically."""
    model = MaxRL("MlpPolicy", make_lake(), policy_kwargs=dict(net_arch=[]), seed=0)
    with th.no_grad():
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
        model.policy.action_net.weight[th.as_tensor(policy), th.arange(16)] = 10.0
    return model


def test_pass_at_k_matches_one_minus_one_minus_p_to_the_k(lake_p):
    model = linear_lake_model(LAKE_POLICY)
    result = evaluate_pass_at_k(model, make_lake(), 64, n_samples=8, deterministic=True, seed=3)
    n_episodes = result.likelihoods.size
    for k, estimate in result.pass_at_k.items():
        expected = 1 - (1 - lake_p) ** k
        # pass@k averages k-subsets of n samples: its sd is at most that of pass@1 over n_episodes / k episodes
        sd = np.sqrt(max(expected * (1 - expected), lake_p * (1 - lake_p)) * k / n_episodes)
        assert abs(estimate - expected) < 4 * sd + 1e-3, (k, estimate, expected)


def test_shared_noise_makes_pass_at_k_flat_for_a_deterministic_policy():
    model = linear_lake_model(LAKE_POLICY)
    result = evaluate_pass_at_k(model, make_lake(), 32, n_samples=8, deterministic=True, episode_noise="shared")
    assert result.pass_at_k[1] == pytest.approx(result.pass_at_k[8])


def test_same_seed_same_run_with_independent_noise():
    def train(seed: int) -> list[th.Tensor]:
        model = MaxRL("MlpPolicy", make_lake(), group_size=4, n_groups=4, seed=seed)
        model.learn(600)
        return [p.detach().clone() for p in model.policy.parameters()]

    first, second, other = train(7), train(7), train(8)
    assert all(th.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(th.equal(a, b) for a, b in zip(first, other, strict=True))


def test_dynamic_obstacles_move_independently_after_a_shared_start():
    """Same start seed, different noise seeds: same first observation, then the obstacles' moves differ."""
    env = StartStateWrapper(make_minigrid("MiniGrid-Dynamic-Obstacles-8x8-v0"))
    turn_left = 0

    def observations(start: EpisodeStart) -> list[np.ndarray]:
        env.set_start_schedule([start])
        trajectory = [env.reset()[0]]
        for _ in range(5):
            observation, _, terminated, truncated, _ = env.step(turn_left)
            trajectory.append(observation)
            if terminated or truncated:
                break
        return trajectory

    shared = [observations(EpisodeStart(11)) for _ in range(2)]
    independent = [observations(EpisodeStart(11, noise_seed)) for noise_seed in (1, 2)]
    assert np.array_equal(independent[0][0], independent[1][0])
    assert all(np.array_equal(a, b) for a, b in zip(*shared, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(*independent, strict=False))


def test_exact_success_probability_is_checked_by_sampling(lake_p):
    venv = DummyVecEnv([make_lake for _ in range(4)])
    stream = StartStateStream(seed=2)
    episodes = collect_group_episodes(
        venv, stream.take(100), 8, fixed_act(LAKE_POLICY), noise_seeds=stream.take_noise_seeds(800)
    )
    assert 0.6 < lake_p < 0.9
    assert abs(episodes.likelihoods.mean() - lake_p) < 4 * np.sqrt(lake_p * (1 - lake_p) / 800)


def test_unknown_episode_noise_is_an_error():
    with pytest.raises(ValueError, match="episode_noise must be 'independent'"):
        MaxRL("MlpPolicy", make_lake(), episode_noise="common")
