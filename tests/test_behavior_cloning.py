"""Behaviour cloning (the SFT stage): MaxRL's and PPO's policies learn a known expert, stop at a target, refuse bad input."""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl import MaxRL
from sb3_maxrl.common.behavior_cloning import behavior_cloning, expert_log_probabilities
from sb3_maxrl.maxrl.policies import MaxRLPolicy
from sb3_maxrl_envs.frozen_lake import exact_success_probability, make_frozen_lake


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    th.set_num_threads(1)


def frozen_lake() -> gym.Env:
    """Deterministic 4x4 FrozenLake: 16 one-hot states, 4 moves, success = reaching the goal."""
    return make_frozen_lake("4x4", is_slippery=False)


def shortest_path_expert(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    """
    The states from which the goal is reachable (holes and the goal excluded) and a move that shortens the
    path to the goal from each, by breadth-first search backwards over the transition table.
    """
    lake = env.unwrapped
    transitions = lake.P  # type: ignore[attr-defined]
    n_states = lake.observation_space.n  # type: ignore[attr-defined]
    distance = np.full(n_states, np.inf)
    desc = lake.desc.flatten()  # type: ignore[attr-defined]
    distance[np.flatnonzero(desc == b"G")] = 0
    for _ in range(n_states):
        for state in range(n_states):
            if desc[state] in (b"H", b"G"):
                continue
            for action in range(4):
                (_, next_state, _, _) = transitions[state][action][0]
                distance[state] = min(distance[state], distance[next_state] + 1)
    states = np.array([s for s in range(n_states) if desc[s] not in (b"H", b"G") and np.isfinite(distance[s])])
    actions = np.array(
        [min(range(4), key=lambda a, s=s: distance[transitions[s][a][0][1]]) for s in states]  # type: ignore[misc]
    )
    return states, actions


def action_probabilities(policy: BasePolicy, observations: np.ndarray) -> np.ndarray:
    obs_tensor, _ = policy.obs_to_tensor(observations)
    with th.no_grad():
        return policy.get_distribution(obs_tensor).distribution.probs.cpu().numpy()  # type: ignore[attr-defined, union-attr]


def success_probability(policy: BasePolicy, env: gym.Env) -> float:
    """The exact probability that the sampling policy reaches the goal within FrozenLake's 100 moves."""
    return exact_success_probability(env, action_probabilities(policy, np.arange(16)))


def make_model(algorithm: str, env: gym.Env) -> BaseAlgorithm:
    if algorithm == "maxrl":
        return MaxRL("MlpPolicy", env, seed=0)
    return PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0)


@pytest.mark.parametrize("algorithm", ["maxrl", "ppo"])
def test_cloning_raises_the_expert_action_probability(algorithm: str) -> None:
    env = frozen_lake()
    states, expert_actions = shortest_path_expert(env)
    assert len(states) == 11 and states[0] == 0  # 16 cells less 4 holes and the goal
    model = make_model(algorithm, env)
    before = action_probabilities(model.policy, states)[np.arange(len(states)), expert_actions]
    success_before = success_probability(model.policy, env)
    policy_optimizer_state = model.policy.optimizer.state_dict()
    value_modules = [] if algorithm == "maxrl" else [model.policy.value_net, model.policy.mlp_extractor.value_net]
    value_head = [p.detach().clone() for module in value_modules for p in module.parameters()]

    result = behavior_cloning(model, itertools.repeat((states, expert_actions)), n_steps=60, learning_rate=1e-2)

    after = action_probabilities(model.policy, states)[np.arange(len(states)), expert_actions]
    assert result.n_steps == 60 and len(result.losses) == 60 and result.evaluations == []
    assert before.mean() < 0.3 and after.min() > 0.9, (before, after)
    assert result.losses[-1] < 0.1 < 1.0 < result.losses[0]
    assert result.losses[0] == pytest.approx(-np.log(before).mean(), rel=1e-5)  # the loss is -mean log pi(a* | s)
    assert success_probability(model.policy, env) > 0.5 > 10 * success_before
    # a fresh optimizer: the policy's own is untouched; only the actor learns; evaluation mode is restored
    assert model.policy.optimizer.state_dict() == policy_optimizer_state
    assert not model.policy.training
    value_params = [p for module in value_modules for p in module.parameters()]
    assert all(th.equal(before, after) for before, after in zip(value_head, value_params, strict=True))


def clone_with_evaluation(target: float | None, n_steps: int = 30, eval_freq: int = 1) -> tuple[Any, BaseAlgorithm]:
    env = frozen_lake()
    states, expert_actions = shortest_path_expert(env)
    model = MaxRL("MlpPolicy", env, seed=0)

    def held_out_success() -> float:
        assert not model.policy.training, "evaluate runs in evaluation mode"
        return success_probability(model.policy, env)

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        subset = np.random.default_rng(step).choice(len(states), size=6, replace=False)
        return states[subset], expert_actions[subset]

    result = behavior_cloning(
        model, batch, n_steps, learning_rate=1e-2, evaluate=held_out_success, target=target, eval_freq=eval_freq
    )
    return result, model


def test_target_stops_at_the_first_evaluation_that_reaches_it() -> None:
    full, _ = clone_with_evaluation(target=None)
    steps = [step for step, _ in full.evaluations]
    values = np.array([value for _, value in full.evaluations])
    assert steps == list(range(31)) and not full.stopped_at_target
    assert values[0] < 0.05 and values[-1] > 0.9
    target = 0.5
    stop = int(np.argmax(values >= target))  # the first evaluation at or above the target
    assert 5 <= stop < 25

    stopped, model = clone_with_evaluation(target=target)
    assert stopped.stopped_at_target and stopped.n_steps == stop
    assert stopped.evaluations == full.evaluations[: stop + 1] and stopped.losses == full.losses[:stop]
    assert stopped.last_evaluation == values[stop]
    assert success_probability(model.policy, frozen_lake()) == values[stop]  # the returned policy is the one evaluated

    unreachable, _ = clone_with_evaluation(target=1.5, n_steps=4)
    assert not unreachable.stopped_at_target and unreachable.n_steps == 4

    already, _ = clone_with_evaluation(target=0.0)
    assert already.stopped_at_target and already.n_steps == 0 and already.losses == []


def test_eval_freq_evaluates_every_few_steps_and_after_the_last() -> None:
    result, _ = clone_with_evaluation(target=None, n_steps=7, eval_freq=3)
    assert [step for step, _ in result.evaluations] == [0, 3, 6, 7]


class ContextEnv(gym.Env):
    """A one-hot context in, two discrete choices out (MultiDiscrete); only its spaces are used."""

    observation_space = spaces.Box(0.0, 1.0, (6,), dtype=np.float32)
    action_space = spaces.MultiDiscrete([3, 2])


def test_multidiscrete_policy_learns_the_joint_expert_action() -> None:
    policy = MaxRLPolicy(ContextEnv.observation_space, ContextEnv.action_space, lambda _: 1e-3)
    observations = np.eye(6, dtype=np.float32)
    expert_actions = np.stack([np.arange(6) % 3, np.arange(6) // 3], axis=1)
    before = expert_log_probabilities(policy, observations, expert_actions).exp().detach().numpy()

    result = behavior_cloning(policy, lambda step: (observations, expert_actions), n_steps=80, learning_rate=1e-2)

    after = expert_log_probabilities(policy, observations, expert_actions).exp().detach().numpy()
    assert before.max() < 0.25 and after.min() > 0.9, (before, after)
    assert result.losses[-1] < result.losses[0] / 10


def test_bad_input_is_a_clear_error() -> None:
    env = frozen_lake()
    states, expert_actions = shortest_path_expert(env)
    model = MaxRL("MlpPolicy", env, seed=0)
    batches = itertools.repeat((states, expert_actions))
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        behavior_cloning(model, batches, 0)
    with pytest.raises(ValueError, match=r"target=0\.5 needs evaluate"):
        behavior_cloning(model, batches, 5, target=0.5)
    with pytest.raises(ValueError, match="eval_freq must be an int >= 1"):
        behavior_cloning(model, batches, 5, evaluate=lambda: 0.0, eval_freq=0)
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        behavior_cloning(model, batches, 5, learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"ran out after 2 batches, before n_steps=5"):
        behavior_cloning(model, [(states, expert_actions)] * 2, 5)
    with pytest.raises(TypeError, match="looks like one"):
        behavior_cloning(model, (states, expert_actions), 5)
    with pytest.raises(ValueError, match=r"action indices of Discrete\(4\)"):
        behavior_cloning(model, lambda step: (states, expert_actions + 4), 1)
    with pytest.raises(ValueError, match="11 expert action values for 10 observations"):
        behavior_cloning(model, lambda step: (states[:10], expert_actions), 1)
    with pytest.raises(ValueError, match="integer action indices"):
        behavior_cloning(model, lambda step: (states, expert_actions + 0.5), 1)
    with pytest.raises(TypeError, match=r"pair \(observations, actions\)"):
        behavior_cloning(model, lambda step: states, 1)
    continuous = MaxRL("MlpPolicy", "MaxRL/Regression-v0", seed=0)
    with pytest.raises(ValueError, match="Discrete or MultiDiscrete action space"):
        behavior_cloning(continuous, lambda step: (np.zeros((2, 1)), np.zeros((2, 1))), 1)
    assert not model.policy.training


def test_cloning_the_bfs_expert_raises_the_exact_held_out_success_on_strict_mazes() -> None:
    from sb3_maxrl_envs.strict_maze import (
        StrictMazeEnv,
        disjoint_layout_seeds,
        exact_success_probabilities,
        expert_transitions,
    )

    # the paper's weak-base protocol: 32 training mazes per step, Adam 1e-3, held-out layouts
    held_out = disjoint_layout_seeds(9, 64, first_seed=1_000_000)
    train = disjoint_layout_seeds(9, 32 * 150, exclude_seeds=held_out)
    model = MaxRL("MlpPolicy", StrictMazeEnv(9), policy_kwargs=dict(net_arch=[128, 128]), seed=0)

    def held_out_pass_at_1() -> float:
        return float(exact_success_probabilities(model, 9, held_out).mean())

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        return expert_transitions(9, train[32 * step : 32 * (step + 1)])

    result = behavior_cloning(model, batch, 150, evaluate=held_out_pass_at_1, target=0.01, eval_freq=5)
    values = [value for _, value in result.evaluations]
    assert result.stopped_at_target and 10 < result.n_steps < 150
    assert values[0] < 1e-3 <= 0.01 <= values[-1]
    assert max(values[:-1]) < 0.01  # it stopped at the first evaluation that reached the target
    assert result.losses[-1] < 0.8 * result.losses[0]
