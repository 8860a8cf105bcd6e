"""The MaxRL algorithm on real MiniGrid envs: grouping, training, save/load, reproducibility."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.common.group_rollouts import collect_group_episodes
from sb3_maxrl.maxrl.policies import MaxRLPolicy
from sb3_maxrl_envs import make_minigrid


class StartRecorder(gym.Wrapper):
    """Records the seed and the true start state (agent pose and grid) of every reset."""

    def __init__(self, env: gym.Env, log: list):
        super().__init__(env)
        self.log = log

    def reset(self, *, seed=None, options=None):
        observation, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        self.log.append((seed, tuple(base.agent_pos), int(base.agent_dir), base.grid.encode().tobytes()))
        return observation, info


def recorded_vec_env(n_envs: int, log: list):
    def make():
        return StartStateWrapper(StartRecorder(make_minigrid("MiniGrid-Empty-Random-5x5-v0"), log))

    return make_vec_env(make, n_envs=n_envs)


@pytest.mark.parametrize("n_envs", [1, 3, 8])
def test_every_group_runs_n_episodes_from_one_start_state(n_envs):
    log: list = []
    env = recorded_vec_env(n_envs, log)
    model = MaxRL("MlpPolicy", env, group_size=5, n_groups=4, seed=n_envs)
    seeds = [11, 22, 33, 44]
    episodes = collect_group_episodes(env, seeds, 5, model._act, buffer=model.rollout_buffer)
    starts_by_seed: dict[int, list] = {}
    for seed, *start in log:
        starts_by_seed.setdefault(seed, []).append(tuple(start))
    for seed in seeds:
        # group_size kept episodes, plus throw-away episodes at the tail of the collection that replay a start state
        assert len(starts_by_seed[seed]) >= 5
        assert len(set(starts_by_seed[seed])) == 1, "all episodes of a group share the start state"
    assert len({starts_by_seed[s][0] for s in seeds}) > 1, "different seeds give different start states"
    assert episodes.likelihood_matrix.shape == (4, 5)
    assert set(np.unique(episodes.likelihoods)) <= {0.0, 1.0}
    stored = model.rollout_buffer.n_stored_steps  # the kept episodes' steps only: throw-away steps are dropped
    assert stored == episodes.lengths.sum() <= episodes.env_steps
    assert 0 < episodes.utilization <= 1
    model.rollout_buffer.finalize(episodes, np.arange(20, dtype=float))
    assert len(model.rollout_buffer.step_episode_ids) == episodes.lengths.sum()
    counts = np.bincount(model.rollout_buffer.step_episode_ids, minlength=20)
    np.testing.assert_array_equal(counts, episodes.lengths)
    np.testing.assert_array_equal(model.rollout_buffer.samples.advantages.numpy(), model.rollout_buffer.step_episode_ids)


def test_groups_never_span_two_updates(make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(3), group_size=4, n_groups=3, seed=0)
    model.learn(1500)
    assert model.rollout_buffer.samples is not None
    episodes_in_last_update = np.unique(model.rollout_buffer.step_episode_ids)
    np.testing.assert_array_equal(episodes_in_last_update, np.arange(12))


def test_slots_take_pending_episodes_instead_of_idling():
    """With many episodes per slot, only the tail of an update is discarded: utilization stays high."""
    log: list = []
    env = recorded_vec_env(4, log)
    model = MaxRL("MlpPolicy", env, group_size=8, n_groups=8, seed=0)
    episodes = collect_group_episodes(env, list(range(8)), 8, model._act)
    assert episodes.utilization > 0.8
    seeded_resets = [seed for seed, *_ in log if seed is not None]
    assert len(seeded_resets) == len(log)  # throw-away episodes too replay a scheduled start state


def test_maxrl_learns_empty_minigrid(make_group_vec_env):
    env = make_group_vec_env(8, env_id="MiniGrid-Empty-5x5-v0")
    model = MaxRL("MlpPolicy", env, group_size=8, n_groups=2, learning_rate=3e-3, n_epochs=4, clip_range=0.2, seed=1)
    before = collect_group_episodes(env, [10**6 + i for i in range(8)], 8, model._act).likelihoods.mean()
    model.learn(30_000)
    after = collect_group_episodes(env, [10**6 + i for i in range(8)], 8, model._act).likelihoods.mean()
    assert after >= 0.9, f"pass rate {before:.2f} -> {after:.2f}"
    assert after > before


def test_same_seed_same_parameters(make_group_vec_env):
    def train(seed: int) -> list[torch.Tensor]:
        model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=4, n_groups=2, seed=seed)
        model.learn(1000)
        return [p.detach().clone() for p in model.policy.parameters()]

    first, second, other = train(3), train(3), train(4)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_save_load_predict_round_trip(tmp_path, make_group_vec_env):
    env = make_group_vec_env(2)
    model = MaxRL("MlpPolicy", env, group_size=4, n_groups=2, estimator="maxrl_general", truncation=3, seed=0)
    model.learn(800)
    model.save(tmp_path / "model.zip")
    loaded = MaxRL.load(tmp_path / "model.zip", env=env)
    assert (loaded.group_size, loaded.n_groups, loaded.estimator, loaded.truncation) == (4, 2, "maxrl_general", 3)
    observations = env.reset()
    expected, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], expected)
    for a, b in zip(model.policy.parameters(), loaded.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert loaded.start_states.take(3) == model.start_states.take(3), "the start-state stream resumes"
    loaded.learn(400, reset_num_timesteps=False)
    assert loaded.num_timesteps > model.num_timesteps


def test_load_without_env_and_predict(tmp_path, make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(1), group_size=2, n_groups=1, seed=0)
    model.save(tmp_path / "m")
    loaded = MaxRL.load(tmp_path / "m.zip")
    observation = model.observation_space.sample()
    assert loaded.predict(observation, deterministic=True)[0] == model.predict(observation, deterministic=True)[0]


def test_no_value_head():
    model = MaxRL("MlpPolicy", "CartPole-v1", _init_setup_model=True, max_episode_steps=600)
    names = [name for name, _ in model.policy.named_parameters()]
    assert not any("value" in name or "vf" in name for name in names), names
    assert not hasattr(model.policy, "value_net")


def test_subproc_vec_env_and_vec_normalize():
    env = VecNormalize(
        make_vec_env(
            lambda: make_minigrid("MiniGrid-Empty-Random-5x5-v0"),
            n_envs=2,
            vec_env_cls=SubprocVecEnv,
            wrapper_class=StartStateWrapper,
        )
    )
    try:
        model = MaxRL("MlpPolicy", env, group_size=3, n_groups=2, seed=0)
        model.learn(600)
        assert model.num_timesteps >= 600
        np.testing.assert_array_equal(np.unique(model.rollout_buffer.step_episode_ids), np.arange(6))
    finally:
        env.close()


def test_env_id_string_and_default_arguments():
    model = MaxRL("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1, seed=0)
    assert model.env.num_envs == 1
    assert all(model.env.env_is_wrapped(StartStateWrapper))
    deferred = MaxRL(group_size=2, n_groups=1)
    assert deferred.env is None
    deferred.set_env(make_minigrid("MiniGrid-Empty-5x5-v0"))
    assert deferred.policy is not None and all(deferred.env.env_is_wrapped(StartStateWrapper))


def test_minibatches_cover_every_step_once_per_epoch(make_group_vec_env):
    model = MaxRL("MlpPolicy", make_group_vec_env(2), group_size=3, n_groups=2, batch_size=64, seed=0)
    model.learn(400)
    full = next(model.rollout_buffer.get(None))
    batches = list(model.rollout_buffer.get(64))
    assert all(len(batch.advantages) <= 64 for batch in batches)
    merged = torch.cat([batch.old_log_prob for batch in batches])
    torch.testing.assert_close(merged.sort().values, full.old_log_prob.sort().values)


def test_categorical_fast_path_gives_torchs_numbers_bit_for_bit():
    """forward and evaluate_actions skip torch's Categorical: the same actions, log-probs, entropies and gradients."""
    policy = MaxRLPolicy(spaces.Box(0, 1, (12,)), spaces.Discrete(5), lambda _: 1e-3, net_arch=[16])
    observations, actions = th.rand(64, 12), th.randint(0, 5, (64,))
    th.manual_seed(3)
    fast_actions, fast_log_probs = policy(observations)
    th.manual_seed(3)
    distribution = policy.get_distribution(observations)
    slow_actions = distribution.get_actions()
    assert th.equal(fast_actions, slow_actions) and th.equal(fast_log_probs, distribution.log_prob(slow_actions))
    gradients = []
    for fast in (True, False):
        policy.zero_grad()
        if fast:
            log_prob, entropy = policy.evaluate_actions(observations, actions)
        else:
            distribution = policy.get_distribution(observations)
            log_prob, entropy = distribution.log_prob(actions), distribution.entropy()
        (0.3 * log_prob.sum() + 0.1 * entropy.sum()).backward()
        gradients.append(th.cat([p.grad.flatten() for p in policy.parameters()]))
    assert th.equal(*gradients)
