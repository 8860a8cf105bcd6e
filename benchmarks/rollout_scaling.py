"""Rollout scaling: group size N in {4, 8, 16, 32, 64} at a fixed number of start states per update.

Each (estimator, N, seed) trains for a fixed number of updates of G start states x N episodes (so larger N
spends more env steps: the paper's axis, more rollouts per prompt), then pass@k is measured on held-out mazes.
The paper's claim: MaxRL's -log pass@k keeps falling as N grows, GRPO's and RLOO's flatten.

Outputs (``--out``): ``rollout_scaling.csv`` (one row per run), ``rollout_scaling.png``.

    python -m benchmarks.rollout_scaling --quick     # 1 seed, 8 updates of 4 start states, pass@k up to 32
    python -m benchmarks.rollout_scaling             # 3 seeds, 30 updates of 4 start states, pass@k up to 64
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import common

ESTIMATORS = ["maxrl", "grpo", "rloo"]
GROUP_SIZES = [4, 8, 16, 32, 64]
KS = [1, 4, 16, 32, 64]


def run_one(task: dict) -> dict:
    """Train ``task["updates"]`` updates of MaxRL(estimator, group_size=N) and evaluate pass@k."""
    common.setup_torch()
    from sb3_maxrl import default_eval_seeds

    env_kwargs = {"size": task["maze_size"]}
    env = common.make_env(task["env_id"], n_envs=task["n_envs"], seed=task["seed"], env_kwargs=env_kwargs)
    model = common.make_model(task["algo"], env, seed=task["seed"], group_size=task["N"], n_groups=task["G"])
    result = common.RunResult(model)
    recorder = common.make_recorder(result, ("rollout/pass_rate", "rollout/frac_groups_all_fail"))
    start = time.perf_counter()
    for update in range(task["updates"]):  # learn(1) runs exactly one update (MaxRL finishes its update)
        model.learn(1, callback=recorder, reset_num_timesteps=update == 0)
    train_seconds = time.perf_counter() - start
    eval_env = common.make_env(task["env_id"], n_envs=16, seed=10_000 + task["seed"], env_kwargs=env_kwargs)
    ks = [k for k in KS if k <= task["eval_samples"]]
    res = common.evaluate(model, eval_env, default_eval_seeds(task["eval_states"]), task["eval_samples"], ks)
    eval_env.close()
    env.close()
    log = result.rollout_log
    row = {
        "algo": task["algo"],
        "N": task["N"],
        "G": task["G"],
        "seed": task["seed"],
        "updates": task["updates"],
        "timesteps": model.num_timesteps,
        "train_seconds": train_seconds,
        "train_pass_rate_last": log[-1].get("rollout/pass_rate", np.nan) if log else np.nan,
        "frac_all_fail_mean": float(np.mean([r.get("rollout/frac_groups_all_fail", np.nan) for r in log])) if log else np.nan,
    }
    for k, v in res.items():
        row[f"pass@{k}"] = v
        row[f"-log pass@{k}"] = -np.log(max(v, 1e-6))
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per (estimator, N) (default 1 quick, 3 full)")
    parser.add_argument("--out", default=str(common.RESULTS_DIR))
    parser.add_argument("--updates", type=int, default=None, help="updates per run (default 8 quick, 30 full)")
    parser.add_argument("--n-groups", type=int, default=4, help="G, start states per update (fixed across N)")
    parser.add_argument("--group-sizes", type=int, nargs="+", default=GROUP_SIZES)
    parser.add_argument("--algos", nargs="+", default=ESTIMATORS)
    parser.add_argument("--maze-size", type=int, default=7)
    parser.add_argument("--env-id", default=common.MAZE_ID)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes (<= 2 on this machine)")
    args = parser.parse_args()
    common.setup_torch()
    import pandas as pd

    t0 = time.perf_counter()
    out = Path(args.out)
    n_seeds = args.seeds or (1 if args.quick else 3)
    updates = args.updates or (8 if args.quick else 30)
    machine = common.machine_info()
    print(machine, flush=True)
    base = {
        "env_id": args.env_id,
        "maze_size": args.maze_size,
        "n_envs": args.n_envs,
        "G": args.n_groups,
        "updates": updates,
        "eval_states": 16 if args.quick else 32,
        "eval_samples": 32 if args.quick else 64,
    }
    # largest N first (longest tasks) for load balance; estimators interleaved within each (N, seed)
    tasks = [
        {**base, "algo": a, "N": n, "seed": s}
        for n in sorted(args.group_sizes, reverse=True)
        for s in range(n_seeds)
        for a in args.algos
    ]
    if args.workers <= 1:
        rows = [run_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("forkserver"), max_tasks_per_child=1) as pool:
            rows = list(pool.map(run_one, tasks))
    df = pd.DataFrame(rows)
    common.write_csv(rows, out / "rollout_scaling.csv")
    ks = [k for k in KS if f"-log pass@{k}" in df]
    cols = [f"-log pass@{k}" for k in ks]
    table = df.groupby(["algo", "N"])[[*cols, "timesteps", "frac_all_fail_mean"]].median()
    print(f"\nmedian over {n_seeds} seeds after {updates} updates of G={args.n_groups} start states:")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 4))
    for ax, k in zip(axes, ks, strict=True):
        common.plot_seed_bands(ax, df, "N", f"-log pass@{k}", "algo", order=[a for a in ESTIMATORS if a in set(df.algo)])
        ax.set_xscale("log", base=2)
        ax.set_title(f"-log pass@{k} after {updates} updates (held-out)")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{args.maze_size}x{args.maze_size} maze, G={args.n_groups}, {n_seeds} seeds, median and min-max; {machine}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(out / "rollout_scaling.png", dpi=110)
    print(f"wall time {time.perf_counter() - t0:.0f} s ({'quick' if args.quick else 'full'})", flush=True)


if __name__ == "__main__":
    main()
