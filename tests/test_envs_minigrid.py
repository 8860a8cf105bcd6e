"""The MiniGrid wrappers (success rule, encodings, actions) and the MiniGridCNN features extractor."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Lava
from minigrid.minigrid_env import MiniGridEnv
from stable_baselines3 import PPO

import sb3_maxrl_envs  # noqa: F401
from sb3_maxrl.common.torch_layers import MiniGridCNN
from sb3_maxrl_envs.minigrid_wrappers import (
    BinarySuccessWrapper,
    EncodedObsWrapper,
    NavigationActions,
    encode_grid,
    make_minigrid,
    wrap_minigrid,
)

LEFT, RIGHT, FORWARD = 0, 1, 2


def _mission() -> str:
    return "avoid the lava"


class LavaOrGoal(MiniGridEnv):
    """A 5x4 room: the agent at (1, 1) faces east with lava at (2, 1); the goal is south of it at (1, 2)."""

    def __init__(self, max_steps: int = 10, **kwargs: Any) -> None:
        super().__init__(mission_space=MissionSpace(mission_func=_mission), width=5, height=4, max_steps=max_steps, **kwargs)

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        self.grid.set(2, 1, Lava())
        self.grid.set(1, 2, Goal())
        self.agent_pos, self.agent_dir = (1, 1), 0
        self.mission = _mission()


def play(env: gym.Env, actions: list[int]) -> tuple[Any, ...]:
    env.reset(seed=0)
    for action in actions:
        result = env.step(action)
    return result


def test_lava_is_a_failure() -> None:
    _, reward, terminated, truncated, info = play(wrap_minigrid(LavaOrGoal()), [FORWARD])
    assert (terminated, truncated, reward, info["is_success"]) == (True, False, 0.0, False)


def test_goal_is_a_success_with_binary_or_minigrid_reward() -> None:
    _, reward, terminated, _, info = play(wrap_minigrid(LavaOrGoal()), [RIGHT, FORWARD])
    assert (terminated, reward, info["is_success"]) == (True, 1.0, True)
    _, reward, _, _, info = play(wrap_minigrid(LavaOrGoal(), binary_reward=False), [RIGHT, FORWARD])
    assert info["is_success"] and reward == pytest.approx(1 - 0.9 * 2 / 10)


def test_goal_on_the_last_step_is_a_success_and_timeout_is_a_failure() -> None:
    _, reward, terminated, truncated, info = play(wrap_minigrid(LavaOrGoal(max_steps=2)), [RIGHT, FORWARD])
    assert (terminated, truncated, reward, info["is_success"]) == (True, True, 1.0, True)
    _, reward, terminated, truncated, info = play(wrap_minigrid(LavaOrGoal(max_steps=2)), [LEFT, LEFT])
    assert (terminated, truncated, reward, info["is_success"]) == (False, True, 0.0, False)


def test_intermediate_steps_carry_no_is_success() -> None:
    env = wrap_minigrid(LavaOrGoal())
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(RIGHT)
    assert (reward, terminated, truncated, "is_success" in info) == (0.0, False, False, False)


def test_flat_encoding_is_the_scaled_codes_plus_heading() -> None:
    image = np.array([[[10, 5, 3], [0, 0, 0]], [[2, 5, 0], [8, 1, 1]]], dtype=np.uint8)
    flat = encode_grid(image, 2, "flat")
    expected = np.concatenate([(image / np.array([10.0, 5.0, 3.0])).ravel(), [0, 0, 1, 0]]).astype(np.float32)
    np.testing.assert_array_equal(flat, expected)
    assert flat.dtype == np.float32


def test_onehot_and_image_encodings_agree() -> None:
    image = np.array(
        [[[10, 0, 3], [0, 0, 0], [4, 2, 2]], [[2, 5, 0], [8, 1, 1], [1, 0, 0]]], dtype=np.uint8
    )  # width 2, height 3
    onehot = encode_grid(image, 1, "onehot")
    planes = encode_grid(image, 1, "image")
    assert onehot.shape == (2 * 3 * 21 + 4,) and planes.shape == (25, 3, 2)
    cells = onehot[:-4].reshape(2, 3, 21)
    assert (cells.sum(axis=2) == 3).all()
    for x in range(2):
        for y in range(3):
            obj, color, state = image[x, y]
            assert cells[x, y, obj] == cells[x, y, 11 + color] == cells[x, y, 17 + state] == 1
            np.testing.assert_array_equal(planes[:21, y, x], cells[x, y])
    np.testing.assert_array_equal(onehot[-4:], [0, 1, 0, 0])
    assert (planes[22] == 1).all() and (planes[[21, 23, 24]] == 0).all()


@pytest.mark.parametrize("obs", ["flat", "onehot", "image"])
@pytest.mark.parametrize("fully_observed", [False, True])
@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-LavaGapS5-v0"])
def test_encoded_observations_lie_in_their_space(obs: str, fully_observed: bool, env_id: str) -> None:
    env = make_minigrid(env_id, obs=obs, fully_observed=fully_observed)
    env.action_space.seed(0)
    ob, _ = env.reset(seed=0)
    for _ in range(30):
        assert env.observation_space.contains(ob)
        ob, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            ob, _ = env.reset()


def test_wrappers_refuse_non_minigrid_envs() -> None:
    with pytest.raises(ValueError, match="MiniGrid's Dict observation"):
        EncodedObsWrapper(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="Discrete\\(7\\)"):
        NavigationActions(gym.make("CartPole-v1"))


def test_navigation_actions_are_minigrids_first_three() -> None:
    env = NavigationActions(BinarySuccessWrapper(LavaOrGoal()))
    assert env.action_space == gym.spaces.Discrete(3)
    assert [env.action(a) for a in range(3)] == [LEFT, RIGHT, FORWARD]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "spatial"),
    [
        ("MaxRL/Maze-9x9-v0", {}, (7, 7)),
        ("MaxRL/Maze-17x17-Full-v0", {}, (17, 17)),
        ("MaxRL/MiniGrid-v0", {"env_id": "MiniGrid-Empty-5x5-v0"}, (7, 7)),
    ],
)
def test_minigrid_cnn_in_an_sb3_policy(env_id: str, kwargs: dict[str, Any], spatial: tuple[int, int]) -> None:
    th.manual_seed(0)
    env = gym.make(env_id, obs="image", **kwargs)
    assert env.observation_space.shape == (25, *spatial)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        device="cpu",
        policy_kwargs={"features_extractor_class": MiniGridCNN, "features_extractor_kwargs": {"features_dim": 32}},
    )
    assert isinstance(model.policy.features_extractor, MiniGridCNN)
    obs, _ = env.reset(seed=0)
    features = model.policy.extract_features(th.as_tensor(obs[None]), model.policy.features_extractor)
    assert features.shape == (1, 32)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    model.learn(16)  # one rollout and one gradient step go through


def test_minigrid_cnn_rejects_unusable_spaces() -> None:
    with pytest.raises(ValueError, match="obs='image'"):
        MiniGridCNN(gym.spaces.Box(0, 1, (151,), np.float32))
    with pytest.raises(ValueError, match="height and width >= 4"):
        MiniGridCNN(gym.spaces.Box(0, 1, (25, 3, 3), np.float32))
    with pytest.raises(ValueError, match="channels-last"):
        MiniGridCNN(gym.spaces.Box(0, 255, (7, 7, 3), np.uint8))


@pytest.mark.parametrize("obs", ["flat", "onehot", "image"])
def test_encode_observation_is_the_wrapped_observation_single_and_batched(obs: str) -> None:
    from sb3_maxrl_envs import encode_observation

    env_id = "MiniGrid-DoorKey-5x5-v0"
    raw, task = gym.make(env_id), make_minigrid(env_id, obs=obs)
    for seed in (0, 1):
        raw_observation, _ = raw.reset(seed=seed)
        task_observation, _ = task.reset(seed=seed)
        assert np.array_equal(encode_observation(raw_observation, obs), task_observation)
    raw_observations = [raw.reset(seed=seed)[0] for seed in (2, 3)]
    batch = {key: np.stack([o[key] for o in raw_observations]) for key in ("image", "direction")}
    expected = np.stack([task.reset(seed=seed)[0] for seed in (2, 3)])
    assert np.array_equal(encode_observation(batch, obs), expected)
    with pytest.raises(ValueError, match="not an observation encoding"):
        encode_observation(raw_observation, "pixels")


def test_make_env_resolves_minigrid_ids_and_leaves_others_to_gymnasium() -> None:
    from sb3_maxrl.common.env_ids import is_minigrid_id, make_env, task_wrapper

    assert is_minigrid_id("MiniGrid-Empty-5x5-v0") and is_minigrid_id("BabyAI-GoToLocal-v0")
    assert not is_minigrid_id("MaxRL/MiniGrid-v0") and task_wrapper("MaxRL/Maze-9x9-v0") is None
    env = make_env("MiniGrid-Empty-5x5-v0", nav_actions=True)
    assert env.action_space.n == 3 and env.observation_space == make_minigrid("MiniGrid-Empty-5x5-v0").observation_space
    assert make_env("MaxRL/MiniGrid-v0", env_id="MiniGrid-Empty-5x5-v0").observation_space == env.observation_space
    assert make_env("CartPole-v1").spec.id == "CartPole-v1"
