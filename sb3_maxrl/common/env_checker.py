"""Check that a VecEnv implements the start-state protocol MaxRL relies on, in the spirit of SB3's ``check_env``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_maxrl.common.start_states import (
    IDLE,
    START_FINGERPRINT_KEY,
    START_SEED_KEY,
    EpisodeStart,
    StartStateVecEnv,
    StartStateWrapper,
    WrappedStartStates,
)

#: info keys compared with the single env's final info, where it reports them
_COMPARED_INFO_KEYS = ("is_success", "likelihood", "TimeLimit.truncated", START_SEED_KEY)


class StartStateEnvError(AssertionError):
    """A VecEnv breaks the start-state protocol; the message says which rule and what to change."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise StartStateEnvError(message)


def check_start_state_env(
    venv: VecEnv,
    make_env: Callable[[], gym.Env] | None = None,
    n_steps: int = 200,
    seed: int = 0,
    start_seeds: tuple[int, ...] = (3, 5, 8, 13),
) -> None:
    """
    Check a native start-state VecEnv (e.g. a subclass of
    :class:`~sb3_maxrl.common.native_vec_env.NativeStartStateVecEnv`) against the protocol MaxRL relies on.

    It resets and steps ``venv`` (its queues are replaced) with seeded random actions and checks that:

    - it has ``num_envs`` and ``schedule_episodes`` (:class:`~sb3_maxrl.common.start_states.StartStateVecEnv`);
    - every reset of a slot (``reset()`` and each auto-reset) pops the head of that slot's queue: the final step
      of every episode reports, in ``info["start_seed"]``, the seeds queued for its slot, in order;
    - the start state is a function of the seed: episodes of one seed report one ``info["start_fingerprint"]``
      (an int) and begin with the same observation;
    - with ``make_env`` (a factory of the single ``gym.Env`` the VecEnv vectorizes), every step equals a
      ``DummyVecEnv`` of ``StartStateWrapper(make_env())`` given the same starts and actions: observations,
      rewards, dones, terminal observations and the final infos' ``is_success``, ``likelihood``,
      ``TimeLimit.truncated`` and ``start_seed`` (those the single env reports);
    - with ``supports_idle_slots = True``: a slot reset into ``IDLE`` is idle (``venv.idle``), observes zeros, gets
      reward 0, done False and an empty info while the others go on, and ``reset()`` wakes it.

    :param venv: the VecEnv to check (at least 2 slots for the idle check)
    :param make_env: a factory of the single env, for the step-for-step comparison; None to skip it
    :param n_steps: VecEnv steps of the main check
    :param seed: seeds the random actions and the noise seeds
    :param start_seeds: the start seeds queued (each slot gets them in a rotated order)
    :raises StartStateEnvError: (an ``AssertionError``) naming the rule that failed
    """
    _require(
        isinstance(venv, StartStateVecEnv),
        f"{type(venv).__name__} has no schedule_episodes(starts_by_slot, replace=False): subclass "
        "sb3_maxrl.common.native_vec_env.NativeStartStateVecEnv (or wrap each env in StartStateWrapper).",
    )
    rng = np.random.default_rng(seed)
    n_per_slot = n_steps + 1  # every episode lasts at least one step: enough starts for every reset of the check
    starts = {
        slot: [EpisodeStart(start_seeds[(slot + i) % len(start_seeds)], int(rng.integers(2**62))) for i in range(n_per_slot)]
        for slot in range(venv.num_envs)
    }
    reference = None
    if make_env is not None:
        reference = DummyVecEnv([lambda: StartStateWrapper(make_env()) for _ in range(venv.num_envs)])
        WrappedStartStates(reference).schedule_episodes(starts, replace=True)
    venv.schedule_episodes(starts, replace=True)  # type: ignore[attr-defined]
    observations = venv.reset()
    if reference is not None:
        _require_equal(observations, reference.reset(), "the first observations of reset()")
    first_observation: dict[int, Any] = {}
    for slot in range(venv.num_envs):
        first_observation.setdefault(starts[slot][0].start_seed, _row(observations, slot))
        _require_equal(
            _row(observations, slot),
            first_observation[starts[slot][0].start_seed],
            f"slot {slot}'s first observation after reset() to seed {starts[slot][0].start_seed}",
            _SEED_FIXES_START,
        )
    action_space = venv.action_space
    action_space.seed(seed)
    episodes_done = [0] * venv.num_envs
    fingerprints: dict[int, int] = {}
    for step in range(n_steps):
        actions = np.stack([action_space.sample() for _ in range(venv.num_envs)])
        observations, rewards, dones, infos = venv.step(actions)
        if reference is not None:
            ref_observations, ref_rewards, ref_dones, ref_infos = reference.step(actions)
            where = f"step {step}"
            _require_equal(observations, ref_observations, f"the observations at {where}")
            _require_equal(rewards, ref_rewards, f"the rewards at {where}")
            _require_equal(dones, ref_dones, f"the dones at {where}")
        for slot in np.flatnonzero(dones).tolist():
            info = infos[slot]
            expected = starts[slot][episodes_done[slot]].start_seed
            _require(
                START_SEED_KEY in info and START_FINGERPRINT_KEY in info,
                f"The final step's info of slot {slot} lacks {START_SEED_KEY!r} or {START_FINGERPRINT_KEY!r} (keys: "
                f"{sorted(info)}): report them on the last step of every episode "
                "(NativeStartStateVecEnv.start_state_info(seed, fingerprint)).",
            )
            _require(
                info[START_SEED_KEY] == expected,
                f"Slot {slot}'s episode {episodes_done[slot]} reports start seed {info[START_SEED_KEY]!r}, but "
                f"{expected} was queued for it: each reset of a slot must pop the head of that slot's queue "
                "(NativeStartStateVecEnv.pop_starts).",
            )
            fingerprint = info[START_FINGERPRINT_KEY]
            _require(
                isinstance(fingerprint, int | np.integer),
                f"info[{START_FINGERPRINT_KEY!r}] must be an int, got {fingerprint!r}.",
            )
            _require(
                fingerprints.setdefault(expected, int(fingerprint)) == int(fingerprint),
                f"Two episodes of start seed {expected} report different start fingerprints: the start state must "
                "be a pure function of the seed.",
            )
            _require("terminal_observation" in info, f"Slot {slot}'s final info has no 'terminal_observation' (SB3).")
            if reference is not None:
                for key in (key for key in _COMPARED_INFO_KEYS if key in ref_infos[slot]):
                    _require(
                        info.get(key) == ref_infos[slot].get(key),
                        f"info[{key!r}] of slot {slot} at step {step} is {info.get(key)!r}, the single env's is "
                        f"{ref_infos[slot].get(key)!r}.",
                    )
                _require_equal(
                    info["terminal_observation"],
                    ref_infos[slot]["terminal_observation"],
                    f"slot {slot}'s terminal observation",
                )
            episodes_done[slot] += 1
            next_seed = starts[slot][episodes_done[slot]].start_seed
            if next_seed in first_observation:
                _require_equal(
                    _row(observations, slot),
                    first_observation[next_seed],
                    f"slot {slot}'s first observation after its auto-reset to seed {next_seed}",
                    _SEED_FIXES_START,
                )
    _require(sum(episodes_done) > 0, f"No episode ended in {n_steps} steps of random actions: raise n_steps.")
    if getattr(venv, "supports_idle_slots", False):
        _check_idle_slots(venv, start_seeds[0], seed)
    venv.schedule_episodes({}, replace=True)  # type: ignore[attr-defined]


def _check_idle_slots(venv: VecEnv, start_seed: int, seed: int) -> None:
    _require(venv.num_envs >= 2, "The idle-slot check needs a VecEnv of at least 2 slots.")
    _require(hasattr(venv, "idle"), "An env with supports_idle_slots = True needs a bool array `idle`, one per slot.")
    busy = [EpisodeStart(start_seed)] * 10_000
    venv.schedule_episodes({0: [EpisodeStart(start_seed), IDLE], **{s: busy for s in range(1, venv.num_envs)}}, replace=True)  # type: ignore[attr-defined]
    venv.reset()
    action_space = venv.action_space
    action_space.seed(seed)
    for _ in range(10_000):
        if bool(venv.idle[0]):  # type: ignore[attr-defined]
            break
        observations, *_ = venv.step(np.stack([action_space.sample() for _ in range(venv.num_envs)]))
    _require(bool(venv.idle[0]), "Slot 0 did not become idle after its episode ended into the IDLE start.")  # type: ignore[attr-defined]
    for _ in range(3):
        observations, rewards, dones, infos = venv.step(np.stack([action_space.sample() for _ in range(venv.num_envs)]))
        _require(
            not np.any(_row(observations, 0)) and rewards[0] == 0 and not dones[0] and infos[0] == {},
            "An idle slot must observe zeros and get reward 0, done False and an empty info.",
        )
    venv.reset()
    _require(not np.any(venv.idle), "reset() must make every slot active again.")  # type: ignore[attr-defined]


def _row(observations: Any, slot: int) -> Any:
    if isinstance(observations, dict):
        return {key: value[slot] for key, value in observations.items()}
    return observations[slot]  # type: ignore[index]


_SAME_AS_SINGLE_ENV = "the native env must step exactly as the single env does"
_SEED_FIXES_START = "the start state must be a pure function of the seed"


def _require_equal(actual: object, expected: object, what: str, why: str = _SAME_AS_SINGLE_ENV) -> None:
    if isinstance(expected, dict):
        _require(isinstance(actual, dict) and set(actual) == set(expected), f"{what}: the dict keys differ.")
        for key in expected:
            _require_equal(actual[key], expected[key], f"{what}[{key!r}]", why)  # type: ignore[index]
        return
    _require(np.array_equal(np.asarray(actual), np.asarray(expected)), f"{what} differ from the expected ones: {why}.")
