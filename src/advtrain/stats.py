"""Per-example statistics for the report: exact McNemar tests (per seed, pooled over seeds), Holm's correction,
and bootstrap intervals that resample examples within each seed (and, for a cell's interval, the seeds too).

Every model is evaluated and attacked on the same examples, so two models' outcomes pair example by example, and
seed s of a method pairs with seed s of the baseline (same data order and head initialisation).

Bootstrap resamples are drawn as indices, one set per (table, dataset, evaluation set or attack, seed) and shared by
every method: the generator of a seed's resamples is a function of that key and not of the method, so method A's
b-th resample holds the same examples as method B's (common random numbers). Identical per-example outcomes
therefore get identical intervals, and two methods' intervals differ only through their outcomes.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
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
        """A generator for one set of examples: a function of the seed and the key only, so an interval does not
        change when other cells are added or removed, and every method resampled under one key gets the same
        resamples."""
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


#: Resample indices are drawn in blocks of at most this many (resamples x examples), so that a 25,000-example test
#: set with 2,000 resamples (50 M indices) never sits in memory at once.
BLOCK = 1 << 22


def resample_blocks(n: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n examples as index arrays, in blocks (b x n) whose b add up to ``resamples``.

    The indices are a function of ``rng``'s state, n and ``resamples`` only: two callers with equal generators get the
    same resamples, whatever values they then read through the indices.
    """
    rows = max(1, BLOCK // max(n, 1))
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n), dtype=np.int32)


def ratio_replicates(numerator: np.ndarray, denominator: np.ndarray, resamples: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates (B x k) of sum(numerator[:, j]) / sum(denominator[:, j]), resampling the n examples
    (rows) jointly across the k columns. A replicate whose denominator is 0 is NaN."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    if numerator.ndim == 1:
        numerator, denominator = numerator[:, None], denominator[:, None]
    n, k = numerator.shape
    if n == 0:
        return np.full((resamples, k), np.nan)
    columns = np.hstack([numerator, denominator]).T
    # A constant column (the ones of a mean's denominator) sums to n times its value in every resample; the others
    # are gathered one contiguous column at a time (several times faster than gathering rows of k columns).
    constant = [bool((c == c[0]).all()) for c in columns]
    blocks = []
    for idx in resample_blocks(n, resamples, rng):
        blocks.append(np.column_stack([np.full(len(idx), n * c[0]) if const else c[idx].sum(axis=1)
                                       for c, const in zip(columns, constant, strict=True)]))
    sums = np.vstack(blocks)
    num, den = sums[:, :k], sums[:, k:]
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


def _by_seed(per_seed: Mapping | Sequence) -> list[tuple[object, object]]:
    """(seed, value) pairs of a mapping seed -> value, or of a list (its positions stand for the seeds)."""
    return sorted(per_seed.items()) if isinstance(per_seed, Mapping) else list(enumerate(per_seed))


def cell_interval(per_seed: Mapping[int, np.ndarray] | Sequence[np.ndarray], settings: Bootstrap,
                  *key) -> tuple[float, float]:
    """A table cell's interval: examples resampled within each seed (``per_seed`` maps each seed to its (n_s,)
    per-example values, whose mean is the cell's statistic), then seeds resampled. (NaN, NaN) without seeds.

    ``key`` names the examples (table, dataset, evaluation set), not the method: every method's seed s is resampled
    with the same indices, so identical outcomes give identical intervals.
    """
    runs = _by_seed(per_seed)
    if not runs:
        return math.nan, math.nan
    reps = [mean_replicates(v, settings.resamples, settings.rng(*key, "seed", seed)) for seed, v in runs]
    return percentile_interval(over_seeds(reps, settings.rng(*key, "seeds")), settings.confidence)


def paired_difference(pairs: Mapping[int, tuple[np.ndarray, np.ndarray]] | Sequence[tuple[np.ndarray, np.ndarray]],
                      settings: Bootstrap, *key) -> dict:
    """Mean over seeds of (mean of ``first`` - mean of ``second``), with a paired bootstrap interval: in every seed
    (a stratum) the examples are resampled together for both models; seeds are kept as they are.

    ``pairs``: per seed (a mapping seed -> pair, or a list in seed order), two equally long arrays of per-example
    values (e.g. 1 = correct). Values are the arrays' units (multiply by 100 before for percentage points). As in
    :func:`cell_interval`, ``key`` names the examples and a seed's indices are shared by every comparison on them.
    """
    runs = _by_seed(pairs)
    if not runs:
        return {"difference": math.nan, "low": math.nan, "high": math.nan}
    point, reps = [], []
    for seed, (first, second) in runs:
        first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
        if first.shape != second.shape:
            raise ValueError(f"paired outcomes differ in length: {first.shape} vs {second.shape}")
        point.append(first.mean() - second.mean())
        values = np.column_stack([first, second])
        r = ratio_replicates(values, np.ones_like(values), settings.resamples, settings.rng(*key, "seed", seed))
        reps.append(r[:, 0] - r[:, 1])
    low, high = percentile_interval(np.mean(np.vstack(reps), axis=0), settings.confidence)
    return {"difference": float(np.mean(point)), "low": low, "high": high}
