"""Every registered env: gym.make by id, both env checkers, the likelihood contract, seeding, argument errors."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import sb3_maxrl_envs

BINARY_IDS = [env_id for env_id in sb3_maxrl_envs.ENV_IDS if env_id != "MaxRL/Regression-v0"]
MINIGRID_KWARGS = {"env_id": "MiniGrid-Empty-5x5-v0"}
#: keyword arguments that make an env's episodes short, by id prefix (default: ``max_steps=12``)
SHORT_EPISODE_KWARGS: dict[str, dict[str, Any]] = {
    "MaxRL/Digits": {},
    "MaxRL/Regression": {},
    "MaxRL/Prototypes": {},
    "MaxRL/StrictMaze": {"max_moves": 12},
}


def make(registered_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make``, with a MiniGrid env_id for the generic ``MaxRL/MiniGrid-v0`` unless one is given."""
    if registered_id == "MaxRL/MiniGrid-v0":
        kwargs = {**MINIGRID_KWARGS, **kwargs}
    return gym.make(registered_id, **kwargs)


def run_episode(env: gym.Env, seed: int, actions: np.random.Generator | None) -> list[tuple[Any, ...]]:
    """Random actions (from ``actions``, else the action space) until the episode ends; returns every transition."""
    obs, _ = env.reset(seed=seed)
    transitions = [(obs,)]
    while True:
        action = env.action_space.sample() if actions is None else _sample(env.action_space, actions)
        obs, reward, terminated, truncated, info = env.step(action)
        transitions.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            return transitions


def _sample(space: gym.Space, rng: np.random.Generator) -> Any:
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(space.dtype)


def test_ids_are_registered_in_the_maxrl_namespace() -> None:
    expected = {f"MaxRL/Maze-{s}x{s}{v}-v0" for s in (9, 13, 17) for v in ("", "-Full", "-Random")}
    expected |= {f"MaxRL/StrictMaze-{s}x{s}-v0" for s in (9, 13, 17)}
    expected |= {"MaxRL/MiniGrid-v0", "MaxRL/Regression-v0", "MaxRL/Digits-v0", "MaxRL/Prototypes-v0"}
    expected |= {"MaxRL/FrozenLake-v0", "MaxRL/FrozenLake-8x8-v0"}
    assert set(sb3_maxrl_envs.ENV_IDS) == expected
    assert expected <= set(gym.registry)
    assert all(gym.spec(env_id).namespace == "MaxRL" for env_id in expected)


def test_register_envs_is_idempotent_and_restores_missing_ids() -> None:
    before = dict(gym.registry)
    spec = gym.registry.pop("MaxRL/Digits-v0")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # re-registering an id would warn "Overriding environment"
            sb3_maxrl_envs.register_envs()
            sb3_maxrl_envs.register_envs()
    finally:
        gym.registry.setdefault("MaxRL/Digits-v0", spec)
    assert dict(gym.registry) == before


def test_module_prefixed_id_makes_the_env() -> None:
    env = gym.make("sb3_maxrl_envs:MaxRL/Maze-9x9-v0")
    assert env.unwrapped.size == 9


def test_importing_the_package_does_not_import_heavy_dependencies() -> None:
    code = (
        "import sys, sb3_maxrl_envs; print(sorted(m for m in ('torch', 'minigrid', 'sklearn', 'pygame') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("env_id", sb3_maxrl_envs.ENV_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # MiniGrid lists "human" rendering, which would open a window; the one-step envs render rgb_array only
        gymnasium_check_env(env, skip_render_check=env_id not in ("MaxRL/Regression-v0", "MaxRL/Digits-v0"))
    # gym.make always wraps (OrderEnforcing, PassiveEnvChecker), which check_env notes; nothing else may warn
    expected = ["is different from the unwrapped version"]
    if env_id == "MaxRL/Prototypes-v0":  # Gaussian features: an unbounded Box is the honest space
        expected += ["minimum value is -infinity", "maximum value is infinity"]
    other = [str(w.message) for w in caught if not any(text in str(w.message) for text in expected)]
    assert other == []


@pytest.mark.parametrize("env_id", sb3_maxrl_envs.ENV_IDS)
def test_sb3_check_env(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(make(env_id))


@pytest.mark.parametrize("env_id", sb3_maxrl_envs.ENV_IDS)
def test_sb3_make_vec_env_with_its_default_rgb_array_render_mode(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        venv = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=MINIGRID_KWARGS if env_id == "MaxRL/MiniGrid-v0" else None)
    assert venv.reset().shape == (2, *venv.observation_space.shape)
    venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    frame = venv.env_method("render", indices=0)[0]
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 and frame.max() > 0


@pytest.mark.parametrize("env_id", BINARY_IDS)
def test_binary_tasks_report_is_success_on_the_last_step_only(env_id: str) -> None:
    # short episodes, often truncated
    kwargs = SHORT_EPISODE_KWARGS.get(env_id.split("-")[0], {"max_steps": 12})
    env = make(env_id, **kwargs)
    env.action_space.seed(0)
    for seed in range(5):
        transitions = run_episode(env, seed, None)
        *middle, last = transitions[1:]
        assert all("is_success" not in info for *_, info in middle)
        _, reward, terminated, _, info = last
        assert type(info["is_success"]) is bool
        assert info["is_success"] == (terminated and reward > 0)


def test_regression_reports_likelihood_on_the_last_step() -> None:
    env = make("MaxRL/Regression-v0")
    env.action_space.seed(0)
    transitions = run_episode(env, 3, None)
    assert len(transitions) == 2
    _, reward, terminated, truncated, info = transitions[-1]
    assert (terminated, truncated) == (True, False)
    assert set(info) == {"likelihood", "squared_error", "target", "prediction"}
    assert type(info["likelihood"]) is float and 0.0 <= info["likelihood"] <= 1.0
    assert reward == info["likelihood"]


@pytest.mark.parametrize("env_id", sb3_maxrl_envs.ENV_IDS)
def test_same_seed_same_start_state_and_same_episode(env_id: str) -> None:
    env = make(env_id, **SHORT_EPISODE_KWARGS.get(env_id.split("-")[0], {"max_steps": 30}))
    first = run_episode(env, 7, np.random.default_rng(1))
    env.reset(seed=99)  # an unrelated episode in between
    second = run_episode(env, 7, np.random.default_rng(1))
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]


@pytest.mark.parametrize("env_id", sb3_maxrl_envs.ENV_IDS)
def test_different_seeds_give_different_start_states(env_id: str) -> None:
    if env_id == "MaxRL/MiniGrid-v0":  # Empty-5x5 has one start state; FourRooms places agent and goal at random
        env = gym.make(env_id, env_id="MiniGrid-FourRooms-v0", fully_observed=True)
    else:
        env = make(env_id)
    starts = {np.asarray(env.reset(seed=seed)[0]).tobytes() for seed in range(20)}
    if env_id.startswith("MaxRL/FrozenLake"):  # one start state; the seed only draws the slips
        assert len(starts) == 1
        return
    # a 7x7 view can coincide across mazes (test_envs_maze checks the mazes themselves); full observations cannot
    one_step = ("MaxRL/Regression-v0", "MaxRL/Digits-v0", "MaxRL/Prototypes-v0")
    fully_observed = env_id.endswith("Full-v0") or env_id in ("MaxRL/MiniGrid-v0", *one_step)
    assert len(starts) >= (20 if fully_observed else 10)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "fix"),
    [
        ("MaxRL/Maze-9x9-v0", {"size": 8}, "odd integer >= 5"),
        ("MaxRL/Maze-9x9-v0", {"size": 3}, "odd integer >= 5"),
        ("MaxRL/Maze-9x9-v0", {"placement": "middle"}, "('corners', 'random')"),
        ("MaxRL/Maze-9x9-v0", {"obs": "rgb"}, "('flat', 'onehot', 'image')"),
        ("MaxRL/Maze-9x9-v0", {"start_dir": 4}, "0 (east)"),
        ("MaxRL/Maze-9x9-v0", {"max_steps": 0}, "positive integer"),
        ("MaxRL/Maze-9x9-v0", {"agent_view_size": 4}, "odd integer >= 3"),
        ("MaxRL/MiniGrid-v0", {"env_id": None}, "env_id='MiniGrid-Empty-5x5-v0'"),
        ("MaxRL/MiniGrid-v0", {"env_id": "CartPole-v1"}, "not a MiniGrid id"),
        ("MaxRL/MiniGrid-v0", {"obs": "pixels"}, "('flat', 'onehot', 'image')"),
        ("MaxRL/Regression-v0", {"noise": "cauchy"}, "'gaussian', 'heteroskedastic', 'outliers', 'skewed'"),
        ("MaxRL/Regression-v0", {"tau": 0.0}, "> 0"),
        ("MaxRL/Regression-v0", {"noise_scale": -0.1}, ">= 0"),
        ("MaxRL/Regression-v0", {"outlier_prob": 1.5}, "[0, 1]"),
        ("MaxRL/Regression-v0", {"outlier_scale": 0.5}, ">= 1"),
        ("MaxRL/Digits-v0", {"split": "validation"}, "('train', 'test')"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_fix(env_id: str, kwargs: dict[str, Any], fix: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fix)):
        make(env_id, **kwargs)
