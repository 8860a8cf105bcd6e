"""Features extractors for small grid images (SB3's ``NatureCNN`` needs at least 36x36 pixels)."""

from __future__ import annotations

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class MiniGridCNN(BaseFeaturesExtractor):
    """A small CNN for MiniGrid's cell grids: three 2x2 convolutions (16, 32, 64 channels), then a linear layer.

    Takes a channels-first ``(channels, height, width)`` Box with height and width >= 4, e.g. the
    ``obs="image"`` encoding of ``sb3_maxrl_envs`` (25 one-hot channels, 7x7 egocentric or the full grid),
    or MiniGrid's ``ImgObsWrapper`` image after SB3's ``VecTransposeImage``. Use it as
    ``policy_kwargs=dict(features_extractor_class=MiniGridCNN)`` (the recipe of MiniGrid's SB3 tutorial).

    :param observation_space: the (channels-first) image observation space
    :param features_dim: number of output features
    :param normalized_image: SB3's flag: True when a uint8 image is already scaled (SB3 skips dividing by 255)
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 128, normalized_image: bool = False) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"MiniGridCNN needs a (channels, height, width) Box observation, got {observation_space}; "
                "make the env with obs='image' (e.g. gym.make('MaxRL/Maze-9x9-v0', obs='image'))"
            )
        channels, height, width = observation_space.shape
        if is_image_space(observation_space, check_channels=False, normalized_image=normalized_image) and channels > min(
            height, width
        ):
            raise ValueError(
                f"MiniGridCNN got a uint8 image of shape {observation_space.shape} that looks channels-last; "
                "SB3 transposes channels-last images itself (VecTransposeImage), so pass the env unchanged"
            )
        if height < 4 or width < 4:
            raise ValueError(
                f"MiniGridCNN needs height and width >= 4 (three 2x2 convolutions), got {observation_space.shape}"
            )
        if features_dim < 1:
            raise ValueError(f"features_dim={features_dim} must be a positive integer")
        super().__init__(observation_space, features_dim)
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        n_flatten = 64 * (height - 3) * (width - 3)
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """:param observations: a ``(batch, channels, height, width)`` float tensor"""
        return self.linear(self.cnn(observations))
