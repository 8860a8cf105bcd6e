"""Exact pass@k on deterministic MiniGrid navigation, by dynamic programming over (step, cell, direction).

Where MiniGrid's step is the stock :class:`~minigrid.minigrid_env.MiniGridEnv` step (no moving obstacles, no
instruction checks) and the grid holds only walls, goals and lava (nothing to pick up, no door to toggle), the
agent's pose (cell, direction) is the whole state and every observation is a function of it. The success probability
of a Markov policy from each start state is then exact: the policy is evaluated once, in one batched forward pass, on
every pose reachable from the start; probability mass flows along left / right / forward for ``max_steps`` steps,
mass entering lava is lost, mass reaching a goal is absorbed as success. MiniGrid's other actions (pickup, drop,
toggle, done) change nothing on such a grid and keep the pose. ``pass@k = mean_s(1 - (1 - p_s)^k)`` then carries no
sampling noise (:func:`~sb3_maxrl.common.exact_evaluation.pass_at_k_from_probabilities`).

Covered: Empty, FourRooms, SimpleCrossing, LavaCrossing, LavaGap, DistShift, the package's MiniGrid mazes, with
any of :mod:`~sb3_maxrl_envs.minigrid_wrappers`' observation encodings (partial or full view). Refused with an error
that names the sampled alternative: envs that override ``step`` (DynamicObstacles, every BabyAI level), grids with
doors, keys, balls or boxes (DoorKey, MultiRoom, ...), action or reward wrappers other than the package's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_maxrl.common.exact_evaluation import (
    ExactPassAtKResult,
    PolicyLike,
    action_probabilities_function,
    pass_at_k_from_probabilities,
)
from sb3_maxrl_envs.minigrid_expert import Pose, agent_pose, navigation_successors
from sb3_maxrl_envs.minigrid_wrappers import BinarySuccessWrapper, NavigationActions

#: The grid objects the exact evaluator covers (``None`` cells are empty floor)
COVERED_OBJECTS: frozenset[str] = frozenset({"wall", "goal", "lava", "floor"})
_GOAL, _LAVA = -1, -2
_SAMPLED_HINT = "evaluate it by sampling instead: sb3_maxrl.evaluate_pass_at_k(model, env, seeds, n_samples)"



def _wrapper_chain(env: gym.Env) -> list[gym.Wrapper]:
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def check_exact_coverage(env: gym.Env) -> None:
    """
    Raise a ValueError unless :func:`minigrid_success_probabilities` covers ``env`` (in its current episode).

    :param env: the env the policy sees (wrapped), after ``reset``
    """
    from minigrid.minigrid_env import MiniGridEnv

    unwrapped = env.unwrapped
    if not isinstance(unwrapped, MiniGridEnv):
        raise ValueError(f"{type(unwrapped).__name__} is not a MiniGrid env: {_SAMPLED_HINT}.")
    if type(unwrapped).step is not MiniGridEnv.step:
        raise ValueError(
            f"{type(unwrapped).__name__} overrides MiniGrid's step (moving obstacles, instruction checks, ...): its "
            f"state is more than the agent's pose, so exact evaluation does not cover it; {_SAMPLED_HINT}."
        )
    for wrapper in _wrapper_chain(env):
        if isinstance(wrapper, gym.ActionWrapper) and not isinstance(wrapper, NavigationActions):
            raise ValueError(
                f"{type(wrapper).__name__} changes the actions: exact MiniGrid evaluation knows MiniGrid's actions and "
                f"NavigationActions only; {_SAMPLED_HINT}."
            )
        if isinstance(wrapper, gym.RewardWrapper) and not isinstance(wrapper, BinarySuccessWrapper):
            raise ValueError(
                f"{type(wrapper).__name__} changes the reward, which may change what success means; {_SAMPLED_HINT}."
            )
    objects = {cell.type for cell in unwrapped.grid.grid if cell is not None}
    uncovered = sorted(objects - COVERED_OBJECTS)
    if uncovered or unwrapped.carrying is not None:
        raise ValueError(
            f"The grid holds {uncovered or ['a carried object']}: picking up or toggling changes the state beyond the "
            f"agent's pose, so exact evaluation covers grids of {sorted(COVERED_OBJECTS)} only; {_SAMPLED_HINT}."
        )


def _step_budget(env: gym.Env) -> int:
    budget = int(env.unwrapped.max_steps)  # type: ignore[attr-defined]
    for wrapper in _wrapper_chain(env):
        if isinstance(wrapper, gym.wrappers.TimeLimit):
            budget = min(budget, int(wrapper._max_episode_steps))
    return budget


def pose_observations(env: gym.Env, poses: Sequence[Pose]) -> np.ndarray:
    """
    The observation the wrapped env shows at each pose of the agent, on the current grid.

    Sets the agent's pose, calls MiniGrid's ``gen_obs`` and applies the env's observation wrappers, innermost first.
    The agent is left at the last pose: reset the env before stepping it again.

    :param env: the env the policy sees (wrapped), after ``reset``
    :param poses: (x, y, direction) of each observation
    :return: the observations stacked, ``(len(poses), ...)``
    """
    unwrapped = env.unwrapped
    observation_wrappers = [w for w in reversed(_wrapper_chain(env)) if isinstance(w, gym.ObservationWrapper)]
    observations = []
    for x, y, direction in poses:
        unwrapped.agent_pos = (x, y)  # type: ignore[attr-defined]
        unwrapped.agent_dir = direction  # type: ignore[attr-defined]
        observation = unwrapped.gen_obs()  # type: ignore[attr-defined]
        for wrapper in observation_wrappers:
            observation = wrapper.observation(observation)
        observations.append(observation)
    return np.stack(observations)


def _reachable_graph(env: gym.Env, n_actions: int) -> tuple[list[Pose], np.ndarray]:
    """The poses reachable from the start (start first) and ``targets[state, action]`` (an index, _GOAL or _LAVA)."""
    start = agent_pose(env)
    index = {start: 0}
    poses = [start]
    rows: list[list[int]] = []
    for pose in poses:  # grows while iterating: breadth-first
        row = [index[pose]] * n_actions  # actions 3..6 keep the pose on a covered grid
        for action, successor, outcome in navigation_successors(env, pose):
            if outcome == "goal":
                row[action] = _GOAL
            elif outcome == "lava":
                row[action] = _LAVA
            else:
                if successor not in index:
                    index[successor] = len(poses)
                    poses.append(successor)
                row[action] = index[successor]
        rows.append(row)
    return poses, np.array(rows, dtype=np.int64)


#: A start state's pose graph: observations of its reachable poses, ``targets[state, action]``, the step budget
PoseGraph = tuple[np.ndarray, np.ndarray, int]


def pose_graph(env: gym.Env, seed: int) -> PoseGraph:
    """
    The reachable poses of the start state ``reset(seed=seed)`` gives: their observations, the transitions, the budget.

    :param env: the env the policy sees (wrapped); it is reset
    :param seed: the start seed
    :return: ``(observations (S, ...), targets (S, n_actions), max steps)``; state 0 is the start, a target is a state
        index, -1 (goal reached) or -2 (lava)
    """
    first_observation, _ = env.reset(seed=int(seed))
    check_exact_coverage(env)
    poses, targets = _reachable_graph(env, int(env.action_space.n))  # type: ignore[attr-defined]
    observations = pose_observations(env, poses)
    if not np.array_equal(observations[0], np.asarray(first_observation)):
        raise ValueError(
            f"The observation after reset(seed={seed}) is not the one rebuilt from the agent's pose: the env's "
            f"observation depends on more than the pose; {_SAMPLED_HINT}."
        )
    return observations, targets, _step_budget(env)


def minigrid_success_probabilities(
    policy: PolicyLike,
    env: gym.Env,
    seeds: Sequence[int],
    *,
    seeds_per_batch: int = 64,
    cache: dict[int, PoseGraph] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    The exact success probability and expected episode length of a Markov policy from each start seed.

    :param policy: an SB3 model or policy with a ``Discrete`` action space over the env's observations, or a function
        ``observations -> (M, n_actions)`` action probabilities
    :param env: the env the policy sees (wrapped, e.g. ``make_minigrid(env_id)``); it is reset with every seed
    :param seeds: the start seeds
    :param seeds_per_batch: start states per forward pass of the policy
    :param cache: a dict that keeps every seed's :func:`pose_graph` (policy-independent) across calls
    :return: float64 ``(len(seeds),)`` success probabilities and expected episode lengths
    """
    if not isinstance(env.action_space, gym.spaces.Discrete) or not 3 <= env.action_space.n <= 7:
        raise ValueError(f"Exact MiniGrid evaluation needs MiniGrid's Discrete(3..7) actions, got {env.action_space}.")
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds is empty: pass at least one start seed.")
    cache = {} if cache is None else cache
    n_actions = int(env.action_space.n)
    probabilities_of = action_probabilities_function(policy)
    success, lengths = np.zeros(len(seeds)), np.zeros(len(seeds))
    for begin in range(0, len(seeds), seeds_per_batch):
        graphs = []
        for seed in seeds[begin : begin + seeds_per_batch]:
            if seed not in cache:
                cache[seed] = pose_graph(env, seed)
            graphs.append(cache[seed])
        counts = np.array([len(targets) for _, targets, _ in graphs])
        n_states = int(counts.sum())
        probabilities = np.asarray(probabilities_of(np.concatenate([obs for obs, _, _ in graphs])), dtype=np.float64)
        if probabilities.shape != (n_states, n_actions) or not np.all(probabilities >= 0):  # also rejects NaN
            raise ValueError(
                f"The policy must give {n_actions} non-negative action probabilities per observation: expected shape "
                f"{(n_states, n_actions)}, got {probabilities.shape}."
            )
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        batch = slice(begin, begin + len(graphs))
        success[batch], lengths[batch] = _flow(probabilities, [targets for _, targets, _ in graphs], [b for _, _, b in graphs])
    return np.clip(success, 0.0, 1.0), lengths


def _flow(probabilities: np.ndarray, tables: list[np.ndarray], budgets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Success probability and expected length of each start state: mass flows from its state 0 for its budget."""
    counts = np.array([len(targets) for targets in tables])
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n_states, n_actions = int(counts.sum()), tables[0].shape[1]
    targets = np.concatenate([t + np.where(t >= 0, offset, 0) for t, offset in zip(tables, offsets, strict=True)]).ravel()
    sources = np.repeat(np.arange(n_states), n_actions)
    owner_of_state = np.repeat(np.arange(len(tables)), counts)
    owners = owner_of_state[sources]
    weights = probabilities.ravel()
    moves, to_goal = targets >= 0, targets == _GOAL
    mass: np.ndarray = np.zeros(n_states)
    mass[offsets] = 1.0
    budget = np.array(budgets)
    success, lengths = np.zeros(len(tables)), np.zeros(len(tables))
    for step in range(int(budget.max())):
        mass = np.where(budget[owner_of_state] > step, mass, 0.0)
        lengths += np.bincount(owner_of_state, weights=mass, minlength=len(tables))
        flowing = mass[sources] * weights
        success += np.bincount(owners[to_goal], weights=flowing[to_goal], minlength=len(tables))
        mass = np.bincount(targets[moves], weights=flowing[moves], minlength=n_states)
        if not mass.any():
            break
    return success, lengths


def minigrid_exact_pass_at_k(
    policy: PolicyLike, env: gym.Env, seeds: Sequence[int], ks: Sequence[int] | None = None, *, seeds_per_batch: int = 64
) -> ExactPassAtKResult:
    """
    Exact pass@k of a Markov policy on deterministic MiniGrid navigation (:func:`minigrid_success_probabilities`).

    :param policy: an SB3 model or policy, or a function observations -> action probabilities
    :param env: the env the policy sees (wrapped); it is reset with every seed
    :param seeds: the held-out start seeds
    :param ks: the ks; None for ``1, 2, 4, ..., 1024``
    :param seeds_per_batch: start states per forward pass of the policy
    :return: the result (``.metrics()`` has the keys of ``PassAtKResult.metrics()``)
    """
    probabilities, lengths = minigrid_success_probabilities(policy, env, seeds, seeds_per_batch=seeds_per_batch)
    return pass_at_k_from_probabilities(probabilities, ks, start_seeds=list(seeds), expected_lengths=lengths)


def exact_evaluator(env_fn: Callable[[], gym.Env]) -> Callable[[Any, Sequence[int], Sequence[int]], ExactPassAtKResult]:
    """
    ``(policy, seeds, ks) -> exact pass@k`` on a private copy of the env, the ``exact_pass_at_k`` of a pipeline task.

    Each seed's observations and transitions are built once and kept (they do not depend on the policy).

    :param env_fn: makes the env the policy sees
    :return: the evaluator (the env is made on its first call)
    """
    envs: list[gym.Env] = []
    cache: dict[int, PoseGraph] = {}

    def evaluate(policy: Any, seeds: Sequence[int], ks: Sequence[int]) -> ExactPassAtKResult:
        if not envs:
            envs.append(env_fn())
        probabilities, lengths = minigrid_success_probabilities(policy, envs[0], seeds, cache=cache)
        return pass_at_k_from_probabilities(probabilities, ks, start_seeds=list(seeds), expected_lengths=lengths)

    return evaluate
