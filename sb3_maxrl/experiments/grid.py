"""A resumable grid of independent runs: one result file per finished run, on local processes or on Ray.

A benchmark figure is a grid of independent training runs (task, method, N, update, learning rate, seed). Each
finished run is written at once to its own JSON file, named by a hash of the run's settings, so a grid that is
killed loses only the runs in flight: started again, it skips every run whose file exists. The runs execute on
local processes (one torch thread each; the default) or on a Ray cluster (``pip install "sb3-maxrl[ray]"``;
``ray_address="auto"`` joins a running cluster, ``None`` starts a local one). The same jobs give the same results
on either executor: a run's randomness comes from its own settings (its seed), never from where it runs.

Every invocation appends to ``manifest.json`` in the results folder the command, the package version and the git
commit (with a flag for uncommitted changes) that produced the files, so results are never typed in by hand.

    records = run_grid(train_and_evaluate, jobs, "benchmarks/results/strict_mazes_9", workers=2)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sb3_maxrl.common.utils import check_positive_int

#: Where a grid's runs execute: ``"local"`` processes or a ``"ray"`` cluster.
GridExecutor = Literal["local", "ray"]
#: ``run_fn(job) -> result``: a module-level function (it is pickled by reference) whose result is JSON-serializable.
RunFn = Callable[[dict[str, Any]], Any]

RUNS_FOLDER = "runs"
MANIFEST_FILE = "manifest.json"


def job_settings(job: Mapping[str, Any] | Any) -> dict[str, Any]:
    """
    A run's settings as a plain dict (a dataclass instance or a mapping).

    :param job: the run's settings
    :return: a JSON-serializable dict
    """
    if dataclasses.is_dataclass(job) and not isinstance(job, type):
        settings = dataclasses.asdict(job)
    elif isinstance(job, Mapping):
        settings = dict(job)
    else:
        raise TypeError(f"A run's settings must be a dict or a dataclass instance, got {type(job).__name__}.")
    json.dumps(settings)  # raises a TypeError naming the value that is not JSON-serializable
    return settings


def run_key(job: Mapping[str, Any] | Any) -> str:
    """
    The name of a run's result file: a hash of its settings (the same settings, the same file).

    :param job: the run's settings
    :return: 16 hex digits
    """
    canonical = json.dumps(job_settings(job), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:16]


def run_path(results_dir: str | Path, job: Mapping[str, Any] | Any) -> Path:
    """
    The result file of a run.

    :param results_dir: the grid's results folder
    :param job: the run's settings
    :return: ``results_dir/runs/<run_key>.json``
    """
    return Path(results_dir) / RUNS_FOLDER / f"{run_key(job)}.json"


def load_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """
    Every finished run of a results folder.

    :param results_dir: the grid's results folder
    :return: one ``{"job": settings, "result": result, "seconds": wall time}`` per finished run
    """
    folder = Path(results_dir) / RUNS_FOLDER
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def run_grid(
    run_fn: RunFn,
    jobs: Sequence[Mapping[str, Any] | Any],
    results_dir: str | Path,
    *,
    executor: GridExecutor = "local",
    workers: int = 2,
    ray_address: str | None = None,
    verbose: int = 1,
) -> list[dict[str, Any]]:
    """
    Run every job whose result file does not exist yet, writing each result as soon as its run finishes.

    :param run_fn: ``run_fn(settings) -> result``, a module-level function; the result must be JSON-serializable
    :param jobs: the settings of every run (dicts or dataclass instances; duplicates run once)
    :param results_dir: the grid's results folder (``runs/`` and ``manifest.json`` are written inside)
    :param executor: ``"local"`` (processes, one torch thread each) or ``"ray"``
    :param workers: runs at a time (local processes, or the CPUs of a local Ray instance)
    :param ray_address: the Ray cluster to join (``"auto"`` or ``"ray://host:10001"``); None starts a local instance
    :param verbose: 1 prints a line per finished run
    :return: the record of every job, in the order of ``jobs``
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}.")
    workers = check_positive_int("workers", workers, "runs at a time")
    settings = [job_settings(job) for job in jobs]
    results_dir = Path(results_dir)
    (results_dir / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
    unique = {run_key(job): job for job in settings}
    pending = {key: job for key, job in unique.items() if not run_path(results_dir, job).exists()}
    manifest = _start_manifest(results_dir, executor, n_jobs=len(unique), n_pending=len(pending))
    if verbose:
        print(f"grid {results_dir}: {len(unique) - len(pending)} of {len(unique)} runs done, {len(pending)} to run")
    run = _run_on_ray if executor == "ray" else _run_locally
    n_done = 0
    for key, job, result, seconds in run(run_fn, list(pending.items()), workers, ray_address):
        _write_json(run_path(results_dir, job), dict(job=job, result=result, seconds=seconds))
        n_done += 1
        if verbose:
            print(f"[{n_done}/{len(pending)}] {key} {seconds:.0f} s {_describe(job)}", flush=True)
    _finish_manifest(results_dir, manifest)
    return [json.loads(run_path(results_dir, job).read_text()) for job in settings]


def _timed_call(run_fn: RunFn, job: dict[str, Any]) -> tuple[Any, float]:
    import time

    import torch as th

    th.set_num_threads(1)
    started = time.perf_counter()
    result = run_fn(job)
    return _json_ready(result), time.perf_counter() - started


def _run_locally(run_fn: RunFn, pending: list[tuple[str, dict[str, Any]]], workers: int, _: str | None):
    if workers == 1 or len(pending) <= 1:
        for key, job in pending:
            yield (key, job, *_timed_call(run_fn, job))
        return
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_timed_call, run_fn, job): (key, job) for key, job in pending}
        for future in concurrent.futures.as_completed(futures):
            key, job = futures[future]
            yield (key, job, *future.result())


def _run_on_ray(run_fn: RunFn, pending: list[tuple[str, dict[str, Any]]], workers: int, address: str | None):
    try:
        import ray
    except ImportError as error:
        raise ImportError('The Ray executor needs Ray: pip install "sb3-maxrl[ray]" (or executor="local").') from error
    if not ray.is_initialized():
        # the driver's folder on the workers' path, so that run_fn's module (e.g. benchmarks.X) imports there too
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    remote_call = ray.remote(num_cpus=1)(_timed_call)
    in_flight = {remote_call.remote(run_fn, job): (key, job) for key, job in pending}
    while in_flight:
        (ready,), _ = ray.wait(list(in_flight), num_returns=1)
        key, job = in_flight.pop(ready)
        yield (key, job, *ray.get(ready))


def _json_ready(value: Any) -> Any:
    """Numpy scalars and arrays as Python numbers and lists (checked by a JSON round trip)."""
    import numpy as np

    def convert(item: Any) -> Any:
        if isinstance(item, np.ndarray):
            return item.tolist()
        if isinstance(item, np.generic):
            return item.item()
        raise TypeError(f"run_fn returned a {type(item).__name__}, which is not JSON-serializable: return plain data.")

    return json.loads(json.dumps(value, default=convert))


def _write_json(path: Path, value: Any) -> None:
    """Write atomically: a killed grid never leaves a half-written result that would count as finished."""
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(value, indent=1))
    os.replace(partial, path)


def _describe(job: Mapping[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in job.items() if not isinstance(value, list | dict))[:160]


def source_commit(folder: str | Path | None = None) -> dict[str, Any]:
    """
    The git commit of the code that runs, and whether it had uncommitted changes.

    :param folder: a folder inside the repository (default: this package's)
    :return: ``{"commit": sha or None, "dirty": bool or None}``
    """
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return dict(commit=None, dirty=None)
    return dict(commit=commit, dirty=bool(status.strip()))


def _start_manifest(results_dir: Path, executor: str, n_jobs: int, n_pending: int) -> dict[str, Any]:
    from sb3_maxrl import __version__

    entry = dict(
        command=_command_line(),
        cwd=os.getcwd(),
        version=__version__,
        **source_commit(),
        executor=executor,
        n_jobs=n_jobs,
        n_run=n_pending,
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        finished=None,
    )
    _append_manifest(results_dir, entry)
    return entry


def _command_line() -> str:
    """The command that runs, as typed: ``python -m package.module ...`` for a module run with ``-m``."""
    main = sys.modules.get("__main__")
    module = getattr(getattr(main, "__spec__", None), "name", None)
    head = ["python", "-m", module] if module and module != "__main__" else [Path(sys.executable).name, sys.argv[0]]
    return shlex.join([*head, *sys.argv[1:]])


def _finish_manifest(results_dir: Path, entry: dict[str, Any]) -> None:
    manifest = json.loads((results_dir / MANIFEST_FILE).read_text())
    for index in range(len(manifest) - 1, -1, -1):
        if manifest[index]["started"] == entry["started"] and manifest[index]["command"] == entry["command"]:
            manifest[index]["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            break
    _write_json(results_dir / MANIFEST_FILE, manifest)


def _append_manifest(results_dir: Path, entry: dict[str, Any]) -> None:
    path = results_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text()) if path.exists() else []
    _write_json(path, [*manifest, entry])
