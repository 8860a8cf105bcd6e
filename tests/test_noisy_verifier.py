"""The noisy verifier: flip rates, independence within a group, the true success kept, the protocol passed through."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl.common.noisy_verifier import TRUE_SUCCESS_KEY, NoisyVerifier, reported_pass_rate
from sb3_maxrl.common.start_states import EpisodeStart, start_state_control, uses_idle_slots
from sb3_maxrl_envs.strict_maze import StrictMazeEnv, StrictMazeVecEnv


def run_episodes(venv, n_episodes: int, expert: bool):
    """Finish ``n_episodes`` episodes with the BFS expert (always a success) or by walking into the top wall (always a
    failure); return the reported and the true successes and the final rewards, in finishing order."""
    native = venv.unwrapped
    venv.reset()
    reported, true, rewards = [], [], []
    while len(reported) < n_episodes:
        actions = native.expert_actions() if expert else np.zeros(venv.num_envs, dtype=np.int64)
        _, step_rewards, dones, infos = venv.step(actions)
        for slot in np.flatnonzero(dones):
            reported.append(infos[slot]["is_success"])
            true.append(infos[slot][TRUE_SUCCESS_KEY])
            rewards.append(step_rewards[slot])
    return np.array(reported[:n_episodes]), np.array(true[:n_episodes]), np.array(rewards[:n_episodes])


@pytest.mark.parametrize("expert, rate_name", [(True, "false_negative_rate"), (False, "false_positive_rate")])
def test_flip_rates_match_within_sampling_error(expert, rate_name):
    native = StrictMazeVecEnv(num_envs=64, size=7, seed=0)
    venv = NoisyVerifier(native, false_positive_rate=0.1, false_negative_rate=0.3, seed=1)
    reported, true, rewards = run_episodes(venv, 4000, expert)
    assert np.all(true == expert)
    rate = getattr(venv, rate_name)
    flips = np.mean(reported != true)
    assert abs(flips - rate) < 4 * np.sqrt(rate * (1 - rate) / len(reported))
    # the reward is the reported success (the strict maze rewards the true success on the final step)
    np.testing.assert_array_equal(rewards, reported.astype(np.float32))
    assert venv.n_episodes >= 4000
    assert (venv.n_false_negatives if expert else venv.n_false_positives) > 0
    assert (venv.n_false_positives if expert else venv.n_false_negatives) == 0


def test_reported_pass_rate_is_the_mean_of_reported_successes():
    # slot 0 always succeeds, slot 1 always fails: the true pass rate p is the share of successes among the episodes
    a, b = 0.2, 0.1
    venv = NoisyVerifier(StrictMazeVecEnv(num_envs=2, size=7, seed=0), false_positive_rate=a, false_negative_rate=b, seed=3)
    native = venv.unwrapped
    venv.reset()
    reported, true = [], []
    while len(reported) < 6000:
        actions = native.expert_actions()
        actions[1] = 0  # slot 1 walks into the top wall at once
        _, _, dones, infos = venv.step(actions)
        reported += [infos[slot]["is_success"] for slot in np.flatnonzero(dones)]
        true += [infos[slot][TRUE_SUCCESS_KEY] for slot in np.flatnonzero(dones)]
    p = float(np.mean(true))
    expected = float(reported_pass_rate(p, a, b))
    assert 0.01 < p < 0.99 and expected == pytest.approx(a + (1 - a - b) * p)
    assert abs(np.mean(reported) - expected) < 4 * np.sqrt(expected * (1 - expected) / len(reported))


def test_flips_are_independent_within_a_group_and_fixed_by_the_seed():
    def flips(seed: int) -> np.ndarray:
        venv = NoisyVerifier(StrictMazeVecEnv(num_envs=16, size=7, seed=0), false_negative_rate=0.5, seed=seed)
        # every slot runs the same maze: one group of 16 episodes per round
        start_state_control(venv).schedule_episodes({slot: [EpisodeStart(11)] * 40 for slot in range(16)}, replace=True)
        reported, _, _ = run_episodes(venv, 16 * 20, expert=True)
        return reported.reshape(20, 16)

    first = flips(seed=5)
    assert 0 < first.sum(axis=1).min() and first.sum(axis=1).max() < 16  # no group flipped as one
    np.testing.assert_array_equal(first, flips(seed=5))
    assert not np.array_equal(first, flips(seed=6))


def test_start_state_control_and_idle_slots_pass_through():
    native = StrictMazeVecEnv(num_envs=4, size=7, seed=0)
    venv = NoisyVerifier(native, false_positive_rate=0.1, seed=0)
    assert start_state_control(venv) is native
    assert uses_idle_slots(venv) and uses_idle_slots(VecMonitor(NoisyVerifier(native, seed=0)))
    assert not uses_idle_slots(VecNormalize(NoisyVerifier(StrictMazeVecEnv(num_envs=4, size=7), seed=0)))
    wrapped_gym = NoisyVerifier(DummyVecEnv([lambda: StartStateWrapper(StrictMazeEnv(7))]), seed=0)
    assert not uses_idle_slots(wrapped_gym)  # the wrapper keeps idle slots, it does not add them


class PassRateLog(BaseCallback):
    """The ``rollout/pass_rate`` of every update (what MaxRL's estimator saw)."""

    def __init__(self):
        super().__init__()
        self.pass_rates: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:  # MaxRL records the update's rollout stats just before
        if "rollout/pass_rate" in self.model.logger.name_to_value:
            self.pass_rates.append(self.model.logger.name_to_value["rollout/pass_rate"])


def test_maxrl_trains_on_the_reported_success():
    venv = NoisyVerifier(StrictMazeVecEnv(num_envs=32, size=7, seed=0), false_positive_rate=0.5, seed=0)
    model = MaxRL("MlpPolicy", venv, group_size=4, n_groups=8, seed=0, learning_rate=1e-5)
    log = PassRateLog()
    model.learn(3000, callback=log)
    # a random policy on 7x7 almost always fails: MaxRL sees p' = a + (1 - a) p, about a = 0.5
    assert len(log.pass_rates) >= 3
    assert np.mean(log.pass_rates) == pytest.approx(0.5, abs=0.08)
    assert venv.n_false_positives / venv.n_episodes == pytest.approx(0.5, abs=0.08)


class OneStepReward(gym.Env):
    """One step, success, and a reward that is not the success indicator (or a likelihood instead of a success)."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, info: dict, reward: float = 0.5):
        self.info, self.reward = info, reward

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), self.reward, True, False, dict(self.info)


@pytest.mark.parametrize(
    ("info", "reward", "flip_reward", "match"),
    [
        ({"is_success": True}, 0.5, True, "flip_reward=False"),  # a shaped reward: refuse to overwrite it
        ({"likelihood": 0.3}, 0.3, False, "binary success only"),
        ({}, 0.0, False, "reports no info\\['is_success'\\]"),
    ],
)
def test_envs_it_cannot_flip_faithfully_are_refused(info, reward, flip_reward, match):
    venv = NoisyVerifier(DummyVecEnv([lambda: OneStepReward(info, reward)]), false_positive_rate=0.1, flip_reward=flip_reward)
    venv.reset()
    with pytest.raises(ValueError, match=match):
        venv.step(np.zeros(1, dtype=np.int64))


def test_flip_reward_false_leaves_a_shaped_reward_alone():
    venv = NoisyVerifier(DummyVecEnv([lambda: OneStepReward({"is_success": True}, 0.5)]), false_negative_rate=0.9,
                         flip_reward=False, seed=0)
    venv.reset()
    rewards = [venv.step(np.zeros(1, dtype=np.int64))[1][0] for _ in range(50)]
    assert set(rewards) == {0.5} and venv.n_false_negatives > 30


def test_bad_rates_are_refused_with_what_to_do():
    native = StrictMazeVecEnv(num_envs=2, size=7)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        NoisyVerifier(native, false_positive_rate=1.0)
    with pytest.raises(ValueError, match="carries no information"):
        NoisyVerifier(native, false_positive_rate=0.6, false_negative_rate=0.4)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        NoisyVerifier(native, false_negative_rate=-0.1)


LOGITS = np.array([0.3, -0.4, 0.1])
TRUE_SUCCESS = np.array([1.0, 0.0, 0.0])  # arm 0 succeeds


def expected_noisy_gradient(group_size: int, estimator: str, a: float, b: float) -> np.ndarray:
    """E[(1/N) sum_i A_i grad log pi(arm_i)] on a softmax bandit whose successes a verifier reports with false-positive
    rate a and false-negative rate b (NoisyVerifier's model: one independent flip per episode, by its true success),
    exact, over every N-tuple of arms and every pattern of flips."""
    import itertools

    from sb3_maxrl import group_advantages

    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    total = np.zeros(len(probs))
    for arms in itertools.product(range(len(probs)), repeat=group_size):
        truth = TRUE_SUCCESS[list(arms)]
        for flips in itertools.product((False, True), repeat=group_size):
            flipped = np.array(flips)
            reported = np.where(flipped, 1.0 - truth, truth)
            flip_probability = np.where(truth == 1, b, a)
            weight = probs[list(arms)].prod() * np.where(flipped, flip_probability, 1 - flip_probability).prod()
            advantages = group_advantages(reported.reshape(1, -1), estimator).reshape(-1)
            scores = np.eye(len(probs))[list(arms)] - probs
            total += weight * (advantages[:, None] * scores).mean(axis=0)
    return total


@pytest.mark.parametrize(("estimator", "truncation"), [("maxrl", -1), ("maxrl_raw", 0), ("rloo", None)])
@pytest.mark.parametrize(("a", "b"), [(0.0, 0.3), (0.1, 0.0), (0.1, 0.2)])
def test_estimators_under_label_noise_target_their_objective_of_the_reported_pass_rate(estimator, truncation, a, b):
    """The docs' derivation: E[gradient] = w_T(p') (1 - a - b) grad p with p' = a + (1 - a - b) p (T = N - 1 for
    practical MaxRL, N for maxrl_raw, 1 for RLOO), checked by exact enumeration at N = 4."""
    from sb3_maxrl import truncated_ml_weight

    group_size = 4
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    p = float(probs @ TRUE_SUCCESS)
    grad_p = probs * (TRUE_SUCCESS - p)
    t = 1 if truncation is None else group_size + truncation
    target = truncated_ml_weight(float(reported_pass_rate(p, a, b)), t) * (1 - a - b) * grad_p
    np.testing.assert_allclose(expected_noisy_gradient(group_size, estimator, a, b), target, rtol=0, atol=1e-10)
    # and the clean weight is not the same target: the noise is visible to the test
    clean = truncated_ml_weight(p, t) * grad_p
    assert not np.allclose(target, clean, atol=1e-4)
