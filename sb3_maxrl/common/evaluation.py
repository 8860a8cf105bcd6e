"""pass@k evaluation on held-out start states: ``n_samples`` stochastic episodes per start state.

Episodes run through :func:`~sb3_maxrl.common.group_rollouts.collect_group_episodes`, the collector training
uses, with each evaluation start seed as one group of ``n_samples`` episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from sb3_maxrl.common.env_ids import make_group_vec_env
from sb3_maxrl.common.estimators import symmetric_means
from sb3_maxrl.common.group_rollouts import StartStateCheck, collect_group_episodes
from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY
from sb3_maxrl.common.start_states import (
    EpisodeNoise,
    StartStateWrapper,
    check_episode_noise,
    default_eval_seeds,
    start_state_control,
    start_state_keys,
)
from sb3_maxrl.common.utils import check_positive_int


def pass_at_k(n: int, c: int | np.ndarray, k: int) -> float | np.ndarray:
    """
    The unbiased pass@k estimate ``1 - C(n - c, k) / C(n, k)`` from ``n`` samples with ``c`` successes.

    Computed as ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)``, which never forms a binomial coefficient; a factor
    is exactly 0 when ``n - c < k`` (then every k-subset holds a success and pass@k is 1).

    :param n: samples per start state
    :param c: successes among them, an int or an array of ints in ``[0, n]``
    :param k: the k of pass@k, in ``[1, n]``
    :return: pass@k, a float for an int ``c``, else an array shaped like ``c``
    """
    check_positive_int("n", n, "samples per start state")
    check_positive_int("k", k, "the k of pass@k")
    if k > n:
        raise ValueError(
            f"pass@{k} needs at least k={k} samples per start state but n={n}: raise n_samples to >= {k} "
            f"or keep ks <= {n} (geometric_ks({n}) lists valid ones)."
        )
    counts = np.asarray(c)
    if not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0) or np.any(counts > n):
        raise ValueError(f"c must hold integer success counts in [0, n={n}], got {c!r}.")
    factors = 1.0 - k / np.arange(n, 0, -1, dtype=np.float64)  # i = n, n - 1, ..., 1
    fail_all_k = np.concatenate(([1.0], np.cumprod(factors)))  # entry c: prod over i = n - c + 1 .. n
    result = np.clip(1.0 - fail_all_k[counts], 0.0, 1.0)
    return float(result) if result.ndim == 0 else result


def pass_at_k_from_likelihoods(likelihoods: np.ndarray | Sequence[float], k: int) -> float | np.ndarray:
    """
    The unbiased pass@k estimate from ``n`` episode likelihoods, each the success probability of a Bernoulli.

    An episode with likelihood ``l`` counts as a success with probability ``l``, so k episodes pass with
    probability ``1 - prod (1 - l_j)``. Averaged over the ``C(n, k)`` k-subsets of the ``n`` samples:
    ``pass@k = 1 - e_k(1 - l_1, ..., 1 - l_n) / C(n, k)`` with ``e_k`` the elementary symmetric polynomial, the
    minimum-variance unbiased estimate of ``E[1 - prod_{j <= k} (1 - l_j)]``. Computed by the normalized
    recurrence of :func:`~sb3_maxrl.common.estimators.symmetric_means` (values stay in ``[0, 1]``; absolute error
    about ``n`` ulps; cost ``O(n k)`` per start state). Binary likelihoods (every value 0 or 1) give exactly
    :func:`pass_at_k` of the success counts, which is then used.

    :param likelihoods: ``(..., n)`` likelihoods in ``[0, 1]``, the last axis holds the ``n`` samples of a
        start state
    :param k: the k of pass@k, in ``[1, n]``
    :return: pass@k, a float for a 1-D ``likelihoods``, else an array shaped like ``likelihoods[..., 0]``
    """
    values = np.asarray(likelihoods, dtype=np.float64)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(
            f"likelihoods must have the n samples of a start state on its last axis, got shape {values.shape}: "
            "pass a (n,) or (n_start_states, n) array."
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0.0) or np.any(values > 1.0):
        raise ValueError(
            "likelihoods must be finite and in [0, 1] (each is the success probability of an episode); "
            f"got values in [{np.nanmin(values)!r}, {np.nanmax(values)!r}]."
        )
    n = values.shape[-1]
    pass_at_k(n, 0, k)  # validates k against n
    if np.all((values == 0.0) | (values == 1.0)):
        return pass_at_k(n, (values == 1.0).sum(axis=-1), k)
    fail_all_k = symmetric_means(th.from_numpy(1.0 - values), int(k))[..., int(k)].numpy()
    result = np.clip(1.0 - fail_all_k, 0.0, 1.0)
    return float(result) if result.ndim == 0 else result


def geometric_ks(n_samples: int) -> list[int]:
    """
    The ks of a pass@k curve: powers of two up to ``n_samples``, and ``n_samples`` itself.

    :param n_samples: samples per start state
    :return: ``[1, 2, 4, ..., n_samples]``
    """
    check_positive_int("n_samples", n_samples, "samples per start state")
    ks = [2**i for i in range(int(n_samples).bit_length()) if 2**i <= n_samples]
    if ks[-1] != n_samples:
        ks.append(int(n_samples))
    return ks


@dataclass
class PassAtKResult:
    """
    The outcome of :func:`evaluate_pass_at_k`.

    Floors keep the logarithms finite without changing any estimate a binary task can produce:
    ``neg_log_pass_at_k[k] = -log(max(pass_at_k[k], 1 / (2 n S)))`` with ``S`` start states (a non-zero
    average pass@k is at least ``1 / (n S)``), and ``nll = -mean_s log(max(mean_likelihoods[s], 1 / (2 n)))``
    (a non-zero mean of ``n`` binary outcomes is at least ``1 / n``).

    :param start_seeds: ``(S,)`` the evaluation start seeds
    :param n_samples: ``n``, episodes per start state
    :param likelihoods: ``(S, n)`` likelihood of every episode
    :param episode_lengths: ``(S, n)`` length of every episode
    :param success_counts: ``(S,)`` episodes per start state counted as successes: likelihood at least
        ``success_threshold``, or exactly 1 when ``success_threshold`` is None (for binary tasks: the successes)
    :param mean_likelihoods: ``(S,)`` mean likelihood per start state
    :param pass_at_k: ``{k: pass@k}``, the unbiased estimate averaged over start states (from the likelihoods,
        see :func:`pass_at_k_from_likelihoods`, or from ``success_counts`` for a float ``success_threshold``)
    :param neg_log_pass_at_k: ``{k: -log pass@k}`` of the averaged pass@k (floored, see above); the log of
        an average, not the average of logs
    :param mean_likelihood: mean likelihood over all episodes
    :param nll: ``-mean_s log(mean likelihood of start state s)`` (floored, see above), MaxRL's objective
    """

    start_seeds: np.ndarray
    n_samples: int
    likelihoods: np.ndarray
    episode_lengths: np.ndarray
    success_counts: np.ndarray
    mean_likelihoods: np.ndarray
    pass_at_k: dict[int, float]
    neg_log_pass_at_k: dict[int, float]
    mean_likelihood: float
    nll: float

    @property
    def mean_ep_length(self) -> float:
        """Mean episode length."""
        return float(self.episode_lengths.mean())

    def metrics(self) -> dict[str, float]:
        """
        The scalar results by name, as logged under ``eval/``.

        :return: ``pass@{k}`` and ``neg_log_pass@{k}`` for every k, ``mean_likelihood``, ``nll``, ``mean_ep_length``
        """
        scalars = {f"pass@{k}": value for k, value in self.pass_at_k.items()}
        scalars.update({f"neg_log_pass@{k}": value for k, value in self.neg_log_pass_at_k.items()})
        scalars.update(mean_likelihood=self.mean_likelihood, nll=self.nll, mean_ep_length=self.mean_ep_length)
        return scalars


def make_eval_vec_env(env: gym.Env | VecEnv | str, n_envs: int = 8, seed: int | None = None) -> VecEnv:
    """
    A VecEnv with start-state control for :func:`evaluate_pass_at_k`.

    :param env: an env id (``n_envs`` copies of :func:`~sb3_maxrl.common.env_ids.make_env`'s task: a MiniGrid id
        is its binary-success task), a gym.Env (wrapped in one DummyVecEnv slot) or a VecEnv
        with start-state control: its envs wrapped in ``StartStateWrapper`` (a DummyVecEnv's envs are wrapped
        here), or a native ``StartStateVecEnv`` (returned as is)
    :param n_envs: copies of an env id
    :param seed: passed to ``make_vec_env`` for an env id (seeds the action spaces; start states come from the
        evaluation seeds)
    :return: the VecEnv
    """
    if isinstance(env, str):
        return make_group_vec_env(env, n_envs=n_envs, seed=seed)
    if isinstance(env, VecEnv):
        native = env.unwrapped
        if isinstance(native, DummyVecEnv):
            native.envs = [e if is_wrapped(e, StartStateWrapper) else StartStateWrapper(e) for e in native.envs]
        start_state_control(env)  # raises with what to do when start states cannot be chosen
        return env
    if not is_wrapped(env, StartStateWrapper):
        env = StartStateWrapper(env)
    return DummyVecEnv([lambda: env])


def disjoint_train_seeds(venv: VecEnv, eval_seeds: Sequence[int], n_train: int, first_seed: int = 0) -> list[int]:
    """
    A finite training set of ``n_train`` start seeds whose start states are not held-out ones: the seeds from
    ``first_seed`` upwards, without the evaluation seeds and, where the env declares start-state identities
    (``start_state_key``, e.g. a maze's layout), without seeds that reset to a held-out start state.

    For ``MaxRL(train_seeds=...)``: the infinite stream of an env with identities may draw a held-out start state
    under another seed, which ``PassAtKEvalCallback`` warns about.

    :param venv: a VecEnv with start-state control (see :func:`make_eval_vec_env`); its first env is reset
    :param eval_seeds: the held-out start seeds
    :param n_train: the number of training seeds
    :param first_seed: the smallest candidate seed
    :return: the training seeds, in increasing order
    """
    check_positive_int("n_train", n_train, "training start seeds")
    held_out_seeds = {int(s) for s in eval_seeds}
    keys_of_held_out = start_state_keys(venv, sorted(held_out_seeds))
    held_out_keys = None if keys_of_held_out is None else set(keys_of_held_out)
    train_seeds: list[int] = []
    candidate = int(first_seed)
    while len(train_seeds) < n_train:
        seeds = [s for s in range(candidate, candidate + n_train - len(train_seeds)) if s not in held_out_seeds]
        candidate += n_train
        if held_out_keys is not None:
            keys = start_state_keys(venv, seeds)
            assert keys is not None
            seeds = [s for s, key in zip(seeds, keys, strict=True) if key not in held_out_keys]
        train_seeds.extend(seeds)
    return train_seeds


def evaluate_pass_at_k(
    model: BaseAlgorithm,
    env: gym.Env | VecEnv | str,
    start_seeds: Sequence[int] | int,
    n_samples: int,
    ks: Sequence[int] | None = None,
    deterministic: bool = False,
    *,
    likelihood_key: str = LIKELIHOOD_KEY,
    success_threshold: float | None = None,
    n_envs: int = 8,
    max_episode_steps: int = 10_000,
    start_state_check: StartStateCheck = "raise",
    episode_noise: EpisodeNoise = "independent",
    seed: int | None = 0,
) -> PassAtKResult:
    """
    Run ``n_samples`` episodes of ``model``'s policy from each start seed and estimate pass@k.

    Works for any SB3 algorithm: actions come from ``model.policy.predict``, sampled unless ``deterministic``
    (a deterministic policy makes the n samples of a start state identical, so pass@k would be flat in k).
    Episodes of all start states share the VecEnv's slots, as in training.

    :param model: the trained model (MaxRL, PPO, ...)
    :param env: an env id (a MiniGrid id is its binary-success task, as in ``MaxRL``), a gym.Env or a VecEnv of
        ``StartStateWrapper``-wrapped envs (see ``make_eval_vec_env``)
    :param start_seeds: the evaluation start seeds, or how many of ``default_eval_seeds`` (disjoint from training)
    :param n_samples: episodes per start state
    :param ks: the ks of pass@k, each in ``[1, n_samples]``; None for ``geometric_ks(n_samples)``
    :param deterministic: take the policy's mode instead of sampling
    :param likelihood_key: info key of a continuous likelihood (else ``info["is_success"]`` is used)
    :param success_threshold: None (default): each episode succeeds with probability equal to its likelihood
        (:func:`pass_at_k_from_likelihoods`; for binary tasks the usual pass@k, for continuous ones a smooth
        pass@k). A float: an episode counts as a success when its likelihood is at least this, and pass@k is the
        combinatorial estimate from those counts (:func:`pass_at_k`; 1.0 gives the default's binary results)
    :param n_envs: copies to make when ``env`` is an env id
    :param max_episode_steps: an episode longer than this is an error
    :param start_state_check: "raise", "warn" or "off" when two episodes of a start state begin differently
    :param episode_noise: "independent" (each episode reseeds the env's in-episode randomness from its own seed,
        so the n samples of a start state are independent and pass@k is ``1 - (1 - p)^k`` in expectation) or
        "shared" (common random numbers: on a stochastic task the samples are then correlated); see ``MaxRL``
    :param seed: seeds the episodes' noise seeds (None: fresh entropy, not reproducible)
    :return: the per-start-state outcomes and the pass@k summary
    """
    if isinstance(start_seeds, int | np.integer):
        start_seeds = default_eval_seeds(int(start_seeds))
    seeds = [int(s) for s in start_seeds]
    if len(seeds) == 0:
        raise ValueError("start_seeds is empty: pass at least one evaluation start seed (or an int count).")
    ks = geometric_ks(n_samples) if ks is None else [int(k) for k in ks]
    for k in ks:
        pass_at_k(n_samples, 0, k)  # validates n_samples and every k before running any episode
    check_episode_noise(episode_noise)
    vec_env = make_eval_vec_env(env, n_envs)
    n_episodes = len(seeds) * n_samples
    noise_seeds = None
    if episode_noise == "independent":
        noise_seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**63 - 1, size=n_episodes)]

    def act(observations: VecEnvObs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions, _ = model.policy.predict(observations, deterministic=deterministic)  # type: ignore[arg-type]
        return actions, actions, np.zeros(len(actions))

    try:
        episodes = collect_group_episodes(
            vec_env,
            seeds,
            n_samples,
            act,
            likelihood_key=likelihood_key,
            max_episode_steps=max_episode_steps,
            start_state_check=start_state_check,
            noise_seeds=noise_seeds,
        )
    finally:
        if isinstance(env, str):
            vec_env.close()
    likelihoods = episodes.likelihood_matrix
    success_counts = (likelihoods >= (1.0 if success_threshold is None else success_threshold)).sum(axis=1)
    mean_likelihoods = likelihoods.mean(axis=1)
    if success_threshold is None:
        pass_rates = {k: float(np.mean(pass_at_k_from_likelihoods(likelihoods, k))) for k in ks}
    else:
        pass_rates = {k: float(np.mean(pass_at_k(n_samples, success_counts, k))) for k in ks}
    pass_floor = 1.0 / (2 * n_samples * len(seeds))
    likelihood_floor = 1.0 / (2 * n_samples)
    return PassAtKResult(
        start_seeds=np.array(seeds),
        n_samples=n_samples,
        likelihoods=likelihoods,
        episode_lengths=episodes.lengths.reshape(likelihoods.shape),
        success_counts=success_counts,
        mean_likelihoods=mean_likelihoods,
        pass_at_k=pass_rates,
        neg_log_pass_at_k={k: _neg_mean_log(max(p, pass_floor)) for k, p in pass_rates.items()},
        mean_likelihood=float(likelihoods.mean()),
        nll=_neg_mean_log(np.maximum(mean_likelihoods, likelihood_floor)),
    )


def _neg_mean_log(values: float | np.ndarray) -> float:
    """``-mean(log(values))``, which is ``0.0`` rather than ``-0.0`` when every value is 1."""
    return 0.0 - float(np.mean(np.log(values)))
