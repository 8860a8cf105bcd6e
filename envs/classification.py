"""Classification as RL on scikit-learn's bundled ``digits`` (1797 8x8 images, 10 classes, no download).

One step per episode: observe an image (64 floats in [0, 1]), act with a label (``Discrete(10)``),
succeed if it is the true label (reward 1, ``info["is_success"] = True``). The paper's ImageNet sanity
check at CPU scale: with many rollouts per image MaxRL should track cross-entropy training, while
REINFORCE stalls at the initial pass rate of about 1/10.

The train/test split is fixed (stratified, 20% test, ``numpy.random.RandomState(0)`` whose stream numpy
keeps stable): 1438 train and 359 test images. ``reset(seed=s)`` shows image ``s % n`` of the split.
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
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; use one of {SPLITS}")
    return _load_split(split)


class DigitsClassificationEnv(gym.Env[np.ndarray, np.int64]):
    """One-step classification of an 8x8 digit; success means the predicted label is right.

    :param split: ``"train"`` (1438 images) or ``"test"`` (359 images)
    :param render_mode: None or ``"rgb_array"`` (the digit, 64x64 grey)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, split: Split = "train", render_mode: str | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is not a split; use one of {SPLITS}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        self.split = split
        self.render_mode = render_mode
        self.images, self.labels = load_digits_split(split)
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=(self.images.shape[1],), dtype=np.float32)
        self.action_space = spaces.Discrete(NUM_CLASSES)
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
