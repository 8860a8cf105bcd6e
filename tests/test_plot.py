"""maxrl-plot on real TensorBoard event files: 2 estimators x 2 seeds written with torch's SummaryWriter."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from torch.utils.tensorboard import SummaryWriter

from sb3_maxrl.cli import plot_main
from sb3_maxrl.cli.plot import aggregate, auto_smooth, load_runs, main, make_plots, plot_ks

# tbparse 0.0.9 calls DataFrame.sort_values(inplace=True), deprecated by pandas
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

KS = (1, 2, 4, 8)
STEPS = range(0, 40_001, 4_000)
EVAL_STEPS = range(0, 40_001, 10_000)
#: the final pass@1 of each (estimator, seed)
FINAL_PASS = {("maxrl", 0): 0.6, ("maxrl", 1): 0.5, ("grpo", 0): 0.3, ("grpo", 1): 0.2}


def pass_rate(estimator: str, seed: int, step: int) -> float:
    return 0.05 + (FINAL_PASS[estimator, seed] - 0.05) * step / STEPS[-1]


def write_run(root: Path, estimator: str, seed: int) -> Path:
    """One run's event file with the keys the training loop and the pass@k evaluation write."""
    run_dir = root / estimator / f"seed{seed}" / "MaxRL_1"
    writer = SummaryWriter(str(run_dir))
    for step in STEPS:
        p = pass_rate(estimator, seed, step)
        writer.add_scalar("rollout/pass_rate", p, step)
        writer.add_scalar("rollout/frac_groups_all_fail", (1 - p) ** 8, step)
        writer.add_scalar("rollout/utilization", 0.9, step)
        writer.add_scalar("train/loss", -p, step)
        if step in EVAL_STEPS:
            for k in KS:
                pass_at_k = 1 - (1 - p) ** k
                writer.add_scalar(f"eval/pass@{k}", pass_at_k, step)
                writer.add_scalar(f"eval/neg_log_pass@{k}", -np.log(pass_at_k), step)
            writer.add_scalar("eval/mean_likelihood", p, step)
            writer.add_scalar("eval/nll", -np.log(p), step)
    writer.close()
    return run_dir


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for estimator, seed in FINAL_PASS:
        write_run(root, estimator, seed)
    return root


def assert_real_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.stat().st_size > 20_000, f"{path} is only {path.stat().st_size} bytes"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05, f"{path} is (almost) a single colour"
    # more than white, black and grey: the group colours are drawn
    assert np.abs(image[..., 0] - image[..., 2]).max() > 0.3


def test_plots_from_event_files(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plots"
    main([str(runs_root), "--out", str(out)])
    names = ["eval_pass_at_k.png", "eval_likelihood.png", "rollout.png", "neg_log_pass_at_k_vs_k.png"]
    for name in names:
        assert_real_png(out / name)
    assert sorted(capsys.readouterr().out.split()) == sorted(str(out / name) for name in [*names, "final_pass_at_k.csv"])

    # one row per (estimator, k), grouped by the directory below the root, with the exact mean and std over seeds
    table = pd.read_csv(out / "final_pass_at_k.csv")
    assert sorted(table["label"].unique()) == ["grpo", "maxrl"]
    assert len(table) == 2 * len(KS) and (table["n_runs"] == 2).all() and (table["step"] == STEPS[-1]).all()
    for estimator in ("maxrl", "grpo"):
        for k in KS:
            row = table[(table["label"] == estimator) & (table["k"] == k)].iloc[0]
            expected = np.array([-np.log(1 - (1 - FINAL_PASS[estimator, seed]) ** k) for seed in (0, 1)])
            assert row["neg_log_pass_at_k_mean"] == pytest.approx(expected.mean(), rel=1e-5)
            assert row["neg_log_pass_at_k_std"] == pytest.approx(expected.std(), rel=1e-4)
            assert row["neg_log_pass_at_k_min"] == pytest.approx(expected.min(), rel=1e-5)


def test_labels_per_directory_and_by_regex(runs_root: Path, tmp_path: Path) -> None:
    make_plots([runs_root / "maxrl", runs_root / "grpo"], tmp_path / "a", labels=["MaxRL", "GRPO"], band="minmax")
    table = pd.read_csv(tmp_path / "a" / "final_pass_at_k.csv")
    assert list(table["label"].unique()) == ["MaxRL", "GRPO"]

    # a regex that puts every run of one seed together: groups are seeds now, each with both estimators
    make_plots([runs_root], tmp_path / "b", label_by=r"(seed\d)")
    table = pd.read_csv(tmp_path / "b" / "final_pass_at_k.csv")
    row = table[(table["label"] == "seed0") & (table["k"] == 1)].iloc[0]
    assert row["pass_at_k_mean"] == pytest.approx((FINAL_PASS["maxrl", 0] + FINAL_PASS["grpo", 0]) / 2, rel=1e-5)


def test_label_key_from_json(runs_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for index, (estimator, seed) in enumerate(FINAL_PASS):
        run_dir = write_run(root / f"run{index}", estimator, seed)
        (run_dir.parent / "hparams.json").write_text(f'{{"estimator": "{estimator}", "seed": {seed}}}')
    make_plots([root], tmp_path / "out", label_key="estimator")
    assert sorted(pd.read_csv(tmp_path / "out" / "final_pass_at_k.csv")["label"].unique()) == ["grpo", "maxrl"]
    with pytest.raises(ValueError, match="--label-key 'lr'"):
        make_plots([root], tmp_path / "out2", label_key="lr")


def test_errors(runs_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one label per run directory"):
        make_plots([runs_root], tmp_path, labels=["a", "b"])
    with pytest.raises(ValueError, match="No TensorBoard event files"):
        make_plots([tmp_path], tmp_path / "out")
    with pytest.raises(ValueError, match="does not match the run path"):
        make_plots([runs_root], tmp_path / "out", label_by="nomatch")
    other = tmp_path / "other"
    writer = SummaryWriter(str(other))
    writer.add_scalar("train/loss", 1.0, 0)
    writer.close()
    with pytest.raises(ValueError, match="None of the 1 runs logged"):
        make_plots([other], tmp_path / "out")


def test_aggregate_mean_band_and_interpolation() -> None:
    a = pd.Series([0.0, 1.0, 2.0], index=[0, 10, 20])
    b = pd.Series([2.0, 3.0, 4.0], index=[0, 10, 20])
    curve = aggregate([a, b], band="std")
    assert curve is not None and curve.n_runs == 2
    np.testing.assert_allclose(curve.steps, [0, 10, 20])
    np.testing.assert_allclose(curve.mean, [1, 2, 3])
    np.testing.assert_allclose(curve.high - curve.low, [2, 2, 2])
    # different logging steps: interpolated on the union of steps inside the common range [5, 20]
    c = pd.Series([0.0, 2.0], index=[5, 25])
    curve = aggregate([a, c], band="minmax")
    assert curve is not None
    np.testing.assert_allclose(curve.steps, [5, 10, 20])
    np.testing.assert_allclose(curve.low, [0.0, 0.5, 1.5])
    np.testing.assert_allclose(curve.high, [0.5, 1.0, 2.0])
    assert aggregate([pd.Series(dtype=float)]) is None


def test_missing_plots_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tbparse", None)  # as if tbparse (the plots extra) were not installed
    monkeypatch.delitem(sys.modules, "sb3_maxrl.cli.plot")
    monkeypatch.setattr(sys, "argv", ["maxrl-plot", str(tmp_path), "--out", str(tmp_path)])
    expected = r"maxrl-plot needs 'tbparse', which is not installed: pip install \"sb3-maxrl\[plots\]\""
    with pytest.raises(SystemExit, match=expected):
        plot_main()


MAIN_JOB_KS = tuple(2**i for i in range(11))  # the strict-maze pipeline logs eval/pass@k for k = 1 .. 1024


def write_main_job(root: Path, index: int, seed: int, learning_rate: float, compare: Sequence[str]) -> None:
    """What ``maxrl-train --compare ...`` writes: the main run's events and summary.json, a subfolder per method."""
    run_dir = root / f"MaxRL_{index}"
    methods = ["maxrl", *compare]
    for method in methods:
        writer = SummaryWriter(str(run_dir if method == "maxrl" else run_dir / method))
        final = FINAL_PASS.get((method, seed), 0.4)
        for step in range(0, 60_001, 600):  # 100 updates: rollout curves long enough to need smoothing
            p = 0.05 + (final - 0.05) * step / 60_000
            writer.add_scalar("rollout/pass_rate", p, step)
            writer.add_scalar("rollout/frac_groups_all_fail", (1 - p) ** 8, step)
            if step % 12_000 == 0:
                for k in MAIN_JOB_KS:
                    writer.add_scalar(f"eval/pass@{k}", 1 - (1 - p) ** k, step)
                    writer.add_scalar(f"eval/neg_log_pass@{k}", -np.log(1 - (1 - p) ** k), step)
        writer.close()
    hyperparams = {"policy": "MlpPolicy", "learning_rate": learning_rate, "estimator": "maxrl", "recipe": {"size": 9}}
    runs = {method: {"run_dir": str(run_dir if method == "maxrl" else run_dir / method)} for method in methods}
    summary = {"env": "MaxRL/StrictMaze-9x9-v0", "seed": seed, "estimator": "maxrl", "compare": list(compare)}
    (run_dir / "summary.json").write_text(json.dumps({**summary, "hyperparams": hyperparams, "runs": runs}))


def test_main_job_runs_are_labelled_by_method_and_grouped_by_settings(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_main_job(root, 1, 0, 1e-3, ["grpo", "rloo"])
    write_main_job(root, 2, 1, 1e-3, ["grpo", "rloo"])
    write_main_job(root, 3, 0, 3e-3, [])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="maxrl-plot")  # seeds of equal settings: no warning
        files = make_plots([root], tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "final_pass_at_k.csv")
    n_runs = table.groupby("label", sort=False)["n_runs"].max().to_dict()
    assert n_runs == {"maxrl (learning_rate=0.001)": 2, "grpo": 2, "rloo": 2, "maxrl (learning_rate=0.003)": 1}
    assert sorted(table["k"].unique()) == list(MAIN_JOB_KS)  # the table and the vs-k figure keep every k
    for path in files:
        if path.suffix == ".png":
            assert_real_png(path)
            height, width = matplotlib.image.imread(path).shape[:2]
            assert width <= 1920 and height <= 1080, f"{path.name} is {width} x {height} px"
    assert plot_ks(MAIN_JOB_KS) == [1, 8, 128, 1024] and plot_ks([1, 2, 4]) == [1, 2, 4]

    # --label-key estimator reads the settings; grouping that mixes learning rates warns
    make_plots([root], tmp_path / "by_key", label_key="estimator")
    labels = pd.read_csv(tmp_path / "by_key" / "final_pass_at_k.csv")["label"].unique()
    assert sorted(labels) == ["grpo", "maxrl", "rloo"]
    with pytest.warns(UserWarning, match=r"the group 'maxrl' mixes runs whose settings differ in learning_rate"):
        make_plots([root], tmp_path / "warned", label_key="estimator")
    with pytest.raises(ValueError, match=r"--ks \[3\] were not evaluated"):
        make_plots([root], tmp_path / "bad", ks=[1, 3])


def test_compare_subfolders_are_not_averaged_into_the_main_run(tmp_path: Path) -> None:
    write_main_job(tmp_path / "runs", 1, 0, 1e-3, ["grpo", "rloo"])
    runs = load_runs([tmp_path / "runs"])
    assert sorted((run.path.name, run.label) for run in runs) == [("MaxRL_1", "maxrl"), ("grpo", "grpo"), ("rloo", "rloo")]
    assert auto_smooth(runs, ["rollout/pass_rate"]) == 4  # 101 points / 25
