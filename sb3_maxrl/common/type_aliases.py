"""Data shared between the group collector, the buffer, the algorithm and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EpisodeBatch:
    """
    The complete episodes of one round of group rollouts: ``n_groups`` start states x ``group_size`` episodes.

    Episode ``e`` belongs to group ``e // group_size``; arrays are indexed by episode id.

    :param group_seeds: ``(n_groups,)`` start seed of each group
    :param group_size: episodes per start state
    :param likelihoods: ``(n_episodes,)`` per-episode likelihood in ``[0, 1]``
    :param lengths: ``(n_episodes,)`` env steps of each episode
    :param env_steps: all env steps taken (one per env slot and VecEnv step), kept or discarded
    :param completed: False when a callback stopped the collection early (the batch is then incomplete)
    """

    group_seeds: np.ndarray
    group_size: int
    likelihoods: np.ndarray
    lengths: np.ndarray
    env_steps: int
    completed: bool = True

    @property
    def n_groups(self) -> int:
        """Number of start states."""
        return len(self.group_seeds)

    @property
    def likelihood_matrix(self) -> np.ndarray:
        """``(n_groups, group_size)`` likelihoods, one row per start state."""
        return self.likelihoods.reshape(self.n_groups, self.group_size)

    @property
    def utilization(self) -> float:
        """Share of env steps that belong to a kept episode (and so enter a gradient)."""
        return float(self.lengths.sum() / max(self.env_steps, 1))
