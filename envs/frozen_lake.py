"""Slippery FrozenLake as a binary-success task: a stochastic task whose success probability is known exactly.

Every move slips sideways with probability 2/3, drawn from the env's ``np_random``, so the N episodes of a group
differ only through that in-episode randomness: the task that shows why episodes need their own noise
(``episode_noise="independent"``, MaxRL's default). For any Markov policy the success probability within the
step limit follows from FrozenLake's transition table (:func:`exact_success_probability`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sb3_maxrl_envs.minigrid_wrappers import BinarySuccessWrapper

#: FrozenLake's registered step limit.
FROZEN_LAKE_MAX_STEPS = {"4x4": 100, "8x8": 200}


def make_frozen_lake(
    map_name: str = "4x4", is_slippery: bool = True, max_steps: int | None = None, **make_kwargs: Any
) -> gym.Env:
    """
    ``FrozenLake-v1`` reporting ``info["is_success"]`` (reached the goal) on the last step of every episode.

    Registered as ``MaxRL/FrozenLake-v0`` (4x4) and ``MaxRL/FrozenLake-8x8-v0``.

    :param map_name: "4x4" or "8x8"
    :param is_slippery: slip sideways with probability 2/3 (the stochastic task)
    :param max_steps: the step limit, inside the success wrapper so a truncated episode still reports
        ``is_success=False`` (None: gymnasium's limit for the map, 100 for 4x4 and 200 for 8x8); use it rather than
        ``gym.make(..., max_episode_steps=...)``, whose outer time limit would end episodes without an outcome
    :param make_kwargs: passed to ``gym.make("FrozenLake-v1", ...)``
    :return: the env
    """
    make_kwargs["max_episode_steps"] = max_steps or FROZEN_LAKE_MAX_STEPS.get(map_name, 100)
    return BinarySuccessWrapper(gym.make("FrozenLake-v1", map_name=map_name, is_slippery=is_slippery, **make_kwargs))


def exact_success_probability(env: gym.Env, action_probabilities: np.ndarray, max_steps: int | None = None) -> float:
    """
    The probability that a Markov policy reaches the goal from the start within ``max_steps`` moves.

    Dynamic programming over (step, state) on the env's transition table ``P``.

    :param env: a FrozenLake env (any wrapper around it)
    :param action_probabilities: ``(n_states, 4)`` the policy's action probabilities in every state
    :param max_steps: the step limit (None: the env's registered limit)
    :return: the success probability
    """
    lake = env.unwrapped
    transitions = lake.P  # type: ignore[attr-defined]
    n_states = lake.observation_space.n  # type: ignore[attr-defined]
    probabilities = np.asarray(action_probabilities, dtype=np.float64)
    if probabilities.shape != (n_states, 4) or np.any(probabilities < 0):
        raise ValueError(f"action_probabilities must be a non-negative ({n_states}, 4) array, got {probabilities.shape}.")
    if max_steps is None:
        max_steps = FROZEN_LAKE_MAX_STEPS["4x4" if n_states == 16 else "8x8"]
    mass = np.zeros(n_states)
    mass[0] = 1.0
    success = 0.0
    for _ in range(max_steps):
        moved = np.zeros(n_states)
        for state in np.flatnonzero(mass):
            for action in range(4):
                weight = mass[state] * probabilities[state, action]
                for probability, next_state, reward, terminated in transitions[state][action]:
                    if reward > 0:
                        success += weight * probability
                    elif not terminated:
                        moved[next_state] += weight * probability
        mass = moved
    return float(success)
