"""The task-agnostic protocol: split by identity, a tiny MiniGrid run end to end, a user's own env with its own expert."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_maxrl.common.start_states import observation_fingerprint
from sb3_maxrl.experiments.pipeline import (
    RECIPES,
    Recipe,
    Task,
    _expert_batches,
    draw_start_seeds,
    minigrid_task,
    recipe_for,
    run_protocol,
    strict_maze_task,
    task_for,
)

MAX_LENGTH = 8


class Corridor(gym.Env):
    """A user's env: walk right (action 0) to the end of a corridor whose length the seed fixes; action 1 falls off."""

    observation_space = spaces.Box(0.0, 1.0, shape=(2 * MAX_LENGTH,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    @staticmethod
    def length_of(seed: int) -> int:
        return 2 + seed % 6

    def _observation(self) -> np.ndarray:
        observation = np.zeros(2 * MAX_LENGTH, dtype=np.float32)
        observation[self.position] = observation[MAX_LENGTH + self.length] = 1.0
        return observation

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.length, self.position = self.length_of(0 if seed is None else seed), 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if int(action) == 1:
            return self._observation(), 0.0, True, False, {"is_success": False}
        self.position += 1
        success = self.position == self.length
        return self._observation(), float(success), success, False, ({"is_success": True} if success else {})


def corridor_expert(seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Always right; it gives up on the longest corridors (a start state the expert cannot solve)."""
    if Corridor.length_of(seed) == 7:
        return None
    env = Corridor()
    observations = [env.reset(seed=seed)[0]]
    for _ in range(Corridor.length_of(seed) - 1):
        observations.append(env.step(0)[0])
    return np.stack(observations), np.zeros(len(observations), dtype=np.int64)


def test_start_seeds_are_disjoint_by_identity() -> None:
    key_of = lambda seed: seed % 7  # noqa: E731  (7 identities among all seeds)
    seeds = draw_start_seeds(key_of, n_train=2, n_validation=2, n_test=3)
    keys = [key_of(s) for s in seeds.test + seeds.validation + seeds.train]
    assert len(keys) == 7 and len(set(keys)) == 7
    assert seeds == draw_start_seeds(key_of, n_train=2, n_validation=2, n_test=3), "the same sets for every run"
    with pytest.raises(ValueError, match="Found only 2 training start states"):
        draw_start_seeds(key_of, n_train=3, n_validation=2, n_test=3)
    # MiniGrid layouts repeat across seeds: no held-out layout is trained on
    task = minigrid_task("MiniGrid-LavaCrossingS9N1-v0")
    key = task.key_function()
    seeds = draw_start_seeds(key, n_train=10, n_validation=5, n_test=15)  # LavaCrossingS9N1 has 42 layouts
    held_out = {key(s) for s in seeds.test + seeds.validation}
    assert len(held_out) == 20 and not held_out & {key(s) for s in seeds.train}


def test_a_tiny_minigrid_run_end_to_end(tmp_path) -> None:
    th.set_num_threads(1)
    recipe = Recipe(
        n_train=4, n_validation=2, n_test=3, bc_batch_size=2, bc_max_steps=3, base_target=1.0, timesteps=256,
        group_size=4, n_groups=2, n_envs=4, net_arch=(16,), ppo_n_steps=32, ppo_batch_size=64, ks=(1, 16, 64),
        eval_points=2, learning_rates={"maxrl": (1e-3, 1e-2), "ppo": (3e-4,)},
    )  # fmt: skip
    methods = ("maxrl", "grpo", "rloo", "ppo")
    result = run_protocol(minigrid_task("MiniGrid-LavaCrossingS9N1-v0"), recipe, methods, out_dir=tmp_path, verbose=0)
    assert [row["method"] for row in result.rows] == ["base", *methods]
    assert all(row["timesteps"] >= 256 for row in result.rows[1:])
    family_steps = [row["timesteps"] for row in result.rows[1:4]]
    assert result.rows[4]["timesteps"] >= np.median(family_steps), "PPO gets the MaxRL family's median env steps"
    assert {f"neg_log_pass@{k}" for k in (1, 2, 4, 8, 16, 32, 64)} <= set(result.rows[0])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exact"] and summary["runs"][0]["bc_steps"] == 3 and not summary["runs"][0]["bc_stopped_at_target"]
    assert summary["start_states"] == dict(train=4, validation=2, test=3)
    assert (tmp_path / "neg_log_pass_at_k.png").stat().st_size > 0
    choice = summary["runs"][0]["methods"]["maxrl"]  # chosen on validation start states
    scores = {lr: metrics["neg_log_pass@1"] + metrics["neg_log_pass@64"] for lr, metrics in choice["validation"].items()}
    assert sorted(scores) == ["0.001", "0.01"] and f"{choice['chosen_learning_rate']:g}" == min(scores, key=scores.get)
    assert result.rows[1]["learning_rate"] == choice["chosen_learning_rate"]
    assert sorted(p.name.split("_lr")[0] for p in (tmp_path / "tb").iterdir()) == sorted(["maxrl", *methods])
    assert sorted(p.name.split("_")[0] for p in (tmp_path / "models").iterdir()) == sorted(["base", "maxrl", *methods])
    assert "| maxrl | " in result.markdown() and (tmp_path / "table.csv").read_text().startswith("method,seeds,timesteps")


def test_every_method_starts_from_the_same_cloned_base() -> None:
    """With a learning rate of 0, fine-tuning changes nothing: every method's exact pass@k is the base's."""
    recipe = Recipe(
        n_train=4, n_validation=2, n_test=3, bc_batch_size=2, bc_max_steps=2, base_target=1.0, timesteps=64,
        group_size=2, n_groups=2, n_envs=2, net_arch=(16,), ppo_n_steps=32, ppo_batch_size=64, ks=(1, 16),
        default_learning_rates=(0.0,), learning_rates={"ppo": (0.0,)},
    )  # fmt: skip
    result = run_protocol(minigrid_task("MiniGrid-LavaCrossingS9N1-v0"), recipe, ("maxrl", "ppo"), verbose=0)
    base, *tuned = result.rows
    for row in tuned:
        assert [row[f"pass@{k}"] for k in (1, 16)] == [base[f"pass@{k}"] for k in (1, 16)]


def test_a_users_own_env_with_its_own_expert() -> None:
    th.set_num_threads(1)
    task = Task("corridor", env_fn=Corridor, expert=corridor_expert, max_episode_steps=MAX_LENGTH + 1)
    recipe = Recipe(
        n_train=3, n_validation=1, n_test=2, bc_batch_size=2, bc_max_steps=200, bc_learning_rate=1e-2, base_target=0.5,
        timesteps=300, group_size=4, n_groups=2, n_envs=2, net_arch=(16,), ppo_n_steps=32, ppo_batch_size=64,
        ks=(1, 4, 16), eval_samples=16, validation_samples=16,
    )  # fmt: skip
    result = run_protocol(task, recipe, ("maxrl", "ppo"), verbose=0)
    run = result.summary["runs"][0]
    # without a start_state_key, identities are the observation after reset: 6 corridor lengths, all different
    key = lambda seed: observation_fingerprint(Corridor().reset(seed=seed)[0])  # noqa: E731
    seeds = draw_start_seeds(key, 3, 1, 2)
    assert len({Corridor.length_of(s) for s in seeds.train + seeds.validation + seeds.test}) == 6
    assert run["expert_unsolved_train_seeds"] == [s for s in seeds.train if Corridor.length_of(s) == 7] != []
    assert run["bc_stopped_at_target"] and run["bc_validation_pass_at_1"][-1][1] >= 0.5
    assert not result.summary["exact"] and [row["method"] for row in result.rows] == ["base", "maxrl", "ppo"]


def test_recipes_tasks_and_methods_are_checked() -> None:
    assert recipe_for("MiniGrid-LavaCrossingS9N2-v0") == RECIPES["MiniGrid-LavaCrossingS9N2-v0"]
    assert recipe_for("MiniGrid-Unknown-v0", timesteps=5).timesteps == 5
    with pytest.raises(ValueError, match="No expert is known for 'CartPole-v1'"):
        task_for("CartPole-v1")
    with pytest.raises(ValueError, match="methods must name MaxRL estimators"):
        run_protocol(Task("corridor", env_fn=Corridor, expert=corridor_expert), Recipe(), ("maxrl", "sac"))
    assert task_for("MiniGrid-LavaCrossingS9N2-v0").exact_pass_at_k is not None
    assert task_for("BabyAI-GoToRedBallGrey-v0").exact_pass_at_k is None
    assert task_for("MaxRL/StrictMaze-9x9-v0").vec_env_fn is not None


def test_the_strict_maze_is_one_task_of_the_pipeline() -> None:
    from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, layout_key, maze_walls

    th.set_num_threads(1)
    task = strict_maze_task(7)
    assert isinstance(task.make_vec_env(4, 0), StrictMazeVecEnv)
    recipe = Recipe(
        n_train=50, n_validation=8, n_test=8, bc_batch_size=8, bc_max_steps=5, timesteps=500, group_size=4, n_groups=4,
        n_envs=16, net_arch=(16,), ppo_n_steps=32, ppo_batch_size=128, ks=(1, 1024),
    )  # fmt: skip
    result = run_protocol(task, recipe, ("maxrl", "ppo"), verbose=0)
    assert result.summary["exact"] and [row["method"] for row in result.rows] == ["base", "maxrl", "ppo"]
    seeds = draw_start_seeds(task.key_function(), 50, 8, 8)
    layouts = [layout_key(maze_walls(7, s)) for s in seeds.train + seeds.validation + seeds.test]
    assert len(set(layouts)) == len(layouts) == 66


def test_each_cloning_step_draws_its_start_states_without_replacement_and_replaces_unsolved_ones() -> None:
    def expert(seed: int) -> tuple[np.ndarray, np.ndarray] | None:  # one step per episode; odd seeds unsolved
        return None if seed % 2 else (np.full((1, 2), seed, dtype=np.float32), np.array([seed]))

    task = Task("toy", env_fn=Corridor, expert=expert)
    train = list(range(100, 140))
    batches, unsolved = _expert_batches(task, train, 6, seed=5)
    rng = np.random.default_rng(5)
    for step in range(20):
        observations, actions = batches(step)
        picks = rng.choice(np.array(train), size=6, replace=False)
        solved = [int(s) for s in picks if s % 2 == 0]
        assert len(actions) == 6 and len(set(actions.tolist())) == 6 and all(a % 2 == 0 for a in actions)
        assert actions[: len(solved)].tolist() == solved, "the solvable draws first, in their order"
        assert observations[:, 0].tolist() == actions.tolist()
        if len(solved) < 6:
            rng.permutation(np.array(train))  # the top-up's draw
    assert unsolved and all(s % 2 for s in unsolved) and len(unsolved) == len(set(unsolved))
    few, _ = _expert_batches(task, [100, 101, 102], 6, seed=0)  # fewer solvable start states than the batch: all
    assert sorted(few(0)[1].tolist()) == [100, 102]
    with pytest.raises(ValueError, match="solved none of the 2 training start states"):
        _expert_batches(task, [101, 103], 2, seed=0)[0](0)


def test_held_out_evaluations_are_spaced_by_updates_when_the_budget_is_updates(tmp_path) -> None:
    """Four updates, two evaluation points: after updates 2 and 4, whatever PPO's env-step budget says, every one
    written at the step it was taken, for the learning rate not chosen too."""
    from tbparse import SummaryReader

    th.set_num_threads(1)
    task = strict_maze_task(7)
    recipe = Recipe(
        n_train=50, n_validation=8, n_test=8, bc_batch_size=8, bc_max_steps=2, timesteps=10**7, updates=4,
        group_size=2, n_groups=4, n_envs=8, net_arch=(16,), ks=(1, 16), eval_points=2,
        learning_rates={"maxrl": (1e-3, 1e-2)},
    )  # fmt: skip
    run_protocol(task, recipe, ("maxrl",), out_dir=tmp_path, verbose=0)
    for learning_rate in ("0.001", "0.01"):
        (run_dir,) = (tmp_path / "tb").glob(f"maxrl_lr{learning_rate}_seed0*")
        scalars = SummaryReader(str(run_dir)).scalars
        steps = sorted(scalars[scalars["tag"] == "eval/pass@1"]["step"])
        update_ends = sorted(scalars[scalars["tag"] == "rollout/pass_rate"]["step"])
        assert len(update_ends) == 4 and steps == [update_ends[1], update_ends[3]], (steps, update_ends)


def test_the_no_critic_ablation_keeps_ppos_value_at_zero(tmp_path) -> None:
    from stable_baselines3 import PPO

    th.set_num_threads(1)
    recipe = Recipe(
        n_train=50, n_validation=8, n_test=8, bc_batch_size=8, bc_max_steps=2, timesteps=512, n_envs=8, net_arch=(16,),
        ppo_n_steps=32, ppo_batch_size=64, ks=(1, 16), ppo_learned_critic=False,
    )  # fmt: skip
    run_protocol(strict_maze_task(7), recipe, ("ppo",), out_dir=tmp_path, verbose=0)
    (saved,) = (tmp_path / "models").glob("ppo_*.zip")
    value_head = PPO.load(saved).policy.value_net
    assert all(th.count_nonzero(parameter) == 0 for parameter in value_head.parameters())
    run_protocol(strict_maze_task(7), replace(recipe, ppo_learned_critic=True), ("ppo",), out_dir=tmp_path / "c", verbose=0)
    (saved,) = (tmp_path / "c" / "models").glob("ppo_*.zip")
    assert any(th.count_nonzero(parameter) > 0 for parameter in PPO.load(saved).policy.value_net.parameters())
