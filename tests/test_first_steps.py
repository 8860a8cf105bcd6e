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
