"""Maximum Likelihood Reinforcement Learning (MaxRL)."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from sb3_maxrl.common.buffers import GroupRolloutBuffer
from sb3_maxrl.common.env_ids import make_env
from sb3_maxrl.common.estimators import (
    BaselineName,
    EstimatorName,
    check_estimator_args,
    get_estimator,
    group_advantages,
    loo_weights,
)
from sb3_maxrl.common.group_rollouts import StartStateCheck, StepRecord, collect_group_episodes
from sb3_maxrl.common.likelihood import LIKELIHOOD_KEY
from sb3_maxrl.common.losses import minibatch_losses
from sb3_maxrl.common.one_step import OneStepTask, OneStepVecEnv, collect_one_step_groups, one_step_task
from sb3_maxrl.common.one_step_buffer import OneStepBatch, OneStepRolloutBuffer
from sb3_maxrl.common.start_states import (
    EpisodeNoise,
    StartStateStream,
    StartStateVecEnv,
    StartStateWrapper,
    check_episode_noise,
    start_state_control,
)
from sb3_maxrl.common.type_aliases import EpisodeBatch
from sb3_maxrl.common.utils import check_positive_int
from sb3_maxrl.maxrl.policies import CnnPolicy, MaxRLPolicy, MlpPolicy, MultiInputPolicy

SelfMaxRL = TypeVar("SelfMaxRL", bound="MaxRL")


class MaxRL(OnPolicyAlgorithm):
    """
    Maximum Likelihood Reinforcement Learning (MaxRL): policy gradient on ``log p`` instead of the pass rate ``p``.

    Every update runs ``group_size`` complete episodes from each of ``n_groups`` start states (one reset seed
    per start state), turns the episodes' likelihoods (``info["is_success"]`` or ``info[likelihood_key]`` at the
    end of an episode) into advantages with ``estimator``, and ascends
    ``(1 / (G N)) sum_groups sum_i A_i sum_t log pi(a_t | s_t)``. There is no critic.

    The defaults reuse each update's episodes for 4 clipped epochs (``clip_range=0.2``, one batch), as PPO reuses its
    rollouts, not the paper's one plain on-policy step (``n_epochs=1, clip_range=None``): on 9x9 strict mazes reuse
    lowered every estimator's held-out -log pass@1 by 2.6-5x, and it makes the comparison with PPO like for like;
    at 13x13 it cost GRPO and RLOO coverage (docs/results/strict_mazes.md).

    Paper: https://arxiv.org/abs/2602.02710
    Code: https://github.com/tajwarfahim/maxrl (the estimator ``(r - mean) / mean``, here ``estimator="maxrl"``)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, or a MaxRLPolicy subclass)
    :param env: The environment to learn from (if registered in Gym, can be str); None to load a model later. A
        ``sb3_maxrl.common.one_step.OneStepTask`` (e.g. ``sb3_maxrl_envs.PrototypesTask``) trains with one policy
        forward pass per group (its N episodes share their observation)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0),
        e.g. a cosine decay ``lambda p: 0.1 * 0.5 * (1 + math.cos(math.pi * (1 - p)))``
    :param group_size: N, episodes per start state (>= 2)
    :param n_groups: G, start states per update; one update uses ``G * N`` complete episodes
    :param estimator: "maxrl" (the paper's code, targets J_{N-1} for binary likelihoods), "maxrl_raw" /
        "maxrl_full_cv" (J_N, binary likelihoods; on continuous ones they warn and target no J_T),
        "maxrl_general" (leave-one-out weights for continuous likelihoods, targets J_T), "reinforce", "rloo",
        "grpo" or "dr_grpo"; see ``sb3_maxrl.group_advantages``
    :param truncation: T of "maxrl_general" in [1, group_size]; None means T = N
    :param baseline: the baseline of "maxrl_general" (see ``group_advantages``)
    :param n_epochs: Passes over each update's episodes. With ``batch_size=None`` the first pass's gradient is
        exactly the estimator's (with minibatches, only the first minibatch's is); later passes reuse the episodes
        with a clipped importance ratio, so ``n_epochs > 1`` needs ``clip_range``. The paper: 1 (fully on-policy)
    :param batch_size: Steps per minibatch; None for one batch of all steps (as in the paper)
    :param clip_range: PPO-style ratio clip; None for the plain score-function loss ``-A log pi`` (the paper,
        with ``n_epochs=1``)
    :param ent_coef: Entropy coefficient. The bonus has the policy term's scale: the sum of the step entropies of
        each episode, averaged over the update's ``G N`` episodes, so its weight does not change with episode length
    :param max_grad_norm: The maximum value for the gradient clipping (None: no clipping)
    :param train_seeds: A finite set of training start seeds; None for an infinite seeded stream
    :param episode_noise: "independent" (default): after the seeded reset that fixes its start state, every episode
        reseeds the env's ``np_random`` from its own seed (drawn from the run's seeded stream), so the N episodes of
        a group are independent draws given the start state, as the estimators assume. "shared": every episode
        continues the RNG stream ``reset(seed)`` left (common random numbers): on a stochastic task the episodes of
        a group then share their transition noise, their outcomes are correlated, and the expected gradient is no
        longer ``w(p) grad p``. Deterministic tasks are unaffected
    :param likelihood_key: info key of a continuous likelihood in [0, 1] (binary tasks use ``info["is_success"]``)
    :param max_episode_steps: An episode longer than this raises an error (MaxRL needs episodic tasks)
    :param start_state_check: "raise", "warn" or "off": what to do when two episodes of one group do not start
        from the same observation (the env's ``reset(seed)`` does not fix its start state)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation, e.g. the paper's SGD
        ``dict(optimizer_class=th.optim.SGD, optimizer_kwargs=dict(momentum=0.9, weight_decay=1e-4))`` or a linear
        policy ``dict(net_arch=[])`` (see ``MaxRLPolicy``)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators and the start-state stream
    :param device: Device (cpu, cuda, ...) on which the code should be run ("auto": cuda if available)
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    :param ppo_only_kwargs: refused with what to use instead (PPO's ``n_steps``, ``gamma``, ... have no meaning here)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: MaxRLPolicy  # type: ignore[assignment]
    rollout_buffer: GroupRolloutBuffer | OneStepRolloutBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[MaxRLPolicy] = "MlpPolicy",
        env: GymEnv | str | None = None,
        learning_rate: float | Schedule = 3e-3,
        group_size: int = 8,
        n_groups: int = 8,
        estimator: EstimatorName | str = "maxrl",
        truncation: int | None = None,
        baseline: BaselineName | float = "loo_pass",
        n_epochs: int = 4,
        batch_size: int | None = None,
        clip_range: float | Schedule | None = 0.2,
        ent_coef: float = 0.0,
        max_grad_norm: float | None = 0.5,
        train_seeds: Iterable[int] | None = None,
        episode_noise: EpisodeNoise = "independent",
        likelihood_key: str = LIKELIHOOD_KEY,
        max_episode_steps: int = 10_000,
        start_state_check: StartStateCheck = "raise",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        **ppo_only_kwargs: Any,
    ):
        if ppo_only_kwargs:
            raise TypeError(_ppo_only_message(ppo_only_kwargs, n_groups, group_size))
        check_estimator_args(estimator, truncation, group_size, baseline)
        check_positive_int("n_groups", n_groups, "one update needs at least one start state")
        check_positive_int("n_epochs", n_epochs, "use n_epochs=1 for the paper's fully on-policy update")
        check_positive_int("max_episode_steps", max_episode_steps, "it caps the length of one episode")
        if batch_size is not None:
            check_positive_int("batch_size", batch_size, "or None for one batch of all steps")
        if n_epochs > 1 and clip_range is None:
            raise ValueError(
                f"n_epochs={n_epochs} with clip_range=None would reuse stale episodes with no importance ratio: pass "
                "clip_range (e.g. 0.2) for several epochs, or n_epochs=1 for the paper's plain on-policy update."
            )
        check_episode_noise(episode_noise)
        if start_state_check not in ("raise", "warn", "off"):
            raise ValueError(f"start_state_check must be 'raise', 'warn' or 'off', got {start_state_check!r}.")
        if isinstance(env, str):
            env = make_env(env)  # a MiniGrid id becomes a binary-success task (sb3_maxrl.common.env_ids)
        # OnPolicyAlgorithm's rollout arguments do not apply to MaxRL, whose update is a number of complete episodes
        # (collect_rollouts) with per-episode advantages (no discounting, no GAE, no critic): n_steps, gamma,
        # gae_lambda and vf_coef get neutral values that nothing reads (sb3-contrib's ARS and TRPO do the same).
        super().__init__(
            policy,  # type: ignore[arg-type]
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            n_steps=1,
            gamma=1.0,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=0.0,
            max_grad_norm=np.inf if max_grad_norm is None else max_grad_norm,
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.group_size = int(group_size)
        self.n_groups = int(n_groups)
        self.estimator = estimator
        self.truncation = truncation
        self.baseline = baseline
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.clip_range = clip_range
        self.train_seeds = None if train_seeds is None else [int(s) for s in train_seeds]
        self.episode_noise = episode_noise
        self.n_skipped_updates = 0
        self.likelihood_key = likelihood_key
        self.max_episode_steps = max_episode_steps
        self.start_state_check = start_state_check
        self.start_states: StartStateStream | None = None
        self._collection_start = 0.0  # perf_counter() when the last collect_rollouts started
        if self.env is not None:
            self._check_group_env(self.env)
        if _init_setup_model and getattr(self, "observation_space", None) is not None:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        try:
            self.policy = self.policy_class(  # type: ignore[assignment]
                self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
            )
        except TypeError as error:
            if "unexpected keyword argument" not in str(error):
                raise
            accepted = sorted(inspect.signature(self.policy_class.__init__).parameters)[1:]
            raise TypeError(
                f"{error}. MaxRL's {self.policy_class.__name__} (actor only, no critic) accepts the policy_kwargs "
                f"{', '.join(a for a in accepted if a not in ('observation_space', 'action_space', 'lr_schedule'))}."
            ) from error
        self.policy = self.policy.to(self.device)
        self._choose_collector()
        if self.start_states is None:
            self.start_states = StartStateStream(self.seed, self.train_seeds)
        if self.clip_range is not None:
            self.clip_range = FloatSchedule(self.clip_range)

    def _choose_collector(self) -> None:
        """The rollout buffer (and so the collector) for the env: one-step groups on a one-step task, else episodes."""
        task = None if self.env is None else one_step_task(self.env)
        if task is not None:
            self.rollout_buffer = OneStepRolloutBuffer()
        else:
            self.rollout_buffer = GroupRolloutBuffer(self.observation_space, self.action_space, self.device)

    @property
    def _one_step_batch(self) -> OneStepBatch | None:
        """The last update's groups, on a one-step task."""
        return self.rollout_buffer.batch if isinstance(self.rollout_buffer, OneStepRolloutBuffer) else None

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        if isinstance(env, OneStepTask) and not isinstance(env, VecEnv):
            env = OneStepVecEnv(env)
        if isinstance(env, VecEnv):
            _add_start_state_wrappers(env)
        elif not is_wrapped(env, StartStateWrapper):
            env = StartStateWrapper(env)
        return BaseAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def _check_group_env(self, env: VecEnv) -> None:
        start_state_control(env)  # raises with what to do when MaxRL cannot choose start states
        if env.num_envs > self.n_groups * self.group_size:
            warnings.warn(
                f"n_envs={env.num_envs} exceeds the {self.n_groups * self.group_size} episodes of one update "
                f"(n_groups x group_size): {env.num_envs - self.n_groups * self.group_size} env slots will idle. "
                "Raise n_groups or use fewer envs."
            )

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """
        Set the environment; a model created with ``env=None`` builds its policy for this env's spaces.

        Unlike PPO, the number of envs may change: MaxRL's buffer holds episodes, not ``n_steps`` per env.

        :param env: The environment for learning a policy
        :param force_reset: Force call to ``reset()`` before training to avoid unexpected behavior
        """
        if getattr(self, "observation_space", None) is None:
            env = self._wrap_env(env, self.verbose)
            self.observation_space, self.action_space, self.n_envs = env.observation_space, env.action_space, env.num_envs
            self.env = env
            self._setup_model()
        env = self._wrap_env(env, self.verbose)
        self.n_envs = env.num_envs
        super().set_env(env, force_reset)
        self._check_group_env(self.env)  # type: ignore[arg-type]
        self._choose_collector()

    def _act(self, observations: VecEnvObs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with th.no_grad():
            actions, log_probs = self.policy(obs_as_tensor(observations, self.device))  # type: ignore[arg-type]
        actions_np = actions.cpu().numpy()
        env_actions = actions_np
        if isinstance(self.action_space, spaces.Box):
            env_actions = np.clip(actions_np, self.action_space.low, self.action_space.high)
        return env_actions, actions_np, log_probs.cpu().numpy()

    def collect_rollouts(  # type: ignore[override]
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: GroupRolloutBuffer | OneStepRolloutBuffer,  # type: ignore[override]
        n_rollout_steps: int = 0,
    ) -> bool:
        """
        Run ``group_size`` complete episodes from each of ``n_groups`` new start states and compute advantages.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Unused: an update is a number of episodes, not of steps
        :return: True if the update's episodes were all collected, False if a callback stopped training
        """
        assert self.start_states is not None
        self._collection_start = time.perf_counter()
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        if isinstance(rollout_buffer, OneStepRolloutBuffer):
            return self._collect_one_step_groups(one_step_task(env), rollout_buffer, callback)  # type: ignore[arg-type]

        def step_hook(step: StepRecord) -> bool:
            self.num_timesteps += env.num_envs
            # the keys SB3's OnPolicyAlgorithm.collect_rollouts gives callbacks
            callback.update_locals(
                dict(
                    self=self,
                    env=env,
                    callback=callback,
                    rollout_buffer=rollout_buffer,
                    n_rollout_steps=n_rollout_steps,
                    actions=step.actions,
                    clipped_actions=step.env_actions,
                    log_probs=step.log_probs,
                    new_obs=step.new_observations,
                    rewards=step.rewards,
                    dones=step.dones,
                    infos=step.infos,
                    finished_slots=step.finished_slots,
                )
            )
            if not callback.on_step():
                return False
            finished = step.finished_slots
            self._update_info_buffer([step.infos[i] for i in finished], step.dones[finished])
            return True

        n_episodes = self.n_groups * self.group_size
        noise_seeds = self.start_states.take_noise_seeds(n_episodes) if self.episode_noise == "independent" else None
        episodes = collect_group_episodes(
            env,
            self.start_states.take(self.n_groups),
            self.group_size,
            self._act,
            buffer=rollout_buffer,
            step_hook=step_hook,
            likelihood_key=self.likelihood_key,
            max_episode_steps=self.max_episode_steps,
            start_state_check=self.start_state_check,
            noise_seeds=noise_seeds,
        )
        if not episodes.completed:
            return False
        advantages = group_advantages(
            episodes.likelihood_matrix, self.estimator, self.truncation, baseline=self.baseline
        )
        rollout_buffer.finalize(episodes, advantages.reshape(-1))
        self._record_rollout_stats(episodes, advantages)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _collect_one_step_groups(
        self, task: OneStepTask, rollout_buffer: OneStepRolloutBuffer, callback: BaseCallback
    ) -> bool:
        """
        ``collect_rollouts`` on a one-step task: the N episodes of a group sampled from one policy forward pass.

        Callbacks see one ``on_step`` per update (all ``G N`` one-step episodes at once).

        :param task: the one-step task
        :param rollout_buffer: where the update's groups go
        :param callback: Callback that will be called once (and at the end of the rollout)
        :return: True if the update's episodes were collected, False if a callback stopped training
        """
        assert self.start_states is not None
        batch = collect_one_step_groups(self.policy, task, self.start_states.take(self.n_groups), self.group_size)
        self.num_timesteps += batch.likelihoods.size
        callback.update_locals(dict(self=self, one_step_batch=batch, actions=batch.actions, likelihoods=batch.likelihoods))
        if not callback.on_step():
            return False
        advantages = group_advantages(batch.likelihoods, self.estimator, self.truncation, baseline=self.baseline)
        batch.set_advantages(advantages, split_signs=self.clip_range is not None)
        rollout_buffer.batch = batch
        n_episodes = batch.likelihoods.size
        episodes = EpisodeBatch(batch.seeds, self.group_size, batch.likelihoods.reshape(-1), np.ones(n_episodes), n_episodes)
        self._record_rollout_stats(episodes, advantages)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _record_rollout_stats(self, episodes: EpisodeBatch, advantages: np.ndarray) -> None:
        likelihoods = episodes.likelihood_matrix
        self.logger.record("rollout/pass_rate", float(likelihoods.mean()))
        self.logger.record("rollout/frac_groups_all_fail", float((likelihoods.max(axis=1) == 0).mean()))
        self.logger.record("rollout/frac_groups_all_pass", float((likelihoods.min(axis=1) == 1).mean()))
        self.logger.record("rollout/utilization", episodes.utilization)
        self.logger.record("rollout/group_ep_len_mean", float(episodes.lengths.mean()))
        self.logger.record("rollout/advantage_std", float(advantages.std()))
        self.logger.record("rollout/advantage_abs_max", float(max(advantages.max(), -advantages.min())))
        self.logger.record("rollout/frac_zero_advantage", (advantages.size - np.count_nonzero(advantages)) / advantages.size)
        if "truncation" in get_estimator(self.estimator).options:  # the estimators with leave-one-out weights
            omega = loo_weights(likelihoods, self.truncation)
            self.logger.record("rollout/omega_mean", float(omega.mean()))
            self.logger.record("rollout/omega_max", float(omega.max()))

    def train(self) -> None:
        """Update the policy with the episodes of the last ``collect_rollouts``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = None if self.clip_range is None else self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        n_episodes = self.n_groups * self.group_size
        n_steps = self.rollout_buffer.n_steps
        if self.ent_coef == 0 and not self.rollout_buffer.any_nonzero_advantage:
            # A zero gradient would still move the policy through Adam's momentum: skip the optimizer instead.
            self.n_skipped_updates += 1
            self.logger.record("train/skipped_zero_advantage", 1)
            self.logger.record("train/n_skipped_updates", self.n_skipped_updates)
            self._record_useful_rate(n_steps)
            return
        self.logger.record("train/skipped_zero_advantage", 0)
        self.logger.record("train/n_skipped_updates", self.n_skipped_updates)
        policy_losses, entropy_losses, grad_norms, clip_fractions = [], [], [], []
        for _ in range(self.n_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                policy_loss, entropy_loss, clip_fraction = minibatch_losses(
                    self.policy, batch, clip_range, n_steps, n_episodes, entropy_gradient=self.ent_coef != 0
                )
                if clip_fraction is not None:
                    clip_fractions.append(clip_fraction)
                loss = policy_loss + self.ent_coef * entropy_loss
                self.policy.optimizer.zero_grad()
                loss.backward()
                grad_norm = th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                if not (th.isfinite(loss) and th.isfinite(grad_norm)):
                    raise FloatingPointError(
                        f"Non-finite loss ({loss.item()}) or gradient norm ({grad_norm.item()}) at num_timesteps="
                        f"{self.num_timesteps}, update {self._n_updates + 1}; the policy was not updated. Lower the "
                        "learning_rate, keep max_grad_norm set, or check the observations for NaN."
                    )
                self.policy.optimizer.step()
                policy_losses.append(policy_loss.item())
                entropy_losses.append(entropy_loss.item())
                grad_norms.append(grad_norm.item())
        self._n_updates += self.n_epochs
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/policy_gradient_loss", float(np.mean(policy_losses)))
        self.logger.record("train/entropy_loss", float(np.mean(entropy_losses)))
        self.logger.record("train/grad_norm", float(np.mean(grad_norms)))
        self.logger.record("train/steps_per_update", n_steps)
        if clip_range is not None:
            self.logger.record("train/clip_range", clip_range)
            self.logger.record("train/clip_fraction", float(np.mean(clip_fractions)))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self._record_useful_rate(n_steps)

    def _record_useful_rate(self, n_useful_steps: int) -> None:
        """Log the env steps that entered this update's gradient per second of its collection and update."""
        elapsed = time.perf_counter() - self._collection_start
        self.logger.record("rollout/useful_steps_per_second", n_useful_steps / max(elapsed, 1e-9))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_one_step_batch"]  # a property now; older versions saved None

    def learn(
        self: SelfMaxRL,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MaxRL",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMaxRL:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )


#: PPO's arguments that MaxRL does not take, and why
_PPO_ONLY_ARGUMENTS = {
    "n_steps": "an update is n_groups x group_size complete episodes, not a number of steps",
    "gamma": "advantages are per episode, from the group's likelihoods (no discounting)",
    "gae_lambda": "advantages are per episode, from the group's likelihoods (no GAE, no critic)",
    "vf_coef": "there is no critic (no value loss)",
    "clip_range_vf": "there is no critic (no value loss)",
    "normalize_advantage": "the estimator fixes the advantages' scale (estimator='grpo' normalizes per group)",
    "target_kl": "use clip_range, or n_epochs=1 for the paper's on-policy update",
    "use_sde": "gSDE exploration is not supported",
    "sde_sample_freq": "gSDE exploration is not supported",
}


def _ppo_only_message(kwargs: dict[str, Any], n_groups: int, group_size: int) -> str:
    """The error for keyword arguments MaxRL does not take, with why for PPO's."""
    reasons = [f"{name} ({_PPO_ONLY_ARGUMENTS[name]})" for name in kwargs if name in _PPO_ONLY_ARGUMENTS]
    unknown = [name for name in kwargs if name not in _PPO_ONLY_ARGUMENTS]
    parts = []
    if reasons:
        parts.append(
            f"MaxRL does not take PPO's {'; '.join(reasons)}. One update is n_groups x group_size episodes "
            f"(now {n_groups} x {group_size}): set the update's size with n_groups and group_size, and the budget "
            "with learn(total_timesteps)."
        )
    if unknown:
        parts.append(f"MaxRL.__init__() got unexpected keyword arguments {unknown}; see help(sb3_maxrl.MaxRL).")
    return " ".join(parts)


def _add_start_state_wrappers(venv: VecEnv) -> None:
    """Wrap each env of a DummyVecEnv (under any VecEnvWrappers) in ``StartStateWrapper``, unless it has start-state
    control already; other VecEnvs (SubprocVecEnv) must be built with the wrapper."""
    native = venv.unwrapped
    if isinstance(native, StartStateVecEnv) or not isinstance(native, DummyVecEnv):
        return
    for index, env in enumerate(native.envs):
        if not is_wrapped(env, StartStateWrapper):
            native.envs[index] = StartStateWrapper(env)
