"""The tasks MaxRL is built for, registered as gymnasium ids in the ``MaxRL`` namespace.

Importing this package registers the ids (gymnasium 1.x has no plugin entry points), without importing
minigrid, scikit-learn or torch: the entry points are strings, loaded by ``gym.make``. Both
``import sb3_maxrl_envs; gym.make("MaxRL/Maze-9x9-v0")`` and ``gym.make("sb3_maxrl_envs:MaxRL/Maze-9x9-v0")`` work.

Every episode's last step reports its likelihood in ``info``: ``info["is_success"]`` (bool) for the binary
tasks (mazes, MiniGrid, digits), ``info["likelihood"]`` (float in [0, 1]) for the regression task. The start
state is a pure function of the seed given to ``reset(seed=...)``.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from sb3_maxrl_envs.minigrid_wrappers import encode_observation, make_minigrid, wrap_minigrid

__all__ = [
    "ENV_IDS",
    "DigitsClassificationEnv",
    "DigitsTask",
    "PerfectMazeEnv",
    "PrototypesEnv",
    "PrototypesTask",
    "RegressionEnv",
    "RegressionTask",
    "StrictMazeEnv",
    "StrictMazeVecEnv",
    "encode_observation",
    "make_maze",
    "make_minigrid",
    "register_envs",
    "wrap_minigrid",
]

MAZE_SIZES = (9, 13, 17)


def _env_specs() -> dict[str, tuple[str, dict[str, Any]]]:
    specs: dict[str, tuple[str, dict[str, Any]]] = {}
    for size in MAZE_SIZES:
        name = f"MaxRL/Maze-{size}x{size}"
        specs[f"{name}-v0"] = ("sb3_maxrl_envs.maze:make_maze", {"size": size})
        specs[f"{name}-Full-v0"] = ("sb3_maxrl_envs.maze:make_maze", {"size": size, "fully_observed": True})
        specs[f"{name}-Random-v0"] = (
            "sb3_maxrl_envs.maze:make_maze",
            {"size": size, "placement": "random", "start_dir": None},
        )
    for size in MAZE_SIZES:
        specs[f"MaxRL/StrictMaze-{size}x{size}-v0"] = ("sb3_maxrl_envs.strict_maze:StrictMazeEnv", {"size": size})
    specs["MaxRL/MiniGrid-v0"] = ("sb3_maxrl_envs.minigrid_wrappers:make_minigrid", {})
    specs["MaxRL/FrozenLake-v0"] = ("sb3_maxrl_envs.frozen_lake:make_frozen_lake", {})
    specs["MaxRL/FrozenLake-8x8-v0"] = ("sb3_maxrl_envs.frozen_lake:make_frozen_lake", {"map_name": "8x8"})
    specs["MaxRL/Regression-v0"] = ("sb3_maxrl_envs.regression:RegressionEnv", {})
    specs["MaxRL/Digits-v0"] = ("sb3_maxrl_envs.classification:DigitsClassificationEnv", {})
    specs["MaxRL/Prototypes-v0"] = ("sb3_maxrl_envs.prototypes:PrototypesEnv", {})
    return specs


ENV_IDS: tuple[str, ...] = tuple(_env_specs())


def register_envs() -> None:
    """Register the ``MaxRL/*`` ids with gymnasium; ids already registered are left alone (idempotent)."""
    for env_id, (entry_point, kwargs) in _env_specs().items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs)


_LAZY_ATTRIBUTES = {
    "PerfectMazeEnv": "sb3_maxrl_envs.maze",
    "make_maze": "sb3_maxrl_envs.maze",
    "RegressionEnv": "sb3_maxrl_envs.regression",
    "StrictMazeEnv": "sb3_maxrl_envs.strict_maze",
    "StrictMazeVecEnv": "sb3_maxrl_envs.strict_maze",
    "DigitsClassificationEnv": "sb3_maxrl_envs.classification",
    "PrototypesEnv": "sb3_maxrl_envs.prototypes",
    "PrototypesTask": "sb3_maxrl_envs.prototypes",
    "DigitsTask": "sb3_maxrl_envs.classification",
    "RegressionTask": "sb3_maxrl_envs.regression",
}


def __getattr__(name: str) -> Any:
    """Import the env modules on first use (the maze module imports minigrid and pygame)."""
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_envs()
