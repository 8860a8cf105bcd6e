"""Classification as RL on digits (issue #4 part 4): MaxRL at large N vs cross-entropy vs REINFORCE vs GRPO.

Task: ``MaxRL/Digits-v0`` (sklearn digits, 1438 train / 359 test images, 10 classes). One episode = one guess
of the label of one image; success = the right label. A start state is an image; training start seeds are
the train split's seeds (``train_seeds=range(1438)``, the library's ``StartStateStream`` shuffles them anew on
every pass), so one *epoch* = one pass over the 1438 training images. With group size N every image gets
N guesses per pass, so an RL epoch samples 1438 N episodes; cross-entropy sees each labelled image once.

Methods (same network: SB3 MLP [64, 64] Tanh + a 10-way head, orthogonal init as built by ``sb3_maxrl.MaxRL``;
same optimizer: Adam, lr 3e-3, eps 1e-5, grad-norm clip 0.5; same image order, G = 32 images per update, so
the same number of optimizer steps per epoch for every method):

- ``maxrl`` (N in 16, 64, 256): ``estimator="maxrl"`` (the paper's code ``(r - mean) / mean``)
- ``reinforce`` (A = l) and ``grpo`` (``(l - mean) / std``), at the same N values
- ``ce``: supervised cross-entropy on the labels of the same 32 images per step, plain torch.

Training path. The VecEnv path runs ~5k one-step episodes/s here (DummyVecEnv, measured by
``--check-library``): an N = 256 epoch (368k episodes) takes over a minute per run and per epoch. The default
is a *batched path* that does the same update as ``MaxRL.train`` (``n_epochs=1``, one batch): the policy
forwards the G images once, N labels per image are sampled from its categorical distribution, the
likelihoods (guess == label) go through the library's ``group_advantages`` and the loss is the library's
``-(1 / (G N)) sum_i A_i log pi(a_i | x)``. ``--check-library`` trains MaxRL (N = 16) through
``MaxRL.learn`` on a DummyVecEnv for a few epochs and reports both paths' test accuracy and throughput.

Metrics per epoch on the 359 test images: accuracy of the argmax label, pass@1 of the sampled policy
(the exact mean probability of the right label, i.e. the expected accuracy of one sampled guess), and NLL
(cross-entropy). Train pass rate = mean likelihood of the sampled guesses in the epoch (RL only).

Run: ``python -m benchmarks.classification --quick`` (3 seeds) or ``python -m benchmarks.classification`` (5 seeds).
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


def load_split(split: str):
    from sb3_maxrl_envs.classification import load_digits_split

    x, y = load_digits_split(split)
    return th.as_tensor(np.array(x)), th.as_tensor(np.array(y))


def make_model(estimator: str, group_size: int, seed: int, env=None):
    import gymnasium as gym

    from sb3_maxrl import MaxRL

    if env is None:
        env = gym.make("MaxRL/Digits-v0", split="train", render_mode=None).unwrapped
    n_train = 1438
    return MaxRL(
        "MlpPolicy",
        env,
        learning_rate=LR,
        group_size=group_size,
        n_groups=G,
        estimator=estimator,
        n_epochs=1,  # the batched path's update (one pass, one batch); --check-library trains MaxRL.learn with it
        max_grad_norm=0.5,
        train_seeds=range(n_train),
        policy_kwargs={"net_arch": list(common.NET_ARCH)},
        seed=seed,
        device="cpu",
    )


def logits_of(policy, x: th.Tensor) -> th.Tensor:
    return policy.get_distribution(x).distribution.logits


def evaluate(policy, x_test, y_test) -> dict[str, float]:
    with th.no_grad():
        logp = th.log_softmax(logits_of(policy, x_test), dim=-1)
    right = logp.gather(1, y_test[:, None])[:, 0]
    return {
        "test_acc": float((logp.argmax(-1) == y_test).float().mean()),
        "test_pass1": float(right.exp().mean()),
        "test_nll": float(-right.mean()),
    }


def run_one(
    method: str,
    group_size: int,
    seed: int,
    epochs: int,
    data,
    per_epoch: int = 4,
    optimizer: str = "adam",
    sgd_lr: float = 0.5,
) -> tuple[list[dict], float]:
    """Train one run; evaluate ``per_epoch`` times per pass over the training images (epoch 0 = initial policy)."""
    from sb3_maxrl import group_advantages

    x_train, y_train, x_test, y_test = data
    n_train = len(y_train)
    th.manual_seed(seed)
    # the same network, init and optimizer for every method (CE included): the policy MaxRL builds
    model = make_model("maxrl" if method == "ce" else method, max(group_size, 2), seed)
    policy = model.policy
    stream = model.start_states  # the library's shuffled pass over train_seeds
    assert stream is not None
    if optimizer == "sgd":  # ablation: plain SGD does not undo the scale of the gradient the way Adam does
        policy.optimizer = th.optim.SGD(policy.parameters(), lr=sgd_lr)
    policy.set_training_mode(True)
    rows = [{"epoch": 0, "updates": 0, "episodes": 0, "train_pass_rate": float("nan"), **evaluate(policy, x_test, y_test)}]
    seen, updates, lik_sum, lik_n = 0, 0, 0.0, 0
    t0 = time.perf_counter()
    while seen < epochs * n_train:
        idx = th.as_tensor(np.array(stream.take(G)) % n_train)
        x, y = x_train[idx], y_train[idx]
        logp = th.log_softmax(logits_of(policy, x), dim=-1)
        if method == "ce":
            loss = -logp.gather(1, y[:, None]).mean()
        else:
            with th.no_grad():
                actions = th.multinomial(logp.exp(), group_size, replacement=True)  # (G, N) guesses
            lik = (actions == y[:, None]).double()
            adv = group_advantages(lik, method)
            loss = -(adv.float() * logp.gather(1, actions)).sum() / lik.numel()
            lik_sum += float(lik.sum())
            lik_n += lik.numel()
        policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        policy.optimizer.step()
        seen += G
        updates += 1
        if (seen * per_epoch) // n_train > ((seen - G) * per_epoch) // n_train:  # crossed 1/per_epoch of an epoch
            rows.append(
                {
                    "epoch": round(seen / n_train, 3),
                    "updates": updates,
                    "episodes": seen * (1 if method == "ce" else group_size),
                    "train_pass_rate": lik_sum / lik_n if lik_n else float("nan"),
                    **evaluate(policy, x_test, y_test),
                }
            )
            lik_sum, lik_n = 0.0, 0
    return rows, time.perf_counter() - t0


def check_library(args, data) -> list[dict]:
    """MaxRL.learn through a DummyVecEnv (the library's own loop) vs the batched path: N = 16, a few epochs."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_maxrl import StartStateWrapper

    x_train, y_train, x_test, y_test = data
    n_train = len(y_train)
    out = []
    n = args.check_group_size
    for seed in range(args.check_seeds):
        venv = make_vec_env(
            "MaxRL/Digits-v0",
            n_envs=args.check_n_envs,
            seed=seed,
            wrapper_class=StartStateWrapper,
            env_kwargs={"split": "train", "render_mode": None},
        )
        model = make_model("maxrl", n, seed, env=venv)
        rows = []

        class EpochEval(BaseCallback):
            def __init__(self):
                super().__init__()
                self.updates = 0

            def _on_step(self) -> bool:
                return True

            def _on_rollout_end(self) -> None:
                self.updates += 1
                seen = self.updates * G
                if seen // n_train > (seen - G) // n_train:
                    rows.append(
                        {
                            "epoch": seen // n_train,
                            "wall_s": time.perf_counter() - t0,
                            **evaluate(self.model.policy, x_test, y_test),
                        }
                    )

        t0 = time.perf_counter()
        updates = int(np.ceil(args.check_epochs * n_train / G))
        model.learn(updates * G * n, callback=EpochEval())
        wall = time.perf_counter() - t0
        for r in rows:
            out.append(
                {
                    "path": f"library MaxRL.learn (DummyVecEnv, {args.check_n_envs} envs)",
                    "method": "maxrl",
                    "group_size": n,
                    "seed": seed,
                    "episodes_per_s": model.num_timesteps / wall,
                    **r,
                }
            )
        brow, bwall = run_one("maxrl", n, seed, args.check_epochs, data, per_epoch=1)
        for r in brow[1:]:
            out.append(
                {
                    "path": "batched (this script)",
                    "method": "maxrl",
                    "group_size": n,
                    "seed": seed,
                    "episodes_per_s": brow[-1]["episodes"] / bwall,
                    "epoch": r["epoch"],
                    **{k: r[k] for k in ("test_acc", "test_pass1", "test_nll")},
                }
            )
        print(
            f"check seed {seed}: library acc {[round(r['test_acc'], 3) for r in rows]} "
            f"({model.num_timesteps / wall:.0f} eps/s) | batched acc {[round(r['test_acc'], 3) for r in brow[1:]]} "
            f"({brow[-1]['episodes'] / bwall:.0f} eps/s)",
            flush=True,
        )
    return out


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
    p.add_argument("--check-library", action="store_true", help="also train MaxRL via MaxRL.learn (DummyVecEnv)")
    p.add_argument("--check-group-size", type=int, default=16)
    p.add_argument("--check-epochs", type=int, default=3)
    p.add_argument("--check-seeds", type=int, default=2)
    p.add_argument("--check-n-envs", type=int, default=256)
    args = p.parse_args()
    common.setup_torch(1)
    args.seeds = args.seeds or (3 if args.quick else 5)
    args.epochs = args.epochs or (15 if args.quick else 40)
    tag = ("_quick" if args.quick else "") + ("_sgd" if args.optimizer == "sgd" else "")
    args.out.mkdir(parents=True, exist_ok=True)
    data = (*load_split("train"), *load_split("test"))
    t_start = time.perf_counter()
    curves, finals = [], []
    configs = [(m, n) for m in args.methods if m != "ce" for n in args.group_sizes]
    if "ce" in args.methods:
        configs.append(("ce", 1))
    for method, n in configs:
        for seed in range(args.seeds):
            rows, wall = run_one(method, n, seed, args.epochs, data, args.per_epoch, args.optimizer, args.sgd_lr)
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
    if args.check_library:
        rows = check_library(args, data)
        common.write_csv(rows, args.out / f"classification{tag}_library_check.csv")
    print(f"total wall {time.perf_counter() - t_start:.0f}s; {common.machine_info()}")


if __name__ == "__main__":
    main()
