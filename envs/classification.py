"""Classification as RL on scikit-learn's bundled ``digits`` (1797 8x8 images, 10 classes, no download).

One step per episode: observe an image (64 floats in [0, 1]), act with a label (``Discrete(10)``),
succeed if it is the true label (reward 1, ``info["is_success"] = True``). The paper's ImageNet sanity
check at CPU scale: with many rollouts per image MaxRL should track cross-entropy training, while
REINFORCE stalls at the initial pass rate of about 1/10.

The train/test split is fixed (stratified, 20% test, ``numpy.random.RandomState(0)`` whose stream numpy
keeps stable): 1438 train and 359 test images. ``reset(seed=s)`` shows image ``s % n`` of the split.

:class:`DigitsClassificationEnv` is the task as a ``gym.Env`` (``gym.make("MaxRL/Digits-v0")``), one episode at a
time; :class:`DigitsTask` is the same task vectorized over seeds (``sb3_maxrl.common.one_step.OneStepTask``):
``MaxRL("MlpPolicy", DigitsTask())`` samples the N guesses of an image from one policy forward pass.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")
NUM_CLASSES = 10
TEST_FRACTION = 0.2


@lru_cache(maxsize=1)
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    labels = load_digits().target
    rng = np.random.RandomState(0)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(TEST_FRACTION * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return {"train": rng.permutation(np.concatenate(train)), "test": rng.permutation(np.concatenate(test))}


@lru_cache(maxsize=2)
def _load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = _split_indices()[split]
    images = (digits.data[index] / 16.0).astype(np.float32)
    images.setflags(write=False)
    labels = digits.target[index].astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def load_digits_split(split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """The fixed split the env uses, in the env's order (for a supervised baseline).

    :param split: ``"train"`` or ``"test"``
    :return: ``(images, labels)``: float32 ``(n, 64)`` in [0, 1] and int64 ``(n,)``, read-only
    """
    _check_split(split)
    return _load_split(split)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; use one of {SPLITS}")


def _spaces(images: np.ndarray) -> tuple[spaces.Box, spaces.Discrete]:
    """The observation space (an image, 64 floats in [0, 1]) and the action space (a label)."""
    return spaces.Box(low=0.0, high=1.0, shape=(images.shape[1],), dtype=np.float32), spaces.Discrete(NUM_CLASSES)


class DigitsTask:
    """
    Digits classification vectorized over seeds (implements ``sb3_maxrl.common.one_step.OneStepTask``).

    Seed ``s`` is image ``s % num_samples`` of the split, as ``DigitsClassificationEnv(split).reset(seed=s)`` shows
    it; a guess succeeds (likelihood 1) if it is the image's label.

    :param split: ``"train"`` (1438 images) or ``"test"`` (359 images)
    """

    def __init__(self, split: Split = "train") -> None:
        _check_split(split)
        self.split = split
        self.images, self.labels = load_digits_split(split)
        self.observation_space, self.action_space = _spaces(self.images)

    @property
    def num_samples(self) -> int:
        """Number of images in the split."""
        return len(self.labels)

    @property
    def seeds(self) -> np.ndarray:
        """One seed per image of the split: ``0 .. num_samples - 1`` (as training ``train_seeds`` or test seeds)."""
        return np.arange(self.num_samples)

    def _indices(self, seeds: Any) -> np.ndarray:
        seeds = np.asarray(seeds)
        if seeds.ndim != 1 or not (np.issubdtype(seeds.dtype, np.integer) or seeds.size == 0):
            raise ValueError(f"seeds must be a 1-D sequence of ints (one per image), got {seeds!r}.")
        return seeds.astype(np.int64) % self.num_samples

    def examples(self, seeds: Any) -> tuple[np.ndarray, np.ndarray]:
        """
        The image and label of every seed.

        :param seeds: ``(G,)`` ints
        :return: images ``(G, 64)`` float32 in [0, 1] and labels ``(G,)`` int64
        """
        indices = self._indices(seeds)
        return self.images[indices], self.labels[indices]

    def observations(self, seeds: Any) -> np.ndarray:
        """
        The image of every seed (``OneStepTask``).

        :param seeds: ``(G,)`` ints
        :return: ``(G, 64)`` float32 in [0, 1]
        """
        return self.images[self._indices(seeds)]

    def likelihoods(self, seeds: Any, actions: np.ndarray) -> np.ndarray:
        """
        1.0 where a guess is the label of its seed's image, else 0.0 (``OneStepTask``).

        :param seeds: ``(G,)`` ints
        :param actions: ``(G, N)`` guessed labels, row ``g`` for seed ``g``
        :return: ``(G, N)`` float64 in ``{0, 1}``
        """
        labels = self.labels[self._indices(seeds)]
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[0] != len(labels):
            raise ValueError(f"actions must have shape (n_seeds={len(labels)}, N), got {actions.shape}.")
        return (actions == labels[:, None]).astype(np.float64)


class DigitsClassificationEnv(gym.Env[np.ndarray, np.int64]):
    """One-step classification of an 8x8 digit; success means the predicted label is right.

    :param split: ``"train"`` (1438 images) or ``"test"`` (359 images)
    :param render_mode: None or ``"rgb_array"`` (the digit, 64x64 grey)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, split: Split = "train", render_mode: str | None = None) -> None:
        _check_split(split)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        self.split = split
        self.render_mode = render_mode
        self.images, self.labels = load_digits_split(split)
        self.observation_space, self.action_space = _spaces(self.images)
        self.index = -1
        self._done = True

    @property
    def num_samples(self) -> int:
        """Number of images in the split."""
        return len(self.labels)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Show image ``seed % num_samples`` of the split (a random one if ``seed`` is None).

        :param seed: the start state's seed
        :param options: unused
        """
        super().reset(seed=seed)
        self.index = seed % self.num_samples if seed is not None else int(self.np_random.integers(self.num_samples))
        self._done = False
        return self.images[self.index].copy(), {"index": self.index}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Score the predicted label; the episode ends.

        :param action: the predicted label, 0..9
        """
        if self._done:
            raise RuntimeError("DigitsClassificationEnv episodes last one step: call reset() before step()")
        self._done = True
        label = int(self.labels[self.index])
        success = int(action) == label
        info = {"is_success": success, "label": label, "prediction": int(action)}
        return self.images[self.index].copy(), float(success), True, False, info

    def render(self) -> np.ndarray | None:
        """The current digit as a 64x64 RGB image (white ink on black), if ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        grey = (255 * self.images[max(self.index, 0)].reshape(8, 8)).astype(np.uint8)
        return np.repeat(np.kron(grey, np.ones((8, 8), dtype=np.uint8))[..., None], 3, axis=2)
