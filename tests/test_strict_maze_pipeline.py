"""The strict-maze protocol's pieces shared by maxrl-train and benchmarks/strict_mazes.py."""

from __future__ import annotations

import pytest
import torch as th

from sb3_maxrl import MaxRL
from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, exact_pass_at_k, layout_key, maze_walls
from sb3_maxrl_envs.strict_maze_pipeline import RECIPES, TABLE_KS, clone_weak_base, layout_sets


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


@pytest.mark.parametrize("size", sorted(RECIPES))
def test_recipes_are_maxrl_settings(size: int) -> None:
    recipe = RECIPES[size]
    assert recipe.size == size and recipe.num_envs == min(256, recipe.n_groups * recipe.group_size)
    model = MaxRL("MlpPolicy", StrictMazeVecEnv(recipe.num_envs, size), **recipe.maxrl_kwargs(), _init_setup_model=False)
    expected = (recipe.n_epochs, recipe.clip_range, recipe.max_grad_norm)
    assert (model.n_epochs, model.clip_range, model.max_grad_norm) == expected
    paper = recipe.paper_update()
    paper_model = MaxRL("MlpPolicy", StrictMazeVecEnv(paper.num_envs, size), **paper.maxrl_kwargs(), _init_setup_model=False)
    assert (paper_model.n_epochs, paper_model.clip_range, paper_model.group_size) == (1, None, 16)
    assert (paper.updates, paper.n_train, paper.base_target) == (recipe.updates, recipe.n_train, recipe.base_target)


def test_the_9x9_recipe_is_the_validation_choice_with_reuse() -> None:
    recipe = RECIPES[9]
    assert (recipe.group_size, recipe.n_groups, recipe.n_epochs, recipe.clip_range) == (4, 64, 4, 0.2)
    assert recipe.group_size * recipe.n_groups == recipe.paper_update().group_size * recipe.paper_update().n_groups
    assert set(TABLE_KS) == {1, 16, 64, 1024}
