"""maxrl-train: a tiny real run whose summary.json must equal the last evaluation in its event file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch as th
from tbparse import SummaryReader

import sb3_maxrl
from sb3_maxrl import MaxRL
from sb3_maxrl.cli.train import DEFAULT_ENV, PACKAGED_CONFIG, RUN_DEFAULTS, build_parser, main, resolve_hyperparams
from sb3_maxrl.common.utils import signature_defaults

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
    maxrl_defaults = signature_defaults(MaxRL)
    assert summary["hyperparams"]["n_epochs"] == maxrl_defaults["n_epochs"]  # not given: MaxRL's own default
    assert summary["maxrl_kwargs_given"] == ["group_size", "n_groups", "policy_kwargs"]
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
    assert (model.n_epochs, model.batch_size) == (maxrl_defaults["n_epochs"], maxrl_defaults["batch_size"])


def test_hyperparams_precedence_and_config_errors(tmp_path: Path) -> None:
    parser = build_parser()
    assert resolve_hyperparams(parser.parse_args([])) == RUN_DEFAULTS  # no MaxRL hyperparameter of its own
    flat = tmp_path / "flat.yml"
    flat.write_text("n_timesteps: !!float 2e5\nestimator: rloo\nlearning_rate: 0.01\n")
    hyperparams = resolve_hyperparams(parser.parse_args(["--config", str(flat), "--estimator", "grpo"]))
    assert hyperparams["n_timesteps"] == 200_000 and isinstance(hyperparams["n_timesteps"], int)
    assert hyperparams["estimator"] == "grpo" and hyperparams["learning_rate"] == 0.01
    assert "group_size" not in hyperparams  # MaxRL's default applies

    zoo = tmp_path / "zoo.yml"
    zoo.write_text("MaxRL/Maze-13x13-v0:\n  group_size: 32\n")
    with pytest.raises(ValueError, match=r"no entry for --env MaxRL/Maze-9x9-v0; its entries are \['MaxRL/Maze-13x13-v0'\]"):
        resolve_hyperparams(parser.parse_args(["--config", str(zoo)]))
    assert resolve_hyperparams(parser.parse_args(["--config", str(zoo), "--env", "MaxRL/Maze-13x13-v0"]))["group_size"] == 32
    normalized = tmp_path / "normalize.yml"
    normalized.write_text("normalize: true\n")
    with pytest.raises(ValueError, match="need rl-baselines3-zoo"):
        resolve_hyperparams(parser.parse_args(["--config", str(normalized)]))


def test_help_shows_maxrl_defaults() -> None:
    defaults = signature_defaults(MaxRL)
    help_text = " ".join(build_parser().format_help().split())
    for flag, name in (("--group-size", "group_size"), ("--n-groups", "n_groups"), ("--learning-rate", "learning_rate")):
        assert f"{flag} {flag.strip('-').upper().replace('-', '_')}" in help_text
        assert f"(default: {defaults[name]})" in help_text


def test_config_without_a_file_is_the_packaged_zoo_config() -> None:
    assert PACKAGED_CONFIG.is_file() and PACKAGED_CONFIG.parent.parent == Path(sb3_maxrl.__file__).parent
    parser = build_parser()
    hyperparams = resolve_hyperparams(parser.parse_args(["--config", "--env", "MaxRL/Regression-v0", "--n-envs", "4"]))
    assert hyperparams["n_epochs"] == 1 and hyperparams["learning_rate"] == pytest.approx(1e-2)  # the zoo entry
    assert hyperparams["n_envs"] == 4 and hyperparams["n_timesteps"] == 100_000
    assert "env_wrapper" not in hyperparams  # maxrl-train adds StartStateWrapper itself
    with pytest.raises(ValueError, match="no such file"):
        resolve_hyperparams(parser.parse_args(["--config", "missing.yml"]))
