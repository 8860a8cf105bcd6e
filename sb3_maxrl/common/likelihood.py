"""The per-episode likelihood an environment reports at the end of an episode, and its validation."""

from __future__ import annotations

import math
from typing import Any

#: The info key of a continuous likelihood in ``[0, 1]``, reported on the final step of an episode.
LIKELIHOOD_KEY = "likelihood"
#: The info key of a binary outcome (SB3's convention), reported on the final step of an episode.
SUCCESS_KEY = "is_success"


def episode_likelihood(info: dict[str, Any], likelihood_key: str = LIKELIHOOD_KEY) -> float:
    """
    The likelihood ``l`` in ``[0, 1]`` of a finished episode, from the info dict of its final step.

    ``info[likelihood_key]`` (continuous tasks) takes precedence over ``info["is_success"]`` (binary tasks).

    :param info: the info dict of the episode's final step
    :param likelihood_key: the info key of a continuous likelihood
    :return: the likelihood as a float
    :raises ValueError: if the env reports neither key, or a value outside ``[0, 1]``, NaN or inf
    """
    if likelihood_key in info:
        value = info[likelihood_key]
        source = f"info[{likelihood_key!r}]"
    elif SUCCESS_KEY in info:
        value = info[SUCCESS_KEY]
        source = f"info[{SUCCESS_KEY!r}]"
    elif info.get("TimeLimit.truncated"):
        raise ValueError(
            f"The episode was truncated (gymnasium's TimeLimit) without {SUCCESS_KEY!r}: a truncated episode must report "
            f"info['is_success'] = False (set it whenever terminated or truncated), or put the step budget inside the "
            "env and report the outcome there."
        )
    else:
        raise ValueError(
            f"The environment ended an episode without reporting its outcome: the final step's info has neither "
            f"{likelihood_key!r} nor {SUCCESS_KEY!r} (keys: {sorted(info)}). Binary tasks: set "
            f"info['is_success'] = bool on the final step (for MiniGrid use sb3_maxrl_envs.make_minigrid); "
            f"continuous tasks: set info[{likelihood_key!r}] to a likelihood in [0, 1]."
        )
    try:
        likelihood = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source} must be a number or bool, got {value!r}.") from error
    if not math.isfinite(likelihood) or not 0.0 <= likelihood <= 1.0:
        raise ValueError(
            f"{source} = {likelihood!r} is outside [0, 1]: scale the likelihood so its peak is <= 1 "
            "(e.g. exp(-(y - yhat)^2 / (2 tau^2)); a constant factor does not change the maximum-likelihood "
            "gradient) and make sure it is never NaN."
        )
    return likelihood
