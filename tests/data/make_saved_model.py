"""Regenerate the saved model that tests/test_reliability.py loads (run only when bumping the format on purpose).

    python tests/data/make_saved_model.py
"""

from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env

import sb3_maxrl
from sb3_maxrl import MaxRL, StartStateWrapper
from sb3_maxrl_envs import make_minigrid

if __name__ == "__main__":
    torch.set_num_threads(1)
    here = Path(__file__).parent
    env = make_vec_env(lambda: make_minigrid("MiniGrid-Empty-Random-5x5-v0"), n_envs=2, wrapper_class=StartStateWrapper)
    model = MaxRL("MlpPolicy", env, group_size=4, n_groups=2, seed=0)
    model.learn(2000)
    model.save(here / f"maxrl_v{sb3_maxrl.__version__}.zip")
    observations = np.concatenate([env.reset() for _ in range(8)])
    actions, _ = model.predict(observations, deterministic=True)
    np.savez(here / f"maxrl_v{sb3_maxrl.__version__}_predictions.npz", observations=observations, actions=actions)
