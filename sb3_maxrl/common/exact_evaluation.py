"""pass@k from exact per-start-state success probabilities, where a task lets one compute them.

For a deterministic task and a Markov policy, the probability ``p_s`` that an episode from start state ``s``
succeeds can be computed exactly (for the strict mazes by dynamic programming over (step, cell):
:func:`sb3_maxrl_envs.strict_maze.exact_success_probabilities`). Then ``pass@k = mean_s(1 - (1 - p_s)^k)``
exactly, for any k, with no sampling noise: the quantity that :func:`~sb3_maxrl.common.evaluation.evaluate_pass_at_k`
estimates from ``n`` samples per start state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl.common.evaluation import geometric_ks

#: The ks reported when none are given: powers of two up to 1024
DEFAULT_EXACT_KS: tuple[int, ...] = tuple(geometric_ks(1024))
#: What exact evaluators take as a policy: an SB3 model or policy, or ``observations -> action probabilities``
PolicyLike = BaseAlgorithm | BasePolicy | Callable[[np.ndarray], np.ndarray]


def action_probabilities_function(
    policy: PolicyLike, check: Callable[[BasePolicy], None] | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """
    ``observations -> (M, n_actions)`` action probabilities (float64) of a policy with a discrete action distribution,
    as the exact evaluators need them (one batched forward pass, no sampling).

    :param policy: an SB3 model or policy with ``get_distribution`` (MaxRL's, PPO's, A2C's), or a function
        ``observations -> action probabilities``, returned as it is
    :param check: the task's own checks of an SB3 policy (its observation and action spaces), raising what to do
    :return: the function
    """
    if isinstance(policy, BaseAlgorithm):
        policy = policy.policy
    if not isinstance(policy, BasePolicy):
        if not callable(policy):
            raise TypeError(
                "policy must be an SB3 model, an SB3 policy or a function observations -> action probabilities, "
                f"got {policy!r}."
            )
        return policy
    if check is not None:
        check(policy)
    if not hasattr(policy, "get_distribution"):
        raise TypeError(
            f"{type(policy).__name__} has no get_distribution(): exact evaluation needs a stochastic policy "
            "(MaxRL's, PPO's or A2C's), or pass a function observations -> action probabilities."
        )
    torch_policy: Any = policy

    def probabilities(observations: np.ndarray) -> np.ndarray:
        torch_policy.set_training_mode(False)
        with th.no_grad():
            tensor, _ = torch_policy.obs_to_tensor(observations)
            return torch_policy.get_distribution(tensor).distribution.probs.double().cpu().numpy()

    return probabilities


@dataclass
class ExactPassAtKResult:
    """
    The outcome of :func:`pass_at_k_from_probabilities`: exact pass@k, with the fields and the ``metrics()`` keys of
    :class:`~sb3_maxrl.common.evaluation.PassAtKResult` where they make sense, so callbacks and logging can use either.

    No floors: ``neg_log_pass_at_k[k]`` is ``inf`` only when every start state has ``p = 0``, and ``nll`` is
    ``inf`` when some start state has ``p = 0`` (the policy gives every successful path probability zero).

    :param success_probabilities: ``(S,)`` the exact success probability of each start state
    :param pass_at_k: ``{k: mean_s(1 - (1 - p_s)^k)}``
    :param neg_log_pass_at_k: ``{k: -log pass@k}``, the log of the average (as in ``PassAtKResult``)
    :param mean_likelihood: ``mean_s p_s`` (= pass@1)
    :param nll: ``-mean_s log p_s``, MaxRL's objective
    :param start_seeds: ``(S,)`` the start seeds, if known
    :param expected_lengths: ``(S,)`` the expected episode length of each start state, if known
    """

    success_probabilities: np.ndarray
    pass_at_k: dict[int, float]
    neg_log_pass_at_k: dict[int, float]
    mean_likelihood: float
    nll: float
    start_seeds: np.ndarray | None = None
    expected_lengths: np.ndarray | None = None

    @property
    def mean_ep_length(self) -> float:
        """Expected episode length averaged over start states (NaN when the lengths are not known)."""
        return float("nan") if self.expected_lengths is None else float(np.mean(self.expected_lengths))

    def metrics(self) -> dict[str, float]:
        """
        The scalar results by name, with the keys of ``PassAtKResult.metrics()``.

        :return: ``pass@{k}`` and ``neg_log_pass@{k}`` for every k, ``mean_likelihood``, ``nll``, ``mean_ep_length``
        """
        scalars = {f"pass@{k}": value for k, value in self.pass_at_k.items()}
        scalars.update({f"neg_log_pass@{k}": value for k, value in self.neg_log_pass_at_k.items()})
        scalars.update(mean_likelihood=self.mean_likelihood, nll=self.nll, mean_ep_length=self.mean_ep_length)
        return scalars


def pass_at_k_from_probabilities(
    success_probabilities: Sequence[float] | np.ndarray,
    ks: Sequence[int] | None = None,
    *,
    start_seeds: Sequence[int] | np.ndarray | None = None,
    expected_lengths: Sequence[float] | np.ndarray | None = None,
) -> ExactPassAtKResult:
    """
    Exact pass@k ``= mean_s(1 - (1 - p_s)^k)`` and ``-log pass@k`` from per-start-state success probabilities.

    ``1 - (1 - p)^k`` is computed as ``-expm1(k log1p(-p))``, accurate for tiny ``p`` and large ``k``.

    :param success_probabilities: ``(S,)`` success probability ``p_s`` of each start state, in ``[0, 1]``
    :param ks: the ks, each an int >= 1 (no upper bound: no samples are drawn); None for ``1, 2, 4, ..., 1024``
    :param start_seeds: ``(S,)`` the start seeds, kept in the result
    :param expected_lengths: ``(S,)`` expected episode lengths, kept in the result (its ``mean_ep_length``)
    :return: the exact pass@k summary
    """
    probabilities = np.asarray(success_probabilities, dtype=np.float64)
    if probabilities.ndim != 1 or len(probabilities) == 0:
        raise ValueError(
            f"success_probabilities must be a non-empty 1-D array (one per start state), got shape {probabilities.shape}."
        )
    if not np.all((probabilities >= 0.0) & (probabilities <= 1.0)):  # also rejects NaN
        raise ValueError(
            f"success_probabilities must lie in [0, 1] (no NaN), got values from {np.nanmin(probabilities)} to "
            f"{np.nanmax(probabilities)}."
        )
    ks = list(DEFAULT_EXACT_KS) if ks is None else list(ks)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"every k of pass@k must be an int >= 1, got {k!r} in ks={ks!r}.")
    for name, values in (("start_seeds", start_seeds), ("expected_lengths", expected_lengths)):
        if values is not None and len(values) != len(probabilities):
            raise ValueError(f"{name} needs one entry per start state ({len(probabilities)}), got {len(values)}.")
    with np.errstate(divide="ignore"):
        log_fail_once = np.log1p(-probabilities)  # -inf where p = 1
        pass_rates = {int(k): float(np.mean(-np.expm1(int(k) * log_fail_once))) for k in ks}
        neg_log = {k: 0.0 - float(np.log(rate)) for k, rate in pass_rates.items()}
        nll = 0.0 - float(np.mean(np.log(probabilities)))
    return ExactPassAtKResult(
        success_probabilities=probabilities,
        pass_at_k=pass_rates,
        neg_log_pass_at_k=neg_log,
        mean_likelihood=float(probabilities.mean()),
        nll=nll,
        start_seeds=None if start_seeds is None else np.asarray(start_seeds, dtype=np.int64),
        expected_lengths=None if expected_lengths is None else np.asarray(expected_lengths, dtype=np.float64),
    )


def exact_pass_at_real_k(success_probabilities: Sequence[float] | np.ndarray, k: float) -> float:
    """
    pass@k ``= mean_s(1 - (1 - p_s)^k)`` for a real ``k > 0``: the exact curve between the integer ks.

    :param success_probabilities: ``(S,)`` success probability of each start state, in ``[0, 1]``
    :param k: samples per start state (any real > 0)
    :return: the pass rate
    """
    probabilities = pass_at_k_from_probabilities(success_probabilities, ks=[1]).success_probabilities
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k!r}.")
    with np.errstate(divide="ignore"):
        return float(np.mean(-np.expm1(float(k) * np.log1p(-probabilities))))


def samples_to_reach(
    success_probabilities: Sequence[float] | np.ndarray, target: float, *, k_max: float = 2.0**40, rtol: float = 1e-10
) -> float:
    """
    The k at which the exact pass@k curve reaches ``target``: the test-time samples a policy needs for that pass rate.

    pass@k is increasing in k towards ``mean_s(p_s > 0)``, the share of start states the policy ever solves; the
    crossing is found by bisection in ``log k`` on the exact curve (no interpolation error). ``k`` may be below 1
    when the policy's pass@1 already exceeds ``target``.

    :param success_probabilities: ``(S,)`` success probability of each start state, in ``[0, 1]``
    :param target: the pass rate to reach, in ``(0, 1]``
    :param k_max: the largest k searched
    :param rtol: relative precision of the returned k
    :return: the k with ``pass@k = target``, or ``inf`` when the curve never reaches it (its limit is below target)
    """
    probabilities = pass_at_k_from_probabilities(success_probabilities, ks=[1]).success_probabilities
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be a pass rate in (0, 1], got {target!r}.")
    if exact_pass_at_real_k(probabilities, k_max) < target:
        return float("inf")
    low, high = np.log(1e-12), np.log(k_max)
    if exact_pass_at_real_k(probabilities, np.exp(low)) >= target:
        return float(np.exp(low))
    while high - low > rtol:
        middle = 0.5 * (low + high)
        if exact_pass_at_real_k(probabilities, np.exp(middle)) >= target:
            high = middle
        else:
            low = middle
    return float(np.exp(high))


def sample_efficiency_ratio(
    success_probabilities: Sequence[float] | np.ndarray,
    reference_probabilities: Sequence[float] | np.ndarray,
    k: int = 64,
) -> float:
    """
    How many times fewer test-time samples a policy needs than a reference for the reference's pass@k.

    With ``target = pass@k`` of the reference, the ratio is ``k / max(1, samples_to_reach(policy, target))``: 2 means
    the policy reaches the reference's pass@64 at k = 32; ``k`` (the largest value) means its pass@1 already reaches it,
    as no policy draws less than one sample; 0 means it never reaches it (its curve flattens below). This is the
    paper's "fewer samples for the same pass@k".

    :param success_probabilities: ``(S,)`` the policy's success probability of each start state
    :param reference_probabilities: ``(S',)`` the reference policy's (the same start states, for a fair reading)
    :param k: the reference's number of samples
    :return: the ratio
    """
    target = exact_pass_at_real_k(reference_probabilities, k)
    if target == 0.0:
        return float(k)
    return float(k / max(1.0, samples_to_reach(success_probabilities, target)))
