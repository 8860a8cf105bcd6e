"""Run ``group_size`` complete episodes from each of several start states on any VecEnv.

Env slots are handed episodes from one queue: a slot that finishes takes the next pending episode (its start
queued one episode ahead through the VecEnv's start-state control,
:class:`~sb3_maxrl.common.start_states.StartStateVecEnv`, so the VecEnv's auto-reset starts it). Once the queue
is empty, a finishing slot of a VecEnv with idle slots (``supports_idle_slots``, see
:func:`~sb3_maxrl.common.start_states.uses_idle_slots`) goes idle: the env no longer steps it and the policy no
longer runs on it. Other VecEnvs start throw-away episodes there, whose steps never enter a gradient. Which
episodes enter the update is fixed before any of them runs (``G x N`` scheduled episodes, all waited for), so no
episode's length or outcome decides what is trained on. Training and pass@k evaluation both use
:func:`collect_group_episodes`.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from sb3_maxrl.common.buffers import GroupRolloutBuffer
from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY, episode_likelihood
from sb3_maxrl.common.start_states import (
    IDLE,
    START_FINGERPRINT_KEY,
    START_SEED_KEY,
    EpisodeStart,
    start_state_control,
    uses_idle_slots,
)
from sb3_maxrl.common.type_aliases import EpisodeBatch

#: ``act(observations) -> (env_actions, stored_actions, log_probs)``
ActFn = Callable[[VecEnvObs], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class StepRecord:
    """
    One VecEnv step of a group collection, as a step hook sees it.

    :param actions: the actions the policy sampled (as stored), zeros on idle slots
    :param env_actions: the actions sent to the env (clipped to a Box action space)
    :param log_probs: their log-probabilities, zeros on idle slots
    :param new_observations: the observations after the step
    :param rewards: the env's rewards
    :param dones: the env's done flags
    :param infos: the env's info dicts
    :param finished_slots: the env slots whose kept episode ended at this step
    :param n_stepped: env slots the step moved (all but the idle ones)
    """

    actions: np.ndarray
    env_actions: np.ndarray
    log_probs: np.ndarray
    new_observations: VecEnvObs
    rewards: np.ndarray
    dones: np.ndarray
    infos: list[dict[str, Any]]
    finished_slots: list[int]
    n_stepped: int


#: ``step_hook(step) -> keep_going``, called after every VecEnv step
StepHook = Callable[[StepRecord], bool]
StartStateCheck = Literal["raise", "warn", "off"]

_WORKER_ERRORS = (EOFError, BrokenPipeError, ConnectionResetError)


class StartStateMismatchError(RuntimeError):
    """The episodes of one group did not start from the same state although they were reset with one seed."""


class _GroupSchedule:
    """Which episode every env slot runs now and next, and the queue of episodes not yet started."""

    def __init__(
        self, env: VecEnv, group_seeds: Sequence[int], group_size: int, noise_seeds: Sequence[int] | None = None
    ):
        self.control = start_state_control(env)
        self.idle_slots = uses_idle_slots(env)
        self.group_seeds = [int(s) for s in group_seeds]
        self.group_size = group_size
        n_episodes = len(group_seeds) * group_size
        if noise_seeds is not None and len(noise_seeds) != n_episodes:
            raise ValueError(f"noise_seeds needs one seed per episode ({n_episodes}), got {len(noise_seeds)}.")
        self.noise_seeds = None if noise_seeds is None else [int(s) for s in noise_seeds]
        self.pending = deque(range(n_episodes))
        self.current = np.array([self._pop() for _ in range(env.num_envs)], dtype=np.int64)
        self.upcoming = np.array([self._pop() for _ in range(env.num_envs)], dtype=np.int64)
        self.control.schedule_episodes(
            {
                slot: [self.start_of(e, slot) for e in (self.current[slot], self.upcoming[slot])]
                for slot in range(env.num_envs)
            },
            replace=True,
        )

    def _pop(self) -> int:
        return self.pending.popleft() if self.pending else -1

    def seed_of(self, episode: int) -> int:
        return self.group_seeds[episode // self.group_size]

    def start_of(self, episode: int, slot: int) -> EpisodeStart:
        """The start of an episode; with nothing left (-1), IDLE where the env has idle slots, else a throw-away
        episode that replays a start state of this collection, which the env has just built (a fresh one can cost
        more than the episode, e.g. generating a maze)."""
        if episode < 0:
            return IDLE if self.idle_slots else EpisodeStart(self.group_seeds[slot % len(self.group_seeds)])
        return EpisodeStart(self.seed_of(episode), None if self.noise_seeds is None else self.noise_seeds[episode])

    def advance(self, slots: np.ndarray) -> None:
        """These slots finished their episode and auto-reset into their upcoming one; queue their next ones."""
        if len(slots) == 0:
            return
        self.current[slots] = self.upcoming[slots]
        upcoming = [self._pop() for _ in range(len(slots))]
        self.upcoming[slots] = upcoming
        self.control.schedule_episodes(
            {slot: [self.start_of(episode, slot)] for slot, episode in zip(slots.tolist(), upcoming, strict=True)}
        )

    def clear(self) -> None:
        """Empty every slot's queue (the collection stopped early)."""
        self.control.schedule_episodes({}, replace=True)

    def describe_in_flight(self) -> str:
        return ", ".join(f"slot {slot}: start seed {self.seed_of(e)}" for slot, e in enumerate(self.current) if e >= 0)


def collect_group_episodes(
    env: VecEnv,
    group_seeds: Sequence[int],
    group_size: int,
    act: ActFn,
    *,
    buffer: GroupRolloutBuffer | None = None,
    step_hook: StepHook | None = None,
    likelihood_key: str = LIKELIHOOD_KEY,
    max_episode_steps: int = 10_000,
    start_state_check: StartStateCheck = "raise",
    noise_seeds: Sequence[int] | None = None,
) -> EpisodeBatch:
    """
    Run ``group_size`` complete episodes from each start seed, filling ``buffer`` if given.

    :param env: a VecEnv with start-state control (its envs wrapped in ``StartStateWrapper``, or a native
        ``StartStateVecEnv``); it is reset first
    :param group_seeds: the start seed of every group
    :param group_size: episodes per start seed
    :param act: the policy: observations -> (actions for the env, actions to store, log-probabilities)
    :param buffer: where to store the steps (None: only count outcomes, as evaluation does)
    :param step_hook: called after every VecEnv step; returning False stops the collection
    :param likelihood_key: info key of a continuous likelihood (else ``info["is_success"]`` is used)
    :param max_episode_steps: an episode longer than this is an error (MaxRL needs episodic tasks)
    :param start_state_check: what to do when two episodes of a group start from different observations
    :param noise_seeds: one seed per episode (episode ``e`` of group ``e // group_size``) for its in-episode
        randomness, so the episodes of a group are independent given their start state; None shares it (every
        episode continues the env RNG that ``reset(seed)`` left: common random numbers)
    :return: the episodes' outcomes
    """
    n_episodes = len(group_seeds) * group_size
    likelihoods = np.full(n_episodes, np.nan)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    fingerprints: dict[int, int] = {}
    schedule = _GroupSchedule(env, group_seeds, group_size, noise_seeds)
    observations = env.reset()
    idle = schedule.control.idle if schedule.idle_slots else None  # type: ignore[attr-defined]
    steps_in_episode = np.zeros(env.num_envs, dtype=np.int64)
    n_finished, env_steps = 0, 0
    while n_finished < n_episodes:
        active = None if idle is None or not idle.any() else np.flatnonzero(~idle)
        if active is None:
            env_actions, stored_actions, log_probs = act(observations)
            episode_ids = schedule.current
        else:
            env_actions, stored_actions, log_probs = _act_on_slots(act, observations, active, env.num_envs)
            episode_ids = np.full(env.num_envs, -1, dtype=np.int64)
            episode_ids[active] = schedule.current[active]
        try:
            new_observations, rewards, dones, infos = env.step(env_actions)
        except _WORKER_ERRORS as error:
            raise RuntimeError(
                f"An env worker process died while running episodes ({schedule.describe_in_flight()}); "
                "its traceback is printed above. Reproduce it with the env and start seed named here "
                "in a DummyVecEnv to debug."
            ) from error
        n_stepped = env.num_envs if active is None else len(active)
        env_steps += n_stepped
        if buffer is not None:
            buffer.add(observations, stored_actions, log_probs, episode_ids)
        kept = episode_ids >= 0
        lengths[episode_ids[kept]] += 1
        steps_in_episode += 1
        finished_slots = []
        done_slots = np.flatnonzero(dones)
        for slot in done_slots.tolist():
            episode = int(schedule.current[slot])
            if episode >= 0:
                info = infos[slot]
                likelihoods[episode] = episode_likelihood(info, likelihood_key)
                _check_start_state(info, schedule, episode, fingerprints, start_state_check)
                finished_slots.append(slot)
                n_finished += 1
        schedule.advance(done_slots)
        steps_in_episode[done_slots] = 0
        overlong = (steps_in_episode > max_episode_steps) & (schedule.current >= 0)
        if overlong.any():
            stuck_slot = int(np.flatnonzero(overlong)[0])
            raise RuntimeError(
                f"An episode from start seed {schedule.seed_of(int(schedule.current[stuck_slot]))} ran {max_episode_steps} "
                "steps without terminating. MaxRL needs episodic tasks: give the env a time limit "
                "(gymnasium.wrappers.TimeLimit or max_episode_steps=... in gym.make) or raise max_episode_steps."
            )
        observations = new_observations
        if step_hook is not None:
            step = StepRecord(
                stored_actions, env_actions, log_probs, new_observations, rewards, dones, infos, finished_slots, n_stepped
            )
            if not step_hook(step):
                schedule.clear()
                return EpisodeBatch(np.array(group_seeds), group_size, likelihoods, lengths, env_steps, completed=False)
    return EpisodeBatch(np.array(group_seeds), group_size, likelihoods, lengths, env_steps)


def _act_on_slots(
    act: ActFn, observations: VecEnvObs, slots: np.ndarray, num_envs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the policy on some slots only; the others get zero actions (an idle slot ignores its action)."""
    if isinstance(observations, dict):
        subset: VecEnvObs = {key: value[slots] for key, value in observations.items()}
    else:
        subset = observations[slots]  # type: ignore[index]
    outputs = []
    for values in act(subset):
        full = np.zeros((num_envs, *values.shape[1:]), dtype=values.dtype)
        full[slots] = values
        outputs.append(full)
    return outputs[0], outputs[1], outputs[2]


def _check_start_state(
    info: dict[str, Any], schedule: _GroupSchedule, episode: int, fingerprints: dict[int, int], check: StartStateCheck
) -> None:
    expected_seed = schedule.seed_of(episode)
    if START_SEED_KEY not in info:
        raise RuntimeError(
            "The final step's info has no 'start_seed': the env is not wrapped in StartStateWrapper (or the "
            "StartStateVecEnv does not report it), so MaxRL cannot check start states. Build VecEnvs with "
            "make_vec_env(..., wrapper_class=StartStateWrapper)."
        )
    if info[START_SEED_KEY] != expected_seed:
        raise RuntimeError(
            f"An episode scheduled from start seed {expected_seed} started from seed {info[START_SEED_KEY]}: something "
            "reset the env outside the VecEnv's auto-reset. Do not reset envs inside wrappers when MaxRL trains."
        )
    if check == "off":
        return
    group = episode // schedule.group_size
    first = fingerprints.setdefault(group, info[START_FINGERPRINT_KEY])
    if first != info[START_FINGERPRINT_KEY]:
        message = (
            f"Two episodes reset with seed {expected_seed} began with different observations: the env's start "
            "state is not a function of reset(seed), so the episodes of a group do not share their start state. "
            "Draw all start randomness from self.np_random after super().reset(seed=seed), or pass "
            "start_state_check='warn' (or 'off') if only the observation is noisy."
        )
        if check == "raise":
            raise StartStateMismatchError(message)
        warnings.warn(message, stacklevel=3)
