"""``maxrl-train``: the main job. On a strict maze: behaviour cloning to a weak base, MaxRL fine-tuning, and the
exact pass@k table against the base; on any other env: MaxRL with periodic pass@k evaluation.

At its defaults it runs the paper's maze pipeline on ``MaxRL/StrictMaze-9x9-v0`` (a wrong move ends the episode):

1. training, validation and held-out test mazes, pairwise different layouts;
2. the SFT stage: behaviour cloning of BFS-optimal paths until the exact validation pass@1 reaches 1% (a weak base);
3. MaxRL fine-tuning from that base for a number of updates (``n_groups`` mazes x ``group_size`` episodes each),
   with exact held-out pass@k logged to TensorBoard every ``--eval-freq`` timesteps;
4. the table of pass@k and -log pass@k (k = 1, 16, 64, 1024) on the held-out mazes, base against fine-tuned.

``--compare grpo rloo`` fine-tunes the same base with the same budget and other estimators and adds their columns:
the table that shows what MaxRL is for (its -log pass@64 below theirs, its pass@1024 not below the base's).
Every stage is the generic protocol's (``sb3_maxrl.experiments.pipeline``), with the settings of
``sb3_maxrl.experiments.strict_mazes.RECIPES`` (shared with ``benchmarks/strict_mazes.py``):
on 9x9 PPO-style reuse (4 clipped epochs over 4 episodes x 64 mazes per update), chosen on validation mazes;
``--paper-update`` runs the paper's one plain on-policy gradient step per update on 16 episodes x 16 mazes instead::

    maxrl-train
    maxrl-train --compare grpo rloo
    maxrl-train --compare grpo rloo --paper-update
    maxrl-train --env MaxRL/StrictMaze-13x13-v0 --updates 400
    tensorboard --logdir runs

On any other env id it trains MaxRL with MaxRL's own defaults for 300k timesteps in 8 envs, with pass@k estimated
from samples on held-out start states::

    maxrl-train --env MaxRL/Maze-9x9-v0
    maxrl-train --env MaxRL/Maze-9x9-v0 --estimator grpo --timesteps 200000 --eval-freq 50000
    maxrl-train --env MiniGrid-DoorKey-5x5-v0          # a MiniGrid id: its flat binary-success task
    maxrl-train --env MaxRL/MiniGrid-v0 --env-kwargs env_id=MiniGrid-Empty-5x5-v0 nav_actions=true
    maxrl-train --config --env MaxRL/Maze-13x13-v0     # the packaged zoo config's entry for the env
    maxrl-train --env MaxRL/Maze-9x9-v0 --config my_hyperparams.yml

Env ids are resolved by ``sb3_maxrl.common.env_ids.make_env``, as ``MaxRL`` does: a MiniGrid or BabyAI id is
``sb3_maxrl_envs.make_minigrid(env_id, **env_kwargs)``. An env that declares start-state identities
(``start_state_key``, e.g. the perfect mazes, where two seeds can give one maze) trains on a finite set of
``--train-start-states`` seeds disjoint by identity from the held-out ones, so evaluation stays held out.

Settings come from, in increasing priority: the defaults (strict mazes: the recipe of the maze size; other envs:
``sb3_maxrl.MaxRL``'s defaults with this command's run settings, listed at the end), ``--config`` (a YAML file of
MaxRL keyword arguments, flat or in rl-baselines3-zoo's format ``{env_id: hyperparams}``; without a file, the
packaged ``zoo_configs/maxrl.yml``, which has no strict-maze entries) and the flags given explicitly. Only the
settings given reach ``MaxRL``: the class is the one place for its defaults.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch as th
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_maxrl.cli import CONFIG_DIR
from sb3_maxrl.common.behavior_cloning import BehaviorCloningResult
from sb3_maxrl.common.callbacks import (
    ExactPassAtKEvalCallback,
    PassAtKEvalCallback,
    StopTrainingOnMaxUpdates,
    UpdateProgressBarCallback,
)
from sb3_maxrl.common.env_ids import make_group_vec_env, task_wrapper
from sb3_maxrl.common.estimators import ESTIMATORS
from sb3_maxrl.common.evaluation import PassAtKResult, disjoint_train_seeds
from sb3_maxrl.common.exact_evaluation import DEFAULT_EXACT_KS, ExactPassAtKResult, sample_efficiency_ratio
from sb3_maxrl.common.start_states import default_eval_seeds, start_state_keys
from sb3_maxrl.common.utils import signature_defaults
from sb3_maxrl.experiments.pipeline import (
    PAPER_ONE_STEP_UPDATE,
    PPO_METHOD,
    UNREACHABLE_TIMESTEPS,
    Recipe,
    clone_base,
    draw_start_seeds,
    recipe_for,
    run_protocol,
    strict_maze_task,
    task_for,
)
from sb3_maxrl.experiments.strict_mazes import RECIPES, TABLE_KS, env_slots, paper_update, recipe_of
from sb3_maxrl.maxrl import MaxRL

DEFAULT_ENV = "MaxRL/StrictMaze-9x9-v0"
#: Env ids run through the strict-maze pipeline (behaviour-cloned base, MaxRL, exact pass@k table)
STRICT_MAZE_PREFIX = "MaxRL/StrictMaze-"
#: This command's own settings for other envs (8 DummyVecEnv envs: 2x the steps per second of 4 here). MaxRL's
#: hyperparameters are not repeated: those not given by a flag or ``--config`` keep the defaults of
#: :class:`~sb3_maxrl.MaxRL`.
RUN_DEFAULTS: dict[str, Any] = {"policy": "MlpPolicy", "n_timesteps": 300_000, "n_envs": 8}
#: Held-out start states and samples per start state of the sampled evaluation (other envs)
SAMPLED_EVAL_DEFAULTS = {"eval_start_states": 16, "eval_samples": 16}
#: Training start seeds of an env that declares start-state identities, when ``--train-start-states`` is not given
DEFAULT_TRAIN_START_STATES = 10_000
#: ``--config`` without a file: the zoo config shipped with the package
PACKAGED_CONFIG = CONFIG_DIR / "maxrl.yml"
#: MaxRL's keyword arguments that are not hyperparameters of the run (summary.json leaves them out)
NOT_HYPERPARAMS = ("policy", "env", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model")
#: flag name -> hyperparameter name
FLAG_TO_HYPERPARAM = {
    "timesteps": "n_timesteps",
    "n_envs": "n_envs",
    "estimator": "estimator",
    "group_size": "group_size",
    "n_groups": "n_groups",
    "learning_rate": "learning_rate",
}
#: Flags of the strict-maze pipeline only, and flags of the other envs only
STRICT_MAZE_FLAGS = ("updates", "compare", "train_mazes", "base_target")
OTHER_ENV_FLAGS = ("timesteps", "eval_samples", "vec_env", "env_kwargs", "train_start_states")
#: rl-baselines3-zoo keys that need the zoo's machinery
ZOO_ONLY_KEYS = ("normalize", "frame_stack", "env_wrapper", "vec_env_wrapper", "callback")
SUMMARY_FILE = "summary.json"
#: Hyperparameters of the strict-maze run that are settings of its recipe too (summary.json's ``recipe``)
RECIPE_HYPERPARAMS = ("group_size", "n_groups", "n_epochs", "batch_size", "clip_range", "max_grad_norm")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; hyperparameter flags default to None so that a ``--config`` value can win."""
    recipe = RECIPES[9]
    parser = argparse.ArgumentParser(
        prog="maxrl-train",
        description=__doc__,
        epilog=f"run settings of other envs: {RUN_DEFAULTS}; every other hyperparameter: sb3_maxrl.MaxRL's default",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"gymnasium env id, MiniGrid ids included (default: {DEFAULT_ENV})")
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        metavar="KEY=VALUE",
        help="keyword arguments of the env, values read as YAML (e.g. env_id=MiniGrid-Empty-5x5-v0 nav_actions=true); "
        "not for strict mazes",
    )
    parser.add_argument(
        "--train-start-states",
        type=int,
        help="train on this many start seeds (a finite set disjoint from the held-out start states, by identity where "
        f"the env declares one); default: the infinite stream, or {DEFAULT_TRAIN_START_STATES} for an env that "
        "declares start-state identities (start_state_key); not for strict mazes (--train-mazes)",
    )
    defaults = {**signature_defaults(MaxRL), **RUN_DEFAULTS}
    strict = "strict mazes: the recipe's,"
    parser.add_argument("--estimator", choices=ESTIMATORS, help=f"advantage estimator (default: {defaults['estimator']})")
    parser.add_argument(
        "--group-size",
        type=int,
        help=f"N, episodes per start state (default: {defaults['group_size']}; {strict} {recipe.group_size} on 9x9)",
    )
    parser.add_argument(
        "--n-groups",
        type=int,
        help=f"G, start states per update (default: {defaults['n_groups']}; {strict} {recipe.n_groups} on 9x9)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        help=f"learning rate (default: {defaults['learning_rate']}; {strict} {recipe.default_learning_rates[0]} on 9x9)",
    )
    parser.add_argument(
        "--timesteps", type=int, help=f"total env steps, not for strict mazes (default: {defaults['n_timesteps']})"
    )
    parser.add_argument(
        "--updates", type=int, help=f"strict mazes: RL updates after the base (default: the recipe's, {recipe.updates} on 9x9)"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        choices=[*ESTIMATORS, PPO_METHOD],
        metavar="METHOD",
        help="also fine-tune the same behaviour-cloned base with these estimators (e.g. grpo rloo) and add their columns; "
        "with 'ppo' (SB3 PPO from the cloned actor), or on an env with an expert other than a strict maze (MiniGrid and "
        "BabyAI ids), the run goes through the generic protocol (sb3_maxrl.experiments.pipeline)",
    )
    parser.add_argument(
        "--paper-update",
        action="store_true",
        help="the paper's update for the MaxRL family: one plain on-policy gradient step per update (strict mazes: on "
        "16 episodes x 16 mazes at 9x9) instead of the recipe's PPO-style reuse (strict 9x9 mazes: 4 clipped epochs "
        "over 4 episodes x 64 mazes, chosen on validation mazes, docs/results/strict_mazes.md; MiniGrid and BabyAI: "
        "PPO's 4 clipped epochs over minibatches of 256 steps)",
    )
    parser.add_argument(
        "--train-mazes", type=int, help=f"strict mazes: training mazes (default: the recipe's, {recipe.n_train})"
    )
    parser.add_argument(
        "--base-target",
        type=float,
        help=f"strict mazes: behaviour cloning stops at this validation pass@1 (default: {recipe.base_target})",
    )
    parser.add_argument(
        "--n-envs", type=int, help=f"parallel envs (default: {defaults['n_envs']}; strict mazes: one per episode, <= 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--config",
        nargs="?",
        const=str(PACKAGED_CONFIG),
        help="YAML file of MaxRL kwargs, flat or {env_id: hyperparams}; without a file: the packaged zoo config",
    )
    parser.add_argument("--eval-freq", type=int, default=100_000, help="evaluate every this many timesteps (0: at the end)")
    parser.add_argument(
        "--eval-start-states",
        type=int,
        help=f"held-out start states (default: {SAMPLED_EVAL_DEFAULTS['eval_start_states']}; strict mazes: {recipe.n_test})",
    )
    parser.add_argument(
        "--eval-samples",
        type=int,
        help="episodes per evaluation start state (max k), not for strict mazes "
        f"(default: {SAMPLED_EVAL_DEFAULTS['eval_samples']})",
    )
    parser.add_argument("--log-dir", default="runs", help="TensorBoard folder; each run writes <log-dir>/MaxRL_<i>")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), help="VecEnv class, not for strict mazes (default: dummy)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose",
        type=int,
        default=1,
        help="0: only the summary, 1: every evaluation (strict mazes: each stage; 2: also every evaluation)",
    )
    return parser


def is_strict_maze(env_id: str) -> bool:
    """
    Whether ``env_id`` runs through the strict-maze pipeline.

    :param env_id: a gymnasium env id
    :return: True for the ``MaxRL/StrictMaze-*`` ids
    """
    return env_id.startswith(STRICT_MAZE_PREFIX)


def uses_protocol(args: argparse.Namespace) -> bool:
    """
    Whether the run goes through the generic protocol (:func:`sb3_maxrl.experiments.pipeline.run_protocol`): a
    comparison on an env with a known expert that the strict-maze pipeline does not cover.

    :param args: the parsed command line
    :return: True for ``--compare ... ppo``, or ``--compare`` on a MiniGrid or BabyAI id
    """
    compare = args.compare or []
    return bool(compare) and (PPO_METHOD in compare or (not is_strict_maze(args.env) and has_expert(args.env)))


def has_expert(env_id: str) -> bool:
    """
    :param env_id: an env id
    :return: True when the protocol knows an expert for it (MiniGrid and BabyAI ids, the strict mazes)
    """
    try:
        task_for(env_id)
    except ValueError:
        return False
    return True


def protocol_recipe(args: argparse.Namespace) -> tuple[Recipe, str]:
    """
    The recipe and the main estimator of a protocol run: a strict maze's (:func:`resolve_strict_maze_settings`, its
    flags and ``--config`` included), else the env id's (:func:`~sb3_maxrl.experiments.pipeline.recipe_for`) with
    ``--timesteps``, ``--paper-update``, ``--group-size``, ``--n-groups``, ``--n-envs`` and ``--learning-rate``.

    :param args: the parsed command line
    :return: the recipe and the estimator whose run the others are compared with
    :raises ValueError: for settings the run would drop
    """
    if is_strict_maze(args.env):
        recipe, hyperparams = resolve_strict_maze_settings(args)
        check_settings_reach_the_recipe(hyperparams, recipe)
        return recipe, str(hyperparams["estimator"])
    dropped = ["--config"] if args.config is not None else []
    given = [flag for flag in OTHER_ENV_FLAGS if flag != "timesteps" and getattr(args, flag) is not None]
    dropped += [f"--{flag.replace('_', '-')}" for flag in given]
    if dropped:
        raise ValueError(
            f"{', '.join(dropped)} cannot reach the protocol run on {args.env}, whose settings are its recipe "
            "(sb3_maxrl.experiments.pipeline.RECIPES): change them with --timesteps, --group-size, --n-groups, --n-envs, "
            "--learning-rate or --paper-update, or from Python with recipe_for(env_id, **changes)."
        )
    overrides: dict[str, Any] = {} if args.timesteps is None else {"timesteps": args.timesteps}
    overrides |= {key: getattr(args, key) for key in ("group_size", "n_groups", "n_envs") if getattr(args, key) is not None}
    if args.learning_rate is not None:
        overrides["default_learning_rates"] = (float(args.learning_rate),)
    if getattr(args, "paper_update", False):
        overrides |= PAPER_ONE_STEP_UPDATE
    return recipe_for(args.env, **overrides), args.estimator or "maxrl"


def check_settings_reach_the_recipe(hyperparams: dict[str, Any], recipe: Recipe) -> None:
    """
    Refuse MaxRL settings that a protocol run (``--compare ppo`` on a strict maze) would drop: it fine-tunes
    every method from the recipe alone.

    :param hyperparams: the main job's MaxRL keyword arguments (:func:`resolve_strict_maze_settings`)
    :param recipe: the recipe made from them
    :raises ValueError: naming the settings that would be dropped
    """
    carried = recipe.maxrl_kwargs()
    dropped = sorted(set(hyperparams) - set(carried) - {"policy", "estimator", "n_envs"})
    dropped += [key for key in ("learning_rate", "policy_kwargs") if hyperparams.get(key, carried[key]) != carried[key]]
    if dropped:
        raise ValueError(
            f"{dropped} cannot reach the protocol run of --compare ppo, which fine-tunes every method from the recipe's "
            f"settings only ({sorted(carried)}; a constant learning rate; policy_kwargs with net_arch alone). Drop them, "
            "or compare the MaxRL family without ppo."
        )


def train_protocol(args: argparse.Namespace) -> dict[str, Any]:
    """
    The paper's protocol through :func:`~sb3_maxrl.experiments.pipeline.run_protocol`: layouts split by identity,
    behaviour cloning of the task's expert to a weak base, fine-tuning with ``--estimator`` and every ``--compare``
    method at one budget, pass@k at large k on held-out start states (exact where the task allows). On a strict maze
    the recipe is the main job's (:func:`resolve_strict_maze_settings`, its flags included).

    :param args: the parsed command line
    :return: the protocol's summary
    """
    recipe, estimator = protocol_recipe(args)
    run_dir = os.path.join(args.log_dir, f"protocol_{args.seed}")
    result = run_protocol(
        task_for(args.env),
        recipe,
        list(dict.fromkeys([estimator, *args.compare])),
        seeds=[args.seed],
        out_dir=run_dir,
        verbose=1 if args.verbose else 0,
    )
    print(result.markdown())
    print(f"table.csv, summary.json, TensorBoard logs and models in {run_dir}")
    return result.summary


def check_flags(args: argparse.Namespace) -> None:
    """
    Refuse flags that do not apply to the chosen env, saying what to use instead.

    :param args: the parsed command line
    :raises ValueError: for a strict-maze flag with another env, or another env's flag with a strict maze
    """
    if is_strict_maze(args.env):
        given = [f"--{flag.replace('_', '-')}" for flag in OTHER_ENV_FLAGS if getattr(args, flag) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to the strict-maze pipeline "
                f"({args.env}): its budget is --updates (each update is n_groups x group_size complete episodes), "
                "its evaluation is exact (no samples), its VecEnv is StrictMazeVecEnv and its training mazes are "
                "--train-mazes. Drop them, or pass another --env."
            )
    elif uses_protocol(args):
        return
    elif args.compare:
        raise ValueError(
            f"--compare runs the paper's weak-base protocol, which needs an expert, and none is known for {args.env}: "
            "pass your own Task(...) with an expert to sb3_maxrl.experiments.pipeline.run_protocol (docs/guide/"
            "protocol.md), or drop --compare to train MaxRL from scratch with its defaults."
        )
    else:
        given = [f"--{flag.replace('_', '-')}" for flag in STRICT_MAZE_FLAGS if getattr(args, flag) is not None]
        given += ["--paper-update"] if getattr(args, "paper_update", False) else []
        if given:
            raise ValueError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to the strict-maze pipeline "
                f"(--env {STRICT_MAZE_PREFIX}9x9-v0, 13x13 or 17x17) and to the protocol (--compare on an env with "
                f"an expert), not to training --env {args.env} from scratch: use --timesteps for its budget."
            )


def load_config(path: str, env_id: str) -> dict[str, Any]:
    """
    Read MaxRL hyperparameters from a YAML file.

    :param path: a YAML file, either flat (``group_size: 16``) or rl-baselines3-zoo's ``{env_id: hyperparams}``
    :param env_id: the entry to take from a zoo-format file
    :return: the hyperparameters, ``policy_kwargs`` evaluated from its string form as rl-zoo3 does
    :raises ValueError: if the file is not a mapping, has no entry for ``env_id`` or needs rl-zoo3's machinery
    """
    if not os.path.isfile(path):
        raise ValueError(f"--config {path}: no such file; give a YAML file, or --config alone for {PACKAGED_CONFIG}.")
    with open(path) as file:
        content = yaml.safe_load(file) or {}
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a mapping of hyperparameters, got {type(content).__name__}.")
    if content and all(isinstance(value, dict) for value in content.values()):
        if env_id not in content:
            raise ValueError(f"{path} has no entry for --env {env_id}; its entries are {sorted(content)}.")
        content = content[env_id]
    hyperparams = dict(content)
    env_kwargs = _env_kwargs_of_wrappers(hyperparams.get("env_wrapper"), env_id)
    if env_kwargs is not None:
        del hyperparams["env_wrapper"]  # maxrl-train adds StartStateWrapper, and make_env wraps a MiniGrid id
        hyperparams["env_kwargs"] = {**env_kwargs, **hyperparams.get("env_kwargs", {})}
    unsupported = [key for key in ZOO_ONLY_KEYS if key in hyperparams]
    if unsupported:
        raise ValueError(f"{path}: {unsupported} need rl-baselines3-zoo; use maxrl-zoo, or drop them for maxrl-train.")
    if isinstance(hyperparams.get("policy_kwargs"), str):
        namespace = {"__builtins__": {}, "dict": dict, "nn": th.nn, "th": th, "torch": th}
        hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"], namespace)
    return hyperparams


def _env_kwargs_of_wrappers(env_wrapper: Any, env_id: str) -> dict[str, Any] | None:
    """
    The env kwargs that stand for a zoo config's ``env_wrapper`` entry, if maxrl-train's own env making covers it.

    :param env_wrapper: the entry: a name, ``{name: kwargs}`` or a list of them (None: no entry)
    :param env_id: the env id
    :return: ``{}`` for StartStateWrapper alone (maxrl-train adds it), the ``wrap_minigrid`` kwargs (those of
        ``make_minigrid``) for a MiniGrid id, None for anything else (which needs rl-zoo3)
    """
    entries = [] if env_wrapper is None else env_wrapper if isinstance(env_wrapper, list) else [env_wrapper]
    env_kwargs: dict[str, Any] = {}
    for entry in entries:
        name, kwargs = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        if str(name).endswith("StartStateWrapper"):
            continue
        if str(name).endswith("wrap_minigrid") and task_wrapper(env_id) is not None:
            env_kwargs.update(kwargs or {})
            continue
        return None
    return env_kwargs if env_wrapper is not None else None


def parse_env_kwargs(
    pairs: Sequence[str] | None, flag: str = "--env-kwargs", example: str = "env_id=MiniGrid-Empty-5x5-v0"
) -> dict[str, Any]:
    """
    The ``--env-kwargs KEY=VALUE ...`` pairs as a dict, each value read as YAML (``true``, ``8``, ``0.5``, text).

    :param pairs: the pairs given (None: none)
    :param flag: the flag that took them, for the error message
    :param example: a valid pair, for the error message
    :return: the keyword arguments
    :raises ValueError: for a pair without ``=``
    """
    env_kwargs: dict[str, Any] = {}
    for pair in pairs or []:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"{flag} {pair!r} is not KEY=VALUE; e.g. {flag} {example}.")
        env_kwargs[key] = yaml.safe_load(value)
    return env_kwargs


def resolve_hyperparams(args: argparse.Namespace) -> dict[str, Any]:
    """
    The run settings of an env other than a strict maze, overridden by ``--config``, overridden by the flags given.

    :param args: the parsed command line
    :return: ``n_timesteps``, ``n_envs``, ``policy``, ``env_kwargs`` (if any) and the MaxRL keyword arguments given
        (no MaxRL default)
    """
    hyperparams = dict(RUN_DEFAULTS)
    if args.config is not None:
        hyperparams.update(load_config(args.config, args.env))
    for flag, key in FLAG_TO_HYPERPARAM.items():
        if getattr(args, flag) is not None:
            hyperparams[key] = getattr(args, flag)
    hyperparams["n_timesteps"] = int(hyperparams["n_timesteps"])
    env_kwargs = {**hyperparams.get("env_kwargs", {}), **parse_env_kwargs(args.env_kwargs)}
    if env_kwargs:
        hyperparams["env_kwargs"] = env_kwargs
    return hyperparams


def strict_maze_size(env_id: str) -> int:
    """
    The maze size of a strict-maze id.

    :param env_id: a ``MaxRL/StrictMaze-*`` id
    :return: the grid side registered for it
    :raises ValueError: if the id is not registered
    """
    if env_id not in gym.registry:
        registered = sorted(name for name in gym.registry if is_strict_maze(name))
        raise ValueError(f"--env {env_id} is not a registered strict maze; use one of {registered}.")
    return int(gym.spec(env_id).kwargs["size"])


def resolve_strict_maze_settings(args: argparse.Namespace) -> tuple[Recipe, dict[str, Any]]:
    """
    The strict-maze pipeline's settings: the recipe of the maze size
    (:data:`sb3_maxrl.experiments.strict_mazes.RECIPES`), overridden by ``--config``, overridden by the flags given.

    :param args: the parsed command line
    :return: the recipe of the run (updates, mazes, behaviour-cloning target, the update, ...: every setting it shares
        with the MaxRL keyword arguments, as given) and the MaxRL keyword arguments with ``policy``, ``n_envs`` and
        ``estimator``
    """
    size = strict_maze_size(args.env)
    recipe = recipe_of(size)
    if getattr(args, "paper_update", False):
        recipe = paper_update(recipe, size)
    hyperparams: dict[str, Any] = {"policy": "MlpPolicy", "estimator": "maxrl", **recipe.maxrl_kwargs()}
    if args.config is not None:
        if os.path.abspath(args.config) == os.path.abspath(PACKAGED_CONFIG):
            raise ValueError(
                "The packaged zoo config has no strict-maze entries (a strict maze needs the behaviour-cloned base): "
                "the pipeline's settings are sb3_maxrl.experiments.strict_mazes.RECIPES. Change them with flags "
                "(--learning-rate, --group-size, --n-groups, --updates) or --config FILE.yml of MaxRL kwargs."
            )
        config = load_config(args.config, args.env)
        if "n_timesteps" in config:
            raise ValueError(f"{args.config}: n_timesteps does not apply to a strict maze, whose budget is --updates.")
        hyperparams.update(config)
    for flag, key in FLAG_TO_HYPERPARAM.items():
        if getattr(args, flag) is not None:
            hyperparams[key] = getattr(args, flag)
    hyperparams.setdefault("n_envs", env_slots(hyperparams["n_groups"], hyperparams["group_size"]))
    given = {
        "updates": args.updates,
        "base_target": args.base_target,
        "n_test": args.eval_start_states,
        "n_validation": args.eval_start_states,
        "n_train": args.train_mazes,
    }
    shared = {key: hyperparams[key] for key in RECIPE_HYPERPARAMS} | {"n_envs": hyperparams["n_envs"]}
    if isinstance(hyperparams["learning_rate"], int | float):
        shared["default_learning_rates"] = (float(hyperparams["learning_rate"]),)
    net_arch = (hyperparams.get("policy_kwargs") or {}).get("net_arch")
    if isinstance(net_arch, list | tuple) and all(isinstance(units, int) for units in net_arch):
        shared["net_arch"] = tuple(net_arch)
    recipe = dataclasses.replace(recipe, **{key: value for key, value in given.items() if value is not None}, **shared)
    compare = list(dict.fromkeys(args.compare or []))
    if hyperparams["estimator"] in compare:
        raise ValueError(f"--compare {hyperparams['estimator']} repeats the main run's estimator; compare other estimators.")
    return recipe, hyperparams


def print_summary(result: PassAtKResult, title: str, details: str = "") -> None:
    """
    Print the pass@k table of one evaluation.

    :param result: the evaluation
    :param title: the table's title
    :param details: a line printed under the table
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("k", justify="right")
    table.add_column("pass@k", justify="right")
    table.add_column("-log pass@k", justify="right")
    for k, value in result.pass_at_k.items():
        table.add_row(str(k), f"{value:.4f}", f"{result.neg_log_pass_at_k[k]:.4f}")
    console = Console()
    console.print(table)
    console.print(f"mean likelihood {result.mean_likelihood:.4f}, nll {result.nll:.4f}. {details}")


def print_comparison(table: dict[str, dict[str, float]], ks: Sequence[int], title: str, details: str = "") -> None:
    """
    Print the pass@k tables of the base and the fine-tuned policies: -log pass@k, then pass@k, one column per policy.

    :param table: policy name -> ``{"pass@{k}": ..., "neg_log_pass@{k}": ...}``
    :param ks: the rows
    :param title: a line printed above the tables
    :param details: a line printed under the tables
    """
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(title)
    for metric, caption in (("neg_log_pass", "-log pass@k"), ("pass", "pass@k")):
        rich_table = Table(title=caption)
        rich_table.add_column("k", justify="right")
        for name in table:
            rich_table.add_column(name, justify="right")
        for k in ks:
            rich_table.add_row(str(k), *(f"{values[f'{metric}@{k}']:.3f}" for values in table.values()))
        console.print(rich_table)
    if details:
        console.print(details)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """
    Run the main job (:func:`train_strict_maze` on a strict maze), print the summary table and write
    ``summary.json`` into the TensorBoard run folder.

    :param args: the parsed command line
    :return: the summary written to ``summary.json``
    """
    check_flags(args)
    th.set_num_threads(args.torch_threads)
    if uses_protocol(args):
        return train_protocol(args)
    if is_strict_maze(args.env):
        return train_strict_maze(args)
    hyperparams = resolve_hyperparams(args)
    n_timesteps = hyperparams.pop("n_timesteps")
    n_envs = int(hyperparams.pop("n_envs"))
    policy = hyperparams.pop("policy")
    env_kwargs = hyperparams.pop("env_kwargs", {})
    vec_env_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv
    env = make_group_vec_env(args.env, n_envs, args.seed, env_kwargs, vec_env_cls)
    eval_env = make_group_vec_env(args.env, n_envs, args.seed, env_kwargs, vec_env_cls)
    eval_seeds = default_eval_seeds(args.eval_start_states or SAMPLED_EVAL_DEFAULTS["eval_start_states"])
    train_seeds = hyperparams.pop("train_seeds", None)
    n_train = args.train_start_states
    if train_seeds is None and n_train is None and start_state_keys(eval_env, eval_seeds[:1]) is not None:
        n_train = DEFAULT_TRAIN_START_STATES  # the infinite stream could draw a held-out start state
    if n_train is not None:
        train_seeds = disjoint_train_seeds(eval_env, eval_seeds, n_train)
    model = MaxRL(
        policy,
        env,
        train_seeds=train_seeds,
        seed=args.seed,
        tensorboard_log=args.log_dir,
        device=args.device,
        **hyperparams,
    )
    eval_callback = PassAtKEvalCallback(
        eval_env,
        eval_seeds=eval_seeds,
        n_samples=args.eval_samples or SAMPLED_EVAL_DEFAULTS["eval_samples"],
        eval_freq=max(args.eval_freq // n_envs, 1) if args.eval_freq > 0 else 0,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    model.learn(n_timesteps, callback=eval_callback, progress_bar=not args.no_progress)
    wall_time = time.perf_counter() - start
    env.close()
    eval_env.close()

    result = eval_callback.last_result
    assert result is not None, "eval_at_training_end evaluates the final policy"
    run_dir = model.logger.get_dir()
    assert run_dir is not None
    summary = {
        "env": args.env,
        "seed": args.seed,
        "num_timesteps": model.num_timesteps,
        "eval_num_timesteps": eval_callback.evaluations_timesteps[-1],
        "wall_time_s": round(wall_time, 2),
        "hyperparams": {
            "policy": policy,
            "n_envs": n_envs,
            "n_timesteps": n_timesteps,
            "env_kwargs": env_kwargs,
            **_maxrl_defaults(),
            **hyperparams,
            "train_seeds": None if train_seeds is None else f"{len(train_seeds)} start seeds disjoint from the held-out ones",
        },
        "maxrl_kwargs_given": sorted(hyperparams),
        "eval_start_states": len(eval_callback.eval_seeds),
        "eval_samples": eval_callback.n_samples,
        "eval": result.metrics(),
        "run_dir": run_dir,
    }
    model.save(os.path.join(run_dir, "model"))
    _write_summary(run_dir, summary)
    print_summary(
        result,
        f"{args.env} ({model.estimator})",
        f"{len(eval_callback.eval_seeds)} held-out start states x {eval_callback.n_samples} samples, after "
        f"{model.num_timesteps} timesteps ({wall_time:.0f} s of training and evaluation).",
    )
    print(f"TensorBoard logs, model.zip and {SUMMARY_FILE} in {run_dir}")
    return summary


def train_strict_maze(args: argparse.Namespace) -> dict[str, Any]:
    """
    The strict-maze pipeline: layout sets, behaviour cloning to a weak base, MaxRL fine-tuning (and the
    ``--compare`` estimators from the same base, with the same budget), and the exact pass@k table.

    Every stage is the generic pipeline's (:mod:`sb3_maxrl.experiments.pipeline`, the recipe of
    :mod:`sb3_maxrl.experiments.strict_mazes`): :func:`~sb3_maxrl.experiments.pipeline.draw_start_seeds` with the
    layout as identity, :func:`~sb3_maxrl.experiments.pipeline.clone_base`, MaxRL from ``Recipe.maxrl_kwargs`` on the
    task's VecEnv for ``recipe.updates`` updates, and the task's exact evaluation, so that
    ``run_protocol(strict_maze_task(size), recipe, ...)`` gives the same table; this function adds what the main job
    shows: the TensorBoard layout below, periodic held-out evaluations, the best model and the printed table.

    TensorBoard: ``<log-dir>/MaxRL_<i>`` holds the SFT stage (``bc/loss``, ``bc/pass@1`` on validation mazes, by
    behaviour-cloning step) and the main run's curves (``rollout/``, ``train/``, and ``eval/`` on held-out mazes
    from the base at timestep 0 to the end); each compared estimator writes ``<log-dir>/MaxRL_<i>/<estimator>``.
    The run folder also gets ``model.zip``, ``best_model.zip`` (by held-out pass@1), ``pass_at_k_evaluations.npz``
    and ``summary.json``.

    :param args: the parsed command line
    :return: the summary written to ``summary.json``
    """
    started = time.perf_counter()
    recipe, hyperparams = resolve_strict_maze_settings(args)
    compare = list(dict.fromkeys(args.compare or []))
    n_envs = int(hyperparams.pop("n_envs"))
    policy = hyperparams.pop("policy")
    estimator = hyperparams.pop("estimator")
    updates = recipe.updates
    assert updates is not None, "a strict-maze recipe's budget is a number of updates"
    task = strict_maze_task(strict_maze_size(args.env))
    layouts = draw_start_seeds(task.key_function(), recipe.n_train, recipe.n_validation, recipe.n_test)
    test = layouts.test

    def make_model(method: str) -> MaxRL:
        return MaxRL(
            policy,
            task.make_vec_env(n_envs, args.seed),
            estimator=method,
            train_seeds=layouts.train,
            seed=args.seed,
            device=args.device,
            **hyperparams,
        )

    def evaluate(model: Any, ks: list[int]) -> ExactPassAtKResult:
        assert task.exact_pass_at_k is not None
        return task.exact_pass_at_k(model, test, ks)

    model = make_model(estimator)
    logger = configure_logger(verbose=0, tensorboard_log=args.log_dir, tb_log_name="MaxRL")
    run_dir = logger.get_dir()
    assert run_dir is not None
    model.set_logger(logger)

    if args.verbose >= 1:
        print(
            f"{args.env}: {len(layouts.train)} training, {len(layouts.validation)} validation and {len(test)} held-out "
            f"mazes (distinct layouts). SFT stage: behaviour cloning to validation pass@1 >= {recipe.base_target}..."
        )
    bc_started = time.perf_counter()
    cloning, _ = clone_base(task, recipe, model, layouts.train, layouts.validation, seed=args.seed)
    bc_seconds = time.perf_counter() - bc_started
    log_behavior_cloning(logger, cloning)
    base_state = copy.deepcopy(model.policy.state_dict())
    base = evaluate(model, list(DEFAULT_EXACT_KS))  # the ks of eval/ (the table's are among them)
    if not cloning.stopped_at_target:
        print(
            f"Warning: behaviour cloning stopped after {cloning.n_steps} steps at validation pass@1 "
            f"{cloning.last_evaluation:.4f}, below the target {recipe.base_target}: the base is weaker than the protocol's."
        )
    if args.verbose >= 1:
        print(
            f"Base after {cloning.n_steps} steps ({bc_seconds:.1f} s): validation pass@1 {cloning.last_evaluation:.4f}, "
            f"held-out pass@1 {base.pass_at_k[1]:.4f}, pass@1024 {base.pass_at_k[1024]:.4f}. Fine-tuning with "
            f"{estimator}" + (f", then {', '.join(compare)}" if compare else "") + f": {recipe.updates} updates of "
            f"{recipe.n_groups} mazes x {recipe.group_size} episodes."
        )

    runs: dict[str, dict[str, Any]] = {}
    finals: dict[str, ExactPassAtKResult] = {}
    for method in [estimator, *compare]:
        if method == estimator:
            run_model, method_dir = model, run_dir
        else:
            run_model, method_dir = make_model(method), os.path.join(run_dir, method)
            run_model.policy.load_state_dict(base_state)
            run_model.set_logger(configure(method_dir, ["tensorboard"]))
        fine_tune_started = time.perf_counter()
        callback = ExactPassAtKEvalCallback(
            evaluate,
            ks=DEFAULT_EXACT_KS,
            eval_freq=max(args.eval_freq // n_envs, 1) if args.eval_freq > 0 else 0,
            best_model_save_path=method_dir,
            log_path=method_dir,
            eval_at_training_start=True,
            verbose=1 if args.verbose >= 2 else 0,
        )
        callbacks: list[BaseCallback] = [StopTrainingOnMaxUpdates(updates), callback]
        if not args.no_progress:
            callbacks.append(UpdateProgressBarCallback(updates, description=method))
        run_model.learn(UNREACHABLE_TIMESTEPS, callback=CallbackList(callbacks))
        assert callback.last_result is not None, "eval_at_training_end evaluates the final policy"
        finals[method] = callback.last_result
        run_model.save(os.path.join(method_dir, "model"))
        runs[method] = {
            "run_dir": method_dir,
            "num_timesteps": run_model.num_timesteps,
            "eval_num_timesteps": callback.evaluations_timesteps[-1],
            "n_skipped_updates": run_model.n_skipped_updates,
            "wall_time_s": round(time.perf_counter() - fine_tune_started, 2),
        }
        run_model.env.close()  # type: ignore[union-attr]

    table = {"base": _table_row(base, TABLE_KS)} | {method: _table_row(result, TABLE_KS) for method, result in finals.items()}
    efficiency = {
        method: sample_efficiency_ratio(finals[estimator].success_probabilities, result.success_probabilities, k=64)
        for method, result in finals.items()
        if method != estimator
    }
    wall_time = time.perf_counter() - started
    summary = {
        "env": args.env,
        "seed": args.seed,
        "pipeline": "strict_maze",
        "layouts": {"train": len(layouts.train), "validation": len(layouts.validation), "test": len(test)},
        "behavior_cloning": {
            "steps": cloning.n_steps,
            "target": recipe.base_target,
            "validation_pass@1": cloning.last_evaluation,
            "stopped_at_target": cloning.stopped_at_target,
            "wall_time_s": round(bc_seconds, 2),
        },
        "updates": recipe.updates,
        "estimator": estimator,
        "compare": compare,
        "hyperparams": {
            "policy": policy,
            "n_envs": n_envs,
            **_maxrl_defaults(),
            **hyperparams,
            "estimator": estimator,
            "train_seeds": f"the {len(layouts.train)} training mazes",
            "recipe": dataclasses.asdict(recipe),
        },
        "table_ks": list(TABLE_KS),
        "table": table,
        "sample_efficiency_at_64": efficiency,
        "eval": finals[estimator].metrics(),
        "base_eval": base.metrics(),
        "runs": runs,
        "num_timesteps": runs[estimator]["num_timesteps"],
        "eval_num_timesteps": runs[estimator]["eval_num_timesteps"],
        "wall_time_s": round(wall_time, 2),
        "run_dir": run_dir,
    }
    _write_summary(run_dir, summary)
    print_comparison(
        table,
        TABLE_KS,
        f"{args.env}: exact pass@k on {len(test)} held-out mazes (lower -log pass@k is better)",
        f"base: behaviour cloning, {cloning.n_steps} steps; then {recipe.updates} updates each "
        f"({recipe.n_groups} mazes x {recipe.group_size} episodes); {wall_time:.0f} s in all.",
    )
    for method, ratio in efficiency.items():
        print(
            f"{estimator} reaches {method}'s pass@64 with "
            + (f"{64 / ratio:.3g} samples per maze: {ratio:.3g}x fewer" if ratio > 0 else "no number of samples: never")
            + (" (its pass@1 already reaches it)." if ratio == 64 else ".")
        )
    print(f"TensorBoard logs, model.zip and {SUMMARY_FILE} in {run_dir}")
    return summary


def log_behavior_cloning(logger: Logger, result: BehaviorCloningResult) -> None:
    """
    Write the SFT stage to the run's logger: ``bc/loss`` at every step and ``bc/pass@1`` (the evaluation that
    decides when cloning stops) at every evaluation, with the behaviour-cloning step as the x-axis.

    :param logger: the run's logger
    :param result: the behaviour cloning's outcome
    """
    evaluations = dict(result.evaluations)
    for step in range(result.n_steps + 1):
        if step >= 1:
            logger.record("bc/loss", result.losses[step - 1])
        if step in evaluations:
            logger.record("bc/pass@1", evaluations[step])
        logger.dump(step)


def _table_row(result: ExactPassAtKResult, ks: Sequence[int]) -> dict[str, float]:
    return {f"pass@{k}": result.pass_at_k[k] for k in ks} | {f"neg_log_pass@{k}": result.neg_log_pass_at_k[k] for k in ks}


def _maxrl_defaults() -> dict[str, Any]:
    return {name: value for name, value in signature_defaults(MaxRL).items() if name not in NOT_HYPERPARAMS}


def _write_summary(run_dir: str, summary: dict[str, Any]) -> None:
    with open(os.path.join(run_dir, SUMMARY_FILE), "w") as file:
        json.dump(summary, file, indent=2, default=str)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of ``maxrl-train``.

    :param argv: the command-line arguments (None: ``sys.argv[1:]``)
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_flags(args)
    except ValueError as error:
        parser.error(str(error))
    train(args)


if __name__ == "__main__":
    main()
