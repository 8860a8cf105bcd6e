"""``maxrl-zoo``: rl-baselines3-zoo's train, enjoy and hyperparameter search with MaxRL as ``--algo maxrl``.

rl-zoo3 has no plugin hook for algorithms: ``--algo`` choices come from the ``rl_zoo3.ALGOS`` dict and the
Optuna samplers from ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER``. This launcher adds ``maxrl`` to both (and
to ``HYPERPARAMS_CONVERTER``, used by ``--trial-id``), imports ``sb3_maxrl_envs`` and ``minigrid`` so their ids
are registered, and then runs rl-zoo3's own ``train()`` / ``enjoy()`` with the remaining arguments::

    maxrl-zoo train --algo maxrl --env MaxRL/Maze-9x9-v0 -n 100000 -conf zoo_configs/maxrl.yml
    maxrl-zoo optimize --algo maxrl --env MaxRL/Digits-v0 -n 20000 --n-trials 10   # = train -optimize
    maxrl-zoo enjoy --algo maxrl --env MaxRL/Maze-9x9-v0 -f logs --no-render -n 2000

Without ``-conf``, ``train`` and ``optimize`` read ``<algo>.yml`` of the configs shipped with the package
(:data:`sb3_maxrl.cli.CONFIG_DIR`, ``sb3_maxrl/zoo_configs/``; the repository's top-level ``zoo_configs/``
links there) when that file has an entry for ``--env`` (always ``maxrl.yml`` for ``--algo maxrl``), else
rl-zoo3's own ``hyperparams/<algo>.yml``.

Several workers, on one machine or many, fill one Optuna study when they share its storage: give each the same
``--storage`` and ``--study-name``. ``--storage`` is a journal file (a path ending in ``.log``, which rl-zoo3
opens with Optuna's ``JournalFileBackend``; on a file system every machine mounts, e.g. NFS) or an RDB URL
(``sqlite:///study.db`` on one machine, ``postgresql://user:password@host/db`` across machines)::

    maxrl-zoo optimize --algo maxrl --env MaxRL/Maze-9x9-v0 -n 100000 --n-trials 20 \
        --storage /shared/maxrl_maze.log --study-name maxrl-maze9 --num-threads 1   # on every machine
    maxrl-zoo train --algo maxrl --env MaxRL/Maze-9x9-v0 --storage /shared/maxrl_maze.log \
        --study-name maxrl-maze9 --trial-id 7   # retrain a trial's hyperparameters

Each trial records the worker that ran it (``user_attrs["worker"]``, ``host:pid``). Start one process per core
rather than ``--n-jobs N`` (Optuna threads in one process, which share the GIL and torch's threads), and leave
``--seed`` unset or different per worker: workers with the same seed sample the same trials.

While rl-zoo3 runs, its ``ExperimentManager`` is replaced by :class:`MaxRLExperimentManager`, which

- wraps every env of a ``maxrl`` run in :class:`~sb3_maxrl.StartStateWrapper` when the config's
  ``env_wrapper`` does not already (MaxRL chooses the start state of every episode), and the env of a raw MiniGrid
  or BabyAI id in ``wrap_minigrid`` first (flat observation, ``is_success``; the task ``MaxRL`` and ``maxrl-train``
  make of the id, see :mod:`sb3_maxrl.common.env_ids`) when no entry wraps it already;
- with ``--pass-at-k-freq`` on an env that declares start-state identities (``start_state_key``, e.g. the perfect
  mazes), trains a ``maxrl`` run without ``train_seeds`` on ``--pass-at-k-train-start-states`` seeds (default
  10000) disjoint by identity from the held-out ones, so the evaluation stays held out;
- evaluates MiniGrid-based ``MaxRL/...`` envs (the mazes, ``MaxRL/MiniGrid-v0``) with sampled actions, as
  rl-zoo3 already does for raw MiniGrid ids: the pass rate of the sampling policy is what MaxRL optimizes,
  and a greedy maze policy can turn in place until the step budget runs out;
- gives the evaluation envs the config's ``env_kwargs`` when ``--eval-env-kwargs`` is not given (rl-zoo3 2.9
  does so only when ``--env-kwargs`` is given too, so e.g. ``MaxRL/MiniGrid-v0``'s eval env lacked its ``env_id``);
- loads ``--trial-id 0`` from ``--storage`` (rl-zoo3 2.9 skips a trial id of 0);
- records in every Optuna trial the worker that ran it (``user_attrs["worker"]``, ``host:pid``);
- prunes an Optuna trial whose update went non-finite (``FloatingPointError``), as rl-zoo3 does for
  ``ValueError``;
- with ``--pass-at-k-freq N`` (a launcher option, for any ``--algo``), adds a
  :class:`~sb3_maxrl.common.callbacks.PassAtKEvalCallback` that logs ``eval/pass@k``, ``eval/neg_log_pass@k``,
  ``eval/mean_likelihood`` and ``eval/nll`` every N env steps and at the end (on ``--pass-at-k-start-states``
  held-out start states x ``--pass-at-k-samples`` episodes, in as many envs as training uses), next to rl-zoo3's
  own ``EvalCallback``; its ``pass_at_k_evaluations.npz`` goes to ``<run>/pass_at_k/``. Add ``-tb DIR`` to get the curves
  in TensorBoard for ``maxrl-plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.cli import CONFIG_DIR, MissingExtraError
from sb3_maxrl.common.env_ids import task_wrapper

try:
    import optuna
    import rl_zoo3  # noqa: F401  (checked here so that a missing extra is reported before any work)
except ImportError as import_error:
    raise MissingExtraError("maxrl-zoo", "zoo", import_error) from import_error

ALGO_NAME = "maxrl"
SUBCOMMANDS = ("train", "optimize", "enjoy")

NET_ARCHS: dict[str, list[int]] = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def sample_maxrl_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    Sample MaxRL hyperparameters (rl-zoo3's sampler signature).

    The estimator is not sampled: the config's ``estimator`` (default ``"maxrl"``) is kept, so a search tunes
    one estimator at a time and two estimators are compared at their own best settings.

    :param trial: the Optuna trial
    :param n_actions: size of a Box action space (unused; rl-zoo3 passes it for action noise)
    :param n_envs: number of envs of the run; ``n_groups`` is raised so one update has at least ``n_envs``
        episodes (otherwise env slots idle)
    :param additional_args: rl-zoo3's extra arguments (HER settings; unused)
    :return: keyword arguments for ``MaxRL``
    """
    group_size: int = trial.suggest_categorical("group_size", [4, 8, 16, 32])
    n_groups: int = trial.suggest_categorical("n_groups", [2, 4, 8, 16])
    if n_groups * group_size < n_envs:
        n_groups = math.ceil(n_envs / group_size)
        trial.set_user_attr("n_groups", n_groups)
    trial.set_user_attr("episodes_per_update", n_groups * group_size)
    sampled = {
        "group_size": group_size,
        "n_groups": n_groups,
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 5.0, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.05, log=True),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
        "activation_fn": trial.suggest_categorical("activation_fn", list(ACTIVATIONS)),
    }
    return convert_maxrl_params(sampled)


def convert_maxrl_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn sampled MaxRL parameters (names as in :func:`sample_maxrl_params`) into ``MaxRL`` keyword arguments.

    :param sampled_params: the trial's parameters (``trial.params``)
    :return: keyword arguments for ``MaxRL``, with ``net_arch`` and ``activation_fn`` in ``policy_kwargs``
    """
    hyperparams = dict(sampled_params)
    policy_kwargs = {
        "net_arch": NET_ARCHS[hyperparams.pop("net_arch")],
        "activation_fn": ACTIVATIONS[hyperparams.pop("activation_fn")],
    }
    return {**hyperparams, "policy_kwargs": policy_kwargs}


def register_maxrl() -> None:
    """Add ``maxrl`` to rl-zoo3's algorithm, sampler and converter registries and register the env ids."""
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    import rl_zoo3
    import rl_zoo3.hyperparams_opt

    import sb3_maxrl_envs  # noqa: F401  (registers the MaxRL/... ids)

    rl_zoo3.ALGOS[ALGO_NAME] = MaxRL
    rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO_NAME] = sample_maxrl_params
    rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER[ALGO_NAME] = convert_maxrl_params


def default_config(algo: str, env_id: str, config_dir: Path = CONFIG_DIR) -> str | None:
    """
    ``<config_dir>/<algo>.yml`` if it exists and has an entry for ``env_id`` (or a ``default`` one), else None.

    :param algo: the rl-zoo3 algorithm name
    :param env_id: the gymnasium id to train on
    :param config_dir: where the launcher's YAML files are
    :return: the path of the config file, or None to keep rl-zoo3's default
    """
    path = config_dir / f"{algo}.yml"
    if not path.is_file():
        return None
    with open(path) as file:
        entries = yaml.safe_load(file) or {}
    return str(path) if env_id in entries or "default" in entries else None


def _names_start_state_wrapper(entry: Any) -> bool:
    name = next(iter(entry)) if isinstance(entry, dict) else entry
    if isinstance(name, type):
        return issubclass(name, StartStateWrapper)
    return isinstance(name, str) and name.rsplit(".", 1)[-1] == StartStateWrapper.__name__


def _wrapper_name(entry: Any) -> str:
    name = next(iter(entry)) if isinstance(entry, dict) else entry
    return name.__name__ if callable(name) else str(name).rsplit(".", 1)[-1]


def _with_start_state_wrapper(env_wrapper: Any, env_id: str | None = None) -> list[Any]:
    """
    The config's ``env_wrapper`` entry as a list that ends with ``StartStateWrapper`` (a new list), and, for a raw
    MiniGrid id (``env_id``) whose entries do not wrap it already, begins with :func:`~sb3_maxrl.common.env_ids.task_wrapper`.
    """
    wrappers = [] if env_wrapper is None else list(env_wrapper) if isinstance(env_wrapper, list) else [env_wrapper]
    if not any(_names_start_state_wrapper(entry) for entry in wrappers):
        wrappers.append(f"{StartStateWrapper.__module__}.{StartStateWrapper.__name__}")
    wrap_task = None if env_id is None else task_wrapper(env_id)
    if wrap_task is not None and not any(_wrapper_name(entry) == wrap_task.__name__ for entry in wrappers):
        wrappers.insert(0, f"{wrap_task.__module__}.{wrap_task.__name__}")
    return wrappers


@dataclass
class PassAtKOptions:
    """
    The launcher's pass@k evaluation during ``train``.

    :param freq: evaluate every ``freq`` env steps (<= 0: no pass@k evaluation)
    :param n_start_states: held-out evaluation start states (``sb3_maxrl.default_eval_seeds``)
    :param n_samples: episodes per start state (pass@k for k = 1, 2, 4, ... up to it)
    :param n_train_start_states: training start seeds of a ``maxrl`` run on an env that declares start-state
        identities, disjoint by identity from the held-out ones (when the config gives no ``train_seeds``)
    """

    freq: int = -1
    n_start_states: int = 16
    n_samples: int = 16
    n_train_start_states: int = 10_000


def _pop_launcher_args(args: list[str]) -> tuple[PassAtKOptions, list[str]]:
    """Split the launcher's own options off the arguments forwarded to rl-zoo3."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--pass-at-k-freq", type=int, default=PassAtKOptions.freq)
    parser.add_argument("--pass-at-k-start-states", type=int, default=PassAtKOptions.n_start_states)
    parser.add_argument("--pass-at-k-samples", type=int, default=PassAtKOptions.n_samples)
    parser.add_argument("--pass-at-k-train-start-states", type=int, default=PassAtKOptions.n_train_start_states)
    known, rest = parser.parse_known_args(args)
    options = PassAtKOptions(
        known.pass_at_k_freq, known.pass_at_k_start_states, known.pass_at_k_samples, known.pass_at_k_train_start_states
    )
    return options, rest


class _TrialNumber(int):
    """A trial number that is true even for trial 0: rl-zoo3 2.9 loads ``--trial-id`` only if the id is true."""

    def __bool__(self) -> bool:
        return True


def _make_experiment_manager_class(pass_at_k: PassAtKOptions | None = None) -> type:
    from rl_zoo3.exp_manager import ExperimentManager

    options = PassAtKOptions() if pass_at_k is None else pass_at_k

    class MaxRLExperimentManager(ExperimentManager):
        """rl-zoo3's ``ExperimentManager`` with the fixes MaxRL needs (see the module docstring)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.trial_id is not None:
                self.trial_id = _TrialNumber(self.trial_id)
            self.config_train_seeds = False  # whether the config gives MaxRL's train_seeds
            self.extra_hyperparams: dict[str, Any] = {}  # train_seeds disjoint from the pass@k evaluation's

        @staticmethod
        def is_minigrid(env_id: str) -> bool:
            """
            Whether ``env_id`` is a MiniGrid env (rl-zoo3 then evaluates and enjoys it with sampled actions).

            :param env_id: a gymnasium id
            """
            entry_point = ExperimentManager.entry_point(env_id)
            return "minigrid" in entry_point or entry_point.startswith("sb3_maxrl_envs.maze:")

        def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> Any:
            if self.algo == ALGO_NAME:
                self.config_train_seeds = "train_seeds" in hyperparams
                hyperparams["env_wrapper"] = _with_start_state_wrapper(hyperparams.get("env_wrapper"), self.env_name.gym_id)
            processed = super()._preprocess_hyperparams(hyperparams)
            if self._eval_env_kwargs_args is None:
                # rl-zoo3 gives the eval env the config's env_kwargs only when --env-kwargs is also given
                self.eval_env_kwargs = self.env_kwargs
            return processed

        def create_callbacks(self) -> None:
            super().create_callbacks()
            if options.freq > 0 and not self.optimize_hyperparameters:
                from sb3_maxrl.common.callbacks import PassAtKEvalCallback
                from sb3_maxrl.common.start_states import default_eval_seeds

                env_wrapper = self.env_wrapper
                if self.algo != ALGO_NAME:  # maxrl's envs have it already (_preprocess_hyperparams)

                    def env_wrapper(env: Any, wrapper: Any = self.env_wrapper) -> StartStateWrapper:
                        return StartStateWrapper(env if wrapper is None else wrapper(env))

                saved_wrapper, self.env_wrapper = self.env_wrapper, env_wrapper
                try:
                    eval_env = self.create_envs(self.n_envs, eval_env=True)
                finally:
                    self.env_wrapper = saved_wrapper
                eval_seeds = default_eval_seeds(options.n_start_states)
                maxrl_stream = self.algo == ALGO_NAME and not self.config_train_seeds
                self.extra_hyperparams = _held_out_train_seeds(
                    eval_env, eval_seeds, options.n_train_start_states, maxrl_stream
                )
                self.callbacks.append(
                    PassAtKEvalCallback(
                        eval_env,
                        eval_seeds=eval_seeds,
                        n_samples=options.n_samples,
                        eval_freq=max(options.freq // self.n_envs, 1),
                        log_path=os.path.join(self.save_path, "pass_at_k"),
                        verbose=self.verbose,
                    )
                )

        def _preprocess_action_noise(self, hyperparams: dict[str, Any], *args: Any) -> dict[str, Any]:
            # the last hook before the model is made from the hyperparameters
            return {**super()._preprocess_action_noise(hyperparams, *args), **self.extra_hyperparams}

        def objective(self, trial: optuna.Trial) -> float:
            trial.set_user_attr("worker", worker_id())
            try:
                return super().objective(trial)
            except FloatingPointError as error:
                print(f"Pruning trial {trial.number}: {error}")
                raise optuna.exceptions.TrialPruned() from error

    return MaxRLExperimentManager


def _held_out_train_seeds(eval_env: Any, eval_seeds: list[int], n_train: int, maxrl_stream: bool) -> dict[str, Any]:
    """
    ``{"train_seeds": [...]}``, seeds disjoint by identity from the held-out ones, for a MaxRL run on the infinite
    stream (``maxrl_stream``) of an env that declares start-state identities: the stream could draw a held-out start
    state under another seed. Else ``{}``.
    """
    from sb3_maxrl.common.evaluation import disjoint_train_seeds
    from sb3_maxrl.common.start_states import start_state_keys

    if not maxrl_stream or start_state_keys(eval_env, eval_seeds[:1]) is None:
        return {}
    return {"train_seeds": disjoint_train_seeds(eval_env, eval_seeds, n_train)}


@contextlib.contextmanager
def _patched_zoo(prog: str, args: Sequence[str], pass_at_k: PassAtKOptions | None = None) -> Iterator[None]:
    """Run rl-zoo3 with ``sys.argv = [prog, *args]`` and :class:`MaxRLExperimentManager`; restore both after."""
    import rl_zoo3.enjoy
    import rl_zoo3.train

    manager_class = _make_experiment_manager_class(pass_at_k)
    saved_argv = sys.argv
    saved = {module: module.ExperimentManager for module in (rl_zoo3.train, rl_zoo3.enjoy)}
    sys.argv = [prog, *args]
    for module in saved:
        module.ExperimentManager = manager_class  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sys.argv = saved_argv
        for module, original in saved.items():
            module.ExperimentManager = original  # type: ignore[attr-defined]


def worker_id() -> str:
    """``host:pid`` of this process, recorded in every trial it runs (``trial.user_attrs["worker"]``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_storage_args(args: Sequence[str]) -> None:
    """
    Refuse an Optuna storage that rl-zoo3 would misread or that would split the workers into several studies.

    :param args: the arguments forwarded to rl-zoo3
    :raises SystemExit: for a file storage not ending in ``.log`` (rl-zoo3 hands anything else to SQLAlchemy as a
        URL), or ``--storage`` without ``--study-name`` (each worker of a search would create a study of its own, and
        ``train --trial-id`` would silently ignore the storage)
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--study-name", default=None)
    known, _ = parser.parse_known_args(list(args))
    if known.storage is None:
        return
    if "://" not in known.storage and not known.storage.endswith(".log"):
        raise SystemExit(
            f"maxrl-zoo: --storage {known.storage!r} is neither a journal file nor a database URL: name the journal file "
            "*.log (rl-zoo3 opens only those with Optuna's JournalFileBackend) or give a URL such as "
            "sqlite:///study.db or postgresql://user:password@host/dbname."
        )
    if known.study_name is None:
        raise SystemExit(
            "maxrl-zoo: --storage needs --study-name: give every worker the same name so that they fill one study "
            "(without it each worker creates a study of its own), and the same name to train --trial-id."
        )


def _train_args(args: list[str]) -> list[str]:
    """Add ``-conf`` with the launcher's default config when none is given and one matches."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file", default=None)
    known, _ = parser.parse_known_args(args)
    if known.conf_file is None:
        config = default_config(known.algo, known.env)
        if config is None and known.algo == ALGO_NAME:
            if not (CONFIG_DIR / f"{ALGO_NAME}.yml").is_file():
                raise SystemExit(
                    f"maxrl-zoo: no -conf given and the packaged {CONFIG_DIR / 'maxrl.yml'} is missing (a broken "
                    "install?): reinstall sb3-maxrl or pass -conf path/to/maxrl.yml."
                )
            config = str(CONFIG_DIR / f"{ALGO_NAME}.yml")  # rl-zoo3 then names the missing entry
        if config is not None:
            args = [*args, "-conf", config]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of ``maxrl-zoo {train,optimize,enjoy} [rl-zoo3 arguments]``.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SUBCOMMANDS:
        print(
            "usage: maxrl-zoo {train,optimize,enjoy} [rl-zoo3 arguments]\n"
            "  train     rl-zoo3's train.py with --algo maxrl available (and -conf defaulting to the packaged <algo>.yml);\n"
            "            launcher options: --pass-at-k-freq STEPS [--pass-at-k-start-states 16] [--pass-at-k-samples 16]\n"
            "            [--pass-at-k-train-start-states 10000]\n"
            "  optimize  train with -optimize: an Optuna search with sb3_maxrl.cli.zoo.sample_maxrl_params; workers on\n"
            "            several machines fill one study given the same --storage (*.log or DB URL) and --study-name\n"
            "  enjoy     rl-zoo3's enjoy.py (add --no-render on a headless machine)\n"
            "Run 'maxrl-zoo train -h' for rl-zoo3's options.",
            file=sys.stderr,
        )
        raise SystemExit(0 if args and args[0] in ("-h", "--help") else 2)
    command, rest = args[0], args[1:]
    register_maxrl()
    from rl_zoo3.enjoy import enjoy
    from rl_zoo3.train import train

    run: Callable[[], None]
    pass_at_k = None
    if command == "enjoy":
        run = enjoy
    else:
        run = train
        pass_at_k, rest = _pop_launcher_args(rest)
        if "-h" in rest or "--help" in rest:
            print(
                "maxrl-zoo launcher options (before rl-zoo3's own):\n"
                "  --pass-at-k-freq STEPS         log eval/pass@k every STEPS env steps and at the end (default: off)\n"
                "  --pass-at-k-start-states N     held-out start states of that evaluation (default: 16)\n"
                "  --pass-at-k-samples N          episodes per start state, pass@k for k = 1, 2, 4, .. N (default: 16)\n"
                "  --pass-at-k-train-start-states N  maxrl on an env with start_state_key: training seeds disjoint\n"
                "                                 from the held-out ones (default: 10000)\n"
            )
        rest = _train_args(rest)
        if command == "optimize" and "-optimize" not in rest and "--optimize-hyperparameters" not in rest:
            rest = [*rest, "-optimize"]
        check_storage_args(rest)
    with _patched_zoo(f"maxrl-zoo {command}", rest, pass_at_k):
        run()


if __name__ == "__main__":
    main()
