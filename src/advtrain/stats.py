"""Per-example statistics for the report: exact McNemar tests (per seed, pooled over seeds), Holm's correction,
and bootstrap intervals that resample examples within each seed (and, for a cell's interval, the seeds too).

Every model is evaluated and attacked on the same examples, so two models' outcomes pair example by example, and
seed s of a method pairs with seed s of the baseline (same data order and head initialisation).

Bootstrap resamples are drawn as counts: resampling n examples with replacement gives each *distinct* example
outcome (a row of per-example values) a multinomial count, and every statistic here is a ratio of sums, so drawing
``Multinomial(n, frequencies)`` over the distinct rows is the same resample as drawing n indices, at the cost of the
number of distinct rows (2 for correct/wrong, a handful for attack outcomes) instead of n.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bootstrap:
    """Settings of every bootstrap interval (config ``statistics``)."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0

    @classmethod
    def from_config(cls, settings: dict | None) -> Bootstrap:
        settings = settings or {}
        return cls(resamples=int(settings.get("bootstrap_resamples", cls.resamples)),
                   confidence=float(settings.get("confidence", cls.confidence)),
                   seed=int(settings.get("seed", cls.seed)))

    def rng(self, *key) -> np.random.Generator:
        """A generator for one cell: a function of the seed and the cell's key only, so a cell's interval does not
        change when other cells are added or removed."""
        return np.random.default_rng([self.seed, zlib.crc32("\0".join(map(str, key)).encode())])


# --------------------------------------------------------------------------- tests


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs ``b`` (first right, second wrong) and ``c`` (the
    reverse) are Binomial(b + c, 1/2) under the null hypothesis; p = min(1, 2 P(X <= min(b, c))). 1 when b + c = 0."""
    from scipy.stats import binom

    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(int(b), int(c)), n, 0.5)))


def discordant(first: np.ndarray, second: np.ndarray) -> tuple[int, int]:
    """(b, c): examples where only ``first`` is right, and where only ``second`` is right (boolean arrays)."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if first.shape != second.shape:
        raise ValueError(f"paired outcomes differ in length: {first.shape} vs {second.shape}")
    return int((first & ~second).sum()), int((~first & second).sum())


def stratified_mcnemar(tables: Sequence[tuple[int, int]]) -> dict:
    """The exact McNemar test pooled over strata (seeds): ``tables`` holds each stratum's discordant (b, c).

    Under the null hypothesis (in every stratum a discordant pair is equally likely to go either way) the pooled
    ``sum(b)`` is Binomial(sum(b + c), 1/2), whatever the strata sizes: this is the exact conditional form of the
    Cochran-Mantel-Haenszel test with one stratum per matched pair, whose chi-square is (b - c)^2 / (b + c).
    Returns the pooled b, c, p and each stratum's own exact p.
    """
    b = sum(int(t[0]) for t in tables)
    c = sum(int(t[1]) for t in tables)
    return {"b": b, "c": c, "p": mcnemar_exact(b, c), "p_per_stratum": [mcnemar_exact(*t) for t in tables]}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order; NaN stays NaN and does not count
    towards the number of tests."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# --------------------------------------------------------------------------- bootstrap


def resample_counts(rows: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap resamples of the n rows of ``rows`` (n x k) as counts per distinct row.

    Returns (distinct rows U x k, counts B x U): row b of the counts is one resample of n rows with replacement.
    """
    rows = np.asarray(rows, dtype=float)
    if rows.ndim == 1:
        rows = rows[:, None]
    n = len(rows)
    if n == 0:
        return rows, np.zeros((resamples, 0))
    distinct, frequency = np.unique(rows, axis=0, return_counts=True)
    counts = rng.multinomial(n, frequency / n, size=resamples)
    return distinct, counts


def ratio_replicates(numerator: np.ndarray, denominator: np.ndarray, resamples: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates (B x k) of sum(numerator[:, j]) / sum(denominator[:, j]), resampling the n examples
    (rows) jointly across the k columns. A replicate whose denominator is 0 is NaN."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    if numerator.ndim == 1:
        numerator, denominator = numerator[:, None], denominator[:, None]
    k = numerator.shape[1]
    distinct, counts = resample_counts(np.hstack([numerator, denominator]), resamples, rng)
    num = counts @ distinct[:, :k]
    den = counts @ distinct[:, k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def mean_replicates(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates (B,) of the mean of ``values`` (examples resampled)."""
    values = np.asarray(values, dtype=float)
    return ratio_replicates(values, np.ones_like(values), resamples, rng)[:, 0]


def over_seeds(per_seed: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Second stage of a two-stage bootstrap: replicate b draws len(per_seed) seeds with replacement and averages
    their b-th (example-level) replicates. One seed: its replicates unchanged."""
    matrix = np.vstack([np.asarray(r, dtype=float) for r in per_seed])  # seeds x B
    seeds, resamples = matrix.shape
    if seeds == 1:
        return matrix[0]
    drawn = rng.integers(0, seeds, size=(resamples, seeds))
    with warnings.catch_warnings():  # an all-NaN row is a NaN replicate, which percentile_interval leaves out
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(matrix[drawn, np.arange(resamples)[:, None]], axis=1)


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates left out; NaN when none is left)."""
    replicates = np.asarray(replicates, dtype=float)
    replicates = replicates[~np.isnan(replicates)]
    if replicates.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cell_interval(per_seed: Sequence[np.ndarray], settings: Bootstrap, *key) -> tuple[float, float]:
    """A table cell's interval: examples resampled within each seed (``per_seed`` are (n_s,) per-example values
    whose mean is the cell's statistic), then seeds resampled. (NaN, NaN) without seeds."""
    if not per_seed:
        return math.nan, math.nan
    rng = settings.rng(*key)
    reps = [mean_replicates(v, settings.resamples, rng) for v in per_seed]
    return percentile_interval(over_seeds(reps, rng), settings.confidence)


def paired_difference(pairs: Sequence[tuple[np.ndarray, np.ndarray]], settings: Bootstrap, *key) -> dict:
    """Mean over seeds of (mean of ``first`` - mean of ``second``), with a paired bootstrap interval: in every seed
    (a stratum) the examples are resampled together for both models; seeds are kept as they are.

    ``pairs``: per seed, two equally long arrays of per-example values (e.g. 1 = correct). Values are the arrays'
    units (multiply by 100 before for percentage points).
    """
    if not pairs:
        return {"difference": math.nan, "low": math.nan, "high": math.nan}
    rng = settings.rng(*key)
    point, reps = [], []
    for first, second in pairs:
        first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
        if first.shape != second.shape:
            raise ValueError(f"paired outcomes differ in length: {first.shape} vs {second.shape}")
        point.append(first.mean() - second.mean())
        values = np.column_stack([first, second])
        r = ratio_replicates(values, np.ones_like(values), settings.resamples, rng)
        reps.append(r[:, 0] - r[:, 1])
    low, high = percentile_interval(np.mean(np.vstack(reps), axis=0), settings.confidence)
    return {"difference": float(np.mean(point)), "low": low, "high": high}

