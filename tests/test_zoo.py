"""maxrl-zoo: real rl-zoo3 training, enjoy and Optuna runs with MaxRL, the sampler, and the shipped zoo configs."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from stable_baselines3.common.env_util import make_vec_env
from torch import nn

import sb3_maxrl
import sb3_maxrl_envs
from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.cli import zoo_main
from sb3_maxrl.cli.plot import find_run_dirs, read_scalars
from sb3_maxrl.cli.zoo import (
    CONFIG_DIR,
    _make_experiment_manager_class,
    _with_start_state_wrapper,
    check_storage_args,
    convert_maxrl_params,
    default_config,
    main,
    register_maxrl,
    sample_maxrl_params,
)
from sb3_maxrl.common.utils import signature_defaults

MINIGRID_IDS = ("MiniGrid-Empty-Random-5x5-v0", "MiniGrid-DoorKey-5x5-v0", "MiniGrid-FourRooms-v0")
#: keys rl-zoo3 consumes itself instead of passing them to the algorithm
ZOO_KEYS = {"n_envs", "n_timesteps", "env_wrapper", "env_kwargs", "normalize", "policy"}


def load_config(name: str) -> dict:
    with open(CONFIG_DIR / name) as file:
        return yaml.safe_load(file)


def run_zoo(argv: list[str]) -> None:
    saved_argv = sys.argv
    main(argv)
    assert sys.argv is saved_argv, "the launcher must restore sys.argv"


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse 0.0.9 on pandas 3
def test_train_then_load_and_enjoy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rl_zoo3.train
    from rl_zoo3.exp_manager import ExperimentManager

    # no -conf: the launcher reads zoo_configs/maxrl.yml; --pass-at-k-freq adds the pass@k evaluation
    common = ["--algo", "maxrl", "--env", "MaxRL/Regression-v0", "-f", str(tmp_path)]
    train_args = ["-n", "2000", "--seed", "1", "--num-threads", "1", "--eval-freq", "1000", "--eval-episodes", "4"]
    pass_at_k_args = ["--pass-at-k-freq", "1000", "--pass-at-k-start-states", "4", "--pass-at-k-samples", "8"]
    train_args += ["-tb", str(tmp_path / "tb"), "-params", "group_size:4", "n_groups:8"]
    run_zoo(["train", *common, *train_args, *pass_at_k_args])
    assert rl_zoo3.train.ExperimentManager is ExperimentManager, "the launcher must restore rl-zoo3's ExperimentManager"
    out = capsys.readouterr().out
    assert f"Loading hyperparameters from: {CONFIG_DIR / 'maxrl.yml'}" in out
    run_dir = tmp_path / "maxrl" / "MaxRL-Regression-v0_1"
    model_path = run_dir / "MaxRL-Regression-v0.zip"
    assert model_path.is_file() and (run_dir / "best_model.zip").is_file()
    model = MaxRL.load(model_path, device="cpu")
    config = load_config("maxrl.yml")["MaxRL/Regression-v0"]
    assert (model.group_size, model.n_groups, model.estimator) == (4, 8, "maxrl_general")  # continuous likelihoods
    assert model.lr_schedule(1.0) == pytest.approx(config["learning_rate"])  # rl-zoo3 makes it a ConstantSchedule
    assert model.num_timesteps >= 2000
    assert model.policy.net_arch == [64, 64]
    # the EvalCallback ran twice (every 1000 steps, counted over the 16 envs) and the policy predicts in range
    evaluations = np.load(run_dir / "evaluations.npz")
    assert evaluations["results"].shape == (2, 4)
    action, _ = model.predict(np.array([0.5], dtype=np.float32), deterministic=True)
    assert action.shape == (1,) and -1 <= action[0] <= 1
    # pass@k every 1000 steps and at the end, in TensorBoard (for maxrl-plot) and in <run>/pass_at_k/
    pass_at_k = np.load(run_dir / "pass_at_k" / "pass_at_k_evaluations.npz")
    assert list(pass_at_k["ks"]) == [1, 2, 4, 8] and pass_at_k["pass_at_k"].shape == (3, 4)
    (tb_run,) = find_run_dirs(tmp_path / "tb")
    scalars, _ = read_scalars(tb_run)
    assert list(scalars["eval/pass@1"].index) == list(pass_at_k["timesteps"])
    np.testing.assert_allclose(scalars["eval/neg_log_pass@8"], pass_at_k["neg_log_pass_at_k"][:, 3], rtol=1e-6)
    assert len(scalars["rollout/pass_rate"]) >= 2

    run_zoo(["enjoy", *common, "--no-render", "-n", "30"])
    out = capsys.readouterr().out
    assert f"Loading {model_path}" in out
    assert "30 Episodes" in out and "Mean reward:" in out


def test_start_state_wrapper_is_injected_and_optimize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a config that forgets StartStateWrapper: MaxRL would refuse the VecEnv, the launcher adds the wrapper
    config = tmp_path / "digits.yml"
    config.write_text(
        "MaxRL/Digits-v0:\n  n_envs: 4\n  n_timesteps: 256\n  policy: MlpPolicy\n  group_size: 4\n  n_groups: 8\n"
        "  estimator: rloo\n"
    )
    common = ["--algo", "maxrl", "--env", "MaxRL/Digits-v0", "-conf", str(config), "-f", str(tmp_path)]
    common += ["--seed", "0", "--num-threads", "1"]
    run_zoo(["train", *common, "--eval-freq", "-1"])
    model = MaxRL.load(tmp_path / "maxrl" / "MaxRL-Digits-v0_1" / "MaxRL-Digits-v0.zip")
    assert model.estimator == "rloo" and model.num_timesteps >= 256
    saved = (tmp_path / "maxrl" / "MaxRL-Digits-v0_1" / "MaxRL-Digits-v0" / "config.yml").read_text()
    assert "env_wrapper" not in saved, "the saved config is the user's, not the launcher's"

    # a real Optuna study of 2 tiny trials through rl-zoo3's objective with sample_maxrl_params
    optimize_args = ["-n", "64", "--n-trials", "2", "--n-evaluations", "1", "--eval-episodes", "4", "--no-optim-plots"]
    run_zoo(["optimize", *common, *optimize_args])
    capsys.readouterr()
    reports = list((tmp_path / "maxrl").glob("report_MaxRL-Digits-v0_2-trials-64-*.csv"))
    assert len(reports) == 1
    trials = pd.read_csv(reports[0])
    assert len(trials) == 2 and set(trials["state"]) == {"COMPLETE"}
    assert {"params_group_size", "params_n_groups", "params_learning_rate"} <= set(trials.columns)
    assert trials["value"].between(0, 1).all()


def test_config_env_kwargs_reach_the_eval_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # MaxRL/MiniGrid-v0 needs its env_kwargs (env_id=...) in the eval env too, which rl-zoo3 alone does not pass
    args = ["--algo", "maxrl", "--env", "MaxRL/MiniGrid-v0", "-f", str(tmp_path), "-n", "64", "--seed", "0"]
    args += ["--eval-freq", "32", "--eval-episodes", "1", "-params", "n_envs:2", "group_size:2", "n_groups:2"]
    run_zoo(["train", *args])
    capsys.readouterr()
    run_dir = tmp_path / "maxrl" / "MaxRL-MiniGrid-v0_1"
    assert np.load(run_dir / "evaluations.npz")["results"].shape[0] >= 1
    assert MaxRL.load(run_dir / "MaxRL-MiniGrid-v0.zip").action_space.n == 3  # nav_actions from env_kwargs


@pytest.mark.parametrize("n_envs", [1, 64])
def test_sampler_returns_valid_maxrl_kwargs(n_envs: int) -> None:
    params = {
        "group_size": 4,
        "n_groups": 2,
        "learning_rate": 3e-3,
        "max_grad_norm": 0.5,
        "ent_coef": 1e-4,
        "net_arch": "tiny",
        "activation_fn": "relu",
    }
    trial = optuna.trial.FixedTrial(params)
    kwargs = sample_maxrl_params(trial, n_actions=0, n_envs=n_envs, additional_args={})
    assert kwargs == {
        "group_size": 4,
        "n_groups": max(2, n_envs // 4),  # at least n_envs episodes per update
        "learning_rate": 3e-3,
        "max_grad_norm": 0.5,
        "ent_coef": 1e-4,
        "policy_kwargs": {"net_arch": [64], "activation_fn": nn.ReLU},
    }
    assert convert_maxrl_params(params) == {**kwargs, "n_groups": 2}
    env = make_vec_env("MaxRL/Digits-v0", n_envs=2, wrapper_class=StartStateWrapper)
    model = MaxRL("MlpPolicy", env, **kwargs)
    assert model.policy.net_arch == [64] and model.policy.activation_fn is nn.ReLU


def test_sampler_in_a_real_study() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    signature = set(inspect.signature(MaxRL).parameters)
    for _ in range(20):
        trial = study.ask()
        kwargs = sample_maxrl_params(trial, n_actions=0, n_envs=16, additional_args={})
        assert set(kwargs) <= signature
        assert kwargs["group_size"] >= 2 and kwargs["n_groups"] * kwargs["group_size"] >= 16
        assert 1e-4 <= kwargs["learning_rate"] <= 3e-2 and kwargs["max_grad_norm"] > 0
        study.tell(trial, 0.0)


def test_registration() -> None:
    import rl_zoo3
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    register_maxrl()
    assert rl_zoo3.ALGOS["maxrl"] is MaxRL
    assert HYPERPARAMS_SAMPLER["maxrl"] is sample_maxrl_params
    assert HYPERPARAMS_CONVERTER["maxrl"] is convert_maxrl_params
    assert "MiniGrid-DoorKey-5x5-v0" in gym.registry


def test_sampled_evaluation_for_minigrid_based_envs() -> None:
    register_maxrl()
    manager_class = _make_experiment_manager_class()
    assert manager_class.is_minigrid("MaxRL/Maze-9x9-v0") and manager_class.is_minigrid("MaxRL/Maze-17x17-Random-v0")
    assert manager_class.is_minigrid("MaxRL/MiniGrid-v0") and manager_class.is_minigrid("MiniGrid-DoorKey-5x5-v0")
    assert not manager_class.is_minigrid("MaxRL/Regression-v0") and not manager_class.is_minigrid("CartPole-v1")


def test_with_start_state_wrapper() -> None:
    name = "sb3_maxrl.common.start_states.StartStateWrapper"
    assert _with_start_state_wrapper(None) == [name]
    assert _with_start_state_wrapper("a.B") == ["a.B", name]
    assert _with_start_state_wrapper([{"a.B": {"x": 1}}]) == [{"a.B": {"x": 1}}, name]
    assert _with_start_state_wrapper(["a.B", "sb3_maxrl.StartStateWrapper"]) == ["a.B", "sb3_maxrl.StartStateWrapper"]
    assert _with_start_state_wrapper([StartStateWrapper]) == [StartStateWrapper]


def test_default_config(tmp_path: Path) -> None:
    assert default_config("maxrl", "MaxRL/Maze-9x9-v0") == str(CONFIG_DIR / "maxrl.yml")
    assert default_config("ppo", "MaxRL/Maze-9x9-v0") == str(CONFIG_DIR / "ppo.yml")
    assert default_config("ppo", "CartPole-v1") is None  # rl-zoo3's own hyperparams/ppo.yml
    assert default_config("a2c", "MaxRL/Maze-9x9-v0") is None
    (tmp_path / "maxrl.yml").write_text("default:\n  n_timesteps: 10\n")
    assert default_config("maxrl", "CartPole-v1", tmp_path) == str(tmp_path / "maxrl.yml")


def test_configs_cover_every_env_and_match_ppo() -> None:
    maxrl, ppo = load_config("maxrl.yml"), load_config("ppo.yml")
    # every perfect-maze id, the one-step tasks and the MiniGrid ids; the strict mazes (a behaviour-cloned start,
    # benchmarks/strict_mazes.py), FrozenLake and Prototypes have no entry yet (pass -conf or -params for them)
    expected = {env_id for env_id in sb3_maxrl_envs.ENV_IDS if env_id.startswith("MaxRL/Maze-")}
    expected |= {"MaxRL/MiniGrid-v0", "MaxRL/Regression-v0", "MaxRL/Digits-v0", *MINIGRID_IDS}
    assert set(maxrl) == expected and set(ppo) == expected
    assert expected <= set(gym.registry)
    maxrl_args = set(inspect.signature(MaxRL).parameters)
    defaults = signature_defaults(MaxRL)
    for env_id, entry in maxrl.items():
        assert set(entry) - ZOO_KEYS <= maxrl_args, env_id
        assert _with_start_state_wrapper(entry["env_wrapper"]) == (
            entry["env_wrapper"] if isinstance(entry["env_wrapper"], list) else [entry["env_wrapper"]]
        ), f"{env_id}: StartStateWrapper missing"
        hyperparams = {**defaults, **entry}
        assert entry["n_envs"] <= hyperparams["group_size"] * hyperparams["n_groups"], env_id
        # the same envs, budget and actor network for the PPO baseline
        baseline = ppo[env_id]
        assert (baseline["n_envs"], baseline["n_timesteps"]) == (entry["n_envs"], entry["n_timesteps"]), env_id
        assert baseline.get("env_kwargs") == entry.get("env_kwargs"), env_id
        maxrl_wrappers = [w for w in _with_start_state_wrapper(entry["env_wrapper"]) if "StartStateWrapper" not in str(w)]
        ppo_wrappers = baseline.get("env_wrapper", [])
        assert maxrl_wrappers == (ppo_wrappers if isinstance(ppo_wrappers, list) else [ppo_wrappers]), env_id
        assert eval(entry["policy_kwargs"])["net_arch"] == eval(baseline["policy_kwargs"])["net_arch"]["pi"], env_id


def test_configs_repeat_no_maxrl_default() -> None:
    # MaxRL's signature is the one place for its defaults: an entry holds only what it changes for its env
    # (and rl-zoo3's own keys, such as the policy it requires)
    defaults = {key: value for key, value in signature_defaults(MaxRL).items() if key not in ZOO_KEYS}
    for env_id, entry in load_config("maxrl.yml").items():
        repeated = {key: value for key, value in entry.items() if key in defaults and value == defaults[key]}
        assert not repeated, f"{env_id} repeats MaxRL's defaults {repeated}: drop them from zoo_configs/maxrl.yml"


def test_configs_ship_with_the_package() -> None:
    package_dir = Path(sb3_maxrl.__file__).resolve().parent
    assert CONFIG_DIR == package_dir / "zoo_configs"
    assert {path.name for path in CONFIG_DIR.glob("*.yml")} == {"maxrl.yml", "ppo.yml"}
    repository_link = package_dir.parent / "zoo_configs"  # the top-level zoo_configs/ of a source checkout
    if repository_link.exists():
        assert repository_link.resolve() == CONFIG_DIR, "zoo_configs/ must link to sb3_maxrl/zoo_configs/ (one copy)"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--storage", "study.db", "--study-name", "s"], "neither a journal file nor a database URL"),
        (["--storage", "study.log"], "--storage needs --study-name"),
        (["--storage", "sqlite:///study.db", "--trial-id", "3"], "--storage needs --study-name"),
    ],
)
def test_storage_arguments_are_checked(args: list[str], match: str) -> None:
    with pytest.raises(SystemExit, match=match):
        check_storage_args(args)
    with pytest.raises(SystemExit, match=match):  # before any work, through the launcher
        main(["optimize", "--algo", "maxrl", "--env", "MaxRL/Regression-v0", *args])


def test_check_storage_args_accepts_journal_files_and_urls() -> None:
    for storage in ("runs/study.log", "sqlite:///study.db", "postgresql://user:password@host/db"):
        check_storage_args(["--storage", storage, "--study-name", "s"])
    check_storage_args(["--n-trials", "3"])  # no storage: an in-memory study, as in rl-zoo3


def test_two_workers_fill_one_shared_study(tmp_path: Path) -> None:
    """Two maxrl-zoo processes on one journal file: every trial of both lands in the one study, then one retrains."""
    config = tmp_path / "tiny.yml"
    config.write_text(
        "MaxRL/Regression-v0:\n  env_wrapper: sb3_maxrl.StartStateWrapper\n  n_envs: 4\n  n_timesteps: 256\n"
        "  policy: MlpPolicy\n  n_epochs: 1\n"
    )
    storage = tmp_path / "shared" / "study.log"
    common = ["--algo", "maxrl", "--env", "MaxRL/Regression-v0", "-conf", str(config), "--num-threads", "1"]
    common += ["--storage", str(storage), "--study-name", "maxrl-regression"]
    optimize = ["-n", "256", "--n-trials", "2", "--n-evaluations", "1", "--eval-episodes", "4", "--no-optim-plots"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sb3_maxrl.cli.zoo", "optimize", *common, *optimize, "--seed", str(seed), "-f", str(seed)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]

    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage)))
    study = optuna.load_study(study_name="maxrl-regression", storage=journal)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(trials) == 4
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]
    workers_of_trials = [trial.user_attrs["worker"] for trial in trials]
    assert {worker.rsplit(":", 1)[1] for worker in workers_of_trials} == {str(worker.pid) for worker in workers}
    assert all(workers_of_trials.count(worker) == 2 for worker in set(workers_of_trials))

    # the recipe's last step: retrain one trial's hyperparameters from the shared storage
    trial = study.trials[0]  # trial 0: rl-zoo3 alone would skip it (it tests the id's truth value)
    run_zoo(["train", *common, "--trial-id", "0", "-n", "64", "--eval-freq", "-1", "-f", str(tmp_path / "retrain")])
    model = MaxRL.load(tmp_path / "retrain" / "maxrl" / "MaxRL-Regression-v0_1" / "MaxRL-Regression-v0.zip")
    assert (model.group_size, model.n_groups) == (trial.params["group_size"], trial.params["n_groups"])
    assert model.lr_schedule(1.0) == pytest.approx(trial.params["learning_rate"])


def test_missing_zoo_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rl_zoo3", None)  # as if rl_zoo3 were not installed
    monkeypatch.delitem(sys.modules, "sb3_maxrl.cli.zoo")
    monkeypatch.setattr(sys, "argv", ["maxrl-zoo", "train", "--algo", "maxrl"])
    with pytest.raises(SystemExit, match=r"maxrl-zoo needs 'rl_zoo3', which is not installed: pip install \"sb3-maxrl\[zoo\]"):
        zoo_main()


@pytest.mark.filterwarnings("error:This env declares start-state identities")
def test_raw_minigrid_id_and_held_out_training_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a config entry for a raw MiniGrid id that wraps only in StartStateWrapper: the launcher adds wrap_minigrid
    config = tmp_path / "minigrid.yml"
    entry = "  n_envs: 2\n  n_timesteps: 64\n  policy: MlpPolicy\n  group_size: 2\n  n_groups: 2\n"
    config.write_text(f"MiniGrid-Empty-5x5-v0:\n{entry}MaxRL/Maze-9x9-v0:\n{entry}")
    common = ["-conf", str(config), "-f", str(tmp_path), "--seed", "0", "--num-threads", "1", "--eval-freq", "-1"]
    run_zoo(["train", "--algo", "maxrl", "--env", "MiniGrid-Empty-5x5-v0", *common])
    model = MaxRL.load(tmp_path / "maxrl" / "MiniGrid-Empty-5x5-v0_1" / "MiniGrid-Empty-5x5-v0.zip")
    assert model.observation_space == sb3_maxrl_envs.make_minigrid("MiniGrid-Empty-5x5-v0").observation_space
    # a maze (start_state_key) with pass@k evaluation: training seeds disjoint from the held-out mazes, no warning
    pass_at_k_args = ["--pass-at-k-freq", "64", "--pass-at-k-start-states", "2", "--pass-at-k-samples", "2"]
    run_zoo(["train", "--algo", "maxrl", "--env", "MaxRL/Maze-9x9-v0", *common, *pass_at_k_args])
    capsys.readouterr()
    model = MaxRL.load(tmp_path / "maxrl" / "MaxRL-Maze-9x9-v0_1" / "MaxRL-Maze-9x9-v0.zip")
    assert model.train_seeds is not None and len(model.train_seeds) == 10_000
    maze = gym.make("MaxRL/Maze-9x9-v0").unwrapped
    held_out = {maze.start_state_key(seed) for seed in sb3_maxrl.default_eval_seeds(2)}
    assert not held_out & {maze.start_state_key(seed) for seed in model.train_seeds[:500]}


def test_with_start_state_wrapper_adds_the_minigrid_task_wrapper() -> None:
    wrap_minigrid = "sb3_maxrl_envs.minigrid_wrappers.wrap_minigrid"
    start = f"{StartStateWrapper.__module__}.StartStateWrapper"
    assert _with_start_state_wrapper(None, "MiniGrid-Empty-5x5-v0") == [wrap_minigrid, start]
    assert _with_start_state_wrapper([{wrap_minigrid: {"nav_actions": True}}], "MiniGrid-Empty-5x5-v0") == [
        {wrap_minigrid: {"nav_actions": True}},
        start,
    ]
    assert _with_start_state_wrapper(None, "MaxRL/Maze-9x9-v0") == [start]
