"""The paper's remaining maze claims: N-scaling at 17x17, scarce training data, a noisy verifier.

Every run is a :class:`benchmarks.strict_mazes.Run` (the same protocol: pairwise-different layouts for training,
validation and test mazes, a behaviour-cloned base near 1% pass@1, exact -log pass@k on the 256 held-out test mazes),
so the three experiments share the strict-maze benchmark's code and its resumable grid runner (one result file per
run; a restarted experiment skips finished runs; ``--executor ray`` spreads the runs over a Ray cluster):

    python -m benchmarks.maze_claims --experiment nscaling --tune   # 17x17: the validation grid (seed 0, N = 16)
    python -m benchmarks.maze_claims --experiment nscaling   # 17x17, N in {4, 16, 64, 128} at 16 mazes per update
    python -m benchmarks.maze_claims --experiment scarce     # 9x9, 64 / 256 / 1024 training mazes, coverage over training
    python -m benchmarks.maze_claims --experiment noise      # 9x9, false-positive / false-negative verifier
    python -m benchmarks.maze_claims --experiment noise --report   # tables and plots from finished runs only

The critic-free family runs one update for every estimator. At 9x9 (scarce, noise) it is the 9x9 comparison's choice
on validation mazes (``python -m benchmarks.strict_mazes``): PPO-style reuse, 4 clipped epochs over 4 episodes x 64
mazes, each method at its validation-chosen learning rate, and SB3 PPO at its own; nothing is re-tuned for the new
regime. At 17x17 (nscaling) a small validation grid (``--tune``: seed 0, N = 16, update {reuse, paper} x learning rate
{3e-4, 1e-3}) chooses one (update, learning rate) for the whole family, which every N then runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from benchmarks.common import write_readme_block
from benchmarks.strict_mazes import KS, RESULTS, Run, records_frame, train_and_evaluate
from sb3_maxrl.experiments.grid import load_records, run_grid

FAMILY = ("maxrl", "grpo", "rloo")
#: The 9x9 validation choices of ``benchmarks/strict_mazes.py`` (the family: reuse update, 4 episodes x 64 mazes per
#: update; SB3 PPO from the behaviour-cloned actor: 4 epochs over minibatches of 2048 of 256 envs x 32 steps)
CHOSEN_9X9_LEARNING_RATES = {"maxrl": 1e-3, "grpo": 1e-3, "rloo": 3e-3, "ppo": 3e-3}
CHOSEN_9X9_PPO_UPDATE = "ppo-4x2048"
NSCALING_GROUP_SIZES = (4, 16, 64, 128)
SCARCE_TRAIN_SIZES = (64, 256, 1024)
#: (false-positive rate, false-negative rate) of the noisy-verifier experiment
NOISE_LEVELS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 0.3), (0.05, 0.0))


@dataclass(frozen=True)
class Experiment:
    """An experiment's runs and how its table groups them."""

    name: str
    size: int
    axis: str  # the Run field the experiment varies
    axis_label: str


EXPERIMENTS = {
    "nscaling": Experiment("nscaling", 17, "group_size", "N"),
    "scarce": Experiment("scarce", 9, "n_train", "training mazes"),
    "noise": Experiment("noise", 9, "noise", "verifier (FP, FN)"),
}


def experiment_runs(args: argparse.Namespace) -> list[Run]:
    """The runs of ``args.experiment`` (longest last, so an interrupted grid has its cheap runs)."""
    family = [m for m in args.methods if m in FAMILY]
    if args.experiment == "nscaling":
        template = Run(size=17, method="maxrl", update="reuse", learning_rate=1e-3, seed=0, split="test",
                       timesteps=10**9, n_groups=args.n_groups, max_updates=args.updates, eval_points=4)
        # SB3 PPO from the same base at a fixed env-step budget (it has no N)
        ppo = replace(template, method="ppo", update="ppo-4x2048", timesteps=args.ppo_timesteps, group_size=0,
                      n_groups=0, max_updates=0)
        with_ppo = "ppo" in args.methods
        if args.tune:  # validation mazes, seed 0, the middle N: the family's update and learning rate; PPO's rate
            return [
                replace(template, method=method, update=update, learning_rate=lr, group_size=args.tune_group_size,
                        split="validation")
                for update in args.tune_updates
                for lr in args.tune_learning_rates
                for method in family
            ] + [replace(ppo, learning_rate=lr, split="validation") for lr in args.tune_learning_rates if with_ppo]
        runs = []
        if family:
            update, learning_rate = args.update, args.learning_rate
            if update is None or learning_rate is None:
                update, learning_rate = choose_nscaling_settings(frame_of(results_dir_of(args)), family)
            template = replace(template, update=update, learning_rate=learning_rate)
            runs = [
                replace(template, method=method, group_size=n, seed=seed)
                for n in args.group_sizes
                for seed in args.seeds
                for method in family
            ]
        if with_ppo:
            learning_rate = args.ppo_learning_rate
            if learning_rate is None:
                learning_rate = choose_nscaling_settings(frame_of(results_dir_of(args)), ["ppo"])[1]
            runs += [replace(ppo, learning_rate=learning_rate, seed=seed) for seed in args.seeds]
        return runs
    group_size, n_groups = (int(part) for part in args.split.split("x"))
    template = Run(size=9, method="maxrl", update="reuse", learning_rate=1e-3, seed=0, split="test",
                   timesteps=args.timesteps, group_size=group_size, n_groups=n_groups)
    runs = []
    for seed in args.seeds:
        for method in family + (["ppo"] if "ppo" in args.methods else []):
            tuned = replace(template, method=method, learning_rate=CHOSEN_9X9_LEARNING_RATES[method], seed=seed)
            if method == "ppo":
                tuned = replace(tuned, update=CHOSEN_9X9_PPO_UPDATE, group_size=0, n_groups=0)
            if args.experiment == "scarce":
                runs += [replace(tuned, n_train=n, train_coverage=True) for n in args.train_sizes]
            else:
                runs += [replace(tuned, false_positive_rate=a, false_negative_rate=b) for a, b in NOISE_LEVELS]
    return runs


def results_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.results) if args.results else RESULTS / f"maze_claims_{args.experiment}"


def choose_nscaling_settings(frame: pd.DataFrame, family: Sequence[str]) -> tuple[str, float]:
    """The (update, learning rate) whose validation ``-log pass@1 + -log pass@64``, averaged over the family's
    methods, is lowest: one setting for every estimator, as in the 9x9 comparison."""
    tuned = frame[(frame["split"] == "validation") & frame["method"].isin(list(family))] if not frame.empty else frame
    if tuned.empty:
        raise SystemExit("No validation runs: run --experiment nscaling --tune first, or pass --update and --learning-rate.")
    points = tuned.groupby(["update", "learning_rate"])["method"].nunique()
    complete = points[points == len(family)].index
    tuned = tuned[tuned.set_index(["update", "learning_rate"]).index.isin(complete)]
    if tuned.empty:
        raise SystemExit(f"No grid point has validation runs of every method of {list(family)}: finish --tune first.")
    score = tuned["final_neg_log_pass@1"] + tuned["final_neg_log_pass@64"]
    best = tuned.assign(score=score).groupby(["update", "learning_rate"])["score"].mean().idxmin()
    return str(best[0]), float(best[1])


def frame_of(results_dir: Path) -> pd.DataFrame:
    """One row per finished run: the settings, the base's and the final held-out metrics (and training coverage)."""
    frame = records_frame(results_dir)
    if frame.empty:
        return frame
    extras = []
    for record in load_records(results_dir):
        result = record["result"]
        row = {f"final_train_{k}": v for k, v in result.get("final_train", {}).items()}
        row |= {f"base_train_{k}": v for k, v in result.get("base_train", {}).items()}
        extras.append(row)
    frame = pd.concat([frame, pd.DataFrame(extras)], axis=1)
    frame["noise"] = [f"{a:g}, {b:g}" for a, b in zip(frame["false_positive_rate"], frame["false_negative_rate"], strict=True)]
    return frame


def summary_table(frame: pd.DataFrame, experiment: Experiment) -> pd.DataFrame:
    """Mean and sd over seeds of -log pass@k per (axis value, method), and the base's."""
    columns = [f"final_neg_log_pass@{k}" for k in KS]
    extra = [c for c in frame if c.startswith("final_train_")]
    extra += [c for c in ("final_timesteps", "final_updates", "seconds") if c in frame]
    keys = [experiment.axis, "method"]
    grouped = frame.groupby(keys)
    table = grouped[columns].agg(["mean", "std"])
    table.columns = [f"{c.removeprefix('final_')}_{stat}" for c, stat in table.columns]
    means = grouped[extra].mean().rename(columns=lambda c: c.removeprefix("final_"))
    table = table.join(means).join(grouped["seed"].nunique().rename("seeds"))
    base = frame.groupby(experiment.axis)[[f"base_neg_log_pass@{k}" for k in KS]].mean()
    base.columns = [f"neg_log_pass@{k}_mean" for k in KS]
    base_train = [c for c in frame if c.startswith("base_train_")]
    if base_train:
        base = base.join(frame.groupby(experiment.axis)[base_train].mean().rename(columns=lambda c: c.replace("base_", "")))
    base["method"] = "base (BC)"
    table = pd.concat([table.reset_index(), base.reset_index()], ignore_index=True)
    order = {"base (BC)": 0, "maxrl": 1, "grpo": 2, "rloo": 3, "ppo": 4}
    return table.sort_values([experiment.axis, "method"], key=lambda c: c.map(order) if c.name == "method" else c)


def markdown(table: pd.DataFrame, experiment: Experiment) -> str:
    """The table as markdown: -log pass@k (mean +- sd over seeds), training coverage where measured."""
    coverage = [c for c in ("train_coverage@1", "train_coverage@64") if c in table]
    steps = ["env steps"] if experiment.name == "nscaling" else []
    header = [experiment.axis_label, "method", "seeds", *steps, *[f"k={k}" for k in KS], *coverage]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        if experiment.name == "nscaling" and row[experiment.axis] == 0 and row["method"] == "base (BC)":
            continue  # PPO's row (no N): its base is every N's
        axis_value = "-" if experiment.name == "nscaling" and row[experiment.axis] == 0 else str(row[experiment.axis])
        cells = [axis_value, row["method"], "-" if pd.isna(row.get("seeds")) else str(int(row["seeds"]))]
        if steps:
            cells.append("-" if pd.isna(row.get("timesteps")) else f"{row['timesteps'] / 1e6:.2f}M")
        for k in KS:
            mean, sd = row[f"neg_log_pass@{k}_mean"], row.get(f"neg_log_pass@{k}_std")
            cells.append(f"{mean:.3f}" + ("" if pd.isna(sd) else f" +- {sd:.3f}"))
        cells += ["-" if pd.isna(row[c]) else f"{row[c]:.3f}" for c in coverage]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(frame: pd.DataFrame, experiment: Experiment, results_dir: Path, path: Path) -> None:
    """Per axis value, -log pass@k against k (mean over seeds); for scarce data, training coverage over training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"maxrl": "tab:blue", "grpo": "tab:orange", "rloo": "tab:green", "ppo": "black"}
    if experiment.name == "nscaling":
        plot_against_n(frame, path.with_name(path.stem + "_vs_n.png"), colors)
    values = sorted(v for v in frame[experiment.axis].unique() if not (experiment.name == "nscaling" and v == 0))
    rows = 2 if experiment.name == "scarce" else 1
    figure, axes = plt.subplots(rows, len(values), figsize=(3.4 * len(values), 3.3 * rows), squeeze=False)
    for column, value in enumerate(values):
        runs = frame[frame[experiment.axis] == value]
        if experiment.name == "nscaling":  # PPO has no N: the same runs on every panel
            runs = pd.concat([runs, frame[frame["method"] == "ppo"]])
        axis = axes[0, column]
        for method, group in runs.groupby("method"):
            curve = group[[f"final_neg_log_pass@{k}" for k in KS]]
            axis.errorbar(KS, curve.mean(), yerr=curve.std().fillna(0), color=colors.get(method, "gray"), marker="o",
                          markersize=3, capsize=2, label=f"{method} (n={len(group)})")
        axis.plot(KS, runs[[f"base_neg_log_pass@{k}" for k in KS]].mean(), color="gray", linestyle="--", label="base")
        axis.set(xscale="log", yscale="log", xlabel="k", title=f"{experiment.axis_label} = {value}")
        if column == 0:
            axis.set_ylabel("-log pass@k (held out, exact)")
            axis.legend(fontsize=7)
        if rows == 2:
            axis = axes[1, column]
            for record in load_records(results_dir):
                job = record["job"]
                if job[experiment.axis] != value:
                    continue
                curve = pd.DataFrame(record["result"]["curve"])
                start = record["result"]["base_train"]["coverage@64"]
                axis.plot([0, *curve["timesteps"] / 1e6], [start, *curve["train_coverage@64"]],
                          color=colors[job["method"]], alpha=0.7, linewidth=1)
            axis.set(xlabel="env steps (millions)", ylim=(0, 1.02), title="training mazes: coverage@64")
            if column == 0:
                axis.set_ylabel("share of training mazes\nwith a success in 64 tries")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_against_n(frame: pd.DataFrame, path: Path, colors: dict[str, str]) -> None:
    """The paper's maze figure: -log pass@k at k = 1, 64, 1024 against N (mean +- sd over seeds), PPO and the base as
    horizontal lines."""
    import matplotlib.pyplot as plt

    ks = (1, 64, 1024)
    figure, axes = plt.subplots(1, len(ks), figsize=(3.6 * len(ks), 3.3))
    family = frame[frame["method"] != "ppo"]
    for axis, k in zip(axes, ks, strict=True):
        column = f"final_neg_log_pass@{k}"
        for method, group in family.groupby("method"):
            stats = group.groupby("group_size")[column].agg(["mean", "std"])
            axis.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), color=colors.get(method, "gray"),
                          marker="o", markersize=3, capsize=2, label=method)
        ppo = frame.loc[frame["method"] == "ppo", column]
        if not ppo.empty:
            steps = frame.loc[frame["method"] == "ppo", "final_timesteps"].mean() / 1e6
            axis.axhline(ppo.mean(), color="black", linewidth=1, label=f"SB3 PPO, {steps:.1f}M steps (n={len(ppo)})")
        axis.axhline(family[f"base_neg_log_pass@{k}"].mean(), color="gray", linestyle="--", label="base")
        axis.set(xscale="log", xlabel="N (episodes per maze)", title=f"-log pass@{k}")
        axis.set_xticks(sorted(family["group_size"].unique()), labels=[str(n) for n in sorted(family["group_size"].unique())])
    axes[0].legend(fontsize=7)
    figure.suptitle(f"17x17 strict mazes: {int(family['n_groups'].iloc[0])} mazes per update, "
                    f"{int(family['max_updates'].iloc[0])} updates; held-out -log pass@k (lower is better), "
                    "mean +- sd over seeds",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=list(EXPERIMENTS), required=True)
    parser.add_argument("--report", action="store_true", help="tables and plots from finished runs, no training")
    parser.add_argument("--methods", nargs="+", default=list(FAMILY),
                        help="add ppo for SB3 PPO from the behaviour-cloned actor")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--group-sizes", nargs="+", type=int, default=list(NSCALING_GROUP_SIZES), help="nscaling: N")
    parser.add_argument("--n-groups", type=int, default=16, help="nscaling: mazes per update")
    parser.add_argument("--updates", type=int, default=120, help="nscaling: updates of every run")
    parser.add_argument("--tune", action="store_true",
                        help="nscaling: the validation grid (seed 0, N = --tune-group-size) that chooses the update")
    parser.add_argument("--tune-updates", nargs="+", default=["reuse", "paper"], choices=["reuse", "paper"])
    parser.add_argument("--tune-learning-rates", nargs="+", type=float, default=[3e-4, 1e-3])
    parser.add_argument("--tune-group-size", type=int, default=16)
    parser.add_argument("--update", default=None, choices=["reuse", "paper"],
                        help="nscaling: every method's update (default: the validation grid's choice)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="nscaling: every method's (default: the validation grid's choice)")
    parser.add_argument("--ppo-timesteps", type=int, default=2_000_000,
                        help="nscaling: PPO's env-step budget (report which N's budget it matches)")
    parser.add_argument("--ppo-learning-rate", type=float, default=None,
                        help="nscaling: PPO's (default: its best on the validation grid, --tune --methods ppo)")
    parser.add_argument("--train-sizes", nargs="+", type=int, default=list(SCARCE_TRAIN_SIZES), help="scarce")
    parser.add_argument("--timesteps", type=int, default=1_900_000, help="scarce and noise: env steps of every run")
    parser.add_argument("--split", default="4x64", help="scarce and noise: N episodes x G mazes per update (the 9x9 "
                        "choice; another split is an ablation, e.g. 16x16 for a noise cap 1/a below N)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--results", default=None, help="results folder (default benchmarks/results/maze_claims_<name>)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    experiment = EXPERIMENTS[args.experiment]
    stem = f"maze_claims_{experiment.name}"
    results_dir = results_dir_of(args)
    if not args.report:
        runs = experiment_runs(args)
        run_grid(train_and_evaluate, [asdict(r) for r in runs], results_dir, executor=args.executor,
                 workers=args.workers, ray_address=args.ray_address)
    frame = frame_of(results_dir)
    outputs = results_dir if args.results else RESULTS  # a folder of one's own keeps the README and results as they are
    if not frame.empty and (frame["split"] == "validation").any():
        validation = frame[frame["split"] == "validation"]
        columns = ["method", "update", "learning_rate", "final_neg_log_pass@1", "final_neg_log_pass@64",
                   "final_neg_log_pass@1024", "final_timesteps"]
        grid = validation[columns].sort_values(["update", "learning_rate", "method"])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |"
                  for row in grid.itertuples(index=False)]
        (outputs / f"{stem}_validation.md").write_text("\n".join(lines) + "\n")
        print(grid.to_string(index=False))
        frame = frame[frame["split"] == "test"]
    if frame.empty:
        print(f"no finished test runs in {results_dir}")
        return
    table = summary_table(frame, experiment)
    table.to_csv(outputs / f"{stem}.csv", index=False)
    text = markdown(table, experiment)
    (outputs / f"{stem}.md").write_text(text + "\n")
    if not args.results:
        write_readme_block(stem, text)
    plot(frame, experiment, results_dir, outputs / f"{stem}.png")
    print(text)


if __name__ == "__main__":
    main()
