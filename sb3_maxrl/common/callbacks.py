"""Periodic pass@k evaluation on held-out start states during training, in the manner of SB3's EvalCallback, and a
training budget counted in updates.

- :class:`PassAtKEvalCallback`: pass@k estimated from ``n_samples`` episodes per held-out start state;
- :class:`ExactPassAtKEvalCallback`: exact pass@k, where a task can compute each start state's success probability
  (for the strict mazes: :func:`sb3_maxrl_envs.strict_maze.exact_pass_at_k`), with no sampling noise;
- :class:`EveryNUpdates`: run a function or a child callback after every n-th update (its ``train()`` done) and
  after the last one, as SB3's ``EveryNTimesteps`` does every n timesteps;
- :class:`StopTrainingOnMaxUpdates` and :class:`UpdateProgressBarCallback`: a budget of updates (MaxRL's unit: an
  update is a number of complete episodes, not of steps) and its progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from sb3_maxrl.common.evaluation import PassAtKResult, evaluate_pass_at_k, geometric_ks, make_eval_vec_env, pass_at_k
from sb3_maxrl.common.exact_evaluation import DEFAULT_EXACT_KS, ExactPassAtKResult
from sb3_maxrl.common.group_rollouts import StartStateCheck
from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY
from sb3_maxrl.common.start_states import check_held_out, default_eval_seeds
from sb3_maxrl.common.utils import check_positive_int

ResultT = TypeVar("ResultT", PassAtKResult, ExactPassAtKResult)
#: ``(model, ks) -> exact result``: the evaluation of :class:`ExactPassAtKEvalCallback`
ExactEvaluator = Callable[[BaseAlgorithm, list[int]], ExactPassAtKResult]


class BasePassAtKEvalCallback(EventCallback, Generic[ResultT]):
    """
    What the pass@k evaluation callbacks share, as in SB3's ``EvalCallback``: evaluate every ``eval_freq`` calls
    (and, optionally, when training starts and ends), log the results under ``eval/`` and dump them at the current
    ``num_timesteps``, keep the best model by ``best_metric``, and write the history to an npz file. Subclasses
    implement :meth:`_evaluate_policy` and :meth:`_npz_arrays`.

    :param ks: the ks of pass@k
    :param eval_freq: evaluate every ``eval_freq`` calls of the callback (<= 0: never during training)
    :param best_metric: the logged metric that picks the best model (``"pass@{k}"`` with k in ``ks``,
        ``"neg_log_pass@{k}"``, ``"mean_likelihood"`` or ``"nll"``; lower is better for the last two kinds
        named ``neg_log_pass@{k}`` and ``nll``, higher for the others)
    :param best_model_save_path: folder where ``best_model.zip`` is saved (None: not saved)
    :param log_path: folder where ``pass_at_k_evaluations.npz`` is written after every evaluation (None: not written)
    :param eval_at_training_start: evaluate when training starts (the starting point of the learning curve)
    :param eval_at_training_end: evaluate once more when training ends if the policy changed since the last
        evaluation
    :param callback_on_new_best: callback triggered when there is a new best model
    :param callback_after_eval: callback triggered after every evaluation
    :param verbose: 0 silent, 1 prints every evaluation
    """

    def __init__(
        self,
        *,
        ks: Sequence[int],
        eval_freq: int,
        best_metric: str,
        best_model_save_path: str | None,
        log_path: str | None,
        eval_at_training_start: bool,
        eval_at_training_end: bool,
        callback_on_new_best: BaseCallback | None,
        callback_after_eval: BaseCallback | None,
        verbose: int,
    ):
        super().__init__(callback_after_eval, verbose=verbose)
        self.ks = [int(k) for k in ks]
        metric_names = [f"pass@{k}" for k in self.ks] + [f"neg_log_pass@{k}" for k in self.ks] + ["mean_likelihood", "nll"]
        if best_metric not in metric_names:
            raise ValueError(f"best_metric={best_metric!r} is not evaluated; use one of {metric_names}.")
        self.best_metric = best_metric
        self.higher_is_better = not best_metric.startswith("neg_log_pass@") and best_metric != "nll"
        self.eval_freq = eval_freq
        self.best_model_save_path = best_model_save_path
        self.log_path = None if log_path is None else os.path.join(log_path, "pass_at_k_evaluations")
        self.eval_at_training_start = eval_at_training_start
        self.eval_at_training_end = eval_at_training_end
        self.callback_on_new_best = callback_on_new_best
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.parent = self
        self.best_value = -np.inf if self.higher_is_better else np.inf
        self.last_result: ResultT | None = None
        self.results: list[ResultT] = []
        self.evaluations_timesteps: list[int] = []
        self._last_eval_at: tuple[int, int] | None = None

    def _init_callback(self) -> None:
        if self.best_model_save_path is not None:
            os.makedirs(self.best_model_save_path, exist_ok=True)
        if self.log_path is not None:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)

    def _on_training_start(self) -> None:
        if self.eval_at_training_start:
            self.evaluate()

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            return self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if self.eval_at_training_end and self._last_eval_at != self._training_state():
            self.evaluate()

    def _training_state(self) -> tuple[int, int]:
        return self.num_timesteps, self.model._n_updates

    def _evaluate_policy(self) -> ResultT:
        """Evaluate the current policy."""
        raise NotImplementedError

    def _npz_arrays(self) -> dict[str, np.ndarray]:
        """The per-start-state arrays of every evaluation so far, written next to the scalars."""
        raise NotImplementedError

    def evaluate(self) -> bool:
        """
        Evaluate now, log and dump the results, save the best model and trigger the child callbacks.

        :return: False if a child callback asks to stop training
        """
        result = self._evaluate_policy()
        self.last_result = result
        self.results.append(result)
        self.evaluations_timesteps.append(self.num_timesteps)
        self._last_eval_at = self._training_state()
        metrics = result.metrics()
        if self.log_path is not None:
            self._save_npz()
        for name, value in metrics.items():
            self.logger.record(f"eval/{name}", value)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose >= 1:
            summary = ", ".join(f"pass@{k}={p:.3f}" for k, p in result.pass_at_k.items())
            print(f"Eval num_timesteps={self.num_timesteps}: {summary}, nll={result.nll:.3f}")

        continue_training = True
        value = metrics[self.best_metric]
        if value > self.best_value if self.higher_is_better else value < self.best_value:
            if self.verbose >= 1:
                print(f"New best {self.best_metric}: {value:.4f}")
            if self.best_model_save_path is not None:
                self.model.save(os.path.join(self.best_model_save_path, "best_model"))
            self.best_value = value
            if self.callback_on_new_best is not None:
                continue_training = self.callback_on_new_best.on_step()
        if self.callback is not None:
            continue_training = continue_training and self._on_event()
        return continue_training

    def _save_npz(self) -> None:
        assert self.log_path is not None
        arrays: dict[str, Any] = dict(
            timesteps=np.array(self.evaluations_timesteps),
            ks=np.array(self.ks),
            pass_at_k=np.array([[r.pass_at_k[k] for k in self.ks] for r in self.results]),
            neg_log_pass_at_k=np.array([[r.neg_log_pass_at_k[k] for k in self.ks] for r in self.results]),
            mean_likelihood=np.array([r.mean_likelihood for r in self.results]),
            nll=np.array([r.nll for r in self.results]),
        )
        arrays.update(self._npz_arrays())
        np.savez(self.log_path, **arrays)

    def update_child_locals(self, locals_: dict) -> None:
        """
        Update the references to the local variables of the child callback.

        :param locals_: the local variables during rollout collection
        """
        if self.callback is not None:
            self.callback.update_locals(locals_)


class PassAtKEvalCallback(BasePassAtKEvalCallback[PassAtKResult]):
    """
    Evaluate pass@k every ``eval_freq`` calls, log it under ``eval/`` and keep the best model.

    Logged (and dumped at the current ``num_timesteps``, so they land in TensorBoard): ``eval/pass@{k}`` and
    ``eval/neg_log_pass@{k}`` for every k, ``eval/mean_likelihood``, ``eval/nll`` and ``eval/mean_ep_length``
    (see :class:`~sb3_maxrl.common.evaluation.PassAtKResult`).

    The best model is chosen by ``best_metric``, by default ``"pass@1"``: the expected success of a single
    sample, which does not depend on ``n_samples``. Pass ``"nll"`` for MaxRL's own objective (lower is better
    for ``nll`` and ``neg_log_pass@{k}``, higher for the others).

    .. warning::

      With several envs each call to ``env.step()`` is ``n_envs`` timesteps: use
      ``eval_freq = max(eval_freq_in_timesteps // n_envs, 1)``.

    :param eval_env: an env id, a gym.Env or a VecEnv of ``StartStateWrapper``-wrapped envs
    :param eval_seeds: the evaluation start seeds; None for ``default_eval_seeds(n_eval_start_states)``, which
        are disjoint from every training seed
    :param n_eval_start_states: how many default start seeds to use when ``eval_seeds`` is None
    :param n_samples: episodes per start state
    :param ks: the ks of pass@k, each in ``[1, n_samples]``; None for ``geometric_ks(n_samples)``
    :param eval_freq: evaluate every ``eval_freq`` calls of the callback (<= 0: never during training)
    :param best_metric: the logged metric that picks the best model (``"pass@{k}"`` with k in ``ks``,
        ``"neg_log_pass@{k}"``, ``"mean_likelihood"`` or ``"nll"``)
    :param best_model_save_path: folder where ``best_model.zip`` is saved (None: not saved)
    :param log_path: folder where ``pass_at_k_evaluations.npz`` is written after every evaluation (None: not written)
    :param eval_at_training_end: evaluate once more when training ends if the policy changed since the last
        evaluation
    :param callback_on_new_best: callback triggered when there is a new best model
    :param callback_after_eval: callback triggered after every evaluation
    :param deterministic: take the policy's mode instead of sampling (pass@k is then flat in k)
    :param likelihood_key: info key of a continuous likelihood (else ``info["is_success"]`` is used)
    :param success_threshold: None (default): an episode succeeds with probability equal to its likelihood, so
        continuous likelihoods give a non-zero pass@k; a float: an episode is a success when its likelihood is at
        least this (see :func:`~sb3_maxrl.common.evaluation.evaluate_pass_at_k`)
    :param n_envs: copies to make when ``eval_env`` is an env id
    :param start_state_check: "raise", "warn" or "off" when two episodes of a start state begin differently
    :param eval_at_training_start: also evaluate when training starts (the starting point of the learning curve)
    :param verbose: 0 silent, 1 prints every evaluation
    """

    def __init__(
        self,
        eval_env: gym.Env | VecEnv | str,
        eval_seeds: Sequence[int] | None = None,
        n_eval_start_states: int = 16,
        n_samples: int = 16,
        ks: Sequence[int] | None = None,
        eval_freq: int = 10_000,
        best_metric: str = "pass@1",
        best_model_save_path: str | None = None,
        log_path: str | None = None,
        eval_at_training_end: bool = True,
        callback_on_new_best: BaseCallback | None = None,
        callback_after_eval: BaseCallback | None = None,
        deterministic: bool = False,
        likelihood_key: str = LIKELIHOOD_KEY,
        success_threshold: float | None = None,
        n_envs: int = 8,
        start_state_check: StartStateCheck = "raise",
        eval_at_training_start: bool = False,
        verbose: int = 1,
    ):
        eval_seeds = default_eval_seeds(n_eval_start_states) if eval_seeds is None else [int(s) for s in eval_seeds]
        if len(eval_seeds) == 0:
            raise ValueError("eval_seeds is empty: pass at least one start seed, or None for the default held-out ones.")
        ks = geometric_ks(n_samples) if ks is None else [int(k) for k in ks]
        for k in ks:
            pass_at_k(n_samples, 0, k)  # a k > n_samples fails here, not after training started
        super().__init__(
            ks=ks,
            eval_freq=eval_freq,
            best_metric=best_metric,
            best_model_save_path=best_model_save_path,
            log_path=log_path,
            eval_at_training_start=eval_at_training_start,
            eval_at_training_end=eval_at_training_end,
            callback_on_new_best=callback_on_new_best,
            callback_after_eval=callback_after_eval,
            verbose=verbose,
        )
        self.eval_seeds = eval_seeds
        self.n_samples = n_samples
        self.eval_env = make_eval_vec_env(eval_env, n_envs)
        self.deterministic = deterministic
        self.likelihood_key = likelihood_key
        self.success_threshold = success_threshold
        self.start_state_check = start_state_check

    def _init_callback(self) -> None:
        check_held_out(self.eval_env, self.eval_seeds, getattr(self.model, "train_seeds", None))
        super()._init_callback()

    def _evaluate_policy(self) -> PassAtKResult:
        if self.model.get_vec_normalize_env() is not None:
            try:
                sync_envs_normalization(self.training_env, self.eval_env)
            except AttributeError as error:
                raise AssertionError(
                    "Training and eval env are not wrapped the same way: wrap the eval env in VecNormalize too "
                    "(see https://stable-baselines3.readthedocs.io/en/master/guide/callbacks.html#evalcallback)."
                ) from error
        return evaluate_pass_at_k(
            self.model,
            self.eval_env,
            self.eval_seeds,
            self.n_samples,
            self.ks,
            self.deterministic,
            likelihood_key=self.likelihood_key,
            success_threshold=self.success_threshold,
            start_state_check=self.start_state_check,
        )

    def _npz_arrays(self) -> dict[str, np.ndarray]:
        return dict(
            start_seeds=np.array(self.eval_seeds),
            success_counts=np.array([r.success_counts for r in self.results]),
            mean_likelihoods=np.array([r.mean_likelihoods for r in self.results]),
            ep_lengths=np.array([r.episode_lengths for r in self.results]),
        )


class ExactPassAtKEvalCallback(BasePassAtKEvalCallback[ExactPassAtKResult]):
    """
    Evaluate exact pass@k every ``eval_freq`` calls, log it under ``eval/`` and keep the best model.

    For tasks where each held-out start state's success probability ``p_s`` can be computed (a deterministic task
    and a Markov policy), ``pass@k = mean_s(1 - (1 - p_s)^k)`` has no sampling noise and any k is available:
    ``evaluate(model, ks)`` returns an :class:`~sb3_maxrl.common.exact_evaluation.ExactPassAtKResult`. The logged
    scalars are :class:`PassAtKEvalCallback`'s (``eval/pass@{k}``, ``eval/neg_log_pass@{k}``,
    ``eval/mean_likelihood``, ``eval/nll``, ``eval/mean_ep_length``), so TensorBoard and ``maxrl-plot`` read both
    alike; the npz log holds ``success_probabilities`` (one row per evaluation) instead of success counts. For the
    strict mazes::

        from sb3_maxrl_envs.strict_maze import disjoint_layout_seeds, exact_pass_at_k

        held_out = disjoint_layout_seeds(9, 256, first_seed=EVAL_SEED_BASE)
        callback = ExactPassAtKEvalCallback(lambda model, ks: exact_pass_at_k(model, 9, held_out, ks), eval_freq=400)

    Each evaluation refuses a result whose ``start_seeds`` include training seeds of the model (``train_seeds``).

    .. warning::

      With several envs each call to ``env.step()`` is ``n_envs`` timesteps: use
      ``eval_freq = max(eval_freq_in_timesteps // n_envs, 1)``.

    :param evaluate: ``(model, ks) -> ExactPassAtKResult`` on held-out start states
    :param ks: the ks of pass@k, each an int >= 1 (no upper bound: nothing is sampled); default ``1, 2, 4, ..., 1024``
    :param eval_freq: evaluate every ``eval_freq`` calls of the callback (<= 0: never during training)
    :param best_metric: the logged metric that picks the best model (``"pass@{k}"`` with k in ``ks``,
        ``"neg_log_pass@{k}"``, ``"mean_likelihood"`` or ``"nll"``)
    :param best_model_save_path: folder where ``best_model.zip`` is saved (None: not saved)
    :param log_path: folder where ``pass_at_k_evaluations.npz`` is written after every evaluation (None: not written)
    :param eval_at_training_start: also evaluate when training starts (the starting point of the learning curve)
    :param eval_at_training_end: evaluate once more when training ends if the policy changed since the last
        evaluation
    :param callback_on_new_best: callback triggered when there is a new best model
    :param callback_after_eval: callback triggered after every evaluation
    :param verbose: 0 silent, 1 prints every evaluation
    """

    def __init__(
        self,
        evaluate: ExactEvaluator,
        ks: Sequence[int] = DEFAULT_EXACT_KS,
        eval_freq: int = 10_000,
        best_metric: str = "pass@1",
        best_model_save_path: str | None = None,
        log_path: str | None = None,
        eval_at_training_start: bool = False,
        eval_at_training_end: bool = True,
        callback_on_new_best: BaseCallback | None = None,
        callback_after_eval: BaseCallback | None = None,
        verbose: int = 1,
    ):
        if not callable(evaluate):
            raise TypeError(
                f"evaluate must be a function (model, ks) -> ExactPassAtKResult, got {type(evaluate).__name__}; e.g. "
                "lambda model, ks: exact_pass_at_k(model, size, held_out_seeds, ks) for strict mazes."
            )
        ks = list(ks)
        if not ks:
            raise ValueError("ks is empty: pass the ks of pass@k, e.g. (1, 16, 64, 1024).")
        for k in ks:
            check_positive_int("k", k, f"every k of pass@k, in ks={ks!r}")
        super().__init__(
            ks=ks,
            eval_freq=eval_freq,
            best_metric=best_metric,
            best_model_save_path=best_model_save_path,
            log_path=log_path,
            eval_at_training_start=eval_at_training_start,
            eval_at_training_end=eval_at_training_end,
            callback_on_new_best=callback_on_new_best,
            callback_after_eval=callback_after_eval,
            verbose=verbose,
        )
        self.evaluate_exact = evaluate

    def _evaluate_policy(self) -> ExactPassAtKResult:
        result = self.evaluate_exact(self.model, list(self.ks))
        if not isinstance(result, ExactPassAtKResult):
            raise TypeError(f"evaluate must return an ExactPassAtKResult, got {type(result).__name__}.")
        missing = [k for k in self.ks if k not in result.pass_at_k]
        if missing:
            raise ValueError(f"evaluate returned no pass@k for k in {missing}: compute the ks it is given.")
        train_seeds = getattr(self.model, "train_seeds", None)
        if result.start_seeds is not None and train_seeds is not None:
            shared = set(result.start_seeds.tolist()) & {int(s) for s in train_seeds}
            if shared:
                raise ValueError(
                    f"{len(shared)} evaluation start seeds are also training seeds (e.g. {min(shared)}): held-out start "
                    "states must not be trained on. For strict mazes use disjoint_layout_seeds(..., exclude_seeds=...)."
                )
        return result

    def _npz_arrays(self) -> dict[str, np.ndarray]:
        arrays = dict(success_probabilities=np.array([r.success_probabilities for r in self.results]))
        last = self.results[-1]
        if last.start_seeds is not None:
            arrays["start_seeds"] = last.start_seeds
        if all(r.expected_lengths is not None for r in self.results):
            arrays["expected_lengths"] = np.array([r.expected_lengths for r in self.results])
        return arrays


#: ``function(model, n_updates) -> bool | None`` of :class:`EveryNUpdates`; False stops training
UpdateFunction = Callable[[BaseAlgorithm, int], "bool | None"]


class EveryNUpdates(EventCallback):
    """
    Run ``function(model, n_updates)`` or trigger ``callback`` after every ``n_updates``-th update of this ``learn()``
    call, and after the last update if it was not a multiple; SB3's ``EveryNTimesteps`` counts timesteps instead.

    An update counts once its episodes are collected and its ``train()`` has run (also when MaxRL skips the optimizer
    on an update without signal); the event fires at the next rollout's start or at the end of training, so the
    function sees the updated policy. A rollout that a callback interrupted is not an update. Works with any
    ``OnPolicyAlgorithm`` (for PPO an update is ``n_steps x n_envs`` steps). Returning False (or a child callback
    returning False) stops training at the next step::

        rows = []
        callback = EveryNUpdates(10, lambda model, updates: rows.append((updates, evaluate(model))))
        model.learn(total_timesteps, callback=callback)  # rows after updates 10, 20, ... and the last one

    :param n_updates: trigger after every ``n_updates``-th update (>= 1)
    :param function: ``function(model, n_updates) -> bool | None`` with the number of updates done so far
    :param callback: a child callback triggered instead of (or after) ``function``; it reads ``parent.n_updates``
    :param at_training_start: also trigger when training starts (``n_updates == 0``, the initial policy)
    :param at_training_end: trigger after the last update when it is not a multiple of ``n_updates``
    :param verbose: verbosity level
    """

    def __init__(
        self,
        n_updates: int,
        function: UpdateFunction | None = None,
        callback: BaseCallback | None = None,
        *,
        at_training_start: bool = False,
        at_training_end: bool = True,
        verbose: int = 0,
    ):
        super().__init__(callback, verbose=verbose)
        self.n_updates_between = check_positive_int("n_updates", n_updates, "updates between two triggers")
        if function is None and callback is None:
            raise ValueError("EveryNUpdates needs a function(model, n_updates) or a callback to trigger.")
        self.function = function
        self.at_training_start = at_training_start
        self.at_training_end = at_training_end
        self.n_updates = 0  # updates trained so far in this learn() call
        self.last_trigger: int | None = None  # n_updates at the last trigger
        self._collected = 0  # rollouts fully collected (each then trained)
        self._continue_training = True

    def _on_training_start(self) -> None:
        self.n_updates, self.last_trigger, self._collected, self._continue_training = 0, None, 0, True
        if self.at_training_start:
            self._trigger()

    def _on_rollout_end(self) -> None:
        self._collected += 1

    def _on_rollout_start(self) -> None:
        if self._collected > self.n_updates:  # the previous rollout's train() has run
            self.n_updates = self._collected
            if self.n_updates % self.n_updates_between == 0:
                self._trigger()

    def _on_step(self) -> bool:
        return self._continue_training

    def _on_training_end(self) -> None:
        self.n_updates = self._collected
        if self.at_training_end and self.n_updates > 0 and self.last_trigger != self.n_updates:
            self._trigger()

    def _trigger(self) -> None:
        self.last_trigger = self.n_updates
        if self.function is not None and self.function(self.model, self.n_updates) is False:
            self._continue_training = False
        if self.callback is not None and not self._on_event():
            self._continue_training = False


class StopTrainingOnMaxUpdates(BaseCallback):
    """
    Stop training after ``max_updates`` updates of this ``learn()`` call, as SB3's ``StopTrainingOnMaxEpisodes``
    does after a number of episodes.

    For algorithms whose update is a number of complete episodes rather than of steps (MaxRL: ``n_groups x
    group_size`` episodes, of a length that changes as the policy learns), a budget in updates is the protocol's
    unit and gives every estimator the same number of episodes. Pass a ``total_timesteps`` to ``learn()`` that
    the updates cannot reach (e.g. ``2**62``). An update is counted when its rollout ends (its ``train()``
    follows); training stops at the first step of the next rollout, whose env steps are dropped.

    :param max_updates: the number of updates, >= 1
    :param verbose: 1 prints a line when training stops
    """

    def __init__(self, max_updates: int, verbose: int = 0):
        super().__init__(verbose=verbose)
        self.max_updates = check_positive_int("max_updates", max_updates, "updates before training stops")
        self.n_updates = 0

    def _on_training_start(self) -> None:
        self.n_updates = 0

    def _on_rollout_end(self) -> None:
        self.n_updates += 1

    def _on_step(self) -> bool:
        continue_training = self.n_updates < self.max_updates
        if not continue_training and self.verbose >= 1:
            print(f"Stopping training: {self.n_updates} updates done (max_updates={self.max_updates}).")
        return continue_training


class UpdateProgressBarCallback(BaseCallback):
    """
    A progress bar over updates (tqdm with rich, as SB3's ``ProgressBarCallback``), for a ``learn()`` budgeted with
    :class:`StopTrainingOnMaxUpdates`; SB3's own bar counts ``total_timesteps``.

    :param total_updates: the updates the bar counts to
    :param description: the bar's label
    """

    def __init__(self, total_updates: int, description: str = "updates") -> None:
        super().__init__()
        try:
            from tqdm.rich import tqdm  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "The progress bar needs tqdm and rich: pip install tqdm rich (or stable-baselines3[extra])."
            ) from error
        self.total_updates = check_positive_int("total_updates", total_updates, "updates of the progress bar")
        self.description = description
        self.pbar: Any = None

    def _on_training_start(self) -> None:
        from tqdm.rich import tqdm

        self.pbar = tqdm(total=self.total_updates, desc=self.description, unit="update")

    def _on_rollout_end(self) -> None:
        self.pbar.update(1)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.pbar.refresh()
        self.pbar.close()
