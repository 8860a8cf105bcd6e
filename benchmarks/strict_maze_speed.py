"""Throughput on strict mazes: MaxRL training against the VecEnv alone and the policy's forward-and-sample alone.

Everything runs in this process with one torch thread, on ``StrictMazeVecEnv`` (9x9 by default), at several
``num_envs``. For every measurement, env steps per second (one step of one env slot = one env step):

- ``env_random_fresh``: the VecEnv with random actions, a fresh maze (a new seed, generated) for every episode
- ``env_random_cached``: the same with mazes drawn from 1024 training seeds, so their layouts are cached
- ``env_random_update`` (V): the same on one update's 16 mazes
- ``policy_forward``: MaxRL's policy (MLP 128-128) forward-and-sample alone, ``policy(obs)`` under ``no_grad``,
  at batch ``num_envs``: the limit of any on-policy training loop
- ``maxrl_learn``: ``MaxRL("MlpPolicy", StrictMazeVecEnv(...), group_size=16, n_groups=16, n_epochs=1,
  clip_range=None).learn(...)`` from a random initialisation; slots with nothing left to run in an update play
  throw-away episodes on fresh mazes
- ``maxrl_learn_cached``: the same with ``train_seeds`` = 1024 mazes (MaxRL's and the VecEnv's), so that every
  maze, throw-away episodes' included, comes from the layout cache
- ``maxrl_learn_bc``: ``maxrl_learn_cached`` from the protocol's weak base (behaviour cloning of 32 mazes per Adam
  step until the exact pass@1 on 64 validation mazes reaches 1%, ``clone_weak_base``): episodes as long as in the
  real runs
- ``train_step`` (B): ``MaxRL.train()`` alone (one forward, backward and optimizer step on all the update's steps),
  repeated on one update of ``maxrl_learn_bc``: samples per second at the update's size
- ``maxrl_learn_bc_clip4``: ``maxrl_learn_bc`` with PPO's reuse: ``n_epochs=4``, ``clip_range=0.2``,
  ``batch_size=2048``
- ``ppo_learn`` / ``ppo_learn_cached``: SB3 PPO (``n_steps=32``, ``batch_size=2048``, ``n_epochs=4``, actor and
  critic 128-128) on the same VecEnv, for reference

Each measurement runs for a time budget after a warm-up; the configurations are interleaved within every repeat
and the median over repeats is reported (the machine is shared: absolute numbers are noisy). MaxRL rows also
report the utilization (share of stepped env slots in a kept episode), the mean kept-episode length and
``useful_per_s``: env steps that enter a gradient per second of whole updates (collection and training). For PPO
every env step enters a gradient. The summary adds the loop's limit ``L = 1 / (1/F + 1/V + E/B)`` (F =
``policy_forward``, E epochs) and the useful rates as fractions of F and L, and MaxRL with 4 clipped epochs against
PPO at the same epochs and minibatch size.

    python -m benchmarks.strict_maze_speed --quick                # 256 envs, 1 repeat: under a minute
    python -m benchmarks.strict_maze_speed                        # 64, 256 and 1024 envs, 3 repeats: about 10 minutes
    python -m benchmarks.strict_maze_speed --profile maxrl_learn  # cProfile at 256 envs, top functions

Writes ``benchmarks/results/strict_maze_speed[_13|_17][_quick].csv``, ``.png`` and ``_summary.csv`` (F, V, B, L
and the useful rates) (``--out`` for another folder).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import pstats
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from sb3_maxrl import MaxRL
from sb3_maxrl.experiments.pipeline import VALIDATION_FIRST_SEED
from sb3_maxrl.experiments.strict_mazes import clone_weak_base
from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv

RESULTS = Path(__file__).resolve().parent / "results"
NET_ARCH = [128, 128]
N_TRAIN_MAZES = 1024
MEASUREMENTS = (
    "env_random_fresh",
    "env_random_cached",
    "env_random_update",
    "policy_forward",
    "maxrl_learn",
    "maxrl_learn_cached",
    "maxrl_learn_bc",
    "train_step",
    "maxrl_learn_bc_clip4",
    "ppo_learn",
    "ppo_learn_cached",
)


class _TimeBudget(BaseCallback):
    """Stops ``learn`` at the first update that starts after ``seconds``; records MaxRL's utilization, episode
    length and useful (kept) steps per update, and when the last whole update (collection and training) ended."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.deadline = float("inf")
        self.stop = False
        self.utilization: list[float] = []
        self.episode_lengths: list[float] = []
        self.useful_steps = 0
        self.begin = self.end = 0.0

    def start(self) -> None:
        self.begin = self.end = time.perf_counter()
        self.deadline = self.begin + self.seconds

    def _on_rollout_start(self) -> None:
        self.end = time.perf_counter()  # the previous update (collection and training) is over
        self.stop = self.end >= self.deadline

    def _on_step(self) -> bool:
        return not self.stop

    def _on_rollout_end(self) -> None:
        episodes = self.locals.get("episodes")
        if isinstance(self.model, MaxRL) and episodes is not None:
            self.utilization.append(episodes.utilization)
            self.episode_lengths.append(float(episodes.lengths.mean()))
            self.useful_steps += int(episodes.lengths.sum())


def make_venv(num_envs: int, size: int, cached: bool, seed: int = 0, n_mazes: int = N_TRAIN_MAZES) -> StrictMazeVecEnv:
    return StrictMazeVecEnv(num_envs, size=size, seed=seed, train_seeds=range(n_mazes) if cached else None)


def env_random(num_envs: int, size: int, seconds: float, cached: bool, n_mazes: int = N_TRAIN_MAZES) -> dict[str, Any]:
    venv = make_venv(num_envs, size, cached, n_mazes=n_mazes)
    venv.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=(1024, num_envs))
    for step in range(20):  # warm-up
        venv.step(actions[step])
    n_steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for step in range(64):
            venv.step(actions[step % 1024])
        n_steps += 64 * num_envs
    return dict(steps=n_steps, seconds=time.perf_counter() - start)


def policy_forward(num_envs: int, size: int, seconds: float) -> dict[str, Any]:
    venv = make_venv(num_envs, size, cached=True)
    model = MaxRL("MlpPolicy", venv, group_size=16, n_groups=16, policy_kwargs=dict(net_arch=NET_ARCH), seed=0)
    observations = th.as_tensor(venv.reset())
    with th.no_grad():
        for _ in range(20):  # warm-up
            model.policy(observations)
        n_steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(32):
                model.policy(observations)
            n_steps += 32 * num_envs
    return dict(steps=n_steps, seconds=time.perf_counter() - start)


_WEAK_BASES: dict[int, dict[str, Any]] = {}


def behaviour_clone(model: MaxRL, size: int) -> None:
    """The protocol's 1% weak base (cloned once per size, then loaded)."""
    if size not in _WEAK_BASES:
        validation = range(VALIDATION_FIRST_SEED, VALIDATION_FIRST_SEED + 64)
        clone_weak_base(model, size, range(N_TRAIN_MAZES), validation, target=0.01, seed=0)
        _WEAK_BASES[size] = {key: value.clone() for key, value in model.policy.state_dict().items()}
    model.policy.load_state_dict(_WEAK_BASES[size])


def train_step(num_envs: int, size: int, seconds: float) -> dict[str, Any]:
    """B: ``MaxRL.train()`` alone, repeated on the steps of one update of ``maxrl_learn_bc``."""
    model = make_learner("maxrl_learn_bc", num_envs, size)
    model.learn(1)  # one update: its steps stay in the rollout buffer
    n_steps = len(model.rollout_buffer.step_episode_ids)
    for _ in range(3):  # warm-up
        model.train()
    if model.logger.name_to_value["train/skipped_zero_advantage"]:
        raise RuntimeError("The update's advantages are all zero, so train() skips the optimizer: change the seed.")
    n_samples, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.train()
        n_samples += n_steps
    return dict(steps=n_samples, seconds=time.perf_counter() - start, update_steps=n_steps)


def make_learner(name: str, num_envs: int, size: int) -> Any:
    cached = name.endswith(("_cached", "_bc", "_clip4"))
    venv = make_venv(num_envs, size, cached)
    if name.startswith("ppo"):
        return PPO(
            "MlpPolicy",
            venv,
            n_steps=32,
            batch_size=2048,
            n_epochs=4,
            policy_kwargs=dict(net_arch=dict(pi=NET_ARCH, vf=NET_ARCH)),
            seed=0,
        )
    reuse = name.endswith("_clip4")
    model = MaxRL(
        "MlpPolicy",
        venv,
        group_size=16,
        n_groups=16,
        n_epochs=4 if reuse else 1,
        clip_range=0.2 if reuse else None,
        batch_size=2048 if reuse else None,
        train_seeds=range(N_TRAIN_MAZES) if cached else None,
        policy_kwargs=dict(net_arch=NET_ARCH),
        seed=0,
    )
    if name.startswith("maxrl_learn_bc"):
        behaviour_clone(model, size)
    return model


def learn(name: str, num_envs: int, size: int, seconds: float) -> dict[str, Any]:
    model = make_learner(name, num_envs, size)
    model.learn(2 * 32 * num_envs if name.startswith("ppo") else 1)  # warm-up: at least one update
    budget = _TimeBudget(seconds)
    steps_before = model.num_timesteps
    budget.start()
    model.learn(10**12, callback=budget, reset_num_timesteps=False)
    elapsed = budget.end - budget.begin  # whole updates only
    n_stopped = model.num_timesteps - steps_before - model.n_envs  # the stopped update ran one VecEnv step
    result: dict[str, Any] = dict(steps=n_stopped, seconds=elapsed)
    if budget.utilization:
        result.update(
            utilization=statistics.mean(budget.utilization),
            episode_length=statistics.mean(budget.episode_lengths),
            useful_per_s=budget.useful_steps / elapsed,
        )
    else:  # PPO: every env step enters the gradient
        result.update(useful_per_s=n_stopped / elapsed)
    return result


def measure(name: str, num_envs: int, size: int, seconds: float) -> dict[str, Any]:
    th.manual_seed(0)
    if name.startswith("env_random"):
        n_mazes = 16 if name.endswith("update") else N_TRAIN_MAZES
        return env_random(num_envs, size, seconds, cached=not name.endswith("fresh"), n_mazes=n_mazes)
    if name == "policy_forward":
        return policy_forward(num_envs, size, seconds)
    if name == "train_step":
        return train_step(num_envs, size, seconds)
    return learn(name, num_envs, size, seconds)


def profile_learn(name: str, num_envs: int, size: int, seconds: float, top: int = 30) -> str:
    model = make_learner(name, num_envs, size)
    model.learn(1)
    budget = _TimeBudget(seconds)
    profiler = cProfile.Profile()
    budget.start()
    profiler.enable()
    model.learn(10**12, callback=budget, reset_num_timesteps=False)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def loop_limit(forward: float, env: float, train: float, epochs: int) -> float:
    """``L = 1 / (1/F + 1/V + E/B)``: a loop that steps, runs the policy on and trains ``E`` times on each step once."""
    return 1.0 / (1.0 / forward + 1.0 / env + epochs / train)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """F, V, B, L and the useful rates against them, per ``num_envs`` (where all were measured)."""
    summary = []
    for num_envs in sorted({row["num_envs"] for row in rows}):
        rate = {row["measurement"]: row for row in rows if row["num_envs"] == num_envs}
        if not {"policy_forward", "env_random_update", "train_step"} <= set(rate):
            continue
        forward, env = rate["policy_forward"]["steps_per_s"], rate["env_random_update"]["steps_per_s"]
        train = rate["train_step"]["steps_per_s"]
        line: dict[str, Any] = dict(size=rows[0]["size"], num_envs=num_envs, F=forward, V=env, B=train)
        line.update(L_1=round(loop_limit(forward, env, train, 1)), L_4=round(loop_limit(forward, env, train, 4)))
        if "maxrl_learn_bc" in rate:
            useful = rate["maxrl_learn_bc"]["useful_per_s"]
            line.update(useful_bc=useful, useful_bc_over_F=round(useful / forward, 3))
            line.update(useful_bc_over_L_1=round(useful / line["L_1"], 3))
        if "maxrl_learn_bc_clip4" in rate:
            useful = rate["maxrl_learn_bc_clip4"]["useful_per_s"]
            line.update(useful_clip4=useful, useful_clip4_over_L_4=round(useful / line["L_4"], 3))
            if "ppo_learn_cached" in rate:
                ppo = rate["ppo_learn_cached"]["useful_per_s"]
                line.update(ppo=ppo, clip4_over_ppo=round(useful / ppo, 2))
        summary.append(line)
    return summary


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars of steps/s (log scale): one group per measurement, one bar per ``num_envs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in MEASUREMENTS if any(row["measurement"] == name for row in rows)]
    num_envs_list = sorted({row["num_envs"] for row in rows})
    width = 0.8 / len(num_envs_list)
    figure, axis = plt.subplots(figsize=(10, 4.5))
    for offset, num_envs in enumerate(num_envs_list):
        rates = {row["measurement"]: row["steps_per_s"] for row in rows if row["num_envs"] == num_envs}
        positions = [index + (offset - (len(num_envs_list) - 1) / 2) * width for index in range(len(names))]
        axis.bar(positions, [rates.get(name, 0) for name in names], width, label=f"{num_envs} envs")
    axis.axhline(100_000, color="black", linestyle="--", linewidth=1, label="target: 100k steps/s")
    axis.set_yscale("log")
    axis.set_xticks(range(len(names)), [name.replace("_", "\n", 1) for name in names], fontsize=8)
    axis.set_ylabel("env steps / s (median, one torch thread)")
    axis.set_title(f"Strict mazes {rows[0]['size']}x{rows[0]['size']}: MaxRL training vs env alone vs policy forward")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 envs only, 1 repeat, short budgets")
    parser.add_argument("--size", type=int, default=9, help="maze side (9, 13, 17)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=None, help="default: 64 256 1024 (quick: 256)")
    parser.add_argument("--repeats", type=int, default=None, help="default: 3 (quick: 1)")
    parser.add_argument("--seconds", type=float, default=None, help="time budget per measurement (default 4, quick 1.5)")
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument(
        "--profile",
        choices=[name for name in MEASUREMENTS if "learn" in name],
        help="print a cProfile of this learn measurement at the first --num-envs (default 256) and exit",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the CSV")
    args = parser.parse_args()
    th.set_num_threads(1)
    warnings.filterwarnings("ignore", message="n_envs=.* exceeds")  # 1024 envs > 256 episodes per update, on purpose
    num_envs_list = args.num_envs or ([256] if args.quick else [64, 256, 1024])
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (1.5 if args.quick else 4.0)
    if args.profile:
        print(profile_learn(args.profile, args.num_envs[0] if args.num_envs else 256, args.size, max(seconds, 5.0)))
        return

    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    configs = [(name, num_envs) for num_envs in num_envs_list for name in args.only]
    for repeat in range(repeats):
        rotation = repeat % len(configs)
        for name, num_envs in configs[rotation:] + configs[:rotation]:
            result = measure(name, num_envs, args.size, seconds)
            samples.setdefault((name, num_envs), []).append(result)
            rate = result["steps"] / result["seconds"]
            print(f"repeat {repeat} {name:<20} envs={num_envs:<5} {rate:>12,.0f} steps/s", flush=True)

    rows = []
    for (name, num_envs), results in samples.items():
        rates = [r["steps"] / r["seconds"] for r in results]
        row: dict[str, Any] = dict(
            size=args.size,
            num_envs=num_envs,
            measurement=name,
            steps_per_s=round(statistics.median(rates)),
            min_steps_per_s=round(min(rates)),
            max_steps_per_s=round(max(rates)),
            repeats=len(rates),
            seconds_each=seconds,
        )
        for key in ("utilization", "episode_length"):
            values = [r[key] for r in results if key in r]
            row[key] = round(statistics.median(values), 3) if values else ""
        useful = [r["useful_per_s"] for r in results if "useful_per_s" in r]
        row["useful_per_s"] = round(statistics.median(useful)) if useful else ""
        rows.append(row)
    rows.sort(key=lambda row: (row["num_envs"], MEASUREMENTS.index(row["measurement"])))
    args.out.mkdir(parents=True, exist_ok=True)
    size_tag = "" if args.size == 9 else f"_{args.size}"
    path = args.out / f"strict_maze_speed{size_tag}{'_quick' if args.quick else ''}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{'num_envs':>8} {'measurement':<20} {'steps/s (median)':>17} {'utilization':>12} {'episode length':>15}")
    for row in rows:
        print(
            f"{row['num_envs']:>8} {row['measurement']:<20} {row['steps_per_s']:>17,} {row['utilization']!s:>12} "
            f"{row['episode_length']!s:>15}"
        )
    plot(rows, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png').name}")
    summary = summarize(rows)
    if summary:
        summary_path = path.with_name(path.stem + "_summary.csv")
        with open(summary_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
            writer.writeheader()
            writer.writerows(summary)
        for line in summary:
            print(", ".join(f"{key}={value}" for key, value in line.items()))
        print(f"wrote {summary_path}")


if __name__ == "__main__":
    main()
