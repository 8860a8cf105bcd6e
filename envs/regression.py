"""A one-step continuous-target regression task scored by a Gaussian likelihood.

At ``reset(seed=s)`` the env draws an input ``x ~ Uniform(-1, 1)`` and its target ``y = f(x) + noise``
from the seed (so the N rollouts of one start state share ``(x, y)``), with ``f(x) = 0.5 sin(pi x)``. The
observation is ``x``; the action is the prediction ``yhat`` (a ``Box(-1, 1)``: a Gaussian policy with a
learnable std); the episode ends after that one step with the likelihood

    l = exp(-(y - yhat)^2 / (2 tau^2))  in [0, 1]

as the reward and in ``info["likelihood"]`` (with ``squared_error``, ``target``, ``prediction``).
Noise models (``noise_scale = s``), all with the exact ``conditional_mean(x)`` and ``conditional_std(x)``:

- ``"gaussian"``: ``s * N(0, 1)``; mean ``f(x)``, std ``s``.
- ``"heteroskedastic"``: ``s * (0.25 + 1.5 |x|) * N(0, 1)``; mean ``f(x)``, std ``s (0.25 + 1.5 |x|)``.
- ``"outliers"``: ``N(0, s^2)`` with probability ``1 - outlier_prob``, else ``N(0, (outlier_scale s)^2)``;
  mean ``f(x)``, std ``s sqrt(1 - q + q outlier_scale^2)`` for ``q = outlier_prob``.
- ``"skewed"``: ``s * (Exponential(1) - 1)`` (mean 0, std 1, skewness 2, mode at ``f(x) - s``); mean ``f(x)``, std ``s``.

With the defaults (``s = 0.2``, ``tau = 0.1``) the targets stay inside the action range except for the
tails of the outlier and skewed noise, and Std(y|x) > tau (heteroskedastic: for ``|x| > 1/6``), the regime
where maximum likelihood learns a spread of about ``sqrt(Var(y|x) - tau^2)`` while expected-likelihood RL
shrinks it to zero. Predictions outside [-1, 1] are scored as given; SB3 clips sampled actions to the box.

:class:`RegressionEnv` is the task as a ``gym.Env`` (``gym.make("MaxRL/Regression-v0")``), one episode at a time;
:class:`RegressionTask` is the same task vectorized over seeds (``sb3_maxrl.common.one_step.OneStepTask``):
``MaxRL("MlpPolicy", RegressionTask())`` samples the N predictions of an input from one policy forward pass.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

Noise = Literal["gaussian", "heteroskedastic", "outliers", "skewed"]
NOISES: tuple[str, ...] = ("gaussian", "heteroskedastic", "outliers", "skewed")


def target_function(x: np.ndarray | float) -> np.ndarray:
    """The noiseless target ``f(x) = 0.5 sin(pi x)``.

    :param x: input(s) in [-1, 1]
    """
    return 0.5 * np.sin(np.pi * np.asarray(x, dtype=np.float64))


def gaussian_likelihood(y: float, prediction: float, tau: float) -> float:
    """``exp(-(y - prediction)^2 / (2 tau^2))``, the per-episode likelihood in [0, 1].

    :param y: the target
    :param prediction: the prediction
    :param tau: the likelihood's width, > 0
    """
    return float(np.exp(-((y - prediction) ** 2) / (2.0 * tau**2)))


class RegressionEnv(gym.Env[np.ndarray, np.ndarray]):
    """One-step regression: observe ``x``, predict ``y``, get the likelihood ``exp(-(y - yhat)^2 / (2 tau^2))``.

    :param noise: ``"gaussian"``, ``"heteroskedastic"``, ``"outliers"`` or ``"skewed"`` (see the module docstring)
    :param noise_scale: the noise scale ``s`` >= 0
    :param tau: the likelihood's width, > 0
    :param outlier_prob: probability of an outlier (``noise="outliers"`` only), in [0, 1]
    :param outlier_scale: std of an outlier relative to ``noise_scale`` (``noise="outliers"`` only), >= 1
    :param render_mode: None or ``"rgb_array"`` (a 64x128 plot: f in grey, the target in green, the prediction in red)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(
        self,
        noise: Noise = "gaussian",
        noise_scale: float = 0.2,
        tau: float = 0.1,
        outlier_prob: float = 0.1,
        outlier_scale: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        if noise not in NOISES:
            raise ValueError(f"noise={noise!r} is not a noise model; use one of {NOISES}")
        if not np.isfinite(noise_scale) or noise_scale < 0:
            raise ValueError(f"noise_scale={noise_scale!r} must be a finite number >= 0 (0 means noiseless targets)")
        if not np.isfinite(tau) or tau <= 0:
            raise ValueError(f"tau={tau!r} must be a finite number > 0: it is the likelihood's width")
        if not 0.0 <= outlier_prob <= 1.0:
            raise ValueError(f"outlier_prob={outlier_prob!r} must be a probability in [0, 1]")
        if not np.isfinite(outlier_scale) or outlier_scale < 1.0:
            raise ValueError(
                f"outlier_scale={outlier_scale!r} must be a finite number >= 1 (outliers are wider than the bulk)"
            )
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        self.noise = noise
        self.noise_scale = float(noise_scale)
        self.tau = float(tau)
        self.outlier_prob = float(outlier_prob)
        self.outlier_scale = float(outlier_scale)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        self.x: float | None = None
        self.y: float | None = None
        self.prediction: float | None = None
        self._done = True

    def conditional_mean(self, x: np.ndarray | float) -> np.ndarray:
        """Exact ``E[y | x]``.

        :param x: input(s) in [-1, 1]
        """
        return target_function(x)

    def conditional_std(self, x: np.ndarray | float) -> np.ndarray:
        """Exact ``Std[y | x]``.

        :param x: input(s) in [-1, 1]
        """
        x = np.asarray(x, dtype=np.float64)
        scale = self.noise_scale * np.ones_like(x)
        if self.noise == "heteroskedastic":
            return scale * (0.25 + 1.5 * np.abs(x))
        if self.noise == "outliers":
            q = self.outlier_prob
            return scale * np.sqrt(1.0 - q + q * self.outlier_scale**2)
        return scale

    def sample_target(self, x: float, rng: np.random.Generator) -> float:
        """Draw ``y | x``.

        :param x: an input in [-1, 1]
        :param rng: the random generator to draw from
        """
        mean = float(target_function(x))
        if self.noise == "gaussian":
            return mean + self.noise_scale * float(rng.standard_normal())
        if self.noise == "heteroskedastic":
            return mean + self.noise_scale * (0.25 + 1.5 * abs(x)) * float(rng.standard_normal())
        if self.noise == "outliers":
            scale = self.outlier_scale if rng.random() < self.outlier_prob else 1.0
            return mean + self.noise_scale * scale * float(rng.standard_normal())
        return mean + self.noise_scale * (float(rng.exponential()) - 1.0)

    def draw_example(self, rng: np.random.Generator) -> tuple[float, float]:
        """Draw an input ``x ~ Uniform(-1, 1)`` and its target ``y | x``, in that order.

        :param rng: the random generator to draw from
        :return: ``(x, y)``
        """
        x = float(rng.uniform(-1.0, 1.0))
        return x, self.sample_target(x, rng)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw ``x`` and its target ``y`` from the seed.

        :param seed: the start state's seed: the same seed gives the same ``(x, y)``
        :param options: unused
        """
        super().reset(seed=seed)
        self.x, self.y = self.draw_example(self.np_random)
        self.prediction = None
        self._done = False
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Score the prediction; the episode ends.

        :param action: the prediction ``yhat``, shape ``(1,)``
        """
        if self._done or self.x is None or self.y is None:
            raise RuntimeError("RegressionEnv episodes last one step: call reset() before step()")
        self._done = True
        prediction = self.prediction = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        likelihood = gaussian_likelihood(self.y, prediction, self.tau)
        info = {
            "likelihood": likelihood,
            "squared_error": (self.y - prediction) ** 2,
            "target": self.y,
            "prediction": prediction,
        }
        return np.array([self.x], dtype=np.float32), likelihood, True, False, info

    def render(self) -> np.ndarray | None:
        """A 64x128 RGB plot over x, y in [-1, 1]: f in grey, the target in green, the prediction in red."""
        if self.render_mode != "rgb_array":
            return None
        height, width = 64, 128
        frame = np.zeros((height, width, 3), dtype=np.uint8)

        def pixel(x: float, y: float) -> tuple[int, int]:
            row = round((1.0 - (np.clip(y, -1.0, 1.0) + 1.0) / 2.0) * (height - 1))
            return row, round((np.clip(x, -1.0, 1.0) + 1.0) / 2.0 * (width - 1))

        for x in np.linspace(-1.0, 1.0, width):
            frame[pixel(x, float(target_function(x)))] = 128
        if self.x is not None and self.y is not None:
            for value, color in ((self.y, (0, 255, 0)), (self.prediction, (255, 0, 0))):
                if value is not None:
                    row, col = pixel(self.x, value)
                    frame[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = color
        return frame


class RegressionTask:
    """
    The regression task vectorized over seeds (implements ``sb3_maxrl.common.one_step.OneStepTask``).

    Seed ``s`` is the input and target ``(x, y)`` that ``RegressionEnv(...).reset(seed=s)`` draws (the same
    generator, seeded the same way); a prediction scores ``exp(-(y - yhat)^2 / (2 tau^2))``. The parameters are
    those of :class:`RegressionEnv`, whose exact ``conditional_mean`` and ``conditional_std`` are available here.

    :param noise: ``"gaussian"``, ``"heteroskedastic"``, ``"outliers"`` or ``"skewed"``
    :param noise_scale: the noise scale ``s`` >= 0
    :param tau: the likelihood's width, > 0
    :param outlier_prob: probability of an outlier (``noise="outliers"`` only), in [0, 1]
    :param outlier_scale: std of an outlier relative to ``noise_scale`` (``noise="outliers"`` only), >= 1
    """

    def __init__(
        self,
        noise: Noise = "gaussian",
        noise_scale: float = 0.2,
        tau: float = 0.1,
        outlier_prob: float = 0.1,
        outlier_scale: float = 10.0,
    ) -> None:
        self.env = RegressionEnv(noise, noise_scale, tau, outlier_prob, outlier_scale)
        self.tau = self.env.tau
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space

    def examples(self, seeds: Any) -> tuple[np.ndarray, np.ndarray]:
        """
        The input and target of every seed.

        :param seeds: ``(G,)`` non-negative ints
        :return: ``x`` and ``y``, float64 ``(G,)`` each
        """
        seeds = np.asarray(seeds)
        if seeds.ndim != 1 or not (np.issubdtype(seeds.dtype, np.integer) or seeds.size == 0) or np.any(seeds < 0):
            raise ValueError(f"seeds must be a 1-D sequence of non-negative ints (one per example), got {seeds!r}.")
        pairs = [self.env.draw_example(seeding.np_random(int(seed))[0]) for seed in seeds]
        return np.array([x for x, _ in pairs], dtype=np.float64), np.array([y for _, y in pairs], dtype=np.float64)

    def observations(self, seeds: Any) -> np.ndarray:
        """
        The input of every seed (``OneStepTask``).

        :param seeds: ``(G,)`` non-negative ints
        :return: ``(G, 1)`` float32
        """
        return self.examples(seeds)[0][:, None].astype(np.float32)

    def likelihoods(self, seeds: Any, actions: np.ndarray) -> np.ndarray:
        """
        ``exp(-(y - yhat)^2 / (2 tau^2))`` of every prediction (``OneStepTask``).

        :param seeds: ``(G,)`` non-negative ints
        :param actions: ``(G, N, 1)`` predictions, row ``g`` for seed ``g``
        :return: ``(G, N)`` float64 in [0, 1]
        """
        targets = self.examples(seeds)[1]
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[0] != len(targets) or actions.shape[2] != 1:
            raise ValueError(f"actions must have shape (n_seeds={len(targets)}, N, 1), got {actions.shape}.")
        return np.exp(-((targets[:, None] - actions[..., 0]) ** 2) / (2.0 * self.tau**2))

    def conditional_mean(self, x: np.ndarray | float) -> np.ndarray:
        """Exact ``E[y | x]``.

        :param x: input(s) in [-1, 1]
        """
        return self.env.conditional_mean(x)

    def conditional_std(self, x: np.ndarray | float) -> np.ndarray:
        """Exact ``Std[y | x]``.

        :param x: input(s) in [-1, 1]
        """
        return self.env.conditional_std(x)
