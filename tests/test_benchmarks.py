"""Benchmark scripts run from a fresh install in --quick mode on a tiny budget and write their CSV + PNG."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str) -> None:
    subprocess.run([sys.executable, str(BENCHMARKS / name), *args], check=True, capture_output=True, timeout=600)


@pytest.mark.slow
def test_mazes_quick_tiny_budget(tmp_path):
    run_script("mazes.py", "--quick", "--seeds", "1", "--budget", "3000", "--algos", "maxrl", "ppo", "--out", str(tmp_path))
    with open(tmp_path / "mazes_final.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["algo"] for row in rows} == {"maxrl", "ppo"}
    assert all(0.0 <= float(row["pass@1"]) <= float(row["pass@64"]) <= 1.0 for row in rows)
    assert (tmp_path / "mazes.png").stat().st_size > 10_000


def test_estimator_timing_small_sizes(tmp_path):
    run_script("estimator_timing.py", "--sizes", "8", "16", "--repeats", "1", "--out", str(tmp_path))
    with open(tmp_path / "estimator_timing.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 * 2 * 8 and all(float(row["median_ms"]) > 0 for row in rows)
