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

Training path. By default the RL methods use a *batched path*: the policy and its optimizer are built by
``sb3_maxrl.MaxRL`` (same network, init, optimizer), the G start states come from the library's
``StartStateStream`` and ``env.reset(seed)`` (so the same (x, y) as the library would use), the N actions per
start state are sampled from the policy on the repeated observations (unclipped actions stored, clipped to
[-1, 1] for scoring, as ``MaxRL._act`` does), advantages come from the library's ``group_advantages`` and the
loss is the library's ``-(1 / (G N)) sum A_i log pi(a_i | x)`` with ``clip_grad_norm_(0.5)``: the same update
as ``MaxRL.train`` with ``n_epochs=1, batch_size=None``, without the Python loop over one-step VecEnv
episodes (~3.5k episodes/s measured through DummyVecEnv on this machine). ``--check-library`` additionally
trains MaxRL and RLOO through ``MaxRL.learn`` (DummyVecEnv) for a shorter budget and reports both paths.

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


def make_raw_env(noise: str):
    import gymnasium as gym

    import sb3_maxrl  # noqa: F401

    return gym.make("MaxRL/Regression-v0", noise=noise, noise_scale=NOISE_SCALE, tau=TAU, render_mode=None).unwrapped


def draw_xy(env, seeds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in seeds:
        env.reset(seed=int(s))
        xs.append(env.x)
        ys.append(env.y)
    return np.asarray(xs), np.asarray(ys)


def std_target(env, x: np.ndarray) -> float:
    """s* = sqrt(E_x Var(y|x) - tau^2): the ML optimum of a state-independent policy std."""
    return float(np.sqrt(max(np.mean(env.conditional_std(x) ** 2) - TAU**2, 0.0)))


def jn_optimal_std(env, x: np.ndarray, y: np.ndarray, truncation: int | None) -> float:
    """The state-independent s maximizing E_{x,y} J_T(p(y|x)) with mu = E[y|x] (grid search, action clip ignored).

    p(y|x) = tau / sqrt(tau^2 + s^2) exp(-(y - mu)^2 / (2 (tau^2 + s^2))); J_T(p) = -sum_{k<=T} (1-p)^k / k,
    T = None: log p. This is what MaxRL with N = T rollouts is unbiased for, so it is the std MaxRL should
    reach at that N; it differs from sqrt(E Var - tau^2) where residuals are large (heavy tails: p is tiny and
    J_T saturates, a robust loss).
    """
    grid = np.exp(np.linspace(np.log(0.005), np.log(1.0), 400))
    r2 = (y - env.conditional_mean(x)) ** 2
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


def make_maxrl(noise: str, method: str, seed: int, args, env=None):
    from sb3_maxrl import MaxRL

    cfg = METHODS[method]
    return MaxRL(
        "MlpPolicy",
        make_raw_env(noise) if env is None else env,
        learning_rate=args.lr,
        group_size=args.group_size,
        n_groups=args.n_groups,
        estimator=cfg["estimator"],
        truncation=cfg["truncation"],
        n_epochs=1,  # the batched path's update (one pass, one batch); --check-library trains MaxRL.learn with it
        max_grad_norm=0.5,
        policy_kwargs={"net_arch": list(common.NET_ARCH), "log_std_init": math.log(args.std_init)},
        seed=seed,
        device="cpu",
    )


def rl_update(model, env, seeds, group_size: int, method: str) -> dict[str, float]:
    """One MaxRL update (n_epochs=1, one batch) on G start states x N one-step rollouts, batched."""
    from sb3_maxrl import group_advantages

    policy = model.policy
    cfg = METHODS[method]
    x, y = draw_xy(env, seeds)
    # the G start states' observations are forwarded once and the Gaussian is repeated N times: the same
    # distribution (and gradient) as forwarding the G*N repeated observations, as the library does
    obs = th.as_tensor(x[:, None], dtype=th.float32)
    policy.set_training_mode(True)
    mean = policy.get_distribution(obs).distribution.mean.repeat_interleave(group_size, dim=0)
    dist = th.distributions.Normal(mean, th.ones_like(mean) * th.exp(policy.log_std))
    actions = dist.sample()
    pred = np.clip(actions.numpy()[:, 0].astype(np.float64), -1.0, 1.0)
    lik = np.exp(-((np.repeat(y, group_size) - pred) ** 2) / (2 * TAU**2)).reshape(len(seeds), group_size)
    adv = group_advantages(lik, cfg["estimator"], cfg["truncation"])
    log_prob = dist.log_prob(actions).sum(dim=-1)
    loss = -(th.as_tensor(adv.reshape(-1), dtype=th.float32) * log_prob).sum() / lik.size
    policy.optimizer.zero_grad()
    loss.backward()
    th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
    policy.optimizer.step()
    return {"pass_rate": float(lik.mean()), "adv_std": float(adv.std())}


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


def evaluate_rl(model, env, x, y) -> dict[str, float]:
    with th.no_grad():
        mu = model.policy.get_distribution(th.as_tensor(x[:, None], dtype=th.float32)).distribution.mean.numpy()[:, 0]
        s = float(th.exp(model.policy.log_std).item())
    var = TAU**2 + s**2
    return _metrics(env, x, y, mu.astype(np.float64), np.full_like(x, var), s)


def evaluate_nll(net, env, x, y) -> dict[str, float]:
    with th.no_grad():
        mu, log_std = net(th.as_tensor(x[:, None], dtype=th.float32))
    var = np.exp(2 * log_std.numpy().astype(np.float64))
    # implied policy-equivalent spread: sqrt(mean sigma^2 - tau^2)
    s = float(np.sqrt(max(var.mean() - TAU**2, 0.0)))
    return _metrics(env, x, y, mu.numpy().astype(np.float64), var, s)


def _metrics(env, x, y, mu, var, s) -> dict[str, float]:
    true_std = env.conditional_std(x)
    target = std_target(env, x)
    return {
        "mse_y": float(np.mean((y - mu) ** 2)),
        "mse_mean": float(np.mean((env.conditional_mean(x) - mu) ** 2)),
        "nll": float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mu) ** 2 / (2 * var))),
        "learned_std": s,
        "target_std": target,
        "std_ratio": s / target if target > 0 else float("nan"),
        # predictive std sqrt(var(x)) against the true Std(y|x), per x (RL: sqrt(tau^2 + s^2), constant)
        "pred_std_rel_err": float(np.mean(np.abs(np.sqrt(var) - true_std) / true_std)),
    }


def run_one(noise: str, method: str, seed: int, args, x_test, y_test) -> tuple[list[dict], dict]:
    from sb3_maxrl.common.start_states import StartStateStream

    th.manual_seed(seed)
    env = make_raw_env(noise)
    stream = StartStateStream(seed)
    curve = []
    t0 = time.perf_counter()
    if method == "nll":
        net = NLLNet(args.std_init)
        opt = th.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        for u in range(1, args.updates + 1):
            x, y = draw_xy(env, stream.take(args.n_groups))
            mu, log_std = net(th.as_tensor(x[:, None], dtype=th.float32))
            yt = th.as_tensor(y, dtype=th.float32)
            loss = (log_std + (yt - mu) ** 2 / (2 * th.exp(2 * log_std))).mean()
            opt.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            if u % args.eval_every == 0 or u == args.updates:
                curve.append({"update": u, **evaluate_nll(net, env, x_test, y_test)})
    else:
        model = make_maxrl(noise, method, seed, args)
        for u in range(1, args.updates + 1):
            stats = rl_update(model, env, stream.take(args.n_groups), args.group_size, method)
            if u % args.eval_every == 0 or u == args.updates:
                curve.append({"update": u, "train_pass_rate": stats["pass_rate"], **evaluate_rl(model, env, x_test, y_test)})
    wall = time.perf_counter() - t0
    final = {**curve[-1], "wall_s": wall}
    return curve, final


def check_library(args, x_tests) -> list[dict]:
    """MaxRL.learn through a DummyVecEnv (the library's own loop) vs the batched path, same budget."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_maxrl import StartStateWrapper

    rows = []
    noise = "gaussian"
    x_test, y_test = x_tests[noise]
    updates = args.check_updates
    for method in ("maxrl", "rloo"):
        for seed in range(args.check_seeds):
            venv = make_vec_env(
                "MaxRL/Regression-v0",
                n_envs=64,
                seed=seed,
                wrapper_class=StartStateWrapper,
                env_kwargs={"noise": noise, "noise_scale": NOISE_SCALE, "tau": TAU, "render_mode": None},
            )
            model = make_maxrl(noise, method, seed, args, env=venv)
            t0 = time.perf_counter()
            model.learn(updates * args.n_groups * args.group_size)
            wall = time.perf_counter() - t0
            lib = evaluate_rl(model, make_raw_env(noise), x_test, y_test)
            rows.append(
                {
                    "path": "library MaxRL.learn (DummyVecEnv, 64 envs)",
                    "method": method,
                    "seed": seed,
                    "updates": updates,
                    "wall_s": wall,
                    "episodes_per_s": model.num_timesteps / wall,
                    **lib,
                }
            )
            a = argparse.Namespace(**{**vars(args), "updates": updates, "eval_every": updates})
            _, fin = run_one(noise, method, seed, a, x_test, y_test)
            rows.append(
                {
                    "path": "batched (this script)",
                    "method": method,
                    "seed": seed,
                    "updates": updates,
                    "episodes_per_s": updates * args.n_groups * args.group_size / fin["wall_s"],
                    **fin,
                }
            )
            print(
                rows[-2]["method"],
                seed,
                "lib std %.3f mse %.4f | batched std %.3f mse %.4f | lib %.0f eps/s, batched %.0f eps/s"
                % (
                    rows[-2]["learned_std"],
                    rows[-2]["mse_mean"],
                    fin["learned_std"],
                    fin["mse_mean"],
                    rows[-2]["episodes_per_s"],
                    rows[-1]["episodes_per_s"],
                ),
                flush=True,
            )
    return rows


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
    p.add_argument("--check-library", action="store_true", help="also train via MaxRL.learn (DummyVecEnv)")
    p.add_argument("--summarize-only", action="store_true", help="rebuild the summary and plot from the CSVs")
    p.add_argument("--check-updates", type=int, default=150)
    p.add_argument("--check-seeds", type=int, default=2)
    args = p.parse_args()
    common.setup_torch(1)
    args.seeds = args.seeds or (3 if args.quick else 5)
    args.updates = args.updates or (1200 if args.quick else 3000)
    tag = "_quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    from sb3_maxrl import default_eval_seeds

    x_tests = {n: draw_xy(make_raw_env(n), default_eval_seeds(args.n_test)) for n in args.noises}
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
    if args.check_library:
        rows = check_library(args, x_tests)
        common.write_csv(rows, args.out / f"regression{tag}_library_check.csv")
    print(f"total wall {time.perf_counter() - t_start:.0f}s; {common.machine_info()}")


def summarize(args, tag: str, x_tests) -> None:
    """Summary table and plot from the CSVs (``--summarize-only`` reruns just this)."""
    import pandas as pd

    df = pd.read_csv(args.out / f"regression{tag}.csv")
    curves = pd.read_csv(args.out / f"regression{tag}_curves.csv")
    plot(curves.to_dict("records"), df.to_dict("records"), args.out, tag)
    n = int(df.group_size.iloc[0])
    jn = {noise: jn_optimal_std(make_raw_env(noise), *x_tests[noise], n) for noise in df.noise.unique()}
    ml = {noise: jn_optimal_std(make_raw_env(noise), *x_tests[noise], None) for noise in df.noise.unique()}
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
