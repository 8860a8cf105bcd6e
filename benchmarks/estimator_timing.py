"""Time every estimator of ``group_advantages`` for group sizes N in {64, 1024, 4096} (G start states each).

    python -m benchmarks.estimator_timing [--groups 8] [--repeats 5] [--out benchmarks/results]

Writes ``estimator_timing.csv``: median milliseconds per call over ``--repeats`` calls (after one warm-up, so
the cached Gauss-Legendre nodes of ``maxrl_general`` are not counted; the first call's time is reported too).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sb3_maxrl import ESTIMATORS, group_advantages


def time_call(likelihoods: np.ndarray, estimator: str, repeats: int) -> tuple[float, float]:
    start = time.perf_counter()
    group_advantages(likelihoods, estimator)
    first = time.perf_counter() - start
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        group_advantages(likelihoods, estimator)
        timings.append(time.perf_counter() - start)
    return 1000 * first, 1000 * statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024, 4096])
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for group_size in args.sizes:
        for kind, likelihoods in (
            ("binary", (rng.random((args.groups, group_size)) < 0.1).astype(float)),
            ("continuous", rng.random((args.groups, group_size))),
        ):
            for estimator in ESTIMATORS:
                first_ms, median_ms = time_call(likelihoods, estimator, args.repeats)
                rows.append(
                    dict(
                        N=group_size,
                        G=args.groups,
                        likelihoods=kind,
                        estimator=estimator,
                        first_ms=round(first_ms, 3),
                        median_ms=round(median_ms, 3),
                    )
                )
                print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "estimator_timing.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
