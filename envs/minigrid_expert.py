"""Experts for MiniGrid tasks: a shortest-path planner for navigation, and minigrid's own ``BabyAIBot`` for BabyAI.

Both are callables ``seed -> (observations, actions) | None``, the expert of
:func:`sb3_maxrl.experiments.pipeline.run_protocol`: they reset a fresh copy of the env the policy sees (the
*wrapped* env, e.g. :func:`~sb3_maxrl_envs.minigrid_wrappers.make_minigrid`'s) with ``reset(seed=seed)``, act, and
return the wrapped observations and the actions of one successful episode, the batch
:func:`~sb3_maxrl.common.behavior_cloning.behavior_cloning` takes. A start state the expert cannot solve (no path,
or the episode did not end in success) gives ``None``: it is reported, never cloned.

- :class:`MiniGridPlanner`: breadth-first search over (cell, direction) with MiniGrid's actions left (0), right (1)
  and forward (2) on the unwrapped grid; forward moves into cells that can be overlapped (empty, goal, open door)
  but never into lava. The first goal reached is at the fewest actions, turns included. Covers Empty, FourRooms,
  SimpleCrossing, LavaCrossing, LavaGap, DistShift and the package's MiniGrid mazes (closed doors and objects are
  obstacles to it).
- :class:`BabyAIBotExpert`: ``minigrid.utils.baby_ai_bot.BabyAIBot`` on BabyAI levels (it may use all 7 actions:
  the policy's action space must be MiniGrid's full ``Discrete(7)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections import deque
from collections.abc import Callable, Hashable

import gymnasium as gym
import numpy as np

LEFT, RIGHT, FORWARD = 0, 1, 2
#: MiniGrid's direction vectors (minigrid.core.constants.DIR_TO_VEC): east, south, west, north
DIRECTION_STEPS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))

#: A pose of the agent: (x, y, direction)
Pose = tuple[int, int, int]


def _check_minigrid(env: gym.Env) -> object:
    unwrapped = env.unwrapped
    if not all(hasattr(unwrapped, name) for name in ("grid", "agent_pos", "agent_dir")):
        raise TypeError(
            f"{type(unwrapped).__name__} is not a MiniGrid env (no grid / agent_pos / agent_dir): the MiniGrid "
            "experts plan on minigrid.minigrid_env.MiniGridEnv's grid."
        )
    return unwrapped


def navigation_successors(env: gym.Env, pose: Pose) -> list[tuple[int, Pose, str]]:
    """
    The poses that MiniGrid's left, right and forward lead to from ``pose``, on the env's current grid.

    :param env: a MiniGrid env (wrapped or not), after ``reset``
    :param pose: (x, y, direction)
    :return: ``(action, next pose, outcome)`` for each action, outcome ``"move"``, ``"goal"`` (the episode ends in
        success) or ``"lava"`` (the episode ends in failure); a forward move into a blocked cell keeps the pose
    """
    grid = _check_minigrid(env).grid  # type: ignore[attr-defined]
    x, y, direction = pose
    dx, dy = DIRECTION_STEPS[direction]
    ahead = grid.get(x + dx, y + dy)
    if ahead is not None and ahead.type == "goal":
        forward: tuple[int, Pose, str] = (FORWARD, (x + dx, y + dy, direction), "goal")
    elif ahead is not None and ahead.type == "lava":
        forward = (FORWARD, (x + dx, y + dy, direction), "lava")
    elif ahead is None or ahead.can_overlap():
        forward = (FORWARD, (x + dx, y + dy, direction), "move")
    else:
        forward = (FORWARD, pose, "move")
    return [(LEFT, (x, y, (direction - 1) % 4), "move"), (RIGHT, (x, y, (direction + 1) % 4), "move"), forward]


def agent_pose(env: gym.Env) -> Pose:
    """
    The agent's current (x, y, direction).

    :param env: a MiniGrid env (wrapped or not), after ``reset``
    :return: the pose
    """
    unwrapped = _check_minigrid(env)
    x, y = unwrapped.agent_pos  # type: ignore[attr-defined]
    return int(x), int(y), int(unwrapped.agent_dir)  # type: ignore[attr-defined]


def shortest_path_actions(env: gym.Env) -> list[int] | None:
    """
    The fewest left/right/forward actions from the agent's current pose to a goal, never entering lava.

    Breadth-first search over (cell, direction) on the current grid (:func:`navigation_successors`).

    :param env: a MiniGrid env (wrapped or not), after ``reset``
    :return: the actions (0 left, 1 right, 2 forward), or None when no goal can be reached
    """
    start = agent_pose(env)
    parents: dict[Pose, tuple[Pose, int] | None] = {start: None}
    queue: deque[Pose] = deque([start])
    while queue:
        pose = queue.popleft()
        for action, successor, outcome in navigation_successors(env, pose):
            if outcome == "lava" or successor in parents:
                continue
            parents[successor] = (pose, action)
            if outcome == "goal":
                actions = []
                node: Pose = successor
                while (link := parents[node]) is not None:
                    node, step_action = link
                    actions.append(step_action)
                return actions[::-1]
            queue.append(successor)
    return None


def minigrid_start_state_key(env: gym.Env, seed: int) -> Hashable:
    """
    The identity of the start state ``reset(seed=seed)`` gives: a hash of the full grid, the agent's pose and the mission.

    Two seeds with the same key are the same task (MiniGrid's generators repeat layouts: LavaGapS7 has 15).

    :param env: a MiniGrid env (wrapped or not); it is reset
    :param seed: the reset seed
    :return: a hex digest
    """
    with contextlib.redirect_stdout(io.StringIO()):  # BabyAI's generators print their rejected samples
        env.reset(seed=int(seed))
    unwrapped = _check_minigrid(env)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(unwrapped.grid.encode().tobytes())  # type: ignore[attr-defined]
    digest.update(np.array(agent_pose(env), dtype=np.int64).tobytes())
    digest.update(str(getattr(unwrapped, "mission", "")).encode())
    return digest.hexdigest()


def _episode_is_success(reward: float, terminated: bool, info: dict) -> bool:
    return bool(info.get("is_success", terminated and reward > 0))


class _LazyEnvExpert:
    """An expert with its own copy of the env the policy sees, made (and checked) on first use."""

    def __init__(self, env_fn: Callable[[], gym.Env]) -> None:
        self.env_fn = env_fn
        self._env: gym.Env | None = None

    @property
    def env(self) -> gym.Env:
        """The expert's own copy of the env (made on first use)."""
        if self._env is None:
            env = self.env_fn()
            _check_minigrid(env)
            self._check_env(env)
            self._env = env
        return self._env

    def _check_env(self, env: gym.Env) -> None:
        """The expert's own requirements of the env, beyond being MiniGrid (raise what to do)."""


class MiniGridPlanner(_LazyEnvExpert):
    """
    The shortest-path expert for MiniGrid navigation: ``seed -> (observations, actions)`` of one optimal episode.

    :param env_fn: makes the env the policy sees (wrapped, e.g. ``lambda: make_minigrid(env_id, nav_actions=True)``);
        its actions 0, 1, 2 must be MiniGrid's left, right, forward
    """


    def __call__(self, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """
        One optimal episode from ``reset(seed=seed)``.

        :param seed: the start seed
        :return: ``(observations (T, ...), actions (T,))`` of the wrapped env, or None when no goal can be reached
            without lava, or the episode did not end in success (e.g. the path is longer than ``max_steps``)
        """
        observation, _ = self.env.reset(seed=int(seed))
        plan = shortest_path_actions(self.env)
        if plan is None:
            return None
        observations = []
        for index, action in enumerate(plan):
            observations.append(observation)
            observation, reward, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                is_last = index == len(plan) - 1
                if not (is_last and _episode_is_success(float(reward), terminated, info)):
                    return None
        return np.stack(observations), np.array(plan, dtype=np.int64)


class BabyAIBotExpert(_LazyEnvExpert):
    """
    minigrid's ``BabyAIBot`` as an expert: ``seed -> (observations, actions)`` of one successful episode.

    :param env_fn: makes the env the policy sees (wrapped, with MiniGrid's full ``Discrete(7)`` action space)
    """

    def _check_env(self, env: gym.Env) -> None:
        if not isinstance(env.action_space, gym.spaces.Discrete) or env.action_space.n != 7:
            raise ValueError(
                f"BabyAIBot uses MiniGrid's 7 actions but the env's action space is {env.action_space}: "
                "make the env without nav_actions."
            )

    def __call__(self, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """
        One episode of the bot from ``reset(seed=seed)``.

        :param seed: the start seed
        :return: ``(observations (T, ...), actions (T,))`` of the wrapped env, or None when the bot fails (raises, or
            the episode ends without success)
        """
        from minigrid.utils.baby_ai_bot import BabyAIBot

        with contextlib.redirect_stdout(io.StringIO()):
            observation, _ = self.env.reset(seed=int(seed))
        observations, actions = [], []
        try:
            bot = BabyAIBot(self.env)
            while True:
                action = int(bot.replan())
                observations.append(observation)
                actions.append(action)
                observation, reward, terminated, truncated, info = self.env.step(action)
                if terminated or truncated:
                    break
        except Exception:  # the bot gives up on a few levels' states (see its docstring): report, do not clone
            return None
        if not _episode_is_success(float(reward), terminated, info):
            return None
        return np.stack(observations), np.array(actions, dtype=np.int64)
