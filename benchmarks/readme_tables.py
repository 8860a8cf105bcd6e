"""The README's quickstart table, generated from the main job's ``summary.json``, and the check that it still holds.

The table between ``<!-- generated:quickstart -->`` and ``<!-- /generated:quickstart -->`` in README.md is written
by this script from the ``summary.json`` of ``maxrl-train --compare grpo rloo`` (seed 0), kept as
``benchmarks/results/quickstart_summary.json``::

    maxrl-train --compare grpo rloo                                   # writes runs/MaxRL_<i>/summary.json
    python -m benchmarks.readme_tables --summary runs/MaxRL_<i>/summary.json   # keeps it, rewrites the README block
    python -m benchmarks.readme_tables --check                        # reruns the main job (about a minute)
    python -m benchmarks.readme_tables --check --summary runs/MaxRL_<i>/summary.json   # no rerun

``--check`` exits with status 1 when any number of the table (every -log pass@k and pass@k, printed to 3 decimals)
differs from the README's by more than :data:`TOLERANCE`, or when the README's block is not what the kept summary
renders to. The main job is deterministic for a seed on one machine kind (same torch build, one thread); the
tolerance only absorbs a last-digit rounding difference. Wall time is reported, not checked.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
KEPT_SUMMARY = REPO / "benchmarks" / "results" / "quickstart_summary.json"
BEGIN, END = "<!-- generated:quickstart -->", "<!-- /generated:quickstart -->"
#: The main job of the quickstart (its first command), run by ``--check``
QUICKSTART_ARGS = ("--compare", "grpo", "rloo")
#: Largest absolute difference allowed between a table number of the README and of a rerun
TOLERANCE = 0.0015
#: How the README names the methods
DISPLAY_NAMES = {"base": "base", "maxrl": "MaxRL", "grpo": "GRPO", "rloo": "RLOO", "dr_grpo": "Dr. GRPO"}
MACHINE = "a loaded 2-core machine"


def _name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def _headers(methods: Sequence[str], metric: str) -> list[str]:
    """Column headers: the metric's name on the first column (the base), the method's name on the others."""
    return [f"{metric}: {_name(method)}" if index == 0 else _name(method) for index, method in enumerate(methods)]


def render(summary: dict[str, Any], machine: str = MACHINE) -> str:
    """
    The README block: the line that says how the table was measured, and the table.

    Rows are the summary's ``table_ks``; columns -log pass@k, then pass@k, of the base and of each method. In each
    row the best fine-tuned value is bold when it is better than every other fine-tuned one.

    :param summary: a strict-maze ``summary.json`` of ``maxrl-train`` (keys ``table``, ``table_ks``, ``seed``,
        ``compare``, ``wall_time_s``)
    :param machine: where it ran, printed in the line above the table
    :return: the block's text, without the markers
    """
    if "table" not in summary or "table_ks" not in summary:
        raise ValueError("The summary has no 'table': pass the summary.json of the strict-maze main job (maxrl-train).")
    table: dict[str, dict[str, float]] = summary["table"]
    methods = list(table)
    tuned = [method for method in methods if method != "base"]
    command = " ".join(["maxrl-train", *(["--compare", *summary["compare"]] if summary.get("compare") else [])])
    lines = [
        f"Measured (seed {summary['seed']}, `{command}`, {summary['wall_time_s']:.0f} s wall on {machine}):",
        "",
        "| k | " + " | ".join(_headers(methods, "-log pass@k") + _headers(methods, "pass@k")) + " |",
        "|" + "---|" * (1 + 2 * len(methods)),
    ]
    for k in summary["table_ks"]:
        cells = [str(k)]
        for metric, lower_is_better in (("neg_log_pass", True), ("pass", False)):
            values = {method: round(table[method][f"{metric}@{k}"], 3) for method in methods}
            ordered = sorted((values[m] for m in tuned), reverse=not lower_is_better)
            best = ordered[0] if len(ordered) > 1 and ordered[0] != ordered[1] else None
            for method in methods:
                text = f"{values[method]:.3f}"
                cells.append(f"**{text}**" if method != "base" and values[method] == best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def generated_block(readme_text: str) -> str:
    """
    The text between the quickstart markers.

    :param readme_text: the README
    :return: the block, stripped of surrounding blank lines
    :raises ValueError: when the markers are missing or out of order
    """
    start, stop = readme_text.find(BEGIN), readme_text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block: put the quickstart table between these markers.")
    return readme_text[start + len(BEGIN) : stop].strip("\n")


def replace_block(readme_text: str, block: str) -> str:
    """
    The README with the quickstart block replaced.

    :param readme_text: the README
    :param block: the new block (see :func:`render`)
    :return: the new README text
    """
    old = generated_block(readme_text)
    start = readme_text.find(BEGIN) + len(BEGIN)
    stop = readme_text.find(END)
    assert readme_text[start:stop].strip("\n") == old
    return readme_text[:start] + "\n" + block + "\n" + readme_text[stop:]


def table_numbers(block: str) -> dict[tuple[str, str], float]:
    """
    The numbers of a rendered table by (row k, column header).

    :param block: a block written by :func:`render`
    :return: ``{(k, column): value}``, columns named like ``"-log pass@k MaxRL"`` and ``"pass@k base"``
    """
    rows = [line for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    if not rows:
        raise ValueError("The quickstart block holds no table.")
    headers = [cell.strip() for cell in rows[0].strip("|").split("|")][1:]
    half = len(headers) // 2  # -log pass@k columns, then pass@k columns, one per method each
    methods = [header.split(": ")[-1] for header in headers]
    columns = [f"-log pass@k {method}" for method in methods[:half]] + [f"pass@k {method}" for method in methods[half:]]
    numbers = {}
    for row in rows[1:]:
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")]
        for column, cell in zip(columns, cells[1:], strict=True):
            numbers[cells[0], column] = float(cell)
    return numbers


def compare_tables(expected: str, actual: str, tolerance: float = TOLERANCE) -> list[str]:
    """
    The differences between two rendered tables beyond ``tolerance``.

    :param expected: the README's block
    :param actual: the block rendered from a rerun
    :param tolerance: the largest absolute difference allowed
    :return: one line per difference (empty: the tables agree)
    """
    want, got = table_numbers(expected), table_numbers(actual)
    if set(want) != set(got):
        return [
            f"the tables have different cells: README {sorted(set(want) - set(got))}, rerun {sorted(set(got) - set(want))}"
        ]
    return [
        f"k={k}, {header}: README {want[k, header]:.3f}, rerun {got[k, header]:.3f}"
        for (k, header) in want
        if abs(want[k, header] - got[k, header]) > tolerance
    ]


def run_main_job(log_dir: str) -> dict[str, Any]:
    """
    Run the quickstart's main job (``maxrl-train --compare grpo rloo``, seed 0, one torch thread).

    :param log_dir: where its TensorBoard logs and summary go
    :return: its summary
    """
    from sb3_maxrl.cli.train import build_parser, train

    args = build_parser().parse_args([*QUICKSTART_ARGS, "--no-progress", "--verbose", "0", "--log-dir", log_dir])
    return train(args)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Rewrite the README's quickstart block from a summary, or ``--check`` it.

    :param argv: the command-line arguments (None: ``sys.argv[1:]``)
    :return: the exit status (1: ``--check`` found a difference)
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--summary", type=Path, help="a main-job summary.json (default: --check reruns the main job)")
    parser.add_argument("--check", action="store_true", help=f"fail when a table number differs by > {TOLERANCE}")
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite or check")
    parser.add_argument("--machine", default=MACHINE, help="where the summary's run took place (printed above the table)")
    args = parser.parse_args(argv)
    readme_text = args.readme.read_text()
    if not args.check:
        if args.summary is None:
            parser.error("give --summary runs/MaxRL_<i>/summary.json of `maxrl-train --compare grpo rloo`, or --check")
        summary = json.loads(args.summary.read_text())
        args.readme.write_text(replace_block(readme_text, render(summary, args.machine)))
        if args.summary.resolve() != KEPT_SUMMARY.resolve():
            shutil.copyfile(args.summary, KEPT_SUMMARY)
        print(f"{args.readme}: quickstart table from {args.summary} (kept as {KEPT_SUMMARY})")
        return 0
    block = generated_block(readme_text)
    problems = []
    if KEPT_SUMMARY.is_file():
        kept = render(json.loads(KEPT_SUMMARY.read_text()), args.machine)
        problems += [f"README vs {KEPT_SUMMARY.name}: {p}" for p in compare_tables(block, kept, 0.0)]
    if args.summary is not None:
        summary = json.loads(args.summary.read_text())
    else:
        with tempfile.TemporaryDirectory() as log_dir:
            summary = run_main_job(log_dir)
    problems += [f"README vs rerun: {p}" for p in compare_tables(block, render(summary, args.machine))]
    readme_wall = re.search(r"(\d+) s wall", block)
    print(f"main job: {summary['wall_time_s']:.0f} s wall (README: {readme_wall.group(1) if readme_wall else '?'} s)")
    for problem in problems:
        print(problem)
    print("README quickstart table: " + ("differs" if problems else f"matches (tolerance {TOLERANCE})"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
