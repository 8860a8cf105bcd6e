"""MiniGrid experts: the shortest-path planner is optimal and never enters lava; BabyAIBot; start-state identities."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.world_object import Wall

from sb3_maxrl_envs import make_minigrid
from sb3_maxrl_envs.minigrid_expert import (
    BabyAIBotExpert,
    MiniGridPlanner,
    minigrid_start_state_key,
    shortest_path_actions,
)

NAVIGATION_IDS = (
    "MiniGrid-LavaGapS5-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-DistShift1-v0",
    "MiniGrid-Empty-Random-5x5-v0",
)


def env_step_distance(env: gym.Env) -> int | None:
    """The fewest actions to a goal by breadth-first search through MiniGrid's own ``step`` (the planner's oracle)."""
    unwrapped = env.unwrapped
    start = (*map(int, unwrapped.agent_pos), int(unwrapped.agent_dir))
    depth = {start: 0}
    queue = deque([start])
    while queue:
        x, y, direction = pose = queue.popleft()
        for action in (0, 1, 2):
            unwrapped.agent_pos, unwrapped.agent_dir, unwrapped.step_count = (x, y), direction, 0
            _, reward, terminated, _, _ = unwrapped.step(action)
            if terminated and reward > 0:
                return depth[pose] + 1
            successor = (*map(int, unwrapped.agent_pos), int(unwrapped.agent_dir))
            if not terminated and successor not in depth:
                depth[successor] = depth[pose] + 1
                queue.append(successor)
    return None


@pytest.mark.parametrize("env_id", NAVIGATION_IDS)
def test_planner_path_length_is_the_bfs_distance_through_minigrids_step(env_id: str) -> None:
    env = make_minigrid(env_id, nav_actions=True)
    for seed in range(3):
        env.reset(seed=seed)
        plan = shortest_path_actions(env)
        env.reset(seed=seed)
        assert plan is not None and len(plan) == env_step_distance(env)


@pytest.mark.parametrize("env_id", NAVIGATION_IDS[:3])
def test_planner_episodes_succeed_and_never_enter_lava(env_id: str) -> None:
    planner = MiniGridPlanner(lambda: make_minigrid(env_id, nav_actions=True))
    replay = make_minigrid(env_id, nav_actions=True)
    for seed in range(15):
        demonstration = planner(seed)
        assert demonstration is not None
        observations, actions = demonstration
        observation, _ = replay.reset(seed=seed)
        assert observations.shape == (len(actions), *replay.observation_space.shape)
        for index, action in enumerate(actions):
            np.testing.assert_array_equal(observations[index], observation)
            observation, reward, terminated, truncated, info = replay.step(int(action))
            cell = replay.unwrapped.grid.get(*replay.unwrapped.agent_pos)
            assert cell is None or cell.type != "lava"
            assert terminated == (index == len(actions) - 1) and not truncated
        assert info["is_success"] is True and reward == 1.0


def test_a_start_state_the_planner_cannot_solve_is_reported_not_cloned() -> None:
    env = make_minigrid("MiniGrid-LavaCrossingS9N1-v0", nav_actions=True)
    env.reset(seed=0)
    grid = env.unwrapped.grid
    goal_x, goal_y = next(
        (x, y) for x in range(grid.width) for y in range(grid.height) if (c := grid.get(x, y)) and c.type == "goal"
    )
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        grid.set(goal_x + dx, goal_y + dy, Wall())
    assert shortest_path_actions(env) is None
    # a path longer than the step budget: the episode would be truncated, so the expert reports None
    short = MiniGridPlanner(lambda: make_minigrid("MiniGrid-LavaCrossingS9N1-v0", nav_actions=True, max_steps=4))
    assert short(0) is None


def test_babyai_bot_solves_babyai_episodes_and_needs_the_full_action_space() -> None:
    expert = BabyAIBotExpert(lambda: make_minigrid("BabyAI-GoToRedBallGrey-v0"))
    replay = make_minigrid("BabyAI-GoToRedBallGrey-v0")
    for seed in range(10):
        demonstration = expert(seed)
        assert demonstration is not None
        _, actions = demonstration
        replay.reset(seed=seed)
        for action in actions:
            _, _, terminated, _, info = replay.step(int(action))
        assert terminated and info["is_success"] is True
    with pytest.raises(ValueError, match="without nav_actions"):
        BabyAIBotExpert(lambda: make_minigrid("BabyAI-GoToRedBallGrey-v0", nav_actions=True))(0)


def test_start_state_key_identifies_the_layout() -> None:
    env = make_minigrid("MiniGrid-LavaGapS5-v0", nav_actions=True)
    keys = [minigrid_start_state_key(env, seed) for seed in range(40)]
    assert keys == [minigrid_start_state_key(env, seed) for seed in range(40)]
    grids = []
    for seed in range(40):
        env.reset(seed=seed)
        grids.append(env.unwrapped.grid.encode().tobytes())
    assert len(set(keys)) == len(set(grids)) < 40  # LavaGapS5 repeats its few layouts
    assert all((keys[i] == keys[j]) == (grids[i] == grids[j]) for i in range(40) for j in range(40))
