"""The paper's protocol on stock MiniGrid / BabyAI tasks, held out by layout: MaxRL vs GRPO vs RLOO vs PPO from a weak base.

Every task runs through the library's :func:`sb3_maxrl.experiments.pipeline.run_protocol` with its recipe
(:data:`~sb3_maxrl.experiments.pipeline.RECIPES`): training, validation and test start states pairwise different
layouts, a weak base behaviour-cloned from the shortest-path planner (BabyAI: ``BabyAIBot``) until the validation
pass@1 reaches 1%, then every method fine-tunes a copy of that base for the same env steps; pass@k on the held-out
layouts, exact for the deterministic navigation tasks, sampled for BabyAI.

    python -m benchmarks.minigrid_tasks --quick --workers 1     # the reduced run of docs/results/minigrid_tasks.md
    python -m benchmarks.minigrid_tasks --seeds 5 --grid        # the full size: 5 seeds, a learning-rate grid per method

Writes ``benchmarks/results/minigrid_tasks[_quick].csv`` (mean and sd over seeds per task and method, the base
included), ``..._rows.csv`` (every run), ``.png`` (-log pass@k against k per task) and, per task, the pipeline's
outputs (``summary.json``, TensorBoard logs) under ``benchmarks/results/minigrid_tasks[_quick]/<task>/``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.common import write_csv
from sb3_maxrl.experiments.pipeline import ProtocolResult, Recipe, recipe_for, run_protocol, task_for

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("MiniGrid-LavaCrossingS9N2-v0", "MiniGrid-SimpleCrossingS11N5-v0", "BabyAI-GoToRedBallGrey-v0")
METHODS = ("maxrl", "grpo", "rloo", "ppo")
#: The learning-rate grid of ``--grid`` (chosen per method on the validation layouts)
GRID: dict[str, tuple[float, ...]] = {
    "maxrl": (3e-4, 1e-3, 3e-3),
    "grpo": (3e-4, 1e-3, 3e-3),
    "rloo": (3e-4, 1e-3, 3e-3),
    "ppo": (1e-4, 3e-4, 1e-3),
}
#: The reduced run: budgets cut so that three tasks fit about 15 CPU-minutes (8 start states x 16 episodes per update)
QUICK: dict[str, dict[str, Any]] = {
    "MiniGrid-LavaCrossingS9N2-v0": dict(timesteps=80_000, n_groups=8, bc_eval_freq=2),
    "MiniGrid-SimpleCrossingS11N5-v0": dict(n_train=500, n_test=128, timesteps=60_000, n_groups=8, bc_eval_freq=2),
    "BabyAI-GoToRedBallGrey-v0": dict(
        n_train=500, n_validation=16, n_test=32, timesteps=30_000, n_groups=8, ks=(1, 4, 16, 32), eval_samples=32
    ),
}


def recipe(task_id: str, quick: bool, grid: bool, timesteps: int | None) -> Recipe:
    """The task's recipe, reduced for ``--quick``, with the learning-rate grid for ``--grid``."""
    overrides: dict[str, Any] = dict(QUICK.get(task_id, {})) if quick else {}
    if grid:
        overrides["learning_rates"] = dict(GRID)
    if timesteps is not None:
        overrides["timesteps"] = timesteps
    return recipe_for(task_id, **overrides)


def run_task(task_id: str, quick: bool, grid: bool, timesteps: int | None, seeds: int, out_dir: Path) -> ProtocolResult:
    """One task, every method and seed, through the library's pipeline."""
    th.set_num_threads(1)
    return run_protocol(
        task_for(task_id),
        recipe(task_id, quick, grid, timesteps),
        METHODS,
        seeds=range(seeds),
        out_dir=out_dir / task_id.replace("/", "_"),
    )


def plot(results: dict[str, ProtocolResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.5), squeeze=False)
    for axis, (task_id, result) in zip(axes[0], results.items(), strict=True):
        for method in dict.fromkeys(row["method"] for row in result.rows):
            rows = [row for row in result.rows if row["method"] == method]
            ks = sorted({int(key.split("@")[1]) for key in rows[0] if key.startswith("neg_log_pass@")})
            values = [sum(row[f"neg_log_pass@{k}"] for row in rows) / len(rows) for k in ks]
            axis.plot(ks, values, marker="o", markersize=3, linestyle="--" if method == "base" else "-", label=method)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("k")
        axis.set_title(task_id.removesuffix("-v0") + (" (exact)" if result.summary["exact"] else " (sampled)"), fontsize=9)
    axes[0][0].set_ylabel("-log pass@k, held-out layouts")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--timesteps", type=int, default=None, help="env steps per method (default: the recipe's)")
    parser.add_argument("--grid", action="store_true", help="a learning-rate grid per method, chosen on validation")
    parser.add_argument("--quick", action="store_true", help="the reduced budgets of QUICK")
    parser.add_argument("--workers", type=int, default=1, help="tasks run in parallel")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    stem = "minigrid_tasks" + ("_quick" if args.quick else "") + args.tag
    out_dir = RESULTS / stem
    started = time.perf_counter()
    jobs = [(task_id, args.quick, args.grid, args.timesteps, args.seeds, out_dir) for task_id in args.tasks]
    if args.workers <= 1:
        results = {job[0]: run_task(*job) for job in jobs}
    else:
        context = multiprocessing.get_context("forkserver")
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
            futures = {job[0]: pool.submit(run_task, *job) for job in jobs}
            results = {task_id: future.result() for task_id, future in futures.items()}
    table = [dict(task=task_id, exact=result.summary["exact"]) | entry for task_id, result in results.items()
             for entry in result.table()]
    rows = [dict(task=task_id) | row for task_id, result in results.items() for row in result.rows]
    write_csv(table, RESULTS / f"{stem}.csv")
    write_csv(rows, RESULTS / f"{stem}_rows.csv")
    plot(results, RESULTS / f"{stem}.png")
    for task_id, result in results.items():
        print(f"\n{task_id} ({'exact' if result.summary['exact'] else 'sampled'}, {result.summary['seconds']:.0f} s)")
        print(result.markdown())
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
