"""Perfect mazes: the generator, seeding, solvability, the fast observation, the docstring's path lengths."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minigrid.minigrid_env import MiniGridEnv
from minigrid.wrappers import FullyObsWrapper

import sb3_maxrl_envs  # noqa: F401
from sb3_maxrl_envs import maze
from sb3_maxrl_envs.maze import (
    PerfectMazeEnv,
    _path_length_table,
    generate_perfect_maze,
    make_maze,
    optimal_actions,
    optimal_num_actions,
    shortest_path_length,
)


def assert_perfect(walls: np.ndarray) -> None:
    """Open squares = the cell lattice plus the passages of a spanning tree of it."""
    size = walls.shape[0]
    assert walls.shape == (size, size)
    assert walls[0, :].all() and walls[-1, :].all() and walls[:, 0].all() and walls[:, -1].all()
    assert walls[::2, ::2].all()  # lattice corners are always walls
    assert not walls[1::2, 1::2].any()  # every cell is open
    cells = (size - 1) // 2
    edges = {}
    for cx in range(cells):
        for cy in range(cells):
            if cx + 1 < cells:
                edges[((cx, cy), (cx + 1, cy))] = not walls[2 * cx + 2, 2 * cy + 1]
            if cy + 1 < cells:
                edges[((cx, cy), (cx, cy + 1))] = not walls[2 * cx + 1, 2 * cy + 2]
    passages = [edge for edge, is_open in edges.items() if is_open]
    assert len(passages) == cells * cells - 1  # a tree on n vertices has n - 1 edges ...
    neighbours: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a, b in passages:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    seen = {(0, 0)}
    queue = deque([(0, 0)])
    while queue:
        for nxt in neighbours.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert len(seen) == cells * cells  # ... and is connected
    assert int((~walls).sum()) == 2 * cells * cells - 1


@settings(max_examples=60, deadline=None)
@given(size=st.sampled_from([5, 7, 9, 11, 13, 17, 21]), seed=st.integers(0, 2**32 - 1))
def test_generator_makes_perfect_mazes(size: int, seed: int) -> None:
    assert_perfect(generate_perfect_maze(size, np.random.default_rng(seed)))


@pytest.mark.parametrize("size", [9, 13, 17])
@pytest.mark.parametrize("placement", ["corners", "random"])
def test_every_env_maze_is_perfect_and_solvable(size: int, placement: str) -> None:
    env = PerfectMazeEnv(size=size, placement=placement, start_dir=None if placement == "random" else 0)
    for seed in range(25):
        env.reset(seed=seed)
        assert_perfect(env.walls)
        start, goal = tuple(env.agent_pos), env.goal_pos
        assert start != goal and start[0] % 2 == start[1] % 2 == goal[0] % 2 == goal[1] % 2 == 1
        if placement == "corners":
            assert (start, goal, env.agent_dir) == ((1, 1), (size - 2, size - 2), 0)
        squares = env.shortest_path_length()
        assert squares >= 2 and squares % 2 == 0  # cells are two squares apart
        # every forward move is needed; turns: at most 2 at the start and 1 at each cell the path passes
        assert squares <= env.optimal_num_actions() <= squares + squares // 2 + 1
        grid_walls = np.array(
            [[env.grid.get(x, y) is not None and env.grid.get(x, y).type == "wall" for y in range(size)] for x in range(size)]
        )
        np.testing.assert_array_equal(grid_walls, env.walls)
        assert env.grid.get(*goal).type == "goal"


@pytest.mark.parametrize("size", [9, 13, 17])
def test_same_seed_same_maze_different_seeds_different_mazes(size: int) -> None:
    env = PerfectMazeEnv(size=size, placement="random", start_dir=None)
    layouts = []
    for seed in range(40):
        env.reset(seed=seed)
        layouts.append((env.walls.tobytes(), tuple(env.agent_pos), env.goal_pos, env.agent_dir))
    again = PerfectMazeEnv(size=size, placement="random", start_dir=None)
    for seed in reversed(range(40)):
        again.reset(seed=seed)
        assert (again.walls.tobytes(), tuple(again.agent_pos), again.goal_pos, again.agent_dir) == layouts[seed]
    assert len({walls for walls, *_ in layouts}) == 40
    assert {direction for *_, direction in layouts} == {0, 1, 2, 3}


@pytest.mark.parametrize("fully_observed", [False, True])
@pytest.mark.parametrize("see_through_walls", [False, True])
@pytest.mark.parametrize("agent_view_size", [3, 7])
def test_fast_observation_equals_minigrid_gen_obs(fully_observed: bool, see_through_walls: bool, agent_view_size: int) -> None:
    env = PerfectMazeEnv(
        size=13,
        placement="random",
        start_dir=None,
        fully_observed=fully_observed,
        see_through_walls=see_through_walls,
        agent_view_size=agent_view_size,
    )
    rng = np.random.default_rng(0)
    checked = 0
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        for _ in range(150):
            reference = MiniGridEnv.gen_obs(env)
            if fully_observed:
                reference = FullyObsWrapper(env).observation(reference)
            np.testing.assert_array_equal(obs["image"], reference["image"])
            assert obs["direction"] == reference["direction"] and obs["mission"] == reference["mission"]
            assert env.observation_space.contains(obs)
            checked += 1
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
            if terminated or truncated:
                break
    assert checked > 500


def test_memoized_views_follow_the_maze() -> None:
    env = PerfectMazeEnv(size=9)  # fixed corners: only the walls tell two mazes apart
    rng = np.random.default_rng(0)
    for seed in (0, 0, 1, 0, 2, 2):  # the same maze again keeps the memoized views, a new one drops them
        obs, _ = env.reset(seed=seed)
        for _ in range(60):
            np.testing.assert_array_equal(obs["image"], MiniGridEnv.gen_obs(env)["image"])
            obs, *_ = env.step(int(rng.integers(3)))


def test_optimal_actions_reach_the_goal_in_exactly_that_many_steps() -> None:
    env = make_maze(13, placement="random", start_dir=None)
    for seed in range(10):
        env.reset(seed=seed)
        plan = env.unwrapped.optimal_actions()
        assert len(plan) == env.unwrapped.optimal_num_actions()
        for t, action in enumerate(plan, start=1):
            _, reward, terminated, truncated, info = env.step(action)
            assert terminated == (t == len(plan)) and not truncated
        assert (reward, info["is_success"]) == (1.0, True)


def test_goal_on_the_last_allowed_step_is_a_success() -> None:
    probe = PerfectMazeEnv(size=9)
    probe.reset(seed=5)
    plan = probe.optimal_actions()
    env = make_maze(9, max_steps=len(plan))
    env.reset(seed=5)
    for action in plan:
        _, reward, terminated, truncated, info = env.step(action)
    assert (terminated, truncated, reward, info["is_success"]) == (True, True, 1.0, True)


def test_running_out_of_steps_is_a_failure() -> None:
    env = make_maze(9, max_steps=4)
    env.reset(seed=0)
    for _ in range(4):
        _, reward, terminated, truncated, info = env.step(0)  # turning in place
    assert (terminated, truncated, reward, info["is_success"]) == (False, True, 0.0, False)


def test_minigrid_reward_is_kept_without_binary_reward() -> None:
    env = make_maze(9, binary_reward=False)
    env.reset(seed=2)
    plan = env.unwrapped.optimal_actions()
    for action in plan:
        _, reward, _, _, info = env.step(action)
    assert info["is_success"] and reward == pytest.approx(1 - 0.9 * len(plan) / (2 * 9**2))


def test_path_helpers_on_a_hand_made_corridor() -> None:
    walls = np.ones((5, 5), dtype=bool)
    walls[1, 1:4] = False  # a vertical corridor x = 1, y = 1..3
    assert shortest_path_length(walls, (1, 1), (1, 3)) == 2
    assert optimal_actions(walls, (1, 1), 0, (1, 3)) == [1, 2, 2]  # face south, two steps
    assert optimal_num_actions(walls, (1, 1), 2, (1, 3)) == 3
    walls[1, 2] = True
    assert shortest_path_length(walls, (1, 1), (1, 3)) == -1
    assert optimal_actions(walls, (1, 1), 0, (1, 3)) is None and optimal_num_actions(walls, (1, 1), 0, (1, 3)) == -1


def test_action_spaces_and_max_steps() -> None:
    assert gym.make("MaxRL/Maze-9x9-v0").action_space == gym.spaces.Discrete(3)
    assert gym.make("MaxRL/Maze-9x9-v0", nav_actions=False).action_space == gym.spaces.Discrete(7)
    assert [gym.make(f"MaxRL/Maze-{s}x{s}-v0").unwrapped.max_steps for s in (9, 13, 17)] == [162, 338, 578]
    assert gym.make("MaxRL/Maze-9x9-v0", max_steps=50).unwrapped.max_steps == 50
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=r"max_steps must be an int >= 1, got .* \(a positive integer, or None for 2 \*"):
            make_maze(9, max_steps=bad)


@pytest.mark.parametrize(
    ("env_id", "shape"),
    [
        ("MaxRL/Maze-9x9-v0", (7 * 7 * 3 + 4,)),
        ("MaxRL/Maze-17x17-Full-v0", (17 * 17 * 3 + 4,)),
    ],
)
def test_observation_shapes(env_id: str, shape: tuple[int, ...]) -> None:
    assert gym.make(env_id).observation_space.shape == shape
    assert gym.make(env_id, obs="image").observation_space.shape[0] == 25


def test_docstring_path_length_row_for_9x9() -> None:
    measured = _path_length_table(sizes=(9,), n_seeds=1000).splitlines()
    assert measured[0] in maze.__doc__ and measured[1] in maze.__doc__


def test_rgb_rendering() -> None:
    env = gym.make("MaxRL/Maze-9x9-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (9 * 32, 9 * 32, 3) and frame.dtype == np.uint8
