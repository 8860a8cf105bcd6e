"""Benchmark scripts run as modules in --quick mode on a tiny budget and write their CSV + PNG."""

from __future__ import annotations

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
