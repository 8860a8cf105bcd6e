"""Shared fixtures: real MiniGrid envs through the package's own wrappers."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from sb3_maxrl import StartStateWrapper
from sb3_maxrl_envs import make_minigrid

torch.set_num_threads(1)


def minigrid_factory(env_id: str = "MiniGrid-Empty-Random-5x5-v0", **kwargs) -> Callable[[], gym.Env]:
    return lambda: make_minigrid(env_id, **kwargs)


@pytest.fixture
def make_group_vec_env() -> Callable[..., VecEnv]:
    """``make_group_vec_env(n_envs, env_id=..., vec_env_cls=None)``: a VecEnv MaxRL can train on."""

    def make(n_envs: int = 2, env_id: str = "MiniGrid-Empty-Random-5x5-v0", **kwargs) -> VecEnv:
        return make_vec_env(minigrid_factory(env_id), n_envs=n_envs, wrapper_class=StartStateWrapper, **kwargs)

    return make
