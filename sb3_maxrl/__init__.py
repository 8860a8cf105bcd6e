"""sb3-maxrl: Maximum Likelihood Reinforcement Learning for Stable-Baselines3."""

import os

import sb3_maxrl_envs  # noqa: F401  (registers the MaxRL/... gymnasium ids)
from sb3_maxrl.common.behavior_cloning import behavior_cloning
from sb3_maxrl.common.callbacks import EveryNUpdates, ExactPassAtKEvalCallback, PassAtKEvalCallback
from sb3_maxrl.common.env_checker import check_start_state_env
from sb3_maxrl.common.estimators import (
    ESTIMATORS,
    BinaryLikelihoodWarning,
    group_advantages,
    loo_weights,
    truncated_ml_weight,
)
from sb3_maxrl.common.evaluation import PassAtKResult, evaluate_pass_at_k, geometric_ks, pass_at_k
from sb3_maxrl.common.exact_evaluation import pass_at_k_from_probabilities
from sb3_maxrl.common.native_vec_env import NativeStartStateVecEnv
from sb3_maxrl.common.start_states import StartStateWrapper, default_eval_seeds
from sb3_maxrl.maxrl import MaxRL

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

__all__ = [
    "ESTIMATORS",
    "BinaryLikelihoodWarning",
    "EveryNUpdates",
    "ExactPassAtKEvalCallback",
    "MaxRL",
    "NativeStartStateVecEnv",
    "PassAtKEvalCallback",
    "PassAtKResult",
    "StartStateWrapper",
    "__version__",
    "behavior_cloning",
    "check_start_state_env",
    "default_eval_seeds",
    "evaluate_pass_at_k",
    "geometric_ks",
    "group_advantages",
    "loo_weights",
    "pass_at_k",
    "pass_at_k_from_probabilities",
    "truncated_ml_weight",
]
