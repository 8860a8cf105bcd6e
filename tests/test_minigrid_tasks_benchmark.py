"""The MiniGrid benchmark's bookkeeping: seeds run as separate jobs come back as one result, choices are read back."""

from __future__ import annotations

import numpy as np
import torch as th

from benchmarks.minigrid_tasks import chosen_learning_rates, load_result, markdown_table, renamed
from sb3_maxrl.experiments.pipeline import Recipe, run_protocol, strict_maze_task


def test_jobs_of_single_seeds_read_back_as_one_result_with_the_validation_choice(tmp_path) -> None:
    th.set_num_threads(1)
    recipe = Recipe(
        n_train=50, n_validation=8, n_test=8, bc_batch_size=8, bc_max_steps=2, timesteps=256, group_size=2, n_groups=4,
        n_envs=8, net_arch=(16,), ppo_n_steps=32, ppo_batch_size=64, ks=(1, 16),
        learning_rates={"maxrl": (1e-3, 1e-2), "ppo": (3e-4,)},
    )  # fmt: skip
    results = [
        run_protocol(strict_maze_task(7), recipe, ("maxrl", "ppo"), seeds=[seed], out_dir=tmp_path / f"seed{seed}", verbose=0)
        for seed in (1, 2)
    ]
    merged = load_result([tmp_path / "seed1", tmp_path / "seed2"])
    assert merged.summary["seeds"] == [1, 2] and len(merged.summary["runs"]) == 2
    expected = [row for result in results for row in result.rows]
    assert [(row["method"], row["seed"]) for row in merged.rows] == [(row["method"], row["seed"]) for row in expected]
    for key in ("neg_log_pass@1", "neg_log_pass@16", "learning_rate", "timesteps"):
        np.testing.assert_allclose([row[key] for row in merged.rows], [row[key] for row in expected], rtol=1e-9)
    table = {entry["method"]: entry for entry in merged.table()}
    assert table["maxrl"]["seeds"] == 2
    np.testing.assert_allclose(table["maxrl"]["neg_log_pass@16"], np.mean([r.rows[1]["neg_log_pass@16"] for r in results]))
    table_text = markdown_table({"MaxRL/StrictMaze-7x7-v0": merged}, {"MaxRL/StrictMaze-7x7-v0": renamed(merged, "*")})
    rows = table_text.splitlines()[2:]
    assert [row.split(" | ")[1] for row in rows] == ["base", "maxrl", "ppo", "maxrl*", "ppo*"]
    best_at_1 = min(table[m]["neg_log_pass@1"] for m in ("maxrl", "ppo"))
    assert sum(f"**{best_at_1:.3f} +- " in row for row in rows) == 2  # the method and its renamed copy
    chosen = chosen_learning_rates(tmp_path / "seed1")
    assert chosen == {"maxrl": (results[0].rows[1]["learning_rate"],), "ppo": (3e-4,)}


def test_a_finished_job_is_reused_only_for_the_same_settings(tmp_path) -> None:
    import json
    from dataclasses import asdict

    import pytest

    from benchmarks.minigrid_tasks import METHODS, Job

    job = Job("MiniGrid-LavaCrossingS9N2-v0", 1, {"maxrl": (1e-3,)}, {}, tmp_path)
    assert not job.done()
    summary = dict(recipe=asdict(job.recipe()), methods=list(METHODS), runs=[])
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert job.done()
    del summary["recipe"]["ppo_learned_critic"]  # a run written before the field existed: its default is assumed
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert job.done()
    changed = Job("MiniGrid-LavaCrossingS9N2-v0", 1, {"maxrl": (1e-3,)}, {"ppo_learned_critic": False}, tmp_path)
    with pytest.raises(SystemExit, match="holds a run with other settings"):
        changed.done()
