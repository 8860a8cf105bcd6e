"""Actor-only policies for MaxRL: SB3's actor-critic policy without the critic nothing would use."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
    make_proba_distribution,
)
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim, preprocess_obs
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn


class MaxRLPolicy(BasePolicy):
    """
    Stochastic policy network (features extractor -> MLP -> action distribution) with no value head.

    :param observation_space: Observation space
    :param action_space: Action space (Discrete, MultiDiscrete, MultiBinary or Box)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes of the policy MLP (a list, or ``dict(pi=[...])`` as in SB3); ``[]`` for a
        linear (softmax) policy
    :param activation_fn: Activation function
    :param ortho_init: Whether to use orthogonal initialization (as SB3's PPO)
    :param log_std_init: Initial log standard deviation of a Gaussian policy (Box actions); the std is learned
    :param features_extractor_class: Features extractor to use
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to divide image observations by 255
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default. ``th.optim.SGD`` with
        ``optimizer_kwargs=dict(momentum=0.9, weight_decay=1e-4)`` and ``learning_rate=0.1`` is the paper's ImageNet
        optimizer: unlike Adam it keeps the gradient's scale, where REINFORCE and MaxRL differ most
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
        (Adam's default: ``eps=1e-5``)
    :param use_sde: Not supported (state-dependent exploration needs per-step noise resets); must be False
    :param share_features_extractor: Accepted for compatibility with SB3's ``ActorCriticPolicy`` and ignored: there
        is no critic to share the features extractor with
    :param full_std: Accepted for compatibility with SB3 (it only applies with ``use_sde=True``)
    :param use_expln: Accepted for compatibility with SB3 (it only applies with ``use_sde=True``)
    :param squash_output: Accepted for compatibility with SB3; must be False (it only applies with ``use_sde=True``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        share_features_extractor: bool = True,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
    ):
        if use_sde:
            raise ValueError("MaxRL does not support use_sde=True; use the default Gaussian policy for Box actions.")
        if squash_output:
            raise ValueError("squash_output=True only applies with use_sde=True, which MaxRL does not support; drop it.")
        if optimizer_kwargs is None:
            optimizer_kwargs = {"eps": 1e-5} if optimizer_class == th.optim.Adam else {}
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
            squash_output=False,
        )
        if isinstance(net_arch, dict):
            net_arch = net_arch.get("pi", [])
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        self.ortho_init = ortho_init
        self.log_std_init = log_std_init
        self.features_extractor = self.make_features_extractor()
        self.features_dim = self.features_extractor.features_dim
        self.action_dist = make_proba_distribution(action_space)
        self._build(lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                ortho_init=self.ortho_init,
                log_std_init=self.log_std_init,
                lr_schedule=self._dummy_schedule,  # type: ignore[attr-defined]
                features_extractor_class=self.features_extractor_class,
                features_extractor_kwargs=self.features_extractor_kwargs,
                normalize_images=self.normalize_images,
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
            )
        )
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        self.latent_net = nn.Sequential(*create_mlp(self.features_dim, -1, self.net_arch, self.activation_fn))
        latent_dim = self.net_arch[-1] if self.net_arch else self.features_dim
        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=latent_dim, log_std_init=self.log_std_init
            )
        elif isinstance(self.action_dist, CategoricalDistribution | MultiCategoricalDistribution | BernoulliDistribution):
            self.action_net = self.action_dist.proba_distribution_net(latent_dim=latent_dim)
        else:
            raise NotImplementedError(f"Unsupported distribution '{self.action_dist}'.")
        if self.ortho_init:
            module_gains = {self.features_extractor: np.sqrt(2), self.latent_net: np.sqrt(2), self.action_net: 0.01}
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def extract_features(  # type: ignore[override]
        self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor | None = None
    ) -> th.Tensor:
        """
        Preprocess the observation in the policy's floating dtype (float32, or float64 after ``policy.double()``).

        :param obs: Observation
        :param features_extractor: The features extractor to use (default: the policy's)
        :return: the features
        """
        extractor = self.features_extractor if features_extractor is None else features_extractor
        preprocessed = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        dtype = next(self.parameters()).dtype
        if isinstance(preprocessed, dict):
            return extractor({key: value.to(dtype) for key, value in preprocessed.items()})
        return extractor(preprocessed.to(dtype))

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        """
        The action distribution at ``obs``.

        :param obs: Observation (preprocessed by ``obs_to_tensor``)
        :return: the action distribution
        """
        latent = self.latent_net(self.extract_features(obs))
        mean_actions = self.action_net(latent)
        if isinstance(self.action_dist, DiagGaussianDistribution):
            return self.action_dist.proba_distribution(mean_actions, self.log_std)
        return self.action_dist.proba_distribution(action_logits=mean_actions)  # type: ignore[call-arg]

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:  # type: ignore[override]
        """
        Sample actions and their log-probabilities.

        :param obs: Observation
        :param deterministic: Whether to take the mode instead of sampling
        :return: actions and their log-probabilities
        """
        if not deterministic:
            class_log_probs = self.categorical_log_probs(obs)
            if class_log_probs is not None:  # torch's Categorical.sample and log_prob on the same numbers
                actions = th.multinomial(th.softmax(class_log_probs, dim=-1), 1, True).T.reshape(-1)
                return actions, class_log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        distribution = self.get_distribution(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        return actions, log_prob

    def categorical_log_probs(self, obs: PyTorchObs) -> th.Tensor | None:
        """
        ``log pi(a | obs)`` of every action of a Discrete action space, without building torch's ``Categorical``
        (whose argument checks cost about as much as a small network's forward pass): the numbers of
        ``get_distribution(obs).distribution.logits``.

        :param obs: Observation (preprocessed by ``obs_to_tensor``)
        :return: ``(batch, n_actions)`` log-probabilities, or None for another action space or a subclass with its
            own ``get_distribution``
        """
        if not isinstance(self.action_dist, CategoricalDistribution) or (
            type(self).get_distribution is not MaxRLPolicy.get_distribution
        ):
            return None
        logits = self.action_net(self.latent_net(self.extract_features(obs)))
        return logits - logits.logsumexp(dim=-1, keepdim=True)  # as Categorical normalizes its logits

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """
        Log-probabilities and entropy of ``actions`` under the current policy.

        :param obs: Observations
        :param actions: Actions taken at those observations
        :return: log-probabilities and entropy (None where the distribution has no analytical entropy)
        """
        class_log_probs = self.categorical_log_probs(obs)
        if class_log_probs is not None:  # torch's Categorical.log_prob and entropy on the same numbers
            log_prob = class_log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            clamped = class_log_probs.clamp(min=th.finfo(class_log_probs.dtype).min)
            return log_prob, -(clamped * th.softmax(class_log_probs, dim=-1)).sum(-1)
        distribution = self.get_distribution(obs)
        if isinstance(self.action_dist, DiagGaussianDistribution):
            actions = actions.reshape(-1, get_action_dim(self.action_space))
        return distribution.log_prob(actions), distribution.entropy()


class MaxRLCnnPolicy(MaxRLPolicy):
    """:class:`MaxRLPolicy` with SB3's NatureCNN features extractor (images of at least 36x36)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


class MaxRLMultiInputPolicy(MaxRLPolicy):
    """:class:`MaxRLPolicy` for Dict observation spaces (SB3's CombinedExtractor)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


MlpPolicy = MaxRLPolicy
CnnPolicy = MaxRLCnnPolicy
MultiInputPolicy = MaxRLMultiInputPolicy
