"""maxrl-train: a tiny real run whose summary.json must equal the last evaluation in its event file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch as th
from tbparse import SummaryReader

from sb3_maxrl import MaxRL
from sb3_maxrl.cli.train import DEFAULT_ENV, DEFAULT_HYPERPARAMS, build_parser, main, resolve_hyperparams

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse on pandas >= 3


def test_cli_summary_matches_event_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "maxrl.yml"
    entry = ["env_wrapper: sb3_maxrl.StartStateWrapper", "group_size: 4", "n_groups: 3", "policy_kwargs: dict(net_arch=[16])"]
    config.write_text(f"{DEFAULT_ENV}:\n" + "".join(f"  {line}\n" for line in entry))
    argv = ["--timesteps", "1500", "--n-envs", "4", "--n-groups", "2", "--config", str(config), "--eval-freq", "800"]
    argv += ["--eval-start-states", "2", "--eval-samples", "4", "--log-dir", str(tmp_path / "runs"), "--no-progress"]
    main(argv)
    assert th.get_num_threads() == 1
    run_dir = tmp_path / "runs" / "MaxRL_1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["hyperparams"]["group_size"] == 4  # from the config
    assert summary["hyperparams"]["n_groups"] == 2  # the explicit flag wins over the config
    assert summary["eval_num_timesteps"] == summary["num_timesteps"] >= 1500  # the final policy is evaluated

    frame = SummaryReader(str(run_dir)).scalars
    evals = frame[frame["tag"].str.startswith("eval/")]
    assert evals["step"].nunique() >= 2  # periodic and final evaluation
    last = evals[evals["step"] == evals["step"].max()]
    assert int(evals["step"].max()) == summary["eval_num_timesteps"]
    logged = {tag.removeprefix("eval/"): value for tag, value in zip(last["tag"], last["value"], strict=True)}
    assert set(logged) == set(summary["eval"]) >= {"pass@1", "pass@4", "neg_log_pass@4", "mean_likelihood", "nll"}
    assert logged == pytest.approx(summary["eval"], rel=1e-6, abs=1e-7)

    printed = capsys.readouterr().out
    assert "pass@k" in printed and "-log pass@k" in printed
    model = MaxRL.load(run_dir / "model.zip")
    assert model.group_size == 4 and model.policy.net_arch == [16]


def test_hyperparams_precedence_and_config_errors(tmp_path: Path) -> None:
    parser = build_parser()
    assert resolve_hyperparams(parser.parse_args([])) == DEFAULT_HYPERPARAMS
    flat = tmp_path / "flat.yml"
    flat.write_text("n_timesteps: !!float 2e5\nestimator: rloo\nlearning_rate: 0.01\n")
    hyperparams = resolve_hyperparams(parser.parse_args(["--config", str(flat), "--estimator", "grpo"]))
    assert hyperparams["n_timesteps"] == 200_000 and isinstance(hyperparams["n_timesteps"], int)
    assert hyperparams["estimator"] == "grpo" and hyperparams["learning_rate"] == 0.01
    assert hyperparams["group_size"] == DEFAULT_HYPERPARAMS["group_size"]

    zoo = tmp_path / "zoo.yml"
    zoo.write_text("MaxRL/Maze-13x13-v0:\n  group_size: 32\n")
    with pytest.raises(ValueError, match=r"no entry for --env MaxRL/Maze-9x9-v0; its entries are \['MaxRL/Maze-13x13-v0'\]"):
        resolve_hyperparams(parser.parse_args(["--config", str(zoo)]))
    assert resolve_hyperparams(parser.parse_args(["--config", str(zoo), "--env", "MaxRL/Maze-13x13-v0"]))["group_size"] == 32
    normalized = tmp_path / "normalize.yml"
    normalized.write_text("normalize: true\n")
    with pytest.raises(ValueError, match="need rl-baselines3-zoo"):
        resolve_hyperparams(parser.parse_args(["--config", str(normalized)]))
