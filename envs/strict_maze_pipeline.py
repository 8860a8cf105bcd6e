"""The paper's maze protocol as library pieces: layout sets, the behaviour-cloned weak base, the RL settings.

``maxrl-train --env MaxRL/StrictMaze-9x9-v0`` (the quickstart's main job) and ``benchmarks/strict_mazes.py`` run
one protocol (the MaxRL paper's maze experiment) from these pieces, so its settings live in one place:

1. :func:`layout_sets`: training, validation and held-out test mazes, pairwise different layouts (not only
   different seeds: 9x9 seeds repeat layouts, see :mod:`sb3_maxrl_envs.strict_maze`);
2. :func:`clone_weak_base`: the "SFT stage", behaviour cloning of BFS-optimal paths on training mazes until the
   exact validation pass@1 reaches a target (about 1%: a weak base whose pass rates are small and uneven);
3. :data:`RECIPES`: per maze size, the settings of both stages; :meth:`StrictMazeRecipe.maxrl_kwargs` gives
   ``MaxRL``'s keyword arguments for fine-tuning from the base (Adam, gradient clip 1, ``n_groups`` mazes per update,
   ``group_size`` episodes per maze, and the update: on 9x9 PPO-style reuse, 4 clipped epochs over 4 episodes x 64
   mazes, chosen on validation mazes by ``benchmarks/strict_mazes.py``; :meth:`StrictMazeRecipe.paper_update` gives
   the paper's one plain on-policy gradient step per update, 16 episodes x 16 mazes).

Every metric is exact (:func:`~sb3_maxrl_envs.strict_maze.exact_pass_at_k`): no sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl.common.behavior_cloning import BehaviorCloningResult, ExpertBatch, behavior_cloning
from sb3_maxrl.common.start_states import EVAL_SEED_BASE
from sb3_maxrl.common.utils import check_positive_int
from sb3_maxrl_envs.strict_maze import check_maze_size, disjoint_layout_seeds, exact_pass_at_k, expert_transitions

#: The ks of the pass@k table: pass@1 (a tie between methods is expected) and the large ks MaxRL is for
TABLE_KS: tuple[int, ...] = (1, 16, 64, 1024)
#: First seed tried for the held-out test mazes (above every seed of MaxRL's infinite training stream)
TEST_FIRST_SEED = EVAL_SEED_BASE
#: First seed tried for the validation mazes (the behaviour-cloning stop, learning-rate choices)
VALIDATION_FIRST_SEED = EVAL_SEED_BASE + 10**6


@dataclass(frozen=True)
class StrictMazeRecipe:
    """
    The protocol's settings for one maze size.

    :param size: grid side (9, 13 or 17)
    :param n_groups: mazes per update (G)
    :param updates: RL updates (each one gradient step on ``n_groups x group_size`` complete episodes)
    :param learning_rate: Adam's learning rate of the RL stage
    :param group_size: episodes per maze (N)
    :param net_arch: hidden layers of the MLP policy
    :param max_grad_norm: gradient clip of the RL stage
    :param n_eval: held-out test mazes (and as many validation mazes)
    :param n_train: training mazes (cloned from, then trained on)
    :param base_target: the validation pass@1 at which behaviour cloning stops
    :param bc_batch_size: training mazes per behaviour-cloning step (each gives its whole BFS path)
    :param bc_learning_rate: Adam's learning rate of behaviour cloning
    :param bc_max_steps: the most behaviour-cloning steps, if the target is not reached before
    :param n_epochs: passes over each update's episodes (1: the paper's plain on-policy step)
    :param clip_range: the PPO-style ratio clip of epochs after the first (None with ``n_epochs=1``: the paper's)
    """

    size: int
    n_groups: int
    updates: int
    learning_rate: float
    group_size: int = 16
    net_arch: tuple[int, ...] = (128, 128)
    max_grad_norm: float = 1.0
    n_eval: int = 256
    n_train: int = 20_000
    base_target: float = 0.01
    bc_batch_size: int = 32
    bc_learning_rate: float = 1e-3
    bc_max_steps: int = 500
    n_epochs: int = 1
    clip_range: float | None = None

    def maxrl_kwargs(self) -> dict[str, Any]:
        """
        ``MaxRL``'s keyword arguments for the RL stage (add ``estimator``, ``train_seeds`` and ``seed``).

        :return: learning rate, group size, mazes per update, the update (``n_epochs``, ``clip_range``, one batch),
            the gradient clip and the policy network
        """
        return dict(
            learning_rate=self.learning_rate,
            group_size=self.group_size,
            n_groups=self.n_groups,
            n_epochs=self.n_epochs,
            clip_range=self.clip_range,
            max_grad_norm=self.max_grad_norm,
            policy_kwargs=dict(net_arch=list(self.net_arch)),
        )

    def paper_update(self) -> StrictMazeRecipe:
        """
        The paper's protocol at this size: one plain on-policy gradient step per update on 16 episodes of each of
        ``PAPER_MAZES_PER_UPDATE[size]`` mazes, at the paper protocol's learning rate.

        :return: the recipe with the paper's update (the behaviour-cloning stage and the budget unchanged)
        """
        return replace(self, **PAPER_UPDATES[self.size])

    @property
    def num_envs(self) -> int:
        """Slots of the ``StrictMazeVecEnv``: one per episode of an update, at most 256."""
        return min(256, self.n_groups * self.group_size)


#: The paper protocol's update per maze size (CLAIMS.md claim 1: 9x9 lr 1e-3, 16 mazes x 16 episodes per update, 600
#: updates; 13x13 lr 3e-4, 32 mazes, 800 updates; 17x17 as 13x13): one plain on-policy gradient step per update
PAPER_UPDATES: dict[int, dict[str, Any]] = {
    9: dict(n_groups=16, group_size=16, learning_rate=1e-3, n_epochs=1, clip_range=None),
    13: dict(n_groups=32, group_size=16, learning_rate=3e-4, n_epochs=1, clip_range=None),
    17: dict(n_groups=32, group_size=16, learning_rate=3e-4, n_epochs=1, clip_range=None),
}
#: The settings per maze size. 9x9: PPO-style reuse (4 clipped epochs, one batch) on 4 episodes x 64 mazes at lr 1e-3,
#: MaxRL's best on validation mazes among lr {3e-4, 1e-3, 3e-3} x splits {4x64, 8x32, 16x16, 32x8} at the same
#: env-step budget (``python -m benchmarks.strict_mazes --stage tune`` / ``--stage splits``); 13x13 and 17x17 keep
#: the paper's update, which the reuse grid has not been run on
RECIPES: dict[int, StrictMazeRecipe] = {
    9: StrictMazeRecipe(size=9, n_groups=64, group_size=4, updates=600, learning_rate=1e-3, n_epochs=4, clip_range=0.2),
    13: StrictMazeRecipe(size=13, updates=800, **PAPER_UPDATES[13]),
    17: StrictMazeRecipe(size=17, updates=800, **PAPER_UPDATES[17]),
}


@dataclass(frozen=True)
class StrictMazeLayouts:
    """
    Maze seeds of the three roles, pairwise different layouts.

    :param train: the training mazes (behaviour cloning and RL)
    :param validation: the mazes that stop behaviour cloning (and choose learning rates)
    :param test: the held-out mazes of every reported metric
    """

    train: list[int]
    validation: list[int]
    test: list[int]


def layout_sets(size: int, n_eval: int, n_train: int) -> StrictMazeLayouts:
    """
    Test, validation and training maze seeds whose layouts are pairwise different, within and across the sets.

    The same sets for every seed of a run: test seeds count up from ``TEST_FIRST_SEED``, validation seeds from
    ``VALIDATION_FIRST_SEED``, training seeds from 0 (20,000 9x9 training layouts take about a second).

    :param size: grid side
    :param n_eval: test mazes, and as many validation mazes
    :param n_train: training mazes
    :return: the three sets
    """
    size = check_maze_size(size)
    n_eval = check_positive_int("n_eval", n_eval, "held-out test (and validation) mazes")
    n_train = check_positive_int("n_train", n_train, "training mazes")
    test = disjoint_layout_seeds(size, n_eval, first_seed=TEST_FIRST_SEED)
    validation = disjoint_layout_seeds(size, n_eval, exclude_seeds=test, first_seed=VALIDATION_FIRST_SEED)
    train = disjoint_layout_seeds(size, n_train, exclude_seeds=test + validation, first_seed=0)
    return StrictMazeLayouts(train=train, validation=validation, test=test)


def clone_weak_base(
    model: BaseAlgorithm | BasePolicy,
    size: int,
    train_seeds: Sequence[int],
    validation_seeds: Sequence[int],
    *,
    target: float = 0.01,
    max_steps: int = 500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    verbose: int = 0,
) -> BehaviorCloningResult:
    """
    The SFT stage: clone BFS-optimal paths into ``model`` until its exact validation pass@1 reaches ``target``.

    Each step takes the whole expert path of ``batch_size`` training mazes drawn without replacement, and one Adam
    step on ``-mean log pi(expert action | obs)``
    (:func:`~sb3_maxrl.common.behavior_cloning.behavior_cloning`); the exact pass@1 on ``validation_seeds`` is
    evaluated before the first step and after every step.

    :param model: an SB3 model or policy over ``size`` x ``size`` strict-maze observations and Discrete(4) actions
    :param size: grid side
    :param train_seeds: the mazes to clone from
    :param validation_seeds: the mazes of the stopping rule (not test mazes)
    :param target: stop once the validation pass@1 is at least this
    :param max_steps: the most steps, if the target is not reached before
    :param batch_size: mazes per step
    :param learning_rate: Adam's learning rate
    :param seed: seeds the draw of the mazes of each step
    :param verbose: 0 silent, 1 prints every evaluation, 2 also every step's loss
    :return: the steps taken, their losses and the validation pass@1 of every evaluation; ``model`` is cloned in place
    """
    size = check_maze_size(size)
    batch_size = check_positive_int("batch_size", batch_size, "training mazes per behaviour-cloning step")
    train = np.array(train_seeds, dtype=np.int64)
    if len(train) < batch_size:
        raise ValueError(f"batch_size={batch_size} mazes per step needs at least as many train_seeds, got {len(train)}.")
    validation = [int(s) for s in validation_seeds]
    if not validation:
        raise ValueError("validation_seeds is empty: pass the validation mazes that decide when cloning stops.")
    rng = np.random.default_rng(seed)

    def expert_batch(step: int) -> ExpertBatch:
        return expert_transitions(size, rng.choice(train, size=batch_size, replace=False).tolist())

    def validation_pass_at_1() -> float:
        return exact_pass_at_k(model, size, validation, ks=(1,)).pass_at_k[1]

    return behavior_cloning(
        model,
        expert_batch,
        n_steps=max_steps,
        learning_rate=learning_rate,
        evaluate=validation_pass_at_1,
        target=target,
        verbose=verbose,
    )
