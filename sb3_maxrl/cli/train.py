"""``maxrl-train``: train MaxRL with periodic pass@k evaluation, TensorBoard logs and a pass@k summary.

At its defaults it trains MaxRL with MaxRL's own defaults on ``MaxRL/Maze-9x9-v0`` for 300k timesteps in 8 envs
(a few CPU-minutes)::

    maxrl-train
    maxrl-train --estimator grpo --timesteps 200000 --eval-freq 50000
    maxrl-train --config --env MaxRL/Maze-13x13-v0     # the packaged zoo config's entry for the env
    maxrl-train --config my_hyperparams.yml
    tensorboard --logdir runs

Settings come from, in increasing priority: ``sb3_maxrl.MaxRL``'s defaults with this command's run settings
(policy, timesteps, n_envs: listed at the end), ``--config`` (a YAML file of MaxRL keyword arguments, flat or in
rl-baselines3-zoo's format ``{env_id: hyperparams}``; without a file, the packaged ``zoo_configs/maxrl.yml``) and
the flags given explicitly. Only the settings given reach ``MaxRL``: the class is the one place for its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import torch as th
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_maxrl.cli import CONFIG_DIR
from sb3_maxrl.common.callbacks import PassAtKEvalCallback
from sb3_maxrl.common.estimators import ESTIMATORS
from sb3_maxrl.common.evaluation import PassAtKResult
from sb3_maxrl.common.start_states import StartStateWrapper
from sb3_maxrl.common.utils import signature_defaults
from sb3_maxrl.maxrl import MaxRL

DEFAULT_ENV = "MaxRL/Maze-9x9-v0"
#: This command's own settings (8 DummyVecEnv envs: 2x the steps per second of 4 here). MaxRL's hyperparameters are
#: not repeated: those not given by a flag or ``--config`` keep the defaults of :class:`~sb3_maxrl.MaxRL`.
RUN_DEFAULTS: dict[str, Any] = {"policy": "MlpPolicy", "n_timesteps": 300_000, "n_envs": 8}
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
#: rl-baselines3-zoo keys that need the zoo's machinery
ZOO_ONLY_KEYS = ("normalize", "frame_stack", "env_wrapper", "vec_env_wrapper", "callback")
SUMMARY_FILE = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; hyperparameter flags default to None so that a ``--config`` value can win."""
    parser = argparse.ArgumentParser(
        prog="maxrl-train",
        description=__doc__,
        epilog=f"run settings: {RUN_DEFAULTS}; every other hyperparameter: sb3_maxrl.MaxRL's default",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"gymnasium env id (default: {DEFAULT_ENV})")
    defaults = {**signature_defaults(MaxRL), **RUN_DEFAULTS}
    parser.add_argument("--estimator", choices=ESTIMATORS, help=f"advantage estimator (default: {defaults['estimator']})")
    parser.add_argument("--group-size", type=int, help=f"N, episodes per start state (default: {defaults['group_size']})")
    parser.add_argument("--n-groups", type=int, help=f"G, start states per update (default: {defaults['n_groups']})")
    parser.add_argument("--learning-rate", type=float, help=f"learning rate (default: {defaults['learning_rate']})")
    parser.add_argument("--timesteps", type=int, help=f"total env steps (default: {defaults['n_timesteps']})")
    parser.add_argument("--n-envs", type=int, help=f"parallel envs (default: {defaults['n_envs']})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--config",
        nargs="?",
        const=str(PACKAGED_CONFIG),
        help="YAML file of MaxRL kwargs, flat or {env_id: hyperparams}; without a file: the packaged zoo config",
    )
    parser.add_argument("--eval-freq", type=int, default=100_000, help="evaluate every this many timesteps (0: at the end)")
    parser.add_argument("--eval-start-states", type=int, default=16, help="held-out start states per evaluation")
    parser.add_argument("--eval-samples", type=int, default=16, help="episodes per evaluation start state (max k)")
    parser.add_argument("--log-dir", default="runs", help="TensorBoard folder; each run writes <log-dir>/MaxRL_<i>")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy", help="VecEnv class (default: dummy)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", type=int, default=1, help="0: only the summary, 1: every evaluation")
    return parser


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
    if str(hyperparams.get("env_wrapper", "")).endswith("StartStateWrapper"):
        del hyperparams["env_wrapper"]  # maxrl-train always adds it
    unsupported = [key for key in ZOO_ONLY_KEYS if key in hyperparams]
    if unsupported:
        raise ValueError(f"{path}: {unsupported} need rl-baselines3-zoo; use maxrl-zoo, or drop them for maxrl-train.")
    if isinstance(hyperparams.get("policy_kwargs"), str):
        namespace = {"__builtins__": {}, "dict": dict, "nn": th.nn, "th": th, "torch": th}
        hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"], namespace)
    return hyperparams


def resolve_hyperparams(args: argparse.Namespace) -> dict[str, Any]:
    """
    The run settings, overridden by ``--config``, overridden by the flags given explicitly.

    :param args: the parsed command line
    :return: ``n_timesteps``, ``n_envs``, ``policy`` and the MaxRL keyword arguments given (no MaxRL default)
    """
    hyperparams = dict(RUN_DEFAULTS)
    if args.config is not None:
        hyperparams.update(load_config(args.config, args.env))
    for flag, key in FLAG_TO_HYPERPARAM.items():
        if getattr(args, flag) is not None:
            hyperparams[key] = getattr(args, flag)
    hyperparams["n_timesteps"] = int(hyperparams["n_timesteps"])
    return hyperparams


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


def train(args: argparse.Namespace) -> dict[str, Any]:
    """
    Train, evaluate, print the summary table and write ``summary.json`` into the TensorBoard run folder.

    :param args: the parsed command line
    :return: the summary written to ``summary.json``
    """
    th.set_num_threads(args.torch_threads)
    hyperparams = resolve_hyperparams(args)
    n_timesteps = hyperparams.pop("n_timesteps")
    n_envs = int(hyperparams.pop("n_envs"))
    policy = hyperparams.pop("policy")
    vec_env_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv
    env = make_vec_env(args.env, n_envs=n_envs, seed=args.seed, wrapper_class=StartStateWrapper, vec_env_cls=vec_env_cls)
    eval_env = make_vec_env(args.env, n_envs=n_envs, seed=args.seed, wrapper_class=StartStateWrapper, vec_env_cls=vec_env_cls)
    model = MaxRL(policy, env, seed=args.seed, tensorboard_log=args.log_dir, device=args.device, **hyperparams)
    eval_callback = PassAtKEvalCallback(
        eval_env,
        n_eval_start_states=args.eval_start_states,
        n_samples=args.eval_samples,
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
    maxrl_defaults = {name: value for name, value in signature_defaults(MaxRL).items() if name not in NOT_HYPERPARAMS}
    summary = {
        "env": args.env,
        "seed": args.seed,
        "num_timesteps": model.num_timesteps,
        "eval_num_timesteps": eval_callback.evaluations_timesteps[-1],
        "wall_time_s": round(wall_time, 2),
        "hyperparams": {"policy": policy, "n_envs": n_envs, "n_timesteps": n_timesteps, **maxrl_defaults, **hyperparams},
        "maxrl_kwargs_given": sorted(hyperparams),
        "eval_start_states": len(eval_callback.eval_seeds),
        "eval_samples": eval_callback.n_samples,
        "eval": result.metrics(),
        "run_dir": run_dir,
    }
    model.save(os.path.join(run_dir, "model"))
    with open(os.path.join(run_dir, SUMMARY_FILE), "w") as file:
        json.dump(summary, file, indent=2, default=str)
    print_summary(
        result,
        f"{args.env} ({model.estimator})",
        f"{len(eval_callback.eval_seeds)} held-out start states x {eval_callback.n_samples} samples, after "
        f"{model.num_timesteps} timesteps ({wall_time:.0f} s of training and evaluation).",
    )
    print(f"TensorBoard logs, model.zip and {SUMMARY_FILE} in {run_dir}")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of ``maxrl-train``.

    :param argv: the command-line arguments (None: ``sys.argv[1:]``)
    """
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
