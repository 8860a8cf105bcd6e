"""``maxrl-plot``: PNGs of pass@k and training curves from the TensorBoard logs of one or more runs.

A run is a directory holding ``events.out.tfevents.*`` files, found recursively under the directories given. Runs
are grouped (one colour per group) and each group is drawn as its mean over runs (seeds) with a band (mean +- std,
or min..max)::

    maxrl-plot runs/ --out plots/                          # by method; seeds of the same settings together
    maxrl-plot runs/maxrl runs/grpo --out plots/          # one group per directory given
    maxrl-plot runs/ --label-by "(maxrl|grpo|rloo)" --out plots/   # group by a regex on the run path
    maxrl-plot runs/ --label-key estimator --out plots/    # group by a setting, logged hparam or JSON file's key

A run's settings come from the ``summary.json`` that ``maxrl-train`` writes in its run folder (the ``--compare``
runs in its subfolders included: their estimator is the subfolder's name), else from a ``hparams.json``,
``config.json`` or ``run.json`` in its directory or a parent. By default runs with settings are grouped by those
settings except the seed and labelled by their estimator (plus the settings that tell two groups of one estimator
apart); runs without settings are grouped by the first directory below the directory given. A group whose runs'
settings differ in anything but the seed is drawn, with a warning naming the settings.

Files written (a figure is skipped when its keys were never logged): ``eval_pass_at_k.png`` (``eval/pass@k``
and ``eval/neg_log_pass@k`` over env steps for up to four ks spread over those evaluated, or ``--ks``),
``neg_log_pass_at_k_vs_k.png`` (the last evaluation's -log pass@k against every k), ``eval_likelihood.png``
(``eval/mean_likelihood``, ``eval/nll``), ``rollout.png`` (``rollout/pass_rate``, ``rollout/frac_groups_all_fail``,
smoothed over about 1/25 of a run's points by default) and ``final_pass_at_k.csv``. Every figure fits a
1920 x 1080 screen.
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sb3_maxrl.cli import MissingExtraError

try:
    import matplotlib
    import pandas as pd
    from tbparse import SummaryReader
except ImportError as import_error:
    raise MissingExtraError("maxrl-plot", "plots", import_error) from import_error

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import EngFormatter, MaxNLocator

Band = Literal["std", "minmax"]
EVENT_FILE_GLOB = "events.out.tfevents.*"
#: JSON files next to a run (in its directory or a parent, up to the root given) read by ``--label-key``.
LABEL_FILES = ("hparams.json", "config.json", "run.json")
#: The settings file ``maxrl-train`` writes into its run folder
SUMMARY_FILE = "summary.json"
#: Settings that tell apart the seeds of one configuration, not configurations
SEED_KEYS = ("seed",)
#: ks drawn over training in ``eval_pass_at_k.png`` by default, spread over those evaluated
N_PLOT_KS = 4
#: ``rollout/`` curves are smoothed over this fraction of a run's points by default
SMOOTH_FRACTION = 1 / 25
#: Inches of one panel, and the resolution: four panels in a row, two rows, fit a 1920 x 1080 screen
PANEL_SIZE = (3.8, 3.0)
DPI = 110
PASS_AT_K = re.compile(r"^eval/pass@(\d+)$")
NEG_LOG_PASS_AT_K = re.compile(r"^eval/neg_log_pass@(\d+)$")


@dataclass
class Run:
    """
    The scalars of one run.

    :param path: the run's directory (holding its event files)
    :param label: the group the run belongs to
    :param scalars: tag -> series of values indexed by env step (sorted, one value per step)
    :param settings: the run's settings (see :func:`run_settings`), None when unknown
    """

    path: Path
    label: str
    scalars: dict[str, pd.Series] = field(default_factory=dict)
    settings: dict[str, Any] | None = None


@dataclass
class Curve:
    """
    A group's aggregate of one tag: mean and band over its runs on a common step grid.

    :param steps: the env steps
    :param mean: the mean over runs
    :param low: the band's lower edge
    :param high: the band's upper edge
    :param n_runs: how many runs went into it
    """

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_runs: int


def find_run_dirs(root: Path) -> list[Path]:
    """
    The directories under ``root`` (``root`` included) that hold TensorBoard event files.

    :param root: a directory
    :return: the run directories, sorted
    """
    return sorted({path.parent for path in root.rglob(EVENT_FILE_GLOB) if path.is_file()})


def read_scalars(run_dir: Path) -> tuple[dict[str, pd.Series], dict[str, str]]:
    """
    All scalars and hparams of the event files directly in ``run_dir`` (not in its subdirectories).

    :param run_dir: a run directory
    :return: tag -> values indexed by step (the last value wins when a step repeats), and hparam name -> value
    """
    frames, hparams = [], {}
    for event_file in sorted(run_dir.glob(EVENT_FILE_GLOB)):
        reader = SummaryReader(str(event_file), event_types={"scalars", "hparams"})
        frames.append(reader.scalars)
        if not reader.hparams.empty:
            hparams.update(
                {str(tag): str(value) for tag, value in zip(reader.hparams["tag"], reader.hparams["value"], strict=True)}
            )
    scalars: dict[str, pd.Series] = {}
    frame = pd.concat(frames) if frames else pd.DataFrame(columns=["step", "tag", "value"])
    for tag, group in frame.groupby("tag"):
        series = group.drop_duplicates("step", keep="last").set_index("step")["value"].sort_index()
        scalars[str(tag)] = series.astype(float)
    return scalars, hparams


def run_settings(run_dir: Path, root: Path) -> dict[str, Any] | None:
    """
    The settings of a run: from the nearest ``summary.json`` of ``maxrl-train`` in its directory or a parent up to
    ``root`` (a ``--compare`` run in a subfolder takes the subfolder's name as its estimator), else from the nearest
    ``hparams.json`` / ``config.json`` / ``run.json``.

    :param run_dir: the run's directory
    :param root: the directory given on the command line that the run was found under
    :return: setting -> value (nested values as JSON text), with ``seed`` and ``estimator`` where known; None when
        no file describes the run
    """
    for directory in [run_dir, *run_dir.parents]:
        summary_path = directory / SUMMARY_FILE
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text())
            estimator = summary.get("estimator", summary.get("hyperparams", {}).get("estimator"))
            if directory != run_dir:
                method = run_dir.relative_to(directory).parts[0]
                if method not in (summary.get("runs") or {}):
                    return None  # a folder below a run that the summary does not describe
                estimator = method
            settings = {"env": summary.get("env"), **summary.get("hyperparams", {}), "seed": summary.get("seed")}
            settings["estimator"] = estimator
            return {key: _plain(value) for key, value in settings.items()}
        for name in LABEL_FILES:
            path = directory / name
            if path.is_file():
                content = json.loads(path.read_text())
                return {str(key): _plain(value) for key, value in content.items()} if isinstance(content, dict) else None
        if directory == root:
            break
    return None


def _plain(value: Any) -> Any:
    """A setting as a comparable value: nested lists and dicts as JSON text."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | dict) else value


def _without_seed(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in SEED_KEYS}


def _label_from_files(run_dir: Path, root: Path, key: str) -> str | None:
    for directory in [run_dir, *run_dir.parents]:
        for name in LABEL_FILES:
            path = directory / name
            if path.is_file():
                content = json.loads(path.read_text())
                if isinstance(content, dict) and key in content:
                    return str(content[key])
        if directory == root:
            break
    return None


def run_label(
    run_dir: Path,
    root: Path,
    n_roots: int,
    hparams: dict[str, str],
    *,
    root_label: str | None = None,
    label_by: str | None = None,
    label_key: str | None = None,
    settings: dict[str, Any] | None = None,
) -> str:
    """
    The group of a run, by the first rule that applies (runs with known settings and no rule given are labelled by
    :func:`label_by_settings` instead).

    :param run_dir: the run's directory
    :param root: the directory given on the command line that the run was found under
    :param n_roots: how many directories were given
    :param hparams: the run's logged hparams
    :param root_label: the ``--labels`` entry of ``root``
    :param label_by: a regex searched in the run's path: its first group (or the whole match) is the label
    :param label_key: a setting (see :func:`run_settings`), hparam or key of a JSON file in the run's directory or a
        parent holding the label
    :param settings: the run's settings
    :return: ``root_label``; else the regex match; else the key's value; else the root's name when several
        roots were given; else the first directory below the root (the root's name for a run at the root)
    :raises ValueError: when ``label_by`` or ``label_key`` is given but does not match the run
    """
    if root_label is not None:
        return root_label
    if label_by is not None:
        match = re.search(label_by, run_dir.as_posix())
        if match is None:
            raise ValueError(f"--label-by {label_by!r} does not match the run path {run_dir.as_posix()!r}.")
        return match.group(1) if match.groups() else match.group(0)
    if label_key is not None:
        label = (settings or {}).get(label_key) or hparams.get(label_key) or _label_from_files(run_dir, root, label_key)
        if label is None:
            raise ValueError(
                f"--label-key {label_key!r}: the run {run_dir} logged no such hparam and has no "
                f"{' / '.join((SUMMARY_FILE, *LABEL_FILES))} with that key in its directory or a parent up to {root}."
            )
        return str(label)
    relative = run_dir.relative_to(root)
    if n_roots > 1 or not relative.parts:
        return root.resolve().name
    return relative.parts[0]


def load_runs(
    roots: Sequence[Path],
    *,
    labels: Sequence[str] | None = None,
    label_by: str | None = None,
    label_key: str | None = None,
) -> list[Run]:
    """
    Every run under ``roots`` with its label and scalars.

    :param roots: directories to search for event files
    :param labels: one label per root (overrides the other rules)
    :param label_by: see :func:`run_label`
    :param label_key: see :func:`run_label`
    :return: the runs, in the order of ``roots`` and then of their paths; without ``labels``, ``label_by`` or
        ``label_key``, runs with settings are labelled by :func:`label_by_settings`
    :raises ValueError: if ``labels`` does not have one entry per root, or a root holds no event file
    """
    if labels is not None and len(labels) != len(roots):
        raise ValueError(f"--labels needs one label per run directory: got {len(labels)} labels for {len(roots)} dirs.")
    runs = []
    for index, root in enumerate(roots):
        run_dirs = find_run_dirs(root)
        if not run_dirs:
            raise ValueError(f"No TensorBoard event files ({EVENT_FILE_GLOB}) under {root}.")
        for run_dir in run_dirs:
            scalars, hparams = read_scalars(run_dir)
            settings = run_settings(run_dir, root)
            label = run_label(
                run_dir,
                root,
                len(roots),
                hparams,
                root_label=None if labels is None else labels[index],
                label_by=label_by,
                label_key=label_key,
                settings=settings,
            )
            runs.append(Run(run_dir, label, scalars, settings))
    if labels is None and label_by is None and label_key is None:
        by_settings = label_by_settings([run.settings for run in runs if run.settings is not None])
        for run in runs:
            if run.settings is not None:
                run.label = by_settings[json.dumps(_without_seed(run.settings), sort_keys=True, default=str)]
    return runs


def label_by_settings(settings: Sequence[dict[str, Any]]) -> dict[str, str]:
    """
    A label for every configuration (settings without the seed): its estimator, and the settings in which it differs
    from another configuration of the same estimator.

    :param settings: the settings of the runs
    :return: configuration (its settings without the seed, as JSON text) -> label
    """
    configurations: dict[str, dict[str, Any]] = {}
    for run_settings_ in settings:
        configuration = _without_seed(run_settings_)
        configurations.setdefault(json.dumps(configuration, sort_keys=True, default=str), configuration)
    labels = {}
    for key, configuration in configurations.items():
        method = str(configuration.get("estimator") or "run")
        same_method = [c for c in configurations.values() if str(c.get("estimator") or "run") == method]
        differing = sorted(
            {name for other in same_method for name in {*configuration, *other} if other.get(name) != configuration.get(name)}
        )
        details = ", ".join(f"{name}={configuration.get(name)}" for name in differing)
        labels[key] = f"{method} ({details})" if details else method
    return labels


def check_groups(groups: dict[str, list[Run]]) -> list[str]:
    """
    Warn about groups whose runs' settings differ in anything but the seed (their band is not a seed band).

    :param groups: label -> runs
    :return: the warnings given
    """
    messages = []
    for label, runs in groups.items():
        known = [_without_seed(run.settings) for run in runs if run.settings is not None]
        differing = sorted({name for other in known for name in {*known[0], *other} if other.get(name) != known[0].get(name)})
        if differing:
            messages.append(
                f"maxrl-plot: the group {label!r} mixes runs whose settings differ in {', '.join(differing)} (not only "
                "the seed): its curve averages different configurations. Drop --labels/--label-by/--label-key to group "
                "by settings, or label by the setting that differs."
            )
            warnings.warn(messages[-1], stacklevel=2)
    return messages


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """
    :param runs: runs with labels
    :return: label -> runs, labels in order of first appearance
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def aggregate(series: Sequence[pd.Series], band: Band = "std", smooth: int = 1) -> Curve | None:
    """
    Mean and band of several runs' curves of one tag.

    Runs logged at the same steps are combined step by step; otherwise every run is linearly interpolated on
    the union of their steps within the range all runs cover.

    :param series: one series per run (values indexed by step); empty ones are ignored
    :param band: ``"std"`` for mean +- std, ``"minmax"`` for min..max over runs
    :param smooth: window of a trailing moving average applied to each run first (1: none)
    :return: the aggregate, or None if no run has a value
    """
    series = [s for s in series if len(s) > 0]
    if not series:
        return None
    if smooth > 1:
        series = [s.rolling(smooth, min_periods=1).mean() for s in series]
    if all(s.index.equals(series[0].index) for s in series):
        steps = series[0].index.to_numpy(dtype=float)
        values = np.stack([s.to_numpy(dtype=float) for s in series])
    else:
        start = max(float(s.index.min()) for s in series)
        stop = min(float(s.index.max()) for s in series)
        all_steps = np.unique(np.concatenate([s.index.to_numpy(dtype=float) for s in series]))
        steps = all_steps[(all_steps >= start) & (all_steps <= stop)]
        if len(steps) == 0:  # the runs' step ranges do not overlap: use the last value of each
            steps = np.array([stop])
        values = np.stack([np.interp(steps, s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)) for s in series])
    mean = values.mean(axis=0)
    if band == "std":
        std = values.std(axis=0)
        low, high = mean - std, mean + std
    else:
        low, high = values.min(axis=0), values.max(axis=0)
    return Curve(steps, mean, low, high, len(series))


def _k_tags(runs: Sequence[Run], pattern: re.Pattern[str]) -> dict[int, str]:
    tags = {tag for run in runs for tag in run.scalars}
    return dict(sorted((int(m.group(1)), tag) for tag in tags if (m := pattern.match(tag))))


def _draw(ax: plt.Axes, curve: Curve, label: str, color: str) -> None:
    ax.plot(curve.steps, curve.mean, color=color, label=f"{label} (n={curve.n_runs})")
    if curve.n_runs > 1:
        ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)


def _colors(groups: dict[str, list[Run]]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[index % len(cycle)] for index, label in enumerate(groups)}


def plot_over_steps(
    groups: dict[str, list[Run]],
    panels: Sequence[tuple[str, str]],
    out_file: Path,
    *,
    band: Band = "std",
    smooth: int = 1,
    n_rows: int = 1,
    title: str = "",
) -> Path | None:
    """
    One panel per tag: each group's mean curve over env steps with its band.

    :param groups: label -> runs
    :param panels: (tag, panel title) per panel, filled row by row
    :param out_file: the PNG to write
    :param band: see :func:`aggregate`
    :param smooth: see :func:`aggregate`
    :param n_rows: rows of the panel grid
    :param title: the figure's title
    :return: ``out_file``, or None (nothing written) if no run logged any of the tags
    """
    colors = _colors(groups)
    curves = {
        tag: {
            label: aggregate([r.scalars.get(tag, pd.Series(dtype=float)) for r in runs], band, smooth)
            for label, runs in groups.items()
        }
        for tag, _ in panels
    }
    if all(curve is None for by_label in curves.values() for curve in by_label.values()):
        return None
    n_cols = int(np.ceil(len(panels) / n_rows))
    width, height = PANEL_SIZE
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows + 0.4), squeeze=False, sharex=True)
    for ax, (tag, panel_title) in zip(axes.flat, panels, strict=False):
        for label, curve in curves[tag].items():
            if curve is not None:
                _draw(ax, curve, label, colors[label])
        ax.set_title(panel_title)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 60k, not 60000 (tick labels of narrow panels collide)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_file, dpi=DPI)
    plt.close(fig)
    return out_file


def final_pass_at_k(groups: dict[str, list[Run]]) -> pd.DataFrame:
    """
    Each run's last logged ``eval/pass@k`` and ``eval/neg_log_pass@k``, summarized per group and k.

    :param groups: label -> runs
    :return: columns label, k, n_runs, step (mean over runs), pass_at_k_mean/std, neg_log_pass_at_k_mean/std/min/max
    """
    all_runs = [run for runs in groups.values() for run in runs]
    pass_tags, neg_log_tags = _k_tags(all_runs, PASS_AT_K), _k_tags(all_runs, NEG_LOG_PASS_AT_K)
    rows = []
    for label, runs in groups.items():
        for k in sorted(set(pass_tags) | set(neg_log_tags)):
            finals = []
            for run in runs:
                passes = run.scalars.get(pass_tags.get(k, ""), pd.Series(dtype=float))
                neg_logs = run.scalars.get(neg_log_tags.get(k, ""), pd.Series(dtype=float))
                if len(neg_logs) == 0 and len(passes) > 0:  # -log pass@k from pass@k if only that was logged
                    neg_logs = -np.log(passes.clip(lower=1e-12))
                if len(neg_logs) == 0:
                    continue
                step = neg_logs.index[-1]
                finals.append((step, passes.iloc[-1] if len(passes) else np.exp(-neg_logs.iloc[-1]), neg_logs.iloc[-1]))
            if not finals:
                continue
            steps, passes_final, neg_logs_final = (np.array(column, dtype=float) for column in zip(*finals, strict=True))
            rows.append(
                {
                    "label": label,
                    "k": k,
                    "n_runs": len(finals),
                    "step": steps.mean(),
                    "pass_at_k_mean": passes_final.mean(),
                    "pass_at_k_std": passes_final.std(),
                    "neg_log_pass_at_k_mean": neg_logs_final.mean(),
                    "neg_log_pass_at_k_std": neg_logs_final.std(),
                    "neg_log_pass_at_k_min": neg_logs_final.min(),
                    "neg_log_pass_at_k_max": neg_logs_final.max(),
                }
            )
    return pd.DataFrame(rows)


def plot_neg_log_vs_k(
    groups: dict[str, list[Run]], table: pd.DataFrame, out_file: Path, band: Band = "std", log_y: bool = False
) -> Path | None:
    """
    The last evaluation's -log pass@k against k (log-scale x), one line per group with its band over runs.

    :param groups: label -> runs (for the colours)
    :param table: the output of :func:`final_pass_at_k`
    :param out_file: the PNG to write
    :param band: ``"std"`` or ``"minmax"``
    :param log_y: log-scale y axis too (-log pass@k spans decades once pass@k nears 1)
    :return: ``out_file``, or None if the table is empty
    """
    if table.empty:
        return None
    colors = _colors(groups)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for label, rows in table.groupby("label", sort=False):
        rows = rows.sort_values("k")
        mean = rows["neg_log_pass_at_k_mean"].to_numpy()
        if band == "std":
            low, high = mean - rows["neg_log_pass_at_k_std"].to_numpy(), mean + rows["neg_log_pass_at_k_std"].to_numpy()
        else:
            low, high = rows["neg_log_pass_at_k_min"].to_numpy(), rows["neg_log_pass_at_k_max"].to_numpy()
        n_runs = int(rows["n_runs"].max())
        ax.plot(rows["k"], mean, marker="o", color=colors[str(label)], label=f"{label} (n={n_runs})")
        if n_runs > 1:
            ax.fill_between(rows["k"], low, high, color=colors[str(label)], alpha=0.2, linewidth=0)
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("-log pass@k")
    ax.set_title("-log pass@k at the last evaluation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out_file, dpi=DPI)
    plt.close(fig)
    return out_file


def plot_ks(ks: Sequence[int], n: int = N_PLOT_KS) -> list[int]:
    """
    Up to ``n`` of the evaluated ks, spread evenly on a log scale from the smallest to the largest.

    :param ks: the evaluated ks
    :param n: how many to keep
    :return: the ks to draw over training, sorted
    """
    ks = sorted(set(ks))
    if len(ks) <= n:
        return ks
    targets = np.geomspace(ks[0], ks[-1], n)
    chosen = {min(ks, key=lambda k: abs(np.log(k) - np.log(target))) for target in targets}
    return sorted(chosen)


def auto_smooth(runs: Sequence[Run], tags: Sequence[str]) -> int:
    """
    The default smoothing window of the training curves: about :data:`SMOOTH_FRACTION` of a run's points.

    :param runs: the runs
    :param tags: the smoothed tags
    :return: the window (1: none)
    """
    lengths = [len(run.scalars[tag]) for run in runs for tag in tags if tag in run.scalars]
    return max(1, round(max(lengths, default=0) * SMOOTH_FRACTION))


def make_plots(
    roots: Sequence[Path | str],
    out_dir: Path | str,
    *,
    labels: Sequence[str] | None = None,
    label_by: str | None = None,
    label_key: str | None = None,
    band: Band = "std",
    smooth: int | None = None,
    log_y: bool = False,
    ks: Sequence[int] | None = None,
) -> list[Path]:
    """
    Write every figure whose keys the runs logged, and ``final_pass_at_k.csv``.

    :param roots: directories to search for runs
    :param out_dir: where to write (created if needed)
    :param labels: one group label per root
    :param label_by: a regex on the run path giving the group label (see :func:`run_label`)
    :param label_key: an hparam / JSON key giving the group label
    :param band: ``"std"`` (mean +- std over runs) or ``"minmax"``
    :param smooth: trailing moving-average window for the training curves (``rollout/``); None for
        :func:`auto_smooth`, 1 for none
    :param log_y: log-scale y axis of the -log pass@k vs k figure
    :param ks: the ks drawn over training in ``eval_pass_at_k.png``; None for :func:`plot_ks` of those evaluated
    :return: the files written
    :raises ValueError: if no run logged any of the plotted keys
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs([Path(root) for root in roots], labels=labels, label_by=label_by, label_key=label_key)
    groups = group_runs(runs)
    check_groups(groups)
    pass_tags, neg_log_tags = _k_tags(runs, PASS_AT_K), _k_tags(runs, NEG_LOG_PASS_AT_K)
    evaluated = sorted(set(pass_tags) | set(neg_log_tags))
    if ks is not None and not set(ks) <= set(evaluated):
        raise ValueError(f"--ks {sorted(set(ks) - set(evaluated))} were not evaluated; the runs logged k in {evaluated}.")
    ks = plot_ks(evaluated) if ks is None else sorted(set(ks))
    rollout_tags = ("rollout/pass_rate", "rollout/frac_groups_all_fail")
    smooth = auto_smooth(runs, rollout_tags) if smooth is None else smooth
    pass_panels = [(pass_tags[k], f"pass@{k}") for k in ks if k in pass_tags]
    neg_log_panels = [(neg_log_tags[k], f"-log pass@{k}") for k in ks if k in neg_log_tags]
    written = [
        plot_over_steps(
            groups,
            pass_panels + neg_log_panels,
            out / "eval_pass_at_k.png",
            band=band,
            n_rows=int(bool(pass_panels)) + int(bool(neg_log_panels)),
            title="evaluation on held-out start states",
        )
        if ks
        else None,
        plot_over_steps(
            groups,
            [("eval/mean_likelihood", "mean likelihood"), ("eval/nll", "NLL")],
            out / "eval_likelihood.png",
            band=band,
        ),
        plot_over_steps(
            groups,
            list(zip(rollout_tags, ("training pass rate", "fraction of groups with K = 0"), strict=True)),
            out / "rollout.png",
            band=band,
            smooth=smooth,
            title=f"training (moving average over {smooth} updates)" if smooth > 1 else "training",
        ),
    ]
    table = final_pass_at_k(groups)
    written.append(plot_neg_log_vs_k(groups, table, out / "neg_log_pass_at_k_vs_k.png", band=band, log_y=log_y))
    files = [path for path in written if path is not None]
    if not files:
        tags = sorted({tag for run in runs for tag in run.scalars})
        raise ValueError(
            f"None of the {len(runs)} runs logged eval/pass@k, eval/neg_log_pass@k, eval/mean_likelihood, eval/nll, "
            f"rollout/pass_rate or rollout/frac_groups_all_fail; their tags: {tags[:20]}"
        )
    if not table.empty:
        table.to_csv(out / "final_pass_at_k.csv", index=False)
        files.append(out / "final_pass_at_k.csv")
    return files


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of ``maxrl-plot RUN_DIR [RUN_DIR ...] --out DIR``.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    """
    parser = argparse.ArgumentParser(
        prog="maxrl-plot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="directories searched recursively for TensorBoard event files")
    parser.add_argument("--out", type=Path, required=True, help="output directory for the PNGs and final_pass_at_k.csv")
    labeling = parser.add_mutually_exclusive_group()
    labeling.add_argument("--labels", nargs="+", help="one group label per RUN_DIR")
    labeling.add_argument("--label-by", help="regex searched in each run's path; group 1 (or the match) is its label")
    labeling.add_argument(
        "--label-key", help=f"hparam, or key of a {'/'.join(LABEL_FILES)} next to the run, holding the label"
    )
    parser.add_argument("--band", choices=["std", "minmax"], default="std", help="band over runs: mean +- std, or min..max")
    parser.add_argument(
        "--smooth",
        type=int,
        help="moving-average window of the rollout/ curves (1: none; default: about 1/25 of a run's points)",
    )
    parser.add_argument(
        "--ks",
        nargs="+",
        type=int,
        help=f"the ks of eval_pass_at_k.png (default: up to {N_PLOT_KS} spread over those evaluated)",
    )
    parser.add_argument("--log-y", action="store_true", help="log-scale y axis of the -log pass@k vs k figure")
    args = parser.parse_args(argv)
    try:
        files = make_plots(
            args.run_dirs,
            args.out,
            labels=args.labels,
            label_by=args.label_by,
            label_key=args.label_key,
            band=args.band,
            smooth=args.smooth,
            log_y=args.log_y,
            ks=args.ks,
        )
    except ValueError as error:
        parser.error(str(error))
    for path in files:
        print(path)


if __name__ == "__main__":
    main()
