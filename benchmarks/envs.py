"""Environment statistics: random-policy success rate per maze and env steps/s with random actions.

    python -m benchmarks.envs --success [--seeds 1000]   # README's random pass rates (3 nav actions vs 7)
    python -m benchmarks.envs --speed                    # env.step loop and DummyVecEnv(8), best of 3
    python -m benchmarks.envs --success --speed --quick  # 200 seeds, fewer steps

Writes ``envs_random_success.csv`` and ``envs_speed.csv`` to ``--out``. Every episode starts with
``reset(seed=k)``, as MaxRL resets. The machine is shared, so speeds are best-of-3 (contention only slows).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env

import sb3_maxrl_envs


def random_success_rate(env_id: str, n_seeds: int, **kwargs) -> tuple[float, float]:
    """Share of seeds (one episode each) a uniformly random policy solves, and the mean episode length."""
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(12345)
    wins, lengths = 0, []
    for seed in range(n_seeds):
        env.reset(seed=seed)
        for t in range(1, 10**6):
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                wins += bool(info["is_success"])
                lengths.append(t)
                break
    return wins / n_seeds, float(np.mean(lengths))


def loop_steps_per_second(env_id: str, kwargs: dict, n_steps: int) -> float:
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(256)]
    episode = 0
    env.reset(seed=episode)
    start = time.perf_counter()
    for t in range(n_steps):
        _, _, terminated, truncated, _ = env.step(actions[t % 256])
        if terminated or truncated:
            episode += 1
            env.reset(seed=episode)
    return n_steps / (time.perf_counter() - start)


def vec_steps_per_second(env_id: str, kwargs: dict, n_steps: int, n_envs: int = 8) -> float:
    venv = make_vec_env(env_id, n_envs=n_envs, seed=0, env_kwargs=kwargs)
    venv.reset()
    venv.action_space.seed(0)
    actions = [np.array([venv.action_space.sample() for _ in range(n_envs)]) for _ in range(64)]
    iterations = n_steps // n_envs
    start = time.perf_counter()
    for i in range(iterations):
        venv.step(actions[i % 64])
    return iterations * n_envs / (time.perf_counter() - start)


def speed_cases() -> list[tuple[str, dict]]:
    cases = [
        (env_id, {"env_id": "MiniGrid-Empty-8x8-v0"} if env_id == "MaxRL/MiniGrid-v0" else {})
        for env_id in sb3_maxrl_envs.ENV_IDS
    ]
    return [*cases, ("MaxRL/Maze-9x9-v0", {"obs": "onehot"}), ("MaxRL/Maze-9x9-v0", {"obs": "image"})]


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--success", action="store_true", help="random-policy success rate per maze")
    parser.add_argument("--speed", action="store_true", help="env steps/s with random actions")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None, help="mazes per success rate (default 1000, quick 200)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.success:
        n_seeds = args.seeds or (200 if args.quick else 1000)
        rows = []
        for env_id in [f"MaxRL/Maze-{s}x{s}{v}-v0" for s in (9, 13, 17) for v in ("", "-Random")]:
            for nav_actions in (True, False):
                rate, mean_length = random_success_rate(env_id, n_seeds, nav_actions=nav_actions)
                rows.append(
                    dict(env_id=env_id, nav_actions=nav_actions, seeds=n_seeds, success_rate=rate, mean_length=mean_length)
                )
                print(rows[-1], flush=True)
        write_csv(rows, args.out / "envs_random_success.csv")
    if args.speed:
        n_steps = 2000 if args.quick else 8000
        rows = []
        for env_id, kwargs in speed_cases():
            loop = max(loop_steps_per_second(env_id, kwargs, n_steps) for _ in range(3))
            vec = max(vec_steps_per_second(env_id, kwargs, n_steps) for _ in range(3))
            rows.append(
                dict(env_id=env_id, kwargs=kwargs, loop_steps_per_s=round(loop), dummy_vec_env_8_steps_per_s=round(vec))
            )
            print(rows[-1], flush=True)
        write_csv(rows, args.out / "envs_speed.csv")
    if not (args.success or args.speed):
        parser.error("choose --success and/or --speed")


if __name__ == "__main__":
    main()
