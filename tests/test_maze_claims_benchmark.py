"""The maze-claims experiments' runs: an update cap, verifier noise on training only, training-set coverage."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from benchmarks.maze_claims import (
    CHOSEN_9X9_LEARNING_RATES,
    NOISE_LEVELS,
    build_parser,
    choose_nscaling_settings,
    experiment_runs,
)
from benchmarks.strict_mazes import Run, train_and_evaluate


def test_a_capped_noisy_run_stops_after_its_updates_and_measures_training_coverage() -> None:
    run = Run(size=9, method="maxrl", update="reuse", learning_rate=1e-3, seed=0, split="validation", timesteps=10**9,
              group_size=4, n_groups=16, n_eval=16, n_train=64, eval_points=2, max_updates=3, false_positive_rate=0.5,
              train_coverage=True)
    result = train_and_evaluate(asdict(run))
    assert result["final"]["updates"] == 3
    assert result["final"]["timesteps"] < 10**5  # the cap, not the (huge) env-step budget, ended the run
    verifier = result["verifier"]
    assert verifier["episodes"] >= 3 * 4 * 16
    # a weak base fails almost every episode: about half of the episodes become false positives
    assert verifier["false_positives"] / verifier["episodes"] == pytest.approx(0.5, abs=0.1)
    for metrics in (result["base_train"], result["final_train"], *[
        {k.removeprefix("train_"): v for k, v in row.items() if k.startswith("train_")} for row in result["curve"]
    ]):
        assert 0.0 <= metrics["coverage@1"] <= metrics["coverage@16"] <= metrics["coverage@64"] <= 1.0
    assert [row["updates"] for row in result["curve"]] == [1, 3]


def test_every_experiment_gives_every_estimator_the_same_update_and_varies_one_axis() -> None:
    for experiment, axis in (("nscaling", "group_size"), ("scarce", "n_train"), ("noise", "false_positive_rate")):
        settings = ["--update", "reuse", "--learning-rate", "1e-3"] if experiment == "nscaling" else []
        runs = experiment_runs(build_parser().parse_args(["--experiment", experiment, *settings]))
        assert {r.update for r in runs} == {"reuse"} and {r.method for r in runs} == {"maxrl", "grpo", "rloo"}
        assert len({getattr(r, axis) for r in runs}) > 1
        if experiment != "nscaling":  # each method at its 9x9 validation choice
            assert all(r.learning_rate == CHOSEN_9X9_LEARNING_RATES[r.method] for r in runs)
        else:
            assert len({(r.learning_rate, r.n_groups, r.max_updates) for r in runs}) == 1
            assert [r.group_size for r in runs] == sorted(r.group_size for r in runs)  # the longest runs last
    noise = experiment_runs(build_parser().parse_args(["--experiment", "noise"]))
    assert {(r.false_positive_rate, r.false_negative_rate) for r in noise} == set(NOISE_LEVELS)
    assert np.all([r.seed > 0 for r in noise])  # not seed 0, on which the 9x9 settings were chosen


def test_the_nscaling_grid_chooses_one_setting_for_the_whole_family_on_validation(tmp_path) -> None:
    tune = experiment_runs(build_parser().parse_args(["--experiment", "nscaling", "--tune"]))
    assert {r.split for r in tune} == {"validation"} and {r.seed for r in tune} == {0}
    grid = {(r.update, r.learning_rate) for r in tune}
    assert all({r.method for r in tune if (r.update, r.learning_rate) == point} == {"maxrl", "grpo", "rloo"} for point in grid)
    # MaxRL alone would pick (reuse, 1e-3); the family's average picks (paper, 3e-4)
    scores = {("reuse", 1e-3): (0.1, 2.0, 2.0), ("paper", 3e-4): (0.5, 0.9, 0.9), ("reuse", 3e-4): (0.6, 1.0, 1.0)}
    frame = pd.DataFrame([
        {"split": "validation", "method": method, "update": update, "learning_rate": lr,
         "final_neg_log_pass@1": score, "final_neg_log_pass@64": 0.0}
        for (update, lr), per_method in scores.items()
        for method, score in zip(("maxrl", "grpo", "rloo"), per_method, strict=True)
    ])
    assert choose_nscaling_settings(frame, ("maxrl", "grpo", "rloo")) == ("paper", 3e-4)
    with pytest.raises(SystemExit, match="--tune first"):
        experiment_runs(build_parser().parse_args(["--experiment", "nscaling", "--results", str(tmp_path)]))
