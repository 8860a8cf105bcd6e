"""The strict-maze experiment (``sb3_maxrl.experiments.strict_mazes``): settings and thin functions over the generic
pipeline, shared by maxrl-train, run_protocol and benchmarks/strict_mazes.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from sb3_maxrl import MaxRL
from sb3_maxrl.common.behavior_cloning import behavior_cloning
from sb3_maxrl.experiments.pipeline import TEST_FIRST_SEED, VALIDATION_FIRST_SEED, StartSeeds, recipe_for
from sb3_maxrl.experiments.strict_mazes import RECIPES, TABLE_KS, clone_weak_base, layout_sets, paper_update
from sb3_maxrl_envs.strict_maze import (
    StrictMazeVecEnv,
    disjoint_layout_seeds,
    exact_pass_at_k,
    expert_transitions,
    layout_key,
    maze_walls,
)


def test_layout_sets_are_pairwise_different_layouts() -> None:
    layouts = layout_sets(9, n_eval=64, n_train=3000)  # 9x9 seeds repeat layouts (about 11% of seeds)
    assert (len(layouts.test), len(layouts.validation), len(layouts.train)) == (64, 64, 3000)
    keys = [layout_key(maze_walls(9, seed)) for seed in layouts.test + layouts.validation + layouts.train]
    assert len(set(keys)) == len(keys)
    assert layout_sets(9, n_eval=64, n_train=3000) == layouts, "the same sets for every run"
    assert layout_sets(9, n_eval=32, n_train=100).test == layouts.test[:32]
    with pytest.raises(ValueError, match="n_eval must be an int >= 1"):
        layout_sets(9, n_eval=0, n_train=10)
    with pytest.raises(ValueError, match="odd integer"):
        layout_sets(8, n_eval=4, n_train=10)


@pytest.mark.parametrize("size", [9, 13])
def test_layout_sets_are_the_sets_of_disjoint_layout_seeds(size: int) -> None:
    """The generic draw with the layout as identity gives the sets every kept strict-maze result was run on."""
    test = disjoint_layout_seeds(size, 48, first_seed=TEST_FIRST_SEED)
    validation = disjoint_layout_seeds(size, 48, exclude_seeds=test, first_seed=VALIDATION_FIRST_SEED)
    train = disjoint_layout_seeds(size, 2000, exclude_seeds=test + validation, first_seed=0)
    assert layout_sets(size, n_eval=48, n_train=2000) == StartSeeds(train=train, validation=validation, test=test)


def test_cloning_stops_at_the_first_validation_pass_rate_reaching_the_target() -> None:
    th.set_num_threads(1)
    layouts = layout_sets(7, n_eval=16, n_train=100)
    model = MaxRL("MlpPolicy", StrictMazeVecEnv(4, 7, seed=0), policy_kwargs=dict(net_arch=[32]), seed=0)
    result = clone_weak_base(model, 7, layouts.train, layouts.validation, target=0.2, batch_size=8, learning_rate=3e-3, seed=0)
    values = [value for _, value in result.evaluations]
    assert result.stopped_at_target and values[-1] >= 0.2 > max(values[:-1]) and values[0] < 0.05
    assert [step for step, _ in result.evaluations] == list(range(result.n_steps + 1))
    assert exact_pass_at_k(model, 7, layouts.validation, ks=(1,)).pass_at_k[1] == pytest.approx(values[-1], rel=1e-12)
    assert result.losses[-1] < result.losses[0]

    with pytest.raises(ValueError, match="needs at least as many train_seeds"):
        clone_weak_base(model, 7, layouts.train[:4], layouts.validation, batch_size=8)
    with pytest.raises(ValueError, match="validation_seeds is empty"):
        clone_weak_base(model, 7, layouts.train, [])


def test_cloning_draws_the_mazes_of_each_step_as_before() -> None:
    """Each step's mazes are ``choice(train, batch_size, replace=False)`` of a generator seeded by ``seed``: the draw
    of the kept strict-maze results (benchmarks and the quickstart table), now the generic pipeline's."""
    th.set_num_threads(1)
    layouts = layout_sets(7, n_eval=16, n_train=100)
    models = [MaxRL("MlpPolicy", StrictMazeVecEnv(4, 7, seed=0), policy_kwargs=dict(net_arch=[32]), seed=0) for _ in "ab"]
    shared = clone_weak_base(models[0], 7, layouts.train, layouts.validation, target=0.2, batch_size=8, seed=3)
    rng = np.random.default_rng(3)
    train = np.array(layouts.train, dtype=np.int64)
    by_hand = behavior_cloning(
        models[1],
        lambda step: expert_transitions(7, rng.choice(train, size=8, replace=False).tolist()),
        n_steps=500,
        evaluate=lambda: exact_pass_at_k(models[1], 7, layouts.validation, ks=(1,)).pass_at_k[1],
        target=0.2,
    )
    assert shared.n_steps == by_hand.n_steps >= 2
    assert shared.losses == by_hand.losses and shared.evaluations == by_hand.evaluations


@pytest.mark.parametrize("size", sorted(RECIPES))
def test_recipes_are_maxrl_settings(size: int) -> None:
    recipe = RECIPES[size]
    assert recipe_for(f"MaxRL/StrictMaze-{size}x{size}-v0") == recipe, "run_protocol's recipe of the env id"
    assert recipe.n_envs == min(256, recipe.n_groups * recipe.group_size) and recipe.ks == TABLE_KS
    model = MaxRL("MlpPolicy", StrictMazeVecEnv(recipe.n_envs, size), **recipe.maxrl_kwargs(), _init_setup_model=False)
    expected = (recipe.n_epochs, recipe.clip_range, recipe.max_grad_norm, recipe.default_learning_rates[0])
    assert (model.n_epochs, model.clip_range, model.max_grad_norm, model.learning_rate) == expected
    paper = paper_update(recipe, size)
    paper_model = MaxRL("MlpPolicy", StrictMazeVecEnv(paper.n_envs, size), **paper.maxrl_kwargs(), _init_setup_model=False)
    assert (paper_model.n_epochs, paper_model.clip_range, paper_model.group_size) == (1, None, 16)
    assert paper.n_envs == 256
    assert (paper.updates, paper.n_train, paper.base_target) == (recipe.updates, recipe.n_train, recipe.base_target)


def test_the_9x9_recipe_is_the_validation_choice_with_reuse() -> None:
    recipe = RECIPES[9]
    assert (recipe.group_size, recipe.n_groups, recipe.n_epochs, recipe.clip_range) == (4, 64, 4, 0.2)
    assert recipe.default_learning_rates == (1e-3,) and recipe.updates == 600
    assert (recipe.n_train, recipe.n_validation, recipe.n_test, recipe.base_target) == (20_000, 256, 256, 0.01)
    paper = paper_update(recipe, 9)
    assert recipe.group_size * recipe.n_groups == paper.group_size * paper.n_groups
    assert (RECIPES[13].updates, RECIPES[13].default_learning_rates, RECIPES[13].n_groups) == (800, (3e-4,), 32)
    assert set(TABLE_KS) == {1, 16, 64, 1024}
