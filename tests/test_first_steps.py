"""What a new user hits first: PPO's habits, the README's first snippet, files the README's commands create."""

from __future__ import annotations

import pytest

from sb3_maxrl import MaxRL


@pytest.mark.parametrize("name, value", [("n_steps", 2048), ("gamma", 0.99), ("gae_lambda", 0.95), ("vf_coef", 0.5)])
def test_ppo_arguments_are_refused_with_what_an_update_is(name: str, value: float) -> None:
    with pytest.raises(TypeError, match=rf"MaxRL does not take PPO's {name} .*One update is n_groups x group_size episodes"):
        MaxRL("MlpPolicy", "CartPole-v1", **{name: value})
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['learning_rat'\]"):
        MaxRL("MlpPolicy", "CartPole-v1", learning_rat=1e-3)
