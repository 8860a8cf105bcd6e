"""MaxRL behaves as SB3 users expect: env handling, predict, callbacks, VecEnv wrappers, policy options."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecFrameStack
from torch import nn

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl_envs import make_minigrid


class CountingCallback(BaseCallback):
    def __init__(self):
        super().__init__()
        self.rollouts = 0

    def _on_rollout_end(self) -> None:
        self.rollouts += 1

    def _on_step(self) -> bool:
        return True


def test_get_env_set_env_and_spaces(make_group_vec_env):
    env = make_group_vec_env(2)
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=2)
    assert model.get_env() is env
    other = make_group_vec_env(3)
    model.set_env(other)
    assert model.get_env() is other and model.n_envs == 3
    model.learn(300)
    with pytest.raises(ValueError):
        model.set_env(make_minigrid("MiniGrid-Empty-5x5-v0", obs="onehot"))


def test_predict_deterministic_and_stochastic(make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(1), group_size=2, n_groups=1, seed=0)
    observation = np.repeat(model.observation_space.sample()[None], 64, axis=0)
    deterministic, _ = model.predict(observation, deterministic=True)
    assert len(set(deterministic.tolist())) == 1
    sampled, _ = model.predict(observation, deterministic=False)
    assert len(set(sampled.tolist())) > 1, "an untrained policy samples several actions"


def test_callback_list_eval_callback_and_stop_on_reward_threshold(tmp_path, make_group_vec_env):
    eval_env = Monitor(make_minigrid("MiniGrid-Empty-Random-5x5-v0"))
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1.0, verbose=0)  # any mean reward beats -1: stop at once
    evaluation = EvalCallback(
        eval_env, callback_on_new_best=stop, eval_freq=100, n_eval_episodes=2, best_model_save_path=str(tmp_path)
    )
    counter = CountingCallback()
    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=2, n_groups=2, seed=0)
    model.learn(100_000, callback=CallbackList([counter, evaluation]))
    assert model.num_timesteps < 1000, "StopTrainingOnRewardThreshold stopped training at the first evaluation"
    assert (tmp_path / "best_model.zip").exists()
    assert isinstance(MaxRL.load(tmp_path / "best_model.zip"), MaxRL)
    assert evaluation.n_calls >= 100


def test_rollout_callbacks_fire_once_per_update(make_group_vec_env):
    counter = CountingCallback()
    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=2, n_groups=2, seed=0)
    model.learn(600, callback=counter)
    assert (counter.rollouts - model.n_skipped_updates) * model.n_epochs == model._n_updates


def test_vec_frame_stack(make_group_vec_env):
    env = VecFrameStack(make_group_vec_env(2), n_stack=3)
    model = MaxRL("MlpPolicy", env, group_size=2, n_groups=2, seed=0)
    model.learn(300)
    base_dim = make_minigrid("MiniGrid-Empty-Random-5x5-v0").observation_space.shape[0]
    assert model.observation_space.shape == (3 * base_dim,)
    assert model.rollout_buffer.samples.observations.shape[1] == 3 * base_dim


def test_monitor_wrapped_env_gets_episode_stats():
    model = MaxRL("MlpPolicy", Monitor(make_minigrid("MiniGrid-Empty-5x5-v0")), group_size=2, n_groups=2, seed=0)
    assert all(model.env.env_is_wrapped(StartStateWrapper))
    model.learn(400)
    assert len(model.ep_info_buffer) > 0 and len(model.ep_success_buffer) > 0


class TinyExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box, features_dim: int = 16):
        super().__init__(observation_space, features_dim)
        self.linear = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations)


def test_custom_policy_kwargs_and_features_extractor(tmp_path, make_group_vec_env):
    policy_kwargs = dict(
        net_arch=[32],
        activation_fn=nn.ReLU,
        features_extractor_class=TinyExtractor,
        features_extractor_kwargs={"features_dim": 8},
    )
    model = MaxRL("MlpPolicy", make_group_vec_env(1), group_size=2, n_groups=1, policy_kwargs=policy_kwargs)
    assert isinstance(model.policy.features_extractor, TinyExtractor) and model.policy.features_dim == 8
    assert [m.out_features for m in model.policy.latent_net if isinstance(m, nn.Linear)] == [32]
    model.learn(100)
    model.save(tmp_path / "custom")
    loaded = MaxRL.load(tmp_path / "custom")
    assert isinstance(loaded.policy.features_extractor, TinyExtractor)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device(device, make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(1), group_size=2, n_groups=1, device=device)
    expected = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert model.device.type == expected
    assert next(model.policy.parameters()).device.type == expected
    model.learn(50)


def test_progress_bar(make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=2, n_groups=2)
    model.learn(200, progress_bar=True)
    assert model.num_timesteps >= 200


def test_actor_critic_policy_kwargs_are_accepted(make_group_vec_env):
    kwargs = dict(net_arch=dict(pi=[16], vf=[32]), share_features_extractor=False, ortho_init=False, full_std=True)
    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=2, n_groups=2, policy_kwargs=kwargs, seed=0)
    assert model.policy.net_arch == [16]
    model.learn(50)


def test_unknown_policy_kwarg_names_what_is_accepted(make_group_vec_env):
    with pytest.raises(TypeError, match=r"accepts the policy_kwargs .*net_arch"):
        MaxRL("MlpPolicy", make_group_vec_env(2), policy_kwargs=dict(value_hidden=[8]))


def test_callbacks_see_sb3_rollout_locals(make_group_vec_env):
    seen: dict[str, object] = {}

    class LocalsCallback(BaseCallback):
        def _on_step(self) -> bool:
            seen.update(self.locals)
            return True

    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=2, n_groups=2, seed=0)
    model.learn(20, callback=LocalsCallback())
    for key in ("actions", "clipped_actions", "rewards", "dones", "infos", "new_obs", "log_probs", "rollout_buffer"):
        assert key in seen, key
    assert len(seen["rewards"]) == len(seen["actions"]) == 2


class NoOptionsEnv(gym.Env):
    """An env whose reset() takes no options (SB3 still runs it)."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, seed=None):  # type: ignore[override]
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {"is_success": bool(action)}


def test_env_whose_reset_takes_no_options_trains():
    model = MaxRL("MlpPolicy", NoOptionsEnv(), group_size=2, n_groups=2, seed=0)
    model.learn(20)
    assert model.num_timesteps >= 20


def test_several_epochs_without_ratio_clip_are_refused():
    with pytest.raises(ValueError, match="clip_range"):
        MaxRL("MlpPolicy", NoOptionsEnv(), n_epochs=2, clip_range=None)


def test_minigrid_ids_work_as_given():
    model = MaxRL("MlpPolicy", "MiniGrid-Empty-5x5-v0", group_size=2, n_groups=2, seed=0)
    model.learn(100)
    assert model.num_timesteps >= 100
