"""Classification as RL on sklearn's digits: the fixed split, seed -> sample, success = right label."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sb3_maxrl.common.one_step import OneStepTask
from sb3_maxrl_envs.classification import DigitsClassificationEnv, DigitsTask, _split_indices, load_digits_split


def test_split_is_fixed_disjoint_complete_and_stratified() -> None:
    indices = _split_indices()
    train, test = indices["train"], indices["test"]
    assert (len(train), len(test)) == (1438, 359)
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    counts = np.bincount(load_digits().target[test], minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37
    np.testing.assert_array_equal(train[:5], TRAIN_HEAD)


@pytest.mark.parametrize("split", ["train", "test"])
def test_seed_selects_the_sample_modulo_the_split_size(split: str) -> None:
    env = DigitsClassificationEnv(split=split)
    images, labels = load_digits_split(split)
    digits = load_digits()
    for seed in (0, 1, 17, env.num_samples - 1, env.num_samples + 5, 10**6):
        obs, info = env.reset(seed=seed)
        assert info["index"] == seed % env.num_samples
        np.testing.assert_array_equal(obs, images[seed % env.num_samples])
        original = _split_indices()[split][seed % env.num_samples]
        np.testing.assert_array_equal(obs, (digits.data[original] / 16.0).astype(np.float32))
        assert labels[seed % env.num_samples] == digits.target[original]
        assert obs.dtype == np.float32 and obs.min() >= 0.0 and obs.max() <= 1.0


def test_success_means_the_right_label() -> None:
    env = DigitsClassificationEnv()
    for seed in range(20):
        env.reset(seed=seed)
        label = int(env.labels[seed])
        for action in (label, (label + 1) % 10):
            env.reset(seed=seed)
            _, reward, terminated, truncated, info = env.step(action)
            assert (terminated, truncated) == (True, False)
            assert info == {"is_success": action == label, "label": label, "prediction": action}
            assert reward == float(action == label)


def test_unseeded_resets_draw_from_the_env_rng() -> None:
    env = DigitsClassificationEnv(split="test")
    env.reset(seed=3)
    first = [env.reset()[1]["index"] for _ in range(10)]
    env.reset(seed=3)
    assert [env.reset()[1]["index"] for _ in range(10)] == first
    assert len(set(first)) > 1


def test_step_outside_an_episode_raises() -> None:
    env = DigitsClassificationEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_digits_task_is_the_env_vectorized_over_seeds(split: str) -> None:
    task, env = DigitsTask(split), DigitsClassificationEnv(split=split)
    assert isinstance(task, OneStepTask) and task.num_samples == env.num_samples
    assert task.observation_space == env.observation_space and task.action_space == env.action_space
    np.testing.assert_array_equal(task.seeds, np.arange(env.num_samples))
    seeds = np.array([0, 5, env.num_samples + 5, 10**6])
    actions = np.tile(np.arange(10), (len(seeds), 1))  # every label for every image
    images, labels = task.examples(seeds)
    np.testing.assert_array_equal(task.observations(seeds), images)
    likelihoods = task.likelihoods(seeds, actions)
    assert likelihoods.shape == (len(seeds), 10) and likelihoods.dtype == np.float64
    for row, seed in enumerate(seeds):
        observation, _ = env.reset(seed=int(seed))
        np.testing.assert_array_equal(images[row], observation)
        for action in range(10):
            env.reset(seed=int(seed))
            assert likelihoods[row, action] == env.step(action)[1]
        assert labels[row] == env.labels[env.index] and likelihoods[row].sum() == 1.0


def test_digits_task_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="is not a split"):
        DigitsTask("validation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D sequence of ints"):
        DigitsTask().observations([[0, 1]])
    with pytest.raises(ValueError, match=r"actions must have shape \(n_seeds=2, N\)"):
        DigitsTask().likelihoods([0, 1], np.zeros(2, dtype=np.int64))


TRAIN_HEAD = np.array([1639, 1331, 1050, 1756, 1688])  # pins the split across numpy and scikit-learn versions
