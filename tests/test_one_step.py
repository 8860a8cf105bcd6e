"""One-step groups for one forward pass: the sampler, the aggregated loss (exact), the VecEnv, the exact evaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_maxrl import MaxRL, group_advantages
from sb3_maxrl.common.group_rollouts import collect_group_episodes
from sb3_maxrl.common.one_step import (
    OneStepBatch,
    OneStepTask,
    OneStepVecEnv,
    _class_log_probs,
    collect_one_step_groups,
    evaluate_one_step,
    one_step_losses,
    one_step_task,
    sample_categorical,
)
from sb3_maxrl.common.start_states import EpisodeStart, StartStateVecEnv, start_state_control
from sb3_maxrl.common.type_aliases import EpisodeBatch
from sb3_maxrl.maxrl.policies import MaxRLPolicy
from sb3_maxrl_envs import PrototypesEnv, PrototypesTask
from sb3_maxrl_envs.regression import RegressionEnv, RegressionTask


def make_policy(task: OneStepTask, net_arch: list[int] | None = None, seed: int = 0) -> MaxRLPolicy:
    th.manual_seed(seed)
    policy = MaxRLPolicy(
        task.observation_space, task.action_space, lambda _: 0.1, net_arch=[16] if net_arch is None else net_arch
    )
    return policy.double()


@pytest.mark.parametrize("temperature", [0.0, 1.0, 5.0])
def test_sample_categorical_draws_each_class_with_its_probability(temperature: float) -> None:
    th.manual_seed(0)
    n_classes, n_draws = 50, 200_000
    log_probs = th.log_softmax(temperature * th.randn(3, n_classes, dtype=th.float64), dim=1)
    draws = sample_categorical(log_probs, n_draws)
    assert draws.shape == (3, n_draws) and draws.dtype == th.int64
    for row, row_log_probs in zip(draws, log_probs, strict=True):
        observed = th.bincount(row, minlength=n_classes).double().numpy()
        expected = row_log_probs.exp().numpy() * n_draws
        small = expected < 5  # Pearson's test, the classes expected fewer than 5 times pooled into one cell
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
        statistic = ((observed - expected) ** 2 / np.maximum(expected, 1e-300)).sum()
        p_value = th.special.gammaincc(th.tensor((len(observed) - 1) / 2), th.tensor(statistic / 2))  # chi2 survival
        assert float(p_value) > 1e-3


@pytest.mark.parametrize("temperature", [0.0, 0.3, 3.0, 30.0])
def test_sample_categorical_is_the_inverse_cdf_of_its_uniform_draws(temperature: float) -> None:
    """The guide table only speeds up the search: the classes are those of a full binary search of the same draws."""
    log_probs = th.log_softmax(temperature * th.randn(16, 300, generator=th.Generator().manual_seed(1)), dim=1)
    th.manual_seed(3)
    draws = sample_categorical(log_probs, 2000)
    th.manual_seed(3)
    cdf = log_probs.double().exp().cumsum(dim=1)
    total = th.nextafter(cdf[:, -1:], th.zeros(1, dtype=th.float64))
    expected = th.searchsorted(cdf, th.rand(16, 2000, dtype=th.float64) * total, right=True)
    th.testing.assert_close(draws, expected, rtol=0, atol=0)


def test_sample_categorical_never_draws_a_class_of_probability_zero() -> None:
    log_probs = th.full((4, 12), -th.inf)
    log_probs[0, 0] = 0.0  # one class at the start
    log_probs[1, 11] = 0.0  # one class at the end
    log_probs[2, [0, 11]] = np.log(0.5)  # a gap of zeros in between
    log_probs[3, 3:9] = np.log(1 / 6)
    draws = sample_categorical(log_probs, 5000)
    assert (draws[0] == 0).all() and (draws[1] == 11).all()
    assert set(draws[2].tolist()) == {0, 11} and set(draws[3].tolist()) == set(range(3, 9))


def per_episode_actions(batch: OneStepBatch) -> tuple[th.Tensor, th.Tensor]:
    """The batch's actions and their old log-probabilities, one row per episode, as MaxRL's rollout buffer holds them."""
    n_episodes = batch.likelihoods.size
    if batch.per_class:
        return batch.actions.reshape(-1), batch.old_log_probs.gather(1, batch.actions).reshape(-1)
    return batch.actions.reshape(n_episodes, -1), batch.old_log_probs.reshape(-1)


def per_episode_losses(policy: MaxRLPolicy, batch: OneStepBatch, advantages: np.ndarray, clip_range: float | None):
    """MaxRL.train's per-episode loss on the same samples: every episode is a step of its own."""
    group_size = batch.group_size
    observations = batch.observations.repeat_interleave(group_size, dim=0)
    actions, old_log_prob = per_episode_actions(batch)
    advantage = th.as_tensor(advantages, dtype=th.float64).reshape(-1)
    log_prob, entropy = policy.evaluate_actions(observations, actions)
    scale = 1.0 / len(actions)
    if clip_range is None:
        policy_loss = -(advantage * log_prob).sum() * scale
    else:
        ratio = th.exp(log_prob - old_log_prob)
        clipped_ratio = th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        policy_loss = -th.min(advantage * ratio, advantage * clipped_ratio).sum() * scale
    return policy_loss, -entropy.sum() * scale


def gradient(loss: th.Tensor, policy: MaxRLPolicy) -> th.Tensor:
    gradients = th.autograd.grad(loss, list(policy.parameters()), retain_graph=True, allow_unused=True)
    parameters = policy.parameters()
    return th.cat([(th.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(parameters, gradients, strict=True)])


def regression_task() -> RegressionTask:
    return RegressionTask(noise_scale=0.3, tau=0.2)


@pytest.mark.parametrize("clip_range", [None, 0.2])
@pytest.mark.parametrize(("task_name", "estimator"), [("classes", "maxrl"), ("classes", "grpo"), ("box", "maxrl_general")])
def test_aggregated_loss_equals_the_per_episode_loss_in_value_and_gradient(
    clip_range: float | None, task_name: str, estimator: str
) -> None:
    task = PrototypesTask(n_classes=6, dim=5, noise=1.0) if task_name == "classes" else regression_task()
    policy = make_policy(task)
    batch = collect_one_step_groups(policy, task, np.arange(10), 64)
    advantages = group_advantages(batch.likelihoods, estimator)
    assert (advantages > 0).any() and (advantages < 0).any()
    batch.set_advantages(advantages)
    if task_name == "classes":
        assert len(th.unique(batch.actions[0])) < batch.group_size  # repeated actions: the aggregation does something
    with th.no_grad():  # move the policy away from the sampling one, so that ratios differ from 1 (and get clipped)
        for parameter in policy.parameters():
            parameter.add_(0.5 * th.randn_like(parameter))
    fast = one_step_losses(policy, batch, clip_range)
    slow_policy_loss, slow_entropy_loss = per_episode_losses(policy, batch, advantages, clip_range)
    assert fast.policy_loss.item() == pytest.approx(slow_policy_loss.item(), abs=1e-10)
    assert fast.entropy_loss.item() == pytest.approx(slow_entropy_loss.item(), abs=1e-10)
    fast_gradient = gradient(fast.policy_loss, policy)
    slow_gradient = gradient(slow_policy_loss, policy)
    assert float(slow_gradient.abs().max()) > 1e-3
    th.testing.assert_close(fast_gradient, slow_gradient, atol=1e-6, rtol=0.0)
    th.testing.assert_close(gradient(fast.entropy_loss, policy), gradient(slow_entropy_loss, policy), atol=1e-6, rtol=0.0)
    if clip_range is None:
        assert fast.clip_fraction is None
    else:
        observations = batch.observations.repeat_interleave(batch.group_size, dim=0)
        actions, old_log_prob = per_episode_actions(batch)
        ratio = th.exp(policy.evaluate_actions(observations, actions)[0] - old_log_prob)
        expected = float((th.abs(ratio - 1) > clip_range).double().mean())
        assert 0.0 < expected < 1.0 and fast.clip_fraction == pytest.approx(expected)


def test_collect_one_step_groups_shares_the_observation_and_scores_every_sample() -> None:
    task = PrototypesTask(n_classes=4, dim=3)
    policy = make_policy(task)
    seeds = np.array([5, 9, 5])
    batch = collect_one_step_groups(policy, task, seeds, 32)
    assert batch.actions.shape == (3, 32) and batch.likelihoods.shape == (3, 32) and batch.old_log_probs.shape == (3, 4)
    np.testing.assert_array_equal(batch.observations.numpy(), task.observations(seeds))
    np.testing.assert_array_equal(batch.likelihoods, batch.actions.numpy() == task.labels(seeds)[:, None])
    batch.set_advantages(np.zeros((3, 32)))
    assert not batch.any_nonzero_advantage
    with pytest.raises(ValueError, match="advantages must have shape"):
        batch.set_advantages(np.zeros((3, 31)))


class BrokenTask:
    """A task whose outputs have the wrong shapes."""

    observation_space = spaces.Box(-1.0, 1.0, (2,))
    action_space = spaces.Discrete(3)

    def __init__(self, bad: str):
        self.bad = bad

    def observations(self, seeds: np.ndarray) -> np.ndarray:
        return np.zeros((len(seeds), 3 if self.bad == "observations" else 2), dtype=np.float32)

    def likelihoods(self, seeds: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.zeros(len(seeds)) if self.bad == "likelihoods" else np.zeros(actions.shape)


@pytest.mark.parametrize("bad", ["observations", "likelihoods"])
def test_a_task_returning_wrong_shapes_gets_a_clear_error(bad: str) -> None:
    task = BrokenTask(bad)
    policy = make_policy(task)
    with pytest.raises(ValueError, match=rf"{bad}\(seeds.*returned shape"):
        collect_one_step_groups(policy, task, [0, 1], 4)


def test_one_step_vec_env_has_native_start_state_control() -> None:
    task = PrototypesTask(n_classes=5, dim=3)
    env = OneStepVecEnv(task, num_envs=2, seed=0)
    assert isinstance(env, StartStateVecEnv) and start_state_control(env) is env and one_step_task(env) is task
    box_task = regression_task()
    assert one_step_task(OneStepVecEnv(box_task)) is box_task and one_step_task(DummyVecEnv([RegressionEnv])) is None
    env.schedule_episodes({0: [EpisodeStart(11), EpisodeStart(12, 99)], 1: [EpisodeStart(21)]}, replace=True)
    observations = env.reset()
    np.testing.assert_array_equal(observations, task.observations([11, 21]))
    labels = task.labels([11, 21])
    new_observations, rewards, dones, infos = env.step(np.array([labels[0], (labels[1] + 1) % 5]))
    np.testing.assert_array_equal(rewards, [1.0, 0.0])
    assert dones.all() and [info["start_seed"] for info in infos] == [11, 21]
    assert [info["is_success"] for info in infos] == [True, False] and infos[0]["likelihood"] == 1.0
    np.testing.assert_array_equal(infos[1]["terminal_observation"], observations[1])
    np.testing.assert_array_equal(new_observations[0], task.observations([12])[0])  # slot 0 auto-reset to its next start
    with pytest.raises(TypeError, match="not a OneStepTask"):
        OneStepVecEnv(object())  # type: ignore[arg-type]


def test_one_step_vec_env_runs_in_the_per_episode_collector() -> None:
    task = PrototypesTask(n_classes=3, dim=2)
    env = OneStepVecEnv(task, num_envs=3)
    rng = np.random.default_rng(0)

    def act(observations):
        actions = rng.integers(3, size=len(observations))
        return actions, actions, np.zeros(len(observations))

    episodes = collect_group_episodes(env, [4, 8], 5, act)
    assert episodes.likelihood_matrix.shape == (2, 5) and set(np.unique(episodes.likelihoods)) <= {0.0, 1.0}
    assert (episodes.lengths == 1).all()


def test_evaluate_one_step_is_exact() -> None:
    task = PrototypesTask(n_classes=7, dim=3)
    policy = make_policy(task, net_arch=[])
    with th.no_grad():
        policy.action_net.weight.normal_()
    seeds = np.arange(30)
    result = evaluate_one_step(policy, task, seeds, ks=(1, 5), batch_size=8)
    with th.no_grad():
        probabilities = th.softmax(policy.action_net(th.as_tensor(task.observations(seeds), dtype=th.float64)), dim=1)
    right = probabilities[th.arange(30), th.as_tensor(task.labels(seeds))].numpy()
    np.testing.assert_allclose(result.success_probabilities, right, rtol=1e-12)
    assert result.pass_at_k[5] == pytest.approx(float(np.mean(1 - (1 - right) ** 5)), rel=1e-12)
    assert result.accuracy == pytest.approx(float(np.mean(probabilities.argmax(dim=1).numpy() == task.labels(seeds))))
    metrics = result.metrics()
    assert metrics["neg_log_pass@1"] == pytest.approx(-np.log(right.mean())) and metrics["nll"] == pytest.approx(
        -np.log(right).mean()
    )
    with pytest.raises(ValueError, match="every k of pass@k must be an int >= 1"):
        evaluate_one_step(policy, task, seeds, ks=(0,))


def one_step_model(task: OneStepTask, **kwargs) -> MaxRL:
    settings = dict(group_size=32, n_groups=6, max_grad_norm=None, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
    return MaxRL("MlpPolicy", task, **{**settings, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(("clip_range", "n_epochs"), [(None, 1), (0.2, 3)])
@pytest.mark.parametrize(("task_name", "estimator"), [("classes", "maxrl"), ("box", "maxrl_general")])
def test_maxrl_train_on_a_one_step_task_equals_its_per_episode_train(
    clip_range: float | None, n_epochs: int, task_name: str, estimator: str
) -> None:
    if task_name == "classes":
        task: OneStepTask = PrototypesTask(n_classes=6, dim=5, noise=1.0)
        episodic_env = DummyVecEnv([lambda: PrototypesEnv(n_classes=6, dim=5, noise=1.0)])
    else:
        task = regression_task()
        episodic_env = DummyVecEnv([lambda: RegressionEnv(noise_scale=0.3, tau=0.2)])
    sgd = dict(net_arch=[8], optimizer_class=th.optim.SGD)  # plain SGD: the parameter change is -lr * gradient
    settings = dict(learning_rate=0.5, estimator=estimator, n_epochs=n_epochs, clip_range=clip_range, policy_kwargs=sgd)
    fast = one_step_model(task, **settings)
    assert isinstance(fast.env, OneStepVecEnv) and one_step_task(fast.env) is task
    slow = one_step_model(episodic_env, **settings)
    slow.policy.load_state_dict(fast.policy.state_dict())
    _, callback = fast._setup_learn(10**6, None)
    assert fast.collect_rollouts(fast.env, callback, fast.rollout_buffer)
    batch = fast._one_step_batch
    assert batch is not None and batch.any_nonzero_advantage
    # the same episodes, as MaxRL's per-episode path stores them: one step each, in the rollout buffer
    slow._setup_learn(10**6, None)
    n_episodes, group_size = batch.likelihoods.size, batch.group_size
    actions, old_log_prob = per_episode_actions(batch)
    observations = np.repeat(batch.observations.numpy(), group_size, axis=0)
    slow.rollout_buffer.add(observations, actions.numpy(), old_log_prob.numpy(), np.arange(n_episodes))
    episodes = EpisodeBatch(batch.seeds, group_size, batch.likelihoods.reshape(-1), np.ones(n_episodes), n_episodes)
    slow.rollout_buffer.finalize(episodes, group_advantages(batch.likelihoods, estimator).reshape(-1))
    before = th.nn.utils.parameters_to_vector(fast.policy.parameters()).detach().clone()
    fast.train()
    slow.train()
    after_fast = th.nn.utils.parameters_to_vector(fast.policy.parameters()).detach()
    after_slow = th.nn.utils.parameters_to_vector(slow.policy.parameters()).detach()
    assert float((after_slow - before).abs().max()) > 1e-2
    th.testing.assert_close(after_fast, after_slow, atol=1e-6, rtol=0.0)
    for key in ("train/policy_gradient_loss", "train/entropy_loss"):
        assert fast.logger.name_to_value[key] == pytest.approx(slow.logger.name_to_value[key], abs=1e-6)
    if clip_range is not None:
        assert (
            0.0
            < fast.logger.name_to_value["train/clip_fraction"]
            == pytest.approx(slow.logger.name_to_value["train/clip_fraction"])
        )


def test_box_actions_are_sampled_around_the_group_mean_and_scored_clipped() -> None:
    task = RegressionTask(noise_scale=0.0, tau=0.5)
    policy = make_policy(task)
    with th.no_grad():
        policy.log_std.fill_(np.log(2.0))  # wide: many samples fall outside the Box [-1, 1]
    seeds = np.array([3, 8, 3])
    batch = collect_one_step_groups(policy, task, seeds, 4000)
    assert batch.actions.shape == (3, 4000, 1) and batch.old_log_probs.shape == (3, 4000) and not batch.per_class
    np.testing.assert_array_equal(batch.observations.numpy(), task.observations(seeds))
    with th.no_grad():
        normal = policy.get_distribution(batch.observations).distribution
        np.testing.assert_allclose(batch.old_log_probs, normal.log_prob(batch.actions.transpose(0, 1)).sum(-1).T, rtol=1e-12)
    samples = batch.actions[..., 0]
    np.testing.assert_allclose(samples.mean(dim=1), normal.loc[:, 0], atol=0.13)  # 4 standard errors (2 / sqrt(4000))
    np.testing.assert_allclose(samples.std(dim=1), 2.0, rtol=0.05)
    assert (samples.abs() > 1).float().mean() > 0.3  # unclipped: the log-probabilities are those of the samples
    clipped = np.clip(batch.actions.numpy(), -1.0, 1.0)
    np.testing.assert_array_equal(batch.likelihoods, task.likelihoods(seeds, clipped))


class TemperaturePolicy(MaxRLPolicy):
    """A categorical policy whose distribution is not its action net's softmax: its logits are halved."""

    def get_distribution(self, obs):
        distribution = super().get_distribution(obs)
        return distribution.proba_distribution(action_logits=distribution.distribution.logits / 2)


def test_class_log_probs_skip_the_distribution_object_with_identical_numbers() -> None:
    task = PrototypesTask(n_classes=9, dim=4)
    observations = th.as_tensor(task.observations(np.arange(20)))
    for net_arch in ([], [16]):
        policy = MaxRLPolicy(task.observation_space, task.action_space, lambda _: 0.1, net_arch=net_arch)
        expected = policy.get_distribution(observations).distribution.logits
        assert th.equal(_class_log_probs(policy, observations), expected)  # bit for bit
    th.manual_seed(0)
    hot = TemperaturePolicy(task.observation_space, task.action_space, lambda _: 0.1, net_arch=[16])
    expected = hot.get_distribution(observations).distribution.logits
    assert th.equal(_class_log_probs(hot, observations), expected)  # an overridden get_distribution is used
    assert not th.allclose(expected, MaxRLPolicy.get_distribution(hot, observations).distribution.logits)


def test_maxrl_learns_a_one_step_task_through_learn() -> None:
    task = PrototypesTask(n_classes=50, dim=16, noise=0.5, n_test=500)
    model = one_step_model(task, group_size=64, n_groups=16, learning_rate=0.05, n_epochs=1, clip_range=None)
    before = evaluate_one_step(model, task, task.test_seeds).pass_at_k[1]
    calls: list[int] = []

    class CountSteps(BaseCallback):
        def _on_step(self) -> bool:
            calls.append(int(self.locals["one_step_batch"].likelihoods.size))
            return True

    model.learn(150 * 64 * 16, callback=CountSteps())
    after = evaluate_one_step(model, task, task.test_seeds)
    assert calls == [64 * 16] * 150 and model.num_timesteps == 150 * 64 * 16
    assert before < 0.04 and after.pass_at_k[1] > 0.3 and after.accuracy > 0.6  # 1 / C = 0.02
    logged = model.logger.name_to_value
    assert "train/policy_gradient_loss" in logged and logged["train/steps_per_update"] == 64 * 16


class NeverSucceeds(BrokenTask):
    """Every guess fails: every advantage is zero."""

    def __init__(self) -> None:
        super().__init__("nothing")


def test_an_update_whose_advantages_are_all_zero_skips_the_optimizer() -> None:
    model = one_step_model(NeverSucceeds(), policy_kwargs=dict(net_arch=[], optimizer_class=th.optim.SGD))
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    model.learn(3 * 32 * 6)
    assert model.n_skipped_updates == 3 and model.logger.name_to_value["train/skipped_zero_advantage"] == 1
    th.testing.assert_close(th.nn.utils.parameters_to_vector(model.policy.parameters()).detach(), before)


def test_minibatches_split_the_groups_of_an_update() -> None:
    task = PrototypesTask(n_classes=5, dim=3)
    batch = collect_one_step_groups(make_policy(task), task, np.arange(7), 16)
    batch.set_advantages(group_advantages(batch.likelihoods, "rloo"))
    parts = list(batch.minibatches(batch_size=40))  # 40 episodes: 2 groups of 16
    assert [part.n_groups for part in parts] == [2, 2, 2, 1]
    assert sorted(np.concatenate([part.seeds for part in parts]).tolist()) == list(range(7))
    for part in parts:
        rows = th.as_tensor(part.seeds)
        th.testing.assert_close(part.positive_advantages, batch.positive_advantages[rows])
        th.testing.assert_close(part.advantage_sums, batch.advantage_sums[rows])
        th.testing.assert_close(part.observations, batch.observations[rows])
    model = one_step_model(task, batch_size=40, n_epochs=2)
    model.learn(2 * 32 * 6)
    assert model._n_updates == 4


def test_sgd_with_momentum_weight_decay_and_a_cosine_schedule_is_a_policy_kwargs_option(tmp_path) -> None:
    task = PrototypesTask(n_classes=10, dim=4)

    def cosine(progress_remaining: float) -> float:
        return 0.1 * 0.5 * (1.0 + np.cos(np.pi * (1.0 - progress_remaining)))

    sgd = dict(net_arch=[], optimizer_class=th.optim.SGD, optimizer_kwargs=dict(momentum=0.9, weight_decay=1e-4))
    model = one_step_model(task, learning_rate=cosine, n_epochs=1, clip_range=None, policy_kwargs=sgd)
    optimizer = model.policy.optimizer
    assert isinstance(optimizer, th.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["weight_decay"] == 1e-4 and "eps" not in optimizer.defaults
    assert len(model.policy.latent_net) == 0 and model.policy.action_net.in_features == 4  # linear softmax policy
    model.learn(4 * 32 * 6)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cosine(0.0), abs=1e-12)  # decayed to 0 at the end
    assert all("momentum_buffer" in state for state in optimizer.state.values())
    model.save(tmp_path / "sgd")
    loaded = MaxRL.load(tmp_path / "sgd", env=task)
    assert isinstance(loaded.policy.optimizer, th.optim.SGD) and loaded.policy.optimizer.defaults["momentum"] == 0.9
    th.testing.assert_close(
        th.nn.utils.parameters_to_vector(loaded.policy.parameters()),
        th.nn.utils.parameters_to_vector(model.policy.parameters()),
    )
    loaded.learn(32 * 6)
