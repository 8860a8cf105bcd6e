"""Exact pass@k on deterministic MiniGrid navigation: agreement with sampling, exact identities, refusals."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_maxrl import MaxRL, behavior_cloning, evaluate_pass_at_k
from sb3_maxrl_envs import make_minigrid
from sb3_maxrl_envs.minigrid_exact import (
    exact_evaluator,
    minigrid_exact_pass_at_k,
    minigrid_success_probabilities,
)
from sb3_maxrl_envs.minigrid_expert import MiniGridPlanner

LAVA_GAP = "MiniGrid-LavaGapS5-v0"


def forward_biased_model(env_id: str) -> MaxRL:
    """A random policy that moves forward about 3/4 of the time."""
    th.manual_seed(0)
    model = MaxRL("MlpPolicy", make_minigrid(env_id, nav_actions=True), policy_kwargs=dict(net_arch=[16]), seed=0)
    with th.no_grad():
        model.policy.action_net.bias.copy_(th.tensor([0.0, 0.0, 1.8]))
    return model


def test_exact_success_probabilities_agree_with_sampled_episodes() -> None:
    th.set_num_threads(1)
    make = lambda: make_minigrid(LAVA_GAP, nav_actions=True)  # noqa: E731
    th.manual_seed(0)
    model = MaxRL("MlpPolicy", make(), policy_kwargs=dict(net_arch=[16]), seed=0)
    seeds = [0, 1]  # two different layouts
    planner = MiniGridPlanner(make)
    demonstrations = [planner(seed) for seed in seeds]
    batch = np.concatenate([d[0] for d in demonstrations]), np.concatenate([d[1] for d in demonstrations])
    behavior_cloning(model, [batch] * 20, n_steps=20, learning_rate=1e-2)  # a policy between random and the expert
    exact, _ = minigrid_success_probabilities(model, make(), seeds)
    n = 150
    sampled = evaluate_pass_at_k(model, make(), seeds, n_samples=n, ks=[1], n_envs=16, seed=1).mean_likelihoods
    standard_error = np.sqrt(exact * (1 - exact) / n)
    assert np.all((exact > 0.05) & (exact < 0.95)), "a test that can fail needs success rates away from 0 and 1"
    np.testing.assert_array_less(np.abs(sampled - exact), 4 * standard_error)


@pytest.mark.parametrize("fully_observed", [False, True])
def test_exact_identities_for_deterministic_policies(fully_observed: bool) -> None:
    env = make_minigrid(LAVA_GAP, nav_actions=True, fully_observed=fully_observed)
    seeds = list(range(5))
    turn_left = lambda obs: np.tile([1.0, 0.0, 0.0], (len(obs), 1))  # noqa: E731
    probabilities, lengths = minigrid_success_probabilities(turn_left, env, seeds)
    np.testing.assert_array_equal(probabilities, np.zeros(5))
    np.testing.assert_array_equal(lengths, np.full(5, env.unwrapped.max_steps))
    # always forward: the outcome and the length of the one episode it plays
    forward = lambda obs: np.tile([0.0, 0.0, 1.0], (len(obs), 1))  # noqa: E731
    probabilities, lengths = minigrid_success_probabilities(forward, env, seeds)
    for index, seed in enumerate(seeds):
        env.reset(seed=seed)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, info = env.step(2)
            steps, done = steps + 1, terminated or truncated
        assert probabilities[index] == float(info["is_success"]) and lengths[index] == steps
    # the planner's actions as a policy: every start state succeeds
    planner = MiniGridPlanner(lambda: make_minigrid(LAVA_GAP, nav_actions=True, fully_observed=fully_observed))
    table = {}
    for seed in seeds:
        observations, actions = planner(seed)
        table.update({obs.tobytes(): action for obs, action in zip(observations, actions, strict=True)})
    expert = lambda obs: np.eye(3)[[table.get(o.tobytes(), 0) for o in obs]]  # noqa: E731
    result = minigrid_exact_pass_at_k(expert, env, seeds, ks=[1, 4])
    assert result.pass_at_k == {1: 1.0, 4: 1.0}


def test_exact_evaluator_caches_and_matches_the_direct_call() -> None:
    model = forward_biased_model("MiniGrid-LavaCrossingS9N1-v0")
    make = lambda: make_minigrid("MiniGrid-LavaCrossingS9N1-v0", nav_actions=True)  # noqa: E731
    evaluate = exact_evaluator(make)
    first = evaluate(model, [3, 4, 5], [1, 16])
    again = evaluate(model, [3, 4, 5], [1, 16])
    direct = minigrid_exact_pass_at_k(model, make(), [3, 4, 5], [1, 16])
    assert first.pass_at_k == again.pass_at_k == direct.pass_at_k


@pytest.mark.parametrize(
    ("env_id", "match"),
    [
        ("MiniGrid-Dynamic-Obstacles-5x5-v0", "overrides MiniGrid's step"),
        ("BabyAI-GoToRedBallGrey-v0", "overrides MiniGrid's step"),
        ("MiniGrid-DoorKey-5x5-v0", r"grid holds \['door', 'key'\]"),
    ],
)
def test_envs_outside_deterministic_navigation_are_refused(env_id: str, match: str) -> None:
    env = make_minigrid(env_id)
    with pytest.raises(ValueError, match=match) as error:
        minigrid_success_probabilities(lambda obs: np.full((len(obs), 7), 1 / 7), env, [0])
    assert "evaluate_pass_at_k" in str(error.value)


def test_foreign_action_wrappers_are_refused() -> None:
    class Reversed(gym.ActionWrapper):
        def action(self, action: int) -> int:
            return 2 - int(action)

    env = Reversed(make_minigrid(LAVA_GAP, nav_actions=True))
    with pytest.raises(ValueError, match="Reversed changes the actions"):
        minigrid_success_probabilities(lambda obs: np.full((len(obs), 3), 1 / 3), env, [0])
