"""Benchmark scripts run as modules in --quick mode on a tiny budget and write their CSV + PNG."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common
from sb3_maxrl import MaxRL
from sb3_maxrl.common.utils import signature_defaults

REPOSITORY = Path(__file__).resolve().parents[1]
BENCHMARK_MODULES = sorted(f"benchmarks.{path.stem}" for path in (REPOSITORY / "benchmarks").glob("*.py"))


def run_module(name: str, *args: str) -> None:
    command = [sys.executable, "-m", f"benchmarks.{name}", *args]
    subprocess.run(command, cwd=REPOSITORY, check=True, capture_output=True, timeout=600)


def test_benchmarks_import_without_sys_path_edits() -> None:
    """Every script imports as ``benchmarks.<name>`` (helpers through ``from benchmarks import common``)."""
    code = (
        "import importlib, sys\n"
        "before = list(sys.path)\n"
        f"for name in {BENCHMARK_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert sys.path == before, f'{name} edits sys.path'\n"
        "assert 'common' not in sys.modules, 'a second copy of benchmarks.common was imported as common'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_shared_configuration_repeats_no_maxrl_default() -> None:
    # MaxRL's signature is the one place for its defaults: the benchmarks list only what they change
    defaults = signature_defaults(MaxRL)
    assert set(common.MAXRL_KWARGS) <= set(defaults)
    assert all(value != defaults[key] for key, value in common.MAXRL_KWARGS.items()), common.MAXRL_KWARGS


def test_speed_measures_in_a_child_process_from_any_directory(tmp_path, monkeypatch):
    from benchmarks import speed

    monkeypatch.chdir(tmp_path)  # the child runs as ``python -m benchmarks.speed`` from the repository root
    config = {"algo": "random", "env_id": common.MAZE_ID, "n_envs": 2, "vec_env": "dummy", "seed": 0, "steps": 200}
    result = speed.run_child(config)
    assert result["steps"] >= 200 and result["steps_per_s"] > 0 and result["maxrss_mb"] > 0


@pytest.mark.slow
def test_mazes_quick_tiny_budget(tmp_path):
    run_module("mazes", "--quick", "--seeds", "1", "--budget", "3000", "--algos", "maxrl", "ppo", "--out", str(tmp_path))
    with open(tmp_path / "mazes_final.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["algo"] for row in rows} == {"maxrl", "ppo"}
    assert all(0.0 <= float(row["pass@1"]) <= float(row["pass@64"]) <= 1.0 for row in rows)
    assert (tmp_path / "mazes.png").stat().st_size > 10_000


def test_estimator_timing_small_sizes(tmp_path):
    run_module("estimator_timing", "--sizes", "8", "16", "--repeats", "1", "--out", str(tmp_path))
    with open(tmp_path / "estimator_timing.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 * 2 * 8 and all(float(row["median_ms"]) > 0 for row in rows)


def test_many_classes_tiny_budget(tmp_path):
    methods = ("--methods", "cross-entropy", "MaxRL K=16", "--optimizers", "sgd")
    run_module("many_classes", "--quick", "--updates", "4", "--eval-every", "2", *methods, "--out", str(tmp_path))
    with open(tmp_path / "many_classes_quick.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["method"] for row in rows} == {"cross-entropy", "MaxRL K=16"}
    assert all(0.0 < float(row["pass@1"]) <= float(row["pass@128"]) <= 1.0 for row in rows)
    assert (tmp_path / "many_classes_quick.png").stat().st_size > 10_000


def test_classification_and_regression_train_through_maxrl_on_the_one_step_path() -> None:
    """Their RL runs are MaxRL objects on a one-step task: MaxRL.train's fast path, pinned to the per-episode update
    by tests/test_one_step.py (test_maxrl_train_on_a_one_step_task_equals_its_per_episode_train)."""
    from benchmarks import classification, regression
    from sb3_maxrl.common.one_step import one_step_task
    from sb3_maxrl_envs.classification import DigitsTask
    from sb3_maxrl_envs.regression import RegressionTask

    digits = classification.make_model("grpo", 4, seed=0)
    assert isinstance(digits, MaxRL) and isinstance(one_step_task(digits.env), DigitsTask)
    assert (digits.estimator, digits.n_groups, digits.n_epochs, digits.clip_range) == ("grpo", classification.G, 1, None)
    settings = argparse.Namespace(lr=3e-3, group_size=4, n_groups=2, std_init=0.3)
    gaussian = regression.make_maxrl("outliers", "exp_lik", 0, settings)
    task = one_step_task(gaussian.env)
    assert isinstance(task, RegressionTask) and task.env.noise == "outliers"
    assert (gaussian.estimator, gaussian.truncation, gaussian.n_epochs, gaussian.clip_range) == ("maxrl_general", 1, 1, None)


def test_classification_tiny_budget(tmp_path):
    budget = ("--seeds", "1", "--epochs", "1", "--per-epoch", "2", "--methods", "maxrl", "ce", "--group-sizes", "4")
    run_module("classification", "--quick", *budget, "--out", str(tmp_path))
    with open(tmp_path / "classification_quick_curves.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["label"] for row in rows} == {"maxrl N=4", "cross-entropy"}
    epochs = [float(row["epoch"]) for row in rows if row["label"] == "maxrl N=4"]
    assert epochs == [0.0, 0.512, 1.001]  # after 0, 23 and 45 updates of 32 of the 1438 training images
    assert all(0.0 < float(row["test_pass1"]) <= 1.0 and 0.0 <= float(row["test_acc"]) <= 1.0 for row in rows)
    assert (tmp_path / "classification_quick.png").stat().st_size > 10_000


def test_regression_tiny_budget(tmp_path):
    budget = ("--updates", "6", "--eval-every", "3", "--group-size", "8", "--n-groups", "4", "--n-test", "50")
    methods = ("--noises", "gaussian", "--methods", "maxrl", "nll")
    run_module("regression", "--quick", "--seeds", "1", *budget, *methods, "--out", str(tmp_path))
    with open(tmp_path / "regression_quick_curves.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(row["method"], int(row["update"])) for row in rows] == [("maxrl", 3), ("maxrl", 6), ("nll", 3), ("nll", 6)]
    assert all(float(row["learned_std"]) > 0 and float(row["mse_mean"]) >= 0 for row in rows)
    assert 0.0 < float(rows[1]["train_pass_rate"]) <= 1.0
    assert (tmp_path / "regression_quick.png").stat().st_size > 10_000


def quickstart_summary(neg_log_pass_at_1: float = 0.6) -> dict:
    """A strict-maze summary.json as maxrl-train --compare grpo rloo writes it (only the keys the table reads)."""
    ks = [1, 16, 64, 1024]
    table = {}
    for index, method in enumerate(["base", "maxrl", "grpo", "rloo"]):
        table[method] = {f"neg_log_pass@{k}": (neg_log_pass_at_1 if method == "maxrl" else 1.0 + index) / k for k in ks}
        table[method] |= {f"pass@{k}": 0.1 * index + k / 2048 for k in ks}
    return {"seed": 0, "compare": ["grpo", "rloo"], "wall_time_s": 66.4, "table_ks": ks, "table": table}


def test_readme_table_is_rendered_from_the_summary_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from benchmarks import readme_tables

    block = readme_tables.render(quickstart_summary())
    lines = block.splitlines()
    assert lines[0] == "Measured (seed 0, `maxrl-train --compare grpo rloo`, 66 s wall on a loaded 2-core machine):"
    assert lines[2] == "| k | -log pass@k: base | MaxRL | GRPO | RLOO | pass@k: base | MaxRL | GRPO | RLOO |"
    assert lines[4] == "| 1 | 1.000 | **0.600** | 3.000 | 4.000 | 0.000 | 0.100 | 0.200 | **0.300** |"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_tables.BEGIN}\nold table\n{readme_tables.END}\nafter\n")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(quickstart_summary()))
    kept = tmp_path / "kept.json"
    monkeypatch.setattr(readme_tables, "KEPT_SUMMARY", kept)  # the kept copy of the summary, here in tmp_path
    assert readme_tables.main(["--summary", str(summary), "--readme", str(readme)]) == 0
    assert readme.read_text() == f"intro\n{readme_tables.BEGIN}\n{block}\n{readme_tables.END}\nafter\n"
    assert json.loads(kept.read_text()) == quickstart_summary()
    # a rerun within the tolerance passes; a drift beyond it (the README's .595 against a fresh .632) fails
    summary.write_text(json.dumps(quickstart_summary(0.6 + readme_tables.TOLERANCE / 2)))
    assert readme_tables.main(["--check", "--summary", str(summary), "--readme", str(readme)]) == 0
    summary.write_text(json.dumps(quickstart_summary(0.632)))
    assert readme_tables.main(["--check", "--summary", str(summary), "--readme", str(readme)]) == 1
    with pytest.raises(ValueError, match=r"no <!-- generated:quickstart --> \.\.\. <!-- /generated:quickstart --> block"):
        readme_tables.generated_block("no markers")


def test_readme_quickstart_table_is_the_kept_summary() -> None:
    import json

    from benchmarks import readme_tables

    block = readme_tables.generated_block(readme_tables.README.read_text())
    kept = readme_tables.render(json.loads(readme_tables.KEPT_SUMMARY.read_text()))
    assert readme_tables.compare_tables(block, kept, tolerance=0.0) == []
    assert block.splitlines()[0].split(" on ")[0] == kept.splitlines()[0].split(" on ")[0]  # seed, command, wall time
