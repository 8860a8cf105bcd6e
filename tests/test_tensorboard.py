"""What a real learn() writes to TensorBoard, read back from the event files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from tbparse import SummaryReader

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.common.callbacks import PassAtKEvalCallback

MAZE = "MaxRL/Maze-9x9-v0"
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse on pandas >= 3


def read_scalars(run_dir: Path) -> dict[str, pd.Series]:
    """``{tag: values indexed by step}`` of every scalar in the run folder's event files."""
    frame = SummaryReader(str(run_dir)).scalars
    return {tag: group.set_index("step")["value"].sort_index() for tag, group in frame.groupby("tag")}


def make_model(log_dir: Path) -> MaxRL:
    env = make_vec_env(MAZE, n_envs=4, seed=0, wrapper_class=StartStateWrapper)
    # ent_coef > 0: updates of all-fail groups still step the optimizer (an entropy gradient), so train/ is logged
    return MaxRL("MlpPolicy", env, group_size=4, n_groups=2, ent_coef=0.01, seed=0, tensorboard_log=str(log_dir))


def make_callback() -> PassAtKEvalCallback:
    return PassAtKEvalCallback(MAZE, n_eval_start_states=2, n_samples=4, eval_freq=150, n_envs=4, verbose=0)


def test_learn_writes_rollout_train_and_eval_scalars(tmp_path: Path) -> None:
    th.set_num_threads(1)
    model = make_model(tmp_path)
    callback = make_callback()
    model.learn(2000, callback=callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MaxRL_1"]
    scalars = read_scalars(tmp_path / "MaxRL_1")

    for tag in ["rollout/pass_rate", "rollout/utilization", "rollout/frac_groups_all_fail", "train/loss", "train/grad_norm"]:
        assert tag in scalars, f"{tag} missing from {sorted(scalars)}"
    n_updates = len(scalars["rollout/pass_rate"])
    assert n_updates * model.n_epochs == model._n_updates and n_updates >= 2
    assert scalars["rollout/pass_rate"].between(0, 1).all()
    assert ((scalars["rollout/utilization"] > 0) & (scalars["rollout/utilization"] <= 1)).all()
    assert np.isfinite(scalars["train/loss"]).all()
    assert scalars["rollout/pass_rate"].index.max() == model.num_timesteps

    eval_tags = [f"eval/{name}" for name in callback.last_result.metrics()]  # type: ignore[union-attr]
    assert {"eval/pass@1", "eval/pass@4", "eval/neg_log_pass@1", "eval/mean_likelihood", "eval/nll"} <= set(eval_tags)
    steps = list(scalars["eval/pass@1"].index)
    assert steps == callback.evaluations_timesteps and len(steps) >= 3  # periodic + once at training end
    for step in steps:
        pass_1, pass_2, pass_4 = (scalars[f"eval/pass@{k}"][step] for k in (1, 2, 4))
        assert 0 <= pass_1 <= pass_2 <= pass_4 <= 1
        assert scalars["eval/neg_log_pass@4"][step] == pytest.approx(-math.log(max(pass_4, 1 / 16)), rel=1e-6)
    last = {tag: scalars[tag][steps[-1]] for tag in eval_tags}
    expected = {f"eval/{name}": value for name, value in callback.last_result.metrics().items()}  # type: ignore[union-attr]
    assert last == pytest.approx(expected, rel=1e-6)


def test_continued_learn_keeps_run_dir_and_step_counter(tmp_path: Path) -> None:
    th.set_num_threads(1)
    model = make_model(tmp_path)
    model.learn(500)
    first_end = model.num_timesteps
    model.learn(500, reset_num_timesteps=False, callback=make_callback())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MaxRL_1"]
    steps = list(read_scalars(tmp_path / "MaxRL_1")["rollout/pass_rate"].index)
    assert steps[0] == first_end and steps[-1] == model.num_timesteps > first_end
    assert steps == sorted(set(steps)), "one point per update, increasing across both learn() calls"

    model.learn(500)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MaxRL_1", "MaxRL_2"]
    assert read_scalars(tmp_path / "MaxRL_2")["rollout/pass_rate"].index.max() == model.num_timesteps
