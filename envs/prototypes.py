"""Classification with many classes as one-step RL: Gaussian prototypes (the paper's ImageNet check at CPU scale).

``n_classes`` prototypes ``mu_c ~ N(0, I_dim)`` are drawn once from ``task_seed``. An example is a label
``y ~ Uniform{0..C-1}`` and ``x = (mu_y + noise * eps) / sqrt(1 + noise^2)`` with ``eps ~ N(0, I_dim)`` (unit
variance per dimension); with the defaults (C = 1000, dim = 64, noise = 1.5) the nearest prototype is right 95% of
the time. One episode is one guess: observe ``x``, act with a class, succeed if it is ``y``. A uniform policy
passes with probability ``1 / C`` (0.001), the regime where REINFORCE stalls and MaxRL does not.

An example is a pure function of ``(task_seed, seed)``: ``reset(seed=s)`` shows example ``s``, and
:meth:`PrototypesTask.examples` computes any batch of seeds at once (a counter-based SplitMix64 stream per seed
and Box-Muller normals, vectorized over seeds), so the episodes of a group share their example, training draws a
fresh example per start seed, and the fixed held-out test set is the seeds ``TEST_SEED_BASE + i`` (``i <
n_test``), disjoint from the training seeds the library draws in ``[0, 2^31)``.

:class:`PrototypesTask` is the vectorized task (``sb3_maxrl.common.one_step.OneStepTask``): ``MaxRL("MlpPolicy",
PrototypesTask())`` trains with one policy forward per group of episodes. :class:`PrototypesEnv` is the same task
as a ``gym.Env`` (``gym.make("MaxRL/Prototypes-v0")``), one episode at a time.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: The held-out test examples are the seeds ``TEST_SEED_BASE + i``: the library's evaluation seed base
#: (``sb3_maxrl.common.start_states.EVAL_SEED_BASE``), never drawn by its training stream.
TEST_SEED_BASE = 2**31
_MAX_SEED = 2**63

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 output function (a bijection of uint64), elementwise; uint64 arithmetic wraps around."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


def _uniforms(keys: np.ndarray, n_values: int) -> np.ndarray:
    """``(len(keys), n_values)`` uniforms in ``(0, 1]``: the SplitMix64 stream started at each key."""
    states = keys[:, None] + _GOLDEN * np.arange(1, n_values + 1, dtype=np.uint64)
    return ((_mix(states) >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53


def _check_seeds(seeds: Any) -> np.ndarray:
    array = np.asarray(seeds)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"seeds must be a 1-D sequence of ints (one per example), got {seeds!r}.")
    if array.size and (int(array.min()) < 0 or int(array.max()) >= _MAX_SEED):
        raise ValueError(f"seeds must lie in [0, 2^63), got min {int(array.min())}, max {int(array.max())}.")
    return array.astype(np.uint64)


class PrototypesTask:
    """
    The Gaussian-prototypes classification task, vectorized over seeds (implements ``OneStepTask``).

    :param n_classes: number of classes C (>= 2); the initial pass rate of a uniform policy is 1 / C
    :param dim: dimension of an observation
    :param noise: standard deviation of the noise around a prototype, before scaling to unit variance
    :param task_seed: seeds the prototypes and the examples: two tasks with the same parameters are the same task
    :param n_test: size of the fixed held-out test set (the seeds in :attr:`test_seeds`)
    """

    def __init__(self, n_classes: int = 1000, dim: int = 64, noise: float = 1.5, task_seed: int = 0, n_test: int = 4000):
        for name, value, minimum in (("n_classes", n_classes, 2), ("dim", dim, 1), ("n_test", n_test, 1)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise={noise!r} must be a finite number >= 0 (0: every example is its prototype).")
        if isinstance(task_seed, bool) or not isinstance(task_seed, int | np.integer) or not 0 <= task_seed < _MAX_SEED:
            raise ValueError(f"task_seed must be an int in [0, 2^63), got {task_seed!r}.")
        self.n_classes = int(n_classes)
        self.dim = int(dim)
        self.noise = float(noise)
        self.task_seed = int(task_seed)
        self.n_test = int(n_test)
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(self.dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_classes)
        self.prototypes = np.random.default_rng(self.task_seed).standard_normal((self.n_classes, self.dim))
        self.prototypes.setflags(write=False)
        self._task_key = _mix(np.array([self.task_seed], dtype=np.uint64) + _GOLDEN)[0]

    @property
    def test_seeds(self) -> np.ndarray:
        """The seeds of the fixed held-out test set: ``TEST_SEED_BASE + arange(n_test)``."""
        return TEST_SEED_BASE + np.arange(self.n_test, dtype=np.int64)

    def examples(self, seeds: Any) -> tuple[np.ndarray, np.ndarray]:
        """
        The examples of the given seeds.

        :param seeds: ``(G,)`` ints in ``[0, 2^63)``
        :return: observations ``(G, dim)`` float32 and labels ``(G,)`` int64
        """
        keys = self._keys(seeds)
        n_pairs = (self.dim + 1) // 2
        uniforms = _uniforms(keys, 1 + 2 * n_pairs)
        labels = self._labels(uniforms[:, 0])
        radius = np.sqrt(-2.0 * np.log(uniforms[:, 1 : 1 + n_pairs]))
        angle = 2.0 * np.pi * uniforms[:, 1 + n_pairs :]
        normals = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, : self.dim]
        observations = (self.prototypes[labels] + self.noise * normals) / np.sqrt(1.0 + self.noise**2)
        return observations.astype(np.float32), labels

    def _keys(self, seeds: Any) -> np.ndarray:
        """The start of each seed's SplitMix64 stream: its first value is the label, the next ones the noise."""
        return _mix(_check_seeds(seeds) ^ self._task_key)

    def _labels(self, uniforms: np.ndarray) -> np.ndarray:
        return np.minimum((uniforms * self.n_classes).astype(np.int64), self.n_classes - 1)

    def observations(self, seeds: Any) -> np.ndarray:
        """
        The observation of every seed's example (``OneStepTask``).

        :param seeds: ``(G,)`` ints in ``[0, 2^63)``
        :return: ``(G, dim)`` float32
        """
        return self.examples(seeds)[0]

    def labels(self, seeds: Any) -> np.ndarray:
        """
        The label of every seed's example.

        :param seeds: ``(G,)`` ints in ``[0, 2^63)``
        :return: ``(G,)`` int64 in ``[0, n_classes)``
        """
        return self._labels(_uniforms(self._keys(seeds), 1)[:, 0])

    def likelihoods(self, seeds: Any, actions: np.ndarray) -> np.ndarray:
        """
        1.0 where a guess is the label of its seed's example, else 0.0 (``OneStepTask``).

        :param seeds: ``(G,)`` ints in ``[0, 2^63)``
        :param actions: ``(G, N)`` guessed classes, row ``g`` for seed ``g``
        :return: ``(G, N)`` float64 in ``{0, 1}``
        """
        actions = np.asarray(actions)
        labels = self.labels(seeds)
        if actions.ndim != 2 or actions.shape[0] != len(labels):
            raise ValueError(f"actions must have shape (n_seeds={len(labels)}, N), got {actions.shape}.")
        return (actions == labels[:, None]).astype(np.float64)

    @cached_property
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out test examples (:attr:`test_seeds`): observations ``(n_test, dim)`` and labels ``(n_test,)``."""
        return self.examples(self.test_seeds)

    def nearest_prototype_accuracy(self, seeds: Any | None = None) -> float:
        """
        Accuracy of the nearest-prototype rule (the Bayes classifier of this task, ~0.95 with the defaults).

        :param seeds: the examples to score; None for the test set
        :return: the fraction of examples whose nearest scaled prototype is their label
        """
        observations, labels = self.test_set if seeds is None else self.examples(seeds)
        centers = self.prototypes / np.sqrt(1.0 + self.noise**2)
        distances = (centers**2).sum(axis=1)[None, :] - 2.0 * observations.astype(np.float64) @ centers.T
        return float((distances.argmin(axis=1) == labels).mean())


class PrototypesEnv(gym.Env[np.ndarray, np.int64]):
    """
    One-step classification of a Gaussian-prototypes example; success means the guessed class is the label.

    ``reset(seed=s)`` shows example ``s`` of :attr:`task` (a random seed in ``[0, 2^31)`` from the env's RNG when
    ``seed`` is None). The parameters are those of :class:`PrototypesTask`.

    :param n_classes: number of classes C
    :param dim: dimension of an observation
    :param noise: standard deviation of the noise around a prototype, before scaling to unit variance
    :param task_seed: seeds the prototypes and the examples
    :param n_test: size of the fixed held-out test set
    :param render_mode: None or ``"rgb_array"`` (the observation as a row of grey cells, 16 pixels high)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(
        self,
        n_classes: int = 1000,
        dim: int = 64,
        noise: float = 1.5,
        task_seed: int = 0,
        n_test: int = 4000,
        render_mode: str | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'.")
        self.render_mode = render_mode
        self.task = PrototypesTask(n_classes, dim, noise, task_seed, n_test)
        self.observation_space = self.task.observation_space
        self.action_space = self.task.action_space
        self.example_seed = -1
        self._observation = np.zeros(self.task.dim, dtype=np.float32)
        self._label = -1
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """
        Show the example of ``seed``.

        :param seed: the start state's seed, in ``[0, 2^63)``
        :param options: unused
        """
        super().reset(seed=seed)
        self.example_seed = int(self.np_random.integers(TEST_SEED_BASE)) if seed is None else int(seed)
        observations, labels = self.task.examples([self.example_seed])
        self._observation, self._label = observations[0], int(labels[0])
        self._done = False
        return self._observation.copy(), {"example_seed": self.example_seed}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """
        Score the guessed class; the episode ends.

        :param action: the guessed class, in ``[0, n_classes)``
        """
        if self._done:
            raise RuntimeError("PrototypesEnv episodes last one step: call reset() before step().")
        self._done = True
        success = int(action) == self._label
        info = {"is_success": success, "label": self._label, "prediction": int(action)}
        return self._observation.copy(), float(success), True, False, info

    def render(self) -> np.ndarray | None:
        """The observation as a ``(16, 8 dim, 3)`` grey image (-3 black, +3 white), if ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        grey = (255 * np.clip((self._observation + 3.0) / 6.0, 0.0, 1.0)).astype(np.uint8)
        return np.repeat(np.repeat(grey[None, :, None], 16, axis=0), 8, axis=1).repeat(3, axis=2)
