"""Action distributions of a policy as tensors: many samples per row of a categorical, log-probabilities of every
class, the Gaussian of a Box policy. The one-step path (one forward pass per group) and the exact evaluators use them.
"""

from __future__ import annotations

from typing import Protocol

import torch as th
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution, Distribution

#: Slices of the probability mass per class in the guide table of :func:`sample_categorical`.
_GUIDE_SLICES_PER_CLASS = 2
#: The guide table's lower bounds are widened by this much (in units of one slice of probability mass), far above
#: float64 rounding, so they never exclude the answer.
_GUIDE_MARGIN = 1e-6


class DistributionPolicy(Protocol):
    """A policy that gives its action distribution (``get_distribution``) on its device."""

    @property
    def device(self) -> th.device: ...

    def get_distribution(self, obs: th.Tensor) -> Distribution: ...


def sample_categorical(log_probs: th.Tensor, n_samples: int) -> th.Tensor:
    """
    Draw ``n_samples`` i.i.d. classes from each row of a categorical distribution (inverse transform sampling).

    Each class is the first whose cumulative probability exceeds a uniform draw, found through a guide table
    (Chen and Asau's cutpoint method) of ``2 C`` equal slices of the probability mass: the draw's slice gives a
    lower bound, which or the class after it is the answer for most draws; the rest are binary-searched. Exactly
    the classes a binary search of the cumulative sums (float64) would give for the same uniform draws, with no
    per-sample search for most of them (``torch.multinomial`` searches every draw). Classes of probability 0 are
    never drawn. Uses torch's global random generator.

    :param log_probs: ``(G, C)`` log-probabilities (normalized up to rounding)
    :param n_samples: draws per row
    :return: ``(G, n_samples)`` int64 classes
    """
    n_rows, n_classes = log_probs.shape
    n_slices = _GUIDE_SLICES_PER_CLASS * n_classes
    cdf = log_probs.detach().double().exp().cumsum(dim=1)
    total = cdf[:, -1:]
    uniforms = th.rand(n_rows, n_samples, dtype=th.float64, device=cdf.device)
    slices = (uniforms * n_slices).long()  # the draw lies in [slice, slice + 1) * total / n_slices
    draws = uniforms.mul_(th.nextafter(total, th.zeros_like(total)))  # below the total: some class's cdf exceeds it
    classes = _guide_table(cdf, n_slices).gather(1, slices)  # a lower bound of each answer (at most C - 1)
    classes += cdf.gather(1, classes) <= draws
    unresolved = (cdf.gather(1, classes) <= draws).nonzero(as_tuple=True)
    if len(unresolved[0]) > 0:  # the few others: one batched binary search, their draws padded into rows
        rows = unresolved[0]
        per_row = th.bincount(rows, minlength=n_rows)
        rank = th.arange(len(rows), device=cdf.device) - (per_row.cumsum(0) - per_row)[rows]  # nonzero is row-major
        padded = th.zeros(n_rows, int(per_row.max()), dtype=cdf.dtype, device=cdf.device)
        padded[rows, rank] = draws[unresolved]
        classes[unresolved] = th.searchsorted(cdf, padded, right=True)[rows, rank]
    return classes


def _guide_table(cdf: th.Tensor, n_slices: int) -> th.Tensor:
    """
    ``guide[g, j] = #{c : cdf[g, c] n_slices / total_g + margin < j}``: the classes that surely end before slice
    ``j`` of row ``g`` starts, so below any draw in it (the answer for such a draw is at least ``guide[g, j]``).

    The scaled cumulative sums are at most ``n_slices`` (up to rounding, far below the margin), so a row needs
    ``n_slices + 2`` cells (``j = 0 .. n_slices + 1``) and no clamp.

    :param cdf: ``(G, C)`` cumulative probabilities, float64, non-decreasing along each row
    :param n_slices: slices of each row's probability mass
    :return: ``(G, n_slices + 2)`` int64
    """
    n_rows, width = cdf.shape[0], n_slices + 2
    ends = (cdf * (n_slices / cdf[:, -1:])).add_(_GUIDE_MARGIN).long()  # floor: the values are >= 0
    ends += th.arange(1, n_rows * width, width, device=cdf.device)[:, None]  # the cell after the end, in row g's table
    return th.bincount(ends.reshape(-1), minlength=n_rows * width).reshape(n_rows, width).cumsum_(dim=1)


def class_log_probs(policy: DistributionPolicy, observations: th.Tensor) -> th.Tensor:
    """
    ``log pi(a | x)`` of every class ``a`` at each observation ``x``: ``(G, C)``, from a categorical policy.

    A policy with a ``categorical_log_probs(obs)`` method (``MaxRLPolicy``) gives them without building torch's
    ``Categorical``: the same numbers (``tests/test_one_step.py`` checks they are identical).
    """
    fast = getattr(policy, "categorical_log_probs", None)
    class_log_probs = None if fast is None else fast(observations)
    if class_log_probs is not None:
        return class_log_probs
    distribution = policy.get_distribution(observations)
    if not isinstance(distribution, CategoricalDistribution):
        raise TypeError(
            f"A one-step task with a Discrete action space needs a categorical policy, got {type(distribution).__name__}; "
            "run it episode by episode (a DummyVecEnv of the task's gym.Env)."
        )
    return distribution.distribution.logits  # torch's Categorical normalizes its logits to log-probabilities


def gaussian(policy: DistributionPolicy, observations: th.Tensor) -> th.distributions.Normal:
    """The policy's Gaussian at each observation: a torch ``Normal`` of batch shape ``(G, action_dim)``."""
    distribution = policy.get_distribution(observations)
    if not isinstance(distribution, DiagGaussianDistribution):
        raise TypeError(
            f"A one-step task with a Box action space needs a Gaussian policy (DiagGaussianDistribution), got "
            f"{type(distribution).__name__}; run it episode by episode (a DummyVecEnv of the task's gym.Env)."
        )
    return distribution.distribution


def sample_log_probs(normal: th.distributions.Normal, actions: th.Tensor) -> th.Tensor:
    """``log pi(a_gi | x_g)`` of every sample ``(G, N, action_dim)`` under the Gaussian of its group: ``(G, N)``."""
    return th.distributions.Normal(normal.loc.unsqueeze(1), normal.scale.unsqueeze(1)).log_prob(actions).sum(dim=-1)
