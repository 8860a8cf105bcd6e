"""The group-rollout buffer: the steps of complete episodes, each tagged with its episode."""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from sb3_maxrl.common.type_aliases import EpisodeBatch


class GroupRolloutSamples(NamedTuple):
    """A minibatch of steps with the advantage of the episode each step belongs to."""

    observations: th.Tensor | dict[str, th.Tensor]
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor


class GroupRolloutBuffer:
    """
    Stores every env step of an update (step-major, as VecEnv returns them) with the episode it belongs to.

    Steps of discarded episodes (started when no episode of this update was left) carry episode id -1 and are
    not stored. :meth:`finalize` turns the kept steps into flat tensors whose advantage is the
    advantage of their episode, so ``sum_steps A log pi`` equals ``sum_episodes A_e sum_t log pi(a_t|s_t)``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device of the samples
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, device: th.device | str = "auto"):
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = th.device("cpu") if device == "auto" else th.device(device)
        self.reset()

    def reset(self) -> None:
        """Drop all stored steps."""
        self._observations: list[VecEnvObs] = []
        self._actions: list[np.ndarray] = []
        self._log_probs: list[np.ndarray] = []
        self._episode_ids: list[np.ndarray] = []
        self.samples: GroupRolloutSamples | None = None
        self.step_episode_ids: np.ndarray = np.zeros(0, dtype=np.int64)

    def add(self, observations: VecEnvObs, actions: np.ndarray, log_probs: np.ndarray, episode_ids: np.ndarray) -> None:
        """
        Store one VecEnv step: the rows of kept episodes (episode id >= 0), copied; the others are dropped here.

        :param observations: the observations the actions were taken at
        :param actions: the sampled actions (before clipping to the action space)
        :param log_probs: their log-probabilities under the policy that sampled them
        :param episode_ids: for each row, the id of the episode this step belongs to, -1 for discarded
        """
        episode_ids = np.asarray(episode_ids, dtype=np.int64)
        kept: slice | np.ndarray = slice(None) if episode_ids.min(initial=0) >= 0 else np.flatnonzero(episode_ids >= 0)
        if isinstance(observations, dict):
            self._observations.append({key: np.array(value[kept]) for key, value in observations.items()})
        else:
            self._observations.append(np.array(observations[kept]))
        self._actions.append(np.array(actions[kept]))
        self._log_probs.append(np.array(log_probs[kept]))
        self._episode_ids.append(np.array(episode_ids[kept]))

    @property
    def n_stored_steps(self) -> int:
        """Steps of kept episodes stored so far."""
        return sum(len(ids) for ids in self._episode_ids)

    def finalize(self, episodes: EpisodeBatch, episode_advantages: np.ndarray) -> None:
        """
        Attach the advantage of their episode to the stored steps, as flat tensors in the order they were stored.

        :param episodes: the complete episodes of the update (episode ``e`` is row ``e`` of the advantages)
        :param episode_advantages: ``(n_episodes,)`` advantage of every episode
        """
        self.step_episode_ids = np.concatenate(self._episode_ids) if self._episode_ids else np.zeros(0, dtype=np.int64)
        if isinstance(self.observation_space, spaces.Dict):
            observations: np.ndarray | dict[str, np.ndarray] = {
                key: np.concatenate([obs[key] for obs in self._observations])  # type: ignore[index, call-overload]
                for key in self.observation_space.spaces
            }
        else:
            observations = np.concatenate(self._observations)  # type: ignore[arg-type]
        self.samples = GroupRolloutSamples(
            observations=obs_as_tensor(observations, self.device),
            actions=th.as_tensor(np.concatenate(self._actions), device=self.device),
            old_log_prob=th.as_tensor(np.concatenate(self._log_probs), device=self.device, dtype=th.float32),
            advantages=th.as_tensor(episode_advantages[self.step_episode_ids], device=self.device, dtype=th.float32),
        )
        self._observations, self._actions, self._log_probs, self._episode_ids = [], [], [], []

    @property
    def n_steps(self) -> int:
        """Steps of the finalized update (all of them enter the gradient)."""
        return len(self.step_episode_ids)

    @property
    def any_nonzero_advantage(self) -> bool:
        """Whether some step of the finalized update has a non-zero advantage."""
        return self.samples is not None and bool(th.any(self.samples.advantages != 0))

    def get(self, batch_size: int | None = None, shuffle: bool = True) -> Generator[GroupRolloutSamples, None, None]:
        """
        Iterate over minibatches of kept steps.

        :param batch_size: steps per minibatch, ``None`` for the whole update in one batch
        :param shuffle: whether to shuffle steps across minibatches
        :return: a generator of :class:`GroupRolloutSamples`
        """
        assert self.samples is not None, "call finalize() before get()"
        if batch_size is None:
            yield self.samples
            return
        n_steps = len(self.step_episode_ids)
        indices = th.randperm(n_steps) if shuffle else th.arange(n_steps)
        for start in range(0, n_steps, batch_size):
            index = indices[start : start + batch_size].to(self.device)
            observations = self.samples.observations
            if isinstance(observations, dict):
                batch_observations: th.Tensor | dict[str, th.Tensor] = {k: v[index] for k, v in observations.items()}
            else:
                batch_observations = observations[index]
            samples = self.samples
            yield GroupRolloutSamples(
                batch_observations, samples.actions[index], samples.old_log_prob[index], samples.advantages[index]
            )
