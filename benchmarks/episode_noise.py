"""Independent vs shared episode noise on slippery FrozenLake: does MaxRL keep improving, or stall?

With ``episode_noise="shared"`` the N episodes of a group replay the same slips, so once the policy is nearly
deterministic every group is all-pass or all-fail, every advantage is zero and learning stops. With the default
``"independent"`` each episode draws its own slips. The curve is the policy's exact success probability (dynamic
programming on FrozenLake's transition table), so it carries no sampling noise.

    python -m benchmarks.episode_noise --quick
    python -m benchmarks.episode_noise --map 8x8 --timesteps 400000 --seeds 5

Writes ``benchmarks/results/episode_noise[_quick].csv`` and ``.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import obs_as_tensor

import sb3_maxrl_envs  # noqa: F401  (registers MaxRL/FrozenLake-v0)
from sb3_maxrl import MaxRL
from sb3_maxrl_envs.frozen_lake import exact_success_probability

RESULTS = Path(__file__).resolve().parent / "results"


def policy_success_probability(model: MaxRL) -> float:
    """The exact success probability of the model's stochastic policy."""
    n_states = model.observation_space.n  # type: ignore[attr-defined]
    with th.no_grad():
        distribution = model.policy.get_distribution(obs_as_tensor(np.arange(n_states), model.device))
        probabilities = distribution.distribution.probs.cpu().numpy()  # type: ignore[attr-defined]
    return exact_success_probability(model.env.envs[0], probabilities)  # type: ignore[union-attr]


def run(
    env_id: str, episode_noise: str, seed: int, timesteps: int, n_points: int, learning_rate: float, update: dict
) -> list[dict]:
    env = make_vec_env(env_id, n_envs=8, seed=seed)
    model = MaxRL(
        "MlpPolicy",
        env,
        group_size=8,
        n_groups=8,
        learning_rate=learning_rate,
        episode_noise=episode_noise,
        seed=seed,
        **update,
    )
    rows = [dict(episode_noise=episode_noise, seed=seed, timesteps=0, success=policy_success_probability(model), skipped=0)]
    for point in range(1, n_points + 1):
        model.learn(timesteps // n_points, reset_num_timesteps=point == 1)
        rows.append(
            dict(
                episode_noise=episode_noise,
                seed=seed,
                timesteps=model.num_timesteps,
                success=policy_success_probability(model),
                skipped=model.n_skipped_updates,
            )
        )
    env.close()
    return rows


def plot(frame: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for (mode, seed), curve in frame.groupby(["episode_noise", "seed"]):
        color = "tab:blue" if mode == "independent" else "tab:red"
        axis.plot(curve.timesteps, curve.success, color=color, alpha=0.7, label=mode if seed == frame.seed.min() else None)
    axis.set_xlabel("env steps")
    axis.set_ylabel("exact success probability")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", choices=("4x4", "8x8"), default="4x4")
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--points", type=int, default=10, help="evaluations along the run")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--paper-update", action="store_true", help="n_epochs=1, clip_range=None (default: MaxRL's)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20k steps, 2 seeds")
    args = parser.parse_args()
    th.set_num_threads(1)
    if args.quick:
        args.timesteps, args.seeds, args.points = 20_000, 2, 4
    env_id = "MaxRL/FrozenLake-v0" if args.map == "4x4" else "MaxRL/FrozenLake-8x8-v0"
    start = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        for mode in ("independent", "shared"):
            update = dict(n_epochs=1, clip_range=None) if args.paper_update else {}
            rows += run(env_id, mode, seed, args.timesteps, args.points, args.learning_rate, update)
    frame = pd.DataFrame(rows)
    stem = f"episode_noise_{args.map}" + ("_paper_update" if args.paper_update else "") + ("_quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / f"{stem}.csv", index=False)
    plot(frame, RESULTS / f"{stem}.png", f"MaxRL on slippery FrozenLake {args.map}")
    final = frame[frame.timesteps == frame.groupby(["episode_noise", "seed"]).timesteps.transform("max")]
    print(final.to_string(index=False))
    print(final.groupby("episode_noise")[["success", "skipped"]].median())
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
