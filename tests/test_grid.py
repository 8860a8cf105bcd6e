"""The resumable grid runner: one result file per run, restarts skip finished runs, local and Ray agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sb3_maxrl.experiments.grid import load_records, run_grid, run_key, run_path

JOBS_MODULE = '''
import time
from pathlib import Path


def slow_job(settings):
    with open(settings["log"], "a") as log:
        log.write(f"start {settings['i']}\\n")
    time.sleep(settings["sleep"])
    with open(settings["log"], "a") as log:
        log.write(f"end {settings['i']}\\n")
    return {"double": settings["i"] * 2}


def tiny_maxrl(settings):
    import numpy as np

    from sb3_maxrl import MaxRL
    from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, exact_pass_at_k

    venv = StrictMazeVecEnv(num_envs=16, size=9, seed=settings["seed"])
    model = MaxRL("MlpPolicy", venv, group_size=4, n_groups=4, learning_rate=1e-2, seed=settings["seed"],
                  estimator=settings["estimator"])
    model.learn(1)
    parameters = np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])
    return {"pass@1": exact_pass_at_k(model, 9, [10, 11, 12], ks=(1,)).pass_at_k[1],
            "parameter_sum": float(parameters.sum()), "timesteps": model.num_timesteps}
'''


@pytest.fixture()
def jobs_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "jobs_pkg"
    folder.mkdir()
    (folder / "grid_test_jobs.py").write_text(JOBS_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    import grid_test_jobs

    yield grid_test_jobs
    sys.modules.pop("grid_test_jobs", None)


def test_run_key_is_a_function_of_the_settings_only() -> None:
    assert run_key({"a": 1, "b": 2.5}) == run_key({"b": 2.5, "a": 1})
    assert run_key({"a": 1, "b": 2.5}) != run_key({"a": 1, "b": 2.0})
    with pytest.raises(TypeError):
        run_key({"a": object()})


def test_a_second_call_skips_finished_runs_and_writes_a_manifest(tmp_path: Path, jobs_module) -> None:
    log = tmp_path / "log.txt"
    jobs = [dict(i=i, sleep=0.0, log=str(log)) for i in range(3)]
    records = run_grid(jobs_module.slow_job, jobs, tmp_path / "results", workers=1, verbose=0)
    assert [r["result"]["double"] for r in records] == [0, 2, 4]
    assert [r["job"] for r in records] == jobs
    records = run_grid(jobs_module.slow_job, [*jobs, dict(i=3, sleep=0.0, log=str(log))], tmp_path / "results", workers=1)
    assert [r["result"]["double"] for r in records] == [0, 2, 4, 6]
    assert log.read_text().count("end") == 4  # the first three ran once
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert [entry["n_run"] for entry in manifest] == [3, 1]
    assert all(entry["finished"] and entry["version"] and entry["command"] and entry["cwd"] for entry in manifest)
    assert manifest[0]["commit"] is None or len(manifest[0]["commit"]) == 40
    assert len(load_records(tmp_path / "results")) == 4


def test_killing_a_grid_mid_way_and_restarting_finishes_without_rerunning_finished_runs(tmp_path: Path, jobs_module) -> None:
    log, results = tmp_path / "log.txt", tmp_path / "results"
    jobs = [dict(i=i, sleep=1.0, log=str(log)) for i in range(4)]
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import grid_test_jobs
            from sb3_maxrl.experiments.grid import run_grid

            if __name__ == "__main__":
                run_grid(grid_test_jobs.slow_job, {jobs!r}, {str(results)!r}, workers=1, verbose=0)
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 120
    while sum(run_path(results, job).exists() for job in jobs) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "the grid ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = {job["i"] for job in jobs if run_path(results, job).exists()}
    assert 2 <= len(finished_before) < len(jobs)
    subprocess.run([sys.executable, str(script)], check=True, timeout=300)
    ends = log.read_text().split("\n")
    for job in jobs:
        assert json.loads(run_path(results, job).read_text())["result"] == {"double": 2 * job["i"]}
        assert ends.count(f"end {job['i']}") == 1, f"run {job['i']} finished twice"
    assert not list((results / "runs").glob("*.partial"))


def test_local_processes_and_ray_give_the_same_results(tmp_path: Path, jobs_module) -> None:
    ray = pytest.importorskip("ray", reason='the Ray executor is optional: pip install "sb3-maxrl[ray]"')
    jobs = [dict(seed=seed, estimator=estimator) for seed, estimator in ((0, "maxrl"), (1, "grpo"))]
    local = run_grid(jobs_module.tiny_maxrl, jobs, tmp_path / "local", workers=2, verbose=0)
    try:
        on_ray = run_grid(jobs_module.tiny_maxrl, jobs, tmp_path / "ray", executor="ray", workers=2, verbose=0)
    finally:
        ray.shutdown()
    assert [r["result"] for r in on_ray] == [r["result"] for r in local]
    assert len({r["result"]["parameter_sum"] for r in local}) == len(jobs)  # the settings matter
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest[-1]["executor"] == "ray"


def test_bad_arguments_say_what_to_pass(tmp_path: Path, jobs_module) -> None:
    with pytest.raises(ValueError, match="executor must be 'local' or 'ray'"):
        run_grid(jobs_module.slow_job, [], tmp_path, executor="slurm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        run_grid(jobs_module.slow_job, [], tmp_path, workers=0)
