"""A base for vectorized envs with native start-state control (the protocol of ``StartStateVecEnv``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from sb3_maxrl.common.start_states import (
    IDLE,
    START_FINGERPRINT_KEY,
    START_SEED_KEY,
    EpisodeStart,
    _as_episode_start,
    is_idle_start,
)


class NativeStartStateVecEnv(VecEnv):
    """
    Base class of a VecEnv that steps all its slots itself and lets MaxRL choose every episode's start state.

    It owns what every such env repeats: one FIFO queue of :class:`~sb3_maxrl.common.start_states.EpisodeStart` per
    slot, :meth:`schedule_episodes`, the idle slots (optional, see ``supports_idle_slots``), the keys that the final
    step of an episode reports (:meth:`start_state_info`) and the attribute plumbing of SB3's ``VecEnv`` (on the
    VecEnv itself, shared by all slots). A subclass implements ``reset()``, ``step_async()`` and ``step_wait()`` and
    starts the episodes of resetting slots with :meth:`pop_starts`::

        def _start_episodes(self, slots):
            slots, starts = self.pop_starts(slots)  # idle starts are taken out (supports_idle_slots = True)
            for slot, start in zip(slots, starts):
                seed = self.fresh_seed() if start is None else start.start_seed
                ...  # build the start state of `seed`; reseed in-episode noise from start.noise_seed if any

    Check a subclass with :func:`sb3_maxrl.common.env_checker.check_start_state_env`.

    :param num_envs: number of slots
    :param observation_space: the observation space of one slot
    :param action_space: the action space of one slot
    """

    #: Whether the env leaves a slot idle when it resets into the ``IDLE`` start: ``step`` then neither moves nor
    #: observes it until the next ``reset()`` (zeros for its observation, reward 0, done False, an empty info)
    supports_idle_slots: ClassVar[bool] = False

    #: SB3's VecEnv asks every env for it; a subclass that renders sets its own
    render_mode: str | None = None

    def __init__(self, num_envs: int, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(num_envs, observation_space, action_space)
        self._queues: list[deque[EpisodeStart]] = [deque() for _ in range(num_envs)]
        #: ``(num_envs,)`` bool: the slots that are idle (always False unless ``supports_idle_slots``)
        self.idle = np.zeros(num_envs, dtype=bool)
        self._active_slots = np.arange(num_envs)

    def check_start(self, start: EpisodeStart) -> EpisodeStart:
        """
        Validate one queued start (a subclass may narrow the seeds it accepts); the default accepts seeds >= 0.

        :param start: the start
        :return: the start, possibly normalized
        """
        if start.start_seed < 0:
            raise ValueError(f"A start seed must be an int >= 0 (a reset seed), got {start.start_seed}.")
        return start

    def schedule_episodes(self, starts_by_slot: Mapping[int, Sequence[EpisodeStart | int]], replace: bool = False) -> None:
        """
        Queue episode starts per env slot (see :class:`~sb3_maxrl.common.start_states.StartStateVecEnv`).

        :param starts_by_slot: the starts (``EpisodeStart`` or bare start seeds) to queue for each named slot, first
            used first; ``IDLE`` leaves the slot idle from that reset on, where the env supports idle slots
        :param replace: replace every slot's queue (slots not named get an empty one) instead of appending
        """
        table: dict[int, list[EpisodeStart]] = {}
        for slot, starts in starts_by_slot.items():
            if isinstance(slot, bool) or not isinstance(slot, int | np.integer) or not 0 <= slot < self.num_envs:
                raise ValueError(f"Slot {slot!r} does not exist: slots are 0..{self.num_envs - 1}.")
            table[int(slot)] = [self._checked(start) for start in starts]
        if replace:
            for queue in self._queues:
                queue.clear()
        for slot, queued in table.items():
            self._queues[slot].extend(queued)

    def _checked(self, start: EpisodeStart | int) -> EpisodeStart:
        if type(start) is EpisodeStart and type(start.start_seed) is int:  # the collector's starts: the fast path
            if start.start_seed < 0:
                return self._checked_idle()
            return self.check_start(start)
        if isinstance(start, bool) or not isinstance(start, EpisodeStart | int | np.integer):
            raise TypeError(f"An episode start must be an EpisodeStart(start_seed, noise_seed) or an int seed, got {start!r}.")
        if isinstance(start, EpisodeStart) and is_idle_start(start):
            return self._checked_idle()
        return self.check_start(_as_episode_start(start))

    def _checked_idle(self) -> EpisodeStart:
        if not self.supports_idle_slots:
            raise ValueError(f"{type(self).__name__} has no idle slots (supports_idle_slots is False): queue a start seed.")
        return IDLE

    def pop_starts(self, slots: Sequence[int] | np.ndarray) -> tuple[list[int], list[EpisodeStart | None]]:
        """
        Take the next start of every resetting slot: slots whose next start is ``IDLE`` become idle and are left out.

        :param slots: the slots that reset, increasing
        :return: the slots that start an episode, and each one's start (None where its queue was empty: start as
            without the protocol, e.g. a fresh start state from the env's own generator)
        """
        starting: list[int] = []
        starts: list[EpisodeStart | None] = []
        went_idle = False
        for slot in slots:
            queue = self._queues[slot]
            start = queue.popleft() if queue else None
            if start is not None and is_idle_start(start):
                self.idle[slot] = went_idle = True
                continue
            starting.append(int(slot))
            starts.append(start)
        if went_idle:
            self._active_slots = np.flatnonzero(~self.idle)
        return starting, starts

    def wake_all(self) -> None:
        """Make every slot active again (``reset()`` calls it before starting the slots' episodes)."""
        if self.idle.any():
            self.idle[:] = False
            self._active_slots = np.arange(self.num_envs)

    @property
    def active_slots(self) -> np.ndarray:
        """The slots that are not idle, increasing (int64)."""
        return self._active_slots

    @staticmethod
    def start_state_info(start_seed: int | None, start_fingerprint: int) -> dict[str, Any]:
        """
        The keys the final step's info of every episode carries for the start-state check.

        :param start_seed: the seed the episode's slot was reset with
        :param start_fingerprint: an int that identifies the start state (e.g. ``observation_fingerprint(first_obs)``)
        :return: ``{"start_seed": ..., "start_fingerprint": ...}``
        """
        return {START_SEED_KEY: start_seed, START_FINGERPRINT_KEY: start_fingerprint}

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """
        An attribute of the VecEnv (shared by all slots), once per requested slot.

        :param attr_name: the attribute
        :param indices: the slots
        :return: the value, once per slot
        """
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """
        Set an attribute of the VecEnv (shared by all slots, whatever ``indices`` names).

        :param attr_name: the attribute
        :param value: its new value
        :param indices: ignored: the slots share the VecEnv's attributes
        """
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """
        Call a method of the VecEnv once, and return its result once per requested slot.

        :param method_name: the method
        :param method_args: its positional arguments
        :param indices: the slots
        :param method_kwargs: its keyword arguments
        :return: the result, once per slot
        """
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(list(self._get_indices(indices)))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """
        No slot is a wrapped ``gym.Env``.

        :param wrapper_class: the wrapper asked about
        :param indices: the slots
        :return: False for every slot
        """
        return [False] * len(list(self._get_indices(indices)))
