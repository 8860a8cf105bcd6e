"""Start states: the seeded stream they are drawn from, and the env wrapper that resets to them."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

#: Training start seeds of the infinite stream are drawn from ``[0, EVAL_SEED_BASE)``; the default held-out
#: evaluation start states are ``EVAL_SEED_BASE + i``, so the two never overlap.
EVAL_SEED_BASE = 2**31


def default_eval_seeds(n_start_states: int) -> list[int]:
    """
    Held-out start seeds, disjoint from every seed the infinite training stream can draw.

    :param n_start_states: how many start states to return
    :return: the seeds ``EVAL_SEED_BASE, EVAL_SEED_BASE + 1, ...``
    """
    return [EVAL_SEED_BASE + i for i in range(n_start_states)]


class StartStateStream:
    """
    The start seeds of training: an infinite seeded stream, or a finite training set visited epoch by epoch.

    :param seed: seeds the stream (``None``: fresh entropy)
    :param train_seeds: a finite set of training start seeds, shuffled anew on every pass; ``None`` for the
        infinite stream of fresh seeds in ``[0, EVAL_SEED_BASE)``
    """

    def __init__(self, seed: int | None = None, train_seeds: Iterable[int] | None = None):
        self.rng = np.random.default_rng(seed)
        self.train_seeds = None if train_seeds is None else np.array(list(train_seeds), dtype=np.int64)
        if self.train_seeds is not None and len(self.train_seeds) == 0:
            raise ValueError("train_seeds is empty: pass at least one start seed, or None for the infinite stream.")
        self._epoch: deque[int] = deque()

    def take(self, n_start_states: int) -> list[int]:
        """
        The next ``n_start_states`` start seeds.

        :param n_start_states: how many to draw
        :return: seeds as Python ints
        """
        if self.train_seeds is None:
            return [int(s) for s in self.rng.integers(0, EVAL_SEED_BASE, size=n_start_states)]
        seeds: list[int] = []
        while len(seeds) < n_start_states:
            if not self._epoch:
                self._epoch.extend(int(s) for s in self.rng.permutation(self.train_seeds))
            seeds.append(self._epoch.popleft())
        return seeds


def observation_fingerprint(observation: Any) -> int:
    """
    A 64-bit hash of an observation (arrays, dicts of arrays or scalars), to compare start states cheaply.

    :param observation: an observation as returned by ``env.reset``
    :return: the hash as an int
    """
    digest = hashlib.blake2b(digest_size=8)
    if isinstance(observation, dict):
        for key in sorted(observation):
            digest.update(str(key).encode())
            digest.update(np.ascontiguousarray(observation[key]).tobytes())
    else:
        digest.update(np.ascontiguousarray(observation).tobytes())
    return int.from_bytes(digest.digest(), "little")


class StartStateWrapper(gym.Wrapper):
    """
    Resets to scheduled start seeds, so the algorithm decides the start state of every auto-reset.

    While seeds are scheduled, every reset takes the next one (it overrides a seed a VecEnv passes on its
    first reset); with an empty schedule, resets behave as the wrapped env's. The final step of every episode
    reports ``info["start_seed"]`` and ``info["start_fingerprint"]`` (a hash of the first observation), with
    which the algorithm checks that ``reset(seed)`` really fixes the start state. ``MaxRL`` adds this wrapper
    itself to a ``gym.Env``; for a VecEnv you build, pass ``wrapper_class=StartStateWrapper`` to ``make_vec_env``.

    :param env: the environment to wrap
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._scheduled: deque[int] = deque()
        self._slot: int | None = None
        self._episode_seed: int | None = None
        self._episode_fingerprint: int | None = None

    def set_start_schedule(self, seeds: Sequence[int], slot: int | None = None) -> None:
        """
        Replace the queue of start seeds used by the coming resets.

        :param seeds: the seeds, first used first
        :param slot: this env's index in its VecEnv, the key of :meth:`schedule_start_seeds`' table
        """
        self._scheduled = deque(int(s) for s in seeds)
        self._slot = slot

    def schedule_start_seeds(self, seed_by_slot: dict[int, int]) -> None:
        """
        Append this env's entry of a table of start seeds to its queue (one call serves many envs).

        :param seed_by_slot: the start seed of the coming episode of each env slot
        """
        if self._slot is None or self._slot not in seed_by_slot:
            raise RuntimeError("schedule_start_seeds needs set_start_schedule(seeds, slot) to have named this env's slot.")
        self._scheduled.append(int(seed_by_slot[self._slot]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self._scheduled:
            seed = self._scheduled.popleft()
        observation, info = self.env.reset(seed=seed, options=options)
        self._episode_seed = seed
        self._episode_fingerprint = observation_fingerprint(observation)
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["start_seed"] = self._episode_seed
            info["start_fingerprint"] = self._episode_fingerprint
        return observation, reward, terminated, truncated, info
