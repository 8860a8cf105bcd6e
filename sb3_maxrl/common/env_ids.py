"""The one place that turns a gymnasium env id into the task MaxRL trains on.

Used by :class:`~sb3_maxrl.MaxRL` (an id given as ``env``), :func:`~sb3_maxrl.common.evaluation.make_eval_vec_env`
(so :func:`~sb3_maxrl.evaluate_pass_at_k` and the pass@k callbacks), ``maxrl-train`` and ``maxrl-zoo``:

- a MiniGrid or BabyAI id (``"MiniGrid-DoorKey-5x5-v0"``) is the flat binary-success task
  :func:`sb3_maxrl_envs.make_minigrid` makes of it (MiniGrid's own ``Dict`` observation holds a text mission SB3
  cannot embed, and its episodes report no ``is_success``);
- every other id (``"MaxRL/Maze-9x9-v0"``, ``"CartPole-v1"``, ``"MaxRL/MiniGrid-v0"`` with ``env_id=...`` in
  ``env_kwargs``) is ``gym.make(env_id, **env_kwargs)``, after the ``MaxRL/...`` ids are registered.

Deployment on the raw MiniGrid env: a model trained on a MiniGrid id takes the observations of
``make_minigrid(env_id)``, and :func:`sb3_maxrl_envs.minigrid_wrappers.encode_observation` turns an observation of
``gym.make(env_id)`` into one (``model.predict(encode_observation(obs))``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_maxrl.common.start_states import StartStateWrapper

#: Prefixes of the ids that MiniGrid (and its BabyAI levels) register
MINIGRID_PREFIXES = ("MiniGrid-", "BabyAI-")


def is_minigrid_id(env_id: str) -> bool:
    """
    Whether ``env_id`` is a raw MiniGrid or BabyAI id, which :func:`make_env` turns into a binary-success task.

    :param env_id: a gymnasium id
    """
    return env_id.startswith(MINIGRID_PREFIXES)


def make_env(env_id: str, /, **env_kwargs: Any) -> gym.Env:
    """
    Make the task an env id names: ``make_minigrid(env_id, **env_kwargs)`` for a MiniGrid/BabyAI id (flat
    observation, ``info["is_success"]``), else ``gym.make(env_id, **env_kwargs)``.

    :param env_id: a gymnasium id, e.g. ``"MiniGrid-DoorKey-5x5-v0"``, ``"MaxRL/Maze-9x9-v0"`` or ``"CartPole-v1"``
    :param env_kwargs: keyword arguments of the env (for a MiniGrid id: those of ``make_minigrid``, e.g.
        ``nav_actions=True``, ``obs="onehot"``, ``max_steps=...``)
    :return: the env
    """
    import sb3_maxrl_envs  # registers the MaxRL/... ids

    if is_minigrid_id(env_id):
        return sb3_maxrl_envs.make_minigrid(env_id, **env_kwargs)
    return gym.make(env_id, **env_kwargs)


def env_factory(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """
    A picklable function of no arguments that makes the task (for ``DummyVecEnv``/``SubprocVecEnv``).

    :param env_id: a gymnasium id (see :func:`make_env`)
    :param env_kwargs: keyword arguments of the env
    :return: ``() -> make_env(env_id, **env_kwargs)``
    """
    return functools.partial(make_env, env_id, **(env_kwargs or {}))


def make_group_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
) -> VecEnv:
    """
    ``make_vec_env`` of the task an id names, each env wrapped in ``StartStateWrapper`` (MaxRL and the pass@k
    evaluation choose every episode's start state).

    :param env_id: a gymnasium id (see :func:`make_env`)
    :param n_envs: the number of envs
    :param seed: seeds the envs' action spaces (start states come from MaxRL's stream or the evaluation seeds)
    :param env_kwargs: keyword arguments of the env
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :return: the VecEnv
    """
    return make_vec_env(
        functools.partial(make_env, env_id),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=StartStateWrapper,
        vec_env_cls=vec_env_cls,
    )


def task_wrapper(env_id: str) -> Callable[[gym.Env], gym.Env] | None:
    """
    The wrapper that makes ``gym.make(env_id)`` the task :func:`make_env` returns, for launchers that make envs
    from the id themselves (rl-zoo3): ``wrap_minigrid`` for a MiniGrid/BabyAI id, None for other ids.

    :param env_id: a gymnasium id
    """
    if not is_minigrid_id(env_id):
        return None
    from sb3_maxrl_envs.minigrid_wrappers import wrap_minigrid

    return wrap_minigrid
