"""The strict-maze comparison's choices: one update for every estimator of a comparison, the rest chosen on validation."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from benchmarks.strict_mazes import PPO_UPDATES, UPDATES, build_parser, choose_family_update, stage_runs


def validation_frame(scores: dict[tuple[str, str, float], float]) -> pd.DataFrame:
    """Validation records with ``-log pass@1 + -log pass@64`` equal to ``scores[(method, update, lr)]``."""
    rows = []
    for (method, update, learning_rate), score in scores.items():
        group_size, n_groups = (0, 0) if method == "ppo" else (4, 64)
        rows.append(
            dict(size=9, method=method, update=update, learning_rate=learning_rate, seed=0, split="validation",
                 group_size=group_size, n_groups=n_groups, split_nxg="-" if method == "ppo" else "4x64",
                 **{"final_neg_log_pass@1": score / 2, "final_neg_log_pass@64": score / 2})
        )
    return pd.DataFrame(rows)


# GRPO alone would pick reuse-mb, MaxRL and RLOO pick reuse: the family's update is the lowest on average (reuse)
SCORES = {
    ("maxrl", "reuse", 1e-3): 0.2, ("maxrl", "reuse", 3e-3): 0.3, ("maxrl", "reuse-mb", 1e-3): 0.5,
    ("maxrl", "reuse-mb", 3e-3): 0.6, ("grpo", "reuse", 1e-3): 0.4, ("grpo", "reuse", 3e-3): 0.45,
    ("grpo", "reuse-mb", 1e-3): 0.39, ("grpo", "reuse-mb", 3e-3): 0.5, ("rloo", "reuse", 1e-3): 0.35,
    ("rloo", "reuse", 3e-3): 0.3, ("rloo", "reuse-mb", 1e-3): 0.7, ("rloo", "reuse-mb", 3e-3): 0.8,
    ("ppo", "ppo-4x2048", 1e-3): 0.2, ("ppo", "ppo-4x2048", 3e-3): 0.1, ("ppo", "ppo-10x512", 1e-3): 0.15,
}


def test_every_estimator_of_the_final_comparison_runs_the_same_update_options() -> None:
    frame = validation_frame(SCORES)
    assert choose_family_update(frame, ["maxrl", "grpo", "rloo", "ppo"]) == "reuse"
    args = build_parser().parse_args(["--stage", "final", "--paper-update"])
    args.timesteps, args.paper_learning_rate = 1000, 1e-3
    runs = stage_runs(args, frame)
    family = [run for run in runs if run.method != "ppo" and run.update != "paper"]
    assert {run.method for run in family} == {"maxrl", "grpo", "rloo"}
    assert len({run.update for run in family}) == 1  # grpo's own best (reuse-mb) is not taken
    assert all(UPDATES[run.update] == UPDATES["reuse"] for run in family)
    paper = [run for run in runs if run.update == "paper"]
    assert {run.method for run in paper} == {"maxrl", "grpo", "rloo"} and len({run.learning_rate for run in paper}) == 1
    # the learning rate is each method's own validation choice within the family's update
    chosen = {run.method: run.learning_rate for run in family}
    assert chosen == {"maxrl": 1e-3, "grpo": 1e-3, "rloo": 3e-3}
    ppo = [run for run in runs if run.method == "ppo"]
    assert {(run.update, run.learning_rate) for run in ppo} == {("ppo-4x2048", 3e-3)} and ppo[0].update in PPO_UPDATES
    # test mazes and new seeds only
    assert {run.split for run in runs} == {"test"} and {run.seed for run in runs} == {1, 2, 3, 4, 5}


def test_the_tuning_grid_gives_every_method_the_same_learning_rates_and_updates() -> None:
    args = build_parser().parse_args(["--stage", "tune"])
    args.timesteps = 1000
    runs = stage_runs(args, pd.DataFrame())
    by_method = {method: {(run.update, run.learning_rate) for run in group}
                 for method, group in itertools.groupby(sorted(runs, key=lambda r: r.method), key=lambda r: r.method)}
    assert by_method["maxrl"] == by_method["grpo"] == by_method["rloo"]
    assert len(by_method["ppo"]) == len(by_method["maxrl"])  # as many grid points for PPO
    assert {run.split for run in runs} == {"validation"}


def test_a_stage_that_needs_validation_runs_says_so() -> None:
    args = build_parser().parse_args(["--stage", "final"])
    args.timesteps = 1000
    with pytest.raises(SystemExit, match="run --stage tune"):
        stage_runs(args, validation_frame({("ppo", "ppo-4x2048", 1e-3): 0.1}))


def test_the_no_critic_ppo_ablation_keeps_a_value_of_zero_while_its_actor_learns() -> None:
    import numpy as np
    import torch as th

    from benchmarks.strict_mazes import Run, ppo_from_actor
    from sb3_maxrl import MaxRL
    from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv

    th.set_num_threads(1)
    venv = StrictMazeVecEnv(8, 5, seed=0)  # small mazes: some episodes succeed, so advantages are not all zero
    base = MaxRL("MlpPolicy", venv, n_groups=2, group_size=4, policy_kwargs=dict(net_arch=[128, 128]), seed=0)
    run = Run(size=9, method="ppo", update="ppo-10x512-novf", learning_rate=1e-3, seed=0, split="test", timesteps=1024)
    model = ppo_from_actor(base, venv, run, list(range(50)))
    actor_before = [p.detach().clone() for p in model.policy.action_net.parameters()]
    model.learn(1024)
    values = model.policy.predict_values(th.as_tensor(np.asarray(venv.reset()), dtype=th.float32))
    assert th.count_nonzero(values) == 0 and all(th.count_nonzero(p) == 0 for p in model.policy.value_net.parameters())
    assert any(not th.equal(a, b) for a, b in zip(actor_before, model.policy.action_net.parameters(), strict=True))


def test_the_main_jobs_ppo_is_the_benchmarks_validation_choice() -> None:
    import inspect

    from stable_baselines3 import PPO

    from sb3_maxrl.experiments.strict_mazes import RECIPES

    recipe, chosen = RECIPES[9], PPO_UPDATES["ppo-10x512"]
    assert (recipe.ppo_n_epochs, recipe.ppo_batch_size, recipe.ppo_n_steps) == (
        chosen["n_epochs"], chosen["batch_size"], chosen["n_steps"]
    )  # fmt: skip
    assert recipe.learning_rates_of("ppo") == (1e-3,) and recipe.n_envs == 256  # the benchmark's 256 maze slots
    benchmark_clip = inspect.signature(PPO).parameters["max_grad_norm"].default  # ppo_from_actor keeps SB3's
    assert recipe.ppo_max_grad_norm == benchmark_clip == 0.5
