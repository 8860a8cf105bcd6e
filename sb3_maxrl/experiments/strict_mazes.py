"""The paper's maze experiment as settings of the generic protocol (:mod:`sb3_maxrl.experiments.pipeline`).

``maxrl-train --env MaxRL/StrictMaze-9x9-v0`` (the quickstart's main job), ``run_protocol`` on a strict maze and
``benchmarks/strict_mazes.py`` run the protocol through the pipeline's own functions, with the settings kept here:

1. :data:`RECIPES`: per maze size, a :class:`~sb3_maxrl.experiments.pipeline.Recipe` of both stages: 20,000
   training, 256 validation and 256 test mazes; behaviour cloning of BFS-optimal paths until the exact validation
   pass@1 reaches 1% (a weak base whose pass rates are small and uneven); fine-tuning for a number of updates (Adam,
   gradient clip 1, ``n_groups`` mazes per update, ``group_size`` episodes per maze), on 9x9 with PPO-style reuse,
   4 clipped epochs over 4 episodes x 64 mazes, chosen on validation mazes by ``benchmarks/strict_mazes.py``;
   :func:`paper_update` gives the paper's one plain on-policy gradient step per update, 16 episodes x 16 mazes;
2. :func:`layout_sets`: training, validation and held-out test mazes, pairwise different layouts (not only different
   seeds: 9x9 seeds repeat layouts, see :mod:`sb3_maxrl_envs.strict_maze`), drawn by
   :func:`~sb3_maxrl.experiments.pipeline.draw_start_seeds` with the layout as the start state's identity;
3. :func:`clone_weak_base`: the SFT stage on strict mazes,
   :func:`~sb3_maxrl.experiments.pipeline.clone_base` of the BFS expert with the exact validation pass@1 as the stop.

The task itself (the native ``StrictMazeVecEnv``, the BFS expert, exact pass@k by dynamic programming) is
:func:`~sb3_maxrl.experiments.pipeline.strict_maze_task`. Every metric is exact: no sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_maxrl.common.behavior_cloning import BehaviorCloningResult
from sb3_maxrl.common.utils import check_positive_int
from sb3_maxrl.experiments.pipeline import (
    PAPER_ONE_STEP_UPDATE,
    Recipe,
    StartSeeds,
    clone_base,
    draw_start_seeds,
    strict_maze_task,
)
from sb3_maxrl_envs.strict_maze import check_maze_size

#: The ks of the pass@k table: pass@1 (a tie between methods is expected) and the large ks MaxRL is for
TABLE_KS: tuple[int, ...] = (1, 16, 64, 1024)
#: The most env slots of a strict-maze run: one per episode of an update, at most this many
MAX_ENV_SLOTS = 256
#: The paper protocol's update per maze size (CLAIMS.md claim 1: 9x9 lr 1e-3, 16 mazes x 16 episodes per update, 600
#: updates; 13x13 lr 3e-4, 32 mazes, 800 updates; 17x17 as 13x13): one plain on-policy gradient step per update
PAPER_UPDATES: dict[int, dict[str, Any]] = {
    9: dict(n_groups=16, group_size=16, default_learning_rates=(1e-3,), **PAPER_ONE_STEP_UPDATE),
    13: dict(n_groups=32, group_size=16, default_learning_rates=(3e-4,), **PAPER_ONE_STEP_UPDATE),
    17: dict(n_groups=32, group_size=16, default_learning_rates=(3e-4,), **PAPER_ONE_STEP_UPDATE),
}


def env_slots(n_groups: int, group_size: int) -> int:
    """
    Slots of the ``StrictMazeVecEnv`` of an update of ``n_groups x group_size`` episodes.

    :param n_groups: mazes per update
    :param group_size: episodes per maze
    :return: one slot per episode of an update, at most :data:`MAX_ENV_SLOTS`
    """
    return min(MAX_ENV_SLOTS, n_groups * group_size)


def strict_maze_recipe(updates: int, timesteps: int, **changes: Any) -> Recipe:
    """
    The protocol's settings for strict mazes, the same at every size but the update and the budget.

    :param updates: fine-tuning updates of every MaxRL-family method
    :param timesteps: PPO's env-step budget when no MaxRL-family method runs (else it gets their median), and the
        spacing of PPO's ``eval_points``
    :param changes: other settings of :class:`~sb3_maxrl.experiments.pipeline.Recipe` (the update: ``n_groups``,
        ``group_size``, ``default_learning_rates``, ``n_epochs``, ``batch_size``, ``clip_range``; give
        ``batch_size=None`` for one batch, as the Recipe default is PPO's minibatch)
    :return: the recipe, with one env slot per episode of an update (at most :data:`MAX_ENV_SLOTS`)
    """
    recipe = Recipe(
        n_train=20_000,
        n_validation=256,
        n_test=256,
        base_target=0.01,
        bc_batch_size=32,
        bc_learning_rate=1e-3,
        bc_max_steps=500,
        timesteps=timesteps,
        updates=updates,
        max_grad_norm=1.0,
        net_arch=(128, 128),
        ks=TABLE_KS,
        **changes,
    )
    return replace(recipe, n_envs=env_slots(recipe.n_groups, recipe.group_size))


#: The settings per maze size. 9x9: PPO-style reuse (4 clipped epochs, one batch) on 4 episodes x 64 mazes at lr 1e-3,
#: MaxRL's best on validation mazes among lr {3e-4, 1e-3, 3e-3} x splits {4x64, 8x32, 16x16, 32x8} x one batch or
#: minibatches of 512 at the same env-step budget (``python -m benchmarks.strict_mazes --stage tune`` / ``--stage
#: splits``), and SB3 PPO (``--compare ppo``) with its validation best, 10 epochs over minibatches of 512 at lr 1e-3
#: (SB3's gradient clip of 0.5);
#: 13x13 and 17x17 keep the paper's update. The env-step budgets are the benchmark's.
RECIPES: dict[int, Recipe] = {
    9: strict_maze_recipe(
        600,
        1_900_000,
        n_groups=64,
        group_size=4,
        default_learning_rates=(1e-3,),
        n_epochs=4,
        batch_size=None,
        clip_range=0.2,
        learning_rates={"ppo": (1e-3,)},
        ppo_n_steps=16,
        ppo_batch_size=512,
        ppo_n_epochs=10,
        ppo_max_grad_norm=0.5,
    ),
    13: strict_maze_recipe(800, 4_000_000, **PAPER_UPDATES[13]),
    17: strict_maze_recipe(800, 4_000_000, **PAPER_UPDATES[17]),
}


def recipe_of(size: int) -> Recipe:
    """
    The recipe of a maze size.

    :param size: grid side
    :return: :data:`RECIPES` ``[size]``
    :raises ValueError: for a size without a recipe
    """
    if size not in RECIPES:
        raise ValueError(f"No strict-maze recipe for size {size}: the recipes are for sizes {sorted(RECIPES)}.")
    return RECIPES[size]


def paper_update(recipe: Recipe, size: int) -> Recipe:
    """
    The paper's update at this size: one plain on-policy gradient step per update on 16 episodes of each of
    ``PAPER_UPDATES[size]["n_groups"]`` mazes, at the paper protocol's learning rate.

    :param recipe: a strict-maze recipe
    :param size: grid side (9, 13 or 17)
    :return: the recipe with the paper's update (the behaviour-cloning stage and the budget unchanged)
    """
    if size not in PAPER_UPDATES:
        raise ValueError(f"No paper update for size {size}: the paper's are for sizes {sorted(PAPER_UPDATES)}.")
    update = PAPER_UPDATES[size]
    return replace(recipe, **update, n_envs=env_slots(update["n_groups"], update["group_size"]))


def layout_sets(size: int, n_eval: int, n_train: int) -> StartSeeds:
    """
    Test, validation and training maze seeds whose layouts are pairwise different, within and across the sets.

    :func:`~sb3_maxrl.experiments.pipeline.draw_start_seeds` with the layout as the identity
    (:func:`~sb3_maxrl_envs.strict_maze.layout_key`): the same sets for every run, test seeds counting up from
    ``TEST_FIRST_SEED``, validation seeds from ``VALIDATION_FIRST_SEED``, training seeds from 0 (20,000 9x9 training
    layouts take a few seconds).

    :param size: grid side
    :param n_eval: test mazes, and as many validation mazes
    :param n_train: training mazes
    :return: the three sets
    """
    size = check_maze_size(size)
    n_eval = check_positive_int("n_eval", n_eval, "held-out test (and validation) mazes")
    n_train = check_positive_int("n_train", n_train, "training mazes")
    return draw_start_seeds(strict_maze_task(size).key_function(), n_train, n_eval, n_eval)


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
    The SFT stage on strict mazes: clone BFS-optimal paths into ``model`` until its exact validation pass@1 reaches
    ``target`` (:func:`~sb3_maxrl.experiments.pipeline.clone_base` of :func:`strict_maze_task`).

    Each step takes the whole expert path of ``batch_size`` training mazes drawn without replacement, and one Adam
    step on ``-mean log pi(expert action | obs)``; the exact pass@1 on ``validation_seeds`` is evaluated before the
    first step and after every step.

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
    if len(train_seeds) < batch_size:
        raise ValueError(f"batch_size={batch_size} mazes per step needs at least as many train_seeds, got {len(train_seeds)}.")
    recipe = Recipe(base_target=target, bc_max_steps=max_steps, bc_batch_size=batch_size, bc_learning_rate=learning_rate)
    cloning, _ = clone_base(strict_maze_task(size), recipe, model, train_seeds, validation_seeds, seed=seed, verbose=verbose)
    return cloning
