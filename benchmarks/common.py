"""Shared helpers for the benchmark scripts: envs, one training run, pass@k evaluation, CSV and plots.

Import it as ``from benchmarks import common`` (the scripts run from the repository root as
``python -m benchmarks.<script>``).

Stable API (other benchmark scripts rely on it; extend, do not change):

- :func:`setup_torch` -- one torch thread (the benchmark machine is shared); call first.
- :data:`ALGOS`, :data:`MAXRL_KWARGS`, :data:`PPO_KWARGS`, :data:`NET_ARCH`, :data:`MAZE_ID`.
- :func:`make_env` -- a VecEnv of ``StartStateWrapper``-wrapped envs (works for MaxRL and for SB3's PPO).
- :func:`make_model` -- ``"maxrl" | "grpo" | "rloo" | "reinforce" | <any MaxRL estimator> | "ppo"``.
- :func:`train` -- one run with a budget of env steps; returns a :class:`RunResult` (model, per-rollout log
  of MaxRL's ``rollout/*`` keys, optional in-training evaluations, wall time).
- :func:`evaluate` -- pass@k on held-out start states with a stochastic policy (the library's ``evaluate_pass_at_k``).
- :func:`make_recorder` -- the callback :func:`train` uses (per-rollout logger keys, periodic evaluation).
- :func:`write_csv`, :func:`plot_seed_bands`, :func:`machine_info`, :func:`write_readme_block`.
"""

from __future__ import annotations

import csv
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch as th

#: Default env of the benchmarks: a 9x9 perfect maze, 3 navigation actions, flat egocentric observation.
MAZE_ID = "MaxRL/Maze-9x9-v0"
#: Policy network shared by every algorithm (MaxRL's actor and PPO's actor and critic).
NET_ARCH = [64, 64]
#: Algorithm names accepted by :func:`make_model` (any other MaxRL estimator name works too).
ALGOS = ("maxrl", "grpo", "rloo", "reinforce", "ppo")
#: The one MaxRL-family configuration used for every estimator: MaxRL's defaults (``sb3_maxrl.MaxRL``, the one place
#: for them: learning rate, n_groups, epochs, clip range, gradient clip) except what is listed here, chosen by the
#: sanity sweep in ``benchmarks/README.md``; override per call with ``make_model(..., **overrides)``.
MAXRL_KWARGS: dict[str, Any] = {"group_size": 16}
#: SB3 PPO with rl-baselines3-zoo's MiniGrid hyperparameters (its usual ones for this env family).
PPO_KWARGS: dict[str, Any] = {
    "learning_rate": 2.5e-4,
    "n_steps": 128,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def setup_torch(threads: int = 1) -> None:
    """Limit torch (and BLAS) to ``threads`` threads; the benchmark machine is shared."""
    th.set_num_threads(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def make_env(env_id: str = MAZE_ID, n_envs: int = 8, vec_env: str = "dummy", seed: int = 0, env_kwargs: dict | None = None):
    """
    A VecEnv of ``n_envs`` copies of ``env_id``, each wrapped in ``StartStateWrapper`` (harmless for PPO).

    :param env_id: a gymnasium id (``MaxRL/...`` ids are registered by importing ``sb3_maxrl``)
    :param n_envs: number of env copies
    :param vec_env: ``"dummy"`` (DummyVecEnv) or ``"subproc"`` (SubprocVecEnv, forkserver)
    :param seed: seed of the envs' own RNGs (PPO's training mazes come from it)
    :param env_kwargs: passed to ``gym.make``
    :return: the VecEnv
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    import sb3_maxrl  # noqa: F401  (registers the MaxRL/... ids)
    from sb3_maxrl import StartStateWrapper

    if vec_env not in ("dummy", "subproc"):
        raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {vec_env!r}")
    cls = DummyVecEnv if vec_env == "dummy" else SubprocVecEnv
    return make_vec_env(
        env_id, n_envs=n_envs, seed=seed, wrapper_class=StartStateWrapper, vec_env_cls=cls, env_kwargs=env_kwargs
    )


def make_model(algo: str, env, seed: int = 0, **overrides: Any):
    """
    A fresh model: SB3's PPO for ``"ppo"``, else ``MaxRL(estimator=algo)`` with :data:`MAXRL_KWARGS` (on top of
    MaxRL's defaults).

    Both use ``net_arch=NET_ARCH`` and Tanh activations (SB3's default for on-policy algorithms).

    :param algo: ``"ppo"`` or a MaxRL estimator name (``"maxrl"``, ``"grpo"``, ``"rloo"``, ``"reinforce"``, ...)
    :param env: a VecEnv from :func:`make_env`
    :param seed: the model's seed (MaxRL's training start states come from it)
    :param overrides: keyword arguments replacing the defaults (e.g. ``group_size=32``)
    """
    from stable_baselines3 import PPO

    from sb3_maxrl import MaxRL

    if algo == "ppo":
        kwargs = {**PPO_KWARGS, **overrides}
        kwargs.setdefault("policy_kwargs", {"net_arch": list(NET_ARCH)})
        return PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    kwargs = {**MAXRL_KWARGS, **overrides}
    kwargs.setdefault("policy_kwargs", {"net_arch": list(NET_ARCH)})
    return MaxRL("MlpPolicy", env, estimator=algo, seed=seed, device="cpu", verbose=0, **kwargs)


def evaluate(model, env, start_seeds: Sequence[int], n_samples: int, ks: Iterable[int]) -> dict[int, float]:
    """
    pass@k for every k in ``ks``, averaged over ``start_seeds``: the library's
    ``sb3_maxrl.common.evaluation.evaluate_pass_at_k`` (``n_samples`` sampled episodes per start seed, the unbiased
    estimator ``1 - C(n - c, k) / C(n, k)`` for binary tasks).

    :param model: an SB3 model (MaxRL or PPO)
    :param env: an evaluation VecEnv from :func:`make_env` (use a separate one from training)
    :param start_seeds: held-out start seeds (``sb3_maxrl.default_eval_seeds(n)``)
    :param n_samples: stochastic episodes per start seed (>= max(ks))
    :param ks: the k values
    :return: ``{k: pass@k}``
    """
    from sb3_maxrl.common.evaluation import evaluate_pass_at_k

    result = evaluate_pass_at_k(model, env, [int(s) for s in start_seeds], n_samples, [int(k) for k in ks])
    return result.pass_at_k


@dataclass
class RunResult:
    """One training run: the model, MaxRL's per-rollout log, in-training evaluations and wall time."""

    model: Any
    rollout_log: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    wall_time: float = 0.0


def make_recorder(
    result: RunResult,
    keys: Sequence[str] = (),
    eval_every: int | None = None,
    eval_fn: Callable[[Any], dict[str, float]] | None = None,
):
    """
    An SB3 callback appending ``{timesteps, key: value}`` of ``keys`` (read from ``model.logger.name_to_value``)
    to ``result.rollout_log`` at every rollout end, and ``eval_fn(model)`` to ``result.evals`` every ``eval_every``
    env steps (checked at rollout ends).
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class _Recorder(BaseCallback):
        """Reads ``logger.name_to_value`` at every rollout end; runs ``eval_fn(model)`` every ``eval_every`` steps."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = eval_every

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            values = self.model.logger.name_to_value
            row = {"timesteps": self.model.num_timesteps}
            row.update({k: float(values[k]) for k in keys if k in values})
            result.rollout_log.append(row)
            if eval_fn is not None and eval_every and self.model.num_timesteps >= self.next_eval:
                while self.next_eval <= self.model.num_timesteps:
                    self.next_eval += eval_every
                result.evals.append({"timesteps": self.model.num_timesteps, **eval_fn(self.model)})

    return _Recorder()


ROLLOUT_KEYS = (
    "rollout/pass_rate",
    "rollout/frac_groups_all_fail",
    "rollout/frac_groups_all_pass",
    "rollout/utilization",
    "rollout/group_ep_len_mean",
)


def train(
    algo: str,
    total_timesteps: int,
    seed: int = 0,
    env_id: str = MAZE_ID,
    n_envs: int = 8,
    vec_env: str = "dummy",
    eval_every: int | None = None,
    eval_fn: Callable[[Any], dict[str, float]] | None = None,
    keys: Sequence[str] = ROLLOUT_KEYS,
    env_kwargs: dict | None = None,
    **overrides: Any,
) -> RunResult:
    """
    Train one model for ``total_timesteps`` env steps (MaxRL finishes its last update, so it may overshoot).

    :param algo: see :func:`make_model`
    :param total_timesteps: the env-step budget
    :param seed: seed of the model and of the envs
    :param env_id: gymnasium id
    :param n_envs: VecEnv size
    :param vec_env: ``"dummy"`` or ``"subproc"``
    :param eval_every: run ``eval_fn`` at the first rollout end after every multiple of this many steps
    :param eval_fn: ``eval_fn(model) -> dict`` stored in ``RunResult.evals`` with the step count
    :param keys: logger keys recorded at every rollout end (``RunResult.rollout_log``)
    :param env_kwargs: passed to ``gym.make`` (e.g. ``{"size": 7}`` for a 7x7 maze on the 9x9 id)
    :param overrides: passed to :func:`make_model`
    """
    env = make_env(env_id, n_envs=n_envs, vec_env=vec_env, seed=seed, env_kwargs=env_kwargs)
    model = make_model(algo, env, seed=seed, **overrides)
    result = RunResult(model)
    callback = make_recorder(result, keys or ROLLOUT_KEYS, eval_every, eval_fn)
    start = time.perf_counter()
    model.learn(total_timesteps, callback=callback)
    result.wall_time = time.perf_counter() - start
    return result


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write dict rows (union of keys as columns, first-seen order) to ``path``; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_seed_bands(
    ax,
    df,
    x: str,
    y: str,
    hue: str,
    seed_col: str = "seed",
    order: Sequence[str] | None = None,
    band: str = "minmax",
    marker: str | None = "o",
) -> None:
    """
    Median over seeds of ``y`` against ``x``, one line per ``hue`` value, with a band across seeds.

    :param ax: a matplotlib Axes
    :param df: a pandas DataFrame with columns ``x``, ``y``, ``hue``, ``seed_col``
    :param band: ``"minmax"`` (min..max over seeds) or ``"iqr"`` (25th..75th percentile)
    :param order: the hue values to draw, in order (default: sorted)
    """
    order = list(order) if order is not None else sorted(df[hue].unique())
    for name in order:
        sub = df[df[hue] == name]
        if sub.empty:
            continue
        grouped = sub.groupby(x)[y]
        med = grouped.median()
        lo, hi = (grouped.min(), grouped.max()) if band == "minmax" else (grouped.quantile(0.25), grouped.quantile(0.75))
        (line,) = ax.plot(med.index, med.values, marker=marker, markersize=3, label=f"{name} (n={sub[seed_col].nunique()})")
        if sub[seed_col].nunique() > 1:
            ax.fill_between(med.index, lo.values, hi.values, alpha=0.2, color=line.get_color())
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)


def machine_info() -> str:
    """One line describing the machine and versions, for the README and CSV headers."""
    import stable_baselines3

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = f"load avg {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    return (
        f"{cpu}, {os.cpu_count()} cores (shared), {load}, Python {platform.python_version()}, "
        f"torch {th.__version__} ({th.get_num_threads()} thread), SB3 {stable_baselines3.__version__}"
    )


def write_readme_block(stem: str, text: str) -> None:
    """
    Replace the README's ``<!-- generated:<stem> -->`` block, if it has one, with a generated table.

    :param stem: the block's name (a result's file stem)
    :param text: the new content
    """
    readme = Path(__file__).resolve().parent.parent / "README.md"
    begin, end = f"<!-- generated:{stem} -->", f"<!-- /generated:{stem} -->"
    content = readme.read_text() if readme.exists() else ""
    if begin in content and end in content:
        head, rest = content.split(begin, 1)
        readme.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")
