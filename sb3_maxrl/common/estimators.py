"""Group advantage estimators: pure functions from per-rollout likelihoods to advantages.

Every estimator maps a ``(G, N)`` array of per-rollout likelihoods in ``[0, 1]`` (``G`` start states,
``N`` rollouts each) to a ``(G, N)`` array of advantages ``A``. The policy gradient of an update is
``(1 / (G N)) sum_groups sum_i A_i S_i`` with ``S_i`` the score (sum of log-prob gradients) of rollout ``i``.
The exact expectation of each estimator is its registry entry's target (the table of ``docs/estimators.md``), and
tested by exact enumeration in ``tests/test_estimators.py``; ``w_T(p) = (1 - (1 - p)^T) / p`` is the weight of the
truncated ML objective ``J_T``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import torch

from sb3_maxrl.common.utils import check_positive_int, is_int

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

EstimatorName = Literal["maxrl", "maxrl_raw", "maxrl_full_cv", "maxrl_general", "reinforce", "rloo", "grpo", "dr_grpo"]
BaselineName = Literal["loo_pass", "loo_omega_mean", "group", "none"]
#: the keyword arguments of :func:`group_advantages` that an estimator may take
EstimatorOption = Literal["truncation", "baseline", "eps"]
#: every estimator name, in the order of :data:`EstimatorName`
ESTIMATORS: tuple[str, ...] = get_args(EstimatorName)
#: every named baseline of ``maxrl_general``, in the order of :data:`BaselineName`
BASELINES: tuple[str, ...] = get_args(BaselineName)


def truncated_ml_weight(pass_rate: float | np.ndarray, truncation: int) -> float | np.ndarray:
    """
    ``w_T(p) = sum_{k < T} (1 - p)^k = (1 - (1 - p)^T) / p``: grad J_T = w_T(p) grad p.

    :param pass_rate: the pass rate ``p`` in ``[0, 1]`` (``w_T(0) = T``)
    :param truncation: the truncation level ``T >= 1`` (1: RL, infinity: maximum likelihood)
    :return: the weight, same shape as ``pass_rate``
    """
    fail = 1.0 - np.asarray(pass_rate, dtype=np.float64)
    return np.sum(fail[..., None] ** np.arange(truncation), axis=-1)


def _check_likelihoods(likelihoods: torch.Tensor) -> None:
    if likelihoods.ndim != 2:
        raise ValueError(
            f"likelihoods must be a 2-D (n_groups, group_size) array, got shape {tuple(likelihoods.shape)}; "
            "reshape to one row per start state."
        )
    if likelihoods.shape[1] < 2:
        raise ValueError(
            f"group_size must be >= 2 (got {likelihoods.shape[1]}): every estimator compares the rollouts "
            "of one start state, so collect at least two per start state."
        )
    values = likelihoods.numpy()  # a CPU float64 tensor (_as_float64_tensor): numpy's comparisons cost a single pass
    if ((values >= 0.0) & (values <= 1.0)).all():  # NaN fails both comparisons, so this also rules it out
        return
    if not np.isfinite(values).all():
        raise ValueError("likelihoods contain NaN or inf; the environment must report a finite likelihood in [0, 1].")
    bad = values[(values < 0.0) | (values > 1.0)][0].item()
    raise ValueError(
        f"likelihoods must lie in [0, 1], got {bad!r}; rescale the likelihood so its peak is <= 1 "
        "(a constant factor does not change the maximum-likelihood gradient)."
    )


def _check_truncation(truncation: int | None, group_size: int) -> int:
    if truncation is None:
        return group_size
    if not is_int(truncation) or not 1 <= truncation <= group_size:
        raise ValueError(
            f"truncation must be in [1, group_size={group_size}] (an int), got {truncation!r}: the leave-one-out "
            "weights can only estimate (1 - p)^k for k < N. Use truncation=None for T = N (the default)."
        )
    return int(truncation)


@lru_cache(maxsize=32)
def _unit_interval_quadrature(n_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights mapped to ``[0, 1]`` (exact for polynomials of degree < 2 n_nodes)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    return torch.from_numpy((nodes + 1.0) / 2.0), torch.from_numpy(weights / 2.0)


def _loo_weights_full(likelihoods: torch.Tensor, max_elements: int = 2**24) -> torch.Tensor:
    """``T = N``: ``omega_i = N * int_0^1 prod_{j != i} (1 - t l_j) dt``, exact by Gauss-Legendre quadrature.

    The leave-one-out product is the group product (summed in log space, one ``exp`` per node) divided by the
    own factor ``1 - t l_i > 0`` (``t < 1``); a group product that underflows contributes less than 1e-290.
    """
    n_groups, group_size = likelihoods.shape
    nodes, weights = _unit_interval_quadrature((group_size + 1) // 2)
    omega = torch.empty_like(likelihoods)
    groups_per_chunk = max(1, max_elements // (group_size * len(nodes)))
    for start in range(0, n_groups, groups_per_chunk):
        chunk = likelihoods[start : start + groups_per_chunk]
        own_factors = 1.0 - nodes * chunk[..., None]  # (g, N, nodes)
        weighted_products = torch.exp(torch.log(own_factors).sum(dim=1, keepdim=True)) * weights
        omega[start : start + groups_per_chunk] = group_size * (weighted_products / own_factors).sum(dim=-1)
    return omega


def symmetric_means(values: torch.Tensor, max_order: int) -> torch.Tensor:
    """
    The U-statistics ``E_0, ..., E_K`` of ``x_1, ..., x_m`` along the last axis: ``E_k = e_k(x) / C(m, k)``.

    ``e_k`` is the elementary symmetric polynomial, so ``E_k`` is the mean of ``prod_{j in s} x_j`` over the
    k-subsets ``s``: for independent ``x_j`` with mean ``q`` it is the minimum-variance unbiased estimator of
    ``q^k``. Computed by the normalized recurrence ``E_k(m) = ((m - k) / m) E_k(m - 1) + (k / m) x_m E_{k-1}(m - 1)``,
    a convex combination, so for ``x`` in ``[0, 1]`` every value stays in ``[0, 1]`` (no binomial coefficient is
    formed). ``E_0 = 1``; ``E_k = 0`` for ``k > m``. Cost ``O(m K)`` per row.

    :param values: ``(..., m)`` tensor, the last axis holds the ``x_j``
    :param max_order: ``K >= 0``, the highest order returned
    :return: ``(..., K + 1)`` tensor of ``E_0 .. E_K``, in the dtype of ``values``
    """
    orders = torch.arange(max_order + 1, dtype=values.dtype, device=values.device)
    moments = torch.zeros((*values.shape[:-1], max_order + 1), dtype=values.dtype, device=values.device)
    moments[..., 0] = 1.0
    for index in range(values.shape[-1]):
        count = float(index + 1)
        keep = torch.clamp((count - orders) / count, min=0.0)
        shifted = torch.nn.functional.pad(moments[..., :-1], (1, 0))
        moments = keep * moments + (orders / count) * values[..., index, None] * shifted
    return moments


def _loo_weights_truncated(likelihoods: torch.Tensor, truncation: int) -> torch.Tensor:
    """``T < N``: :func:`symmetric_means` of the others' failure values (leave-one-out), summed for k < T.

    Row ``i`` holds the ``N - 1`` failure values ``a_j = 1 - l_j``, ``j != i``, in order. Cost ``O(G N^2 T)``.
    """
    group_size = likelihoods.shape[1]
    positions = torch.arange(group_size - 1)
    others = positions[None, :] + (positions[None, :] >= torch.arange(group_size)[:, None]).long()  # (N, N - 1)
    return symmetric_means((1.0 - likelihoods)[:, others], truncation - 1).sum(dim=-1)


def loo_weights(likelihoods: ArrayT, truncation: int | None = None) -> ArrayT:
    """
    Leave-one-out weights ``omega_i``, unbiased for ``w_T(p)`` and independent of rollout ``i``.

    ``omega_i = sum_{k < T} E_k(a_{-i})`` with ``a_j = 1 - l_j`` and ``E_k`` the U-statistic (elementary
    symmetric polynomial over ``C(N - 1, k)``) of the other ``N - 1`` failure values: the minimum-variance
    unbiased estimator of ``(1 - p)^k``. For binary likelihoods and ``T = N``: ``omega = N / K`` for
    successes and ``N / (K + 1)`` for failures. Always ``1 <= omega <= T``. Computed in float64.

    :param likelihoods: ``(G, N)`` per-rollout likelihoods in ``[0, 1]``
    :param truncation: ``T`` in ``[1, N]``; ``None`` means ``T = N``
    :return: ``omega``, same shape, type and dtype as ``likelihoods``
    """
    values = _as_float64_tensor(likelihoods)
    _check_likelihoods(values)
    truncation = _check_truncation(truncation, values.shape[1])
    if truncation == values.shape[1]:
        omega = _loo_weights_full(values)
    elif truncation == 1:
        omega = torch.ones_like(values)
    else:
        omega = _loo_weights_truncated(values, truncation)
    return _like(omega, likelihoods)


class BinaryLikelihoodWarning(UserWarning):
    """A binary-only estimator (``maxrl``, ``maxrl_raw``, ``maxrl_full_cv``) saw a likelihood strictly inside (0, 1)."""


@dataclass(frozen=True)
class Estimator:
    """
    One registered estimator: what :func:`group_advantages` looks up by name.

    :param name: the name passed as ``estimator=``, one of :data:`EstimatorName`
    :param function: ``function(likelihoods, **options) -> advantages`` on a ``(G, N)`` float64 tensor; its
        docstring's first line is the advantage formula
    :param options: the keyword arguments of :func:`group_advantages` it takes (of :data:`EstimatorOption`),
        passed validated; every other option must stay at its default
    :param target: the exact expectation of ``(1/N) sum_i A_i S_i``
    :param binary_only: it reaches ``target`` only for binary likelihoods (0 or 1); a likelihood strictly between
        0 and 1 raises a :class:`BinaryLikelihoodWarning` naming ``maxrl_general``
    """

    name: str
    function: Callable[..., torch.Tensor]
    options: tuple[EstimatorOption, ...]
    target: str
    binary_only: bool = False

    @property
    def formula(self) -> str:
        """The advantage ``A_i``, the first line of the function's docstring."""
        return (self.function.__doc__ or "").strip().splitlines()[0]


#: every registered estimator by name (:func:`register_estimator` adds one, :func:`get_estimator` looks one up)
ESTIMATOR_REGISTRY: dict[str, Estimator] = {}


def register_estimator(
    name: EstimatorName, *, target: str, options: tuple[EstimatorOption, ...] = (), binary_only: bool = False
) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """
    Decorator that registers an estimator function under ``name`` (add the name to :data:`EstimatorName` too).

    :param name: the estimator's name
    :param target: the exact expectation of ``(1/N) sum_i A_i S_i``, e.g. ``"w_T(p) grad p (J_T)"``
    :param options: the keyword arguments of :func:`group_advantages` the function takes
    :param binary_only: whether ``target`` holds only for binary likelihoods
    :return: the decorator, which returns the function unchanged
    """

    def register(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in ESTIMATOR_REGISTRY:
            raise ValueError(f"An estimator named {name!r} is already registered; choose another name.")
        ESTIMATOR_REGISTRY[name] = Estimator(name, function, options, target, binary_only)
        return function

    return register


def get_estimator(name: str) -> Estimator:
    """
    The registered estimator called ``name``.

    :param name: one of :data:`ESTIMATORS`
    :return: its registry entry
    :raises ValueError: for an unknown name
    """
    try:
        return ESTIMATOR_REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown estimator {name!r}; choose one of {ESTIMATORS}.") from None


@register_estimator("reinforce", target="grad p (J_1)")
def _reinforce(likelihoods: torch.Tensor) -> torch.Tensor:
    """``l_i``"""
    return likelihoods.clone()


@register_estimator("rloo", target="grad p (J_1)")
def _rloo(likelihoods: torch.Tensor) -> torch.Tensor:
    """``l_i - mean_{j != i} l_j``"""
    group_size = likelihoods.shape[1]
    return group_size / (group_size - 1) * (likelihoods - likelihoods.mean(dim=1, keepdim=True))


@register_estimator("dr_grpo", target="(1 - 1/N) grad p")
def _dr_grpo(likelihoods: torch.Tensor) -> torch.Tensor:
    """``l_i - mean_j l_j``"""
    return likelihoods - likelihoods.mean(dim=1, keepdim=True)


@register_estimator("grpo", target="biased; no member of the J_T family", options=("eps",))
def _grpo(likelihoods: torch.Tensor, *, eps: float) -> torch.Tensor:
    """``(l_i - mean) / (std + eps)``, the standard deviation with Bessel's correction"""
    return _dr_grpo(likelihoods) / (likelihoods.std(dim=1, keepdim=True) + eps)


def _success_normalized(likelihoods: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N l_i / K`` (0 where ``K = sum_j l_j = 0``) and the mask of groups with ``K > 0``."""
    total = likelihoods.sum(dim=1, keepdim=True)
    has_success = total > 0
    ratio = likelihoods.shape[1] * likelihoods / torch.where(has_success, total, torch.ones_like(total))
    return ratio, has_success


@register_estimator("maxrl_raw", target="w_N(p) grad p (J_N)", binary_only=True)
def _maxrl_raw(likelihoods: torch.Tensor) -> torch.Tensor:
    """``N l_i / K`` (0 if ``K = 0``): the mean score of the successes (paper, Theorem 2)"""
    return _success_normalized(likelihoods)[0]


@register_estimator("maxrl", target="w_{N-1}(p) grad p (J_{N-1})", binary_only=True)
def _maxrl(likelihoods: torch.Tensor) -> torch.Tensor:
    """``N l_i / K - 1`` (0 if ``K = 0``): the official code's ``(r - mean) / mean``"""
    ratio, has_success = _success_normalized(likelihoods)
    return torch.where(has_success, ratio - 1.0, torch.zeros_like(ratio))


@register_estimator("maxrl_full_cv", target="w_N(p) grad p (J_N)", binary_only=True)
def _maxrl_full_cv(likelihoods: torch.Tensor) -> torch.Tensor:
    """``N l_i / K - 1``, the -1 control variate kept on all-fail groups"""
    return _success_normalized(likelihoods)[0] - 1.0


@register_estimator(
    "maxrl_general",
    target="w_T(p) grad p (J_T) for any l in [0, 1], with a leave-one-out baseline",
    options=("truncation", "baseline"),
)
def _maxrl_general(likelihoods: torch.Tensor, *, truncation: int, baseline: str | float) -> torch.Tensor:
    """``omega_i l_i - b_i``, leave-one-out weights ``omega_i`` (:func:`loo_weights`)"""
    omega = loo_weights(likelihoods, truncation)
    weighted = omega * likelihoods
    group_size = likelihoods.shape[1]
    if baseline == "none":
        return weighted
    if baseline == "loo_pass":
        return weighted - _others_pass_probability(likelihoods)
    if baseline == "loo_omega_mean":
        others_mean = (likelihoods.sum(dim=1, keepdim=True) - likelihoods) / (group_size - 1)
        return weighted - omega * others_mean
    if baseline == "group":
        return weighted - (1.0 - torch.prod(1.0 - likelihoods, dim=1, keepdim=True))
    return weighted - float(baseline)


def _others_pass_probability(likelihoods: torch.Tensor) -> torch.Tensor:
    """``1 - prod_{j != i} (1 - l_j)``, computed in log space, exact where another rollout has ``l = 1``."""
    is_one = likelihoods == 1.0
    log_fail = torch.log1p(-torch.where(is_one, torch.zeros_like(likelihoods), likelihoods))
    others_log_fail = log_fail.sum(dim=1, keepdim=True) - log_fail
    others_certain = is_one.sum(dim=1, keepdim=True) - is_one.long() > 0
    return torch.where(others_certain, torch.ones_like(likelihoods), -torch.expm1(others_log_fail))


def _check_baseline(baseline: str | float, group_size: int) -> str | float:
    is_number = isinstance(baseline, int | float) and not isinstance(baseline, bool)
    if not is_number and baseline not in BASELINES:
        raise ValueError(f"Unknown baseline {baseline!r}: use one of {BASELINES} or a float constant.")
    return baseline


def _check_eps(eps: float, group_size: int) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
        raise ValueError(f"eps must be a float > 0, got {eps!r}: it keeps GRPO's division by the group std finite.")
    return float(eps)


#: every option of :func:`group_advantages`: its default and its check ``(value, group_size) -> value to pass``
_OPTIONS: dict[str, tuple[Any, Callable[[Any, int], Any]]] = {
    "truncation": (None, _check_truncation),
    "baseline": ("loo_pass", _check_baseline),
    "eps": (1e-6, _check_eps),
}


def _resolve_options(estimator: Estimator, group_size: int, **given: Any) -> dict[str, Any]:
    """The checked options ``estimator`` takes; an option it does not take must be left at its default."""
    resolved: dict[str, Any] = {}
    for option, value in given.items():
        default, check = _OPTIONS[option]
        if option in estimator.options:
            resolved[option] = check(value, group_size)
        elif value is not default and value != default:
            takers = " or ".join(
                f"estimator='{name}'" for name, entry in ESTIMATOR_REGISTRY.items() if option in entry.options
            )
            raise ValueError(
                f"{option}={value!r} only applies to {takers}; estimator='{estimator.name}' does not take it "
                f"(its target: {estimator.target}). Use {takers}, or leave {option}={default!r}."
            )
    return resolved


def check_estimator_args(estimator: str, truncation: int | None, group_size: int, baseline: str | float) -> None:
    """
    Validate an estimator configuration before any rollout is collected.

    :param estimator: one of :data:`ESTIMATORS`
    :param truncation: ``T`` for the estimators that take it (``None`` = N); must be ``None`` for the others
    :param group_size: ``N``, rollouts per start state
    :param baseline: the baseline, for the estimators that take it; must be the default for the others
    """
    entry = get_estimator(estimator)
    check_positive_int(
        "group_size",
        group_size,
        "the estimators compare rollouts of the same start state, so use group_size=2 or more; the paper uses 16 to 128",
        minimum=2,
    )
    _resolve_options(entry, group_size, truncation=truncation, baseline=baseline)


def _warn_if_not_binary(estimator: Estimator, likelihoods: torch.Tensor) -> None:
    values = likelihoods.numpy()
    if ((values > 0.0) & (values < 1.0)).any():
        warnings.warn(  # one constant message per estimator: Python's default filter shows it once
            f"estimator='{estimator.name}' reaches its target ({estimator.target}) only for binary likelihoods, and "
            "got one strictly between 0 and 1: on continuous likelihoods it is unbiased for no J_T. Use "
            "estimator='maxrl_general', whose leave-one-out weights are unbiased for J_T with any likelihood in [0, 1].",
            BinaryLikelihoodWarning,
            stacklevel=3,
        )


def group_advantages(
    likelihoods: ArrayT,
    estimator: EstimatorName | str = "maxrl",
    truncation: int | None = None,
    *,
    baseline: BaselineName | float = "loo_pass",
    eps: float = 1e-6,
) -> ArrayT:
    """
    Advantages of every rollout from the likelihoods of its group (one row per start state).

    Estimators (:data:`ESTIMATOR_REGISTRY`), with the expectation of ``(1/N) sum_i A_i S_i``:

    - ``"reinforce"``: ``l_i``; grad p.  ``"rloo"``: ``l_i`` minus the others' mean; grad p.
    - ``"grpo"``: ``(l_i - mean) / (std + eps)``; biased.  ``"dr_grpo"``: ``l_i - mean``; ``(1 - 1/N)`` grad p.
    - ``"maxrl_raw"``: ``N l_i / K`` (0 if ``K = 0``); ``w_N(p)`` grad p (paper, Theorem 2). Binary ``l`` only.
    - ``"maxrl"``: ``N l_i / K - 1`` (0 if ``K = 0``), the official code; ``w_{N-1}(p)`` grad p. Binary ``l`` only.
    - ``"maxrl_full_cv"``: ``N l_i / K - 1`` always; ``w_N(p)`` grad p. Binary ``l`` only.
    - ``"maxrl_general"``: ``omega_i l_i - b_i`` with leave-one-out weights (:func:`loo_weights`), for
      continuous likelihoods and any ``T``; ``w_T(p)`` grad p for the leave-one-out baselines.

    The three binary-only estimators target no ``J_T`` on continuous likelihoods: they raise a
    :class:`BinaryLikelihoodWarning` (once per estimator, under Python's default filter) that names
    ``"maxrl_general"`` when a likelihood lies strictly between 0 and 1.

    :param likelihoods: ``(G, N)`` per-rollout likelihoods in ``[0, 1]`` (torch tensor or numpy array)
    :param estimator: the estimator's name, see :data:`ESTIMATORS`
    :param truncation: ``T`` of ``maxrl_general`` in ``[1, N]``, ``None`` for ``T = N``
    :param baseline: baseline ``b_i`` of ``maxrl_general``: ``"loo_pass"`` (``1 - prod_{j != i}(1 - l_j)``,
        unbiased), ``"loo_omega_mean"`` (``omega_i`` times the others' mean, unbiased), ``"group"``
        (``1 - prod_j (1 - l_j)``, not leave-one-out, so biased: at ``T = N`` it makes the advantages zero-sum and
        equals ``"maxrl"`` for binary l, targeting ``J_{N-1}``; at ``T < N`` it targets no ``J_T``), ``"none"``,
        or a float constant (unbiased)
    :param eps: added to GRPO's standard deviation
    :return: advantages, same shape, type and dtype as ``likelihoods``
    """
    values = _as_float64_tensor(likelihoods)
    _check_likelihoods(values)
    entry = get_estimator(estimator)
    options = _resolve_options(entry, values.shape[1], truncation=truncation, baseline=baseline, eps=eps)
    if entry.binary_only:
        _warn_if_not_binary(entry, values)
    return _like(entry.function(values, **options), likelihoods)


def _as_float64_tensor(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _like(result: torch.Tensor, reference: ArrayT) -> ArrayT:
    if isinstance(reference, torch.Tensor):
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return result.to(device=reference.device, dtype=dtype)
    dtype = reference.dtype if np.issubdtype(reference.dtype, np.floating) else np.float64
    return result.numpy().astype(dtype, copy=False)
