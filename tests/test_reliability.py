"""Bad input, numerics, faults and resumption: MaxRL fails clearly and loses no work."""

from __future__ import annotations

import contextlib
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.common.group_rollouts import StartStateMismatchError
from sb3_maxrl.common.losses import episode_losses
from sb3_maxrl_envs import make_minigrid


class CoinEnv(gym.Env):
    """A task whose outcome the test controls: a fixed ``likelihood``, or success when the last action is 1."""

    def __init__(self, likelihood: float | None = None, steps: int = 1, random_start: bool = False):
        self.observation_space = spaces.Box(-1, 1, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.likelihood, self.steps, self.random_start = likelihood, steps, random_start
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        start = np.random.uniform(-1, 1, 3) if self.random_start else self.np_random.uniform(-1, 1, 3)
        return start.astype(np.float32), {}

    def step(self, action):
        self._t += 1
        done = self._t >= self.steps
        info = {}
        if done:
            if self.likelihood is None:
                info["is_success"] = bool(action == 1)
            else:
                info["likelihood"] = self.likelihood
        return np.zeros(3, np.float32), 0.0, done, False, info


class CrashingEnv(CoinEnv):
    def step(self, action):
        if self._t >= 2:
            raise RuntimeError("simulated env crash")
        return super().step(action)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"group_size": 1}, "group_size must be an int >= 2"),
        ({"group_size": 4, "estimator": "maxrl_general", "truncation": 5}, r"truncation must be in \[1, group_size=4\]"),
        ({"estimator": "maxrl_general", "truncation": 0}, "truncation must be in"),
        ({"estimator": "rloo", "truncation": 2}, "only applies to estimator='maxrl_general'"),
        ({"estimator": "ppo"}, "Unknown estimator"),
        ({"n_groups": 0}, "n_groups must be an int >= 1"),
        ({"n_epochs": 0}, "n_epochs must be an int >= 1"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"start_state_check": "maybe"}, "start_state_check must be"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaxRL("MlpPolicy", CoinEnv(), **kwargs)


@pytest.mark.parametrize(("likelihood", "match"), [(1.5, r"outside \[0, 1\]"), (-0.1, r"outside \[0, 1\]"), (np.nan, "NaN")])
def test_likelihood_outside_unit_interval_is_an_error(likelihood, match):
    model = MaxRL("MlpPolicy", CoinEnv(likelihood=likelihood), group_size=2, n_groups=1)
    with pytest.raises(ValueError, match=match):
        model.learn(10)


def test_env_reporting_no_outcome_is_an_error():
    model = MaxRL("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1)
    with pytest.raises(ValueError, match="neither 'likelihood' nor 'is_success'"):
        model.learn(1000)


def test_a_time_limit_truncation_without_outcome_says_to_report_failure():
    class SuccessOnlyEnv(CoinEnv):  # reports is_success only when it succeeds, and never succeeds
        def step(self, action):
            observation, reward, _, truncated, _ = super().step(action)
            return observation, reward, False, truncated, {}

    env = gym.wrappers.TimeLimit(SuccessOnlyEnv(), max_episode_steps=3)
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=1)
    with pytest.raises(ValueError, match=r"truncated \(gymnasium's TimeLimit\).*must report info\['is_success'\] = False"):
        model.learn(10)


def test_custom_likelihood_key():
    class KeyedEnv(CoinEnv):
        def step(self, action):
            observation, reward, terminated, truncated, info = super().step(action)
            info["score"] = info.pop("likelihood")
            return observation, reward, terminated, truncated, info

    model = MaxRL("MlpPolicy", KeyedEnv(likelihood=0.25), group_size=2, n_groups=2, likelihood_key="score")
    model.learn(8)
    assert model.num_timesteps >= 4


def test_start_state_not_fixed_by_seed_is_detected():
    model = MaxRL("MlpPolicy", CoinEnv(random_start=True), group_size=3, n_groups=1)
    with pytest.raises(StartStateMismatchError, match="not a function of reset"):
        model.learn(10)
    tolerant = MaxRL("MlpPolicy", CoinEnv(random_start=True), group_size=3, n_groups=1, start_state_check="warn")
    with pytest.warns(UserWarning, match="not a function of reset"):
        tolerant.learn(10)


def test_non_episodic_env_is_an_error_not_a_hang():
    model = MaxRL("MlpPolicy", CoinEnv(steps=10**9), group_size=2, n_groups=1, max_episode_steps=50)
    with pytest.raises(RuntimeError, match="ran 50 steps without terminating"):
        model.learn(1000)


def test_subproc_vec_env_without_start_state_wrapper_is_an_error():
    venv = make_vec_env("CartPole-v1", n_envs=1, vec_env_cls=SubprocVecEnv)
    try:
        with pytest.raises(ValueError, match="wrapper_class=StartStateWrapper"):
            MaxRL("MlpPolicy", venv)
    finally:
        venv.close()


def test_dummy_vec_env_is_wrapped_automatically():
    venv = DummyVecEnv([CoinEnv, CoinEnv])
    model = MaxRL("MlpPolicy", venv, group_size=2, n_groups=2, seed=0)
    assert all(venv.env_is_wrapped(StartStateWrapper))
    model.learn(8)
    assert model.num_timesteps >= 8


def test_box_actions_are_clipped_to_bounds():
    class BoundedEnv(CoinEnv):
        def __init__(self):
            super().__init__(likelihood=0.5)
            self.action_space = spaces.Box(-0.1, 0.1, (2,), np.float32)

        def step(self, action):
            assert np.all(np.abs(action) <= 0.1 + 1e-7), action
            return super().step(action)

    model = MaxRL("MlpPolicy", BoundedEnv(), group_size=4, n_groups=2, policy_kwargs={"log_std_init": 2.0}, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64


def test_dict_observations_with_multi_input_policy():
    class DictEnv(CoinEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Dict({"x": spaces.Box(-1, 1, (3,), np.float32), "k": spaces.Discrete(3)})

        def reset(self, *, seed=None, options=None):
            observation, info = super().reset(seed=seed, options=options)
            return {"x": observation, "k": int(self.np_random.integers(3))}, info

        def step(self, action):
            observation, *rest = super().step(action)
            return {"x": observation, "k": 0}, *rest

    model = MaxRL("MultiInputPolicy", DictEnv(), group_size=3, n_groups=2, seed=0)
    model.learn(30)
    assert isinstance(model.rollout_buffer.samples.observations, dict)
    assert model.rollout_buffer.samples.observations["x"].shape[1:] == (3,)


def test_image_observations_with_cnn_extractor():
    from sb3_maxrl.common.torch_layers import MiniGridCNN

    env = make_vec_env(
        lambda: make_minigrid("MiniGrid-Empty-5x5-v0", obs="image"), n_envs=2, wrapper_class=StartStateWrapper
    )
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=2, policy_kwargs={"features_extractor_class": MiniGridCNN})
    model.learn(200)
    assert isinstance(model.policy.features_extractor, MiniGridCNN)


@pytest.mark.parametrize("outcome", [0.0, 1.0])
def test_all_fail_and_all_success_groups_leave_parameters_unchanged(outcome):
    model = MaxRL("MlpPolicy", CoinEnv(likelihood=outcome), group_size=4, n_groups=2, estimator="maxrl", seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(40)
    assert model._n_updates == 0 and model.n_skipped_updates == 5
    for a, b in zip(before, model.policy.parameters(), strict=True):
        assert torch.equal(a, b)


class _SwitchableCoinEnv(CoinEnv):
    """Success when the action is 1, until ``all_fail`` is set: then every episode fails."""

    all_fail = False

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        info["is_success"] = info["is_success"] and not self.all_fail
        return observation, reward, terminated, truncated, info


def test_zero_advantage_updates_skip_the_optimizer_after_a_learning_update():
    """Adam's momentum would keep moving the policy on zero gradients; the skipped step must leave it still."""
    env = _SwitchableCoinEnv()
    model = MaxRL("MlpPolicy", env, group_size=4, n_groups=4, n_epochs=1, clip_range=None, seed=0)
    model.learn(64)  # updates with mixed outcomes fill Adam's moment estimates
    assert model._n_updates > 0 and model.policy.optimizer.state
    env.all_fail = True
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(64, reset_num_timesteps=False)
    assert model.n_skipped_updates == 4
    for a, b in zip(before, model.policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_nan_loss_is_reported_with_the_step():
    model = MaxRL("MlpPolicy", CoinEnv(), group_size=2, n_groups=2, seed=0)
    model.learn(4)  # sets up the logger and one update
    model.rollout_buffer.samples.advantages[0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"num_timesteps=\d+"):
        model.train()


def test_crashing_subprocess_worker_names_the_start_seed():
    env = make_vec_env(
        CrashingEnv, n_envs=2, vec_env_cls=SubprocVecEnv, wrapper_class=StartStateWrapper, env_kwargs={"steps": 5}
    )
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=1, seed=0)
    with pytest.raises(RuntimeError, match=r"worker process died .*slot 0: start seed \d+"):
        model.learn(100)
    with contextlib.suppress(EOFError, BrokenPipeError):
        env.close()


class InterruptAt(BaseCallback):
    def __init__(self, n_calls: int):
        super().__init__()
        self.at = n_calls

    def _on_step(self) -> bool:
        if self.n_calls == self.at:
            raise KeyboardInterrupt
        return True


def test_keyboard_interrupt_leaves_a_savable_consistent_model(tmp_path, make_group_vec_env):
    env = make_group_vec_env(2)
    model = MaxRL("MlpPolicy", env, group_size=4, n_groups=2, seed=0)
    with pytest.raises(KeyboardInterrupt):
        model.learn(5000, callback=InterruptAt(300))
    model.save(tmp_path / "interrupted")
    loaded = MaxRL.load(tmp_path / "interrupted", env=env)
    observations = env.reset()
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], model.predict(observations, deterministic=True)[0]
    )
    loaded.learn(500, reset_num_timesteps=False)
    assert loaded.num_timesteps > model.num_timesteps


def test_checkpoint_resume_keeps_the_step_count(tmp_path, make_group_vec_env):
    env = make_group_vec_env(2)
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=2, seed=0, tensorboard_log=str(tmp_path / "tb"))
    model.learn(1000, callback=CheckpointCallback(save_freq=200, save_path=str(tmp_path / "ckpt"), name_prefix="maxrl"))
    checkpoints = sorted((tmp_path / "ckpt").glob("maxrl_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    assert checkpoints
    last = checkpoints[-1]
    resumed = MaxRL.load(last, env=env, tensorboard_log=str(tmp_path / "tb"))
    assert resumed.num_timesteps == int(last.stem.split("_")[1])
    resumed.learn(600, reset_num_timesteps=False)
    assert resumed.num_timesteps >= int(last.stem.split("_")[1]) + 600
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["MaxRL_1"], "one curve, continued"


def test_model_saved_by_version_0_1_0_loads_and_predicts(make_group_vec_env):
    from pathlib import Path

    data = Path(__file__).parent / "data"
    expected = np.load(data / "maxrl_v0.1.0_predictions.npz")
    model = MaxRL.load(data / "maxrl_v0.1.0.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actions, _ = model.predict(expected["observations"], deterministic=True)
    np.testing.assert_array_equal(actions, expected["actions"])
    assert model.estimator == "maxrl" and model.group_size == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64_policies(dtype):
    model = MaxRL("MlpPolicy", CoinEnv(), group_size=4, n_groups=2, seed=0)
    model.policy.to(dtype)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(64)
    assert all(p.dtype == dtype and torch.isfinite(p).all() for p in model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))


def test_same_seed_same_parameters_on_subproc_vec_env():
    """Documented in README: episodes are scheduled by seeds and dones only, so SubprocVecEnv reproduces too."""

    def train() -> list[torch.Tensor]:
        env = make_vec_env(
            lambda: make_minigrid("MiniGrid-Empty-Random-5x5-v0"),
            n_envs=2,
            vec_env_cls=SubprocVecEnv,
            wrapper_class=StartStateWrapper,
        )
        model = MaxRL("MlpPolicy", env, group_size=3, n_groups=2, seed=5)
        model.learn(600)
        env.close()
        return [p.detach().clone() for p in model.policy.parameters()]

    for a, b in zip(train(), train(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("steps", [1, 6])
def test_entropy_bonus_is_on_the_policy_terms_per_episode_scale(steps):
    """ent_coef weighs each episode's summed step entropies averaged over the G N episodes: for episodes of
    ``steps`` steps the entropy loss is ``steps`` times the per-step mean, so longer episodes weigh alike."""
    model = MaxRL("MlpPolicy", CoinEnv(steps=steps), group_size=2, n_groups=3, ent_coef=0.1, seed=0)
    model.learn(6 * steps)
    samples = model.rollout_buffer.samples
    n_episodes = model.n_groups * model.group_size
    losses = episode_losses(model.policy, samples, None, len(samples.advantages), n_episodes)
    _, entropy = model.policy.evaluate_actions(samples.observations, samples.actions.long().flatten())
    assert len(samples.advantages) == steps * n_episodes
    assert losses.entropy_loss.item() == pytest.approx(-entropy.sum().item() / n_episodes, rel=1e-6)
    assert losses.entropy_loss.item() == pytest.approx(-steps * entropy.mean().item(), rel=1e-6)
