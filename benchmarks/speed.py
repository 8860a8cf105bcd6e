"""Speed: env-steps/s of MaxRL vs SB3 PPO vs random actions on the same VecEnv; loo_weights time and error; peak RSS.

Every throughput measurement runs in a fresh subprocess (so its peak RSS is its own), one at a time, with the
configurations interleaved A/B/C within every repeat (order rotated between repeats); ratios are taken within a
repeat and the median over repeats is reported. The machine is shared, so absolute numbers are noisy; ratios less so.

    python -m benchmarks.speed --quick          # ~10 min on 2 shared cores
    python -m benchmarks.speed                  # full: more steps and repeats, exact loo_weights error up to N=1024
    python -m benchmarks.speed --quick --resume # continue an interrupted run (rows are saved as they come)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from fractions import Fraction
from math import lcm
from pathlib import Path

import numpy as np

from benchmarks import common


# --------------------------------------------------------------------------- child: one throughput measurement
def _child(cfg: dict) -> dict:
    common.setup_torch()
    env = common.make_env(cfg["env_id"], n_envs=cfg["n_envs"], vec_env=cfg["vec_env"], seed=cfg["seed"])
    out: dict = {}
    if cfg["algo"] == "random":
        env.reset()
        n_steps = 0
        rng = np.random.default_rng(cfg["seed"])
        n_actions = env.action_space.n
        start = time.perf_counter()
        while n_steps < cfg["steps"]:
            env.step(rng.integers(0, n_actions, size=env.num_envs))
            n_steps += env.num_envs
        elapsed = time.perf_counter() - start
    else:
        # MaxRL: the paper's update (1 epoch, full batch, no ratio clip; the library's default is 4 clipped epochs)
        algo, overrides = cfg["algo"], ({"n_epochs": 1, "clip_range": None} if cfg["algo"] == "maxrl" else {})
        if algo == "ppo_1epoch":  # PPO's rollout + critic + GAE with one full-batch gradient step, like MaxRL's update
            algo, overrides = "ppo", {"n_epochs": 1, "batch_size": common.PPO_KWARGS["n_steps"] * cfg["n_envs"]}
        model = common.make_model(algo, env, seed=cfg["seed"], **overrides)
        result = common.RunResult(model)
        callback = common.make_recorder(result, ("rollout/utilization",))
        start = time.perf_counter()
        model.learn(cfg["steps"], callback=callback)
        elapsed = time.perf_counter() - start
        n_steps = model.num_timesteps
        utils = [r["rollout/utilization"] for r in result.rollout_log if "rollout/utilization" in r]
        out["utilization"] = float(np.mean(utils)) if utils else float("nan")
    workers_hwm = 0.0  # SubprocVecEnv workers are forked by the forkserver: RUSAGE_CHILDREN never sees them
    for proc in getattr(env, "processes", []):
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                workers_hwm += next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
        except (OSError, StopIteration):
            pass
    env.close()
    out.update(
        workers_peak_rss_mb_sum=workers_hwm,
        steps=int(n_steps),
        seconds=elapsed,
        steps_per_s=n_steps / elapsed,
        maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        children_maxrss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )
    return out


def run_child(cfg: dict) -> dict:
    command = [sys.executable, "-m", "benchmarks.speed", "--child", json.dumps(cfg)]
    proc = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {cfg} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- loo_weights: time and exact error
def exact_loo_weights(m: list[int], bits: int = 53) -> np.ndarray:
    """Exact omega_i = N int_0^1 prod_{j != i}(1 - t l_j) dt for l_j = m_j / 2^bits, in integer arithmetic."""
    n = len(m)
    scale = 1 << bits
    poly = [1]  # prod_j (scale - m_j t), integer coefficients, lowest degree first
    for mj in m:
        new = [0] * (len(poly) + 1)
        for k, c in enumerate(poly):
            new[k] += c * scale
            new[k + 1] -= c * mj
        poly = new
    big_l = lcm(*range(1, n + 1))
    weights = [big_l // (k + 1) for k in range(n)]
    out = np.empty(n)
    for i, mi in enumerate(m):
        # synthetic division of poly by (scale - mi t): q_k = (p_k + mi q_{k-1}) / scale, exact
        q, prev = [0] * n, 0
        for k in range(n):
            num = poly[k] + mi * prev
            assert num % scale == 0
            prev = num // scale
            q[k] = prev
        integral = sum(qk * wk for qk, wk in zip(q, weights, strict=True))
        out[i] = float(Fraction(n * integral, big_l * scale ** (n - 1)))
    return out


def loo_benchmark(sizes: list[int], exact_max: int, repeats: int, seed: int = 0) -> list[dict]:
    from sb3_maxrl import loo_weights

    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        m = [int(x) for x in rng.integers(0, 1 << 53, size=n)]
        likelihoods = np.array(m, dtype=np.float64)[None, :] / float(1 << 53)  # exact dyadic values
        omega = loo_weights(likelihoods)[0]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            loo_weights(likelihoods)
            times.append(time.perf_counter() - start)
        t_batch = []
        batch = np.repeat(likelihoods, 8, axis=0)
        for _ in range(max(1, repeats // 2)):
            start = time.perf_counter()
            loo_weights(batch)
            t_batch.append(time.perf_counter() - start)
        row = {"N": n, "time_ms_G1": 1e3 * float(np.median(times)), "time_ms_G8": 1e3 * float(np.median(t_batch))}
        if n <= exact_max:
            start = time.perf_counter()
            ref = exact_loo_weights(m)
            row["reference"] = "exact integer arithmetic, every omega_i"
            row["max_rel_error"] = float(np.max(np.abs(omega - ref) / ref))
            row["reference_seconds"] = time.perf_counter() - start
        else:
            # identity (1/N) sum_j omega_j l_j = 1 - prod_j (1 - l_j), rhs exact in rationals
            prod = Fraction(1)
            for mj in m:
                prod *= Fraction((1 << 53) - mj, 1 << 53)
            rhs = 1 - prod
            lhs = sum(Fraction(float(w)) * Fraction(mj, 1 << 53) for w, mj in zip(omega, m, strict=True)) / n
            row["reference"] = "identity (1/N) sum omega_j l_j = 1 - prod(1 - l_j), exact rationals"
            row["max_rel_error"] = float(abs(lhs - rhs) / rhs)
        row["omega_min"], row["omega_max"] = float(omega.min()), float(omega.max())
        rows.append(row)
        print(row, flush=True)
    return rows


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (minutes)")
    parser.add_argument("--seeds", type=int, default=None, help="repeats per configuration (default 3 quick, 5 full)")
    parser.add_argument("--out", default=str(common.RESULTS_DIR))
    parser.add_argument("--env-id", default=common.MAZE_ID)
    parser.add_argument("--steps", type=int, default=None, help="env steps per measurement")
    parser.add_argument("--resume", action="store_true", help="keep the rows of OUT/speed_throughput.csv, measure the rest")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    common.setup_torch()
    repeats = args.seeds or (3 if args.quick else 5)
    steps = args.steps or (20_000 if args.quick else 60_000)
    out = Path(args.out)
    t0 = time.perf_counter()
    machine = common.machine_info()
    print(machine, flush=True)

    algos = ["random", "maxrl", "ppo", "ppo_1epoch"]
    settings = [(v, n) for v in ("dummy", "subproc") for n in (4, 8)]
    import pandas as pd

    csv_path = out / "speed_throughput.csv"
    rows = pd.read_csv(csv_path).to_dict("records") if args.resume and csv_path.exists() else []
    done = {(r["repeat"], r["algo"], r["vec_env"], r["n_envs"]) for r in rows}
    for rep in range(repeats):
        for vec_env, n_envs in settings:
            order = algos[rep % len(algos) :] + algos[: rep % len(algos)]
            for algo in order:
                if (rep, algo, vec_env, n_envs) in done:
                    continue
                cfg = {"algo": algo, "env_id": args.env_id, "n_envs": n_envs, "vec_env": vec_env, "steps": steps, "seed": rep}
                res = run_child(cfg)
                row = {"repeat": rep, "algo": algo, "vec_env": vec_env, "n_envs": n_envs, **res}
                rows.append(row)
                print(row, flush=True)
                common.write_csv(rows, csv_path)  # incremental: --resume continues an interrupted run

    # ratios within each repeat, median over repeats
    df = pd.DataFrame(rows)
    df = df[df["repeat"] < repeats]
    summary = []
    for (vec_env, n_envs), sub in df.groupby(["vec_env", "n_envs"], sort=False):
        piv = sub.pivot(index="repeat", columns="algo", values="steps_per_s")
        rss = sub.groupby("algo")["maxrss_mb"].median()
        summary.append(
            {
                "vec_env": vec_env,
                "n_envs": n_envs,
                "random_steps_per_s": piv["random"].median(),
                "maxrl_steps_per_s": piv["maxrl"].median(),
                "ppo_steps_per_s": piv["ppo"].median(),
                "ppo_1epoch_steps_per_s": piv["ppo_1epoch"].median(),
                "maxrl_over_ppo": (piv["maxrl"] / piv["ppo"]).median(),
                "maxrl_over_ppo_1epoch": (piv["maxrl"] / piv["ppo_1epoch"]).median(),
                "maxrl_over_random": (piv["maxrl"] / piv["random"]).median(),
                "maxrl_utilization": sub[sub.algo == "maxrl"]["utilization"].median(),
                "repeats": len(piv),
                "maxrl_rss_mb": rss["maxrl"],
                "ppo_rss_mb": rss["ppo"],
                "ppo_1epoch_rss_mb": rss["ppo_1epoch"],
                "random_rss_mb": rss["random"],
            }
        )
    common.write_csv(summary, out / "speed_summary.csv")
    print(pd.DataFrame(summary).to_string(index=False, float_format=lambda x: f"{x:.3g}"), flush=True)

    sizes = [8, 64, 256, 1024, 4096]
    loo_rows = loo_benchmark(sizes, exact_max=256 if args.quick else 1024, repeats=5 if args.quick else 11)
    common.write_csv(loo_rows, out / "speed_loo_weights.csv")
    print(pd.DataFrame(loo_rows).to_string(index=False), flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sdf = pd.DataFrame(summary)
    labels = [f"{r.vec_env}\nn_envs={r.n_envs}" for r in sdf.itertuples()]
    x = np.arange(len(sdf))
    for i, (col, name) in enumerate(
        [
            ("random_steps_per_s", "random actions"),
            ("maxrl_steps_per_s", "MaxRL"),
            ("ppo_steps_per_s", "PPO (10 epochs)"),
            ("ppo_1epoch_steps_per_s", "PPO (1 epoch, full batch)"),
        ]
    ):
        axes[0].bar(x + (i - 1.5) * 0.2, sdf[col], width=0.2, label=name)
    axes[0].set_xticks(x, labels)
    axes[0].set_ylabel("env steps / s (median)")
    axes[0].set_title(f"Training throughput, {args.env_id}")
    axes[0].legend()
    ldf = pd.DataFrame(loo_rows)
    axes[1].loglog(ldf["N"], ldf["time_ms_G1"], "o-", label="G=1")
    axes[1].loglog(ldf["N"], ldf["time_ms_G8"], "s-", label="G=8")
    axes[1].set_xlabel("group size N")
    axes[1].set_ylabel("loo_weights time (ms, median)")
    axes[1].set_title("loo_weights (T = N)")
    axes[1].legend()
    axes[1].grid(alpha=0.3)
    fig.suptitle(machine, fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "speed.png", dpi=120)
    print(f"wall time {time.perf_counter() - t0:.0f} s ({'quick' if args.quick else 'full'})", flush=True)


if __name__ == "__main__":
    main()
