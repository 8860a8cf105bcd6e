"""Classification with 1000 classes as one-step RL (issue 10, CLAIMS.md claim 2): MaxRL tracks cross-entropy.

Task: ``sb3_maxrl_envs.PrototypesTask`` (``MaxRL/Prototypes-v0``): C = 1000 Gaussian prototypes in 64 dimensions,
noise 1.5, unit variance per dimension (the nearest prototype is right 94-95% of the time). One episode = one guess
of the class of one example; success = the right class. Every update draws 128 fresh examples (start seeds from
MaxRL's seeded stream) and K guesses per example.

Policy: linear softmax (``policy_kwargs=dict(net_arch=[])``), zero-initialized so that every class starts at
p0 = 1/1000 exactly. Optimizers: SGD (momentum 0.9, weight decay 1e-4, lr 0.1: the paper's ImageNet optimizer,
``policy_kwargs=dict(optimizer_class=th.optim.SGD, optimizer_kwargs=...)``) and, as a second panel, Adam (lr 3e-3).
One plain gradient step per update (``n_epochs=1, clip_range=None, max_grad_norm=None``).

Methods, all through one ``MaxRL`` object per run:

- cross-entropy: the supervised loss on the same 128 examples per update, with the policy and optimizer that
  ``MaxRL`` built (the only loop written here: there is no RL in it);
- MaxRL at K in {16, 128, 1024}: ``MaxRL.learn`` with ``estimator="maxrl"``, the official ``(r - mean) / mean``
  (the paper's ``(r - mean) / (mean + 1e-6)`` differs only by the 1e-6);
- REINFORCE with a mean baseline, ``estimator="dr_grpo"`` (``r - mean``), and GRPO (``(r - mean) / (std + 1e-6)``),
  at K = 1024.

``MaxRL.learn`` on a one-step task samples the K guesses of an example from one forward pass and trains on the
aggregated loss (``sb3_maxrl/common/one_step.py``), exactly equal to the per-episode loss.

Metrics on the fixed test set of 4000 examples, exact (from the policy's probabilities, no sampling): pass@1 (the
mean probability of the right class), pass@128 = mean(1 - (1 - p)^128), accuracy (argmax) and NLL
(``sb3_maxrl.common.one_step.evaluate_one_step``).

Run from the repository root: ``python -m benchmarks.many_classes --quick`` (1 seed, 200 updates),
``python -m benchmarks.many_classes`` (3 seeds, 1000 updates), ``python -m benchmarks.many_classes --speed`` (wall
time per update of MaxRL K = 1024 vs cross-entropy, side by side; ``--speed-warmup 500`` first trains both models).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch as th

from benchmarks import common

BATCH = 128  # examples (start states) per update
KS = (1, 128)
#: label -> (estimator, K); cross-entropy has neither
METHODS: dict[str, tuple[str | None, int | None]] = {
    "cross-entropy": (None, None),
    "MaxRL K=1024": ("maxrl", 1024),
    "MaxRL K=128": ("maxrl", 128),
    "MaxRL K=16": ("maxrl", 16),
    "REINFORCE K=1024": ("dr_grpo", 1024),
    "GRPO K=1024": ("grpo", 1024),
}
OPTIMIZERS = {
    "sgd": (0.1, dict(optimizer_class=th.optim.SGD, optimizer_kwargs=dict(momentum=0.9, weight_decay=1e-4))),
    "adam": (3e-3, dict(optimizer_class=th.optim.Adam)),
}


def cosine_schedule(initial: float):
    """A cosine decay from ``initial`` to 0 over training, as a MaxRL ``learning_rate`` callable."""
    return lambda progress_remaining: initial * 0.5 * (1.0 + math.cos(math.pi * (1.0 - progress_remaining)))


def make_model(task, method: str, optimizer: str, seed: int, cosine: bool = False):
    """The MaxRL object of one run: a zero-initialized linear policy and the optimizer of ``optimizer``."""
    from sb3_maxrl import MaxRL

    estimator, group_size = METHODS[method]
    learning_rate, optimizer_kwargs = OPTIMIZERS[optimizer]
    model = MaxRL(
        "MlpPolicy",
        task,
        learning_rate=cosine_schedule(learning_rate) if cosine else learning_rate,
        group_size=group_size or 2,  # cross-entropy uses only the policy, its optimizer and the start-seed stream
        n_groups=BATCH,
        estimator=estimator or "maxrl",
        n_epochs=1,
        clip_range=None,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[], **optimizer_kwargs),
        seed=seed,
        device="cpu",
    )
    with th.no_grad():  # zero init: every class at p0 = 1 / C exactly, as in the paper
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
    return model


def cross_entropy_updates(model, task, n_updates: int, total_updates: int, done: int = 0) -> None:
    """``n_updates`` supervised steps on fresh examples, with the model's policy, optimizer and lr schedule."""
    from stable_baselines3.common.utils import obs_as_tensor

    policy, optimizer = model.policy, model.policy.optimizer
    for update in range(done, done + n_updates):
        for group in optimizer.param_groups:  # the lr MaxRL.train would use after this many updates
            group["lr"] = model.lr_schedule(1.0 - (update + 1) / total_updates)
        observations, labels = task.examples(model.start_states.take(BATCH))
        logits = policy.get_distribution(obs_as_tensor(observations, policy.device)).distribution.logits
        loss = th.nn.functional.cross_entropy(logits, th.as_tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def evaluate(model, task) -> dict[str, float]:
    from sb3_maxrl.common.one_step import evaluate_one_step

    result = evaluate_one_step(model, task, task.test_seeds, ks=KS)
    return {"pass@1": result.pass_at_k[1], "pass@128": result.pass_at_k[128], "accuracy": result.accuracy, "nll": result.nll}


def run(task, method: str, optimizer: str, seed: int, n_updates: int, eval_every: int, cosine: bool) -> list[dict]:
    """Train one run; evaluate every ``eval_every`` updates (update 0 = the initial policy)."""
    from sb3_maxrl.common.callbacks import EveryNUpdates

    model = make_model(task, method, optimizer, seed, cosine)
    rows: list[dict] = []
    clock = {"train": 0.0, "start": time.perf_counter()}

    def record(updates: int) -> None:
        clock["train"] += time.perf_counter() - clock["start"]
        rows.append({"update": updates, "train_s": clock["train"], **evaluate(model, task)})
        clock["start"] = time.perf_counter()

    if METHODS[method][0] is None:
        for done in range(0, n_updates, eval_every):
            record(done)
            cross_entropy_updates(model, task, min(eval_every, n_updates - done), n_updates, done)
    else:
        evaluation = EveryNUpdates(eval_every, lambda model, updates: record(updates), at_training_start=True)
        model.learn(n_updates * BATCH * model.group_size, callback=evaluation)
    if not rows or rows[-1]["update"] != n_updates:  # EveryNUpdates records the last update itself
        record(n_updates)
    return rows


def speed(args) -> None:
    """Wall time per update of MaxRL.learn (K = 1024, 128 examples) vs cross-entropy, interleaved, medians."""
    from sb3_maxrl_envs import PrototypesTask

    task = PrototypesTask()
    methods = ["cross-entropy", *args.speed_methods]
    models = {method: make_model(task, method, "sgd", seed=0) for method in methods}
    for method, model in models.items():  # train first, to time the updates of a peaked policy rather than a uniform one
        if args.speed_warmup > 0 and method == "cross-entropy":
            cross_entropy_updates(model, task, args.speed_warmup, total_updates=10**9)
        elif args.speed_warmup > 0:
            model.learn(args.speed_warmup * BATCH * model.group_size)
    n = args.speed_updates
    rows = []
    for repeat in range(args.speed_repeats + 1):  # repeat 0 warms up
        for method in methods if repeat % 2 else methods[::-1]:
            model = models[method]
            start = time.perf_counter()
            if method == "cross-entropy":
                cross_entropy_updates(model, task, n, total_updates=10**9)
            else:
                model.learn(n * BATCH * model.group_size)
            per_update = (time.perf_counter() - start) / n
            if repeat > 0:
                rows.append({"repeat": repeat, "method": method, "ms_per_update": 1e3 * per_update})
    import pandas as pd

    df = pd.DataFrame(rows)
    ce = df[df.method == "cross-entropy"].set_index("repeat").ms_per_update
    df["ratio_to_ce"] = df.ms_per_update.values / ce.loc[df.repeat].values
    summary = df.groupby("method", sort=False).agg(
        ms_per_update_median=("ms_per_update", "median"),
        ratio_to_ce_median=("ratio_to_ce", "median"),
        repeats=("repeat", "count"),
    )
    if args.speed_per_episode:
        per_episode_ms = per_episode_path_ms()
        summary.loc["MaxRL K=1024, per-episode path (extrapolated)"] = {
            "ms_per_update_median": per_episode_ms * BATCH * 1024,
            "ratio_to_ce_median": per_episode_ms * BATCH * 1024 / summary.loc["cross-entropy", "ms_per_update_median"],
            "repeats": 1,
        }
    summary["episodes_per_update"] = [BATCH * (METHODS[m][1] or 1) if m in METHODS else BATCH * 1024 for m in summary.index]
    summary["trained_updates_before"] = args.speed_warmup
    summary["load_average_1min"] = round(os.getloadavg()[0], 2)  # other jobs on the machine slow MaxRL more than CE
    tag = f"_warmup{args.speed_warmup}" if args.speed_warmup else ""
    common.write_csv(df.to_dict("records"), args.out / f"many_classes_speed{tag}.csv")
    common.write_csv(summary.reset_index().to_dict("records"), args.out / f"many_classes_speed{tag}_summary.csv")
    print(summary.to_string(float_format=lambda v: f"{v:.2f}"))
    print(common.machine_info())


def per_episode_path_ms() -> float:
    """Milliseconds per episode of MaxRL.learn episode by episode (DummyVecEnv of 64 PrototypesEnv, 4 x 1024)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_maxrl import MaxRL
    from sb3_maxrl_envs import PrototypesEnv

    env = DummyVecEnv([PrototypesEnv for _ in range(64)])
    model = MaxRL(
        "MlpPolicy",
        env,
        learning_rate=OPTIMIZERS["sgd"][0],
        group_size=1024,
        n_groups=4,
        n_epochs=1,
        clip_range=None,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[], **OPTIMIZERS["sgd"][1]),
        seed=0,
        device="cpu",
    )
    model.learn(4 * 1024)  # warm-up update
    start = time.perf_counter()
    model.learn(2 * 4 * 1024)
    return 1e3 * (time.perf_counter() - start) / (2 * 4 * 1024)


def plot(df, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    optimizers = list(dict.fromkeys(df.optimizer))
    fig, axes = plt.subplots(len(optimizers), 3, figsize=(17, 4.6 * len(optimizers)), squeeze=False)
    order = [m for m in METHODS if m in set(df.method)]
    for row, optimizer in zip(axes, optimizers, strict=True):
        sub = df[df.optimizer == optimizer]
        for ax, metric in zip(row, ("pass@1", "pass@128", "accuracy"), strict=True):
            common.plot_seed_bands(ax, sub, "update", metric, "method", order=order, marker=None)
            ax.set_title(f"{optimizer}: {metric} (test, exact)")
        row[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 200 updates")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 1 quick, 3 full)")
    parser.add_argument("--updates", type=int, default=None, help="updates per run (default 200 quick, 1000 full)")
    parser.add_argument("--eval-every", type=int, default=None, help="updates between evaluations (default 25 / 50)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--cosine", action="store_true", help="cosine learning-rate decay to 0 (default: constant)")
    parser.add_argument("--speed", action="store_true", help="only time MaxRL.learn vs cross-entropy per update")
    parser.add_argument("--speed-methods", nargs="+", default=["MaxRL K=1024"], choices=[m for m in METHODS if METHODS[m][1]])
    parser.add_argument("--speed-updates", type=int, default=50, help="updates per timing")
    parser.add_argument("--speed-repeats", type=int, default=9)
    parser.add_argument("--speed-warmup", type=int, default=0, help="updates to train each model before timing")
    parser.add_argument(
        "--speed-per-episode",
        action="store_true",
        help="also time MaxRL's per-episode path (DummyVecEnv) on 8192 episodes, extrapolated to one update",
    )
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR)
    args = parser.parse_args()
    common.setup_torch(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.speed:
        speed(args)
        return
    from sb3_maxrl_envs import PrototypesTask

    seeds = args.seeds or (1 if args.quick else 3)
    n_updates = args.updates or (200 if args.quick else 1000)
    eval_every = args.eval_every or (25 if args.quick else 50)
    tag = "_quick" if args.quick else ""
    task = PrototypesTask()
    started = time.perf_counter()
    curves, finals = [], []
    for optimizer in args.optimizers:
        for method in args.methods:
            for seed in range(seeds):
                rows = run(task, method, optimizer, seed, n_updates, eval_every, args.cosine)
                info = {"optimizer": optimizer, "method": method, "K": METHODS[method][1] or 0, "seed": seed}
                curves += [{**info, **row} for row in rows]
                finals.append({**info, **rows[-1]})
                last = rows[-1]
                print(
                    f"{optimizer:4s} {method:17s} seed {seed}: pass@1 {last['pass@1']:.4f} pass@128 {last['pass@128']:.3f} "
                    f"acc {last['accuracy']:.3f} [{last['train_s']:.0f}s]",
                    flush=True,
                )
                common.write_csv(curves, args.out / f"many_classes{tag}_curves.csv")
    import pandas as pd

    final = pd.DataFrame(finals)
    summary = (
        final.groupby(["optimizer", "method"], sort=False)
        .agg(
            **{
                f"{metric}_{stat}": (metric, stat)
                for metric in ("pass@1", "pass@128", "accuracy", "nll")
                for stat in ("mean", "std")
            },
            train_s_median=("train_s", "median"),
            seeds=("seed", "count"),
        )
        .reset_index()
    )
    common.write_csv(final.to_dict("records"), args.out / f"many_classes{tag}.csv")
    common.write_csv(summary.to_dict("records"), args.out / f"many_classes{tag}_summary.csv")
    plot(
        pd.DataFrame(curves),
        args.out / f"many_classes{tag}.png",
        f"1000-class prototypes as one-step RL, linear policy, 128 examples/update: median and min-max over {seeds} "
        f"seed(s) ({'quick' if args.quick else 'full'})",
    )
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"total wall {time.perf_counter() - started:.0f}s; {common.machine_info()}")


if __name__ == "__main__":
    main()
