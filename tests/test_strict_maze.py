"""Strict mazes: layouts and their count, the BFS expert, the env's failure semantics, the native VecEnv against
a DummyVecEnv of the gym env, and the exact evaluation against brute force and against sampled pass@k."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_maxrl import MaxRL, StartStateWrapper, evaluate_pass_at_k
from sb3_maxrl.common.evaluation import PassAtKResult
from sb3_maxrl.common.exact_evaluation import pass_at_k_from_probabilities
from sb3_maxrl.common.start_states import EpisodeStart, StartStateVecEnv, WrappedStartStates, start_state_control
from sb3_maxrl_envs.maze import generate_prim_maze_from_start
from sb3_maxrl_envs.strict_maze import (
    MazeLayout,
    StrictMazeEnv,
    StrictMazeVecEnv,
    count_perfect_mazes,
    default_max_moves,
    disjoint_layout_seeds,
    exact_pass_at_k,
    exact_success_probabilities,
    expert_transitions,
    layout_fingerprint,
    layout_key,
    maze_layout,
    maze_walls,
)

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
STEPS = {UP: (-1, 0), DOWN: (1, 0), LEFT: (0, -1), RIGHT: (0, 1)}  # (row, col), the documented convention


def simulate(walls: np.ndarray, actions: tuple[int, ...]) -> tuple[bool, int]:
    """The task's rules on a plain walls[row, col] grid: (success, moves taken until the episode ended)."""
    size = walls.shape[0]
    row, col = 1, 1
    for moves, action in enumerate(actions, start=1):
        next_row, next_col = row + STEPS[action][0], col + STEPS[action][1]
        if not (0 <= next_row < size and 0 <= next_col < size) or walls[next_row, next_col]:
            return False, moves
        row, col = next_row, next_col
        if (row, col) == (size - 2, size - 2):
            return True, moves
    return False, len(actions)


def bfs_distances(walls: np.ndarray) -> dict[tuple[int, int], int]:
    size = walls.shape[0]
    goal = (size - 2, size - 2)
    distances = {goal: 0}
    queue = deque([goal])
    while queue:
        row, col = queue.popleft()
        for d_row, d_col in STEPS.values():
            nxt = (row + d_row, col + d_col)
            if 0 <= nxt[0] < size and 0 <= nxt[1] < size and not walls[nxt] and nxt not in distances:
                distances[nxt] = distances[(row, col)] + 1
                queue.append(nxt)
    return distances


def agent_cell(observations: np.ndarray, size: int) -> np.ndarray:
    return observations[:, size * size : 2 * size * size].argmax(axis=1)


# ----------------------------------------------------------------------------------------------- layouts


def spanning_trees_brute_force(cells: int) -> int:
    vertices = cells * cells
    edges = [(r * cells + c, r * cells + c + 1) for r in range(cells) for c in range(cells - 1)]
    edges += [(r * cells + c, (r + 1) * cells + c) for r in range(cells - 1) for c in range(cells)]
    count = 0
    for subset in itertools.combinations(edges, vertices - 1):
        parent = list(range(vertices))

        def find(v: int, parent: list[int] = parent) -> int:
            while parent[v] != v:
                v = parent[v]
            return v

        acyclic = True
        for a, b in subset:
            root_a, root_b = find(a), find(b)
            if root_a == root_b:
                acyclic = False
                break
            parent[root_a] = root_b
        count += acyclic  # n - 1 edges without a cycle span the n vertices
    return count


@pytest.mark.parametrize("size", [5, 7])
def test_maze_count_is_the_number_of_spanning_trees(size):
    assert count_perfect_mazes(size) == spanning_trees_brute_force((size - 1) // 2)


def test_maze_counts_of_the_benchmark_sizes():
    # OEIS A007341 (spanning trees of the n x n grid graph): n = 4, 6, 8
    assert count_perfect_mazes(9) == 100352
    assert count_perfect_mazes(13) == 32565539635200
    assert count_perfect_mazes(17) == 126231322912498539682594816


def test_generator_produces_perfect_7x7_mazes_covering_most_layouts():
    """Grown from the start cell, the generator is far from uniform: 175 of the 192 layouts in 4000 seeds."""
    keys = set()
    for seed in range(4000):
        walls = maze_walls(7, seed)
        distances = bfs_distances(walls)
        assert len(distances) == int((~walls).sum()) == 2 * 3 * 3 - 1  # connected, a tree's squares
        keys.add(layout_key(walls))
    assert 0.85 * count_perfect_mazes(7) < len(keys) <= count_perfect_mazes(7)


def test_layout_is_a_pure_function_of_the_seed():
    for seed in (0, 1, 2**31 + 5):
        expected = generate_prim_maze_from_start(9, np.random.default_rng(seed))
        assert np.array_equal(maze_walls(9, seed), expected)
        strict = StrictMazeEnv(9)
        for _ in range(2):
            strict.reset(seed=seed)
            assert np.array_equal(strict.layout.walls, maze_walls(9, seed)) and strict.maze_seed == seed
    with pytest.raises(ValueError, match="read-only"):
        maze_walls(9, 0)[0, 0] = False


def test_generator_is_the_papers_mostly_down_and_right():
    """The paper's cell Prim grown from the start: few shortest paths need an up or left move (4-5% on 9x9)."""
    needs_up_or_left = [
        bool(np.isin(maze_layout(9, seed).expert_path()[1], [0, 2]).any()) for seed in range(2**31, 2**31 + 1000)
    ]
    assert 0.02 < np.mean(needs_up_or_left) < 0.08


def test_layout_key_identifies_layouts():
    walls = [maze_walls(9, seed) for seed in range(300)]
    keys = [layout_key(w) for w in walls]
    for (wa, ka), (wb, kb) in itertools.combinations(zip(walls, keys, strict=True), 2):
        assert (ka == kb) == np.array_equal(wa, wb)
    assert len(set(keys)) < len(keys)  # 9x9 seeds do repeat layouts
    assert layout_key(np.ones((5, 5), bool)) != layout_key(np.ones((7, 7), bool))
    assert layout_fingerprint(walls[0]) == layout_fingerprint(walls[0].copy())
    with pytest.raises(ValueError, match="square"):
        layout_key(np.ones((5, 7), bool))


def test_disjoint_layout_seeds():
    held_out = disjoint_layout_seeds(9, 200, first_seed=2**31)
    train = disjoint_layout_seeds(9, 2000, exclude_seeds=held_out)
    held_keys = {layout_key(maze_walls(9, s)) for s in held_out}
    train_keys = {layout_key(maze_walls(9, s)) for s in train}
    assert len(held_keys) == 200 and len(train_keys) == 2000  # distinct within each set
    assert not held_keys & train_keys
    assert train[0] == 0 and train == sorted(train)
    assert disjoint_layout_seeds(9, 10, exclude_keys=train_keys)[0] > 0
    with pytest.raises(ValueError, match="Found only 4 of 5"):
        disjoint_layout_seeds(5, 5, max_tries=200)
    with pytest.raises(ValueError, match=r"Found only 3 of 4 .* 1 excluded"):
        disjoint_layout_seeds(5, 4, exclude_keys=(key for key in [layout_key(maze_walls(5, 0))]), max_tries=200)


# ----------------------------------------------------------------------------------------------- expert


@pytest.mark.parametrize("size", [5, 9, 13])
def test_expert_follows_bfs_distances_from_every_cell(size):
    for seed in range(20):
        layout = maze_layout(size, seed)
        distances = bfs_distances(np.asarray(layout.walls))
        for (row, col), distance in distances.items():
            cell = layout.cell_index(row, col)
            assert layout.distances[cell] == distance
            moves = 0
            while cell != layout.goal:
                d_row, d_col = STEPS[int(layout.expert[cell])]
                row, col = row + d_row, col + d_col
                assert not layout.walls[row, col]
                cell, moves = layout.cell_index(row, col), moves + 1
            assert moves == distance
        assert layout.expert[layout.goal] == -1 and np.all(layout.expert[layout.walls.ravel()] == -1)


def test_expert_transitions_are_the_optimal_paths():
    seeds = [3, 7, 11]
    observations, actions = expert_transitions(9, seeds)
    lengths = [maze_layout(9, s).distances[maze_layout(9, s).start] for s in seeds]
    assert observations.shape == (sum(lengths), 2 * 81 + 4) and observations.dtype == np.float32
    assert actions.shape == (sum(lengths),) and actions.dtype == np.int64
    begin = 0
    for seed, length in zip(seeds, lengths, strict=True):
        walls = maze_walls(9, seed)
        assert simulate(walls, tuple(actions[begin : begin + length].tolist())) == (True, length)
        assert np.array_equal(observations[begin : begin + length, :81], np.broadcast_to(walls.ravel(), (length, 81)))
        assert agent_cell(observations[begin : begin + 1], 9)[0] == 10  # the path starts at (1, 1)
        begin += length
    with pytest.raises(ValueError, match="empty"):
        expert_transitions(9, [])


# ----------------------------------------------------------------------------------------------- gym env


def test_env_checkers_and_registered_ids():
    for size in (9, 13, 17):
        env = gym.make(f"MaxRL/StrictMaze-{size}x{size}-v0")
        assert env.unwrapped.max_moves == default_max_moves(size) == 3 * 2 * (size - 3)
        gymnasium_check_env(env.unwrapped)
        env.close()
    sb3_check_env(StrictMazeEnv(9))
    assert default_max_moves(9) == 36 and default_max_moves(13) == 60


def test_observation_layout():
    env = StrictMazeEnv(9)
    observation, _ = env.reset(seed=4)
    walls = maze_walls(9, 4)
    assert observation.shape == (166,) and observation.dtype == np.float32
    assert np.array_equal(observation[:81], walls.ravel())
    assert np.flatnonzero(observation[81:162]).tolist() == [1 * 9 + 1]
    neighbours = [walls[0, 1], walls[2, 1], walls[1, 0], walls[1, 2]]  # up, down, left, right of (1, 1)
    assert observation[162:].tolist() == [float(w) for w in neighbours]
    assert env.agent_position == (1, 1)


def test_wall_move_ends_the_episode_as_a_failure():
    env = StrictMazeEnv(9)
    for action in (UP, LEFT):  # (1, 1) always has the outer wall above and to its left
        first, _ = env.reset(seed=0)
        observation, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated, info) == (0.0, True, False, {"is_success": False})
        assert np.array_equal(observation, first)  # the agent stays where it was
        with pytest.raises(RuntimeError, match="reset"):
            env.step(DOWN)


def test_move_off_the_grid_is_a_wall_move():
    walls = np.zeros((5, 5), dtype=bool)  # no outer ring: (1, 1) -> up -> (0, 1) -> up leaves the grid
    layout = MazeLayout(walls)
    top = layout.cell_index(0, 1)
    assert layout.moves[top, UP] == -1 and layout.wall_bits[top, UP] == 1.0
    assert layout.moves[top, DOWN] == layout.cell_index(1, 1) and layout.wall_bits[top, DOWN] == 0.0


def test_reaching_the_goal_is_a_success():
    env = StrictMazeEnv(9)
    env.reset(seed=5)
    distance = int(env.layout.distances[env.layout.start])
    for move in range(distance):
        _, reward, terminated, truncated, info = env.step(env.optimal_action())
        if move < distance - 1:
            assert (reward, terminated, truncated, info) == (0.0, False, False, {})
    assert (reward, terminated, truncated, info) == (1.0, True, False, {"is_success": True})
    assert env.agent_position == (7, 7)


def test_move_budget_ends_the_episode_as_a_failure():
    env = StrictMazeEnv(9, max_moves=7)
    env.reset(seed=1)
    forward = env.optimal_action()
    back = {UP: DOWN, DOWN: UP, LEFT: RIGHT, RIGHT: LEFT}[forward]
    for move in range(7):
        _, reward, terminated, truncated, info = env.step(forward if move % 2 == 0 else back)
    assert (reward, terminated, truncated, info) == (0.0, False, True, {"is_success": False})
    # a success on the last move of the budget is a success
    env = StrictMazeEnv(9, max_moves=int(maze_layout(9, 1).distances[10]))
    env.reset(seed=1)
    while True:
        _, reward, terminated, truncated, info = env.step(env.optimal_action())
        if terminated or truncated:
            break
    assert (reward, terminated, truncated, info["is_success"]) == (1.0, True, False, True)


def test_env_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd integer"):
        StrictMazeEnv(8)
    with pytest.raises(ValueError, match="max_moves"):
        StrictMazeEnv(9, max_moves=0)
    env = StrictMazeEnv(9)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Discrete"):
        env.step(4)


def test_reset_without_seed_is_reproducible_from_the_first_seed():
    env_a, env_b = StrictMazeEnv(9), StrictMazeEnv(9)
    env_a.reset(seed=10)
    env_b.reset(seed=10)
    seeds_a = [env_a.reset()[0] for _ in range(3)]
    seeds_b = [env_b.reset()[0] for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(seeds_a, seeds_b, strict=True))
    assert env_a.render() is None and StrictMazeEnv(9, render_mode="ansi").render() is None
    env_c = StrictMazeEnv(9, render_mode="ansi")
    env_c.reset(seed=0)
    assert env_c.render().splitlines()[1][1] == "A"
    env_d = StrictMazeEnv(9, render_mode="rgb_array")
    env_d.reset(seed=0)
    image = env_d.render()
    assert image.shape == (72, 72, 3) and image.dtype == np.uint8 and tuple(image[12, 12]) == (220, 0, 0)


# ----------------------------------------------------------------------------------------------- VecEnv


def scheduled_starts(n_envs: int, n_per_slot: int, rng: np.random.Generator) -> dict[int, list[EpisodeStart]]:
    pool = rng.integers(0, 2**31, size=12)  # few mazes: groups share them, as in training
    return {
        slot: [EpisodeStart(int(rng.choice(pool)), int(rng.integers(2**62))) for _ in range(n_per_slot)]
        for slot in range(n_envs)
    }


def test_vec_env_matches_a_dummy_vec_env_of_the_gym_env():
    n_envs, n_steps = 6, 120
    rng = np.random.default_rng(0)
    starts = scheduled_starts(n_envs, n_steps + 1, rng)
    native = StrictMazeVecEnv(n_envs, size=9, seed=0)
    dummy = DummyVecEnv([lambda: StartStateWrapper(StrictMazeEnv(9)) for _ in range(n_envs)])
    assert isinstance(native, StartStateVecEnv) and start_state_control(native) is native
    native.schedule_episodes(starts, replace=True)
    WrappedStartStates(dummy).schedule_episodes(starts, replace=True)
    native_obs, dummy_obs = native.reset(), dummy.reset()
    assert np.array_equal(native_obs, dummy_obs)
    n_success = n_failure = 0
    for _ in range(n_steps):
        expert = native.expert_actions()
        assert np.array_equal(expert, [env.unwrapped.optimal_action() for env in dummy.envs])
        actions = np.where(rng.random(n_envs) < 0.85, expert, rng.integers(0, 4, size=n_envs))
        native_obs, native_rewards, native_dones, native_infos = native.step(actions)
        dummy_obs, dummy_rewards, dummy_dones, dummy_infos = dummy.step(actions)
        assert np.array_equal(native_obs, dummy_obs) and native_obs.dtype == dummy_obs.dtype
        assert np.array_equal(native_rewards, dummy_rewards) and np.array_equal(native_dones, dummy_dones)
        for done, native_info, dummy_info in zip(native_dones, native_infos, dummy_infos, strict=True):
            assert native_info.get("is_success") == dummy_info.get("is_success")
            if done:
                for key in ("TimeLimit.truncated", "start_seed"):
                    assert native_info[key] == dummy_info[key]
                assert np.array_equal(native_info["terminal_observation"], dummy_info["terminal_observation"])
                n_success += native_info["is_success"]
                n_failure += not native_info["is_success"]
            else:
                assert native_info == {}
    assert n_success > 10 and n_failure > 10


def test_vec_env_reports_outcomes_and_auto_resets():
    env = StrictMazeVecEnv(3, size=9, max_moves=5, seed=0)
    env.schedule_episodes({0: [EpisodeStart(5, 123), 6], 1: [8], 2: [9, 9]}, replace=True)
    first = env.reset()
    assert first.shape == (3, 166) and first.dtype == np.float32 and env.reset_infos == [{}, {}, {}]
    assert all(env.observation_space.contains(observation) for observation in first)
    layout_6 = maze_layout(9, 6)
    forward = int(maze_layout(9, 8).expert[10])
    back = {UP: DOWN, DOWN: UP, LEFT: RIGHT, RIGHT: LEFT}[forward]
    observations, rewards, dones, infos = env.step(np.array([UP, forward, UP]))
    assert dones.tolist() == [True, False, True] and rewards.tolist() == [0.0, 0.0, 0.0]
    assert infos[0]["is_success"] is False and infos[0]["TimeLimit.truncated"] is False
    assert infos[0]["start_seed"] == 5 and infos[0]["start_fingerprint"] == layout_fingerprint(maze_walls(9, 5))
    assert np.array_equal(infos[0]["terminal_observation"], first[0])
    assert np.array_equal(observations[0], layout_6.observations([layout_6.start])[0])  # the next scheduled maze
    assert infos[1] == {} and infos[2]["start_seed"] == 9
    for move in range(2, 6):  # slot 1 goes back and forth and runs out of budget at its 5th move
        _, rewards, dones, infos = env.step(np.array([UP, back if move % 2 == 0 else forward, UP]))
        assert dones[1] == (move == 5)
    assert infos[1]["TimeLimit.truncated"] is True and infos[1]["is_success"] is False and rewards[1] == 0.0
    assert infos[1]["start_seed"] == 8


def test_vec_env_queues_and_fresh_mazes():
    env = StrictMazeVecEnv(2, size=9, seed=3)
    env.schedule_episodes({0: [1, 2]})
    env.schedule_episodes({0: [3], 1: [4]})  # appends
    env.reset()
    assert [layout.seed for layout in env.current_layouts()] == [1, 4]
    env.schedule_episodes({1: [7]}, replace=True)  # slot 0's remaining [2, 3] are dropped
    env.reset()
    fresh_seed = env.current_layouts()[0].seed
    assert env.current_layouts()[1].seed == 7 and fresh_seed not in (2, 3)
    twin = StrictMazeVecEnv(2, size=9, seed=3)
    twin.schedule_episodes({0: [1], 1: [4]})
    twin.reset()
    twin.reset()
    assert twin.current_layouts()[0].seed == fresh_seed  # fresh mazes come from the VecEnv's seeded generator
    pool = StrictMazeVecEnv(8, size=9, seed=0, train_seeds=[11, 12])
    pool.reset()
    assert {layout.seed for layout in pool.current_layouts()} == {11, 12}
    with pytest.raises(ValueError, match="train_seeds is empty"):
        StrictMazeVecEnv(2, train_seeds=[])
    with pytest.raises(ValueError, match="Slot 2 does not exist"):
        env.schedule_episodes({2: [0]})
    with pytest.raises(ValueError, match="int >= 0"):
        env.schedule_episodes({0: [-1]})
    with pytest.raises(ValueError, match="integer actions"):
        env.step(np.zeros(3, dtype=np.int64))


def test_vec_env_reuses_and_evicts_loaded_mazes():
    env = StrictMazeVecEnv(2, size=9, seed=0)  # a table of 2 * 2 + 1024 loaded mazes
    seeds = [1000 + i for i in range(1100)] + [1000, 1001]  # more mazes than rows, then two evicted ones again
    env.schedule_episodes({0: seeds[0::2], 1: seeds[1::2]})
    first = env.reset()
    started = [seeds[0], seeds[1]]
    for step in range(len(seeds) // 2 - 1):
        observations, _, dones, infos = env.step(np.full(2, UP))  # (1, 1) has a wall above: every episode ends
        assert dones.all() and [info["start_seed"] for info in infos] == started
        for slot in range(2):
            layout = maze_layout(9, started[slot])
            assert np.array_equal(infos[slot]["terminal_observation"], layout.observations([layout.start])[0])
        started = [seeds[2 * step + 2], seeds[2 * step + 3]]
        assert [layout.seed for layout in env.current_layouts()] == started
        assert np.array_equal(observations, np.stack([maze_layout(9, s).observations([10])[0] for s in started]))
    assert np.array_equal(first, observations)  # the first two mazes again, loaded anew


def test_vec_env_attribute_access():
    env = StrictMazeVecEnv(4, size=13)
    assert env.get_attr("size") == [13] * 4 and env.get_attr("max_moves", indices=[1]) == [60]
    assert env.env_is_wrapped(StartStateWrapper) == [False] * 4
    env.set_attr("max_moves", 10)
    assert env.max_moves == 10
    env.reset()
    expert = env.env_method("expert_actions", indices=[0, 1])
    assert len(expert) == 2 and np.array_equal(expert[0], env.expert_actions())
    assert env.seed(5) == [5] * 4
    env.close()


def test_expert_actions_solve_every_slot():
    env = StrictMazeVecEnv(64, size=13, seed=0)
    env.reset()
    distances = np.array([layout.distances[layout.start] for layout in env.current_layouts()])
    finished = np.zeros(64, dtype=bool)
    for step in range(1, distances.max() + 1):
        _, rewards, dones, infos = env.step(env.expert_actions())
        assert np.array_equal(dones[~finished], (step == distances)[~finished])  # finished slots run new mazes
        assert all(infos[slot]["is_success"] and rewards[slot] == 1.0 for slot in np.flatnonzero(step == distances))
        finished |= step == distances
    assert finished.all()


# ----------------------------------------------------------------------------------------------- exact evaluation


def table_policy(size: int, table: np.ndarray):
    """A Markov policy given as action probabilities per flat cell, read off the one-hot part of the observation."""
    return lambda observations: table[agent_cell(observations, size)]


def brute_force_success(walls: np.ndarray, table: np.ndarray, budget: int) -> float:
    """Sum over all 4^budget action sequences of their probability, if the episode they play succeeds."""
    size = walls.shape[0]
    total = 0.0
    for actions in itertools.product(range(4), repeat=budget):
        success, moves = simulate(walls, actions)
        if success and all(a == 0 for a in actions[moves:]):  # count each episode once: extensions fixed to 0
            row, col, probability = 1, 1, 1.0
            for action in actions[:moves]:
                probability *= table[row * size + col, action]
                row, col = row + STEPS[action][0], col + STEPS[action][1]
            total += probability
    return total


@pytest.mark.parametrize(("size", "budget"), [(5, 6), (7, 8)])
def test_exact_probabilities_equal_brute_force_enumeration(size, budget):
    rng = np.random.default_rng(size)
    seeds = [0, 1, 2]
    uniform = np.full((size * size, 4), 0.25)
    skewed = rng.dirichlet(np.ones(4), size=size * size)
    for table in (uniform, skewed):
        exact = exact_success_probabilities(table_policy(size, table), size, seeds, max_moves=budget)
        expected = [brute_force_success(maze_walls(size, seed), table, budget) for seed in seeds]
        np.testing.assert_allclose(exact, expected, rtol=1e-12, atol=1e-15)
        assert np.all(np.array(expected) > 0)
    uniform_fraction = [
        sum(simulate(maze_walls(size, seed), a)[0] for a in itertools.product(range(4), repeat=budget)) / 4**budget
        for seed in seeds
    ]
    np.testing.assert_allclose(exact_success_probabilities(table_policy(size, uniform), size, seeds, budget), uniform_fraction)


def test_expert_policy_succeeds_with_probability_one():
    for size in (9, 13):
        seeds = list(range(40))
        layouts = {layout_key(maze_walls(size, s)): maze_layout(size, s) for s in seeds}

        def expert(observations: np.ndarray, size: int = size, layouts: dict = layouts) -> np.ndarray:
            probabilities = np.zeros((len(observations), 4))
            for row, (observation, cell) in enumerate(zip(observations, agent_cell(observations, size), strict=True)):
                layout = layouts[layout_key(observation[: size * size].reshape(size, size) > 0.5)]
                if layout.expert[cell] >= 0:
                    probabilities[row, layout.expert[cell]] = 1.0
                else:
                    probabilities[row] = 0.25
            return probabilities

        result = exact_pass_at_k(expert, size, seeds, ks=[1, 4])
        assert np.array_equal(result.success_probabilities, np.ones(len(seeds)))
        expected_lengths = [maze_layout(size, s).distances[maze_layout(size, s).start] for s in seeds]
        np.testing.assert_allclose(result.expected_lengths, expected_lengths)
        # one move fewer than the path is a sure failure
        short = exact_success_probabilities(expert, size, seeds[:1], max_moves=int(expected_lengths[0]) - 1)
        assert short.tolist() == [0.0]


def behaviour_cloned_model(n_steps: int = 60) -> MaxRL:
    """A small MaxRL policy cloned a little toward the expert, so that success probabilities spread over (0, 1)."""
    th.manual_seed(0)
    model = MaxRL("MlpPolicy", StrictMazeVecEnv(4, size=9, seed=0), policy_kwargs=dict(net_arch=[64]), seed=0)
    observations, actions = expert_transitions(9, range(100, 164))
    optimizer = th.optim.Adam(model.policy.parameters(), lr=1e-2)
    for _ in range(n_steps):
        log_prob = model.policy.get_distribution(th.as_tensor(observations)).log_prob(th.as_tensor(actions))
        optimizer.zero_grad()
        (-log_prob.mean()).backward()
        optimizer.step()
    return model


def test_exact_pass_at_k_agrees_with_sampled_evaluation():
    model = behaviour_cloned_model()
    seeds = disjoint_layout_seeds(9, 12, first_seed=5000)
    exact = exact_pass_at_k(model, 9, seeds, ks=[1, 4, 16])
    p = exact.success_probabilities
    assert 0.05 < p.mean() < 0.95 and p.std() > 0.05  # a spread of pass rates, not all ~0 or ~1
    th.manual_seed(1)
    n = 48
    sampled = evaluate_pass_at_k(model, "MaxRL/StrictMaze-9x9-v0", seeds, n_samples=n, ks=[1, 4, 16])
    successes = sampled.success_counts
    z = (successes.sum() - n * p.sum()) / np.sqrt(n * np.sum(p * (1 - p)))
    assert abs(z) < 4
    assert np.all(np.abs(successes - n * p) <= 4 * np.sqrt(n * p * (1 - p)) + 1)
    np.testing.assert_allclose(sampled.mean_ep_length, exact.mean_ep_length, rtol=0.15)


def test_exact_evaluation_accepts_sb3_policies_and_rejects_others():
    env = StrictMazeVecEnv(2, size=9)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, seed=0)
    from_model = exact_success_probabilities(model, 9, [0, 1])
    from_policy = exact_success_probabilities(model.policy, 9, [0, 1], mazes_per_batch=1)
    assert from_model.shape == (2,) and np.allclose(from_model, from_policy, rtol=1e-6, atol=0)
    with pytest.raises(TypeError, match="get_distribution"):
        exact_success_probabilities(DQN("MlpPolicy", env, buffer_size=10, learning_starts=0), 9, [0])
    with pytest.raises(ValueError, match="pass the size"):
        exact_success_probabilities(model, 13, [0])
    with pytest.raises(ValueError, match="non-negative action probabilities"):
        exact_success_probabilities(lambda o: np.ones((len(o), 3)), 9, [0])
    with pytest.raises(ValueError, match="empty"):
        exact_success_probabilities(model, 9, [])


def test_pass_at_k_from_probabilities():
    p = np.array([0.0, 1e-9, 0.3, 1.0])
    result = pass_at_k_from_probabilities(p, [1, 2, 1000])
    for k in (1, 2, 1000):
        assert result.pass_at_k[k] == pytest.approx(np.mean(1 - (1 - p) ** k), rel=1e-12)
        assert result.neg_log_pass_at_k[k] == pytest.approx(-np.log(result.pass_at_k[k]))
    assert pass_at_k_from_probabilities([1e-12], [10]).pass_at_k[10] == pytest.approx(1e-11, rel=1e-9)  # no cancellation
    assert result.mean_likelihood == pytest.approx(p.mean()) and result.nll == np.inf
    assert pass_at_k_from_probabilities([1.0, 1.0]).neg_log_pass_at_k[1024] == 0.0
    sampled = PassAtKResult(
        start_seeds=np.zeros(1),
        n_samples=2,
        likelihoods=np.zeros((1, 2)),
        episode_lengths=np.ones((1, 2)),
        success_counts=np.zeros(1),
        mean_likelihoods=np.zeros(1),
        pass_at_k={1: 0.0, 2: 0.0},
        neg_log_pass_at_k={1: 1.0, 2: 1.0},
        mean_likelihood=0.0,
        nll=1.0,
    )
    assert set(pass_at_k_from_probabilities(p, [1, 2]).metrics()) == set(sampled.metrics())
    for bad, match in (([], "non-empty"), ([0.5, np.nan], r"\[0, 1\]"), ([1.5], r"\[0, 1\]")):
        with pytest.raises(ValueError, match=match):
            pass_at_k_from_probabilities(bad)
    with pytest.raises(ValueError, match="int >= 1"):
        pass_at_k_from_probabilities([0.5], [0])


# ----------------------------------------------------------------------------------------------- MaxRL


def test_maxrl_trains_on_the_native_vec_env():
    env = StrictMazeVecEnv(16, size=9, seed=0)
    model = MaxRL("MlpPolicy", env, group_size=4, n_groups=4, n_epochs=1, clip_range=None, seed=0)
    model.learn(3 * 4 * 4 * 36)
    assert model.num_timesteps > 0


def test_speed_benchmark_runs_on_a_tiny_budget(tmp_path):
    root = Path(__file__).resolve().parents[1]
    only = ["env_random_cached", "policy_forward", "maxrl_learn_cached"]
    command = [sys.executable, "-m", "benchmarks.strict_maze_speed", "--quick", "--num-envs", "16", "--seconds", "0.2"]
    subprocess.run([*command, "--out", str(tmp_path), "--only", *only], check=True, capture_output=True, timeout=300, cwd=root)
    with open(tmp_path / "strict_maze_speed_quick.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["measurement"] for row in rows] == only and all(int(row["steps_per_s"]) > 0 for row in rows)
    assert 0 < float(rows[-1]["utilization"]) <= 1
    assert (tmp_path / "strict_maze_speed_quick.png").stat().st_size > 10_000
