"""The one-step batch: the groups of one update of a one-step task, beside
:class:`~sb3_maxrl.common.buffers.GroupRolloutBuffer` with the same interface for training (``get(batch_size)``,
``n_steps``, ``any_nonzero_advantage``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch as th


@dataclasses.dataclass
class OneStepBatch:
    """
    The groups of one update of a one-step task, with the advantages summed per cell.

    Row ``g`` of every array is group ``g``. A cell is a (start state, class) pair for a Discrete action space (its
    samples share their log-probability) and one sample for a Box action space, so the cell axis has ``M = C``
    classes or ``M = N`` samples. Build it with :meth:`from_samples`, then :meth:`set_advantages`.

    :param seeds: ``(G,)`` start seed of every group
    :param observations: ``(G, *obs_shape)`` the groups' observations, as the policy takes them
    :param actions: ``(G, N)`` the sampled classes (int64), or ``(G, N, *action_shape)`` the sampled Box actions,
        unclipped (the task scored them clipped to the Box, their log-probabilities are those of the samples)
    :param likelihoods: ``(G, N)`` the likelihood of every episode
    :param old_log_probs: ``(G, M)`` log-probability of every cell under the policy that sampled the actions
    :param advantage_sums: ``(G, M)`` the summed advantages of the episodes of each cell
    :param positive_advantages: ``(G, M)`` the summed positive advantages of each cell (the ratio clip treats
        positive and negative advantages differently), None if not summed
    :param any_nonzero_advantage: whether some episode has a non-zero advantage
    """

    seeds: np.ndarray
    observations: th.Tensor
    actions: th.Tensor
    likelihoods: np.ndarray
    old_log_probs: th.Tensor
    advantage_sums: th.Tensor
    positive_advantages: th.Tensor | None = None
    any_nonzero_advantage: bool = False

    @classmethod
    def from_samples(
        cls, seeds: np.ndarray, observations: th.Tensor, actions: th.Tensor, likelihoods: np.ndarray, old_log_probs: th.Tensor
    ) -> OneStepBatch:
        """
        A batch with no advantages yet.

        :param seeds: ``(G,)`` start seeds
        :param observations: ``(G, *obs_shape)`` observations
        :param actions: ``(G, N)`` sampled classes or ``(G, N, *action_shape)`` sampled Box actions
        :param likelihoods: ``(G, N)`` likelihoods
        :param old_log_probs: ``(G, M)`` log-probabilities of the cells under the sampling policy
        :return: the batch
        """
        return cls(seeds, observations, actions, likelihoods, old_log_probs, th.zeros_like(old_log_probs))

    @property
    def n_groups(self) -> int:
        """G, start states of the batch."""
        return self.likelihoods.shape[0]

    @property
    def group_size(self) -> int:
        """N, episodes per start state."""
        return self.likelihoods.shape[1]

    @property
    def n_steps(self) -> int:
        """Env steps of the batch: one per episode, ``G N``."""
        return self.likelihoods.size

    @property
    def per_class(self) -> bool:
        """Whether a cell is a class (Discrete actions) rather than a sample (Box actions)."""
        return not self.actions.is_floating_point()

    def _cell_sums(self, values: th.Tensor) -> th.Tensor:
        if not self.per_class:
            return values
        n_groups, n_classes = self.old_log_probs.shape
        cells = (th.arange(n_groups, device=values.device)[:, None] * n_classes + self.actions).reshape(-1)
        summed = th.zeros(n_groups * n_classes, dtype=values.dtype, device=values.device)
        return summed.index_add_(0, cells, values.reshape(-1)).reshape(n_groups, n_classes)

    def set_advantages(self, advantages: np.ndarray | th.Tensor, split_signs: bool = True) -> None:
        """
        Sum the episodes' advantages per cell.

        :param advantages: ``(G, N)`` advantage of every episode
        :param split_signs: also sum the positive advantages apart, as the ratio-clipped loss needs
        """
        values = th.as_tensor(advantages, dtype=self.old_log_probs.dtype, device=self.actions.device)
        if values.shape != self.likelihoods.shape:
            raise ValueError(f"advantages must have shape {self.likelihoods.shape}, got {tuple(values.shape)}.")
        self.advantage_sums = self._cell_sums(values)
        self.positive_advantages = self._cell_sums(values.clamp(min=0.0)) if split_signs else None
        low, high = th.aminmax(values)  # one pass over the values
        self.any_nonzero_advantage = bool(low != 0 or high != 0)

    def minibatches(self, batch_size: int | None = None) -> Iterator[OneStepBatch]:
        """
        Iterate over minibatches of whole groups, in random order.

        :param batch_size: episodes per minibatch, rounded down to whole groups (at least one); None for one batch
        :return: a generator of batches
        """
        if batch_size is None:
            yield self
            return
        groups_per_batch = max(1, batch_size // self.group_size)
        order = th.randperm(self.n_groups)
        for start in range(0, self.n_groups, groups_per_batch):
            index = order[start : start + groups_per_batch]
            rows = index.to(self.actions.device)
            yield dataclasses.replace(
                self,
                seeds=self.seeds[index.numpy()],
                observations=self.observations[rows],
                actions=self.actions[rows],
                likelihoods=self.likelihoods[index.numpy()],
                old_log_probs=self.old_log_probs[rows],
                advantage_sums=self.advantage_sums[rows],
                positive_advantages=None if self.positive_advantages is None else self.positive_advantages[rows],
            )


class OneStepRolloutBuffer:
    """
    The rollout buffer of ``MaxRL`` on a one-step task: the last update's :class:`OneStepBatch`, with the training
    interface of :class:`~sb3_maxrl.common.buffers.GroupRolloutBuffer`.
    """

    def __init__(self) -> None:
        self.batch: OneStepBatch | None = None

    def reset(self) -> None:
        """Drop the stored batch."""
        self.batch = None

    @property
    def n_steps(self) -> int:
        """Env steps of the update: one per episode."""
        return 0 if self.batch is None else self.batch.n_steps

    @property
    def any_nonzero_advantage(self) -> bool:
        """Whether some episode of the update has a non-zero advantage."""
        return self.batch is not None and self.batch.any_nonzero_advantage

    def get(self, batch_size: int | None = None) -> Iterator[OneStepBatch]:
        """
        Iterate over minibatches of whole groups, in random order (see :meth:`OneStepBatch.minibatches`).

        :param batch_size: episodes per minibatch, rounded down to whole groups; None for one batch
        :return: a generator of batches
        """
        assert self.batch is not None, "collect an update before get()"
        return self.batch.minibatches(batch_size)
