"""The paper's maze claims through the library: strict mazes, a behaviour-cloned weak base, MaxRL vs GRPO vs RLOO.

Protocol (the MaxRL paper's maze experiment): randomized-Prim strict mazes (a wrong move ends the episode), a Markov MLP
policy (two hidden layers of 128), a weak base from behaviour cloning on BFS-optimal paths (32 training mazes per
step, Adam 1e-3, stopped once the exact held-out pass@1 reaches ``--base-target``), then RL from that base with
``MaxRL.learn`` on the native ``StrictMazeVecEnv``: one on-policy gradient step per update (``n_epochs=1``,
``clip_range=None``), ``max_grad_norm=1``, Adam, ``n_groups`` mazes per update and N episodes per maze; the
estimator is the only difference between MaxRL, GRPO and RLOO. SB3 PPO starts from the same behaviour-cloned actor.
Training, validation (learning-rate choice) and test mazes are pairwise different layouts. Every metric is exact:
the success probability of each held-out maze by dynamic programming, so pass@k = mean(1 - (1 - p)^k) carries no
sampling noise.

    python -m benchmarks.strict_mazes --quick                      # a smoke run, about a minute
    python -m benchmarks.strict_mazes --size 9 --Ns 16 --seeds 5   # the 9x9 headline
    python -m benchmarks.strict_mazes --size 13 --Ns 4 16 64       # the 13x13 N-scaling
    python -m benchmarks.strict_mazes --size 9 --tune              # the learning-rate grid on validation mazes

Writes ``benchmarks/results/strict_mazes_<size>[_tag].csv`` (one row per evaluation), ``..._final.csv`` (the
final table with the base's values) and ``.png`` (-log pass@k curves).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from sb3_maxrl import MaxRL
from sb3_maxrl.common.start_states import EpisodeStart
from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, exact_pass_at_k
from sb3_maxrl_envs.strict_maze_pipeline import RECIPES, TABLE_KS, clone_weak_base, layout_sets

RESULTS = Path(__file__).resolve().parent / "results"
KS = TABLE_KS


@dataclass(frozen=True)
class Job:
    """One training run."""

    size: int
    method: str  # "maxrl", "grpo", "rloo" (estimators of MaxRL) or "ppo"
    group_size: int
    learning_rate: float
    seed: int
    n_groups: int
    updates: int
    eval_points: int
    n_eval: int
    n_train: int
    base_target: float
    split: str  # "test" or "validation"
    ppo_timesteps: int = 0


def neg_log_pass(policy: Any, size: int, seeds: list[int]) -> dict[str, float]:
    result = exact_pass_at_k(policy, size, seeds, ks=KS)
    return {f"neg_log_pass@{k}": result.neg_log_pass_at_k[k] for k in KS} | {
        f"pass@{k}": result.pass_at_k[k] for k in KS
    }


class StopAfterUpdates(BaseCallback):
    """Stops ``learn`` after a number of updates and evaluates the policy at evenly spaced updates."""

    def __init__(self, updates: int, eval_every: int, evaluate: Any):
        super().__init__()
        self.updates, self.eval_every, self.evaluate = updates, eval_every, evaluate
        self.done = 0
        self.rows: list[dict[str, Any]] = []

    def _on_rollout_end(self) -> None:
        self.done += 1

    def _on_step(self) -> bool:
        return self.done < self.updates

    def on_update_finished(self, force: bool = False) -> None:
        if force or self.done % self.eval_every == 0 or self.done == self.updates:
            self.rows.append(dict(update=self.done, timesteps=self.model.num_timesteps) | self.evaluate())


class _EvaluateAfterTrain(StopAfterUpdates):
    """Evaluates after the update's ``train()`` (SB3 calls ``on_rollout_start`` right after it)."""

    def _on_rollout_start(self) -> None:
        if self.done > 0:
            self.on_update_finished()


def run(job: Job) -> list[dict[str, Any]]:
    th.set_num_threads(1)
    started = time.perf_counter()
    recipe = RECIPES[job.size]
    mazes = layout_sets(job.size, job.n_eval, job.n_train)
    eval_seeds = getattr(mazes, job.split)
    num_envs = 256 if job.method == "ppo" else min(256, job.n_groups * job.group_size)
    venv = StrictMazeVecEnv(num_envs=num_envs, size=job.size, seed=job.seed)
    base = MaxRL("MlpPolicy", venv, n_groups=256, policy_kwargs=dict(net_arch=list(recipe.net_arch)), seed=job.seed)
    bc_steps = clone_weak_base(
        base, job.size, mazes.train, mazes.validation, target=job.base_target, seed=job.seed
    ).n_steps
    meta = asdict(job) | dict(bc_steps=bc_steps)
    rows = [meta | dict(update=0, timesteps=0) | neg_log_pass(base, job.size, eval_seeds)]
    evaluate = lambda: neg_log_pass(model, job.size, eval_seeds)  # noqa: E731
    callback = _EvaluateAfterTrain(job.updates, max(job.updates // job.eval_points, 1), evaluate)
    if job.method == "ppo":
        model: Any = ppo_from_actor(base, venv, job, mazes.train)
        callback.updates = 10**9
        steps_per_update = model.n_steps * venv.num_envs
        callback.eval_every = max(job.ppo_timesteps // steps_per_update // job.eval_points, 1)
        model.learn(job.ppo_timesteps, callback=callback)
    else:
        settings = recipe.maxrl_kwargs() | dict(
            learning_rate=job.learning_rate, group_size=job.group_size, n_groups=job.n_groups
        )
        model = MaxRL("MlpPolicy", venv, estimator=job.method, train_seeds=mazes.train, seed=job.seed, **settings)
        model.policy.load_state_dict(base.policy.state_dict())
        model.learn(10**12, callback=callback)
    if not callback.rows or callback.rows[-1]["update"] != callback.done:
        callback.on_update_finished(force=True)
    rows += [meta | row for row in callback.rows]
    for row in rows:
        row["seconds"] = time.perf_counter() - started
    venv.close()
    return rows


def ppo_from_actor(base: MaxRL, venv: StrictMazeVecEnv, job: Job, train_seeds: list[int]) -> PPO:
    """SB3 PPO whose actor is the behaviour-cloned base, on the same training mazes."""
    model = PPO(
        "MlpPolicy",
        venv,
        learning_rate=job.learning_rate,
        n_steps=32,
        batch_size=2048,
        n_epochs=4,
        gamma=0.99,
        policy_kwargs=dict(net_arch=dict(pi=list(RECIPES[job.size].net_arch), vf=list(RECIPES[job.size].net_arch))),
        seed=job.seed,
    )
    model.policy.mlp_extractor.policy_net.load_state_dict(base.policy.latent_net.state_dict())
    model.policy.action_net.load_state_dict(base.policy.action_net.state_dict())
    # PPO resets slots itself: queue enough training mazes for the whole run (at least one move per episode)
    rng = np.random.default_rng(job.seed)
    per_slot = job.ppo_timesteps // venv.num_envs + 2
    venv.schedule_episodes(
        {slot: [EpisodeStart(int(s)) for s in rng.choice(train_seeds, per_slot)] for slot in range(venv.num_envs)},
        replace=True,
    )
    return model


def run_all(jobs: list[Job], workers: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        for job in jobs:
            rows += run(job)
            print(f"done {job.method} N={job.group_size} lr={job.learning_rate} seed={job.seed}", flush=True)
        return pd.DataFrame(rows)
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            rows += future.result()
            print(f"done {job.method} N={job.group_size} lr={job.learning_rate} seed={job.seed}", flush=True)
    return pd.DataFrame(rows)


def final_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of the last evaluation of every run, plus the base's own values."""
    columns = [f"neg_log_pass@{k}" for k in KS]
    keys = ["size", "method", "group_size", "learning_rate"]
    last = frame[frame["update"] == frame.groupby([*keys, "seed"])["update"].transform("max")]
    table = last.groupby(keys)[columns].agg(["mean", "std"])
    base = frame[frame["update"] == 0].groupby("size")[columns].agg(["mean", "std"])
    base.index = pd.MultiIndex.from_tuples([(s, "base (BC)", 0, 0.0) for s in base.index], names=keys)
    table = pd.concat([table, base])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    return table.reset_index()


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(KS), figsize=(4 * len(KS), 3.5), squeeze=False)
    colors = {"maxrl": "tab:blue", "grpo": "tab:orange", "rloo": "tab:green", "ppo": "tab:gray"}
    styles = {4: ":", 16: "-", 64: "--"}
    for (method, group_size), runs in frame.groupby(["method", "group_size"]):
        mean = runs.groupby("update")[[f"neg_log_pass@{k}" for k in KS]].mean()
        for axis, k in zip(axes[0], KS, strict=True):
            axis.plot(
                mean.index,
                mean[f"neg_log_pass@{k}"],
                color=colors.get(method, "black"),
                linestyle=styles.get(group_size, "-"),
                label=f"{method}" + ("" if method == "ppo" else f" N={group_size}"),
            )
    for axis, k in zip(axes[0], KS, strict=True):
        axis.set_yscale("log")
        axis.set_title(f"-log pass@{k} (held out)")
        axis.set_xlabel("update")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=9, choices=(9, 13, 17))
    parser.add_argument("--methods", nargs="*", default=["maxrl", "grpo", "rloo"])
    parser.add_argument("--Ns", nargs="+", type=int, default=[16], help="episodes per maze (group_size)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--learning-rates", nargs="+", type=float, default=None, help="default: the recipe's")
    parser.add_argument(
        "--method-lr", nargs="+", default=[], metavar="METHOD=LR", help="a learning rate per method, e.g. maxrl=3e-3"
    )
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--n-groups", type=int, default=None, help="mazes per update")
    parser.add_argument("--eval-points", type=int, default=10)
    parser.add_argument("--n-eval", type=int, default=None, help="held-out (and validation) mazes")
    parser.add_argument("--n-train", type=int, default=None, help="training mazes")
    parser.add_argument("--base-target", type=float, default=None, help="BC stops at this validation pass@1")
    parser.add_argument("--ppo", action="store_true", help="also SB3 PPO from the same BC actor")
    parser.add_argument("--ppo-learning-rates", nargs="+", type=float, default=[3e-4])
    parser.add_argument("--ppo-timesteps", type=int, default=None, help="default: the median MaxRL run's env steps")
    parser.add_argument("--tune", action="store_true", help="evaluate on validation mazes (the learning-rate grid)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 updates, 1 seed, 64 held-out mazes")
    args = parser.parse_args()
    recipe = RECIPES[args.size]
    updates = args.updates or recipe.updates
    n_groups = args.n_groups or recipe.n_groups
    learning_rates = args.learning_rates or [recipe.learning_rate]
    method_lr = {m: float(lr) for m, lr in (pair.split("=") for pair in args.method_lr)}
    if args.quick:
        updates, args.seeds, args.n_eval, args.n_train, args.eval_points = 30, 1, 64, 2000, 3
    template = Job(
        size=args.size,
        method="maxrl",
        group_size=16,
        learning_rate=learning_rates[0],
        seed=0,
        n_groups=n_groups,
        updates=updates,
        eval_points=args.eval_points,
        n_eval=args.n_eval or recipe.n_eval,
        n_train=args.n_train or recipe.n_train,
        base_target=args.base_target or recipe.base_target,
        split="validation" if args.tune else "test",
    )
    jobs = [
        replace(template, method=method, group_size=n, learning_rate=lr, seed=seed)
        for seed in range(args.seeds)
        for n in args.Ns
        for method in args.methods
        for lr in ([method_lr[method]] if method in method_lr else learning_rates)
    ]
    started = time.perf_counter()
    frame = run_all(jobs, args.workers) if jobs else pd.DataFrame()
    if args.ppo:  # the same env-step budget as the median MaxRL run
        budget = args.ppo_timesteps or int(frame[frame.method == "maxrl"].groupby("seed").timesteps.max().median())
        ppo_jobs = [
            replace(template, method="ppo", group_size=0, learning_rate=lr, seed=seed, ppo_timesteps=budget)
            for seed in range(args.seeds)
            for lr in args.ppo_learning_rates
        ]
        frame = pd.concat([frame, run_all(ppo_jobs, args.workers)])
    stem = f"strict_mazes_{args.size}" + ("_quick" if args.quick else "") + ("_tune" if args.tune else "") + args.tag
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / f"{stem}.csv", index=False)
    table = final_table(frame)
    table.to_csv(RESULTS / f"{stem}_final.csv", index=False)
    plot(frame, RESULTS / f"{stem}.png")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(table)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
