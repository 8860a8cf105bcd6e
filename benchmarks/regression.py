"""Regression with a learnable policy std (issue #4 part 5): does MaxRL learn a calibrated spread?

Task: ``MaxRL/Regression-v0`` (x ~ U(-1, 1), y = 0.5 sin(pi x) + noise, one-step episodes, per-rollout
likelihood l = exp(-(y - yhat)^2 / (2 tau^2))). The policy is SB3's Gaussian policy: an MLP mean mu(x) and a
*state-independent* learned log-std s. Its marginal likelihood is p(y|x) = E l = tau / sqrt(tau^2 + s^2) *
exp(-(y - mu)^2 / (2 (tau^2 + s^2))), a Gaussian in y with variance tau^2 + s^2, so maximum likelihood
(T -> inf) gives s^2 = Var(y|x) - tau^2 (averaged over x, since s does not depend on x: the target is
s* = sqrt(E_x Var(y|x) - tau^2)), while expected-likelihood RL (T = 1, RLOO, GRPO) maximizes
E l = tau / sqrt(tau^2 + s^2 + Var) and drives s to 0.

Methods (all at equal budget: the same number of updates, G start states per update, N rollouts each):

- ``maxrl``     MaxRL(estimator="maxrl_general", truncation=None (T = N), baseline="loo_pass")
- ``exp_lik``   MaxRL(estimator="maxrl_general", truncation=1): expected-likelihood RL (the T = 1 member)
- ``rloo``      MaxRL(estimator="rloo")
- ``grpo``      MaxRL(estimator="grpo")
- ``nll``       supervised Gaussian NLL: an MLP of the same body with two heads (mean, log-std(x)), trained
                with the same optimizer (Adam, same lr, eps 1e-5, grad-norm clip 0.5) on the same (x, y)
                pairs (the G start states of every update), plain torch.

Every RL method trains through ``MaxRL.learn`` on ``sb3_maxrl_envs.regression.RegressionTask`` (the task of
``MaxRL/Regression-v0`` vectorized over seeds: seed s gives the (x, y) that ``reset(seed=s)`` draws) with the
paper's update (``n_epochs=1``, one batch, no ratio clip). On a one-step task ``MaxRL`` forwards the G start
states once, samples their N predictions from the Gaussian (unclipped actions kept for the log-probabilities,
clipped to [-1, 1] for scoring, as for any Box env) and trains on the per-sample loss, equal to the per-episode
loss (``sb3_maxrl/common/one_step.py``, ``tests/test_one_step.py``).

Evaluation on 2000 held-out start states (``default_eval_seeds``): MSE of mu(x) to y and to E[y|x],
predictive NLL of y (RL: N(mu, tau^2 + s^2), i.e. -log p(y|x) - log(tau sqrt(2 pi)); NLL model: N(mu, sigma(x)^2)),
the learned std and its ratio to the target s*. (The analytic predictive ignores the action clip at +-1.)

Run: ``python -m benchmarks.regression --quick`` (3 seeds) or ``python -m benchmarks.regression`` (5 seeds).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch as th

from benchmarks import common

TAU = 0.1
NOISE_SCALE = 0.2
NOISES = ("gaussian", "heteroskedastic", "outliers", "skewed")
METHODS = {
    "maxrl": dict(estimator="maxrl_general", truncation=None),
    "exp_lik": dict(estimator="maxrl_general", truncation=1),
    "rloo": dict(estimator="rloo", truncation=None),
    "grpo": dict(estimator="grpo", truncation=None),
}
ORDER = ("maxrl", "exp_lik", "rloo", "grpo", "nll")


def make_task(noise: str):
    """The regression task of one noise model, vectorized over seeds."""
    from sb3_maxrl_envs.regression import RegressionTask

    return RegressionTask(noise=noise, noise_scale=NOISE_SCALE, tau=TAU)


def std_target(task, x: np.ndarray) -> float:
    """s* = sqrt(E_x Var(y|x) - tau^2): the ML optimum of a state-independent policy std."""
    return float(np.sqrt(max(np.mean(task.conditional_std(x) ** 2) - TAU**2, 0.0)))


def jn_optimal_std(task, x: np.ndarray, y: np.ndarray, truncation: int | None) -> float:
    """The state-independent s maximizing E_{x,y} J_T(p(y|x)) with mu = E[y|x] (grid search, action clip ignored).

    p(y|x) = tau / sqrt(tau^2 + s^2) exp(-(y - mu)^2 / (2 (tau^2 + s^2))); J_T(p) = -sum_{k<=T} (1-p)^k / k,
    T = None: log p. This is what MaxRL with N = T rollouts is unbiased for, so it is the std MaxRL should
    reach at that N; it differs from sqrt(E Var - tau^2) where residuals are large (heavy tails: p is tiny and
    J_T saturates, a robust loss).
    """
    grid = np.exp(np.linspace(np.log(0.005), np.log(1.0), 400))
    r2 = (y - task.conditional_mean(x)) ** 2
    best, best_val = grid[0], -np.inf
    for s in grid:
        v = TAU**2 + s**2
        p = TAU / np.sqrt(v) * np.exp(-r2 / (2 * v))
        if truncation is None:
            val = np.mean(np.log(np.maximum(p, 1e-300)))
        else:
            q = 1.0 - p
            val = -np.mean(sum(q**k / k for k in range(1, truncation + 1)))
        if val > best_val:
            best, best_val = s, val
    return float(best)


def make_maxrl(noise: str, method: str, seed: int, args):
    from sb3_maxrl import MaxRL

    cfg = METHODS[method]
    return MaxRL(
        "MlpPolicy",
        make_task(noise),
        learning_rate=args.lr,
        group_size=args.group_size,
        n_groups=args.n_groups,
        estimator=cfg["estimator"],
        truncation=cfg["truncation"],
        n_epochs=1,
        clip_range=None,
        max_grad_norm=0.5,
        policy_kwargs={"net_arch": list(common.NET_ARCH), "log_std_init": math.log(args.std_init)},
        seed=seed,
        device="cpu",
    )


class NLLNet(th.nn.Module):
    """Same body as the policy (MLP [64, 64], Tanh); heads: mean and log-std(x)."""

    def __init__(self, std_init: float):
        super().__init__()
        layers, d = [], 1
        for h in common.NET_ARCH:
            layers += [th.nn.Linear(d, h), th.nn.Tanh()]
            d = h
        self.body = th.nn.Sequential(*layers)
        self.mean = th.nn.Linear(d, 1)
        self.log_std = th.nn.Linear(d, 1)
        th.nn.init.zeros_(self.log_std.weight)
        th.nn.init.constant_(self.log_std.bias, math.log(std_init))

    def forward(self, x):
        h = self.body(x)
        return self.mean(h)[:, 0], self.log_std(h)[:, 0]


def evaluate_rl(model, task, x, y) -> dict[str, float]:
    with th.no_grad():
        mu = model.policy.get_distribution(th.as_tensor(x[:, None], dtype=th.float32)).distribution.mean.numpy()[:, 0]
        s = float(th.exp(model.policy.log_std).item())
    var = TAU**2 + s**2
    return _metrics(task, x, y, mu.astype(np.float64), np.full_like(x, var), s)


def evaluate_nll(net, task, x, y) -> dict[str, float]:
    with th.no_grad():
        mu, log_std = net(th.as_tensor(x[:, None], dtype=th.float32))
    var = np.exp(2 * log_std.numpy().astype(np.float64))
    # implied policy-equivalent spread: sqrt(mean sigma^2 - tau^2)
    s = float(np.sqrt(max(var.mean() - TAU**2, 0.0)))
    return _metrics(task, x, y, mu.numpy().astype(np.float64), var, s)


def _metrics(task, x, y, mu, var, s) -> dict[str, float]:
    true_std = task.conditional_std(x)
    target = std_target(task, x)
    return {
        "mse_y": float(np.mean((y - mu) ** 2)),
        "mse_mean": float(np.mean((task.conditional_mean(x) - mu) ** 2)),
        "nll": float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mu) ** 2 / (2 * var))),
        "learned_std": s,
        "target_std": target,
        "std_ratio": s / target if target > 0 else float("nan"),
        # predictive std sqrt(var(x)) against the true Std(y|x), per x (RL: sqrt(tau^2 + s^2), constant)
        "pred_std_rel_err": float(np.mean(np.abs(np.sqrt(var) - true_std) / true_std)),
    }


def run_one(noise: str, method: str, seed: int, args, x_test, y_test) -> tuple[list[dict], dict]:
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    from sb3_maxrl.common.callbacks import EveryNUpdates
    from sb3_maxrl.common.start_states import StartStateStream

    task = make_task(noise)
    curve = []
    t0 = time.perf_counter()
    if method == "nll":
        th.manual_seed(seed)
        net = NLLNet(args.std_init)
        opt = th.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        stream = StartStateStream(seed)  # the (x, y) pairs MaxRL's start-state stream gives its runs of this seed
        for u in range(1, args.updates + 1):
            x, y = task.examples(stream.take(args.n_groups))
            mu, log_std = net(th.as_tensor(x[:, None], dtype=th.float32))
            yt = th.as_tensor(y, dtype=th.float32)
            loss = (log_std + (yt - mu) ** 2 / (2 * th.exp(2 * log_std))).mean()
            opt.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            if u % args.eval_every == 0 or u == args.updates:
                curve.append({"update": u, **evaluate_nll(net, task, x_test, y_test)})
    else:
        model = make_maxrl(noise, method, seed, args)
        pass_rates: list[float] = []

        def record(updates: int) -> None:
            if updates % args.eval_every == 0 or updates == args.updates:
                metrics = evaluate_rl(model, task, x_test, y_test)
                curve.append({"update": updates, "train_pass_rate": pass_rates[-1], **metrics})

        class SampledPredictions(BaseCallback):
            def _on_step(self) -> bool:  # once per update on a one-step task: its sampled predictions
                pass_rates.append(float(self.locals["likelihoods"].mean()))
                return True

        every_update = EveryNUpdates(1, lambda model, updates: record(updates))
        model.learn(
            args.updates * args.n_groups * args.group_size, callback=CallbackList([SampledPredictions(), every_update])
        )
    wall = time.perf_counter() - t0
    final = {**curve[-1], "wall_s": wall}
    return curve, final


def plot(curves, finals, out: Path, tag: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(curves)
    fig, axes = plt.subplots(2, len(NOISES), figsize=(4.2 * len(NOISES), 7.5))
    for j, noise in enumerate(NOISES):
        sub = df[df.noise == noise]
        if sub.empty:
            continue
        ax = axes[0, j]
        common.plot_seed_bands(ax, sub, "update", "learned_std", "method", order=ORDER, marker=None)
        ax.axhline(sub.target_std.iloc[0], color="k", ls="--", lw=1, label="target sqrt(E Var - tau^2)")
        ax.set_title(f"{noise}: learned std")
        ax = axes[1, j]
        common.plot_seed_bands(ax, sub, "update", "mse_mean", "method", order=ORDER, marker=None)
        ax.set_yscale("log")
        ax.set_title(f"{noise}: MSE of mean to E[y|x]")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Regression, N={finals[0]['group_size']}, median and min-max over seeds ({tag})")
    fig.tight_layout()
    fig.savefig(out / f"regression{tag}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, 1200 updates (a few minutes)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per config (default 3 quick, 5 full)")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR)
    p.add_argument("--group-size", type=int, default=64, help="N rollouts per start state")
    p.add_argument("--n-groups", type=int, default=32, help="G start states per update")
    p.add_argument("--updates", type=int, default=None, help="updates per run (default 1200 quick, 3000 full)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--std-init", type=float, default=0.3, help="initial policy std (log_std_init = log of it)")
    p.add_argument("--noises", nargs="+", default=list(NOISES), choices=NOISES)
    p.add_argument("--methods", nargs="+", default=list(ORDER), choices=ORDER)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--summarize-only", action="store_true", help="rebuild the summary and plot from the CSVs")
    args = p.parse_args()
    common.setup_torch(1)
    args.seeds = args.seeds or (3 if args.quick else 5)
    args.updates = args.updates or (1200 if args.quick else 3000)
    tag = "_quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    from sb3_maxrl import default_eval_seeds

    x_tests = {n: make_task(n).examples(default_eval_seeds(args.n_test)) for n in args.noises}
    if args.summarize_only:
        summarize(args, tag, x_tests)
        return
    t_start = time.perf_counter()
    curves, finals = [], []
    for noise in args.noises:
        for method in args.methods:
            for seed in range(args.seeds):
                curve, fin = run_one(noise, method, seed, args, *x_tests[noise])
                info = {
                    "noise": noise,
                    "method": method,
                    "seed": seed,
                    "group_size": args.group_size,
                    "n_groups": args.n_groups,
                    "episodes": args.updates * args.n_groups * (1 if method == "nll" else args.group_size),
                }
                curves += [{**info, **row} for row in curve]
                finals.append({**info, **fin})
                print(
                    f"{noise:16s} {method:8s} seed {seed}: std {fin['learned_std']:.3f} (target {fin['target_std']:.3f}) "
                    f"mse_mean {fin['mse_mean']:.4f} nll {fin['nll']:.3f} [{fin['wall_s']:.1f}s]",
                    flush=True,
                )
    common.write_csv(curves, args.out / f"regression{tag}_curves.csv")
    common.write_csv(finals, args.out / f"regression{tag}.csv")
    summarize(args, tag, x_tests)
    print(f"total wall {time.perf_counter() - t_start:.0f}s; {common.machine_info()}")


def summarize(args, tag: str, x_tests) -> None:
    """Summary table and plot from the CSVs (``--summarize-only`` reruns just this)."""
    import pandas as pd

    df = pd.read_csv(args.out / f"regression{tag}.csv")
    curves = pd.read_csv(args.out / f"regression{tag}_curves.csv")
    plot(curves.to_dict("records"), df.to_dict("records"), args.out, tag)
    n = int(df.group_size.iloc[0])
    jn = {noise: jn_optimal_std(make_task(noise), *x_tests[noise], n) for noise in df.noise.unique()}
    ml = {noise: jn_optimal_std(make_task(noise), *x_tests[noise], None) for noise in df.noise.unique()}
    summary = (
        df.groupby(["noise", "method"], sort=False)
        .agg(
            std_median=("learned_std", "median"),
            std_min=("learned_std", "min"),
            std_max=("learned_std", "max"),
            target=("target_std", "first"),
            ratio_median=("std_ratio", "median"),
            mse_mean_median=("mse_mean", "median"),
            mse_y_median=("mse_y", "median"),
            nll_median=("nll", "median"),
            nll_min=("nll", "min"),
            nll_max=("nll", "max"),
            seeds=("seed", "count"),
        )
        .reset_index()
    )
    summary["target_ml_grid"] = summary.noise.map(ml)
    summary[f"target_J{n}"] = summary.noise.map(jn)
    summary[f"ratio_to_J{n}"] = summary.std_median / summary[f"target_J{n}"]
    common.write_csv(summary.to_dict("records"), args.out / f"regression{tag}_summary.csv")
    with pd.option_context("display.width", 250):
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
