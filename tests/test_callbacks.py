"""The evaluation callbacks and the update budget on real MaxRL runs: exact pass@k on held-out strict mazes,
SB3's EvalCallback conventions (eval_freq, best model, npz log), StopTrainingOnMaxUpdates and its progress bar."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from tbparse import SummaryReader

from sb3_maxrl import MaxRL
from sb3_maxrl.common.callbacks import (
    ExactPassAtKEvalCallback,
    PassAtKEvalCallback,
    StopTrainingOnMaxUpdates,
    UpdateProgressBarCallback,
)
from sb3_maxrl.common.evaluation import evaluate_pass_at_k
from sb3_maxrl.common.exact_evaluation import ExactPassAtKResult
from sb3_maxrl.common.start_states import EVAL_SEED_BASE
from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, disjoint_layout_seeds, exact_pass_at_k

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse on pandas >= 3
SIZE = 7
HELD_OUT = disjoint_layout_seeds(SIZE, 12, first_seed=EVAL_SEED_BASE)
TRAIN = disjoint_layout_seeds(SIZE, 60, exclude_seeds=HELD_OUT)
UNREACHABLE_TIMESTEPS = 2**62


def exact_on_held_out(model: Any, ks: list[int]) -> ExactPassAtKResult:
    return exact_pass_at_k(model, SIZE, HELD_OUT, ks)


def make_model(**kwargs: Any) -> MaxRL:
    th.set_num_threads(1)
    settings: dict[str, Any] = dict(group_size=4, n_groups=4, n_epochs=1, clip_range=None, learning_rate=3e-3)
    settings.update(train_seeds=TRAIN, seed=0, policy_kwargs=dict(net_arch=[32]))
    return MaxRL("MlpPolicy", StrictMazeVecEnv(16, SIZE, seed=0), **(settings | kwargs))


class CountUpdates(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.rollouts = 0

    def _on_rollout_end(self) -> None:
        self.rollouts += 1

    def _on_step(self) -> bool:
        return True


def test_exact_callback_logs_exact_values_from_start_to_end_and_keeps_the_best_model(tmp_path: Path) -> None:
    model = make_model(ent_coef=0.05)  # successes are rare from scratch: the entropy term moves the policy every update
    model.set_logger(configure(str(tmp_path), ["tensorboard"]))
    initial = exact_on_held_out(model, [1, 4, 64])
    callback = ExactPassAtKEvalCallback(
        exact_on_held_out,
        ks=[1, 4, 64],
        eval_freq=5,
        best_model_save_path=str(tmp_path),
        log_path=str(tmp_path),
        eval_at_training_start=True,
        verbose=0,
    )
    model.learn(UNREACHABLE_TIMESTEPS, callback=CallbackList([StopTrainingOnMaxUpdates(8), callback]))

    steps = callback.evaluations_timesteps
    assert steps[0] == 0 and steps[-1] == model.num_timesteps and len(steps) >= 4 and steps == sorted(set(steps))
    assert callback.results[0].metrics() == pytest.approx(initial.metrics(), rel=1e-12)
    final = exact_on_held_out(model, [1, 4, 64])  # the last evaluation is of the final policy
    assert callback.results[-1].metrics() == pytest.approx(final.metrics(), rel=1e-12)
    assert final.pass_at_k[64] != initial.pass_at_k[64], "training changed the policy"

    frame = SummaryReader(str(tmp_path)).scalars
    for name in ("pass@1", "pass@64", "neg_log_pass@4", "mean_likelihood", "nll", "mean_ep_length"):
        logged = frame[frame["tag"] == f"eval/{name}"].set_index("step")["value"].sort_index()
        assert list(logged.index) == steps
        np.testing.assert_allclose(logged.to_numpy(), [r.metrics()[name] for r in callback.results], rtol=1e-6)

    data = np.load(tmp_path / "pass_at_k_evaluations.npz")
    np.testing.assert_array_equal(data["timesteps"], steps)
    np.testing.assert_array_equal(data["ks"], [1, 4, 64])
    np.testing.assert_array_equal(data["start_seeds"], HELD_OUT)
    probabilities = data["success_probabilities"]
    assert probabilities.shape == (len(steps), len(HELD_OUT)) and data["expected_lengths"].shape == probabilities.shape
    for column, k in enumerate([1, 4, 64]):  # the scalars are the per-maze probabilities' exact pass@k
        np.testing.assert_allclose(data["pass_at_k"][:, column], np.mean(1 - (1 - probabilities) ** k, axis=1), rtol=1e-9)
    np.testing.assert_allclose(data["neg_log_pass_at_k"], -np.log(data["pass_at_k"]), rtol=1e-12)

    best_index = int(np.argmax([r.pass_at_k[1] for r in callback.results]))
    assert callback.best_value == callback.results[best_index].pass_at_k[1]
    best = MaxRL.load(tmp_path / "best_model.zip", device="cpu")
    assert exact_on_held_out(best, [1]).pass_at_k[1] == pytest.approx(callback.best_value, rel=1e-9)


def test_exact_callback_refuses_training_mazes_and_bad_evaluators() -> None:
    model = make_model()
    on_training_mazes = ExactPassAtKEvalCallback(
        lambda m, ks: exact_pass_at_k(m, SIZE, TRAIN[:3], ks), eval_at_training_start=True, verbose=0
    )
    with pytest.raises(ValueError, match="also training seeds"):
        model.learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(1), on_training_mazes])

    sampled = ExactPassAtKEvalCallback(
        lambda m, ks: evaluate_pass_at_k(m, StrictMazeVecEnv(4, SIZE), HELD_OUT[:2], 2, [1]),  # type: ignore[arg-type,return-value]
        ks=[1],
        eval_at_training_start=True,
        verbose=0,
    )
    with pytest.raises(TypeError, match="must return an ExactPassAtKResult"):
        make_model().learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(1), sampled])
    fixed_ks = ExactPassAtKEvalCallback(
        lambda m, ks: exact_pass_at_k(m, SIZE, HELD_OUT, [1]), ks=[1, 8], eval_at_training_start=True, verbose=0
    )
    with pytest.raises(ValueError, match=r"no pass@k for k in \[8\]"):
        make_model().learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(1), fixed_ks])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(best_metric="pass@3"), ValueError, "best_metric='pass@3' is not evaluated"),
        (dict(ks=[1, 0]), ValueError, "every k of pass@k"),
        (dict(ks=[]), ValueError, "ks is empty"),
        (dict(evaluate="exact_pass_at_k"), TypeError, "evaluate must be a function"),
    ],
)
def test_exact_callback_argument_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ExactPassAtKEvalCallback(**({"evaluate": exact_on_held_out} | kwargs))


def test_exact_callback_best_metric_lower_is_better() -> None:
    callback = ExactPassAtKEvalCallback(exact_on_held_out, ks=[1, 1024], best_metric="neg_log_pass@1024")
    assert not callback.higher_is_better and callback.best_value == math.inf
    assert ExactPassAtKEvalCallback(exact_on_held_out, best_metric="pass@1024").higher_is_better


def test_stop_after_max_updates_in_every_learn_call_with_a_progress_bar() -> None:
    model = make_model()
    counter, bar = CountUpdates(), UpdateProgressBarCallback(3, description="maxrl")
    model.learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(3), counter, bar])
    assert counter.rollouts == 3 and bar.pbar.n == 3
    first_end = model.num_timesteps
    # each update is G N = 16 complete episodes: at least one step, at most the 24-move budget, of 16 slots
    assert 3 * 16 <= first_end <= 3 * 16 * 24 + 16
    model.learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(2), counter], reset_num_timesteps=False)
    assert counter.rollouts == 5 and model.num_timesteps > first_end
    with pytest.raises(ValueError, match="max_updates must be an int >= 1"):
        StopTrainingOnMaxUpdates(0)
    with pytest.raises(ValueError, match="total_updates must be an int >= 1"):
        UpdateProgressBarCallback(-1)


def test_sampled_callback_can_evaluate_when_training_starts() -> None:
    model = make_model()
    callback = PassAtKEvalCallback(
        StrictMazeVecEnv(8, SIZE), eval_seeds=HELD_OUT[:4], n_samples=4, eval_freq=0, eval_at_training_start=True, verbose=0
    )
    model.learn(UNREACHABLE_TIMESTEPS, callback=[StopTrainingOnMaxUpdates(2), callback])
    assert callback.evaluations_timesteps == [0, model.num_timesteps]
    for result in callback.results:
        assert 0 <= result.pass_at_k[1] <= result.pass_at_k[2] <= result.pass_at_k[4] <= 1


def test_every_n_updates_fires_after_each_trained_update_and_at_the_end() -> None:
    from stable_baselines3 import PPO

    from sb3_maxrl.common.callbacks import EveryNUpdates, StopTrainingOnMaxUpdates

    # MaxRL: ent_coef > 0, so no update is skipped and each train() adds n_epochs to _n_updates
    model = MaxRL("MlpPolicy", "MiniGrid-Empty-5x5-v0", group_size=2, n_groups=1, n_epochs=2, ent_coef=0.01, seed=0)
    seen: list[tuple[int, int]] = []
    every = EveryNUpdates(3, lambda m, updates: seen.append((updates, m._n_updates)), at_training_start=True)
    model.learn(2**40, callback=CallbackList([StopTrainingOnMaxUpdates(7), every]))
    assert seen == [(0, 0), (3, 6), (6, 12), (7, 14)]  # the function sees each update trained, and the last one

    # a child callback, any OnPolicyAlgorithm (PPO: an update is n_steps x n_envs steps), and stopping by returning False
    class Count(BaseCallback):
        def _on_step(self) -> bool:
            seen.append((self.parent.n_updates, self.model._n_updates))
            return True

    seen.clear()
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, n_epochs=1, seed=0)
    ppo.learn(16 * 5, callback=EveryNUpdates(2, callback=Count()))
    assert seen == [(2, 2), (4, 4), (5, 5)]
    ppo.learn(16 * 5, callback=EveryNUpdates(2, lambda m, updates: False))
    assert ppo.num_timesteps == 16 * 2 + 1  # stopped at the first step after update 2 (SB3 counts that step)
    with pytest.raises(ValueError, match="n_updates must be an int >= 1"):
        EveryNUpdates(0, print)
    with pytest.raises(ValueError, match="needs a function"):
        EveryNUpdates(1)


def test_pass_at_k_callback_takes_a_raw_minigrid_id() -> None:
    env_id = "MiniGrid-Empty-5x5-v0"
    model = MaxRL("MlpPolicy", env_id, group_size=2, n_groups=1, seed=0)
    callback = PassAtKEvalCallback(env_id, n_eval_start_states=2, n_samples=2, eval_freq=0, n_envs=2, verbose=0)
    model.learn(1, callback=callback)
    assert callback.last_result is not None and set(callback.last_result.pass_at_k) == {1, 2}
