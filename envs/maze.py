"""Procedurally generated perfect mazes on MiniGrid, one maze per reset seed.

A perfect maze has exactly one path between any two cells: its open cells form a spanning tree of the
cell lattice (cells at odd coordinates, the squares between them are walls or passages). The generator is
randomized Prim seeded by the env's ``np_random``, so ``reset(seed=s)`` always builds the same maze, start
and goal: the N rollouts of one start state share everything but the policy's randomness.

Optimal path length with the fixed corners (start (1, 1) facing east, goal (size-2, size-2)): the minimal
number of navigation actions, turns included (:func:`optimal_num_actions`), and the number of forward moves
on the unique path (:func:`shortest_path_length`), over reset seeds 0..999 (``python -m sb3_maxrl_envs.maze``)::

    size   max_steps mean  std    min   p10   p50   p90   max   forward moves: mean (min..max)
    9x9    162       16.1  2.5    13    14    15    20    28    12.6 (12..20)
    13x13  338       27.3  3.9    21    23    26    33    48    21.5 (20..36)
    17x17  578       38.5  5.1    29    33    37    46    63    30.5 (28..48)

Randomized Prim makes many short dead ends and a corner-to-corner path close to the Manhattan distance
(2 * (size - 3) forward moves); the difficulty is in not entering the dead ends. A random walk with the 3
navigation actions solves 3.2% of 9x9 mazes within ``max_steps``, with MiniGrid's 7 actions 0.4%.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Wall
from minigrid.minigrid_env import MiniGridEnv

from sb3_maxrl.common.utils import check_positive_int
from sb3_maxrl_envs.minigrid_wrappers import ObsEncoding, check_obs_encoding, wrap_minigrid

Placement = Literal["corners", "random"]
PLACEMENTS: tuple[str, ...] = ("corners", "random")

_WALL = (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0)
_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
_GOAL = (OBJECT_TO_IDX["goal"], COLOR_TO_IDX["green"], 0)
_AGENT_OBJECT, _AGENT_COLOR = OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"]
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # minigrid.core.constants.DIR_TO_VEC: east, south, west, north


def generate_perfect_maze(size: int, rng: np.random.Generator) -> np.ndarray:
    """Randomized Prim on the cell lattice of a ``size`` x ``size`` grid.

    :param size: grid side including the outer wall, odd and >= 5; cells sit at odd coordinates
    :param rng: the random generator (the env passes its ``np_random``)
    :return: bool array ``walls[x, y]`` (MiniGrid's axis order), True where a wall stands
    """
    if size < 5 or size % 2 == 0:
        raise ValueError(f"size={size} must be an odd integer >= 5 (e.g. 9, 13, 17): cells sit at odd coordinates")
    cells = (size - 1) // 2
    draws = iter(rng.random(4 * cells * cells + 1).tolist())  # one per pick; each cell pushes <= 4 frontier edges
    in_maze = [[False] * cells for _ in range(cells)]
    passages: list[tuple[int, int]] = []
    frontier: list[tuple[int, int, int, int]] = []

    def add(cx: int, cy: int) -> None:
        in_maze[cx][cy] = True
        passages.append((2 * cx + 1, 2 * cy + 1))
        for dx, dy in _STEPS:
            nx, ny = cx + dx, cy + dy
            if 0 <= nx < cells and 0 <= ny < cells and not in_maze[nx][ny]:
                frontier.append((cx, cy, nx, ny))

    first = int(next(draws) * cells * cells)
    add(first % cells, first // cells)
    while frontier:
        index = int(next(draws) * len(frontier))
        frontier[index], frontier[-1] = frontier[-1], frontier[index]
        cx, cy, nx, ny = frontier.pop()
        if not in_maze[nx][ny]:
            passages.append((cx + nx + 1, cy + ny + 1))  # the square between the two cells
            add(nx, ny)
    walls = np.ones((size, size), dtype=bool)
    xs, ys = zip(*passages, strict=True)
    walls[list(xs), list(ys)] = False
    return walls


def generate_prim_maze_from_start(size: int, rng: np.random.Generator) -> np.ndarray:
    """Randomized Prim over cells, grown from the start cell (1, 1): the MaxRL paper's maze generator.

    Every step takes a uniformly random frontier cell (a cell two squares from the maze, not yet in it) and joins
    it to a uniformly random neighbouring maze cell. Grown from the top-left corner, this distribution makes
    paths towards the bottom-right corner mostly monotone (about 4% of 9x9 and 11% of 13x13 mazes need an up or
    left move), unlike :func:`generate_perfect_maze`'s passage-based variant (13% and 28%).

    :param size: grid side including the outer wall, odd and >= 5; cells sit at odd coordinates
    :param rng: the random generator
    :return: bool array ``walls[row, col]``, True where a wall stands
    """
    if size < 5 or size % 2 == 0:
        raise ValueError(f"size={size} must be an odd integer >= 5 (e.g. 9, 13, 17): cells sit at odd coordinates")
    walls = np.ones((size, size), dtype=bool)
    walls[1, 1] = False
    jumps = ((0, 2), (2, 0), (0, -2), (-2, 0))

    def cells_around(row: int, col: int) -> list[tuple[int, int]]:
        return [(row + dr, col + dc) for dr, dc in jumps if 0 < row + dr < size - 1 and 0 < col + dc < size - 1]

    frontier = cells_around(1, 1)
    while frontier:
        row, col = frontier.pop(int(rng.integers(len(frontier))))
        in_maze = [cell for cell in cells_around(row, col) if not walls[cell]]
        other_row, other_col = in_maze[int(rng.integers(len(in_maze)))]
        walls[(row + other_row) // 2, (col + other_col) // 2] = False
        walls[row, col] = False
        frontier += [cell for cell in cells_around(row, col) if walls[cell] and cell not in frontier]
    return walls


def shortest_path_length(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    """Number of forward moves on a shortest path from ``start`` to ``goal`` (BFS); -1 if unreachable.

    :param walls: bool array ``walls[x, y]``
    :param start: start square ``(x, y)``
    :param goal: goal square ``(x, y)``
    """
    distance = {start: 0}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == goal:
            return distance[(x, y)]
        for dx, dy in _STEPS:
            nxt = (x + dx, y + dy)
            if nxt not in distance and not walls[nxt]:
                distance[nxt] = distance[(x, y)] + 1
                queue.append(nxt)
    return -1


def optimal_actions(walls: np.ndarray, start: tuple[int, int], start_dir: int, goal: tuple[int, int]) -> list[int] | None:
    """A shortest sequence of navigation actions (0 turn left, 1 turn right, 2 forward) to ``goal``; None if unreachable.

    :param walls: bool array ``walls[x, y]``
    :param start: start square ``(x, y)``
    :param start_dir: start heading, 0 (east) .. 3 (north)
    :param goal: goal square ``(x, y)``
    """
    first = (start[0], start[1], start_dir)
    parent: dict[tuple[int, int, int], tuple[tuple[int, int, int], int] | None] = {first: None}
    queue = deque([first])
    while queue:
        state = queue.popleft()
        x, y, heading = state
        if (x, y) == goal:
            actions = []
            step = parent[state]
            while step is not None:
                state, action = step
                actions.append(action)
                step = parent[state]
            return actions[::-1]
        dx, dy = _STEPS[heading]
        successors = [((x, y, (heading - 1) % 4), 0), ((x, y, (heading + 1) % 4), 1)]
        if not walls[x + dx, y + dy]:
            successors.append(((x + dx, y + dy, heading), 2))
        for nxt, action in successors:
            if nxt not in parent:
                parent[nxt] = (state, action)
                queue.append(nxt)
    return None


def optimal_num_actions(walls: np.ndarray, start: tuple[int, int], start_dir: int, goal: tuple[int, int]) -> int:
    """Minimal number of navigation actions (turns included) to reach ``goal``; -1 if unreachable.

    :param walls: bool array ``walls[x, y]``
    :param start: start square ``(x, y)``
    :param start_dir: start heading, 0 (east) .. 3 (north)
    :param goal: goal square ``(x, y)``
    """
    actions = optimal_actions(walls, start, start_dir, goal)
    return -1 if actions is None else len(actions)


def _maze_mission() -> str:
    return "reach the goal"


def _visibility(see_through: list[list[bool]], agent_x: int, agent_y: int) -> np.ndarray:
    """MiniGrid's ``Grid.process_vis`` on plain lists: which view squares the agent sees.

    :param see_through: ``see_through[i][j]`` for the square ``(i, j)`` of the (rotated) view
    :param agent_x: the agent's column in the view
    :param agent_y: the agent's row in the view (the bottom row)
    """
    width, height = len(see_through), len(see_through[0])
    mask = [[False] * height for _ in range(width)]
    mask[agent_x][agent_y] = True
    for j in reversed(range(height)):
        for i in range(width - 1):
            if mask[i][j] and see_through[i][j]:
                mask[i + 1][j] = True
                if j > 0:
                    mask[i + 1][j - 1] = True
                    mask[i][j - 1] = True
        for i in reversed(range(1, width)):
            if mask[i][j] and see_through[i][j]:
                mask[i - 1][j] = True
                if j > 0:
                    mask[i - 1][j - 1] = True
                    mask[i][j - 1] = True
    return np.array(mask, dtype=bool)


class PerfectMazeEnv(MiniGridEnv):
    """A MiniGrid env whose grid is a perfect maze generated from the reset seed.

    It keeps MiniGrid's interface (``Dict`` observation, 7 actions, reward ``1 - 0.9 * t / max_steps``);
    :func:`make_maze` adds the flat observation, the navigation-only actions and ``is_success``.
    The grid never changes within an episode, so observations are computed from an array of cell codes
    with numpy and memoized per (position, heading) until the maze changes: equal to MiniGrid's ``gen_obs``
    (tested), and much cheaper. Do not edit ``self.grid`` by hand: the cached codes would not follow.

    :param size: grid side including the outer wall, odd and >= 5
    :param placement: ``"corners"`` (start top-left, goal bottom-right) or ``"random"`` (two distinct cells
        drawn from the seed)
    :param fully_observed: observe the whole ``size`` x ``size`` grid (MiniGrid's ``FullyObsWrapper`` encoding:
        the agent is ``(10, 0, heading)``) instead of the egocentric ``agent_view_size`` view
    :param start_dir: start heading 0 (east) .. 3 (north); None draws it from the seed
    :param max_steps: step budget; None means ``2 * size**2`` (162, 338, 578 for 9, 13, 17): a random walk with the
        3 navigation actions then solves 3.2% of 9x9 mazes, with MiniGrid's 7 actions 0.4%
    :param agent_view_size: side of the egocentric view, odd and >= 3
    :param see_through_walls: MiniGrid's option; False hides squares behind walls
    :param render_mode: None, ``"rgb_array"`` or ``"human"``
    :param kwargs: passed to ``MiniGridEnv`` (e.g. ``tile_size``)
    """

    def __init__(
        self,
        size: int = 9,
        placement: Placement = "corners",
        fully_observed: bool = False,
        start_dir: int | None = 0,
        max_steps: int | None = None,
        agent_view_size: int = 7,
        see_through_walls: bool = False,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(size, (int, np.integer)) or size < 5 or size % 2 == 0:
            raise ValueError(f"size={size!r} must be an odd integer >= 5 (e.g. 9, 13, 17): cells sit at odd coordinates")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r} is not supported; use one of {PLACEMENTS}")
        if start_dir is not None and start_dir not in (0, 1, 2, 3):
            raise ValueError(
                f"start_dir={start_dir!r} must be 0 (east), 1 (south), 2 (west), 3 (north) or None (from the seed)"
            )
        if max_steps is not None:
            check_positive_int("max_steps", max_steps, "a positive integer, or None for 2 * size**2")
        if not isinstance(agent_view_size, (int, np.integer)) or agent_view_size < 3 or agent_view_size % 2 == 0:
            raise ValueError(f"agent_view_size={agent_view_size!r} must be an odd integer >= 3 (MiniGrid's default is 7)")
        self.size = int(size)
        self.placement = placement
        self.fully_observed = fully_observed
        self.start_dir = start_dir
        self.goal_pos: tuple[int, int] = (-1, -1)
        self.walls = np.ones((self.size, self.size), dtype=bool)
        self._codes = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        self._padded_codes = np.zeros((self.size + 2 * agent_view_size, self.size + 2 * agent_view_size, 3), dtype=np.uint8)
        self._view_cache: dict[tuple[int, int, int], np.ndarray] = {}
        super().__init__(
            mission_space=MissionSpace(mission_func=_maze_mission),
            grid_size=self.size,
            max_steps=int(max_steps) if max_steps is not None else 2 * self.size**2,
            agent_view_size=int(agent_view_size),
            see_through_walls=see_through_walls,
            render_mode=render_mode,
            **kwargs,
        )
        if fully_observed:
            full_image = spaces.Box(low=0, high=255, shape=(self.size, self.size, 3), dtype=np.uint8)
            self.observation_space = spaces.Dict(
                {"image": full_image, "direction": spaces.Discrete(4), "mission": MissionSpace(mission_func=_maze_mission)}
            )

    def start_state_key(self, seed: int) -> tuple[bytes, tuple[int, int], int, tuple[int, int]]:
        """
        The start state ``reset(seed)`` gives, as ``(walls, start, heading, goal)``: seeds with equal keys are the
        same task. It resets this env (use it before an episode, as MaxRL's held-out check does).

        :param seed: the reset seed
        :return: the key
        """
        self.reset(seed=seed)
        return self.walls.tobytes(), tuple(int(v) for v in self.agent_pos), int(self.agent_dir), self.goal_pos  # type: ignore[return-value]

    def _gen_grid(self, width: int, height: int) -> None:
        walls = generate_perfect_maze(self.size, self.np_random)
        cells = (self.size - 1) // 2
        if self.placement == "corners":
            start, goal = (1, 1), (self.size - 2, self.size - 2)
        else:
            first, second = self.np_random.choice(cells * cells, size=2, replace=False)
            start = (2 * int(first % cells) + 1, 2 * int(first // cells) + 1)
            goal = (2 * int(second % cells) + 1, 2 * int(second // cells) + 1)
        self.agent_pos = start
        self.agent_dir = self.start_dir if self.start_dir is not None else int(self.np_random.integers(4))
        if not (goal == self.goal_pos and np.array_equal(walls, self.walls)):
            self._view_cache.clear()
        self.walls, self.goal_pos = walls, goal

        self.grid = Grid(width, height)
        wall = Wall()  # stateless, so one instance can stand on every wall square
        self.grid.grid = [wall if is_wall else None for is_wall in self.walls.T.ravel().tolist()]  # Grid's row-major list
        self.grid.set(*goal, Goal())
        self.mission = _maze_mission()

        self._codes[:] = _EMPTY
        self._codes[self.walls] = _WALL
        self._codes[goal] = _GOAL
        pad = self.agent_view_size
        self._padded_codes[:] = _WALL
        self._padded_codes[pad : pad + self.size, pad : pad + self.size] = self._codes

    def gen_obs(self) -> dict[str, Any]:
        """MiniGrid's observation (``image``, ``direction``, ``mission``), from the cached cell codes."""
        return {
            "image": self._full_image() if self.fully_observed else self._view_image(),
            "direction": self.agent_dir,
            "mission": self.mission,
        }

    def _full_image(self) -> np.ndarray:
        image = self._codes.copy()
        image[self.agent_pos[0], self.agent_pos[1]] = (_AGENT_OBJECT, _AGENT_COLOR, self.agent_dir)
        return image

    def _view_image(self) -> np.ndarray:
        pose = (int(self.agent_pos[0]), int(self.agent_pos[1]), int(self.agent_dir))
        if pose not in self._view_cache:
            self._view_cache[pose] = self._compute_view_image()
        return self._view_cache[pose].copy()

    def _compute_view_image(self) -> np.ndarray:
        view = self.agent_view_size
        top_x, top_y, _, _ = self.get_view_exts()
        pad = self.agent_view_size
        window = self._padded_codes[top_x + pad : top_x + pad + view, top_y + pad : top_y + pad + view]
        window = np.rot90(window, k=-(self.agent_dir + 1))  # MiniGrid's rotate_left, agent_dir + 1 times
        agent_x, agent_y = view // 2, view - 1
        if self.see_through_walls:
            visible = np.ones((view, view), dtype=bool)
        else:
            visible = _visibility((window[..., 0] != _WALL[0]).tolist(), agent_x, agent_y)
        image = np.where(visible[..., None], window, np.uint8(0))
        image[agent_x, agent_y] = _EMPTY  # MiniGrid shows the agent's own square as what it carries: nothing
        return image

    def shortest_path_length(self) -> int:
        """Number of forward moves on the unique path from the agent's square to the goal."""
        return shortest_path_length(self.walls, tuple(self.agent_pos), self.goal_pos)

    def optimal_actions(self) -> list[int] | None:
        """A shortest navigation-action sequence (0 left, 1 right, 2 forward) from the agent's current pose to the goal."""
        return optimal_actions(self.walls, tuple(self.agent_pos), self.agent_dir, self.goal_pos)

    def optimal_num_actions(self) -> int:
        """Minimal number of navigation actions (turns included) from the agent's current pose to the goal."""
        return optimal_num_actions(self.walls, tuple(self.agent_pos), self.agent_dir, self.goal_pos)

    def ascii(self) -> str:
        """The maze as text: ``#`` wall, ``S`` agent, ``G`` goal, one row per line."""
        rows = []
        for y in range(self.size):
            row = ""
            for x in range(self.size):
                if (x, y) == tuple(self.agent_pos):
                    row += "S"
                elif (x, y) == self.goal_pos:
                    row += "G"
                else:
                    row += "#" if self.walls[x, y] else "."
            rows.append(row)
        return "\n".join(rows)


def make_maze(
    size: int = 9,
    *,
    obs: ObsEncoding = "flat",
    fully_observed: bool = False,
    placement: Placement = "corners",
    nav_actions: bool = True,
    binary_reward: bool = True,
    start_dir: int | None = 0,
    max_steps: int | None = None,
    agent_view_size: int = 7,
    render_mode: str | None = None,
) -> gym.Env:
    """A :class:`PerfectMazeEnv` wrapped for SB3 and MaxRL (the entry point of the ``MaxRL/Maze-*`` ids).

    :param size: grid side including the outer wall, odd and >= 5
    :param obs: ``"flat"``, ``"onehot"`` or ``"image"`` (see :mod:`sb3_maxrl_envs.minigrid_wrappers`)
    :param fully_observed: observe the whole grid instead of the 7x7 egocentric view
    :param placement: ``"corners"`` or ``"random"`` start and goal
    :param nav_actions: keep only turn left, turn right and forward (a random policy solves 3.2% of 9x9
        mazes, against 0.4% with MiniGrid's 7 actions)
    :param binary_reward: reward 1 on success, 0 otherwise (else MiniGrid's time-discounted reward)
    :param start_dir: start heading 0..3, or None to draw it from the seed
    :param max_steps: step budget; None means ``2 * size**2`` (use this, not ``gym.make``'s ``max_episode_steps``,
        whose ``TimeLimit`` sits outside these wrappers and truncates without ``is_success``)
    :param agent_view_size: side of the egocentric view (odd, >= 3)
    :param render_mode: None, ``"rgb_array"`` or ``"human"``
    :return: the wrapped env; ``env.unwrapped`` is the :class:`PerfectMazeEnv`
    """
    check_obs_encoding(obs)
    env = PerfectMazeEnv(
        size=size,
        placement=placement,
        fully_observed=fully_observed,
        start_dir=start_dir,
        max_steps=max_steps,
        agent_view_size=agent_view_size,
        render_mode=render_mode,
    )
    return wrap_minigrid(env, obs=obs, nav_actions=nav_actions, binary_reward=binary_reward)


def _path_length_table(sizes: tuple[int, ...] = (9, 13, 17), n_seeds: int = 1000) -> str:
    lines = ["size   max_steps mean  std    min   p10   p50   p90   max   forward moves: mean (min..max)"]
    for size in sizes:
        env = PerfectMazeEnv(size=size)
        actions, squares = [], []
        for seed in range(n_seeds):
            env.reset(seed=seed)
            actions.append(env.optimal_num_actions())
            squares.append(env.shortest_path_length())
        a, s = np.array(actions), np.array(squares)
        p10, p50, p90 = np.percentile(a, [10, 50, 90])
        lines.append(
            f"{f'{size}x{size}':<6} {env.max_steps:<9} {a.mean():<5.1f} {a.std():<6.1f} {a.min():<5} {p10:<5.0f} {p50:<5.0f} "
            f"{p90:<5.0f} {a.max():<5} {s.mean():.1f} ({s.min()}..{s.max()})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_path_length_table())
