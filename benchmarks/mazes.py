"""Mazes: MaxRL vs GRPO vs RLOO vs REINFORCE vs SB3 PPO at an equal env-step budget, pass@k on held-out mazes.

Every run trains on its own seeded stream of mazes and is evaluated on the same held-out start states
(``sb3_maxrl.default_eval_seeds``, disjoint from training). pass@k is the unbiased estimator
``1 - C(n - c, k) / C(n, k)`` from n stochastic episodes per start state, averaged over start states.

Outputs (``--out``): ``mazes_final.csv`` (pass@k for k = 1..64 at the end of training, per algo and seed),
``mazes_curves.csv`` (pass@k during training), ``mazes_rollouts.csv`` (per update: batch pass rate and the
fraction of all-fail groups, K = 0, whose advantages are all zero), ``mazes_efficiency.csv`` (env steps MaxRL
needs to reach each baseline's final pass@k), ``mazes.png``; ``--sweep`` writes ``mazes_sweep.csv``.

    python -m benchmarks.mazes --quick           # 3 seeds, 100k env steps per run
    python -m benchmarks.mazes                   # 5 seeds, 400k env steps per run
    python -m benchmarks.mazes --sweep --quick   # the MaxRL hyperparameter sanity sweep
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import common

ALGOS = ["maxrl", "grpo", "rloo", "reinforce", "ppo"]
FINAL_KS = [1, 2, 4, 8, 16, 32, 64]
CURVE_KS = [1, 4, 16]
SWEEP = {  # one factor at a time around the base config (common.MAXRL_KWARGS at the time of the sweep)
    "base": {"learning_rate": 3e-3, "group_size": 16, "n_groups": 8, "n_epochs": 1},
    "lr=1e-3": {"learning_rate": 1e-3, "group_size": 16, "n_groups": 8, "n_epochs": 1},
    "n_epochs=4,clip=0.2": {"learning_rate": 3e-3, "group_size": 16, "n_groups": 8, "n_epochs": 4, "clip_range": 0.2},
    "group_size=8": {"learning_rate": 3e-3, "group_size": 8, "n_groups": 8, "n_epochs": 1},
    "n_groups=4": {"learning_rate": 3e-3, "group_size": 16, "n_groups": 4, "n_epochs": 1},
}


def run_one(task: dict) -> dict:
    """Train one (algo, seed) and evaluate it; runs in a worker process."""
    common.setup_torch()
    from sb3_maxrl import default_eval_seeds

    env_kwargs = {"size": task["maze_size"]}
    eval_env = common.make_env(task["env_id"], n_envs=16, seed=10_000 + task["seed"], env_kwargs=env_kwargs)
    curve_seeds = default_eval_seeds(task["curve_states"])

    def curve_eval(model) -> dict:
        res = common.evaluate(model, eval_env, curve_seeds, task["curve_samples"], CURVE_KS)
        return {f"pass@{k}": v for k, v in res.items()}

    budget = task["budget"]
    every = budget // task["curve_points"] if task["curve_points"] else None
    start = time.perf_counter()
    result = common.train(
        task["algo"],
        budget,
        seed=task["seed"],
        env_id=task["env_id"],
        n_envs=task["n_envs"],
        eval_every=every,
        eval_fn=curve_eval,
        env_kwargs=env_kwargs,
        **task.get("overrides", {}),
    )
    train_time = result.wall_time
    if task["curve_points"] and (not result.evals or result.evals[-1]["timesteps"] < result.model.num_timesteps):
        result.evals.append({"timesteps": result.model.num_timesteps, **curve_eval(result.model)})
    ks = [k for k in FINAL_KS if k <= task["final_samples"]]
    final = common.evaluate(result.model, eval_env, default_eval_seeds(task["final_states"]), task["final_samples"], ks)
    eval_env.close()
    tag = {"algo": task["algo"], "seed": task["seed"], **({"config": task["config"]} if "config" in task else {})}
    return {
        "final": {
            **tag,
            "timesteps": result.model.num_timesteps,
            "train_seconds": train_time,
            "total_seconds": time.perf_counter() - start,
            **{f"pass@{k}": v for k, v in final.items()},
        },
        "curves": [{**tag, **row} for row in result.evals],
        "rollouts": [{**tag, **row} for row in result.rollout_log],
    }


def run_tasks(tasks: list[dict], workers: int) -> list[dict]:
    if workers <= 1:
        return [_log(run_one(t)) for t in tasks]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver"), max_tasks_per_child=1) as pool:
        return [_log(r) for r in pool.map(run_one, tasks)]


def _log(result: dict) -> dict:
    f = result["final"]
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in f.items()}, flush=True)
    return result


def steps_to_reach(curve, target: float) -> float:
    """First env-step count (linear interpolation between evaluations) where ``curve`` reaches ``target``; nan if never."""
    xs, ys = curve["timesteps"].to_numpy(), curve["value"].to_numpy()
    if ys[0] >= target:
        return float(xs[0])
    for i in range(1, len(xs)):
        if ys[i] >= target:
            return float(xs[i - 1] + (target - ys[i - 1]) / (ys[i] - ys[i - 1]) * (xs[i] - xs[i - 1]))
    return float("nan")


def efficiency(curves, budget_col: str = "timesteps") -> list[dict]:
    """Env steps MaxRL needs (median curve over seeds) to reach each baseline's final median pass@k."""
    rows = []
    for k in CURVE_KS:
        col = f"pass@{k}"
        med = curves.groupby(["algo", "point"]).agg(timesteps=(budget_col, "median"), value=(col, "median")).reset_index()
        maxrl = med[med.algo == "maxrl"].sort_values("point")
        for algo in [a for a in ALGOS if a != "maxrl" and a in set(med.algo)]:
            base = med[med.algo == algo].sort_values("point")
            target, base_steps = base["value"].iloc[-1], base["timesteps"].iloc[-1]
            need = steps_to_reach(maxrl, target)
            rows.append(
                {
                    "k": k,
                    "baseline": algo,
                    "baseline_final": target,
                    "baseline_steps": base_steps,
                    "maxrl_steps_to_reach": need,
                    "ratio": base_steps / need if need == need else float("nan"),
                    "maxrl_first_eval_steps": maxrl["timesteps"].iloc[0],
                }
            )
    return rows


def plot(final, curves, rollouts, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    order = [a for a in ALGOS if a in set(final.algo)]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    long = final.melt(id_vars=["algo", "seed"], value_vars=[f"pass@{k}" for k in FINAL_KS], var_name="kk", value_name="p")
    long["k"] = long["kk"].str[5:].astype(int)
    long["-log pass@k"] = -np.log(np.clip(long["p"], 1e-6, None))
    common.plot_seed_bands(axes[0], long, "k", "-log pass@k", "algo", order=order)
    axes[0].set_xscale("log", base=2)
    axes[0].set_yscale("log")
    axes[0].set_title("held-out mazes, end of training")
    for ax, k in ((axes[1], 1), (axes[2], 16)):
        c = curves.copy()  # evaluation points differ slightly between seeds: align on the point's median step count
        c["timesteps"] = c.groupby(["algo", "point"])["timesteps"].transform("median")
        common.plot_seed_bands(ax, c, "timesteps", f"pass@{k}", "algo", order=order)
        ax.set_title(f"pass@{k} during training (held-out)")
    if not rollouts.empty and "rollout/frac_groups_all_fail" in rollouts:
        r = rollouts.dropna(subset=["rollout/frac_groups_all_fail"]).copy()
        bins = np.linspace(0, r["timesteps"].max(), 16)
        r["timesteps"] = pd.cut(r["timesteps"], bins, labels=(bins[1:] + bins[:-1]) / 2, include_lowest=True).astype(float)
        r = r.groupby(["algo", "seed", "timesteps"], as_index=False)["rollout/frac_groups_all_fail"].mean()
        common.plot_seed_bands(
            axes[3], r, "timesteps", "rollout/frac_groups_all_fail", "algo", order=[a for a in order if a != "ppo"]
        )
        axes[3].set_title("fraction of K = 0 groups (zero advantage)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per algorithm (default 3 quick, 5 full)")
    parser.add_argument("--out", default=str(common.RESULTS_DIR))
    parser.add_argument("--budget", type=int, default=None, help="env steps per run")
    parser.add_argument("--algos", nargs="+", default=ALGOS)
    parser.add_argument("--maze-size", type=int, default=7, help="maze side (7: random pass rate ~9%%, learns at CPU scale)")
    parser.add_argument("--env-id", default=common.MAZE_ID)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes (<= 2 on this machine)")
    parser.add_argument("--sweep", action="store_true", help="MaxRL hyperparameter sanity sweep instead")
    parser.add_argument("--replot", action="store_true", help="redraw mazes.png from the CSVs in --out")
    parser.add_argument(
        "--maxrl-kwargs",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="dict merged over common.MAXRL_KWARGS for every MaxRL-family algo (not ppo), e.g. "
        '\'{"n_epochs": 1, "clip_range": null}\' (default: none, the shared configuration; ignored by --sweep)',
    )
    args = parser.parse_args()
    common.setup_torch()
    import pandas as pd

    t0 = time.perf_counter()
    out = Path(args.out)
    n_seeds = args.seeds or (3 if args.quick else 5)
    budget = args.budget or (100_000 if args.quick else 400_000)
    base = {
        "env_id": args.env_id,
        "maze_size": args.maze_size,
        "n_envs": args.n_envs,
        "budget": budget,
        "curve_points": 3 if args.quick else 8,
        "curve_states": 8 if args.quick else 16,
        "curve_samples": 16,
        "final_states": 16 if args.quick else 32,
        "final_samples": 64 if args.quick else 128,
    }
    machine = common.machine_info()
    print(machine, flush=True)
    if args.replot:
        final = pd.read_csv(out / "mazes_final.csv")
        curves, rollouts = pd.read_csv(out / "mazes_curves.csv"), pd.read_csv(out / "mazes_rollouts.csv")
        plot(
            final,
            curves,
            rollouts,
            out / "mazes.png",
            f"{args.maze_size}x{args.maze_size} maze, "
            f"{int(final.timesteps.median())} env steps, {final.seed.nunique()} seeds, median and min-max",
        )
        return
    if args.sweep:
        sweep_base = {**base, "curve_points": 0, "final_states": 32, "final_samples": 16}
        tasks = [
            {**sweep_base, "algo": "maxrl", "seed": s, "config": name, "overrides": cfg}
            for s in range(n_seeds)
            for name, cfg in SWEEP.items()
        ]
        results = run_tasks(tasks, args.workers)
        df = pd.DataFrame([r["final"] for r in results])
        common.write_csv(df.to_dict("records"), out / "mazes_sweep.csv")
        rollouts = pd.DataFrame([c for r in results for c in r["rollouts"]])
        common.write_csv(rollouts.to_dict("records"), out / "mazes_sweep_rollouts.csv")
        cols = ["pass@1", "pass@4", "pass@16", "timesteps", "train_seconds"]
        print(df.groupby("config")[cols].median().to_string(float_format=lambda x: f"{x:.3g}"))
        print(f"wall time {time.perf_counter() - t0:.0f} s", flush=True)
        return

    tasks = [{**base, "algo": a, "seed": s} for s in range(n_seeds) for a in args.algos]  # interleaved A/B
    if args.maxrl_kwargs:
        for t in tasks:
            if t["algo"] != "ppo":
                t["overrides"] = dict(args.maxrl_kwargs)
    results = run_tasks(tasks, args.workers)
    final = pd.DataFrame([r["final"] for r in results])
    curves = pd.DataFrame([c for r in results for c in r["curves"]])
    curves["point"] = curves.groupby(["algo", "seed"]).cumcount()
    rollouts = pd.DataFrame([c for r in results for c in r["rollouts"]])
    common.write_csv(final.to_dict("records"), out / "mazes_final.csv")
    common.write_csv(curves.to_dict("records"), out / "mazes_curves.csv")
    common.write_csv(rollouts.to_dict("records"), out / "mazes_rollouts.csv")
    eff = efficiency(curves) if "maxrl" in set(final.algo) else []
    common.write_csv(eff, out / "mazes_efficiency.csv")

    summary = final.groupby("algo")[[f"pass@{k}" for k in FINAL_KS] + ["timesteps", "train_seconds"]].median()
    summary = summary.reindex([a for a in ALGOS if a in summary.index])
    print(f"\nmedian over {n_seeds} seeds, {budget} env steps, maze {args.maze_size}x{args.maze_size}:")
    print(summary.to_string(float_format=lambda x: f"{x:.3f}"))
    if not rollouts.empty and "rollout/frac_groups_all_fail" in rollouts:
        r = rollouts.dropna(subset=["rollout/frac_groups_all_fail"]).copy()
        r["phase"] = pd.cut(r["timesteps"] / budget, [0, 1 / 3, 2 / 3, 10], labels=["first third", "middle", "last third"])
        print("\nfraction of all-fail (K = 0) groups, mean over updates, median over seeds:")
        print(
            r.groupby(["algo", "seed", "phase"], observed=True)["rollout/frac_groups_all_fail"]
            .mean()
            .groupby(["algo", "phase"], observed=True)
            .median()
            .unstack()
            .to_string(float_format=lambda x: f"{x:.3f}")
        )
    if eff:
        print("\nsample efficiency (in-training eval: held-out mazes x 16 samples):")
        print(pd.DataFrame(eff).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    plot(
        final,
        curves,
        rollouts,
        out / "mazes.png",
        f"{args.maze_size}x{args.maze_size} maze, {budget} env steps, {n_seeds} seeds, median and min-max; {machine}",
    )
    print(f"wall time {time.perf_counter() - t0:.0f} s ({'quick' if args.quick else 'full'})", flush=True)


if __name__ == "__main__":
    main()
