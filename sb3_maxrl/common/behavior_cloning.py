"""Behaviour cloning: the "SFT stage" that gives MaxRL a weak pretrained base to fine-tune.

The paper starts RL from a supervised (SFT) checkpoint whose pass@1 is about 1%, not from a random policy:
MaxRL's gradient weights a start state by ``(1 - (1 - p)^N) / p``, which needs small but non-zero pass rates
``p``. :func:`behavior_cloning` produces such a base from expert demonstrations by maximizing
``log pi(expert action | observation)`` for a fixed number of gradient steps or until a held-out pass rate is
reached, for any SB3 policy with a discrete action space (MaxRL's, PPO's, A2C's, ...). Then fine-tune with
``model.learn``.

The ``imitation`` library is the ecosystem's behaviour cloning, but its release pins gymnasium 0.29 and SB3 2.2;
this is the small part of it the pipeline needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl.common.utils import check_positive_int

#: A batch of expert data: observations (an array, or a dict of arrays for Dict spaces) and the expert's actions.
ExpertBatch = tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]


@dataclass
class BehaviorCloningResult:
    """
    The outcome of :func:`behavior_cloning`.

    :param n_steps: gradient steps taken
    :param losses: the loss ``-mean log pi(expert action | obs)`` of every step, on that step's batch before its
        update
    :param evaluations: ``(step, value)`` of every call to ``evaluate``; step 0 is the policy before cloning
    :param stopped_at_target: whether cloning stopped because an evaluation reached ``target``
    """

    n_steps: int = 0
    losses: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    stopped_at_target: bool = False

    @property
    def last_evaluation(self) -> float | None:
        """The value of the last evaluation (of the returned policy), or None without ``evaluate``."""
        return self.evaluations[-1][1] if self.evaluations else None


def behavior_cloning(
    model: BaseAlgorithm | BasePolicy,
    expert_batches: Iterable[ExpertBatch] | Callable[[int], ExpertBatch],
    n_steps: int,
    *,
    learning_rate: float = 1e-3,
    optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
    optimizer_kwargs: dict[str, Any] | None = None,
    evaluate: Callable[[], float] | None = None,
    target: float | None = None,
    eval_freq: int = 1,
    verbose: int = 0,
) -> BehaviorCloningResult:
    """
    Clone an expert into ``model``'s policy: gradient steps on ``-mean log pi(expert action | obs)``.

    Each step takes one batch, computes the log-probabilities with ``policy.get_distribution(obs).log_prob``
    (only the parameters of the action distribution receive gradients: an actor-critic's value head is left as
    it is) and takes one step of a fresh optimizer over the policy's parameters; the policy's own optimizer and
    its state are not used or changed. Cloning stops after ``n_steps`` steps, or as soon as an evaluation
    reaches ``target``. ``evaluate`` runs before the first step (step 0), every ``eval_freq`` steps, and after
    the last step, with the policy in evaluation mode; the policy is left in evaluation mode, as SB3's ``train()``
    leaves it.

    Example, a weak base for MaxRL (the paper's "SFT stage"; :func:`sb3_maxrl.experiments.pipeline.clone_base` runs it in
    the protocol)::

        model = MaxRL("MlpPolicy", env)
        held_out = lambda: evaluate_pass_at_k(model, eval_env, eval_seeds, n_samples=1).pass_at_k[1]
        behavior_cloning(model, sample_expert_batch, n_steps=100, evaluate=held_out, target=0.01)
        model.learn(total_timesteps)

    :param model: an SB3 algorithm (its ``policy`` is trained) or a policy, with a ``Discrete`` or
        ``MultiDiscrete`` action space
    :param expert_batches: an iterable of ``(observations, actions)`` batches (one per step; it must not run out
        before the last step) or a function ``step -> (observations, actions)`` for steps ``0, 1, ...``.
        Observations as the policy's ``predict`` takes them, with a leading batch axis; actions as the
        policy's ``predict`` returns them: ``(B,)`` ints for ``Discrete``, ``(B, n_dims)`` for ``MultiDiscrete``
    :param n_steps: the most gradient steps to take, >= 1
    :param learning_rate: the optimizer's learning rate
    :param optimizer_class: the optimizer, created anew over the policy's parameters
    :param optimizer_kwargs: extra keyword arguments of the optimizer
    :param evaluate: a function returning the current policy's score (e.g. its held-out pass@1), higher is better
    :param target: stop once ``evaluate()`` returns at least this (needs ``evaluate``)
    :param eval_freq: evaluate every ``eval_freq`` steps, >= 1
    :param verbose: 0 silent, 1 prints every evaluation, 2 also every step's loss
    :return: the steps taken, their losses and the evaluations; the policy is trained in place
    """
    policy = model.policy if isinstance(model, BaseAlgorithm) else model
    if not isinstance(policy, BasePolicy):
        raise TypeError(f"model must be an SB3 algorithm or policy, got {type(model).__name__}.")
    _check_action_space(policy.action_space)
    n_steps = check_positive_int("n_steps", n_steps, "the most gradient steps of behaviour cloning")
    eval_freq = check_positive_int("eval_freq", eval_freq, "evaluate every eval_freq steps")
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}.")
    if target is not None and evaluate is None:
        raise ValueError(
            f"target={target!r} needs evaluate: pass evaluate=<a function returning the held-out score, e.g. pass@1> "
            "or leave target=None to stop after n_steps."
        )
    if target is not None and not math.isfinite(target):
        raise ValueError(f"target must be a finite number, got {target!r}.")
    next_batch = _batch_source(expert_batches, n_steps)
    optimizer = optimizer_class(policy.parameters(), lr=learning_rate, **(optimizer_kwargs or {}))  # type: ignore[call-arg]
    result = BehaviorCloningResult()

    def run_evaluation(step: int) -> bool:
        assert evaluate is not None
        policy.set_training_mode(False)
        value = float(evaluate())
        result.evaluations.append((step, value))
        if verbose >= 1:
            print(f"Behaviour cloning step {step}: evaluation {value:.4g}")
        result.stopped_at_target = target is not None and value >= target
        return result.stopped_at_target

    try:
        if evaluate is not None and run_evaluation(0):
            return result
        for step in range(n_steps):
            observations, actions = next_batch(step)
            policy.set_training_mode(True)
            loss = -expert_log_probabilities(policy, observations, actions).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            result.n_steps = step + 1
            result.losses.append(loss.item())
            if verbose >= 2:
                print(f"Behaviour cloning step {step + 1}: loss {result.losses[-1]:.4f}")
            is_last = step + 1 == n_steps
            if evaluate is not None and ((step + 1) % eval_freq == 0 or is_last) and run_evaluation(step + 1):
                break
    finally:
        policy.set_training_mode(False)  # as SB3's train() leaves it
    return result


def expert_log_probabilities(
    policy: BasePolicy, observations: np.ndarray | dict[str, np.ndarray], actions: np.ndarray
) -> th.Tensor:
    """
    ``log pi(a | s)`` of a batch of expert actions under ``policy``, differentiable.

    :param policy: a policy with ``get_distribution`` (MaxRL's, or SB3's actor-critic policies) and a ``Discrete``
        or ``MultiDiscrete`` action space
    :param observations: a batch of observations, as ``predict`` takes them
    :param actions: the expert's actions, ``(B,)`` for ``Discrete``, ``(B, n_dims)`` for ``MultiDiscrete``
    :return: ``(B,)`` log-probabilities
    """
    get_distribution = getattr(policy, "get_distribution", None)
    if get_distribution is None:
        raise TypeError(
            f"{type(policy).__name__} has no get_distribution(obs); behaviour cloning needs a stochastic policy "
            "such as MaxRL's or SB3's ActorCriticPolicy (PPO, A2C)."
        )
    obs_tensor, _ = policy.obs_to_tensor(observations)
    first = next(iter(obs_tensor.values())) if isinstance(obs_tensor, dict) else obs_tensor
    action_indices = _check_actions(policy.action_space, actions, batch_size=first.shape[0])
    return get_distribution(obs_tensor).log_prob(th.as_tensor(action_indices, device=policy.device))


def _check_action_space(action_space: spaces.Space) -> None:
    if not isinstance(action_space, spaces.Discrete | spaces.MultiDiscrete):
        raise ValueError(
            f"behaviour cloning maximizes the log-probability of discrete expert actions, but the action space is "
            f"{action_space}: use a policy with a Discrete or MultiDiscrete action space."
        )


def _check_actions(action_space: spaces.Space, actions: np.ndarray, batch_size: int) -> np.ndarray:
    values = np.asarray(actions)
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number) or not np.all(np.mod(values, 1) == 0):
        raise ValueError(f"expert actions must be integer action indices, got {values.dtype} values.")
    if isinstance(action_space, spaces.Discrete):
        shape: tuple[int, ...] = (batch_size,)
        upper = np.array(action_space.n)
    else:
        assert isinstance(action_space, spaces.MultiDiscrete)
        shape = (batch_size, *action_space.nvec.shape)
        upper = action_space.nvec
    if values.size != math.prod(shape):
        raise ValueError(
            f"got {values.size} expert action values for {batch_size} observations; the action space {action_space} "
            f"needs actions of shape {shape} (one per observation)."
        )
    values = values.reshape(shape).astype(np.int64)
    if np.any(values < 0) or np.any(values >= upper):
        raise ValueError(
            f"expert actions must be action indices of {action_space} (0 <= a < {upper.tolist()}), "
            f"got values in [{values.min()}, {values.max()}]."
        )
    return values


def _batch_source(
    expert_batches: Iterable[ExpertBatch] | Callable[[int], ExpertBatch], n_steps: int
) -> Callable[[int], ExpertBatch]:
    """A function ``step -> batch`` over a callable or an iterable of batches."""
    if callable(expert_batches):
        return lambda step: _check_batch(expert_batches(step))
    if isinstance(expert_batches, tuple) and len(expert_batches) == 2 and isinstance(expert_batches[0], np.ndarray | dict):
        raise TypeError(
            "expert_batches looks like one (observations, actions) batch; pass one batch per step: "
            "[batch] * n_steps, itertools.repeat(batch) or lambda step: batch."
        )
    if not isinstance(expert_batches, Iterable):
        raise TypeError(
            f"expert_batches must be an iterable of (observations, actions) batches or a function step -> batch, "
            f"got {type(expert_batches).__name__}."
        )
    iterator: Iterator[ExpertBatch] = iter(expert_batches)

    def next_batch(step: int) -> ExpertBatch:
        try:
            return _check_batch(next(iterator))
        except StopIteration:
            raise ValueError(
                f"expert_batches ran out after {step} batches, before n_steps={n_steps}: pass at least n_steps "
                "batches, itertools.cycle(batches), or a function step -> batch."
            ) from None

    return next_batch


def _check_batch(batch: Any) -> ExpertBatch:
    if not (isinstance(batch, tuple | list) and len(batch) == 2):
        raise TypeError(f"an expert batch must be a pair (observations, actions), got {type(batch).__name__}.")
    return batch[0], batch[1]
