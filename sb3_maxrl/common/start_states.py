"""Start states: the seeded stream they are drawn from, and the env wrapper that resets to them."""

from __future__ import annotations

import hashlib
import warnings
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

#: The final step of every episode reports the seed its slot was reset with under this info key.
START_SEED_KEY = "start_seed"
#: ... and an int identifying its start state (e.g. a hash of the first observation) under this one.
START_FINGERPRINT_KEY = "start_fingerprint"

#: Training start seeds of the infinite stream are drawn from ``[0, EVAL_SEED_BASE)``; the default held-out
#: evaluation start states are ``EVAL_SEED_BASE + i``, so the two never overlap.
EVAL_SEED_BASE = 2**31


#: How the episodes of a group draw their in-episode randomness: ``"independent"`` (each episode's env RNG is
#: reseeded after the start-state reset from its own seed) or ``"shared"`` (common random numbers: every
#: episode of a group continues the RNG stream ``reset(seed)`` left, so their transition noise is identical).
EpisodeNoise = Literal["independent", "shared"]
EPISODE_NOISE_OPTIONS: tuple[str, ...] = ("independent", "shared")


def check_episode_noise(episode_noise: str) -> None:
    """
    Raise a clear error for an unknown ``episode_noise`` option.

    :param episode_noise: the option to check
    """
    if episode_noise not in EPISODE_NOISE_OPTIONS:
        raise ValueError(
            f"episode_noise must be 'independent' (each episode of a group gets its own in-episode randomness, "
            f"the estimators' assumption) or 'shared' (common random numbers), got {episode_noise!r}."
        )


class EpisodeStart(NamedTuple):
    """
    How one episode starts: the reset seed that fixes its start state, and the seed of its in-episode randomness.

    :param start_seed: passed to ``reset(seed=...)``; episodes of one group share it
    :param noise_seed: reseeds the env's ``np_random`` right after that reset, so that episodes of one group draw
        independent transition noise; ``None`` keeps the stream ``reset(start_seed)`` left (shared noise)
    """

    start_seed: int
    noise_seed: int | None = None


@runtime_checkable
class StartStateVecEnv(Protocol):
    """
    The start-state control protocol: how MaxRL and pass@k evaluation choose the start of every episode.

    Every env slot keeps a FIFO queue of :class:`EpisodeStart`. Each reset of a slot (``VecEnv.reset()`` or the
    auto-reset after an episode ends) pops the head of its queue: ``reset(seed=start_seed)`` fixes the start
    state, then ``noise_seed`` (if not None) reseeds the in-episode randomness. A slot with an empty queue resets
    as it would without the protocol. The final step of every episode reports ``info["start_seed"]`` (the seed
    it was reset with, :data:`START_SEED_KEY`) and ``info["start_fingerprint"]`` (an int identifying its start
    state, e.g. a hash of the first observation, :data:`START_FINGERPRINT_KEY`), with which the collector checks
    that ``reset(seed)`` fixes the start state.

    Optional, for envs with ``supports_idle_slots = True``: a slot that resets into the :data:`IDLE` start becomes
    idle until the next ``reset()``: ``step`` neither moves nor observes it (its row of the observations is a
    placeholder of zeros, its reward 0, its done False, its info empty, its action ignored) and the boolean array
    ``idle`` (one entry per slot) says which slots are idle. The group collector then runs the policy only on
    the active slots; envs without it get throw-away episodes instead.

    A vectorized env implements it natively by subclassing
    :class:`~sb3_maxrl.common.native_vec_env.NativeStartStateVecEnv` (``sb3_maxrl_envs.StrictMazeVecEnv``) and is
    checked with :func:`~sb3_maxrl.common.env_checker.check_start_state_env`; any other VecEnv gets it from
    :class:`StartStateWrapper` around each of its envs, through :class:`WrappedStartStates`.
    """

    num_envs: int

    def schedule_episodes(self, starts_by_slot: Mapping[int, Sequence[EpisodeStart]], replace: bool = False) -> None:
        """
        Queue episode starts per env slot.

        :param starts_by_slot: the starts to queue for each named slot, first used first
        :param replace: replace every slot's queue (slots not named get an empty one) instead of appending
        """


#: The start that leaves a slot idle: a native start-state VecEnv whose ``supports_idle_slots`` is True, resetting a
#: slot into it, neither steps nor observes that slot until its next ``reset()`` (see :class:`StartStateVecEnv`).
IDLE = EpisodeStart(-1)


def is_idle_start(start: EpisodeStart) -> bool:
    """
    Whether a queued start is :data:`IDLE` (a start seed below 0, which no env accepts as a reset seed).

    :param start: the start
    :return: True for the idle marker
    """
    return start.start_seed < 0


def uses_idle_slots(venv: VecEnv) -> bool:
    """
    Whether the group collector may leave slots of this VecEnv idle instead of running throw-away episodes.

    True for a native start-state VecEnv that declares ``supports_idle_slots = True``, stepped directly or under
    SB3's ``VecMonitor`` and wrappers whose class declares ``keeps_idle_slots = True`` (such as
    :class:`~sb3_maxrl.common.noisy_verifier.NoisyVerifier`) only: a wrapper that keeps statistics of observations,
    such as ``VecNormalize``, would count the idle slots' placeholder observations.

    :param venv: the VecEnv
    :return: whether idle slots are used
    """
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

    layer = venv
    while isinstance(layer, VecEnvWrapper):
        # the wrapper's class, not the instance: VecEnvWrapper forwards unknown attributes to the env it wraps
        if not isinstance(layer, VecMonitor) and not getattr(type(layer), "keeps_idle_slots", False):
            return False
        layer = layer.venv
    return bool(getattr(layer, "supports_idle_slots", False)) and isinstance(layer, StartStateVecEnv)


class WrappedStartStates:
    """
    :class:`StartStateVecEnv` for a VecEnv whose envs are each wrapped in :class:`StartStateWrapper`.

    One ``env_method`` call serves all the slots of a schedule (SubprocVecEnv pipelines it to its workers).

    :param venv: the VecEnv
    """

    def __init__(self, venv: VecEnv):
        self.venv = venv
        self.num_envs = venv.num_envs

    def schedule_episodes(self, starts_by_slot: Mapping[int, Sequence[EpisodeStart]], replace: bool = False) -> None:
        """
        Queue episode starts per env slot (see :class:`StartStateVecEnv`).

        :param starts_by_slot: the starts to queue for each named slot, first used first
        :param replace: replace every slot's queue (slots not named get an empty one) instead of appending
        """
        table = {int(slot): [_as_episode_start(start) for start in starts] for slot, starts in starts_by_slot.items()}
        if replace:  # also tells every env its slot, the key of the tables that follow
            for slot in range(self.num_envs):
                self.venv.env_method("set_start_schedule", table.get(slot, []), slot, indices=[slot])
        elif table:
            self.venv.env_method("queue_episode_starts", table, indices=sorted(table))


def start_state_control(venv: VecEnv) -> StartStateVecEnv:
    """
    The start-state control of a VecEnv: its own (a native :class:`StartStateVecEnv`, also under VecEnvWrappers
    such as VecNormalize), else :class:`WrappedStartStates` over its ``StartStateWrapper``-wrapped envs.

    :param venv: the VecEnv to control
    :return: the object to schedule episodes with
    """
    native = venv.unwrapped
    if isinstance(native, StartStateVecEnv):
        return native
    if all(venv.env_is_wrapped(StartStateWrapper)):
        return WrappedStartStates(venv)
    raise ValueError(
        "MaxRL chooses the start state of every episode, so each env of the VecEnv must be wrapped in "
        "sb3_maxrl.StartStateWrapper: make_vec_env(env_id, n_envs, wrapper_class=StartStateWrapper, ...) "
        "(a gym.Env, an env id or a DummyVecEnv is wrapped automatically), or the VecEnv must implement "
        "sb3_maxrl.common.start_states.StartStateVecEnv."
    )


def start_state_keys(venv: VecEnv, seeds: Sequence[int]) -> list[Hashable] | None:
    """
    The identity of the start state each seed resets to (e.g. a maze's layout), where the env declares one.

    An env declares it with a method ``start_state_key(seed) -> Hashable``: on a native ``StartStateVecEnv``, or on
    the unwrapped env of a ``StartStateWrapper``. Two seeds with the same key are the same task.

    :param venv: the VecEnv (its first env answers for all)
    :param seeds: the start seeds
    :return: one key per seed, or None when the env declares no identity
    """
    native = venv.unwrapped
    key_of = getattr(native, "start_state_key", None)
    if key_of is not None:
        return [key_of(int(seed)) for seed in seeds]
    if all(venv.env_is_wrapped(StartStateWrapper)):
        return venv.env_method("start_state_keys", [int(s) for s in seeds], indices=[0])[0]
    return None


def check_held_out(venv: VecEnv, eval_seeds: Sequence[int], train_seeds: Sequence[int] | None) -> None:
    """
    Refuse evaluation start states that are also training ones: the same seed, or (where the env declares a
    start-state identity, see :func:`start_state_keys`) another seed that resets to the same start state.

    :param venv: the evaluation VecEnv
    :param eval_seeds: the held-out start seeds
    :param train_seeds: the finite training set, or None for the infinite stream of seeds in ``[0, EVAL_SEED_BASE)``
    :raises ValueError: when a held-out start state is also a training one
    """
    eval_seeds = [int(s) for s in eval_seeds]
    if train_seeds is None:
        if any(0 <= s < EVAL_SEED_BASE for s in eval_seeds):
            warnings.warn(
                "Some evaluation start seeds lie in [0, 2**31), the range MaxRL's infinite training stream draws "
                "from, so training may visit them: use default_eval_seeds(n) or pass train_seeds.",
                stacklevel=3,
            )
        elif start_state_keys(venv, eval_seeds[:1]) is not None:
            warnings.warn(
                "This env declares start-state identities (start_state_key): different seeds can reset to the same "
                "start state, so the infinite training stream may train on held-out start states. Pass a finite "
                "train_seeds set disjoint from the held-out ones by identity (for strict mazes: "
                "sb3_maxrl_envs.strict_maze.disjoint_layout_seeds).",
                stacklevel=3,
            )
        return
    shared_seeds = set(eval_seeds) & {int(s) for s in train_seeds}
    if shared_seeds:
        raise ValueError(
            f"{len(shared_seeds)} evaluation start seeds are also training seeds (e.g. {min(shared_seeds)}): held-out "
            "start states must not be trained on. Remove them from train_seeds or use default_eval_seeds(n)."
        )
    keys = start_state_keys(venv, eval_seeds + [int(s) for s in train_seeds])
    if keys is None:
        return
    held_out = set(keys[: len(eval_seeds)])
    n_shared = sum(key in held_out for key in keys[len(eval_seeds) :])
    if n_shared:
        raise ValueError(
            f"{n_shared} training seeds reset to the same start state (start_state_key) as an evaluation seed: "
            "different seeds, same task. Choose train_seeds disjoint by identity (for strict mazes: "
            "sb3_maxrl_envs.strict_maze.disjoint_layout_seeds(size, n, exclude_seeds=eval_seeds))."
        )


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
        start_seeds, noise_seeds = np.random.SeedSequence(seed).spawn(2) if seed is not None else (None, None)
        self.rng = np.random.default_rng(seed if seed is None else start_seeds)
        self.noise_rng = np.random.default_rng(noise_seeds)
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

    def take_noise_seeds(self, n_episodes: int) -> list[int]:
        """
        Seeds of the in-episode randomness of ``n_episodes`` episodes, from their own seeded stream.

        :param n_episodes: how many to draw
        :return: seeds as Python ints
        """
        return [int(s) for s in self.noise_rng.integers(0, 2**63 - 1, size=n_episodes)]


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
    Resets to scheduled episode starts, so the algorithm decides the start state of every auto-reset.

    While starts are queued, every reset takes the next one (it overrides a seed a VecEnv passes on its first
    reset): ``reset(seed=start_seed)``, then, if the start has a ``noise_seed``, the env's ``np_random`` is
    reseeded with it so that the episode's own randomness (slippery moves, moving obstacles) is independent of
    the other episodes of its group. With an empty queue, resets behave as the wrapped env's. The final step of
    every episode reports ``info["start_seed"]`` and ``info["start_fingerprint"]`` (a hash of the first
    observation), with which the algorithm checks that ``reset(seed)`` really fixes the start state. ``MaxRL``
    adds this wrapper itself to a ``gym.Env``, an env id or a DummyVecEnv's envs; for a SubprocVecEnv, pass
    ``wrapper_class=StartStateWrapper`` to ``make_vec_env``.

    Randomness the env draws from elsewhere than its ``np_random`` (Python's ``random``, numpy's global RNG,
    an external simulator seeded in ``reset``) is not reseeded.

    :param env: the environment to wrap
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._scheduled: deque[EpisodeStart] = deque()
        self._slot: int | None = None
        self._episode_seed: int | None = None
        self._episode_fingerprint: int | None = None

    def set_start_schedule(self, starts: Sequence[EpisodeStart | int], slot: int | None = None) -> None:
        """
        Replace the queue of episode starts used by the coming resets.

        :param starts: the starts (or bare start seeds, with shared noise), first used first
        :param slot: this env's index in its VecEnv, its key in :meth:`queue_episode_starts`' table
        """
        self._scheduled = deque(_as_episode_start(start) for start in starts)
        self._slot = slot

    def queue_episode_starts(self, starts_by_slot: Mapping[int, Sequence[EpisodeStart]]) -> None:
        """
        Append this env's entry of a table of episode starts to its queue (one ``env_method`` call serves many envs).

        :param starts_by_slot: the starts of each env slot
        """
        if self._slot is None:
            raise RuntimeError("queue_episode_starts needs set_start_schedule(starts, slot) to have named this env's slot.")
        self._scheduled.extend(_as_episode_start(start) for start in starts_by_slot.get(self._slot, []))

    def start_state_keys(self, seeds: Sequence[int]) -> list[Hashable] | None:
        """
        The wrapped env's start-state identity of each seed (``env.unwrapped.start_state_key(seed)``), if declared.

        :param seeds: the start seeds
        :return: one key per seed, or None
        """
        key_of = getattr(self.env.unwrapped, "start_state_key", None)
        return None if key_of is None else [key_of(int(seed)) for seed in seeds]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        noise_seed = None
        if self._scheduled:
            seed, noise_seed = self._scheduled.popleft()
        # options only when given, as SB3's DummyVecEnv does: some envs' reset() takes no options
        observation, info = self.env.reset(seed=seed, **({} if options is None else {"options": options}))
        if noise_seed is not None:
            self.env.np_random = np.random.Generator(np.random.PCG64(noise_seed))
        self._episode_seed = seed
        self._episode_fingerprint = observation_fingerprint(observation)
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info[START_SEED_KEY] = self._episode_seed
            info[START_FINGERPRINT_KEY] = self._episode_fingerprint
        return observation, reward, terminated, truncated, info


def _as_episode_start(start: EpisodeStart | Sequence[int | None] | int) -> EpisodeStart:
    if isinstance(start, int | np.integer):
        return EpisodeStart(int(start))
    start_seed, noise_seed = start
    return EpisodeStart(int(start_seed), None if noise_seed is None else int(noise_seed))  # type: ignore[arg-type]

