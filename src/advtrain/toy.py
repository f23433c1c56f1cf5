"""The 1-D toy study of section 3 (Table 1 and Figure 1): OLS vs PGD-AT vs LDS on ``y = theta * x + noise``.

The model is a single neuron without bias, ``f(x) = theta * x`` (Table 1's losses have no bias term). Data
and training follow the paper where it is specific and make documented choices where it is not:

* ``y = theta * x + e`` with ``theta = 0.5`` and ``e ~ N(0, sigma^2)``, ``sigma`` in {0.01, 0.1} (paper).
* ``x ~ U(x_low, x_high) = U(-1, 1)`` and ``n = 100`` points per run: **our choice**, the paper gives neither.
* Training starts at ``theta = 0`` (our choice; it does not matter, OLS converges in tens of epochs) and runs
  2000 epochs at learning rate 0.005 with the OLS loss; PGD-AT and LDS replace it by their loss for the
  epochs after ``switch_epoch = 1750`` (paper). Updates are per sample, as in Algorithm 1 (``for (x, y) in
  D``, fixed order, loss not averaged); ``update_mode="batch"`` instead takes one full-batch gradient step
  on the mean loss per epoch (the perturbation ascent is per sample in both cases). Per-sample SGD at a
  constant learning rate ends each epoch within O(lr) of the minimiser (about 4e-3 at sigma = 0.1), which
  is the gap between trained and closed-form theta that remains for OLS.
* The perturbation is re-drawn for every sample and epoch, ``delta ~ N(0, init_std^2)``, followed by
  ``steps`` ascent steps ``delta <- clip(delta + step_size * g, -epsilon, epsilon)`` (Algorithm 1) with
  ``g = d/d delta (f(x + delta) - y)^2`` for PGD-AT and ``g = d/d delta (f(x) - f(x + delta))^2`` for LDS;
  ``theta`` then descends on ``(f(x) - y)^2 + (f(x + delta) - y)^2`` (PGD-AT) or
  ``(f(x) - y)^2 + (f(x) - f(x + delta))^2`` (LDS, differentiated through both terms as in Table 1).
  The paper states S = 3 and an L2 bound of 0.003 for BERT embeddings but nothing for the toy; the
  defaults ``epsilon = 0.1``, ``step_size = 1.0`` and ``init_std = 0.01`` are **our choice**, made so that
  the perturbation is visible against the noise at both noise levels.
* Run ``r`` uses the seed ``seed + r``: its ``x``, its standard-normal noise draws and its perturbation
  draws are the same for both noise levels and all three methods (common random numbers), so before the
  switch epoch the three methods follow exactly the same trajectory.

The closed forms of Table 1 are the minimisers of the three losses for given perturbations. With one
perturbation per sample they read ``sum(2 x y + y d) / sum(x^2 + (x + d)^2)`` (PGD-AT) and
``sum(x y) / sum(x^2 + d^2)`` (LDS); a scalar ``d`` gives the paper's formulas. For a trained run we
evaluate them on every (sample, epoch) perturbation used after the switch, i.e. we report the minimiser of
the method's loss summed over the adversarial epochs, and compare it with the trained ``theta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain.figures import save_figure
from advtrain.tables import format_mean_sd, mean_sd, write_display_table

METHODS = ("OLS", "PGD-AT", "LDS")
UPDATES = ("sample", "batch")

DEFAULTS = {
    "theta": 0.5,
    "noise_sigmas": (0.01, 0.1),
    "epochs": 2000,
    "switch_epoch": 1750,
    "lr": 0.005,
    "runs": 25,
    "n_points": 100,
    "steps": 3,
    "epsilon": 0.1,
    "step_size": 1.0,
    "init_std": 0.01,
    "x_low": -1.0,
    "x_high": 1.0,
    "update_mode": "sample",
    "seed": 0,
}


# --------------------------------------------------------------------------- closed forms (Table 1)


def theta_ols(x, y, axis=-1) -> np.ndarray:
    """Table 1, OLS: ``sum(x y) / sum(x^2)``."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    return np.sum(x * y, axis=axis) / np.sum(x * x, axis=axis)


def theta_pgd_at(x, y, delta, axis=-1) -> np.ndarray:
    """Table 1, PGD-AT: ``sum(2 x y + y delta) / sum(x^2 + (x + delta)^2)`` (delta scalar or per sample)."""
    x, y, d = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(delta, float))
    return np.sum(2 * x * y + y * d, axis=axis) / np.sum(x * x + (x + d) ** 2, axis=axis)


def theta_lds(x, y, delta, axis=-1) -> np.ndarray:
    """Table 1, LDS: ``sum(x y) / sum(x^2 + delta^2)`` (delta scalar or per sample)."""
    x, y, d = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(delta, float))
    return np.sum(x * y, axis=axis) / np.sum(x * x + d * d, axis=axis)


def closed_form_theta(method: str, x, y, delta=0.0, axis=-1) -> np.ndarray:
    """The closed-form estimate of Table 1 for ``method`` (one of ``METHODS``)."""
    _check_method(method)
    if method == "OLS":
        return theta_ols(x, y, axis=axis)
    if method == "PGD-AT":
        return theta_pgd_at(x, y, delta, axis=axis)
    return theta_lds(x, y, delta, axis=axis)


# --------------------------------------------------------------------------- data


def run_seeds(runs: int, seed: int = 0) -> list[int]:
    """The seed of each run: ``seed + r``."""
    return [int(seed) + r for r in range(runs)]


def make_data(
    seeds: Sequence[int],
    n_points: int,
    theta: float,
    sigma: float,
    x_low: float = -1.0,
    x_high: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y = theta x + sigma z``, each of shape ``(n_points, len(seeds))`` (one column per run).

    ``x`` and ``z`` depend on the run's seed only, so runs at different ``sigma`` share them.
    """
    xs, zs = [], []
    for s in seeds:
        rng = np.random.default_rng(np.random.SeedSequence(int(s)).spawn(2)[0])
        xs.append(rng.uniform(x_low, x_high, n_points))
        zs.append(rng.standard_normal(n_points))
    x = np.stack(xs, axis=1)
    return x, theta * x + sigma * np.stack(zs, axis=1)


def _delta_rngs(seeds: Sequence[int]) -> list[np.random.Generator]:
    return [np.random.default_rng(np.random.SeedSequence(int(s)).spawn(2)[1]) for s in seeds]


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """``theta`` (B,): final parameter per column; ``trajectory`` (epochs + 1, B): theta at initialisation
    and after every epoch; ``deltas`` (epochs - switch_epoch, n, B): the perturbations the parameter updates
    used after the switch (None for OLS)."""

    theta: np.ndarray
    trajectory: np.ndarray
    deltas: np.ndarray | None


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def train(
    x: np.ndarray,
    y: np.ndarray,
    method: str,
    *,
    epochs: int = 2000,
    switch_epoch: int = 1750,
    lr: float = 0.005,
    steps: int = 3,
    epsilon: float = 0.1,
    step_size: float = 1.0,
    init_std: float = 0.01,
    seeds: Sequence[int] | None = None,
    fixed_delta: float | np.ndarray | None = None,
    update_mode: str = "sample",
    theta_init: float = 0.0,
) -> TrainResult:
    """Train ``f(x) = theta x`` on every column of ``x``, ``y`` (shape ``(n, B)``) at once.

    Epochs ``1..switch_epoch`` use the OLS loss, later epochs the loss of ``method``. Perturbations are drawn
    from per-column generators seeded by ``seeds`` (default ``0..B-1``). With ``fixed_delta`` (a scalar or an
    array broadcastable to ``(n, B)``) the perturbation is held fixed and no ascent is done: that is the
    setting in which Table 1's closed forms are exact minimisers.
    """
    _check_method(method)
    if update_mode not in UPDATES:
        raise ValueError(f"unknown update_mode {update_mode!r}; known: {', '.join(UPDATES)}")
    if not 0 <= switch_epoch <= epochs:
        raise ValueError("switch_epoch must lie in [0, epochs]")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    n, B = x.shape
    seeds = list(range(B)) if seeds is None else list(seeds)
    if len(seeds) != B:
        raise ValueError("one seed per column is needed")
    fixed = None if fixed_delta is None else np.broadcast_to(np.asarray(fixed_delta, float), (n, B))
    theta = np.full(B, float(theta_init))
    trajectory = np.empty((epochs + 1, B))
    trajectory[0] = theta
    adversarial = method != "OLS"
    ols_epochs = epochs if not adversarial else switch_epoch
    # OLS epochs: one epoch of (per-sample or full-batch) gradient descent on (theta x - y)^2 is the affine
    # map theta -> a theta + b, exactly; compose it once and iterate it (fast, and identical for all methods).
    a, b = _ols_epoch_map(x, y, lr, update_mode)
    for epoch in range(1, ols_epochs + 1):
        theta = a * theta + b
        trajectory[epoch] = theta
    if not adversarial:
        return TrainResult(theta=theta, trajectory=trajectory, deltas=None)

    deltas = np.empty((epochs - switch_epoch, n, B))
    rngs = _delta_rngs(seeds) if fixed is None else None
    pgd = method == "PGD-AT"
    if update_mode == "sample":  # walk the rows one at a time, as Algorithm 1 does
        blocks = [(x[i], y[i], i) for i in range(n)]

        def reduce(v):
            return v

    else:  # one step on the mean loss over all rows
        blocks = [(x, y, slice(None))]

        def reduce(v):
            return v.mean(axis=0)

    for epoch in range(switch_epoch + 1, epochs + 1):
        if fixed is not None:
            delta_epoch = fixed
        else:
            delta_epoch = init_std * np.stack([g.standard_normal(n) for g in rngs], axis=1)
        used = deltas[epoch - switch_epoch - 1]
        for xs, ys, idx in blocks:
            d = delta_epoch[idx]
            if fixed is None:
                for _ in range(steps):
                    if pgd:  # d/d delta (theta (x + delta) - y)^2
                        g = 2 * theta * (theta * (xs + d) - ys)
                    else:  # LDS: d/d delta (theta (x + delta) - theta x)^2
                        g = (2 * theta * theta) * d
                    d = np.minimum(np.maximum(d + step_size * g, -epsilon), epsilon)
            used[idx] = d
            if pgd:
                xd = xs + d
                grad = 2 * xs * (theta * xs - ys) + 2 * xd * (theta * xd - ys)
            else:
                grad = 2 * xs * (theta * xs - ys) + 2 * theta * d * d
            theta = theta - lr * reduce(grad)
        trajectory[epoch] = theta
    return TrainResult(theta=theta, trajectory=trajectory, deltas=deltas)


def _ols_epoch_map(
    x: np.ndarray, y: np.ndarray, lr: float, update_mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` such that one OLS epoch is ``theta -> a theta + b`` for each column of ``x``, ``y``."""
    if update_mode == "batch":
        return 1 - 2 * lr * np.mean(x * x, axis=0), 2 * lr * np.mean(x * y, axis=0)
    a = np.ones(x.shape[1])
    b = np.zeros(x.shape[1])
    for xi, yi in zip(x, y, strict=True):  # theta <- theta - lr * 2 xi (xi theta - yi)
        c = 1 - 2 * lr * xi * xi
        a, b = c * a, c * b + 2 * lr * xi * yi
    return a, b


def closed_form_for_run(method: str, x: np.ndarray, y: np.ndarray, deltas: np.ndarray | None) -> np.ndarray:
    """Table 1's estimate per column, with the perturbations a training used after its switch.

    ``x``, ``y``: ``(n, B)``; ``deltas``: ``(E, n, B)`` or None. The estimate is the minimiser of the
    method's loss summed over all ``E`` adversarial epochs.
    """
    if method == "OLS" or deltas is None or deltas.shape[0] == 0:
        return theta_ols(x, y, axis=0)
    E = deltas.shape[0]
    shape = (E * x.shape[0], x.shape[1])
    xt = np.broadcast_to(x, deltas.shape).reshape(shape)
    yt = np.broadcast_to(y, deltas.shape).reshape(shape)
    return closed_form_theta(method, xt, yt, deltas.reshape(shape), axis=0)


# --------------------------------------------------------------------------- the study


def run_study(
    theta: float = 0.5,
    noise_sigmas: Sequence[float] = (0.01, 0.1),
    epochs: int = 2000,
    switch_epoch: int = 1750,
    lr: float = 0.005,
    runs: int = 25,
    n_points: int = 100,
    steps: int = 3,
    epsilon: float = 0.1,
    step_size: float = 1.0,
    init_std: float = 0.01,
    x_low: float = -1.0,
    x_high: float = 1.0,
    update_mode: str = "sample",
    seed: int = 0,
) -> pd.DataFrame:
    """All runs of the study: one row per (sigma, method, run) with the trained and closed-form theta.

    Noise levels are stacked into one batch, so each method is one vectorised :func:`train` call.
    """
    seeds = run_seeds(runs, seed)
    sigmas = [float(s) for s in noise_sigmas]
    xs, ys = zip(*(make_data(seeds, n_points, theta, s, x_low, x_high) for s in sigmas), strict=True)
    x, y = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
    col_seeds = seeds * len(sigmas)
    frames = []
    for method in METHODS:
        res = train(
            x,
            y,
            method,
            epochs=epochs,
            switch_epoch=switch_epoch,
            lr=lr,
            steps=steps,
            epsilon=epsilon,
            step_size=step_size,
            init_std=init_std,
            seeds=col_seeds,
            update_mode=update_mode,
        )
        closed = closed_form_for_run(method, x, y, res.deltas)
        abs_delta = np.abs(res.deltas).mean(axis=(0, 1)) if res.deltas is not None else np.zeros(x.shape[1])
        frames.append(
            pd.DataFrame(
                {
                    "sigma": np.repeat(sigmas, runs),
                    "method": method,
                    "run": list(range(runs)) * len(sigmas),
                    "seed": col_seeds,
                    "theta": res.theta,
                    "theta_closed_form": closed,
                    "theta_ols_closed_form": theta_ols(x, y, axis=0),
                    "theta_at_switch": res.trajectory[switch_epoch],
                    "mean_abs_delta": abs_delta,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df["method"] = pd.Categorical(df["method"], categories=list(METHODS), ordered=True)
    return df.sort_values(["sigma", "method", "run"], kind="stable").reset_index(drop=True)


def summarise(runs: pd.DataFrame, theta: float = 0.5, digits: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of our study: per (sigma, method) mean ± sd of trained and closed-form theta.

    Returns (numeric frame, display frame).
    """
    numeric, display = [], []
    for (sigma, method), grp in runs.groupby(["sigma", "method"], sort=True, observed=True):
        t_mean, t_sd, n = mean_sd(grp["theta"])
        c_mean, c_sd, _ = mean_sd(grp["theta_closed_form"])
        gap = float((grp["theta"] - grp["theta_closed_form"]).abs().max())
        numeric.append(
            {
                "sigma": sigma,
                "method": method,
                "theta_mean": t_mean,
                "theta_sd": t_sd,
                "closed_form_mean": c_mean,
                "closed_form_sd": c_sd,
                "max_abs_gap": gap,
                "theta_true": theta,
                "n_runs": n,
            }
        )
        display.append(
            {
                "sigma": f"{sigma:g}",
                "method": method,
                "theta trained": format_mean_sd(t_mean, t_sd, n, digits),
                "theta closed form": format_mean_sd(c_mean, c_sd, n, digits),
                "max gap": f"{gap:.1e}",
                "runs": str(n),
            }
        )
    return pd.DataFrame(numeric), pd.DataFrame(display)


def write_table1(runs: pd.DataFrame, stem: str | Path, theta: float = 0.5) -> list[Path]:
    """``{stem}.csv`` (numbers), ``.md`` and ``.tex`` (mean ± sd strings)."""
    numeric, display = summarise(runs, theta)
    caption = (
        f"Toy study (Table 1): theta of y = {theta:g} x + noise (noise sd sigma) estimated by one neuron "
        "trained with OLS, PGD-AT and LDS (mean and sd over runs), beside Table 1's closed-form estimate "
        "evaluated on each run's data and perturbations; max gap: largest absolute difference between "
        "trained and closed-form theta over runs."
    )
    return write_display_table(numeric, display, stem, caption)


def gaussian_kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``grid`` (Scott's bandwidth; numpy only)."""
    values = np.asarray(values, float)
    sd = values.std(ddof=1) if values.size > 1 else 0.0
    bw = max(sd * values.size ** (-1 / 5), 1e-12 + 1e-3 * max(abs(values.mean()), 1e-3))
    z = (np.asarray(grid, float)[:, None] - values[None, :]) / bw
    return np.exp(-0.5 * z * z).sum(axis=1) / (values.size * bw * np.sqrt(2 * np.pi))


def plot_distributions(runs: pd.DataFrame, stem: str | Path, theta: float = 0.5) -> list[Path]:
    """Figure 1: density of trained theta per method (KDE, runs as ticks below), one panel per noise level.

    Writes ``{stem}.png`` and ``{stem}.pdf``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    sigmas = sorted(runs["sigma"].unique())
    colors = {"OLS": "tab:gray", "PGD-AT": "tab:red", "LDS": "tab:blue"}
    fig, axes = plt.subplots(1, len(sigmas), figsize=(5.2 * len(sigmas), 3.8), squeeze=False)
    for k, (ax, sigma) in enumerate(zip(axes[0], sigmas, strict=True)):
        sub = runs[runs["sigma"] == sigma]
        values = np.concatenate([sub["theta"].to_numpy(), [theta]])
        lo, hi = values.min(), values.max()
        pad = 0.15 * (hi - lo) if hi > lo else 1e-3
        grid = np.linspace(lo - pad, hi + pad, 400)
        present = [m for m in METHODS if (sub["method"] == m).any()]
        peak = 0.0
        for method in present:
            vals = sub.loc[sub["method"] == method, "theta"].to_numpy()
            dens = gaussian_kde(vals, grid)
            peak = max(peak, dens.max())
            sd = vals.std(ddof=1) if vals.size > 1 else 0.0
            label = f"{method}: {vals.mean():.4f} ± {sd:.4f}"
            ax.fill_between(grid, dens, color=colors[method], alpha=0.2, linewidth=0)
            ax.plot(grid, dens, color=colors[method], linewidth=1.6, label=label)
        for j, method in enumerate(present):  # one tick per run, one row per method, below the curves
            vals = sub.loc[sub["method"] == method, "theta"].to_numpy()
            y0 = -(0.05 + 0.06 * j) * peak
            ax.plot(vals, np.full(vals.size, y0), "|", color=colors[method], markersize=7, alpha=0.8)
        ax.axvline(theta, color="black", linestyle="--", linewidth=1.2, label=f"true θ = {theta:g}")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_ylim(-(0.08 + 0.06 * len(present)) * peak, 1.3 * peak)
        ax.set_xlim(grid[0], grid[-1])
        ax.set_title(f"({'abcdefgh'[k % 8]}) σ = {sigma:g}")
        ax.set_xlabel("estimated θ")
        ax.set_ylabel(f"density over {sub['run'].nunique()} runs")
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, stem)
