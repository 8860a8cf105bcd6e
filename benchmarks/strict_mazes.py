"""The paper's maze claims through the library, with the update as an axis: MaxRL, GRPO, RLOO and SB3 PPO.

Protocol (the MaxRL paper's maze experiment): randomized-Prim strict mazes (a wrong move ends the episode), a Markov
MLP policy (two hidden layers of 128), a weak base from behaviour cloning on BFS-optimal paths (stopped once the exact
validation pass@1 reaches 1%), then RL from that base at one env-step budget for every method: ``MaxRL.learn`` on the
native ``StrictMazeVecEnv`` for the critic-free family (the estimator is the only difference between MaxRL, GRPO and
RLOO), and SB3 PPO from the same behaviour-cloned actor with a fresh critic. Training, validation and test mazes are
pairwise different layouts. Every metric is exact (the success probability of each maze by dynamic programming).

The update is an axis of the comparison, the same options for every member of the family:

- ``paper``: the paper's one plain on-policy gradient step per update (``n_epochs=1, clip_range=None``);
- ``reuse``: PPO-style reuse, 4 clipped epochs over one batch of the update (``n_epochs=4, clip_range=0.2``);
- ``reuse-mb``: the same with minibatches of 512 steps;
- ``reuse-10x512``: PPO's ``ppo-10x512`` machinery, 10 clipped epochs over minibatches of 512 steps (an ablation);

and so is the split of a fixed number of episodes per update between mazes and episodes per maze (``NxG``: N
episodes of each of G mazes; 4x64, 8x32, 16x16, 32x8 are 256 episodes each). Stages, each resumable (one result
file per run in ``benchmarks/results/strict_mazes_<size>/runs/``; a restarted stage skips finished runs):

    python -m benchmarks.strict_mazes --stage tune      # validation mazes, seed 0: lr x update per method, as many PPO points
    python -m benchmarks.strict_mazes --stage splits    # validation: each method's tuned update at every NxG split
    python -m benchmarks.strict_mazes --stage final     # test mazes, 5 new seeds: each method's validation choice
    python -m benchmarks.strict_mazes --stage probe --probe maxrl:reuse:3e-4:16x32 ppo:ppo-4x2048:3e-3  # untuned
    python -m benchmarks.strict_mazes --stage report    # tables, sample-efficiency ratios, plot (no training)
    python -m benchmarks.strict_mazes --quick           # a smoke run of every stage, about a minute

Choices on validation minimize ``-log pass@1 + -log pass@64`` (pass@1 and coverage alike). ``--executor ray``
(``--ray-address auto`` to join a cluster) runs a stage's runs on Ray instead of local processes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.common import write_readme_block
from sb3_maxrl import MaxRL
from sb3_maxrl.common.exact_evaluation import sample_efficiency_ratio
from sb3_maxrl.common.noisy_verifier import NoisyVerifier
from sb3_maxrl.common.start_states import EpisodeStart
from sb3_maxrl.experiments.grid import load_records, run_grid
from sb3_maxrl.experiments.strict_mazes import RECIPES, clone_weak_base, layout_sets
from sb3_maxrl_envs.strict_maze import StrictMazeVecEnv, exact_pass_at_k

RESULTS = Path(__file__).resolve().parent / "results"
#: The ks of every table
KS: tuple[int, ...] = (1, 16, 64, 256, 1024)
#: The update options of the critic-free family, the same for every estimator of a comparison
UPDATES: dict[str, dict[str, Any]] = {
    "paper": dict(n_epochs=1, clip_range=None, batch_size=None),
    "reuse": dict(n_epochs=4, clip_range=0.2, batch_size=None),
    "reuse-mb": dict(n_epochs=4, clip_range=0.2, batch_size=512),
    "reuse-10x512": dict(n_epochs=10, clip_range=0.2, batch_size=512),
}
#: SB3 PPO's update options on the grid (as many points as each critic-free method's): 256 envs x n_steps per update.
#: ``ppo-10x512-novf`` is an ablation: the same update with no learned critic (a value head of zeros, ``vf_coef=0``), so
#: GAE's advantage is the discounted final reward, normalized per minibatch
PPO_UPDATES: dict[str, dict[str, Any]] = {
    "ppo-4x2048": dict(n_epochs=4, batch_size=2048, n_steps=32),
    "ppo-10x512": dict(n_epochs=10, batch_size=512, n_steps=16),
    "ppo-10x512-novf": dict(n_epochs=10, batch_size=512, n_steps=16, vf_coef=0.0),
}
#: The PPO points of the default tuning grid; ablations are never chosen (run them with ``--stage probe``)
PPO_GRID = ("ppo-4x2048", "ppo-10x512")
PPO_ABLATIONS = ("ppo-10x512-novf",)
FAMILY = ("maxrl", "grpo", "rloo")
SPLITS = ("4x64", "8x32", "16x16", "32x8")
#: The env-step budget of every run, per maze size (9x9: the 600 updates of 16 x 16 episodes of the paper protocol)
BUDGETS = {9: 1_900_000, 13: 4_000_000, 17: 4_000_000}
TUNE_LEARNING_RATES = (3e-4, 1e-3, 3e-3)


@dataclass(frozen=True)
class Run:
    """The settings of one training run (its result file is named by their hash)."""

    size: int
    method: str  # "maxrl", "grpo", "rloo" (estimators of MaxRL) or "ppo"
    update: str  # a key of UPDATES, or of PPO_UPDATES for "ppo"
    learning_rate: float
    seed: int
    split: str  # "validation" or "test": the mazes every metric is measured on
    timesteps: int
    group_size: int = 0  # N (0 for PPO)
    n_groups: int = 0  # mazes per update (0 for PPO)
    eval_points: int = 8
    n_eval: int = 256
    n_train: int = 20_000
    base_target: float = 0.01
    false_positive_rate: float = 0.0  # a NoisyVerifier on the training env (0, 0: the true success)
    false_negative_rate: float = 0.0
    max_updates: int = 0  # stop after this many updates (0: at ``timesteps``); the paper's N-scaling fixes updates
    train_coverage: bool = False  # also evaluate the training mazes at every checkpoint (the scarce-data regime)


def split_name(run: dict[str, Any]) -> str:
    return f"{run['group_size']}x{run['n_groups']}" if run["method"] != "ppo" else "-"


def parse_split(split: str) -> tuple[int, int]:
    group_size, n_groups = (int(part) for part in split.split("x"))
    return group_size, n_groups


class EvaluateEvery(BaseCallback):
    """Evaluates after the update whose env steps cross each of ``points`` evenly spaced checkpoints (any SB3 algorithm:
    ``on_rollout_start`` follows the previous update's ``train()``)."""

    def __init__(self, timesteps: int, points: int, evaluate: Any, max_updates: int = 0, evaluate_train: Any = None):
        super().__init__()
        self.max_updates = max_updates
        total = max_updates if max_updates else timesteps
        self.checkpoints = [total * (i + 1) // points for i in range(points)]
        self.evaluate = evaluate
        self.evaluate_train = evaluate_train
        self.updates = 0
        self.rows: list[dict[str, Any]] = []
        self.clip_fractions: list[float] = []

    def _on_step(self) -> bool:
        return not self.max_updates or self.updates < self.max_updates

    def _on_rollout_start(self) -> None:
        # SB3 dumps the logger before train(), so the last update's train/ values are still recorded here
        clip_fraction = self.model.logger.name_to_value.get("train/clip_fraction")
        if clip_fraction is not None:
            self.clip_fractions.append(float(clip_fraction))
        progress = self.updates if self.max_updates else self.num_timesteps
        if self.checkpoints and progress >= self.checkpoints[0]:
            while self.checkpoints and progress >= self.checkpoints[0]:
                self.checkpoints.pop(0)
            self.record()

    def _on_rollout_end(self) -> None:
        self.updates += 1

    def record(self) -> None:
        result = self.evaluate()
        row = (
            dict(timesteps=self.num_timesteps, updates=self.updates)
            | result.metrics()
            | dict(
                frac_mazes_p_below_1e3=float(np.mean(result.success_probabilities < 1e-3)),
                clip_fraction=float(np.mean(self.clip_fractions)) if self.clip_fractions else float("nan"),
            )
        )
        if self.evaluate_train is not None:
            row |= {f"train_{key}": value for key, value in training_set_metrics(self.evaluate_train()).items()}
        self.rows.append(row)
        self.clip_fractions = []


#: The ks of the training-set coverage (the share of training mazes with at least one success in k episodes)
COVERAGE_KS: tuple[int, ...] = (1, 16, 64)


def training_set_metrics(result: Any) -> dict[str, float]:
    """Coverage of the training mazes from their exact success probabilities: the expected share of mazes with at least
    one success in k episodes (``pass@k`` averaged over mazes, not its log), and the share with p < 1e-3."""
    probabilities = np.asarray(result.success_probabilities)
    coverage = {f"coverage@{k}": float(np.mean(1.0 - (1.0 - probabilities) ** k)) for k in COVERAGE_KS}
    return coverage | dict(frac_mazes_p_below_1e3=float(np.mean(probabilities < 1e-3)))


def train_and_evaluate(settings: dict[str, Any]) -> dict[str, Any]:
    """
    One run: layout sets, the behaviour-cloned base, RL at the run's env-step budget, exact pass@k on its split.

    :param settings: the fields of :class:`Run`
    :return: the base's and the final metrics (with the per-maze success probabilities), and the learning curve
    """
    run = Run(**settings)
    recipe = RECIPES[run.size]
    mazes = layout_sets(run.size, run.n_eval, run.n_train)
    eval_seeds = getattr(mazes, run.split)
    num_envs = 256 if run.method == "ppo" else min(256, run.group_size * run.n_groups)
    venv = StrictMazeVecEnv(num_envs=num_envs, size=run.size, seed=run.seed)
    base = MaxRL("MlpPolicy", venv, n_groups=256, policy_kwargs=dict(net_arch=list(recipe.net_arch)), seed=run.seed)
    bc_steps = clone_weak_base(base, run.size, mazes.train, mazes.validation, target=run.base_target, seed=run.seed).n_steps

    def evaluate() -> Any:
        return exact_pass_at_k(model, run.size, eval_seeds, ks=KS)

    def evaluate_train() -> Any:
        return exact_pass_at_k(model, run.size, mazes.train, ks=KS)

    model: Any = base
    base_result = evaluate()
    base_train = training_set_metrics(evaluate_train()) if run.train_coverage else None
    train_env: Any = venv
    if run.false_positive_rate or run.false_negative_rate:
        train_env = NoisyVerifier(venv, run.false_positive_rate, run.false_negative_rate, seed=run.seed)
    if run.method == "ppo":
        model = ppo_from_actor(base, train_env, run, mazes.train)
    else:
        model = MaxRL(
            "MlpPolicy",
            train_env,
            estimator=run.method,
            learning_rate=run.learning_rate,
            group_size=run.group_size,
            n_groups=run.n_groups,
            max_grad_norm=recipe.max_grad_norm,
            policy_kwargs=dict(net_arch=list(recipe.net_arch)),
            train_seeds=mazes.train,
            seed=run.seed,
            **UPDATES[run.update],
        )
        model.policy.load_state_dict(base.policy.state_dict())
    callback = EvaluateEvery(run.timesteps, run.eval_points, evaluate, run.max_updates,
                             evaluate_train if run.train_coverage else None)
    model.learn(run.timesteps, callback=callback)
    if run.max_updates and callback.updates != run.max_updates:
        raise RuntimeError(f"The run made {callback.updates} updates, not max_updates={run.max_updates}: raise timesteps.")
    final = evaluate()
    venv.close()
    extra: dict[str, Any] = {}
    if base_train is not None:
        extra = dict(base_train=base_train, final_train=training_set_metrics(evaluate_train()))
    if isinstance(train_env, NoisyVerifier):
        extra["verifier"] = dict(episodes=train_env.n_episodes, false_positives=train_env.n_false_positives,
                                 false_negatives=train_env.n_false_negatives)
    return dict(
        bc_steps=bc_steps,
        base=base_result.metrics(),
        final=final.metrics() | dict(timesteps=model.num_timesteps, updates=callback.updates),
        final_probabilities=final.success_probabilities,
        curve=callback.rows,
        **extra,
    )


def ppo_from_actor(base: MaxRL, venv: Any, run: Run, train_seeds: list[int]) -> PPO:
    """SB3 PPO whose actor is the behaviour-cloned base (a fresh critic), on the same training mazes."""
    net_arch = list(RECIPES[run.size].net_arch)
    model = PPO(
        "MlpPolicy",
        venv,
        learning_rate=run.learning_rate,
        gamma=0.99,
        policy_kwargs=dict(net_arch=dict(pi=net_arch, vf=net_arch)),
        seed=run.seed,
        **PPO_UPDATES[run.update],
    )
    model.policy.mlp_extractor.policy_net.load_state_dict(base.policy.latent_net.state_dict())
    model.policy.action_net.load_state_dict(base.policy.action_net.state_dict())
    if PPO_UPDATES[run.update].get("vf_coef") == 0.0:  # no learned critic: V = 0 everywhere, and no gradient moves it
        for parameter in model.policy.value_net.parameters():
            parameter.data.zero_()
    # PPO resets slots itself: queue enough training mazes for the whole run (at least one move per episode)
    rng = np.random.default_rng(run.seed)
    per_slot = run.timesteps // venv.num_envs + 2
    venv.unwrapped.schedule_episodes(
        {slot: [EpisodeStart(int(s)) for s in rng.choice(train_seeds, per_slot)] for slot in range(venv.num_envs)},
        replace=True,
    )
    return model


def validation_score(metrics: dict[str, float]) -> float:
    """What validation choices minimize: ``-log pass@1 + -log pass@64``."""
    return metrics["neg_log_pass@1"] + metrics["neg_log_pass@64"]


def records_frame(results_dir: Path) -> pd.DataFrame:
    rows = []
    for record in load_records(results_dir):
        job, result = record["job"], record["result"]
        rows.append(
            job
            | dict(split_nxg=split_name(job), seconds=record["seconds"], bc_steps=result["bc_steps"])
            | {f"final_{key}": value for key, value in result["final"].items()}
            | {f"base_{key}": value for key, value in result["base"].items()}
        )
    return pd.DataFrame(rows)


def choose(frame: pd.DataFrame, method: str, updates: Sequence[str], split: str | None = None) -> dict[str, Any]:
    """The validation runs' best settings of a method among the given updates (and split)."""
    candidates = frame[(frame["method"] == method) & (frame["split"] == "validation") & frame["update"].isin(list(updates))]
    if split is not None:
        candidates = candidates[candidates["split_nxg"] == split]
    if candidates.empty:
        raise SystemExit(f"No validation runs of {method} with updates {list(updates)}: run --stage tune (and splits) first.")
    score = candidates["final_neg_log_pass@1"] + candidates["final_neg_log_pass@64"]
    keys = ["update", "learning_rate", "group_size", "n_groups"]
    best = candidates.assign(score=score).groupby(keys)["score"].mean().idxmin()
    return dict(zip(keys, best, strict=True))


def choose_family_update(frame: pd.DataFrame, methods: Sequence[str]) -> str:
    """The reuse update of the whole critic-free family: the one whose per-method best validation scores are lowest on
    average, so every estimator of a comparison runs the same update options."""
    family = [m for m in methods if m != "ppo"]

    def family_score(update: str) -> float:
        return float(np.mean([validation_score_of(frame, m, choose(frame, m, (update,))) for m in family]))

    tuned = [u for u in UPDATES if u != "paper" and u in set(frame.loc[frame["method"].isin(family), "update"])]
    if not tuned:
        raise SystemExit(f"No validation runs of {family} with a reuse update: run --stage tune first.")
    return min(tuned, key=family_score)


def validation_score_of(frame: pd.DataFrame, method: str, settings: dict[str, Any]) -> float:
    runs = frame[(frame["method"] == method) & (frame["split"] == "validation")]
    for key, value in settings.items():
        runs = runs[runs[key] == value]
    return float((runs["final_neg_log_pass@1"] + runs["final_neg_log_pass@64"]).mean())


def stage_runs(args: argparse.Namespace, frame: pd.DataFrame) -> list[Run]:
    template = Run(
        size=args.size,
        method="maxrl",
        update="reuse",
        learning_rate=1e-3,
        seed=0,
        split="validation",
        timesteps=args.timesteps,
        eval_points=args.eval_points,
        n_eval=args.n_eval,
        n_train=args.n_train,
    )
    tune_n, tune_g = parse_split(args.tune_split)
    if args.stage == "tune":
        family = [
            replace(template, method=m, update=u, learning_rate=lr, group_size=tune_n, n_groups=tune_g)
            for m in args.methods
            if m != "ppo"
            for u in args.updates
            for lr in args.learning_rates
        ]
        ppo = [
            replace(template, method="ppo", update=u, learning_rate=lr) for u in args.ppo_updates for lr in args.learning_rates
        ]
        return (ppo if "ppo" in args.methods else []) + family  # the longest runs first
    if args.stage == "splits":
        runs = []
        update = choose_family_update(frame[frame["split_nxg"].isin([args.tune_split, "-"])], args.methods)
        for method in (m for m in args.methods if m != "ppo"):
            best = choose(frame, method, (update,), split=args.tune_split)
            runs += [
                replace(template, method=method, update=best["update"], learning_rate=best["learning_rate"],
                        group_size=parse_split(s)[0], n_groups=parse_split(s)[1])
                for s in args.splits
            ]
        return runs
    if args.stage == "final":
        runs = []
        update = choose_family_update(frame, args.methods) if any(m != "ppo" for m in args.methods) else ""
        for seed in args.final_seeds:
            for method in args.methods:
                if method == "ppo":
                    best = choose(frame, "ppo", [u for u in PPO_UPDATES if u not in PPO_ABLATIONS])
                    runs.append(replace(template, method="ppo", update=best["update"], learning_rate=best["learning_rate"],
                                        seed=seed, split="test"))
                    continue
                best = choose(frame, method, (update,))
                runs.append(replace(template, method=method, seed=seed, split="test", update=best["update"],
                                    learning_rate=best["learning_rate"], group_size=int(best["group_size"]),
                                    n_groups=int(best["n_groups"])))
                if args.paper_update:
                    n, g = parse_split(args.paper_split)
                    runs.append(replace(template, method=method, seed=seed, split="test", update="paper",
                                        learning_rate=args.paper_learning_rate, group_size=n, n_groups=g))
        return runs
    if args.stage == "probe":
        runs = []
        for seed in args.final_seeds:
            for item in args.probe:
                method, update, learning_rate, *split = item.split(":")
                n, g = parse_split(split[0]) if split else (0, 0)
                runs.append(replace(template, method=method, update=update, learning_rate=float(learning_rate),
                                    group_size=n, n_groups=g, seed=seed, split="test"))
        return runs
    return []


def report(frame: pd.DataFrame, results_dir: Path, stem: str) -> pd.DataFrame:
    """Mean and sd over seeds of every configuration's final metrics, the base's, and sample-efficiency ratios."""
    columns = [f"final_neg_log_pass@{k}" for k in KS]
    keys = ["split", "method", "update", "split_nxg", "learning_rate"]
    table = frame.groupby(keys)[columns].agg(["mean", "std"])
    table.columns = [f"{c.removeprefix('final_')}_{stat}" for c, stat in table.columns]
    table["seeds"] = frame.groupby(keys)["seed"].nunique()
    table["minutes"] = frame.groupby(keys)["seconds"].mean() / 60
    for split, runs in frame.groupby("split"):
        base = runs[[f"base_neg_log_pass@{k}" for k in KS]].mean()
        table.loc[(split, "base (BC)", "-", "-", 0.0), [f"neg_log_pass@{k}_mean" for k in KS]] = base.to_numpy()
    table = table.reset_index()
    ratios = efficiency_ratios(results_dir)
    if not ratios.empty:
        table = table.merge(ratios, on=["split", "method", "update", "split_nxg", "learning_rate"], how="left")
    table.to_csv(RESULTS / f"{stem}_table.csv", index=False)
    for split in ("test", "validation"):
        (RESULTS / f"{stem}_{split}.md").write_text(markdown_table(table, split) + "\n")
    write_readme_block(stem, markdown_table(table, "test"))
    return table


def markdown_table(table: pd.DataFrame, split: str) -> str:
    """The held-out table as markdown: -log pass@k (mean +- sd over seeds), and the sample-efficiency ratios."""
    rows = table[table["split"] == split]
    header = ["method", "update", "N x mazes", "lr", "seeds", *[f"k={k}" for k in KS], "ratio vs PPO", "ratio vs GRPO"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in rows.sort_values(["method", "update"], key=lambda c: c.map(_row_order)).iterrows():
        cells = [row["method"], row["update"], row["split_nxg"], f"{row['learning_rate']:g}" if row["learning_rate"] else "-"]
        cells.append("-" if pd.isna(row.get("seeds")) else str(int(row["seeds"])))
        for k in KS:
            mean, sd = row[f"neg_log_pass@{k}_mean"], row.get(f"neg_log_pass@{k}_std")
            cells.append(f"{mean:.3f}" + ("" if pd.isna(sd) else f" +- {sd:.3f}"))
        for reference in ("ppo", "grpo"):
            median, never = row.get(f"ratio_vs_{reference}_median"), row.get(f"ratio_vs_{reference}_never")
            cells.append("-" if pd.isna(median) or row["method"] == reference else f"{median:.2f}" + (
                f" ({int(never)} never)" if never else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row_order(value: Any) -> Any:
    order = {"base (BC)": 0, "ppo": 1, "maxrl": 2, "grpo": 3, "rloo": 4, "paper": 9}
    return order.get(value, value) if isinstance(value, str) else value


def validation_choices(frame: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """The (update, learning rate) each reference method (PPO, GRPO) chose on validation, where it has runs there."""
    choices = {}
    for method, updates in (("ppo", [u for u in PPO_UPDATES if u not in PPO_ABLATIONS]), ("grpo", list(UPDATES))):
        if not frame.empty and ((frame["method"] == method) & (frame["split"] == "validation")).any():
            best = choose(frame, method, updates)
            choices[method] = (best["update"], float(best["learning_rate"]))
    return choices


def efficiency_ratios(results_dir: Path, k: int = 64) -> pd.DataFrame:
    """Per configuration, the mean over seeds of ``sample_efficiency_ratio`` against the same seed's PPO and GRPO runs
    (the validation-chosen ones of the same split), with how many seeds never reach the reference's pass@64."""
    records = [r for r in load_records(results_dir)]
    chosen = validation_choices(records_frame(results_dir))
    by_seed: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for record in records:
        job = record["job"]
        by_seed.setdefault((job["split"], job["method"], job["seed"]), []).append(record)
    rows = []
    for record in records:
        job = record["job"]
        row = dict(split=job["split"], method=job["method"], update=job["update"], split_nxg=split_name(job),
                   learning_rate=job["learning_rate"], seed=job["seed"])
        for reference in ("ppo", "grpo"):
            others = [r for r in by_seed.get((job["split"], reference, job["seed"]), []) if r["job"]["update"] != "paper"]
            if len(others) > 1 and reference in chosen:  # several settings ran: the reference is the validation choice
                others = [r for r in others if (r["job"]["update"], r["job"]["learning_rate"]) == chosen[reference]]
            if len(others) == 1:
                row[f"ratio_vs_{reference}"] = sample_efficiency_ratio(
                    record["result"]["final_probabilities"], others[0]["result"]["final_probabilities"], k
                )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    keys = ["split", "method", "update", "split_nxg", "learning_rate"]
    ratio_columns = [c for c in ("ratio_vs_ppo", "ratio_vs_grpo") if c in frame]
    if not ratio_columns:
        return pd.DataFrame()
    summary = frame.groupby(keys)[ratio_columns].agg(["median", lambda r: int((r == 0).sum())])
    summary.columns = [f"{c}_{'median' if stat == 'median' else 'never'}" for c, stat in summary.columns]
    return summary.reset_index()


def plot(frame: pd.DataFrame, path: Path, split: str = "test") -> None:
    """-log pass@k against k (exact, held out) of every configuration's final policy, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = frame[frame["split"] == split]
    if runs.empty:
        return
    colors = {"maxrl": "tab:blue", "grpo": "tab:orange", "rloo": "tab:green", "ppo": "black"}
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    several_rates = runs.groupby(["method", "update", "split_nxg"])["learning_rate"].nunique().max() > 1
    for (method, update, nxg, rate), group in runs.groupby(["method", "update", "split_nxg", "learning_rate"]):
        values = group[[f"final_neg_log_pass@{k}" for k in KS]]
        same = runs[(runs["method"] == method) & (runs["update"] == update) & (runs["split_nxg"] == nxg)]
        higher_rate = rate > same["learning_rate"].min()  # a second rate of the same settings is dashed
        axis.errorbar(KS, values.mean(), yerr=values.std().fillna(0), color=colors.get(method, "gray"),
                      linestyle=":" if update == "paper" else ("--" if higher_rate else "-"),
                      marker="o", markersize=3, capsize=2,
                      label=f"{method} {update} {nxg}" + (f" lr {rate:g}" if several_rates else "") + f" (n={len(group)})")
    base = runs[[f"base_neg_log_pass@{k}" for k in KS]].mean()
    axis.plot(KS, base, color="gray", linestyle="--", label="base (BC)")
    axis.set(xscale="log", yscale="log", xlabel="k (samples per maze)", ylabel="-log pass@k (held out, exact)")
    axis.set_title(f"{int(runs['size'].iloc[0])}x{int(runs['size'].iloc[0])} strict mazes, {split} mazes")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("tune", "splits", "final", "probe", "report"), default="report")
    parser.add_argument("--size", type=int, default=9, choices=(9, 13, 17))
    parser.add_argument("--methods", nargs="+", default=[*FAMILY, "ppo"])
    parser.add_argument("--learning-rates", nargs="+", type=float, default=list(TUNE_LEARNING_RATES))
    parser.add_argument("--tune-split", default="4x64", help="NxG of the tuning stage")
    parser.add_argument("--updates", nargs="+", default=["reuse", "reuse-mb"], choices=("reuse", "reuse-mb", "reuse-10x512"),
                        help="tune: the reuse updates of the family's grid")
    parser.add_argument("--ppo-updates", nargs="+", default=list(PPO_GRID), choices=list(PPO_UPDATES),
                        help="tune: PPO's update options (as many grid points as each critic-free method's)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--final-seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="not the tuning seed 0")
    parser.add_argument("--paper-update", action="store_true", help="final: also the paper's one-step update")
    parser.add_argument("--probe", nargs="+", default=[], metavar="METHOD:UPDATE:LR[:NxG]",
                        help="probe: untuned settings on the test mazes for --final-seeds, e.g. maxrl:reuse:3e-4:16x32 "
                        "ppo:ppo-4x2048:3e-3 (say so wherever they are reported: nothing was chosen on validation)")
    parser.add_argument("--paper-learning-rate", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--paper-split", default="16x16")
    parser.add_argument("--timesteps", type=int, default=None, help="env steps of every run (default: per size)")
    parser.add_argument("--eval-points", type=int, default=8)
    parser.add_argument("--n-eval", type=int, default=256, help="validation (and test) mazes")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--results", default=None, help="results folder (default benchmarks/results/strict_mazes_<size>)")
    parser.add_argument("--tag", default="", help="a suffix of the results' names (strict_mazes_<size><tag>): a separate "
                        "grid, its own tables, and the README's block only if it has one of that name")
    parser.add_argument("--quick", action="store_true", help="every stage on a tiny budget (a smoke test)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.timesteps = args.timesteps or BUDGETS[args.size]
    args.paper_learning_rate = args.paper_learning_rate or RECIPES[args.size].default_learning_rates[0]
    stem = f"strict_mazes_{args.size}{args.tag}" + ("_quick" if args.quick else "")
    if args.quick:
        args.timesteps, args.n_eval, args.n_train, args.eval_points = 40_000, 32, 1_000, 2
        args.learning_rates, args.splits, args.final_seeds = [1e-3], ["4x64", "16x16"], [1]
    results_dir = Path(args.results) if args.results else RESULTS / stem
    stages = ("tune", "splits", "final") if args.quick else (args.stage,) if args.stage != "report" else ()
    for stage in stages:
        args.stage = stage
        runs = stage_runs(args, records_frame(results_dir))
        run_grid(train_and_evaluate, [asdict(r) for r in runs], results_dir, executor=args.executor,
                 workers=args.workers, ray_address=args.ray_address)
    frame = records_frame(results_dir)
    if frame.empty:
        print(f"no finished runs in {results_dir}")
        return
    table = report(frame, results_dir, stem)
    plot(frame, RESULTS / f"{stem}_comparison.png")
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.precision", 3):
        print(table.drop(columns=[c for c in table if c.endswith("_std")]))


if __name__ == "__main__":
    main()
