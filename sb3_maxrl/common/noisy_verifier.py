"""A noisy verifier: the success an env reports, flipped at given false-positive and false-negative rates.

With a false-positive rate ``a`` (a failed episode reported as a success) and a false-negative rate ``b`` (a success
reported as a failure), drawn independently for every episode, the reported success of a start state whose true pass
rate is ``p`` is Bernoulli with

    p' = a + (1 - a - b) p,        so        grad p' = (1 - a - b) grad p.

Every estimator of ``MaxRL`` is unbiased for its objective of the *reported* pass rate ``p'`` (docs/estimators.md),
so in expectation MaxRL's gradient of a start state is ``w_T(p') (1 - a - b) grad p`` with
``w_T(p) = (1 - (1 - p)^T) / p`` (``T = N - 1`` for the default estimator ``maxrl``):

- false negatives only (``a = 0``): ``log p' = log(1 - b) + log p``, so the maximum-likelihood direction is unchanged
  (``w_inf(p') grad p' = grad p / p``); RLOO's ``grad p'`` is scaled by ``1 - b``, which Adam largely undoes;
- false positives (``a > 0``): ``p' >= a``, so the ``1/p`` weight that MaxRL puts on hard start states is capped at
  about ``1/a``: the hardest start states lose their extra weight, and MaxRL moves towards RLOO.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY, SUCCESS_KEY

#: The info key of the true success of a finished episode, next to the reported ``is_success``
TRUE_SUCCESS_KEY = "true_is_success"


def reported_pass_rate(pass_rate: float | np.ndarray, false_positive_rate: float, false_negative_rate: float) -> Any:
    """
    The probability that a noisy verifier reports a success: ``a + (1 - a - b) p``.

    :param pass_rate: the true pass rate ``p`` (a float or an array)
    :param false_positive_rate: ``a``, the probability that a failure is reported as a success
    :param false_negative_rate: ``b``, the probability that a success is reported as a failure
    :return: ``p'``, of the shape of ``pass_rate``
    """
    return false_positive_rate + (1.0 - false_positive_rate - false_negative_rate) * np.asarray(pass_rate)


def check_error_rates(false_positive_rate: float, false_negative_rate: float) -> tuple[float, float]:
    """
    Validate a verifier's error rates.

    :param false_positive_rate: the probability that a failure is reported as a success, in ``[0, 1)``
    :param false_negative_rate: the probability that a success is reported as a failure, in ``[0, 1)``
    :return: both rates as floats
    """
    rates = {"false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate}
    for name, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.floating) or not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be a float in [0, 1), got {rate!r}.")
    if false_positive_rate + false_negative_rate >= 1.0:
        raise ValueError(
            f"false_positive_rate + false_negative_rate = {false_positive_rate + false_negative_rate:g} >= 1: the "
            "reported success then carries no information about the true one (or inverts it). Pass rates whose sum "
            "is below 1."
        )
    return float(false_positive_rate), float(false_negative_rate)


class NoisyVerifier(VecEnvWrapper):
    """
    Flips the success that every finished episode reports, at given false-positive and false-negative rates.

    On the final step of an episode ``info["is_success"]`` becomes the reported success and the true one is kept in
    ``info["true_is_success"]``. With ``flip_reward=True`` the step's reward becomes the reported success too, for envs
    whose final reward is the success indicator (the strict mazes; checked on every finished episode), so SB3 PPO
    trains on the same reported signal as MaxRL. Each flip is an independent draw from the wrapper's own seeded
    generator, one per finished episode: the episodes of a group (same start state) get independent flips, and a seed
    fixes them all.

    The start-state control and the idle slots of the wrapped env pass through (the wrapper reads only finished
    episodes' infos). SB3's logged ``rollout/success_rate`` is the reported success (from ``info["is_success"]``).
    Evaluate against the true success: exact evaluators see the env's dynamics, not this wrapper; sampled evaluation
    should run on the unwrapped env. Binary success only: an env that reports ``info["likelihood"]`` is refused, since
    MaxRL reads the likelihood before ``is_success``.

    :param venv: the VecEnv whose finished episodes report ``info["is_success"]``
    :param false_positive_rate: the probability that a failed episode is reported as a success
    :param false_negative_rate: the probability that a successful episode is reported as a failure
    :param seed: seeds the flips (None: fresh entropy; :meth:`seed` reseeds them)
    :param flip_reward: also report the flipped success as the final step's reward (the env's final reward must be
        its success indicator); False leaves rewards alone
    """

    #: Transparent to idle slots (read by :func:`~sb3_maxrl.common.start_states.uses_idle_slots` on the class): it never
    #: looks at a slot before its episode finishes
    keeps_idle_slots: ClassVar[bool] = True

    def __init__(
        self,
        venv: VecEnv,
        false_positive_rate: float = 0.0,
        false_negative_rate: float = 0.0,
        seed: int | None = None,
        flip_reward: bool = True,
    ) -> None:
        super().__init__(venv)
        self.false_positive_rate, self.false_negative_rate = check_error_rates(false_positive_rate, false_negative_rate)
        self.flip_reward = flip_reward
        self._rng = np.random.default_rng(seed)
        #: Counts of finished episodes and of flips so far
        self.n_episodes = 0
        self.n_false_positives = 0
        self.n_false_negatives = 0

    def reset(self) -> Any:
        """:return: the wrapped env's first observations"""
        observations = self.venv.reset()
        self.reset_infos = getattr(self.venv, "reset_infos", self.reset_infos)
        return observations

    def seed(self, seed: int | None = None) -> Any:
        """
        Reseed the flips and the wrapped env.

        :param seed: the seed (None: fresh entropy)
        :return: the wrapped env's ``seed(seed)``
        """
        self._rng = np.random.default_rng(seed)
        return self.venv.seed(seed)

    def step_wait(self) -> VecEnvStepReturn:
        """:return: the wrapped env's step, with the success of finished episodes flipped"""
        observations, rewards, dones, infos = self.venv.step_wait()
        finished = np.flatnonzero(dones)
        if len(finished) == 0:
            return observations, rewards, dones, infos
        draws = self._rng.random(len(finished))
        rewards = np.array(rewards, copy=True)
        for slot, draw in zip(finished.tolist(), draws.tolist(), strict=True):
            info = infos[slot]
            true_success = self._true_success(slot, info, float(rewards[slot]))
            flip = draw < (self.false_negative_rate if true_success else self.false_positive_rate)
            info[TRUE_SUCCESS_KEY] = true_success
            self.n_episodes += 1
            if flip:
                info[SUCCESS_KEY] = not true_success
                if self.flip_reward:
                    rewards[slot] = float(not true_success)
                self.n_false_negatives += int(true_success)
                self.n_false_positives += int(not true_success)
        return observations, rewards, dones, infos

    def _true_success(self, slot: int, info: dict[str, Any], reward: float) -> bool:
        if LIKELIHOOD_KEY in info:
            raise ValueError(
                f"The episode that ended in slot {slot} reports info[{LIKELIHOOD_KEY!r}], which MaxRL reads before "
                "info['is_success']: NoisyVerifier flips a binary success only, so it would not reach MaxRL. Wrap an env "
                "that reports info['is_success'] alone."
            )
        if SUCCESS_KEY not in info:
            raise ValueError(
                f"The episode that ended in slot {slot} reports no info['is_success'] (keys: {sorted(info)}): "
                "NoisyVerifier flips a binary success, so wrap an env that sets info['is_success'] on the final step of "
                "every episode."
            )
        true_success = bool(info[SUCCESS_KEY])
        if self.flip_reward and reward != float(true_success):
            raise ValueError(
                f"The episode that ended in slot {slot} has final reward {reward!r} but is_success={true_success}: "
                "flip_reward=True reports the flipped success as the reward, which needs a final reward equal to the "
                "success indicator. Pass flip_reward=False to leave rewards alone."
            )
        return true_success
