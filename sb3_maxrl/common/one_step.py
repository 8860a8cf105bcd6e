"""One-step tasks: a group of ``N`` episodes of one start state for the cost of one policy forward pass.

In a one-step task (classification as RL, one-shot prediction) an episode is one action at the start state's
observation, and its likelihood is a function of the start seed and that action. The ``N`` episodes of a group
share their observation, so one forward pass gives the action distribution of all of them: ``N`` actions are
sampled from it at once, and the update's gradient needs one forward pass per start state, not one per episode.

The update's loss is a sum over *cells* with a weight each. For a Discrete action space a cell is a (start state,
class) pair: the per-episode loss of a group ``-(1 / (G N)) sum_i A_i log pi(a_i | x)`` equals
``-(1 / (G N)) sum_a W_a log pi(a | x)`` with ``W_a`` the summed advantages of the samples of ``a``. With the PPO
ratio clip, ``min(A r, A clip(r, 1 - eps, 1 + eps))`` equals ``A min(r, 1 + eps)`` for ``A > 0`` and
``A max(r, 1 - eps)`` for ``A < 0`` (the ratio ``r`` of a sample depends on its action only), so the sum keeps two
weights per action, the summed positive and the summed negative advantages:
``-(1 / (G N)) sum_a [W+_a min(r_a, 1 + eps) + W-_a max(r_a, 1 - eps)]``. For a Box action space (a Gaussian
policy) every sample is a cell of its own: its log-probability under the group's one forward pass. Both are equal,
in value and gradient, to the per-episode loss on the same samples (``tests/test_one_step.py``).

- :class:`OneStepTask`: the protocol a vectorized one-step task implements (observations and likelihoods of a
  batch of start seeds).
- :class:`OneStepVecEnv`: the task as a VecEnv with native start-state control; ``MaxRL`` trains on it with
  :func:`collect_one_step_groups` into a :class:`~sb3_maxrl.common.one_step_buffer.OneStepBatch` and
  :func:`~sb3_maxrl.common.losses.one_step_losses` (``MaxRL("MlpPolicy", task)`` wraps the task); both are
  imported here as before.
- :func:`~sb3_maxrl.common.distributions.sample_categorical` (imported here as before): many samples per row of a
  categorical distribution, fast.
- :func:`~sb3_maxrl.common.one_step_evaluation.evaluate_one_step` (imported here as before): exact pass@k and
  accuracy on held-out start seeds from the policy's probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_maxrl.common.distributions import (
    DistributionPolicy,
    class_log_probs,
    gaussian,
    sample_categorical,
    sample_log_probs,
)
from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY, SUCCESS_KEY
from sb3_maxrl.common.losses import PolicyLosses, one_step_losses
from sb3_maxrl.common.native_vec_env import NativeStartStateVecEnv
from sb3_maxrl.common.one_step_buffer import OneStepBatch
from sb3_maxrl.common.one_step_evaluation import OneStepEvaluation, evaluate_one_step
from sb3_maxrl.common.start_states import observation_fingerprint
from sb3_maxrl.common.utils import check_positive_int


@runtime_checkable
class OneStepTask(Protocol):
    """
    A task whose episodes last one step, vectorized over start seeds.

    An episode from start seed ``s`` observes ``observations([s])[0]``, takes one action ``a`` and ends with the
    likelihood ``likelihoods([s], [[a]])[0, 0]`` in ``[0, 1]`` (1/0 for success/failure). Both are pure functions
    of the seed (and the action): there is no other randomness.
    """

    observation_space: spaces.Space
    action_space: spaces.Space

    def observations(self, seeds: np.ndarray) -> np.ndarray:
        """
        The start observation of every seed.

        :param seeds: ``(G,)`` start seeds
        :return: ``(G, *observation_space.shape)``
        """

    def likelihoods(self, seeds: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """
        The likelihood of every action taken from every seed's start state.

        :param seeds: ``(G,)`` start seeds
        :param actions: ``(G, N, *action_space.shape)``, row ``g`` taken from seed ``g`` (in the action space: a
            Box action is clipped to its bounds, as SB3 clips the actions it sends to an env)
        :return: ``(G, N)`` likelihoods in ``[0, 1]``
        """


class OneStepVecEnv(NativeStartStateVecEnv):
    """
    A :class:`OneStepTask` as a VecEnv: every step ends every slot's episode, which auto-resets to the next one.

    It implements the start-state control protocol (``sb3_maxrl.common.start_states.StartStateVecEnv``) natively,
    so it also runs in the per-episode collector and in ``evaluate_pass_at_k``. ``MaxRL`` given this VecEnv (or
    the task itself, which it wraps) skips the env steps and collects each update's groups with
    :func:`collect_one_step_groups`. Every final step's info holds ``"likelihood"``, ``"is_success"``
    (likelihood 1), ``"start_seed"``, ``"start_fingerprint"`` and ``"terminal_observation"``. It supports idle
    slots (a slot reset into ``IDLE`` is neither scored nor observed until the next ``reset()``). Attribute access
    (``get_attr``, ``env_method``) reaches the task.

    :param task: the one-step task
    :param num_envs: number of env slots (one episode per slot and step)
    :param seed: seeds the start seeds of resets with nothing scheduled
    """

    def __init__(self, task: OneStepTask, num_envs: int = 1, seed: int | None = None):
        if not isinstance(task, OneStepTask):
            raise TypeError(
                f"{type(task).__name__} is not a OneStepTask: it needs observation_space, action_space, "
                "observations(seeds) and likelihoods(seeds, actions)."
            )
        self.task = task
        super().__init__(check_positive_int("num_envs", num_envs), task.observation_space, task.action_space)
        self._rng = np.random.default_rng(seed)
        self._episode_seeds = np.zeros(self.num_envs, dtype=np.int64)
        self._observations = np.zeros((self.num_envs, *task.observation_space.shape), task.observation_space.dtype)  # type: ignore[misc]
        self._fingerprints = [0] * self.num_envs
        self._actions: np.ndarray | None = None

    supports_idle_slots = True

    def _start_episodes(self, resetting: Iterable[int]) -> None:
        slots, starts = self.pop_starts(list(resetting))
        for slot, start in zip(slots, starts, strict=True):
            seed = self._seeds[slot] if start is None else start.start_seed
            self._episode_seeds[slot] = self._rng.integers(2**31) if seed is None else seed
        self._observations[slots] = self.task.observations(self._episode_seeds[slots])
        self._observations[self.idle] = 0
        for slot in slots:
            self._fingerprints[slot] = observation_fingerprint(self._observations[slot])

    def reset(self) -> VecEnvObs:
        self.wake_all()
        self._start_episodes(range(self.num_envs))
        self._reset_seeds()
        self._reset_options()
        return self._observations.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "call step_async() before step_wait()"
        slots = self.active_slots
        actions = self._actions.reshape(self.num_envs, 1, *self.action_space.shape)[slots]  # type: ignore[misc]
        likelihoods = np.zeros(self.num_envs)
        likelihoods[slots] = np.asarray(self.task.likelihoods(self._episode_seeds[slots], actions), dtype=np.float64)[:, 0]
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for slot in slots.tolist():
            infos[slot] = {
                LIKELIHOOD_KEY: float(likelihoods[slot]),
                SUCCESS_KEY: bool(likelihoods[slot] >= 1.0),
                **self.start_state_info(int(self._episode_seeds[slot]), self._fingerprints[slot]),
                "terminal_observation": self._observations[slot].copy(),
                "TimeLimit.truncated": False,
            }
        dones = ~self.idle
        self._start_episodes(slots)
        return self._observations.copy(), likelihoods.astype(np.float32), dones, infos

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.task, attr_name, None) if attr_name == "render_mode" else getattr(self.task, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.task, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        return [getattr(self.task, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def one_step_task(env: Any) -> OneStepTask | None:
    """
    The one-step task MaxRL can train on with one forward pass per group, if ``env`` is one.

    :param env: a VecEnv (or anything)
    :return: the task of a :class:`OneStepVecEnv` with a Discrete or Box action space, else None (a VecEnvWrapper
        around it, such as VecNormalize, changes what the policy sees: such envs run episode by episode)
    """
    if isinstance(env, OneStepVecEnv) and isinstance(env.action_space, spaces.Discrete | spaces.Box):
        return env.task
    return None


def collect_one_step_groups(
    policy: DistributionPolicy, task: OneStepTask, seeds: Sequence[int], group_size: int
) -> OneStepBatch:
    """
    Run ``group_size`` one-step episodes from each start seed with one policy forward pass per seed.

    :param policy: the policy: categorical for a Discrete action space, Gaussian for a Box one
    :param task: the one-step task
    :param seeds: ``(G,)`` start seeds, one group each
    :param group_size: ``N``, episodes per start seed
    :return: the batch (advantages still to set with :meth:`OneStepBatch.set_advantages`)
    """
    seed_array = np.asarray(seeds, dtype=np.int64)
    observations = task.observations(seed_array)
    expected_shape = (len(seed_array), *task.observation_space.shape)  # type: ignore[misc]
    if np.shape(observations) != expected_shape:
        raise ValueError(
            f"{type(task).__name__}.observations(seeds) returned shape {np.shape(observations)}, expected {expected_shape}: "
            "one observation per seed, of the observation space's shape."
        )
    observation_tensor: th.Tensor = obs_as_tensor(observations, policy.device)  # type: ignore[assignment]
    action_space = task.action_space
    with th.no_grad():
        if isinstance(action_space, spaces.Box):
            normal = gaussian(policy, observation_tensor)
            shape = (len(seed_array), group_size, *normal.loc.shape[1:])  # group-major, as N repeated rows would draw
            actions = th.normal(normal.loc.unsqueeze(1).expand(shape), normal.scale.unsqueeze(1).expand(shape))
            old_log_probs = sample_log_probs(normal, actions)
            task_actions = actions.cpu().numpy().reshape(len(seed_array), group_size, *action_space.shape)
            task_actions = np.clip(task_actions, action_space.low, action_space.high)
        else:
            old_log_probs = class_log_probs(policy, observation_tensor)
            actions = sample_categorical(old_log_probs, group_size)
            task_actions = actions.cpu().numpy()
    likelihoods = np.asarray(task.likelihoods(seed_array, task_actions), dtype=np.float64)
    if likelihoods.shape != (len(seed_array), group_size):
        raise ValueError(
            f"{type(task).__name__}.likelihoods(seeds, actions) returned shape {likelihoods.shape}, expected "
            f"{(len(seed_array), group_size)}: one likelihood per action."
        )
    return OneStepBatch.from_samples(seed_array, observation_tensor, actions, likelihoods, old_log_probs)


#: the names this module had before the sampler moved to ``sb3_maxrl.common.distributions``
__all__ = [
    "OneStepBatch",
    "OneStepEvaluation",
    "OneStepTask",
    "OneStepVecEnv",
    "PolicyLosses",
    "collect_one_step_groups",
    "evaluate_one_step",
    "one_step_losses",
    "one_step_task",
    "sample_categorical",
]
_class_log_probs = class_log_probs
