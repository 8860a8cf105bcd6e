"""The MaxRL paper's protocol for any task with binary success and an expert: weak base, fine-tuning, pass@k at large k.

One call, :func:`run_protocol`, given a :class:`Task` (how to make the env, who the expert is, what identifies a start
state, and, where the task allows it, an exact evaluator) and a :class:`Recipe` (every setting of the run):

1. draws training, validation and held-out test start seeds whose start states are pairwise different by identity
   (:func:`draw_start_seeds`: the task's ``start_state_key``, or the observation after reset);
2. behaviour-clones the expert into a fresh policy until the validation pass@1 reaches ``recipe.base_target``
   (:func:`clone_base`, the paper's "SFT stage": a weak base whose pass rates are small and uneven); start states
   the expert cannot solve are reported in ``summary.json``, never cloned;
3. fine-tunes a copy of that same base with each method at the same budget: ``"maxrl"``, ``"grpo"``, ``"rloo"`` (any
   estimator of ``MaxRL``, with the same update settings, :meth:`Recipe.maxrl_kwargs`) and ``"ppo"`` (SB3 PPO whose
   actor is the cloned base and whose critic is fresh). A MaxRL update is ``n_groups x group_size`` complete
   episodes, so a run ends at the first update past ``recipe.timesteps``, or after ``recipe.updates`` updates when
   the recipe sets them; PPO runs last, for the median env steps the MaxRL-family runs of that seed took (their
   actual env steps are in the table);
4. evaluates pass@k on the held-out start states, exactly (``task.exact_pass_at_k``) or from
   ``recipe.eval_samples`` episodes per start state;
5. writes ``table.csv``, ``summary.json``, TensorBoard logs (``tb/``), the models (``models/``) and
   ``neg_log_pass_at_k.png``.

Tasks: :func:`minigrid_task` (the planner or ``BabyAIBot`` expert, exact evaluation where the env is deterministic
navigation), :func:`strict_maze_task` (the package's native strict mazes), or a :class:`Task` of your own env::

    task = Task("my-env", env_fn=lambda: MyEnv(), expert=my_expert)  # my_expert(seed) -> (observations, actions)
    result = run_protocol(task, Recipe(timesteps=50_000), methods=("maxrl", "grpo", "ppo"), out_dir="runs/my-env")
    print(result.markdown())

Per-task settings live in :data:`RECIPES`, keyed by env id; the strict mazes' in
:mod:`sb3_maxrl.experiments.strict_mazes`, whose main job (``maxrl-train``) runs these same functions.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_maxrl.common.behavior_cloning import BehaviorCloningResult, ExpertBatch, behavior_cloning
from sb3_maxrl.common.callbacks import StopTrainingOnMaxUpdates
from sb3_maxrl.common.estimators import ESTIMATORS
from sb3_maxrl.common.evaluation import evaluate_pass_at_k, geometric_ks
from sb3_maxrl.common.exact_evaluation import ExactPassAtKResult
from sb3_maxrl.common.start_states import (
    EVAL_SEED_BASE,
    EpisodeStart,
    StartStateWrapper,
    observation_fingerprint,
    start_state_control,
)
from sb3_maxrl.maxrl import MaxRL

#: ``seed -> (observations, actions)`` of one successful expert episode from ``reset(seed=seed)``, or None when the
#: expert cannot solve that start state
Expert = Callable[[int], ExpertBatch | None]
#: ``(model or policy, seeds, ks) -> exact pass@k``
ExactEvaluator = Callable[[Any, Sequence[int], Sequence[int]], ExactPassAtKResult]

#: First seed tried for the held-out test start states (above every seed of MaxRL's infinite training stream)
TEST_FIRST_SEED = EVAL_SEED_BASE
#: First seed tried for the validation start states
VALIDATION_FIRST_SEED = EVAL_SEED_BASE + 10**6
#: ``learn()``'s timesteps when the budget is a number of updates (``StopTrainingOnMaxUpdates`` ends training)
UNREACHABLE_TIMESTEPS = 2**62
#: The methods that are estimators of MaxRL (the same algorithm, one argument apart); "ppo" is SB3's PPO
PPO_METHOD = "ppo"


@dataclass
class Task:
    """
    What the protocol needs to know about a task.

    :param name: a label for tables and logs
    :param env_fn: makes the env the policy sees (a gymnasium env with binary success in ``info["is_success"]`` on
        the last step and ``reset(seed=s)`` fixing the start state)
    :param expert: ``seed -> (observations, actions) | None`` (:data:`Expert`)
    :param start_state_key: ``seed -> identity`` of the start state (e.g. a maze layout); None: a hash of the
        observation after ``reset(seed=seed)``
    :param exact_pass_at_k: exact evaluation ``(policy, seeds, ks) -> ExactPassAtKResult``; None: sampled
    :param vec_env_fn: ``(num_envs, seed) -> VecEnv`` with native start-state control (e.g. ``StrictMazeVecEnv``);
        None: a ``DummyVecEnv`` of ``env_fn``
    :param max_episode_steps: the longest episode MaxRL accepts
    """

    name: str
    env_fn: Callable[[], gym.Env]
    expert: Expert
    start_state_key: Callable[[int], Hashable] | None = None
    exact_pass_at_k: ExactEvaluator | None = None
    vec_env_fn: Callable[[int, int | None], VecEnv] | None = None
    max_episode_steps: int = 10_000

    def make_vec_env(self, n_envs: int, seed: int | None = None) -> VecEnv:
        """
        The task's VecEnv with start-state control.

        :param n_envs: env slots
        :param seed: seeds a native VecEnv's own generator
        :return: the VecEnv
        """
        if self.vec_env_fn is not None:
            return self.vec_env_fn(n_envs, seed)
        return DummyVecEnv([lambda: StartStateWrapper(self.env_fn()) for _ in range(n_envs)])

    def key_function(self) -> Callable[[int], Hashable]:
        """``seed -> identity``: ``start_state_key``, or a hash of the observation after reset."""
        if self.start_state_key is not None:
            return self.start_state_key
        env = self.env_fn()
        return lambda seed: observation_fingerprint(env.reset(seed=int(seed))[0])


#: The paper's update for the MaxRL family: one plain on-policy gradient step on each batch (no reuse, no clip)
PAPER_ONE_STEP_UPDATE: dict[str, Any] = dict(n_epochs=1, batch_size=None, clip_range=None)


@dataclass(frozen=True)
class Recipe:
    """
    Every setting of a protocol run.

    :param n_train: training start states (cloned from, then trained on)
    :param n_validation: validation start states (the behaviour-cloning stop, the learning-rate choice)
    :param n_test: held-out test start states (every reported metric)
    :param base_target: behaviour cloning stops once the validation pass@1 is at least this
    :param bc_batch_size: expert episodes (training start states) per behaviour-cloning step
    :param bc_learning_rate: Adam's learning rate of behaviour cloning
    :param bc_max_steps: the most behaviour-cloning steps
    :param bc_eval_freq: evaluate the validation pass@1 every this many steps
    :param timesteps: the env-step budget of every method's fine-tuning (with ``updates``: PPO's budget when no
        MaxRL-family method runs)
    :param updates: the MaxRL-family budget in updates (``n_groups x group_size`` complete episodes each) instead of
        ``timesteps``: every estimator gets the same number of episodes; PPO still gets their median env steps. None:
        ``timesteps``
    :param learning_rates: candidate learning rates per method (several: the best on the validation start states by
        :func:`validation_score` is reported); a method not named uses ``default_learning_rates``
    :param default_learning_rates: the candidates of MaxRL-family methods not named in ``learning_rates``
    :param group_size: N, episodes per start state (MaxRL family)
    :param n_groups: G, start states per update (MaxRL family)
    :param n_epochs: passes over each update (MaxRL family). The defaults give the family the epochs, minibatch size
        and clip of PPO's (``ppo_n_epochs``, ``ppo_batch_size``, ``ppo_clip_range``), so that the update machinery
        is the same (PPO keeps its critic, GAE and per-minibatch advantage normalization); the paper's one plain step
        is :data:`PAPER_ONE_STEP_UPDATE`
    :param batch_size: steps per minibatch (MaxRL family; None: one batch)
    :param clip_range: the ratio clip (MaxRL family; None with ``n_epochs=1``: the plain on-policy update)
    :param max_grad_norm: the gradient clip (every method)
    :param net_arch: hidden layers of the policy (and of PPO's fresh critic)
    :param n_envs: env slots of training and sampled evaluation
    :param ppo_n_steps: PPO's steps per env per update
    :param ppo_batch_size: PPO's minibatch
    :param ppo_n_epochs: PPO's epochs per update
    :param ppo_clip_range: PPO's clip
    :param ppo_gamma: PPO's discount
    :param ppo_max_grad_norm: PPO's gradient clip; None: ``max_grad_norm``
    :param ppo_learned_critic: False for an ablation: PPO with no learned critic (a value head of zeros and
        ``vf_coef=0``, so GAE's advantage is the discounted final reward, normalized per minibatch)
    :param ks: the ks of the table
    :param eval_samples: episodes per held-out start state when the evaluation is sampled (>= max(ks))
    :param validation_samples: episodes per validation start state for the sampled behaviour-cloning stop
    :param eval_points: held-out evaluations during each fine-tuning run, logged to TensorBoard under ``eval/``,
        spaced by updates for a MaxRL-family run whose budget is ``updates``, else by env steps (0: only the final one)
    """

    n_train: int = 2000
    n_validation: int = 64
    n_test: int = 256
    base_target: float = 0.01
    bc_batch_size: int = 32
    bc_learning_rate: float = 1e-3
    bc_max_steps: int = 500
    bc_eval_freq: int = 1
    timesteps: int = 200_000
    updates: int | None = None
    learning_rates: dict[str, tuple[float, ...]] = field(default_factory=lambda: {PPO_METHOD: (3e-4,)})
    default_learning_rates: tuple[float, ...] = (1e-3,)
    group_size: int = 16
    n_groups: int = 16
    n_epochs: int = 4
    batch_size: int | None = 256
    clip_range: float | None = 0.2
    max_grad_norm: float = 1.0
    net_arch: tuple[int, ...] = (128, 128)
    n_envs: int = 8
    ppo_n_steps: int = 128
    ppo_batch_size: int = 256
    ppo_n_epochs: int = 4
    ppo_clip_range: float = 0.2
    ppo_gamma: float = 0.99
    ppo_max_grad_norm: float | None = None
    ppo_learned_critic: bool = True
    ks: tuple[int, ...] = (1, 16, 64, 256)
    eval_samples: int = 256
    validation_samples: int = 16
    eval_points: int = 0

    def learning_rates_of(self, method: str) -> tuple[float, ...]:
        """
        The candidate learning rates of a method.

        :param method: "maxrl", "grpo", "rloo", ... or "ppo"
        :return: one or more learning rates
        """
        return tuple(self.learning_rates.get(method, self.default_learning_rates))

    def maxrl_kwargs(self, learning_rate: float | None = None) -> dict[str, Any]:
        """
        ``MaxRL``'s keyword arguments of a MaxRL-family fine-tuning run (add ``estimator``, ``train_seeds`` and
        ``seed``): the update, the gradient clip and the policy network.

        :param learning_rate: the learning rate; None for the first of ``default_learning_rates``
        :return: ``learning_rate``, ``group_size``, ``n_groups``, ``n_epochs``, ``batch_size``, ``clip_range``,
            ``max_grad_norm`` and ``policy_kwargs``
        """
        return dict(
            learning_rate=self.default_learning_rates[0] if learning_rate is None else learning_rate,
            group_size=self.group_size,
            n_groups=self.n_groups,
            n_epochs=self.n_epochs,
            batch_size=self.batch_size,
            clip_range=self.clip_range,
            max_grad_norm=self.max_grad_norm,
            policy_kwargs=dict(net_arch=list(self.net_arch)),
        )


@dataclass(frozen=True)
class StartSeeds:
    """
    Start seeds of the three roles, pairwise different start states by identity.

    :param train: training start states (behaviour cloning and fine-tuning)
    :param validation: the behaviour-cloning stop and the learning-rate choice
    :param test: the held-out start states of every reported metric
    """

    train: list[int]
    validation: list[int]
    test: list[int]


def draw_start_seeds(
    key_of: Callable[[int], Hashable], n_train: int, n_validation: int, n_test: int, *, max_tries: int | None = None
) -> StartSeeds:
    """
    Test, validation and training seeds whose start states are pairwise different by identity, within and across sets.

    Test seeds count up from :data:`TEST_FIRST_SEED`, validation seeds from :data:`VALIDATION_FIRST_SEED`, training
    seeds from 0; a seed whose identity was seen before is skipped. The same sets for every run.

    :param key_of: ``seed -> identity`` of the start state
    :param n_train: training start states
    :param n_validation: validation start states
    :param n_test: held-out test start states
    :param max_tries: seeds tried per set before giving up; None for ``20 n + 1000``
    :return: the three sets
    """
    seen: set[Hashable] = set()

    def distinct(count: int, first_seed: int, role: str) -> list[int]:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{role} start states: the count must be an int >= 1, got {count!r}.")
        tries = 20 * count + 1000 if max_tries is None else max_tries
        seeds: list[int] = []
        for seed in range(first_seed, first_seed + tries):
            key = key_of(seed)
            if key not in seen:
                seen.add(key)
                seeds.append(seed)
                if len(seeds) == count:
                    return seeds
        raise ValueError(
            f"Found only {len(seeds)} {role} start states different from each other and from the sets drawn before "
            f"in {tries} seeds: the env has few distinct start states ({len(seen)} seen). Lower n_test, n_validation "
            "or n_train."
        )

    test = distinct(n_test, TEST_FIRST_SEED, "test")
    validation = distinct(n_validation, VALIDATION_FIRST_SEED, "validation")
    train = distinct(n_train, 0, "training")
    return StartSeeds(train=train, validation=validation, test=test)


@dataclass
class ProtocolResult:
    """
    The outcome of :func:`run_protocol`.

    :param rows: one row per (method, seed) and the base per seed: the method, the seed, the learning rate, the env
        steps, ``pass@k`` and ``neg_log_pass@k`` on the test set for every evaluated k, and ``seconds``
    :param summary: everything ``summary.json`` holds (settings, start-state counts, unsolved seeds, cloning)
    :param ks: the ks of the table
    :param out_dir: where the files were written, if anywhere
    """

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    ks: tuple[int, ...]
    out_dir: Path | None = None

    def table(self) -> list[dict[str, Any]]:
        """
        Mean and standard deviation over seeds of ``neg_log_pass@k`` per method (the base first).

        :return: one dict per method: ``method``, ``seeds``, ``timesteps`` and ``neg_log_pass@{k}`` / ``..._sd``
        """
        methods = list(dict.fromkeys(row["method"] for row in self.rows))
        table = []
        for method in methods:
            rows = [row for row in self.rows if row["method"] == method]
            entry: dict[str, Any] = dict(
                method=method, seeds=len(rows), timesteps=int(np.mean([r["timesteps"] for r in rows]))
            )
            for k in self.ks:
                values = np.array([row[f"neg_log_pass@{k}"] for row in rows], dtype=np.float64)
                entry[f"neg_log_pass@{k}"] = float(values.mean())
                entry[f"neg_log_pass@{k}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            table.append(entry)
        return table

    def markdown(self) -> str:
        """The table of :meth:`table` as markdown, ``mean +- sd`` of ``-log pass@k`` (lower is better)."""
        header = "| method | env steps | " + " | ".join(f"-log pass@{k}" for k in self.ks) + " |"
        lines = [header, "|" + "---|" * (2 + len(self.ks))]
        for entry in self.table():
            cells = [
                f"{entry[f'neg_log_pass@{k}']:.3f}" + (f" ± {entry[f'neg_log_pass@{k}_sd']:.3f}" if entry["seeds"] > 1 else "")
                for k in self.ks
            ]
            lines.append(f"| {entry['method']} | {entry['timesteps']:,} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


class _Evaluator:
    """pass@k of a model on a set of start seeds: exact where the task allows it, else sampled."""

    def __init__(self, task: Task, recipe: Recipe, seed: int) -> None:
        self.task, self.recipe, self.seed = task, recipe, seed
        self._env: VecEnv | None = None

    def __call__(self, model: Any, seeds: Sequence[int], ks: Sequence[int], n_samples: int) -> dict[str, float]:
        if self.task.exact_pass_at_k is not None:
            return self.task.exact_pass_at_k(model, list(seeds), list(ks)).metrics()
        if self._env is None:
            self._env = self.task.make_vec_env(self.recipe.n_envs, self.seed)
        return evaluate_pass_at_k(
            model,
            self._env,
            list(seeds),
            n_samples=n_samples,
            ks=list(ks),
            max_episode_steps=self.task.max_episode_steps,
            seed=self.seed,
        ).metrics()

    def close(self) -> None:
        if self._env is not None:
            self._env.close()


def _check_methods(methods: Sequence[str]) -> list[str]:
    methods = list(methods)
    unknown = [m for m in methods if m != PPO_METHOD and m not in ESTIMATORS]
    if unknown or not methods:
        raise ValueError(f"methods must name MaxRL estimators ({', '.join(ESTIMATORS)}) or {PPO_METHOD!r}, got {methods!r}.")
    return methods


def _expert_batches(
    task: Task, train: Sequence[int], batch_size: int, seed: int | None
) -> tuple[Callable[[int], ExpertBatch], list[int]]:
    """
    A function ``step -> batch`` of ``batch_size`` expert episodes on training seeds, and the unsolved seeds (grows).

    Each step draws ``batch_size`` training seeds without replacement (``Generator.choice``); a seed the expert cannot
    solve is replaced by the next ones of a random order of the others. Demonstrations are cached by seed.
    """
    rng = np.random.default_rng(seed)
    cache: dict[int, ExpertBatch | None] = {}
    unsolved: list[int] = []
    pool = np.array(train, dtype=np.int64)

    def demonstration(start: int) -> ExpertBatch | None:
        if start not in cache:
            cache[start] = task.expert(start)
            if cache[start] is None:
                unsolved.append(start)
        return cache[start]

    def batch(step: int) -> ExpertBatch:
        picks = [int(start) for start in rng.choice(pool, size=min(batch_size, len(pool)), replace=False)]
        episodes = [demo for demo in map(demonstration, picks) if demo is not None]
        if len(episodes) < batch_size and len(picks) < len(pool):
            drawn = set(picks)
            for start in rng.permutation(pool):
                if len(episodes) == batch_size:
                    break
                if int(start) not in drawn:
                    demo = demonstration(int(start))
                    if demo is not None:
                        episodes.append(demo)
        if not episodes:
            raise ValueError(f"The expert solved none of the {len(pool)} training start states: check the expert.")
        actions = np.concatenate([np.asarray(a) for _, a in episodes])
        first = episodes[0][0]
        if isinstance(first, dict):
            return {key: np.concatenate([o[key] for o, _ in episodes]) for key in first}, actions  # type: ignore[index]
        return np.concatenate([np.asarray(o) for o, _ in episodes]), actions

    return batch, unsolved


def clone_base(
    task: Task,
    recipe: Recipe,
    model: BaseAlgorithm | BasePolicy,
    train_seeds: Sequence[int],
    validation_seeds: Sequence[int],
    *,
    seed: int | None,
    validation_pass_at_1: Callable[[], float] | None = None,
    verbose: int = 0,
) -> tuple[BehaviorCloningResult, list[int]]:
    """
    The SFT stage: behaviour-clone the task's expert into ``model`` until the validation pass@1 reaches
    ``recipe.base_target`` (at most ``recipe.bc_max_steps`` steps).

    Each step takes the expert episodes of ``recipe.bc_batch_size`` training start states drawn without replacement
    (one the expert cannot solve is replaced by another) and one Adam step at ``recipe.bc_learning_rate`` on
    ``-mean log pi(expert action | obs)`` (:func:`~sb3_maxrl.common.behavior_cloning.behavior_cloning`); the
    validation pass@1 is evaluated before the first step and every ``recipe.bc_eval_freq`` steps.

    :param task: the task (its expert, and its evaluation for the stop)
    :param recipe: the behaviour-cloning settings (``base_target``, ``bc_*``, and for a sampled stop ``n_envs`` and
        ``validation_samples``)
    :param model: an SB3 model or policy of the task's observation and action spaces, cloned in place
    :param train_seeds: the start states to clone from
    :param validation_seeds: the start states of the stopping rule (not test ones)
    :param seed: seeds the draw of each step's start states (and a sampled evaluation)
    :param validation_pass_at_1: ``() -> pass@1`` of ``model`` on ``validation_seeds``; None: the task's exact
        evaluation, else ``recipe.validation_samples`` episodes per start state
    :param verbose: 0 silent, 1 prints every evaluation, 2 also every step's loss
    :return: the cloning's steps, losses and evaluations, and the training seeds the expert could not solve
    """
    validation = [int(s) for s in validation_seeds]
    if not validation:
        raise ValueError("validation_seeds is empty: pass the validation start states that decide when cloning stops.")
    evaluator = None
    if validation_pass_at_1 is None:
        evaluator = _Evaluator(task, recipe, 0 if seed is None else seed)

        def validation_pass_at_1() -> float:
            assert evaluator is not None
            return evaluator(model, validation, [1], recipe.validation_samples)["pass@1"]

    batches, unsolved = _expert_batches(task, train_seeds, recipe.bc_batch_size, seed)
    try:
        cloning = behavior_cloning(
            model,
            batches,
            recipe.bc_max_steps,
            learning_rate=recipe.bc_learning_rate,
            evaluate=validation_pass_at_1,
            target=recipe.base_target,
            eval_freq=recipe.bc_eval_freq,
            verbose=verbose,
        )
    finally:
        if evaluator is not None:
            evaluator.close()
    return cloning, unsolved


def _ppo_from_actor(
    base: MaxRL,
    venv: VecEnv,
    recipe: Recipe,
    learning_rate: float,
    timesteps: int,
    train: Sequence[int],
    seed: int,
    tensorboard_log: str | None,
) -> PPO:
    """SB3 PPO whose actor is the cloned base (latent net and action head copied), with a fresh critic (or none)."""
    net_arch = list(recipe.net_arch)
    model = PPO(
        "MlpPolicy",
        venv,
        learning_rate=learning_rate,
        n_steps=recipe.ppo_n_steps,
        batch_size=recipe.ppo_batch_size,
        n_epochs=recipe.ppo_n_epochs,
        clip_range=recipe.ppo_clip_range,
        gamma=recipe.ppo_gamma,
        vf_coef=0.5 if recipe.ppo_learned_critic else 0.0,
        max_grad_norm=recipe.max_grad_norm if recipe.ppo_max_grad_norm is None else recipe.ppo_max_grad_norm,
        policy_kwargs=dict(net_arch=dict(pi=net_arch, vf=net_arch)),
        tensorboard_log=tensorboard_log,
        seed=seed,
    )
    model.policy.features_extractor.load_state_dict(base.policy.features_extractor.state_dict())
    model.policy.mlp_extractor.policy_net.load_state_dict(base.policy.latent_net.state_dict())
    model.policy.action_net.load_state_dict(base.policy.action_net.state_dict())
    if not recipe.ppo_learned_critic:  # V = 0 everywhere, and with vf_coef = 0 no gradient moves it
        for parameter in model.policy.value_net.parameters():
            parameter.data.zero_()
    # PPO resets env slots itself: queue training start states for the whole run (each episode takes >= 1 step)
    rng = np.random.default_rng(seed)
    per_slot = timesteps // venv.num_envs + recipe.ppo_n_steps + 2
    start_state_control(venv).schedule_episodes(
        {slot: [EpisodeStart(int(s)) for s in rng.choice(train, per_slot)] for slot in range(venv.num_envs)}, replace=True
    )
    return model


def _fine_tune(
    task: Task,
    recipe: Recipe,
    base: MaxRL,
    method: str,
    learning_rate: float,
    timesteps: int,
    seeds: StartSeeds,
    seed: int,
    tensorboard_log: str | None,
    callback: BaseCallback | None = None,
) -> Any:
    venv = task.make_vec_env(recipe.n_envs, seed)
    name = f"{method}_lr{learning_rate:g}_seed{seed}"
    model: Any
    if method == PPO_METHOD:
        model = _ppo_from_actor(base, venv, recipe, learning_rate, timesteps, seeds.train, seed, tensorboard_log)
    else:
        model = MaxRL(
            "MlpPolicy",
            venv,
            estimator=method,
            train_seeds=seeds.train,
            max_episode_steps=task.max_episode_steps,
            tensorboard_log=tensorboard_log,
            seed=seed,
            **recipe.maxrl_kwargs(learning_rate),
        )
        model.policy.load_state_dict(base.policy.state_dict())
        if recipe.updates is not None:  # the budget is a number of updates: timesteps it cannot reach
            stop = StopTrainingOnMaxUpdates(recipe.updates)
            callback = stop if callback is None else CallbackList([stop, callback])
            timesteps = UNREACHABLE_TIMESTEPS
    model.learn(timesteps, callback=callback, tb_log_name=name)
    venv.close()
    return model


class _HeldOutEvalCallback(BaseCallback):
    """
    Evaluates on the held-out start states every ``every`` env steps, or every ``every`` updates for a run whose
    budget is a number of updates, and logs pass@k under ``eval/``.

    :param evaluate: ``model -> metrics``
    :param every: env steps (or updates) between evaluations
    :param in_updates: count updates (rollouts begun after an update) instead of env steps
    """

    def __init__(self, evaluate: Callable[[Any], dict[str, float]], every: int, in_updates: bool = False) -> None:
        super().__init__()
        self.evaluate, self.every, self.next_at, self.in_updates = evaluate, every, every, in_updates
        self.updates_done = 0

    def _on_rollout_start(self) -> None:
        if self.in_updates:
            self._evaluate_if_due(self.updates_done)
            self.updates_done += 1  # this rollout's update follows it

    def _on_step(self) -> bool:
        if not self.in_updates:
            self._evaluate_if_due(self.num_timesteps)
        return True

    def _evaluate_if_due(self, progress: int) -> None:
        if progress >= self.next_at:  # between updates, written at once: no later dump is certain to follow
            _log_to_tensorboard(self.model, self.evaluate(self.model), "eval", dump=self.in_updates)
            self.next_at += self.every


def _log_to_tensorboard(model: Any, metrics: dict[str, float], prefix: str, dump: bool = True) -> None:
    for key, value in metrics.items():
        if key.startswith(("pass@", "neg_log_pass@")) and math.isfinite(value):
            model.logger.record(f"{prefix}/{key}", value)
    if dump:
        model.logger.dump(model.num_timesteps)


def validation_score(metrics: dict[str, float], ks: Sequence[int]) -> float:
    """
    What a learning-rate choice minimizes on the validation start states: both ends of the curve,
    ``-log pass@1 + -log pass@{max k}`` (a method is judged on its first sample and on its coverage).

    :param metrics: the validation metrics (``neg_log_pass@k`` for k = 1 and max(ks))
    :param ks: the ks of the table
    :return: the score (lower is better)
    """
    return metrics["neg_log_pass@1"] + metrics[f"neg_log_pass@{max(ks)}"]


def _run_seed(
    task: Task,
    recipe: Recipe,
    methods: list[str],
    start_seeds: StartSeeds,
    seed: int,
    curve_ks: list[int],
    tensorboard_log: str | None,
    say: Callable[..., None],
    model_dir: Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One seed of the protocol: clone a base, fine-tune and evaluate every method; the rows and the run's summary."""
    ks = recipe.ks
    th.manual_seed(seed)
    evaluator = _Evaluator(task, recipe, seed)
    run_started = time.perf_counter()
    base_env = task.make_vec_env(recipe.n_envs, seed)
    base = MaxRL(
        "MlpPolicy",
        base_env,
        n_groups=recipe.n_groups,
        group_size=recipe.group_size,
        policy_kwargs=dict(net_arch=list(recipe.net_arch)),
        seed=seed,
    )
    cloning, unsolved = clone_base(
        task,
        recipe,
        base,
        start_seeds.train,
        start_seeds.validation,
        seed=seed,
        validation_pass_at_1=lambda: evaluator(base, start_seeds.validation, [1], recipe.validation_samples)["pass@1"],
    )
    base_metrics = evaluator(base, start_seeds.test, curve_ks, recipe.eval_samples)
    if model_dir is not None:
        base.save(model_dir / f"base_seed{seed}.zip")
    say(
        f"[{task.name} seed {seed}] base: {cloning.n_steps} cloning steps, validation pass@1 "
        f"{cloning.last_evaluation:.4f}, test pass@1 {base_metrics['pass@1']:.4f}; expert failed on {len(unsolved)} "
        f"training start states ({time.perf_counter() - run_started:.0f} s)"
    )
    rows: list[dict[str, Any]] = []
    rows.append(
        dict(
            method="base",
            seed=seed,
            learning_rate=recipe.bc_learning_rate,
            timesteps=0,
            seconds=time.perf_counter() - run_started,
        )
        | base_metrics
    )
    run_summary: dict[str, Any] = dict(
        seed=seed,
        bc_steps=cloning.n_steps,
        bc_stopped_at_target=cloning.stopped_at_target,
        bc_validation_pass_at_1=cloning.evaluations,
        expert_unsolved_train_seeds=sorted(unsolved),
        methods={},
    )
    family_steps: list[int] = []  # env steps of the MaxRL-family runs, whose updates are whole groups of episodes
    for method in sorted(methods, key=lambda m: m == PPO_METHOD):  # PPO last: it gets their median budget
        timesteps = int(np.median(family_steps)) if method == PPO_METHOD and family_steps else recipe.timesteps
        learning_rates = recipe.learning_rates_of(method)
        validations: dict[str, dict[str, float]] = {}
        best: tuple[float, float, Any, float] | None = None  # validation score, learning rate, model, seconds
        for learning_rate in learning_rates:
            method_started = time.perf_counter()
            callback = None
            if recipe.eval_points > 0:
                in_updates = recipe.updates is not None and method != PPO_METHOD
                callback = _HeldOutEvalCallback(
                    lambda m: evaluator(m, start_seeds.test, ks, recipe.eval_samples),
                    max((recipe.updates if in_updates else timesteps) // recipe.eval_points, 1),  # type: ignore[operator]
                    in_updates=in_updates,
                )
            model = _fine_tune(
                task, recipe, base, method, learning_rate, timesteps, start_seeds, seed, tensorboard_log, callback
            )
            if model_dir is not None:
                model.save(model_dir / f"{method}_lr{learning_rate:g}_seed{seed}.zip")
            if method != PPO_METHOD:
                family_steps.append(model.num_timesteps)
            score = 0.0
            if len(learning_rates) > 1:  # the choice is made on validation start states, never on test ones
                validations[f"{learning_rate:g}"] = evaluator(model, start_seeds.validation, ks, recipe.eval_samples)
                score = validation_score(validations[f"{learning_rate:g}"], ks)
                say(
                    f"[{task.name} seed {seed}] {method} lr={learning_rate:g}: validation -log pass@1 + -log "
                    f"pass@{max(ks)} = {score:.3f}"
                )
            if best is None or score < best[0]:
                best = (score, learning_rate, model, time.perf_counter() - method_started)
        assert best is not None
        _, learning_rate, model, seconds = best
        test = evaluator(model, start_seeds.test, curve_ks, recipe.eval_samples)
        _log_to_tensorboard(model, test, "eval_test")
        say(
            f"[{task.name} seed {seed}] {method} lr={learning_rate:g}: test -log pass@{max(ks)} "
            f"{test[f'neg_log_pass@{max(ks)}']:.3f}, {model.num_timesteps} env steps ({seconds:.0f} s)"
        )
        rows.append(
            dict(method=method, seed=seed, learning_rate=learning_rate, timesteps=model.num_timesteps, seconds=seconds) | test
        )
        run_summary["methods"][method] = dict(chosen_learning_rate=learning_rate, validation=validations)
    evaluator.close()
    base_env.close()
    return rows, run_summary


def run_protocol(
    task: Task,
    recipe: Recipe | None = None,
    methods: Sequence[str] = ("maxrl", "grpo", "rloo", PPO_METHOD),
    *,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    verbose: int = 1,
) -> ProtocolResult:
    """
    Run the protocol (module docstring): split by identity, clone a weak base, fine-tune each method, evaluate.

    :param task: the task (:class:`Task`, :func:`minigrid_task`, :func:`strict_maze_task`)
    :param recipe: the settings; None for ``Recipe()``
    :param methods: MaxRL estimators ("maxrl", "grpo", "rloo", ...) and/or "ppo"
    :param seeds: one run per seed (its own base: initialization, cloning draws and fine-tuning)
    :param out_dir: where to write ``table.csv``, ``rows.csv``, ``summary.json``, ``tb/``, ``models/`` and the plot;
        None: nothing
    :param verbose: 0 silent, 1 one line per stage
    :return: the rows, the summary and the table
    """
    recipe = Recipe() if recipe is None else recipe
    methods = _check_methods(methods)
    ks = tuple(int(k) for k in recipe.ks)
    curve_ks = sorted(set(geometric_ks(max(ks))) | set(ks))
    if task.exact_pass_at_k is None and recipe.eval_samples < max(ks):
        raise ValueError(f"Sampled pass@{max(ks)} needs eval_samples >= {max(ks)}, got {recipe.eval_samples}.")
    out = None if out_dir is None else Path(out_dir)
    tensorboard_log = None if out is None else str(out / "tb")
    model_dir = None if out is None else out / "models"
    if model_dir is not None:
        model_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    say = print if verbose else (lambda *args, **kwargs: None)
    start_seeds = draw_start_seeds(task.key_function(), recipe.n_train, recipe.n_validation, recipe.n_test)
    say(
        f"[{task.name}] start states: {len(start_seeds.train)} train, {len(start_seeds.validation)} validation, "
        f"{len(start_seeds.test)} test, pairwise different ({time.perf_counter() - started:.0f} s)"
    )
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = dict(
        task=task.name,
        methods=methods,
        seeds=list(seeds),
        recipe=asdict(recipe),
        exact=task.exact_pass_at_k is not None,
        start_states=dict(train=len(start_seeds.train), validation=len(start_seeds.validation), test=len(start_seeds.test)),
        runs=[],
    )
    for seed in seeds:
        seed_rows, run_summary = _run_seed(task, recipe, methods, start_seeds, seed, curve_ks, tensorboard_log, say, model_dir)
        rows += seed_rows
        summary["runs"].append(run_summary)
    summary["seconds"] = time.perf_counter() - started
    result = ProtocolResult(rows=rows, summary=summary, ks=ks, out_dir=out)
    if out is not None:
        write_outputs(result, out)
    return result


def write_outputs(result: ProtocolResult, out_dir: str | Path) -> None:
    """
    Write ``rows.csv`` (every run), ``table.csv`` (mean and sd over seeds), ``summary.json`` and the plot.

    :param result: the protocol's result
    :param out_dir: the directory (created)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("rows.csv", result.rows), ("table.csv", result.table())):
        columns = list(dict.fromkeys(key for record in records for key in record))
        with open(out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
    summary = result.summary | dict(table=result.table())
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    try:
        plot_neg_log_pass_at_k(result, out / "neg_log_pass_at_k.png")
    except ImportError:
        warnings.warn("matplotlib is missing: no plot written (pip install 'sb3-maxrl[plots]').")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, float | np.ndarray):
        return np.asarray(value).tolist()
    return str(value)


def plot_neg_log_pass_at_k(result: ProtocolResult, path: str | Path, title: str | None = None) -> None:
    """
    Plot ``-log pass@k`` against k (both axes logarithmic), one line per method averaged over seeds, the base dashed.

    :param result: the protocol's result
    :param path: the image file
    :param title: the title; None for the task's name
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.6))
    for method in dict.fromkeys(row["method"] for row in result.rows):
        rows = [row for row in result.rows if row["method"] == method]
        ks = sorted({int(key.split("@")[1]) for key in rows[0] if key.startswith("neg_log_pass@")})
        values = [np.mean([row[f"neg_log_pass@{k}"] for row in rows]) for k in ks]
        axis.plot(ks, values, marker="o", markersize=3, linestyle="--" if method == "base" else "-", label=method)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("k")
    axis.set_ylabel("-log pass@k (held out)")
    axis.set_title(title or str(result.summary.get("task", "")))
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- tasks -----------------------------------------------------------------------------------------------------------


def minigrid_task(env_id: str, *, obs: str = "flat", fully_observed: bool = False) -> Task:
    """
    A stock MiniGrid or BabyAI id as a protocol task.

    MiniGrid navigation ids get the shortest-path planner (navigation actions only), BabyAI ids minigrid's
    ``BabyAIBot`` (all 7 actions). The evaluation is exact where the env is deterministic navigation (no door, key or
    moving obstacle; :func:`sb3_maxrl_envs.minigrid_exact.check_exact_coverage`), sampled otherwise. The start-state
    identity is the full grid, the agent's pose and the mission
    (:func:`~sb3_maxrl_envs.minigrid_expert.minigrid_start_state_key`).

    :param env_id: e.g. ``"MiniGrid-LavaCrossingS9N2-v0"`` or ``"BabyAI-GoToRedBallGrey-v0"``
    :param obs: the observation encoding of :func:`~sb3_maxrl_envs.minigrid_wrappers.make_minigrid`
    :param fully_observed: observe the whole grid instead of the 7x7 view
    :return: the task
    """
    from sb3_maxrl_envs.minigrid_exact import check_exact_coverage, exact_evaluator
    from sb3_maxrl_envs.minigrid_expert import BabyAIBotExpert, MiniGridPlanner, minigrid_start_state_key
    from sb3_maxrl_envs.minigrid_wrappers import make_minigrid

    babyai = env_id.startswith("BabyAI-")

    def env_fn() -> gym.Env:
        return make_minigrid(env_id, obs=obs, fully_observed=fully_observed, nav_actions=not babyai)  # type: ignore[arg-type]

    probe = env_fn()
    key_env = env_fn()
    exact: ExactEvaluator | None = None
    try:
        probe.reset(seed=0)
        check_exact_coverage(probe)
        exact = exact_evaluator(env_fn)
    except ValueError:
        exact = None
    expert: Expert = BabyAIBotExpert(env_fn) if babyai else MiniGridPlanner(env_fn)
    return Task(
        name=env_id,
        env_fn=env_fn,
        expert=expert,
        start_state_key=lambda seed: minigrid_start_state_key(key_env, seed),
        exact_pass_at_k=exact,
    )


def strict_maze_task(size: int = 9) -> Task:
    """
    The package's strict mazes as a protocol task: the native ``StrictMazeVecEnv``, the BFS expert, exact pass@k.

    :param size: grid side (9, 13 or 17)
    :return: the task
    """
    from sb3_maxrl_envs.strict_maze import (
        StrictMazeEnv,
        StrictMazeVecEnv,
        exact_pass_at_k,
        expert_transitions,
        layout_key,
        maze_walls,
    )

    return Task(
        name=f"MaxRL/StrictMaze-{size}x{size}-v0",
        env_fn=lambda: StrictMazeEnv(size),
        expert=lambda seed: expert_transitions(size, [seed]),
        start_state_key=lambda seed: layout_key(maze_walls(size, seed)),
        exact_pass_at_k=lambda policy, seeds, ks: exact_pass_at_k(policy, size, seeds, ks),
        vec_env_fn=lambda n_envs, seed: StrictMazeVecEnv(n_envs, size, seed=seed),
    )


#: Per-task settings, by env id (the strict mazes': :data:`sb3_maxrl.experiments.strict_mazes.RECIPES`, by size, which
#: :func:`recipe_for` reads). MiniGrid layouts repeat (LavaCrossingS9N2: about 450 distinct layouts in its first
#: 3000 seeds, LavaGapS7: 15), so the sets are sized to what the generator offers. Every MaxRL-family method gets
#: PPO's update machinery (the :class:`Recipe` defaults: 4 clipped epochs over minibatches of 256 steps); the learning
#: rates are the choices of ``python -m benchmarks.minigrid_tasks --grid`` on each task's validation layouts. The
#: budgets keep the benchmark (4 tasks, 4 methods, 5 seeds and a 2-point grid) to about 3 hours on 2 cores.
RECIPES: dict[str, Recipe] = {
    "MiniGrid-LavaCrossingS9N2-v0": Recipe(n_train=200, n_validation=64, n_test=128, timesteps=150_000),
    "MiniGrid-LavaCrossingS11N5-v0": Recipe(n_train=500, n_validation=64, n_test=128, timesteps=150_000),
    # a random walk already solves about 14% of SimpleCrossingS11N5 episodes, which last up to 484 steps: 8 x 16
    # episodes per update keep it to about 60,000 env steps
    "MiniGrid-SimpleCrossingS11N5-v0": Recipe(n_train=1000, n_validation=64, n_test=128, timesteps=150_000, n_groups=8),
    "MiniGrid-LavaGapS7-v0": Recipe(n_train=8, n_validation=2, n_test=5, bc_batch_size=8, timesteps=100_000),
    # sampled evaluation (BabyAI overrides MiniGrid's step): 64 episodes per held-out layout, ks up to 64
    "BabyAI-GoToRedBallGrey-v0": Recipe(
        n_train=2000,
        n_validation=16,
        n_test=32,
        timesteps=100_000,
        bc_eval_freq=10,
        validation_samples=8,
        eval_samples=64,
        ks=(1, 16, 64),
    ),
}


def recipe_for(env_id: str, **overrides: Any) -> Recipe:
    """
    The recipe of an env id (:data:`RECIPES`; a strict maze's: :data:`sb3_maxrl.experiments.strict_mazes.RECIPES`;
    else the defaults), with some settings replaced.

    :param env_id: the env id
    :param overrides: settings of :class:`Recipe` to replace
    :return: the recipe
    """
    recipe = RECIPES.get(env_id, Recipe())
    size = _strict_maze_size(env_id)
    if size is not None:
        from sb3_maxrl.experiments.strict_mazes import recipe_of

        recipe = recipe_of(size)
    return replace(recipe, **overrides)


def _strict_maze_size(env_id: str) -> int | None:
    """The size of a ``MaxRL/StrictMaze-{n}x{n}-v0`` id with a recipe (9, 13, 17), else None."""
    for size in (9, 13, 17):
        if env_id == f"MaxRL/StrictMaze-{size}x{size}-v0":
            return size
    return None


def task_for(env_id: str) -> Task:
    """
    The protocol task of an env id: MiniGrid / BabyAI ids and the strict mazes have an expert here.

    :param env_id: the env id
    :return: the task
    """
    if env_id.startswith(("MiniGrid-", "BabyAI-")):
        return minigrid_task(env_id)
    size = _strict_maze_size(env_id)
    if size is not None:
        return strict_maze_task(size)
    raise ValueError(
        f"No expert is known for {env_id!r}: the weak-base protocol needs one. Pass your own, "
        "Task(name, env_fn, expert=lambda seed: (observations, actions) or None), to run_protocol."
    )
