"""The truncation family (issue #4 part 3): ``maxrl_general`` with T in {1, 2, 4, ..., N} at an equal budget.

``MaxRL(estimator="maxrl_general", truncation=T)`` is unbiased for grad J_T, J_T(p) = -sum_{k<=T} (1-p)^k / k:
T = 1 is expected-likelihood RL (REINFORCE with a leave-one-out baseline), T = N is MaxRL (for binary
likelihoods exactly ``maxrl_raw``'s weights ``N / K``). Task: ``MaxRL/Maze-9x9-v0`` (binary success), trained
through the library (``benchmarks/common.train`` -> ``MaxRL.learn`` on a DummyVecEnv) with the shared
configuration (``common.MAXRL_KWARGS``: N = 16, and MaxRL's defaults for the rest) and the same env-step budget
for every T. Only T changes between runs.

Reported per T (median and min-max over seeds): final pass@k on held-out mazes (``default_eval_seeds``,
unbiased pass@k estimator from ``--eval-samples`` stochastic episodes per maze), and the advantage
statistics MaxRL logs at every update, averaged over the run: advantage std, max |A|, fraction of zero
advantages, mean and max of the leave-one-out weights omega, the training pass rate and the fraction of
all-fail groups; plus w_T(p) = (1 - (1-p)^T) / p at the run's mean training pass rate (the expected omega).

Run: ``python -m benchmarks.truncation --quick`` (3 seeds) or ``python -m benchmarks.truncation`` (5 seeds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import common

KEYS = (
    *common.ROLLOUT_KEYS,
    "rollout/advantage_std",
    "rollout/advantage_abs_max",
    "rollout/frac_zero_advantage",
    "rollout/omega_mean",
    "rollout/omega_max",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, 30k env steps per run, 32 eval mazes x 16 samples")
    p.add_argument("--seeds", type=int, default=None, help="seeds per T (default 3 quick, 5 full)")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR)
    p.add_argument("--env-id", default=common.MAZE_ID)
    p.add_argument("--group-size", type=int, default=common.MAXRL_KWARGS["group_size"], help="N")
    p.add_argument("--budget", type=int, default=None, help="env steps per run (default 30k quick, 200k full)")
    p.add_argument("--n-envs", type=int, default=16)
    p.add_argument("--eval-states", type=int, default=None, help="held-out mazes (default 32 quick, 200 full)")
    p.add_argument("--eval-samples", type=int, default=None, help="episodes per held-out maze (default 16 quick, 32 full)")
    p.add_argument("--truncations", type=int, nargs="+", default=None, help="default 1, 2, 4, ..., N")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed (to split the seeds over 2 processes)")
    p.add_argument("--merge", action="store_true", help="summarize all truncation<tag>*.csv of --out (after split runs)")
    args = p.parse_args()
    if args.merge:
        import pandas as pd

        tag = "_quick" if args.quick else ""
        files = sorted(
            f
            for f in args.out.glob(f"truncation{tag}*.csv")
            if not f.stem.endswith(("_rollouts", "_summary", "_all")) and (tag or "_quick" not in f.stem)
        )
        finals = pd.concat([pd.read_csv(f) for f in files]).to_dict("records")
        rollouts = pd.concat([pd.read_csv(f.with_name(f.stem + "_rollouts.csv")) for f in files]).to_dict("records")
        common.write_csv(finals, args.out / f"truncation{tag}_all.csv")
        ks = sorted(int(c[5:]) for c in finals[0] if c.startswith("pass@"))
        print("merged", [f.name for f in files])
        summarize_and_plot(finals, rollouts, args.out, tag, ks)
        return
    common.setup_torch(1)
    from sb3_maxrl import default_eval_seeds, truncated_ml_weight

    n = args.group_size
    seeds = range(args.seed_offset, args.seed_offset + (args.seeds or (3 if args.quick else 5)))
    budget = args.budget or (30_000 if args.quick else 200_000)
    eval_states = args.eval_states or (32 if args.quick else 200)
    truncations = args.truncations or sorted({2**i for i in range(n.bit_length()) if 2**i <= n} | {n})
    args.eval_samples = args.eval_samples or (16 if args.quick else 32)
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= args.eval_samples]
    tag = ("_quick" if args.quick else "") + (f"_s{args.seed_offset}" if args.seed_offset else "")
    args.out.mkdir(parents=True, exist_ok=True)
    eval_env = common.make_env(args.env_id, n_envs=16, seed=12_345)
    finals, rollouts = [], []
    t_start = time.perf_counter()
    for seed in seeds:
        for t in truncations:
            res = common.train(
                "maxrl_general",
                budget,
                seed=seed,
                env_id=args.env_id,
                n_envs=args.n_envs,
                keys=KEYS,
                truncation=t,
                group_size=n,
            )
            t0 = time.perf_counter()
            pk = common.evaluate(res.model, eval_env, default_eval_seeds(eval_states), args.eval_samples, ks)
            log = [{"T": t, "seed": seed, "update": i, **row} for i, row in enumerate(res.rollout_log)]
            rollouts += log
            stats = {k.split("/")[1]: float(np.mean([r[k] for r in log if k in r])) for k in KEYS}
            finals.append(
                {
                    "T": t,
                    "seed": seed,
                    "group_size": n,
                    "timesteps": res.model.num_timesteps,
                    "updates": len(log),
                    **{f"pass@{k}": v for k, v in pk.items()},
                    **stats,
                    "w_T_at_mean_pass_rate": float(truncated_ml_weight(stats["pass_rate"], t)),
                    "train_s": res.wall_time,
                    "eval_s": time.perf_counter() - t0,
                }
            )
            f = finals[-1]
            print(
                f"T={t:3d} seed {seed}: pass@1 {f['pass@1']:.3f} pass@{ks[-1]} {f[f'pass@{ks[-1]}']:.3f} "
                f"train pass {f['pass_rate']:.3f} adv_std {f['advantage_std']:.3f} omega {f['omega_mean']:.2f} "
                f"[{res.wall_time:.0f}s]",
                flush=True,
            )
            common.write_csv(finals, args.out / f"truncation{tag}.csv")
            common.write_csv(rollouts, args.out / f"truncation{tag}_rollouts.csv")
    summarize_and_plot(finals, rollouts, args.out, tag, ks)
    print(f"total wall {time.perf_counter() - t_start:.0f}s; {common.machine_info()}")


def summarize_and_plot(finals, rollouts, out: Path, tag: str, ks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(finals)
    cols = [f"pass@{k}" for k in ks] + [
        "pass_rate",
        "frac_groups_all_fail",
        "advantage_std",
        "advantage_abs_max",
        "frac_zero_advantage",
        "omega_mean",
        "omega_max",
        "w_T_at_mean_pass_rate",
    ]
    summary = df.groupby("T")[cols].median().add_suffix("_median")
    summary = summary.join(
        df.groupby("T")[["pass@1", f"pass@{ks[-1]}"]]
        .agg(["min", "max"])
        .set_axis(["pass@1_min", "pass@1_max", f"pass@{ks[-1]}_min", f"pass@{ks[-1]}_max"], axis=1)
    )
    summary["seeds"] = df.groupby("T").seed.count()
    summary = summary.reset_index()
    common.write_csv(summary.to_dict("records"), out / f"truncation{tag}_summary.csv")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    long = df.melt(id_vars=["T", "seed"], value_vars=[f"pass@{k}" for k in ks], var_name="k", value_name="pass")
    long["k"] = long.k.str.slice(5).astype(int)
    long["neg_log_pass"] = -np.log(np.clip(long["pass"], 1e-6, None))
    common.plot_seed_bands(axes[0], long.assign(T=long["T"].map(lambda t: f"T={t:03d}")), "k", "neg_log_pass", "T")
    axes[0].set_xscale("log", base=2)
    axes[0].set_title("-log pass@k on held-out mazes (final)")
    axes[0].legend(fontsize=7)
    common.plot_seed_bands(axes[1], df.assign(series="pass@1"), "T", "pass@1", "series")
    common.plot_seed_bands(axes[1], df.assign(series=f"pass@{ks[-1]}"), "T", f"pass@{ks[-1]}", "series")
    axes[1].set_xscale("log", base=2)
    axes[1].set_ylabel("pass@k")
    axes[1].legend(fontsize=7)
    axes[1].set_title("final pass@k vs truncation T")
    r = pd.DataFrame(rollouts)
    r["bin"] = (r["update"] // 10) * 10
    r = r.groupby(["T", "seed", "bin"], as_index=False)["rollout/advantage_std"].mean()
    common.plot_seed_bands(
        axes[2], r.assign(T=r["T"].map(lambda t: f"T={t:03d}")), "bin", "rollout/advantage_std", "T", marker=None
    )
    axes[2].set_xlabel("update")
    axes[2].set_title("advantage std per update")
    fig.suptitle("maxrl_general truncation family, median and min-max over seeds")
    fig.tight_layout()
    fig.savefig(out / f"truncation{tag}.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
