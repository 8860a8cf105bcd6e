"""The paper's protocol on stock MiniGrid / BabyAI tasks, held out by layout: MaxRL vs GRPO vs RLOO vs PPO from a weak base.

Every task runs through the library's :func:`sb3_maxrl.experiments.pipeline.run_protocol` with its recipe
(:data:`~sb3_maxrl.experiments.pipeline.RECIPES`): training, validation and test start states pairwise different
layouts, a weak base behaviour-cloned from the shortest-path planner (BabyAI: ``BabyAIBot``) until the validation
pass@1 reaches 1%, then every method fine-tunes a copy of that base for the same env steps with the same update
machinery (4 clipped epochs over minibatches of 256 steps, PPO's); pass@k on the held-out layouts, exact for the
deterministic navigation tasks, sampled for BabyAI.

    python -m benchmarks.minigrid_tasks --grid --seeds 1 2 3 4 5     # the full run
    python -m benchmarks.minigrid_tasks --quick --paper-update       # the earlier reduced run (one seed, one step)

The ablation, PPO without a learned critic from the same bases at the full run's learning rates:
``--seeds 1 2 3 4 5 --methods ppo --no-ppo-critic --chosen-from minigrid_tasks --tag _ppo_no_critic``.

``--grid`` first runs the learning-rate grid :data:`GRID` on the tuning seed (``--tune-seed``, 0) and chooses each
method's rate on the validation layouts (:func:`~sb3_maxrl.experiments.pipeline.validation_score`); the reported
seeds then run with those rates, so no reported number was tuned on. Each (task, seed) is one job whose outputs are
kept: a stopped run resumes where it was. Writes ``benchmarks/results/minigrid_tasks[_quick]<tag>.csv`` (mean and
sd over seeds per task and method, the base included), ``..._rows.csv`` (every run), ``.png`` (-log pass@k against
k per task) and, per task and seed, the pipeline's outputs (``summary.json``, ``rows.csv``, TensorBoard logs) under
``benchmarks/results/minigrid_tasks[_quick]<tag>/<task>/``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.common import write_csv, write_readme_block
from sb3_maxrl.cli.train import parse_env_kwargs
from sb3_maxrl.experiments.pipeline import (
    PAPER_ONE_STEP_UPDATE,
    PPO_METHOD,
    ProtocolResult,
    Recipe,
    recipe_for,
    run_protocol,
    task_for,
    write_outputs,
)

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = (
    "MiniGrid-LavaCrossingS9N2-v0",
    "MiniGrid-LavaCrossingS11N5-v0",
    "MiniGrid-SimpleCrossingS11N5-v0",
    "BabyAI-GoToRedBallGrey-v0",
)
METHODS = ("maxrl", "grpo", "rloo", PPO_METHOD)
#: The learning-rate grid of ``--grid``: the same two points for every method, chosen on the validation layouts
GRID: dict[str, tuple[float, ...]] = {method: (3e-4, 1e-3) for method in METHODS}
#: The reduced run: one seed and cut budgets (8 start states x 16 episodes per update), about 15 CPU-minutes
QUICK: dict[str, dict[str, Any]] = {
    "MiniGrid-LavaCrossingS9N2-v0": dict(timesteps=80_000, n_groups=8, bc_eval_freq=2),
    "MiniGrid-LavaCrossingS11N5-v0": dict(timesteps=60_000, n_groups=8, bc_eval_freq=2),
    "MiniGrid-SimpleCrossingS11N5-v0": dict(n_train=500, n_test=128, timesteps=60_000, n_groups=8, bc_eval_freq=2),
    "BabyAI-GoToRedBallGrey-v0": dict(
        n_train=500, n_validation=16, n_test=32, timesteps=30_000, n_groups=8, ks=(1, 4, 16, 32), eval_samples=32
    ),
}


@dataclass(frozen=True)
class Job:
    """
    One task at one seed: a base, then every method fine-tuned from it.

    :param task_id: the env id
    :param seed: the seed (initialization, cloning draws, fine-tuning)
    :param learning_rates: candidate learning rates per method (several: chosen on validation)
    :param overrides: other recipe settings (the reduced budgets of ``--quick``, ``--timesteps``)
    :param out_dir: where the pipeline writes this job's outputs
    :param methods: the methods fine-tuned from the base
    """

    task_id: str
    seed: int
    learning_rates: dict[str, tuple[float, ...]]
    overrides: dict[str, Any]
    out_dir: Path
    methods: tuple[str, ...] = METHODS

    def recipe(self) -> Recipe:
        return recipe_for(self.task_id, **self.overrides, learning_rates=dict(self.learning_rates))

    def done(self) -> bool:
        """
        Whether the job's outputs are there, from the same settings.

        :raises SystemExit: when they were made with other settings (a new ``--tag`` keeps both)
        """
        path = self.out_dir / "summary.json"
        if not path.exists():
            return False
        summary = json.loads(path.read_text())
        wanted = json.loads(json.dumps(dict(recipe=asdict(self.recipe()), methods=list(self.methods))))
        defaults = json.loads(json.dumps(asdict(Recipe())))  # a field added later defaults to the old behaviour
        if dict(recipe=defaults | summary["recipe"], methods=summary["methods"]) != wanted:
            raise SystemExit(f"{self.out_dir} holds a run with other settings: pass another --tag, or remove it.")
        return True


def run_job(job: Job) -> None:
    """Run one job through the library's pipeline (its outputs land in ``job.out_dir``)."""
    th.set_num_threads(1)
    run_protocol(task_for(job.task_id), job.recipe(), job.methods, seeds=[job.seed], out_dir=job.out_dir)


def run_jobs(jobs: Sequence[Job], workers: int) -> None:
    """Run the jobs not done yet, ``workers`` at a time."""
    todo = [job for job in jobs if not job.done()]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} jobs done, {len(todo)} to run", flush=True)
    if workers <= 1:
        for job in todo:
            run_job(job)
        return
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for future in concurrent.futures.as_completed([pool.submit(run_job, job) for job in todo]):
            future.result()


def chosen_learning_rates(tune_dir: Path) -> dict[str, tuple[float, ...]]:
    """
    Each method's learning rate chosen on the validation layouts by a tuning job.

    :param tune_dir: the tuning job's outputs
    :return: one learning rate per method
    """
    summary = json.loads((tune_dir / "summary.json").read_text())
    return {method: (float(choice["chosen_learning_rate"]),) for method, choice in summary["runs"][0]["methods"].items()}


def load_result(out_dirs: Sequence[Path]) -> ProtocolResult:
    """
    The seeds of one task as one result, read back from the jobs' ``rows.csv`` and ``summary.json``.

    :param out_dirs: the jobs' output folders, one per seed
    :return: every row; the summary of the first job with every job's run summary and seconds
    """
    rows: list[dict[str, Any]] = []
    summaries = [json.loads((out_dir / "summary.json").read_text()) for out_dir in out_dirs]
    for out_dir in out_dirs:
        with open(out_dir / "rows.csv", newline="") as handle:
            rows += [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    summary = dict(summaries[0])
    summary.pop("table", None)
    summary["seeds"] = [seed for entry in summaries for seed in entry["seeds"]]
    summary["runs"] = [run for entry in summaries for run in entry["runs"]]
    summary["seconds"] = sum(entry["seconds"] for entry in summaries)
    return ProtocolResult(rows=rows, summary=summary, ks=tuple(summary["recipe"]["ks"]))


def _number(value: str) -> Any:
    """A CSV cell as the int or float it was written from (``repr`` of a Python number), else the text."""
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            continue
    return value


def markdown_table(results: dict[str, ProtocolResult], extra: dict[str, ProtocolResult] | None = None) -> str:
    """
    One table of every task: -log pass@k (mean +- sd over seeds) per method, the base first, the lowest bold.

    :param results: the runs of every task
    :param extra: more rows per task (an ablation's methods, renamed), shown under the task's own
    :return: the markdown
    """
    columns = ("1", "16", "64", "max")
    lines = [
        "| task (evaluation) | method | lr | seeds | env steps | "
        + " | ".join(f"-log pass@{k}" if k != "max" else "-log pass@k, largest k" for k in columns)
        + " |"
    ]
    lines.append("|" + "---|" * (5 + len(columns)))
    for task_id, result in results.items():
        ks = [k for k in (1, 16, 64) if k in result.ks] + [max(result.ks)]
        entries = result.table() + ([] if extra is None or task_id not in extra else extra[task_id].table())
        learning_rates = {row["method"]: row["learning_rate"] for row in result.rows}
        if extra is not None and task_id in extra:
            learning_rates |= {row["method"]: row["learning_rate"] for row in extra[task_id].rows}
        tuned = [entry for entry in entries if entry["method"] != "base"]
        best = {k: min(entry[f"neg_log_pass@{k}"] for entry in tuned) for k in ks}
        evaluation = "exact" if result.summary["exact"] else "sampled"
        label = f"{task_id.removesuffix('-v0')} ({evaluation}, k up to {max(ks)})"
        for index, entry in enumerate(entries):
            texts = {}
            for k in ks:
                mean, sd = entry[f"neg_log_pass@{k}"], entry[f"neg_log_pass@{k}_sd"]
                text = f"{mean:.3f} +- {sd:.3f}" if entry["seeds"] > 1 else f"{mean:.3f}"
                texts[k] = f"**{text}**" if entry["method"] != "base" and mean == best[k] else text
            cells = [texts[k] if k in texts and k < max(ks) else "-" for k in (1, 16, 64)] + [texts[max(ks)]]
            method = entry["method"]
            lr = "-" if method == "base" else f"{learning_rates[method]:g}"
            lines.append(
                f"| {label if index == 0 else ''} | {method} | {lr} | {entry['seeds']} | "
                f"{entry['timesteps']:,} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def renamed(result: ProtocolResult, suffix: str) -> ProtocolResult:
    """The result with every method but the base renamed ``<method><suffix>`` and the base rows dropped."""
    rows = [row | dict(method=row["method"] + suffix) for row in result.rows if row["method"] != "base"]
    return ProtocolResult(rows=rows, summary=result.summary, ks=result.ks)


def plot(results: dict[str, ProtocolResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.5), squeeze=False)
    for axis, (task_id, result) in zip(axes[0], results.items(), strict=True):
        for method in dict.fromkeys(row["method"] for row in result.rows):
            rows = [row for row in result.rows if row["method"] == method]
            ks = sorted({int(key.split("@")[1]) for key in rows[0] if key.startswith("neg_log_pass@") and row_has(rows, key)})
            values = [sum(row[f"neg_log_pass@{k}"] for row in rows) / len(rows) for k in ks]
            axis.plot(ks, values, marker="o", markersize=3, linestyle="--" if method == "base" else "-", label=method)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_ylim(bottom=max(axis.get_ylim()[0], 1e-4))  # an exact 0 (every layout solved) sits below the axis
        axis.set_xlabel("k")
        seeds = len({row["seed"] for row in result.rows})
        evaluation = "exact" if result.summary["exact"] else "sampled"
        axis.set_title(f"{task_id.removesuffix('-v0')} ({evaluation}, {seeds} seeds)", fontsize=9)
    axes[0][0].set_ylabel("-log pass@k, held-out layouts")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def row_has(rows: list[dict[str, Any]], key: str) -> bool:
    return all(isinstance(row.get(key), float | int) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="the reported seeds")
    parser.add_argument("--timesteps", type=int, default=None, help="env steps per method (default: the recipe's)")
    parser.add_argument("--grid", action="store_true", help="choose each method's lr from GRID on the tuning seed")
    parser.add_argument("--tune-seed", type=int, default=0, help="the seed of the --grid choice (not reported)")
    parser.add_argument("--quick", action="store_true", help="the reduced budgets of QUICK")
    parser.add_argument("--workers", type=int, default=1, help="jobs (task x seed) run in parallel")
    parser.add_argument("--tag", default="")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument(
        "--recipe",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="other Recipe settings, each value read as YAML (e.g. n_groups=2)",
    )
    parser.add_argument(
        "--paper-update",
        action="store_true",
        help="the MaxRL family takes the paper's one plain on-policy step per update (PAPER_ONE_STEP_UPDATE)",
    )
    parser.add_argument(
        "--no-ppo-critic",
        action="store_true",
        help="an ablation: PPO with no learned critic (Recipe.ppo_learned_critic=False)",
    )
    parser.add_argument(
        "--chosen-from",
        default=None,
        metavar="STEM",
        help="take each method's learning rate from the --grid choice of another run (its results stem)",
    )
    parser.add_argument(
        "--with-results",
        default=None,
        metavar="STEM",
        help="add another run's methods to the table (e.g. the no-critic ablation's)",
    )
    parser.add_argument("--with-suffix", default=" (no critic)", help="appended to the names of --with-results' methods")
    args = parser.parse_args()
    if args.grid and args.tune_seed in args.seeds:
        parser.error(f"--tune-seed {args.tune_seed} is among the reported --seeds: report seeds the grid did not see")
    stem = "minigrid_tasks" + ("_quick" if args.quick else "") + args.tag
    out_dir = RESULTS / stem
    started = time.perf_counter()

    def overrides(task_id: str) -> dict[str, Any]:
        changes = dict(QUICK.get(task_id, {})) if args.quick else {}
        changes |= dict(ppo_learned_critic=False) if args.no_ppo_critic else {}
        changes |= PAPER_ONE_STEP_UPDATE if args.paper_update else {}
        changes |= parse_env_kwargs(args.recipe, flag="--recipe", example="n_groups=2")
        return changes | ({} if args.timesteps is None else dict(timesteps=args.timesteps))

    def task_dir(task_id: str) -> Path:
        return out_dir / task_id.replace("/", "_")

    methods = tuple(args.methods)
    learning_rates = {task_id: dict(recipe_for(task_id).learning_rates) for task_id in args.tasks}
    if args.grid:
        tune_dirs = {t: task_dir(t) / f"tune_seed{args.tune_seed}" for t in args.tasks}
        tune_jobs = [Job(t, args.tune_seed, GRID, overrides(t), tune_dirs[t], methods) for t in args.tasks]
        run_jobs(tune_jobs, args.workers)
        learning_rates = {job.task_id: chosen_learning_rates(job.out_dir) for job in tune_jobs}
    elif args.chosen_from is not None:
        chosen_dir = RESULTS / args.chosen_from
        learning_rates = {t: chosen_learning_rates(chosen_dir / t / f"tune_seed{args.tune_seed}") for t in args.tasks}
    for task_id, chosen in learning_rates.items():
        print(f"{task_id}: learning rates {chosen}", flush=True)
    jobs = [
        Job(t, seed, learning_rates[t], overrides(t), task_dir(t) / f"seed{seed}", methods)
        for t in args.tasks
        for seed in args.seeds
    ]
    run_jobs(jobs, args.workers)

    results = {t: load_result([job.out_dir for job in jobs if job.task_id == t]) for t in args.tasks}
    for task_id, result in results.items():
        write_outputs(result, task_dir(task_id))
    table = [dict(task=task_id, exact=result.summary["exact"]) | entry for task_id, result in results.items()
             for entry in result.table()]  # fmt: skip
    rows = [dict(task=task_id) | row for task_id, result in results.items() for row in result.rows]
    write_csv(table, RESULTS / f"{stem}.csv")
    write_csv(rows, RESULTS / f"{stem}_rows.csv")
    plot(results, RESULTS / f"{stem}.png")
    extra = None
    if args.with_results is not None:
        other_dir = RESULTS / args.with_results
        extra = {t: renamed(load_result(sorted((other_dir / t).glob("seed*"))), args.with_suffix) for t in args.tasks
                 if (other_dir / t).is_dir()}  # fmt: skip
    table_markdown = markdown_table(results, extra)
    (RESULTS / f"{stem}.md").write_text(table_markdown + "\n")
    write_readme_block(stem, table_markdown)
    for task_id, result in results.items():
        print(f"\n{task_id} ({'exact' if result.summary['exact'] else 'sampled'}, {result.summary['seconds']:.0f} s)")
        print(result.markdown())
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
