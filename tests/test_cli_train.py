"""maxrl-train: tiny real runs whose summary.json must equal what their event files hold.

The strict-maze pipeline (the default main job): behaviour cloning to a weak base, MaxRL (and a compared
estimator) from that base, exact held-out pass@k in TensorBoard and the table against the base. Other envs: MaxRL
with sampled pass@k.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch as th
from tbparse import SummaryReader

import sb3_maxrl
from sb3_maxrl import MaxRL
from sb3_maxrl.cli.train import (
    DEFAULT_ENV,
    PACKAGED_CONFIG,
    RUN_DEFAULTS,
    build_parser,
    check_flags,
    main,
    protocol_recipe,
    resolve_hyperparams,
    resolve_strict_maze_settings,
    train,
)
from sb3_maxrl.common.exact_evaluation import sample_efficiency_ratio
from sb3_maxrl.common.utils import signature_defaults
from sb3_maxrl.experiments.pipeline import run_protocol, strict_maze_task
from sb3_maxrl.experiments.strict_mazes import RECIPES, TABLE_KS, layout_sets, paper_update
from sb3_maxrl_envs.strict_maze import exact_pass_at_k, exact_success_probabilities

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse on pandas >= 3
MAZE = "MaxRL/Maze-9x9-v0"


def scalars_of(run_dir: Path) -> dict[str, pd.Series]:
    """``{tag: values by step}`` of the event files directly in ``run_dir`` (not in its subfolders)."""
    frames = [SummaryReader(str(path)).scalars for path in run_dir.glob("events.out.tfevents.*")]
    frame = pd.concat(frames)
    return {str(tag): group.set_index("step")["value"].sort_index() for tag, group in frame.groupby("tag")}


def test_strict_maze_pipeline_logs_bc_and_exact_eval_and_tabulates_base_against_fine_tuned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert DEFAULT_ENV == "MaxRL/StrictMaze-9x9-v0"
    # 32 mazes x 4 episodes (the recipe's N) per update: a base at pass@1 ~ 1% succeeds about once per update (an
    # update without a success is skipped)
    argv = ["--updates", "5", "--n-groups", "32", "--compare", "grpo", "--eval-freq", "1000"]
    argv += ["--eval-start-states", "32", "--train-mazes", "300", "--log-dir", str(tmp_path / "runs"), "--no-progress"]
    argv += ["--verbose", "0"]
    main(argv)
    assert th.get_num_threads() == 1
    run_dir = tmp_path / "runs" / "MaxRL_1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env"] == DEFAULT_ENV and summary["updates"] == 5 and summary["compare"] == ["grpo"]
    assert summary["hyperparams"]["n_groups"] == 32 and summary["hyperparams"]["n_envs"] == 32 * RECIPES[9].group_size
    assert summary["hyperparams"]["group_size"] == RECIPES[9].group_size  # the recipe's
    assert summary["hyperparams"]["learning_rate"] == RECIPES[9].default_learning_rates[0]
    assert summary["hyperparams"]["n_epochs"] == RECIPES[9].n_epochs == 4  # the recipe's: PPO-style reuse
    assert summary["hyperparams"]["clip_range"] == RECIPES[9].clip_range == 0.2
    assert summary["layouts"] == {"train": 300, "validation": 32, "test": 32}

    # the table: base and every method, pass@k and -log pass@k at the table's ks; fine-tuning changed the policy
    row_keys = {f"{metric}@{k}" for metric in ("pass", "neg_log_pass") for k in TABLE_KS}
    assert summary["table_ks"] == list(TABLE_KS) == [1, 16, 64, 1024]
    assert list(summary["table"]) == ["base", "maxrl", "grpo"]
    assert all(set(row) == row_keys for row in summary["table"].values())
    base, maxrl, grpo = (summary["table"][name] for name in ("base", "maxrl", "grpo"))
    assert all(maxrl[key] != base[key] and grpo[key] != base[key] for key in row_keys)
    for row in (base, maxrl, grpo):
        assert 0 < row["pass@1"] < row["pass@16"] < row["pass@64"] < row["pass@1024"] <= 1

    # the SFT stage in the run folder: bc/loss per step, bc/pass@1 (validation) from step 0 to the stop
    scalars = scalars_of(run_dir)
    cloning = summary["behavior_cloning"]
    assert list(scalars["bc/loss"].index) == list(range(1, cloning["steps"] + 1))
    assert list(scalars["bc/pass@1"].index) == list(range(cloning["steps"] + 1))
    assert scalars["bc/pass@1"].iloc[-1] == pytest.approx(cloning["validation_pass@1"], rel=1e-6)
    assert cloning["stopped_at_target"] and cloning["validation_pass@1"] >= cloning["target"] == 0.01
    assert scalars["bc/pass@1"].iloc[:-1].max() < 0.01, "cloning stops at the first evaluation reaching the target"

    # exact held-out eval/ from the base (timestep 0) through periodic evaluations to the final policy
    evals = {tag.removeprefix("eval/"): series for tag, series in scalars.items() if tag.startswith("eval/")}
    assert {"pass@1", "pass@1024", "neg_log_pass@64", "nll", "mean_likelihood"} <= set(evals)
    steps = list(evals["pass@1"].index)
    assert steps[0] == 0 and len(steps) >= 3 and steps[-1] == summary["eval_num_timesteps"] == summary["num_timesteps"]
    assert {name: float(series[0]) for name, series in evals.items()} == pytest.approx(summary["base_eval"], rel=1e-6)
    assert {name: float(series.iloc[-1]) for name, series in evals.items()} == pytest.approx(summary["eval"], rel=1e-6)
    assert {key: summary["eval"][key] for key in row_keys} == pytest.approx(maxrl, rel=1e-12)
    assert "rollout/pass_rate" in scalars and "train/skipped_zero_advantage" in scalars

    # the compared estimator: its own run folder, the same base at timestep 0
    compared = scalars_of(run_dir / "grpo")
    assert not any(tag.startswith("bc/") for tag in compared)
    assert compared["eval/pass@64"].iloc[0] == pytest.approx(base["pass@64"], rel=1e-6)
    assert compared["eval/pass@64"].iloc[-1] == pytest.approx(grpo["pass@64"], rel=1e-6)

    # the saved model is the fine-tuned policy: its exact held-out values are the table's
    model = MaxRL.load(run_dir / "model.zip", device="cpu")
    assert model.estimator == "maxrl" and model.policy.net_arch == [128, 128]
    test_mazes = np.load(run_dir / "pass_at_k_evaluations.npz")["start_seeds"].tolist()
    assert test_mazes == layout_sets(9, 32, 300).test
    assert exact_pass_at_k(model, 9, test_mazes, TABLE_KS).pass_at_k[64] == pytest.approx(maxrl["pass@64"], rel=1e-9)
    assert (run_dir / "best_model.zip").is_file() and (run_dir / "grpo" / "model.zip").is_file()

    # the test-time sample-efficiency ratio against each compared estimator, from the saved policies' exact curves
    grpo_model = MaxRL.load(run_dir / "grpo" / "model.zip", device="cpu")
    expected = sample_efficiency_ratio(
        exact_success_probabilities(model, 9, test_mazes), exact_success_probabilities(grpo_model, 9, test_mazes), k=64
    )
    assert summary["sample_efficiency_at_64"] == pytest.approx({"grpo": expected}, rel=1e-6)

    printed = capsys.readouterr().out
    assert "-log pass@k" in printed and "grpo" in printed and "base" in printed
    assert "reaches grpo's pass@64 with" in printed


def test_the_strict_maze_main_job_is_run_protocol_with_its_recipe(tmp_path: Path) -> None:
    """The main job and run_protocol are one pipeline: the same mazes, base and fine-tuned policies, to the digit."""
    th.set_num_threads(1)
    argv = ["--updates", "4", "--n-groups", "32", "--compare", "grpo", "--eval-start-states", "32", "--train-mazes", "300"]
    argv += ["--eval-freq", "0", "--log-dir", str(tmp_path), "--no-progress", "--verbose", "0"]
    args = build_parser().parse_args(argv)
    summary = train(args)
    recipe, _ = resolve_strict_maze_settings(args)
    result = run_protocol(strict_maze_task(9), recipe, ["maxrl", "grpo"], seeds=[args.seed], verbose=0)
    assert result.summary["start_states"] == summary["layouts"] == {"train": 300, "validation": 32, "test": 32}
    run = result.summary["runs"][0]
    assert run["bc_steps"] == summary["behavior_cloning"]["steps"] >= 1
    assert run["bc_validation_pass_at_1"][-1][1] == pytest.approx(summary["behavior_cloning"]["validation_pass@1"], rel=1e-12)
    rows = {row["method"]: row for row in result.rows}
    assert list(rows) == list(summary["table"]) == ["base", "maxrl", "grpo"]
    for method, expected in summary["table"].items():
        assert {key: rows[method][key] for key in expected} == pytest.approx(expected, rel=1e-9), method
    for method in ("maxrl", "grpo"):
        assert rows[method]["timesteps"] == summary["runs"][method]["num_timesteps"] > 0
        assert rows[method]["pass@64"] != rows["base"]["pass@64"], "fine-tuning changed the policy"


def test_cli_summary_matches_event_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "maxrl.yml"
    entry = ["env_wrapper: sb3_maxrl.StartStateWrapper", "group_size: 4", "n_groups: 3", "policy_kwargs: dict(net_arch=[16])"]
    config.write_text(f"{MAZE}:\n" + "".join(f"  {line}\n" for line in entry))
    argv = ["--env", MAZE, "--timesteps", "1500", "--n-envs", "4", "--n-groups", "2", "--config", str(config)]
    argv += ["--eval-freq", "800", "--eval-start-states", "2", "--eval-samples", "4", "--log-dir", str(tmp_path / "runs")]
    main([*argv, "--no-progress"])
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
    assert resolve_hyperparams(parser.parse_args(["--env", MAZE])) == RUN_DEFAULTS  # no MaxRL hyperparameter of its own
    flat = tmp_path / "flat.yml"
    flat.write_text("n_timesteps: !!float 2e5\nestimator: rloo\nlearning_rate: 0.01\n")
    hyperparams = resolve_hyperparams(parser.parse_args(["--env", MAZE, "--config", str(flat), "--estimator", "grpo"]))
    assert hyperparams["n_timesteps"] == 200_000 and isinstance(hyperparams["n_timesteps"], int)
    assert hyperparams["estimator"] == "grpo" and hyperparams["learning_rate"] == 0.01
    assert "group_size" not in hyperparams  # MaxRL's default applies

    zoo = tmp_path / "zoo.yml"
    zoo.write_text("MaxRL/Maze-13x13-v0:\n  group_size: 32\n")
    with pytest.raises(ValueError, match=r"no entry for --env MaxRL/Maze-9x9-v0; its entries are \['MaxRL/Maze-13x13-v0'\]"):
        resolve_hyperparams(parser.parse_args(["--env", MAZE, "--config", str(zoo)]))
    assert resolve_hyperparams(parser.parse_args(["--config", str(zoo), "--env", "MaxRL/Maze-13x13-v0"]))["group_size"] == 32
    normalized = tmp_path / "normalize.yml"
    normalized.write_text("normalize: true\n")
    with pytest.raises(ValueError, match="need rl-baselines3-zoo"):
        resolve_hyperparams(parser.parse_args(["--env", MAZE, "--config", str(normalized)]))


def test_strict_maze_settings_precedence(tmp_path: Path) -> None:
    parser = build_parser()
    recipe, hyperparams = resolve_strict_maze_settings(parser.parse_args([]))
    assert recipe == RECIPES[9]
    assert hyperparams == {"policy": "MlpPolicy", "estimator": "maxrl", "n_envs": 256, **RECIPES[9].maxrl_kwargs()}
    config = tmp_path / "strict.yml"
    config.write_text("MaxRL/StrictMaze-13x13-v0:\n  learning_rate: 0.002\n  group_size: 8\n  ent_coef: 0.01\n")
    argv = ["--env", "MaxRL/StrictMaze-13x13-v0", "--config", str(config), "--group-size", "4", "--updates", "7"]
    recipe, hyperparams = resolve_strict_maze_settings(parser.parse_args([*argv, "--estimator", "rloo"]))
    assert (recipe.updates, recipe.group_size, recipe.n_groups) == (7, 4, RECIPES[13].n_groups)
    assert hyperparams["learning_rate"] == 0.002 and hyperparams["ent_coef"] == 0.01  # the config over the recipe
    assert hyperparams["group_size"] == 4 and hyperparams["estimator"] == "rloo"  # the flags over the config
    assert hyperparams["n_envs"] == 4 * RECIPES[13].n_groups
    # the recipe records the run's settings (summary.json's "recipe", and run_protocol's with --compare ... ppo)
    assert recipe.default_learning_rates == (0.002,) and recipe.n_envs == hyperparams["n_envs"]
    assert recipe.maxrl_kwargs() == {key: hyperparams[key] for key in recipe.maxrl_kwargs()}


def test_the_paper_update_is_one_flag_away() -> None:
    parser = build_parser()
    recipe, hyperparams = resolve_strict_maze_settings(parser.parse_args(["--paper-update"]))
    assert recipe == paper_update(RECIPES[9], 9)
    assert (hyperparams["n_epochs"], hyperparams["clip_range"]) == (1, None)  # one plain on-policy step per update
    assert (hyperparams["group_size"], hyperparams["n_groups"], hyperparams["n_envs"]) == (16, 16, 256)
    assert (recipe.updates, recipe.n_train) == (RECIPES[9].updates, RECIPES[9].n_train)  # the same budget and mazes
    with pytest.raises(ValueError, match=r"--paper-update applies only to the strict-maze pipeline .* not to training"):
        check_flags(parser.parse_args(["--env", "MaxRL/Maze-9x9-v0", "--paper-update"]))


def test_a_minigrid_protocol_gives_the_family_ppos_update_and_the_paper_update_on_request() -> None:
    parser = build_parser()
    lava = ["--env", "MiniGrid-LavaCrossingS9N2-v0", "--compare", "ppo"]
    recipe, estimator = protocol_recipe(parser.parse_args(lava))
    family = (recipe.n_epochs, recipe.batch_size, recipe.clip_range)
    assert family == (recipe.ppo_n_epochs, recipe.ppo_batch_size, recipe.ppo_clip_range) == (4, 256, 0.2)
    assert estimator == "maxrl"
    paper, _ = protocol_recipe(parser.parse_args([*lava, "--paper-update", "--timesteps", "5000"]))
    assert (paper.n_epochs, paper.batch_size, paper.clip_range, paper.timesteps) == (1, None, None, 5000)
    assert replace(paper, n_epochs=4, batch_size=256, clip_range=0.2, timesteps=recipe.timesteps) == recipe
    check_flags(parser.parse_args([*lava, "--paper-update"]))  # the protocol takes it: no error
    flags = ["--group-size", "4", "--n-groups", "32", "--n-envs", "16", "--learning-rate", "3e-4", "--estimator", "grpo"]
    changed, estimator = protocol_recipe(parser.parse_args([*lava, *flags]))
    assert (changed.group_size, changed.n_groups, changed.n_envs, changed.default_learning_rates) == (4, 32, 16, (3e-4,))
    assert estimator == "grpo"
    with pytest.raises(ValueError, match="--config, --eval-samples cannot reach the protocol run"):
        protocol_recipe(parser.parse_args([*lava, "--config", "--eval-samples", "8"]))


def test_strict_maze_flags_and_their_errors(tmp_path: Path) -> None:
    parser = build_parser()
    log_dir = ["--log-dir", str(tmp_path / "runs")]
    # flags of the other pipeline are refused before any work, naming what to use instead
    for argv, match in [
        (["--timesteps", "1000"], "^--timesteps does not apply to the strict-maze pipeline"),
        (["--eval-samples", "8", "--env-kwargs", "a=1"], "^--eval-samples, --env-kwargs do not apply"),
        (["--train-start-states", "8"], "--train-start-states does not apply"),
        (["--env", MAZE, "--updates", "10"], "^--updates applies only to the strict-maze pipeline"),
        (["--env", MAZE, "--compare", "grpo"], "^--compare runs the paper.s weak-base protocol, which needs an expert"),
        (["--env", MAZE, "--updates", "5"], "^--updates applies only .* use --timesteps for its budget"),
        (["--env", MAZE, "--train-mazes", "100", "--updates", "3"], "^--updates, --train-mazes apply only"),
    ]:
        with pytest.raises(ValueError, match=match):
            train(parser.parse_args([*argv, *log_dir]))
    with pytest.raises(SystemExit):  # the command line reports it as a usage error
        main(["--timesteps", "1000", *log_dir])
    with pytest.raises(ValueError, match="packaged zoo config has no strict-maze entries"):
        train(parser.parse_args(["--config", *log_dir]))
    with pytest.raises(ValueError, match="repeats the main run's estimator"):
        train(parser.parse_args(["--compare", "maxrl", "grpo", *log_dir]))
    timesteps_config = tmp_path / "timesteps.yml"
    timesteps_config.write_text("n_timesteps: 1000\n")
    with pytest.raises(ValueError, match="budget is --updates"):
        train(parser.parse_args(["--config", str(timesteps_config), *log_dir]))
    with pytest.raises(ValueError, match="is not a registered strict maze"):
        train(parser.parse_args(["--env", "MaxRL/StrictMaze-11x11-v0", *log_dir]))
    assert not (tmp_path / "runs").exists(), "no run folder for a refused command"


def test_help_shows_maxrl_defaults() -> None:
    defaults = signature_defaults(MaxRL)
    help_text = " ".join(build_parser().format_help().split())
    for flag, name in (("--group-size", "group_size"), ("--n-groups", "n_groups"), ("--learning-rate", "learning_rate")):
        assert f"{flag} {flag.strip('-').upper().replace('-', '_')}" in help_text
        recipe_value = RECIPES[9].default_learning_rates[0] if name == "learning_rate" else getattr(RECIPES[9], name)
        assert f"(default: {defaults[name]}; strict mazes: the recipe's, {recipe_value} on 9x9)" in help_text


def test_config_without_a_file_is_the_packaged_zoo_config() -> None:
    assert PACKAGED_CONFIG.is_file() and PACKAGED_CONFIG.parent.parent == Path(sb3_maxrl.__file__).parent
    parser = build_parser()
    hyperparams = resolve_hyperparams(parser.parse_args(["--config", "--env", "MaxRL/Regression-v0", "--n-envs", "4"]))
    assert hyperparams["n_epochs"] == 1 and hyperparams["learning_rate"] == pytest.approx(1e-2)  # the zoo entry
    assert hyperparams["n_envs"] == 4 and hyperparams["n_timesteps"] == 100_000
    assert "env_wrapper" not in hyperparams  # maxrl-train adds StartStateWrapper itself
    with pytest.raises(ValueError, match="no such file"):
        resolve_hyperparams(parser.parse_args(["--config", "missing.yml"]))


TINY_RUN = ["--timesteps", "200", "--n-envs", "2", "--group-size", "2", "--n-groups", "2", "--eval-freq", "0"]
TINY_RUN += ["--eval-start-states", "2", "--eval-samples", "2", "--no-progress", "--verbose", "0"]


def test_a_raw_minigrid_id_trains_from_the_cli_and_deploys_on_the_raw_env(tmp_path: Path) -> None:
    import gymnasium as gym

    from sb3_maxrl_envs import encode_observation, make_minigrid

    env_id = "MiniGrid-Empty-5x5-v0"
    main(["--env", env_id, *TINY_RUN, "--log-dir", str(tmp_path / "runs")])
    run_dir = tmp_path / "runs" / "MaxRL_1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env"] == env_id and summary["num_timesteps"] >= 200 and set(summary["eval"]) >= {"pass@1", "pass@2"}
    model = MaxRL.load(run_dir / "model.zip")
    task = make_minigrid(env_id)
    assert model.observation_space == task.observation_space and model.action_space == task.action_space
    # deployment: an observation of the raw env, encoded, is the task's observation
    raw_observation, _ = gym.make(env_id).reset(seed=3)
    task_observation, _ = task.reset(seed=3)
    assert np.array_equal(encode_observation(raw_observation), task_observation)
    assert (
        model.predict(encode_observation(raw_observation), deterministic=True)[0]
        == model.predict(task_observation, deterministic=True)[0]
    )


def test_the_minigrid_wrapper_id_takes_its_env_id_from_env_kwargs(tmp_path: Path) -> None:
    argv = ["--env", "MaxRL/MiniGrid-v0", "--env-kwargs", "env_id=MiniGrid-Empty-5x5-v0", "nav_actions=true", *TINY_RUN]
    main([*argv, "--log-dir", str(tmp_path / "runs")])
    run_dir = tmp_path / "runs" / "MaxRL_1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["hyperparams"]["env_kwargs"] == {"env_id": "MiniGrid-Empty-5x5-v0", "nav_actions": True}
    assert MaxRL.load(run_dir / "model.zip").action_space.n == 3  # nav_actions reached the env
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        resolve_hyperparams(build_parser().parse_args(["--env", "MaxRL/MiniGrid-v0", "--env-kwargs", "env_id"]))


def test_a_minigrid_config_entry_becomes_env_kwargs() -> None:
    args = build_parser().parse_args(["--config", "--env", "MiniGrid-Empty-Random-5x5-v0"])
    hyperparams = resolve_hyperparams(args)
    assert hyperparams["env_kwargs"] == {"nav_actions": True} and "env_wrapper" not in hyperparams


@pytest.mark.filterwarnings("error::UserWarning")
def test_an_env_with_start_state_identities_trains_on_seeds_disjoint_from_the_held_out_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sb3_maxrl.cli import train as train_module
    from sb3_maxrl.common.env_ids import make_env

    # the README's command on a perfect maze: no start_state_key warning, because the training set is held out
    monkeypatch.setattr(train_module, "DEFAULT_TRAIN_START_STATES", 40)
    main(["--env", MAZE, *TINY_RUN, "--log-dir", str(tmp_path / "runs")])
    run_dir = tmp_path / "runs" / "MaxRL_1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["hyperparams"]["train_seeds"] == "40 start seeds disjoint from the held-out ones"
    model = MaxRL.load(run_dir / "model.zip")
    assert model.train_seeds is not None and len(model.train_seeds) == 40
    maze = make_env(MAZE).unwrapped
    held_out = {maze.start_state_key(seed) for seed in sb3_maxrl.default_eval_seeds(2)}
    assert not held_out & {maze.start_state_key(seed) for seed in model.train_seeds}
    main(["--env", MAZE, *TINY_RUN, "--train-start-states", "8", "--log-dir", str(tmp_path / "runs")])
    assert len(MaxRL.load(tmp_path / "runs" / "MaxRL_2" / "model.zip").train_seeds) == 8


def test_a_minigrid_id_with_compare_runs_the_weak_base_protocol_with_ppo(tmp_path: Path, capsys) -> None:
    argv = ["--env", "MiniGrid-LavaCrossingS9N2-v0", "--compare", "grpo", "ppo", "--timesteps", "2000"]
    main([*argv, "--log-dir", str(tmp_path), "--verbose", "0"])
    run_dir = tmp_path / "protocol_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "MiniGrid-LavaCrossingS9N2-v0" and summary["methods"] == ["maxrl", "grpo", "ppo"]
    assert summary["exact"]  # deterministic navigation: exact pass@k by dynamic programming
    printed = capsys.readouterr().out
    assert all(f"| {method} |" in printed for method in ("base", "maxrl", "grpo", "ppo"))
    assert (run_dir / "table.csv").is_file() and (run_dir / "neg_log_pass_at_k.png").is_file()


def test_a_strict_maze_with_ppo_runs_the_protocol_with_the_main_jobs_recipe(tmp_path: Path) -> None:
    argv = ["--compare", "ppo", "--paper-update", "--updates", "2", "--n-groups", "8", "--eval-start-states", "16"]
    main([*argv, "--train-mazes", "200", "--log-dir", str(tmp_path), "--verbose", "0"])
    summary = json.loads((tmp_path / "protocol_0" / "summary.json").read_text())
    assert summary["task"] == DEFAULT_ENV and summary["methods"] == ["maxrl", "ppo"] and summary["exact"]
    assert summary["start_states"] == {"train": 200, "validation": 16, "test": 16}
    recipe = summary["recipe"]  # the flags reach the protocol: the paper's update, 8 mazes x 16 episodes, 2 updates
    assert (recipe["updates"], recipe["n_groups"], recipe["group_size"], recipe["n_epochs"]) == (2, 8, 16, 1)
    assert recipe["n_envs"] == 128 and list(recipe["ks"]) == list(TABLE_KS)
    maxrl, ppo = (row for row in summary["table"] if row["method"] != "base")
    assert 0 < maxrl["timesteps"] <= 2 * 8 * 16 * 36 and ppo["method"] == "ppo"  # 2 updates, <= 36 moves an episode


def test_settings_the_protocol_would_drop_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "maxrl.yml"
    config.write_text("ent_coef: 0.01\nn_epochs: 2\n")
    parser = build_parser()
    with pytest.raises(ValueError, match=r"\['ent_coef'\] cannot reach the protocol run of --compare ppo"):
        protocol_recipe(parser.parse_args(["--compare", "ppo", "--config", str(config)]))
    config.write_text("n_epochs: 2\nestimator: grpo\n")  # a recipe setting, and the main run's estimator, reach it
    recipe, estimator = protocol_recipe(parser.parse_args(["--compare", "ppo", "--config", str(config)]))
    assert recipe.n_epochs == 2 and estimator == "grpo"
    config.write_text("policy_kwargs: dict(net_arch=[32], ortho_init=False)\n")
    with pytest.raises(ValueError, match=r"\['policy_kwargs'\] cannot reach"):
        protocol_recipe(parser.parse_args(["--compare", "ppo", "--config", str(config)]))


def test_compare_without_an_expert_says_what_the_protocol_needs() -> None:
    parser = build_parser()
    with pytest.raises(ValueError, match="needs an expert, and none is known for CartPole-v1"):
        check_flags(parser.parse_args(["--env", "CartPole-v1", "--compare", "grpo"]))
