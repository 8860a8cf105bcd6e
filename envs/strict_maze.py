"""Strict mazes, the paper's maze task: one wrong move ends the episode as a failure.

The task (MaxRL paper, maze experiments): a randomized-Prim perfect ``size`` x ``size`` maze, start at cell
(1, 1), goal at (size-2, size-2), fully observed, 4 absolute moves. A move into a wall (or off the grid) ends the
episode as a failure, reaching the goal ends it as a success, and a move budget (default 3 x the Manhattan
distance from start to goal: 36 moves on 9x9, 60 on 13x13, 84 on 17x17) ends it as a failure: truncated, with
``is_success=False`` in the final info. Reward 1 on success, else 0.

Conventions. Cells are ``(row, col)``, row 0 at the top; ``walls[row, col]`` is True on a wall. The actions are
0 up (row - 1), 1 down (row + 1), 2 left (col - 1), 3 right (col + 1), as in the paper's code. The observation
is a flat float32 vector of ``2 size^2 + 4`` entries: the walls grid in row-major order (1 = wall), the one-hot
agent cell (index ``row * size + col``), and the 4 adjacent-wall bits in action order (a cell off the grid
counts as wall; the outer ring is always wall, so a move off the grid is always a move into a wall). A move into
a wall leaves the agent where it was (the final observation shows the cell it tried to leave).

Layouts. The layout is a pure function of the seed: :func:`maze_walls` runs the paper's generator,
:func:`sb3_maxrl_envs.maze.generate_prim_maze_from_start` (randomized Prim over the cells of the ``c x c`` lattice,
``c = (size - 1) / 2``, grown from the start cell), on ``np.random.default_rng(seed)``. It can produce every spanning
tree of the lattice, so the number of distinct mazes is the number of spanning trees (:func:`count_perfect_mazes`,
by the matrix-tree theorem). Over seeds 0..9999 (``python -m sb3_maxrl_envs.strict_maze``)::

    size   distinct mazes     distinct layouts in seeds 0..9999   path length mean (min..max)   paths with an up or left move
    9x9    100,352            7,904  (21.0% repeats)              12.2 (12..20)                 4.8%
    13x13  3.26e+13           10,000 ( 0.0% repeats)              20.6 (20..32)                 13.1%
    17x17  1.26e+26           10,000 ( 0.0% repeats)              29.1 (28..44)                 23.2%

Grown from the top-left corner, the generator is far from uniform: most shortest paths only go down and right,
and on 9x9 seeds repeat layouts often, so training and held-out mazes must be deduplicated by layout
(:func:`layout_key`, :func:`disjoint_layout_seeds`), not only by seed. (``MaxRL/Maze-*``'s passage-based Prim,
grown from a random cell, needs an up or left move in 13% of 9x9 and 29% of 13x13 mazes.)

What is here: :class:`StrictMazeEnv` (a ``gym.Env``, the ``MaxRL/StrictMaze-{9x9,13x13,17x17}-v0`` ids),
:class:`StrictMazeVecEnv` (an SB3 ``VecEnv`` stepping all its mazes in one numpy call, with native start-state
control), the BFS expert (:attr:`MazeLayout.expert`, :func:`expert_transitions`) and the exact evaluation
(:func:`exact_success_probabilities`, :func:`exact_pass_at_k`).
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_maxrl.common.exact_evaluation import (
    ExactPassAtKResult,
    PolicyLike,
    action_probabilities_function,
    pass_at_k_from_probabilities,
)
from sb3_maxrl.common.native_vec_env import NativeStartStateVecEnv
from sb3_maxrl.common.start_states import EpisodeStart
from sb3_maxrl_envs.maze import generate_prim_maze_from_start

ACTION_NAMES: tuple[str, ...] = ("up", "down", "left", "right")
#: ``(row, col)`` change of each action
ACTION_STEPS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
#: Seeds of fresh mazes (empty start queues, ``reset()`` without a seed) are drawn from ``[0, FRESH_SEED_BOUND)``,
#: the range of MaxRL's infinite training stream
FRESH_SEED_BOUND = 2**31
#: Layouts kept by :func:`maze_layout`'s cache
LAYOUT_CACHE_SIZE = 4096



def check_maze_size(size: Any) -> int:
    """
    Raise a clear error unless ``size`` is an odd int >= 5.

    :param size: grid side including the outer wall
    :return: ``size`` as an int
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 5 or size % 2 == 0:
        raise ValueError(f"size={size!r} must be an odd integer >= 5 (e.g. 9, 13, 17): cells sit at odd coordinates")
    return int(size)


def default_max_moves(size: int) -> int:
    """
    The paper's move budget: 3 x the Manhattan distance from start (1, 1) to goal (size-2, size-2).

    :param size: grid side
    :return: ``6 (size - 3)``: 36 on 9x9, 60 on 13x13, 84 on 17x17
    """
    return 3 * 2 * (check_maze_size(size) - 3)


def observation_size(size: int) -> int:
    """
    Length of the flat observation: walls grid, one-hot agent cell, 4 adjacent-wall bits.

    :param size: grid side
    :return: ``2 size^2 + 4``
    """
    return 2 * size * size + 4


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"A maze seed must be an int >= 0, got {seed!r}.")
    return int(seed)


@functools.lru_cache(maxsize=LAYOUT_CACHE_SIZE)
def maze_walls(size: int, seed: int) -> np.ndarray:
    """
    The walls of the strict maze of a seed (cached, read-only).

    :param size: grid side, odd and >= 5
    :param seed: the maze seed, an int >= 0
    :return: bool array ``walls[row, col]``, True on a wall
    """
    walls = generate_prim_maze_from_start(check_maze_size(size), np.random.default_rng(_check_seed(seed)))
    walls.flags.writeable = False
    return walls


def layout_key(walls: np.ndarray) -> bytes:
    """
    The identity of a maze layout: equal keys if and only if equal walls (of equal size).

    :param walls: square bool array ``walls[row, col]``
    :return: the size (2 bytes) followed by the packed wall bits
    """
    walls = np.asarray(walls)
    if walls.ndim != 2 or walls.shape[0] != walls.shape[1]:
        raise ValueError(f"walls must be a square 2-D array walls[row, col], got shape {walls.shape}.")
    return int(walls.shape[0]).to_bytes(2, "little") + np.packbits(walls.astype(bool, copy=False), axis=None).tobytes()


def layout_fingerprint(walls: np.ndarray) -> int:
    """
    A 63-bit int hash of :func:`layout_key` (the ``start_fingerprint`` :class:`StrictMazeVecEnv` reports).

    :param walls: square bool array ``walls[row, col]``
    :return: a non-negative int below ``2**63``
    """
    digest = hashlib.blake2b(layout_key(walls), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def count_perfect_mazes(size: int) -> int:
    """
    The number of distinct perfect mazes of a size: spanning trees of the ``c x c`` cell lattice (c = (size-1)/2).

    Kirchhoff's matrix-tree theorem: any cofactor of the lattice's graph Laplacian, computed exactly with integer
    (fraction-free Bareiss) elimination. Randomized Prim can produce every spanning tree, so this is also the
    number of layouts the generator can produce.

    :param size: grid side, odd and >= 5
    :return: the exact count (4 for 5x5, 192 for 7x7, 100352 for 9x9)
    """
    cells = (check_maze_size(size) - 1) // 2
    n_vertices = cells * cells
    laplacian = [[0] * n_vertices for _ in range(n_vertices)]
    for row in range(cells):
        for col in range(cells):
            here = row * cells + col
            for there in ([here + 1] if col + 1 < cells else []) + ([here + cells] if row + 1 < cells else []):
                laplacian[here][here] += 1
                laplacian[there][there] += 1
                laplacian[here][there] -= 1
                laplacian[there][here] -= 1
    return _integer_determinant([line[:-1] for line in laplacian[:-1]])


def _integer_determinant(matrix: list[list[int]]) -> int:
    """Exact determinant of an integer matrix by Bareiss' fraction-free elimination."""
    a = [line[:] for line in matrix]
    n, sign, previous_pivot = len(a), 1, 1
    for k in range(n - 1):
        if a[k][k] == 0:
            swap = next((i for i in range(k + 1, n) if a[i][k] != 0), None)
            if swap is None:
                return 0
            a[k], a[swap], sign = a[swap], a[k], -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                a[i][j] = (a[i][j] * a[k][k] - a[i][k] * a[k][j]) // previous_pivot
        previous_pivot = a[k][k]
    return sign * a[-1][-1] if n else 1


def disjoint_layout_seeds(
    size: int,
    n: int,
    *,
    exclude_keys: Iterable[bytes] = (),
    exclude_seeds: Iterable[int] = (),
    first_seed: int = 0,
    max_tries: int | None = None,
) -> list[int]:
    """
    ``n`` seeds with pairwise distinct layouts, none equal to an excluded layout: the first such seeds counting
    up from ``first_seed``. Use it to make training and held-out mazes different layouts, not only different seeds::

        held_out = disjoint_layout_seeds(9, 256, first_seed=EVAL_SEED_BASE)
        train = disjoint_layout_seeds(9, 10_000, exclude_seeds=held_out)

    :param size: grid side
    :param n: how many seeds
    :param exclude_keys: layout keys (:func:`layout_key`) to avoid
    :param exclude_seeds: seeds whose layouts to avoid
    :param first_seed: the first seed tried
    :param max_tries: give up after this many seeds (default ``10 n + 10000``)
    :return: the seeds, increasing
    """
    size = check_maze_size(size)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an int >= 0 (how many seeds), got {n!r}.")
    seen = set(exclude_keys) | {layout_key(maze_walls(size, _check_seed(seed))) for seed in exclude_seeds}
    n_excluded = len(seen)
    tries = 10 * n + 10_000 if max_tries is None else max_tries
    seeds: list[int] = []
    seed = _check_seed(first_seed)
    while len(seeds) < n:
        if seed - first_seed >= tries:
            raise ValueError(
                f"Found only {len(seeds)} of {n} new distinct {size}x{size} layouts among seeds {first_seed}.."
                f"{seed - 1} (there are {count_perfect_mazes(size)} mazes of this size, {n_excluded} "
                "excluded): ask for fewer, exclude fewer, or raise max_tries."
            )
        key = layout_key(maze_walls(size, seed))
        if key not in seen:
            seen.add(key)
            seeds.append(seed)
        seed += 1
    return seeds


class MazeLayout:
    """
    A strict maze with everything its env, expert and exact evaluation need, indexed by flat cell
    ``row * size + col``. Arrays are read-only (layouts are cached and shared); what only the expert and the
    exact evaluation need is computed on first use, so that starting a fresh maze stays cheap.

    :param walls: bool array ``walls[row, col]``: any square grid whose start (1, 1) and goal (size-2, size-2) are free
    :param seed: the seed that generated it (None for hand-made walls)

    Attributes: ``size``, ``seed``, ``walls`` (bool ``(size, size)``); ``start`` and ``goal`` (flat indices of
    (1, 1) and (size-2, size-2)); ``walls_flat`` (float32 ``(size^2,)``, the walls part of every observation);
    ``moves`` (int32 ``(size^2, 4)``: the cell each action leads to, -1 where it hits a wall or leaves the grid);
    ``wall_bits`` (float32 ``(size^2, 4)``: 1 where it does).
    """

    def __init__(self, walls: np.ndarray, seed: int | None = None) -> None:
        walls = np.array(walls, dtype=bool)
        size = walls.shape[0] if walls.ndim == 2 else 0
        if walls.shape != (size, size) or size < 3:
            raise ValueError(f"walls must be a square bool array walls[row, col] of side >= 3, got shape {walls.shape}.")
        self.size, self.seed, self.walls = size, seed, walls
        self.start, self.goal = size + 1, (size - 2) * size + size - 2
        flat = walls.ravel()
        if flat[self.start] or flat[self.goal]:
            raise ValueError("The start (1, 1) and the goal (size-2, size-2) must be free cells.")
        targets, on_grid = _grid_moves(size)
        moves = np.where(on_grid & ~flat[targets], targets, -1)
        moves[flat] = -1  # nothing moves out of a wall (the agent never stands on one)
        self.moves = moves.astype(np.int32)
        self.walls_flat = flat.astype(np.float32)
        self.wall_bits = (moves < 0).astype(np.float32)
        for array in (walls, self.moves, self.walls_flat, self.wall_bits):
            array.flags.writeable = False

    @functools.cached_property
    def key(self) -> bytes:
        """:func:`layout_key` of the walls."""
        return layout_key(self.walls)

    @functools.cached_property
    def fingerprint(self) -> int:
        """:func:`layout_fingerprint` of the walls."""
        return layout_fingerprint(self.walls)

    @functools.cached_property
    def distances(self) -> np.ndarray:
        """int32 ``(size^2,)``: BFS moves to the goal, -1 on walls and on cells that cannot reach it."""
        return _read_only(_bfs_distances(self.moves, self.goal).astype(np.int32))

    @functools.cached_property
    def expert(self) -> np.ndarray:
        """int32 ``(size^2,)``: a BFS-optimal action at every free cell that can reach the goal (the first in action
        order that lowers the distance; unique in a perfect maze), -1 on walls and on the goal."""
        distances = self.distances
        lowers = (self.moves >= 0) & (distances[self.moves] == distances[:, None] - 1) & (distances >= 0)[:, None]
        return _read_only(np.where(lowers.any(axis=1), lowers.argmax(axis=1), -1).astype(np.int32))

    @functools.cached_property
    def free_cells(self) -> np.ndarray:
        """int64 ``(F,)``: the flat indices of the free cells, increasing."""
        return _read_only(np.flatnonzero(~self.walls.ravel()).astype(np.int64))

    @property
    def start_index(self) -> int:
        """The start's index in ``free_cells``."""
        return int(np.searchsorted(self.free_cells, self.start))

    @property
    def goal_index(self) -> int:
        """The goal's index in ``free_cells``."""
        return int(np.searchsorted(self.free_cells, self.goal))

    @functools.cached_property
    def edges(self) -> np.ndarray:
        """int64 ``(3, E)``: ``source, action, target`` of every move between free cells that does not start at the
        goal, as indices into ``free_cells``."""
        free_cells = self.free_cells
        source, action = np.nonzero(self.moves[free_cells] >= 0)
        keep = free_cells[source] != self.goal
        source, action = source[keep], action[keep]
        target = np.searchsorted(free_cells, self.moves[free_cells[source], action])
        return _read_only(np.stack([source, action, target]).astype(np.int64))

    def cell_index(self, row: int, col: int) -> int:
        """
        The flat index of a cell.

        :param row: row, 0 at the top
        :param col: column, 0 at the left
        :return: ``row * size + col``
        """
        return row * self.size + col

    def observations(self, cells: Sequence[int] | np.ndarray) -> np.ndarray:
        """
        The observations of the agent standing on each of ``cells``.

        :param cells: flat cell indices
        :return: float32 ``(len(cells), 2 size^2 + 4)``
        """
        cells = np.asarray(cells, dtype=np.int64).reshape(-1)
        n_squares = self.size * self.size
        observations = np.zeros((len(cells), observation_size(self.size)), dtype=np.float32)
        observations[:, :n_squares] = self.walls_flat
        observations[np.arange(len(cells)), n_squares + cells] = 1.0
        observations[:, 2 * n_squares :] = self.wall_bits[cells]
        return observations

    def expert_path(self) -> tuple[np.ndarray, np.ndarray]:
        """
        The BFS-optimal path from the start to the goal.

        :return: the cells visited before the goal, and the expert action at each (equal lengths)
        """
        if self.distances[self.start] < 0:
            raise ValueError("The goal cannot be reached from the start of this layout.")
        cells, actions = [], []
        cell = self.start
        while cell != self.goal:
            action = int(self.expert[cell])
            cells.append(cell)
            actions.append(action)
            cell = int(self.moves[cell, action])
        return np.array(cells, dtype=np.int64), np.array(actions, dtype=np.int64)

    def image(self, cell: int | None = None, tile: int = 8) -> np.ndarray:
        """
        The maze as an RGB image: walls grey, floor white, goal green, agent red.

        :param cell: the agent's flat cell index, if shown
        :param tile: pixels per square
        :return: uint8 ``(size * tile, size * tile, 3)``
        """
        colours = np.where(self.walls.ravel()[:, None], np.uint8(100), np.uint8(255)).repeat(3, axis=1)
        colours[self.goal] = (0, 200, 0)
        if cell is not None:
            colours[cell] = (220, 0, 0)
        squares = colours.reshape(self.size, self.size, 3)
        return squares.repeat(tile, axis=0).repeat(tile, axis=1)

    def ascii(self, cell: int | None = None) -> str:
        """
        The maze as text: ``#`` wall, ``A`` agent, ``S`` start, ``G`` goal, one row per line.

        :param cell: the agent's flat cell index, if shown
        :return: the picture
        """
        squares = ["#" if wall else "." for wall in self.walls.ravel().tolist()]
        squares[self.start], squares[self.goal] = "S", "G"
        if cell is not None:
            squares[cell] = "A"
        return "\n".join("".join(squares[row * self.size : (row + 1) * self.size]) for row in range(self.size))


@functools.lru_cache(maxsize=16)
def _grid_moves(size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every flat cell and action: the target's flat index (0 off the grid), and whether it is on the grid."""
    rows, cols = np.divmod(np.arange(size * size), size)
    target_rows = rows[:, None] + ACTION_STEPS[:, 0]
    target_cols = cols[:, None] + ACTION_STEPS[:, 1]
    on_grid = (target_rows >= 0) & (target_rows < size) & (target_cols >= 0) & (target_cols < size)
    return _read_only(np.where(on_grid, target_rows * size + target_cols, 0)), _read_only(on_grid)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _bfs_distances(moves: np.ndarray, goal: int) -> np.ndarray:
    """Moves to ``goal`` from every cell along ``moves`` (moves are reversible), -1 where it cannot be reached."""
    distances = np.full(len(moves), -1, dtype=np.int64)
    distances[goal] = 0
    queue = deque([goal])
    neighbours = moves.tolist()
    while queue:
        cell = queue.popleft()
        for nxt in neighbours[cell]:
            if nxt >= 0 and distances[nxt] < 0:
                distances[nxt] = distances[cell] + 1
                queue.append(nxt)
    return distances


@functools.lru_cache(maxsize=LAYOUT_CACHE_SIZE)
def maze_layout(size: int, seed: int) -> MazeLayout:
    """
    The strict maze of a seed, with its move table, BFS expert and observation parts (cached).

    :param size: grid side, odd and >= 5
    :param seed: the maze seed, an int >= 0
    :return: the layout
    """
    return MazeLayout(maze_walls(size, seed), seed=int(seed))


def expert_transitions(size: int, seeds: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """
    Behaviour-cloning data: every state on the BFS-optimal path of each maze, with the expert's action.

    :param size: grid side
    :param seeds: the maze seeds
    :return: observations float32 ``(M, 2 size^2 + 4)`` and actions int64 ``(M,)``, maze after maze
    """
    size = check_maze_size(size)
    observations, actions = [], []
    for seed in seeds:
        layout = maze_layout(size, _check_seed(seed))
        cells, path_actions = layout.expert_path()
        observations.append(layout.observations(cells))
        actions.append(path_actions)
    if not observations:
        raise ValueError("seeds is empty: pass at least one maze seed.")
    return np.concatenate(observations), np.concatenate(actions)


class StrictMazeEnv(gym.Env):
    """
    The strict maze as a ``gym.Env`` (the ``MaxRL/StrictMaze-{n}x{n}-v0`` ids); see the module docstring.

    ``reset(seed=s)`` builds the maze of seed ``s``; ``reset()`` draws a maze seed in ``[0, 2**31)`` from the env's
    ``np_random``. Nothing is random within an episode. The final step's info holds ``is_success``; the other
    steps' infos are empty.

    :param size: grid side including the outer wall, odd and >= 5
    :param max_moves: the move budget; None for 3 x the Manhattan distance from start to goal (``6 (size - 3)``)
    :param render_mode: None, ``"ansi"`` (text) or ``"rgb_array"`` (8 pixels per square; SB3's ``make_vec_env``
        asks for it)
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, size: int = 9, max_moves: int | None = None, render_mode: str | None = None) -> None:
        self.size = check_maze_size(size)
        self.max_moves = _check_max_moves(max_moves, self.size)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None, 'ansi' or 'rgb_array'.")
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, shape=(observation_size(self.size),), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.layout: MazeLayout | None = None
        self.cell = -1
        self.moves_taken = 0
        self._done = True

    @property
    def maze_seed(self) -> int | None:
        """The seed of the current maze."""
        return None if self.layout is None else self.layout.seed

    @property
    def agent_position(self) -> tuple[int, int]:
        """The agent's ``(row, col)``."""
        return divmod(self.cell, self.size)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        maze_seed = int(self.np_random.integers(FRESH_SEED_BOUND)) if seed is None else seed
        self.layout = maze_layout(self.size, maze_seed)
        self.cell = self.layout.start
        self.moves_taken = 0
        self._done = False
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.layout is None or self._done:
            raise RuntimeError("The episode is over (or never started): call reset() before step().")
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not in Discrete(4): use 0 up, 1 down, 2 left, 3 right.")
        target = int(self.layout.moves[self.cell, int(action)])
        self.moves_taken += 1
        success = target == self.layout.goal
        terminated = target < 0 or success
        if target >= 0:
            self.cell = target
        truncated = not terminated and self.moves_taken >= self.max_moves
        self._done = terminated or truncated
        info = {"is_success": success} if self._done else {}
        return self._observation(), float(success), terminated, truncated, info

    def optimal_action(self) -> int:
        """The BFS-optimal action at the agent's cell (the behaviour-cloning expert)."""
        if self.layout is None:
            raise RuntimeError("Call reset() first.")
        return int(self.layout.expert[self.cell])

    def render(self) -> str | np.ndarray | None:  # type: ignore[override]
        if self.layout is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return self.layout.ascii(self.cell)
        return self.layout.image(self.cell)

    def _observation(self) -> np.ndarray:
        assert self.layout is not None
        return self.layout.observations([self.cell])[0]


def _check_max_moves(max_moves: int | None, size: int) -> int:
    if max_moves is None:
        return default_max_moves(size)
    if isinstance(max_moves, bool) or not isinstance(max_moves, int | np.integer) or max_moves < 1:
        raise ValueError(f"max_moves={max_moves!r} must be an int >= 1, or None for 3 x the Manhattan distance.")
    return int(max_moves)


class StrictMazeVecEnv(NativeStartStateVecEnv):
    """
    ``num_envs`` strict mazes stepped together in one numpy call, with native start-state control.

    It implements :class:`sb3_maxrl.common.start_states.StartStateVecEnv` through
    :class:`~sb3_maxrl.common.native_vec_env.NativeStartStateVecEnv`, idle slots included (a slot reset into
    ``IDLE`` is neither moved nor observed until the next ``reset()``): every slot keeps a FIFO queue of
    :class:`~sb3_maxrl.common.start_states.EpisodeStart`; each reset of a slot (``reset()`` or the auto-reset
    after an episode ends) starts the maze of the queue head's ``start_seed``, or, with an empty queue, a fresh
    maze whose seed comes from the VecEnv's own seeded generator (any seed in ``[0, 2**31)``, or one of
    ``train_seeds``). ``noise_seed`` is ignored: nothing is random within an episode. As in SB3, a finished slot
    returns the first observation of its next episode and puts the last one in ``info["terminal_observation"]``.
    Finished slots' infos hold ``is_success``, ``TimeLimit.truncated`` (the budget ran out),
    ``terminal_observation``, ``start_seed`` and ``start_fingerprint`` (:func:`layout_fingerprint` of the maze);
    running slots' infos are empty dicts.

    Each step is exactly :class:`StrictMazeEnv`'s on every slot (tested against a DummyVecEnv of them). The move
    tables of recently used mazes stay in a table of ``2 num_envs + 1024`` rows, so starting a maze used recently
    (the episodes of a group share one) copies nothing. Attribute access (``get_attr``, ``set_attr``,
    ``env_method``) reaches the VecEnv itself, shared by all slots. Infos carry no ``"episode"`` entry: wrap it in
    SB3's ``VecMonitor`` for ``rollout/ep_rew_mean`` logging (MaxRL finds the start-state control through VecEnv
    wrappers).

    :param num_envs: number of maze slots
    :param size: grid side, odd and >= 5
    :param max_moves: the move budget; None for 3 x the Manhattan distance (``6 (size - 3)``)
    :param seed: seeds the generator of fresh mazes (None: fresh entropy)
    :param train_seeds: a finite set of maze seeds that resets with an empty queue draw from (uniformly, with
        replacement): a training set for algorithms that reset slots themselves (PPO). None: any seed in
        ``[0, 2**31)``. Generating a fresh maze costs far more than starting a cached one (see
        ``benchmarks/strict_maze_speed.py``)
    """

    def __init__(
        self,
        num_envs: int,
        size: int = 9,
        max_moves: int | None = None,
        seed: int | None = None,
        train_seeds: Iterable[int] | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}.")
        self.size = check_maze_size(size)
        self.max_moves = _check_max_moves(max_moves, self.size)
        self.render_mode = None
        observation_space = spaces.Box(0.0, 1.0, shape=(observation_size(self.size),), dtype=np.float32)
        super().__init__(int(num_envs), observation_space, spaces.Discrete(4))
        self.train_seeds = None if train_seeds is None else [_check_seed(s) for s in train_seeds]
        if self.train_seeds is not None and not self.train_seeds:
            raise ValueError("train_seeds is empty: pass at least one maze seed, or None for any seed.")
        self._rng = np.random.default_rng(seed)
        self._draws: list[int] = []
        # the table of loaded mazes: rows of move tables and observation parts, by seed, least recently used first
        n_rows, n_squares = 2 * self.num_envs + 1024, self.size * self.size
        self._table_walls = np.zeros((n_rows, n_squares), dtype=np.float32)
        self._table_moves = np.full((n_rows, n_squares, 4), -1, dtype=np.int32)
        self._table_wall_bits = np.ones((n_rows, n_squares, 4), dtype=np.float32)
        self._table_layouts: list[MazeLayout | None] = [None] * n_rows
        self._row_of_seed: OrderedDict[int, int] = OrderedDict()
        self._row_users = [0] * n_rows
        self._free_rows = list(range(n_rows - 1, -1, -1))
        # the slots
        self._slots = np.arange(self.num_envs)
        self._slot_rows = np.zeros(self.num_envs, dtype=np.int64)
        self._slot_row_list = [-1] * self.num_envs
        self._cells = np.zeros(self.num_envs, dtype=np.int64)
        self._moves_taken = np.zeros(self.num_envs, dtype=np.int64)
        self._start = self.size + 1
        self._goal = (self.size - 2) * self.size + self.size - 2
        self._actions = np.zeros(self.num_envs, dtype=np.int64)
        self._started = False

    supports_idle_slots = True

    def check_start(self, start: EpisodeStart) -> EpisodeStart:
        """
        A maze start: its seed an int >= 0; ``noise_seed`` is ignored (the maze is deterministic within an episode).

        :param start: the start
        :return: the start
        """
        seed = start.start_seed
        if type(seed) is int and seed >= 0:
            return start
        return EpisodeStart(_check_seed(seed), start.noise_seed)

    def reset(self) -> VecEnvObs:
        """
        Start a new episode in every slot (the head of its queue, else a fresh maze).

        :return: the first observations
        """
        self.wake_all()
        self._start_episodes(self._slots)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._started = True
        return self._observe_active()

    def step_async(self, actions: np.ndarray) -> None:
        """
        Store the actions of the next step.

        :param actions: one action in ``{0, 1, 2, 3}`` per slot
        """
        actions = np.asarray(actions)
        integral = np.issubdtype(actions.dtype, np.integer) or bool(np.all(actions == np.round(actions)))
        if actions.size != self.num_envs or not integral:
            raise ValueError(f"Pass {self.num_envs} integer actions (one per slot), got {actions!r}.")
        actions = actions.reshape(self.num_envs).astype(np.int64, copy=False)
        if actions.min() < 0 or actions.max() > 3:
            raise ValueError("Actions must be 0 up, 1 down, 2 left or 3 right.")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """
        Move every slot's agent, finish the episodes that ended, auto-reset their slots.

        :return: observations, rewards, dones, infos (SB3's VecEnv convention)
        """
        if not self._started:
            raise RuntimeError("Call reset() before step().")
        slots = self.active_slots
        index: slice | np.ndarray = slice(None) if len(slots) == self.num_envs else slots
        cells = self._cells[index]
        targets = self._table_moves[self._slot_rows[index], cells, self._actions[index]]
        hit_wall = targets < 0
        cells = np.where(hit_wall, cells, targets)
        self._cells[index] = cells
        moves_taken = self._moves_taken[index] + 1
        self._moves_taken[index] = moves_taken
        success = cells == self._goal
        terminated = hit_wall | success
        truncated = ~terminated & (moves_taken >= self.max_moves)
        finished = terminated | truncated
        dones = np.zeros(self.num_envs, dtype=bool)
        dones[index] = finished
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        rewards[index] = success
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished_rows = np.flatnonzero(finished)
        if len(finished_rows):
            done_slots = slots[finished_rows]
            terminal_observations = self._observe(done_slots)
            for row, (slot, is_success, is_truncated) in enumerate(
                zip(done_slots.tolist(), success[finished_rows].tolist(), truncated[finished_rows].tolist(), strict=True)
            ):
                layout = self._table_layouts[self._slot_row_list[slot]]
                assert layout is not None
                infos[slot] = {
                    "is_success": is_success,
                    "TimeLimit.truncated": is_truncated,
                    "terminal_observation": terminal_observations[row],
                    **self.start_state_info(layout.seed, layout.fingerprint),
                }
            self._start_episodes(done_slots)
        return self._observe_active(), rewards, dones, infos

    def expert_actions(self) -> np.ndarray:
        """
        The BFS-optimal action at every slot's current cell (the behaviour-cloning expert).

        :return: int64 ``(num_envs,)``
        """
        actions = np.empty(self.num_envs, dtype=np.int64)
        for slot, (layout, cell) in enumerate(zip(self.current_layouts(), self._cells.tolist(), strict=True)):
            if layout is None:
                raise RuntimeError("Call reset() first.")
            actions[slot] = layout.expert[cell]
        return actions

    def current_layouts(self) -> list[MazeLayout | None]:
        """The layout each slot is running (None before the first reset)."""
        return [self._table_layouts[row] if row >= 0 else None for row in self._slot_row_list]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """
        Reseed the generator of fresh mazes (used by slots whose start queue is empty).

        :param seed: the seed (None: fresh entropy)
        :return: the seed, once per slot
        """
        self._rng = np.random.default_rng(seed)
        self._draws = []
        return [seed] * self.num_envs

    def _start_episodes(self, resetting: np.ndarray) -> None:
        slots, starts = self.pop_starts(resetting)
        rows = []
        for slot, start in zip(slots, starts, strict=True):
            seed = self._fresh_seed() if start is None else start.start_seed
            row = self._row_of_seed.get(seed)
            if row is None:
                row = self._load(seed)
            else:
                self._row_of_seed.move_to_end(seed)
            previous = self._slot_row_list[slot]
            if previous >= 0:
                self._row_users[previous] -= 1
            self._row_users[row] += 1
            self._slot_row_list[slot] = row
            rows.append(row)
        index = np.array(slots, dtype=np.int64)
        self._slot_rows[index] = rows
        self._cells[index] = self._start
        self._moves_taken[index] = 0

    def _fresh_seed(self) -> int:
        if not self._draws:  # draw in blocks: one generator call per 1024 fresh mazes
            high = FRESH_SEED_BOUND if self.train_seeds is None else len(self.train_seeds)
            self._draws = self._rng.integers(high, size=1024).tolist()[::-1]
        draw = self._draws.pop()
        return draw if self.train_seeds is None else self.train_seeds[draw]

    def _load(self, seed: int) -> int:
        """Put the maze of ``seed`` in a free table row, evicting the least recently used maze no slot runs."""
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            evicted = next(s for s, r in self._row_of_seed.items() if self._row_users[r] == 0)
            row = self._row_of_seed.pop(evicted)
        layout = maze_layout(self.size, seed)
        self._table_walls[row] = layout.walls_flat
        self._table_moves[row] = layout.moves
        self._table_wall_bits[row] = layout.wall_bits
        self._table_layouts[row] = layout
        self._row_of_seed[seed] = row
        return row

    def _observe_active(self) -> np.ndarray:
        """Every slot's observation: zeros on idle slots."""
        slots = self.active_slots
        if len(slots) == self.num_envs:
            return self._observe(slots)
        observations = np.zeros((self.num_envs, observation_size(self.size)), dtype=np.float32)
        observations[slots] = self._observe(slots)
        return observations

    def _observe(self, slots: np.ndarray) -> np.ndarray:
        n_squares = self.size * self.size
        cells, rows = self._cells[slots], self._slot_rows[slots]
        observations = np.zeros((len(slots), observation_size(self.size)), dtype=np.float32)
        observations[:, :n_squares] = self._table_walls[rows]
        observations[np.arange(len(slots)), n_squares + cells] = 1.0
        observations[:, 2 * n_squares :] = self._table_wall_bits[rows, cells]
        return observations


def _action_probabilities(policy: PolicyLike, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``observations -> (M, 4)`` action probabilities of a policy, checked against the maze's spaces."""

    def check_spaces(policy: BasePolicy) -> None:
        expected_shape = (observation_size(size),)
        if policy.observation_space.shape != expected_shape:
            raise ValueError(
                f"The policy observes shape {policy.observation_space.shape} but {size}x{size} strict-maze observations "
                f"have shape {expected_shape}: pass the size the policy was trained on."
            )
        if not isinstance(policy.action_space, spaces.Discrete) or policy.action_space.n != 4:
            raise ValueError(f"Exact maze evaluation needs a policy over Discrete(4) actions, got {policy.action_space}.")

    return action_probabilities_function(policy, check_spaces)


def _exact_outcomes(
    policy: PolicyLike, size: int, seeds: Sequence[int], max_moves: int | None, mazes_per_batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact success probability and expected episode length of every maze (see :func:`exact_success_probabilities`)."""
    size = check_maze_size(size)
    budget = _check_max_moves(max_moves, size)
    seeds = [_check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds is empty: pass at least one maze seed.")
    if isinstance(mazes_per_batch, bool) or not isinstance(mazes_per_batch, int | np.integer) or mazes_per_batch < 1:
        raise ValueError(f"mazes_per_batch must be an int >= 1, got {mazes_per_batch!r}.")
    probabilities_of = _action_probabilities(policy, size)
    success = np.zeros(len(seeds))
    lengths = np.zeros(len(seeds))
    for begin in range(0, len(seeds), mazes_per_batch):
        layouts = [maze_layout(size, seed) for seed in seeds[begin : begin + mazes_per_batch]]
        counts = np.array([len(layout.free_cells) for layout in layouts])
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        n_states = int(counts.sum())
        probabilities = np.asarray(
            probabilities_of(np.concatenate([layout.observations(layout.free_cells) for layout in layouts])),
            dtype=np.float64,
        )
        if probabilities.shape != (n_states, 4) or not np.all(probabilities >= 0):  # also rejects NaN
            raise ValueError(
                f"The policy must give 4 non-negative action probabilities per observation: expected shape {(n_states, 4)}, "
                f"got {probabilities.shape} (min {np.min(probabilities) if probabilities.size else None})."
            )
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        sources = np.concatenate([layout.edges[0] + offset for layout, offset in zip(layouts, offsets, strict=True)])
        actions = np.concatenate([layout.edges[1] for layout in layouts])
        targets = np.concatenate([layout.edges[2] + offset for layout, offset in zip(layouts, offsets, strict=True)])
        weights = probabilities[sources, actions]
        owner = np.repeat(np.arange(len(layouts)), counts)
        goals = offsets + np.array([layout.goal_index for layout in layouts])
        mass: np.ndarray = np.zeros(n_states)
        mass[offsets + np.array([layout.start_index for layout in layouts])] = 1.0
        batch = slice(begin, begin + len(layouts))
        for _ in range(budget):
            lengths[batch] += np.bincount(owner, weights=mass, minlength=len(layouts))
            mass = np.bincount(targets, weights=mass[sources] * weights, minlength=n_states)
            success[batch] += mass[goals]
            mass[goals] = 0.0
    return np.clip(success, 0.0, 1.0), lengths


def exact_success_probabilities(
    policy: PolicyLike, size: int, seeds: Sequence[int], max_moves: int | None = None, *, mazes_per_batch: int = 128
) -> np.ndarray:
    """
    The exact probability that an episode of a Markov policy succeeds, for each maze.

    The observation depends only on the layout and the agent's cell, so one batched forward pass over every free
    cell of ``mazes_per_batch`` mazes gives ``pi(a | cell)``; probability mass then flows along the moves for
    ``max_moves`` steps, from the start: mass moving into a wall is lost, mass reaching the goal is absorbed as
    success (dynamic programming over (step, cell), in float64).

    :param policy: an SB3 model or policy with Discrete(4) actions (``policy.get_distribution(obs).distribution.probs``:
        MaxRL's, PPO's, A2C's), or a function ``observations (M, D) -> action probabilities (M, 4)``
    :param size: grid side
    :param seeds: the maze seeds
    :param max_moves: the move budget; None for the env's default ``6 (size - 3)``
    :param mazes_per_batch: mazes per forward pass
    :return: float64 ``(len(seeds),)``
    """
    return _exact_outcomes(policy, size, seeds, max_moves, mazes_per_batch)[0]


def exact_pass_at_k(
    policy: PolicyLike,
    size: int,
    seeds: Sequence[int],
    ks: Sequence[int] | None = None,
    max_moves: int | None = None,
    *,
    mazes_per_batch: int = 128,
) -> ExactPassAtKResult:
    """
    Exact pass@k of a policy on strict mazes (:func:`exact_success_probabilities`, then
    :func:`~sb3_maxrl.common.exact_evaluation.pass_at_k_from_probabilities`), with the expected episode lengths.

    :param policy: an SB3 model or policy with Discrete(4) actions, or a function observations -> probabilities
    :param size: grid side
    :param seeds: the maze seeds (held-out layouts: see :func:`disjoint_layout_seeds`)
    :param ks: the ks; None for ``1, 2, 4, ..., 1024``
    :param max_moves: the move budget; None for the env's default
    :param mazes_per_batch: mazes per forward pass
    :return: the result (``.metrics()`` has the keys of ``PassAtKResult.metrics()``)
    """
    probabilities, lengths = _exact_outcomes(policy, size, seeds, max_moves, mazes_per_batch)
    return pass_at_k_from_probabilities(probabilities, ks, start_seeds=list(seeds), expected_lengths=lengths)


def _layout_table(sizes: tuple[int, ...] = (9, 13, 17), n_seeds: int = 10_000) -> str:
    lines = [
        f"size   distinct mazes     distinct layouts in seeds 0..{n_seeds - 1}   path length mean (min..max)   "
        "paths with an up or left move"
    ]
    for size in sizes:
        keys, lengths, detours = set(), [], 0
        for seed in range(n_seeds):
            layout = MazeLayout(maze_walls(size, seed), seed)
            keys.add(layout.key)
            _, actions = layout.expert_path()
            lengths.append(len(actions))
            detours += bool(np.isin(actions, (0, 2)).any())
        lines.append(
            f"{f'{size}x{size}':<6} {count_perfect_mazes(size):<18.3g} {len(keys):<6,} "
            f"({1 - len(keys) / n_seeds:>5.1%} repeats){'':<10} {np.mean(lengths):.1f} ({min(lengths)}..{max(lengths)})"
            f"{'':<16} {detours / n_seeds:.1%}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_layout_table())
