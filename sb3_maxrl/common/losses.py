"""MaxRL's loss on a minibatch: per-episode advantages times log-probabilities (optionally ratio-clipped), and
the entropy bonus on the same scale, for the steps of complete episodes and for one-step groups side by side.

Both forms are ``-(1 / (G N)) sum_episodes A_e sum_t f(log pi(a_t | s_t))``: :func:`episode_losses` sums over the
steps of a :class:`~sb3_maxrl.common.buffers.GroupRolloutSamples` minibatch, :func:`one_step_losses` over the cells
of a :class:`~sb3_maxrl.common.one_step_buffer.OneStepBatch` (one forward pass per group, exactly the same loss, see
``sb3_maxrl.common.one_step``). :func:`minibatch_losses` takes either.
"""

from __future__ import annotations

from typing import NamedTuple

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl.common.buffers import GroupRolloutSamples
from sb3_maxrl.common.distributions import DistributionPolicy, class_log_probs, gaussian, sample_log_probs
from sb3_maxrl.common.one_step_buffer import OneStepBatch


class PolicyLosses(NamedTuple):
    """The terms of an update's loss (each averaged over its ``G N`` episodes) and the fraction of clipped ratios."""

    policy_loss: th.Tensor
    entropy_loss: th.Tensor
    clip_fraction: float | None


def minibatch_losses(
    policy: BasePolicy,
    batch: GroupRolloutSamples | OneStepBatch,
    clip_range: float | None,
    n_steps: int,
    n_episodes: int,
    entropy_gradient: bool = True,
) -> PolicyLosses:
    """
    The policy and entropy losses of a minibatch of either kind, scaled to the whole update's ``1 / (G N)``.

    :param policy: the policy being trained (``evaluate_actions`` for steps; a categorical or Gaussian policy for
        one-step groups)
    :param batch: a minibatch of steps of complete episodes, or of one-step groups
    :param clip_range: the PPO ratio clip, None for the plain score-function loss
    :param n_steps: steps of the whole update
    :param n_episodes: episodes of the whole update (``G N``)
    :param entropy_gradient: whether the entropy loss needs a gradient (one-step groups; steps always have one)
    :return: the losses and, with a clip range, the fraction of clipped ratios
    """
    if isinstance(batch, OneStepBatch):
        return one_step_losses(policy, batch, clip_range, entropy_gradient=entropy_gradient)  # type: ignore[arg-type]
    return episode_losses(policy, batch, clip_range, n_steps, n_episodes)


def episode_losses(
    policy: BasePolicy, batch: GroupRolloutSamples, clip_range: float | None, n_steps: int, n_episodes: int
) -> PolicyLosses:
    """
    The policy and entropy losses of a minibatch of steps, and the fraction of clipped ratios (None: no clip).

    :param policy: the policy being trained (its ``evaluate_actions``)
    :param batch: the minibatch of steps
    :param clip_range: the ratio clip, None for the plain score-function loss
    :param n_steps: steps of the whole update
    :param n_episodes: episodes of the whole update (``G N``)
    :return: the losses, scaled to the whole update's ``1 / (G N)``
    """
    actions = batch.actions
    if isinstance(policy.action_space, spaces.Discrete):
        actions = actions.long().flatten()
    log_prob, entropy = policy.evaluate_actions(batch.observations, actions)  # type: ignore[operator]
    # sum over this minibatch's steps, scaled to an unbiased estimate of the full update's sum / (G N)
    scale = n_steps / (len(batch.advantages) * n_episodes)
    clip_fraction = None
    if clip_range is None:
        policy_loss = -(batch.advantages * log_prob).sum() * scale
    else:
        ratio = th.exp(log_prob - batch.old_log_prob)
        clipped_ratio = th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        policy_loss = -th.min(batch.advantages * ratio, batch.advantages * clipped_ratio).sum() * scale
        clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
    entropy_loss = -(-log_prob if entropy is None else entropy).sum() * scale
    return PolicyLosses(policy_loss, entropy_loss, clip_fraction)


def one_step_losses(
    policy: DistributionPolicy, batch: OneStepBatch, clip_range: float | None, entropy_gradient: bool = True
) -> PolicyLosses:
    """
    The per-episode policy and entropy losses of MaxRL on a one-step batch, from one forward pass per group.

    Equal in value and gradient to ``-(1 / (G N)) sum_episodes A min(r, clip(r))`` (or ``-A log pi`` without a
    clip range) and ``-(1 / (G N)) sum_episodes H`` on the same episodes; see ``sb3_maxrl.common.one_step``.

    :param policy: the policy being trained
    :param batch: the update's groups, advantages set
    :param clip_range: the PPO ratio clip ``eps``, None for the plain score-function loss
    :param entropy_gradient: whether the entropy loss needs a gradient (False: computed without one, for logging)
    :return: the losses and, with a clip range, the fraction of episodes whose ratio was clipped
    """
    if batch.per_class:
        every_class = class_log_probs(policy, batch.observations)
        log_probs = every_class
    else:
        normal = gaussian(policy, batch.observations)
        log_probs = sample_log_probs(normal, batch.actions)
    n_episodes = batch.n_groups * batch.group_size
    clip_fraction = None
    if clip_range is None:
        policy_loss = -(batch.advantage_sums * log_probs).sum() / n_episodes
    else:
        positive = batch.positive_advantages
        if positive is None:
            raise ValueError(
                "A clipped loss sums positive advantages apart: call set_advantages(advantages, split_signs=True)."
            )
        negative = batch.advantage_sums - positive
        ratio = th.exp(log_probs - batch.old_log_probs)
        clipped = positive * ratio.clamp(max=1.0 + clip_range) + negative * ratio.clamp(min=1.0 - clip_range)
        policy_loss = -clipped.sum() / n_episodes
        with th.no_grad():
            episode_ratios = ratio.gather(1, batch.actions) if batch.per_class else ratio
            clip_fraction = float((th.abs(episode_ratios - 1.0) > clip_range).double().mean())
    with th.set_grad_enabled(entropy_gradient and th.is_grad_enabled()):
        if batch.per_class:  # minus the mean entropy of the groups
            entropy_loss = (every_class.exp() * every_class).sum(dim=1).mean()
        else:
            entropy_loss = -normal.entropy().sum(dim=-1).mean()
    return PolicyLosses(policy_loss, entropy_loss, clip_fraction)
