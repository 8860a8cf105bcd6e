"""Classification as RL on digits (issue #4 part 4): MaxRL at large N vs cross-entropy vs REINFORCE vs GRPO.

Task: ``sb3_maxrl_envs.classification.DigitsTask`` (the task of ``MaxRL/Digits-v0`` vectorized over seeds: sklearn
digits, 1438 train / 359 test images, 10 classes). One episode = one guess of the label of one image; success = the
right label. A start state is an image; training start seeds are the train split's seeds (``train_seeds=range(1438)``,
the library's ``StartStateStream`` shuffles them anew on every pass), so one *epoch* = one pass over the 1438
training images. With group size N every image gets N guesses per pass, so an RL epoch samples 1438 N episodes;
cross-entropy sees each labelled image once.

Methods (same network: SB3 MLP [64, 64] Tanh + a 10-way head, orthogonal init as built by ``sb3_maxrl.MaxRL``;
same optimizer: Adam, lr 3e-3, eps 1e-5, grad-norm clip 0.5; same image order, G = 32 images per update, so the
same number of optimizer steps per epoch for every method):

- ``maxrl`` (N in 16, 64, 256): ``estimator="maxrl"`` (the paper's code ``(r - mean) / mean``)
- ``reinforce`` (A = l) and ``grpo`` (``(l - mean) / std``), at the same N values
- ``ce``: supervised cross-entropy on the labels of the same 32 images per step, with the policy, optimizer and
  start-state stream that ``MaxRL`` built (the only loop written here: there is no RL in it).

Every RL method trains through ``MaxRL.learn`` with the paper's update (``n_epochs=1``, one batch, no ratio clip):
on a one-step task ``MaxRL`` samples the N guesses of an image from one policy forward pass and trains on the
aggregated loss, exactly equal to the per-episode loss (``sb3_maxrl/common/one_step.py``, ``tests/test_one_step.py``).

Metrics per evaluation on the 359 test images, exact (``sb3_maxrl.common.one_step.evaluate_one_step``, from the
policy's probabilities): accuracy of the argmax label, pass@1 of the sampled policy (the mean probability of the
right label, i.e. the expected accuracy of one sampled guess) and NLL (cross-entropy). Train pass rate = mean
likelihood of the sampled guesses since the previous evaluation (RL only).

Run: ``python -m benchmarks.classification --quick`` (3 seeds, 15 epochs) or ``python -m benchmarks.classification``
(5 seeds, 40 epochs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch as th

from benchmarks import common

LR = 3e-3
G = 32
N_TRAIN = 1438


def make_model(estimator: str, group_size: int, seed: int, optimizer: str = "adam", sgd_lr: float = 0.5):
    """
    The MaxRL object of one run on the digits train split: the policy, its optimizer and the start-state stream.

    :param estimator: a MaxRL estimator (cross-entropy runs use the model's policy, optimizer and stream only)
    :param group_size: N, guesses per image
    :param seed: the model's seed
    :param optimizer: ``"adam"`` (lr 3e-3) or ``"sgd"`` (plain SGD at ``sgd_lr``, the ablation)
    :param sgd_lr: SGD's learning rate
    """
    from sb3_maxrl import MaxRL
    from sb3_maxrl_envs.classification import DigitsTask

    policy_kwargs: dict = {"net_arch": list(common.NET_ARCH)}
    if optimizer == "sgd":  # ablation: plain SGD does not undo the scale of the gradient the way Adam does
        policy_kwargs["optimizer_class"] = th.optim.SGD
    return MaxRL(
        "MlpPolicy",
        DigitsTask("train"),
        learning_rate=sgd_lr if optimizer == "sgd" else LR,
        group_size=group_size,
        n_groups=G,
        estimator=estimator,
        n_epochs=1,
        clip_range=None,
        max_grad_norm=0.5,
        train_seeds=range(N_TRAIN),
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
    )


def evaluate(policy, test_task) -> dict[str, float]:
    """Exact test accuracy, pass@1 and NLL of the policy on every test image."""
    from sb3_maxrl.common.one_step import evaluate_one_step

    result = evaluate_one_step(policy, test_task, test_task.seeds, ks=(1,))
    return {"test_acc": result.accuracy, "test_pass1": result.pass_at_k[1], "test_nll": result.nll}


def cross_entropy_updates(model, n_updates: int, on_update) -> None:
    """``n_updates`` supervised steps on the labels of the model's next G training images each; ``on_update()`` after each."""
    from stable_baselines3.common.utils import obs_as_tensor

    from sb3_maxrl_envs.classification import DigitsTask

    policy, task = model.policy, DigitsTask("train")
    policy.set_training_mode(True)
    for _ in range(n_updates):
        images, labels = task.examples(model.start_states.take(G))
        logits = policy.get_distribution(obs_as_tensor(images, policy.device)).distribution.logits
        loss = th.nn.functional.cross_entropy(logits, th.as_tensor(labels))
        policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        policy.optimizer.step()
        on_update()


def run_one(
    method: str,
    group_size: int,
    seed: int,
    epochs: int,
    per_epoch: int = 4,
    optimizer: str = "adam",
    sgd_lr: float = 0.5,
) -> tuple[list[dict], float]:
    """Train one run; evaluate ``per_epoch`` times per pass over the training images (epoch 0 = initial policy)."""
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    from sb3_maxrl.common.callbacks import EveryNUpdates
    from sb3_maxrl_envs.classification import DigitsTask

    test_task = DigitsTask("test")
    # the same network, init, optimizer and image order for every method (CE included): what MaxRL builds
    model = make_model("maxrl" if method == "ce" else method, max(group_size, 2), seed, optimizer, sgd_lr)
    n_updates = -(-epochs * N_TRAIN // G)
    rows = [{"epoch": 0, "updates": 0, "episodes": 0, "train_pass_rate": float("nan"), **evaluate(model.policy, test_task)}]
    state = {"updates": 0, "likelihood_sum": 0.0, "likelihood_n": 0}

    def after_update() -> None:  # evaluates when the update crossed 1 / per_epoch of an epoch
        state["updates"] += 1
        seen = state["updates"] * G
        if (seen * per_epoch) // N_TRAIN > ((seen - G) * per_epoch) // N_TRAIN:
            n = state["likelihood_n"]
            rows.append(
                {
                    "epoch": round(seen / N_TRAIN, 3),
                    "updates": state["updates"],
                    "episodes": seen * (1 if method == "ce" else group_size),
                    "train_pass_rate": state["likelihood_sum"] / n if n else float("nan"),
                    **evaluate(model.policy, test_task),
                }
            )
            state.update(likelihood_sum=0.0, likelihood_n=0)

    t0 = time.perf_counter()
    if method == "ce":
        cross_entropy_updates(model, n_updates, after_update)
    else:

        class SampledGuesses(BaseCallback):
            def _on_step(self) -> bool:  # once per update on a one-step task: its sampled guesses
                likelihoods = self.locals["likelihoods"]
                state["likelihood_sum"] += float(likelihoods.sum())
                state["likelihood_n"] += likelihoods.size
                return True

        every_update = EveryNUpdates(1, lambda model, updates: after_update())
        model.learn(n_updates * G * group_size, callback=CallbackList([SampledGuesses(), every_update]))
    return rows, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, 15 epochs")
    p.add_argument("--seeds", type=int, default=None, help="seeds per config (default 3 quick, 5 full)")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR)
    p.add_argument("--epochs", type=int, default=None, help="passes over the train split (default 15 quick, 40 full)")
    p.add_argument("--group-sizes", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--methods", nargs="+", default=["maxrl", "reinforce", "grpo", "ce"])
    p.add_argument("--per-epoch", type=int, default=4, help="evaluations per epoch")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="sgd: ablation without Adam's rescaling")
    p.add_argument("--sgd-lr", type=float, default=0.5)
    args = p.parse_args()
    common.setup_torch(1)
    args.seeds = args.seeds or (3 if args.quick else 5)
    args.epochs = args.epochs or (15 if args.quick else 40)
    tag = ("_quick" if args.quick else "") + ("_sgd" if args.optimizer == "sgd" else "")
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    curves, finals = [], []
    configs = [(m, n) for m in args.methods if m != "ce" for n in args.group_sizes]
    if "ce" in args.methods:
        configs.append(("ce", 1))
    for method, n in configs:
        for seed in range(args.seeds):
            rows, wall = run_one(method, n, seed, args.epochs, args.per_epoch, args.optimizer, args.sgd_lr)
            label = "cross-entropy" if method == "ce" else f"{method} N={n}"
            info = {"label": label, "method": method, "group_size": n, "seed": seed}
            curves += [{**info, **r} for r in rows]
            finals.append(
                {**info, **rows[-1], "wall_s": wall, "episodes_per_epoch": round(rows[-1]["episodes"] / rows[-1]["epoch"])}
            )
            print(
                f"{label:16s} seed {seed}: acc "
                + " ".join(f"{r['test_acc']:.2f}" for r in rows[:: args.per_epoch])
                + f" -> {rows[-1]['test_acc']:.3f} [{wall:.1f}s]",
                flush=True,
            )
    common.write_csv(curves, args.out / f"classification{tag}_curves.csv")
    common.write_csv(finals, args.out / f"classification{tag}.csv")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(curves)
    order = list(dict.fromkeys(df.label))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    for ax, metric in zip(axes, ("test_acc", "test_pass1", "test_nll"), strict=True):
        common.plot_seed_bands(ax, df, "epoch", metric, "label", order=order, marker=None)
        ax.set_xlabel("epoch (passes over the 1438 train images)")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"Digits as RL ({args.optimizer}): median and min-max over {args.seeds} seeds ({'quick' if args.quick else 'full'})"
    )
    fig.tight_layout()
    fig.savefig(args.out / f"classification{tag}.png", dpi=110)
    plt.close(fig)

    fd = pd.DataFrame(finals)
    mid = df[np.isclose(df.epoch, 1.0, atol=0.03)]
    summary = (
        fd.groupby("label", sort=False)
        .agg(
            acc_median=("test_acc", "median"),
            acc_min=("test_acc", "min"),
            acc_max=("test_acc", "max"),
            pass1_median=("test_pass1", "median"),
            nll_median=("test_nll", "median"),
            episodes_per_epoch=("episodes_per_epoch", "first"),
            wall_s_median=("wall_s", "median"),
            seeds=("seed", "count"),
        )
        .reset_index()
    )
    early = mid.groupby("label", sort=False).test_acc.median().rename("acc_epoch1_median")
    summary = summary.merge(early, on="label")
    common.write_csv(summary.to_dict("records"), args.out / f"classification{tag}_summary.csv")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"total wall {time.perf_counter() - t_start:.0f}s; {common.machine_info()}")


if __name__ == "__main__":
    main()
