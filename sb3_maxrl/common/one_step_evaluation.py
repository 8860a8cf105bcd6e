"""Exact evaluation of a policy on a one-step task: pass@k and accuracy from its action probabilities, no sampling
(beside :mod:`sb3_maxrl.common.exact_evaluation`, whose summary it returns)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from sb3_maxrl.common.distributions import DistributionPolicy, class_log_probs
from sb3_maxrl.common.exact_evaluation import ExactPassAtKResult, pass_at_k_from_probabilities
from sb3_maxrl.common.utils import check_positive_int

if TYPE_CHECKING:
    from sb3_maxrl.common.one_step import OneStepTask


@dataclasses.dataclass
class OneStepEvaluation(ExactPassAtKResult):
    """
    The exact outcome of :func:`evaluate_one_step`: an ``ExactPassAtKResult`` (``success_probabilities`` are
    ``p(x) = sum_a pi(a | x) l(x, a)``, every episode one step long) with the accuracy of the policy's mode.

    :param mode_likelihoods: ``(S,)`` the likelihood of the policy's most probable action at each start state
    """

    mode_likelihoods: np.ndarray | None = None

    @property
    def accuracy(self) -> float:
        """Mean likelihood of the most probable action (for a classifier: the accuracy of its argmax)."""
        return float("nan") if self.mode_likelihoods is None else float(self.mode_likelihoods.mean())

    def metrics(self) -> dict[str, float]:
        """
        The scalar results by name: those of ``ExactPassAtKResult.metrics()`` and ``accuracy``.

        :return: ``pass@{k}``, ``neg_log_pass@{k}``, ``mean_likelihood``, ``nll``, ``mean_ep_length``, ``accuracy``
        """
        return {**super().metrics(), "accuracy": self.accuracy}


def evaluate_one_step(
    model: BaseAlgorithm | DistributionPolicy,
    task: OneStepTask,
    seeds: Sequence[int] | np.ndarray,
    ks: Sequence[int] | None = None,
    batch_size: int = 512,
) -> OneStepEvaluation:
    """
    Exact pass@k and accuracy of a categorical policy on a one-step task, from its probabilities (no sampling).

    Every action's likelihood is asked of the task, so ``p(x) = sum_a pi(a | x) l(x, a)`` is exact, and so is
    pass@k ``= mean_x 1 - (1 - p(x))^k`` for binary likelihoods
    (:func:`~sb3_maxrl.common.exact_evaluation.pass_at_k_from_probabilities`).

    :param model: a model (its ``policy`` is used) or a policy, with a Discrete action space
    :param task: the one-step task
    :param seeds: the held-out start seeds
    :param ks: the ks of pass@k, each >= 1; None for ``1, 2, 4, ..., 1024``
    :param batch_size: start seeds per forward pass
    :return: the per-seed success probabilities and the summary
    """
    policy: DistributionPolicy = model.policy if isinstance(model, BaseAlgorithm) else model  # type: ignore[assignment]
    if not isinstance(task.action_space, spaces.Discrete):
        raise TypeError(f"evaluate_one_step needs a Discrete action space, got {task.action_space}; use evaluate_pass_at_k.")
    check_positive_int("batch_size", batch_size, "start seeds per forward pass")
    seed_array = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if len(seed_array) == 0:
        raise ValueError("seeds is empty: pass at least one held-out start seed.")
    all_actions = np.arange(int(task.action_space.n))
    probabilities, modes = [], []
    for start in range(0, len(seed_array), batch_size):
        chunk = seed_array[start : start + batch_size]
        with th.no_grad():
            observations = obs_as_tensor(task.observations(chunk), policy.device)
            class_probs = class_log_probs(policy, observations).double().exp().cpu().numpy()  # type: ignore[arg-type]
        likelihoods = np.asarray(task.likelihoods(chunk, np.broadcast_to(all_actions, class_probs.shape)), dtype=np.float64)
        probabilities.append(np.clip((class_probs * likelihoods).sum(axis=1), 0.0, 1.0))
        modes.append(likelihoods[np.arange(len(chunk)), class_probs.argmax(axis=1)])
    success = np.concatenate(probabilities)
    exact = pass_at_k_from_probabilities(success, ks, start_seeds=seed_array, expected_lengths=np.ones(len(success)))
    fields = {field.name: getattr(exact, field.name) for field in dataclasses.fields(exact)}
    return OneStepEvaluation(**fields, mode_likelihoods=np.concatenate(modes))
