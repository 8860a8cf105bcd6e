"""What a new user hits first: PPO's habits, the README's first snippet, files the README's commands create."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sb3_maxrl import MaxRL


@pytest.mark.parametrize("name, value", [("n_steps", 2048), ("gamma", 0.99), ("gae_lambda", 0.95), ("vf_coef", 0.5)])
def test_ppo_arguments_are_refused_with_what_an_update_is(name: str, value: float) -> None:
    with pytest.raises(TypeError, match=rf"MaxRL does not take PPO's {name} .*One update is n_groups x group_size episodes"):
        MaxRL("MlpPolicy", "CartPole-v1", **{name: value})
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['learning_rat'\]"):
        MaxRL("MlpPolicy", "CartPole-v1", learning_rat=1e-3)


def first_python_snippet() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "README.md has no python snippet"
    return match.group(1)


def test_the_readme_first_snippet_prints_updates_and_ends_with_pass_at_k(capsys: pytest.CaptureFixture[str]) -> None:
    snippet = first_python_snippet()
    assert "verbose=1" in snippet and "evaluate_pass_at_k" in snippet and "print(result.pass_at_k)" in snippet
    # the same code on a tiny budget: one update of 2 x 2 episodes, 2 held-out start states x 2 samples
    tiny = re.sub(r"group_size=\d+, n_groups=\d+", "group_size=2, n_groups=2", snippet)
    tiny = re.sub(r"learn\([\d_]+\)", "learn(1)", tiny)
    tiny = tiny.replace("start_seeds=64, n_samples=16", "start_seeds=2, n_samples=2").replace('"runs/"', "None")
    assert tiny.count("=2") >= 4, "the snippet's settings changed: update this test's substitutions"
    exec(compile(tiny, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    for key in ("pass_rate", "frac_groups_all_fail", "utilization", "fps", "total_timesteps"):
        assert f"|    {key}" in printed, f"verbose=1 prints no {key} after an update"
    assert printed.rstrip().splitlines()[-1].startswith("{1: ") and "2: " in printed.rstrip().splitlines()[-1]


def test_gitignore_covers_what_the_readme_commands_create() -> None:
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    for path in (".venv/", "plots/", "runs/"):
        assert path in ignored, f"{path} (created by a README command) is not in .gitignore"


def test_the_readme_own_task_snippet_runs_the_protocol_on_its_env(tmp_path: Path, monkeypatch) -> None:
    import torch as th

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = next(s for s in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "run_protocol" in s)
    tiny = snippet.replace("timesteps=50_000", "timesteps=400, group_size=2, n_groups=4, n_envs=4, ppo_n_steps=32")
    tiny = tiny.replace("eval_samples=256, validation_samples=64", "eval_samples=16, validation_samples=8, ks=(1, 16)")
    assert tiny.count("timesteps=400") == 1 and "ks=(1, 16)" in tiny, "the snippet changed: update the substitutions"
    th.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(tiny, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert [row["method"] for row in result.rows] == ["base", "maxrl", "grpo", "rloo", "ppo"]
    assert result.summary["start_states"] == dict(train=12, validation=4, test=4)
    assert (tmp_path / "runs" / "ledge" / "summary.json").is_file()
