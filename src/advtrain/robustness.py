"""Robustness tables from per-example records: ASR against the query budget, attack effort, paired per-example
tests against the baseline, and how much the attacks changed the texts.

Inputs are what the workflow already writes: gathered attack summaries (with their per-example ``examples``
columns), the evaluate rule's per-example predictions, and the per-example validity checks
(:mod:`advtrain.attacks.validity`). Every function returns (numeric frame, display frame) like :mod:`advtrain.tables`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain.attacks import budget as budgets
from advtrain.attacks.validity import BOUNDS, describe
from advtrain.stats import (
    Bootstrap,
    discordant,
    holm,
    over_seeds,
    paired_difference,
    percentile_interval,
    ratio_replicates,
    stratified_mcnemar,
)
from advtrain.tables import (
    ATTACK_NAMES,
    MISSING,
    format_interval,
    format_mean_sd,
    format_value,
    mean_sd,
    round_bound,
    to_latex,
)

#: Points of the budget table, as fractions of the budget that was run.
BUDGET_FRACTIONS = (0.01, 0.1, 1.0)


def _cells(summaries: Sequence[dict]) -> list[tuple[str, str]]:
    """(attack, dataset) in the order the runs list them."""
    return list(dict.fromkeys((s["attack"], s["dataset"]) for s in summaries))


def _label(attack: str, names: dict[str, str] | None) -> str:
    return {**ATTACK_NAMES, **(names or {})}.get(attack, attack)


def _frame(summary: dict) -> pd.DataFrame:
    where = f"attack summary {summary['dataset']}/{summary['method']}/seed{summary['seed']}/{summary['attack']}"
    return budgets.outcome_frame(summary, where)


def run_budget(runs: Sequence[dict]) -> tuple[float, bool]:
    """(budget, limited): the query budget the runs had, or, for unlimited runs, the largest query count recorded
    (then the curves end there)."""
    limits = {s.get("query_budget") for s in runs}
    if len(limits) > 1:
        raise ValueError(f"runs of one attack with different query budgets: {sorted(map(str, limits))}")
    limit = limits.pop() if limits else None
    if limit:
        return float(limit), True
    most = max((max(_frame(s)["num_queries"], default=0) for s in runs), default=0)
    return float(max(most, 2)), False


# --------------------------------------------------------------------------- budget curves


def budget_curves(summaries: Sequence[dict]) -> pd.DataFrame:
    """Every run's curve (one row per step, see :func:`advtrain.attacks.budget.budget_curve`), long format."""
    frames = []
    for attack, dataset in _cells(summaries):
        runs = [s for s in summaries if s["attack"] == attack and s["dataset"] == dataset]
        limit, limited = run_budget(runs)
        for s in runs:
            f = _frame(s)
            curve = budgets.budget_curve(f["result_type"], f["num_queries"], limit)
            frames.append(curve.assign(dataset=dataset, attack=attack, method=s["method"], seed=s["seed"],
                                       valid_up_to=limit, budget_limited=limited))
    columns = ["dataset", "attack", "method", "seed", "budget", "successes", "asr", "accuracy_under_attack",
               "valid_up_to", "budget_limited"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, attack, method): the seeds' step curves on the union of their steps, averaged (and min/max)."""
    rows = []
    for (dataset, attack, method), group in curves.groupby(["dataset", "attack", "method"], sort=False):
        grid = np.unique(group["budget"])
        seeds = [g.sort_values("budget") for _, g in group.groupby("seed")]
        for column in ("asr", "accuracy_under_attack"):
            values = np.vstack([budgets.step_values(g, grid, column) for g in seeds])
            rows.append(pd.DataFrame({"dataset": dataset, "attack": attack, "method": method, "metric": column,
                                      "budget": grid, "mean": values.mean(axis=0), "low": values.min(axis=0),
                                      "high": values.max(axis=0), "seeds": len(seeds)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _auc_interval(runs: Sequence[dict], limit: float, bootstrap: Bootstrap, *key) -> tuple[float, float]:
    per_seed = []
    for s in sorted(runs, key=lambda s: s["seed"]):
        f = _frame(s)
        a, attacked = budgets.auc_terms(f["result_type"], f["num_queries"], limit)
        if attacked.sum():
            rng = bootstrap.rng(*key, "seed", s["seed"])
            per_seed.append(100.0 * ratio_replicates(a, attacked, bootstrap.resamples, rng)[:, 0])
    if not per_seed:
        return math.nan, math.nan
    return percentile_interval(over_seeds(per_seed, bootstrap.rng(*key, "seeds")), bootstrap.confidence)


def budget_table(summaries: Sequence[dict], methods: Sequence[str], bootstrap: Bootstrap,
                 attack_names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (attack, dataset, method): ASR (%) at 1%, 10% and 100% of the budget (at least 1 query), and the areas
    (%) under the ASR and accuracy-under-attack curves over log-budget, from 1 query to the budget (mean ± sd over
    seeds; the ASR area with its two-stage bootstrap interval)."""
    ci = f"{round(100 * bootstrap.confidence)}% CI"
    numeric, display = [], []
    for attack, dataset in _cells(summaries):
        cell = [s for s in summaries if s["attack"] == attack and s["dataset"] == dataset]
        limit, limited = run_budget(cell)
        for method in methods:
            runs = sorted((s for s in cell if s["method"] == method), key=lambda s: s["seed"])
            if not runs:
                continue
            num = {"attack": _label(attack, attack_names), "dataset": dataset, "method": method, "budget": limit,
                   "budget_limited": limited, "seeds": len(runs)}
            disp = {"attack": num["attack"], "dataset": dataset, "method": method,
                    "budget": f"{limit:g}" + ("" if limited else " (largest recorded)")}
            frames = [_frame(s) for s in runs]
            for fraction in BUDGET_FRACTIONS:
                q = max(1.0, limit * fraction)
                values = [budgets.step_values(budgets.budget_curve(f["result_type"], f["num_queries"], limit), [q])[0]
                          for f in frames]
                mean, sd, n = mean_sd(values)
                num[f"asr_at_{fraction:g}_budget"] = mean
                disp[f"ASR @ {fraction:.0%} budget"] = format_mean_sd(mean, sd, n, digits=1)
            areas = [budgets.auc(f["result_type"], f["num_queries"], limit) for f in frames]
            for key, label in (("auc_asr", "ASR area"), ("auc_accuracy_under_attack", "acc. under attack area")):
                mean, sd, n = mean_sd(a[key] for a in areas)
                num.update({f"{key}_mean": mean, f"{key}_sd": sd})
                disp[label] = format_mean_sd(mean, sd, n)
                if key == "auc_asr":
                    low, high = _auc_interval(runs, limit, bootstrap, "budget", attack, dataset)
                    num.update({"auc_asr_ci_low": round_bound(low, "low"),
                                "auc_asr_ci_high": round_bound(high, "high")})
                    disp[f"ASR area {ci}"] = format_interval(low, high)
            disp["seeds"] = str(len(runs))
            numeric.append(num)
            display.append(disp)
    return pd.DataFrame(numeric), pd.DataFrame(display)


# --------------------------------------------------------------------------- effort


def effort_table(summaries: Sequence[dict], methods: Sequence[str],
                 attack_names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Queries per example (median, p90) for successes and failures, pooled over seeds, and the failures that
    stopped at the budget: a high share means the model held because the attack ran out of queries."""
    numeric, display = [], []
    for attack, dataset in _cells(summaries):
        cell = [s for s in summaries if s["attack"] == attack and s["dataset"] == dataset]
        limit, limited = run_budget(cell)
        for method in methods:
            runs = [s for s in cell if s["method"] == method]
            if not runs:
                continue
            frames = pd.concat([_frame(s) for s in runs], ignore_index=True)
            # A protocol's budget per example (attacks.protocol textdefender: 50 x words) where the records have one.
            own = "query_budget" in frames and frames["query_budget"].notna().all()
            e = budgets.effort(frames["result_type"], frames["num_queries"],
                               frames["query_budget"] if own else limit if limited else None)
            numeric.append({"attack": _label(attack, attack_names), "dataset": dataset, "method": method,
                            "budget": limit if limited else math.nan, "seeds": len(runs), **e})
            counted = limited or own  # whether "failed at budget" means anything
            display.append({
                "attack": _label(attack, attack_names), "dataset": dataset, "method": method,
                "budget": "per example" if own else f"{limit:g}" if limited else "none",
                "successes": str(e["successes"]),
                "queries (success) median / p90": _pair(e["success_queries_median"], e["success_queries_p90"]),
                "failures": str(e["failures"]),
                "queries (failure) median / p90": _pair(e["failure_queries_median"], e["failure_queries_p90"]),
                "failed at budget (% of attacked)": (f"{e['failures_at_budget']} ({format_value(e['failures_at_budget_pct'], 1)})"
                                                     if counted else MISSING),
                "skipped": str(e["skipped"]), "seeds": str(len(runs)),
            })
    return pd.DataFrame(numeric), pd.DataFrame(display)


def _pair(a: float, b: float) -> str:
    return MISSING if math.isnan(a) else f"{a:g} / {b:g}"


# --------------------------------------------------------------------------- paired per-example tests


def paired_example_tests(
    correct: dict[tuple[str, str, int], dict[str, np.ndarray]],
    summaries: Sequence[dict],
    methods: Sequence[str],
    baseline: str,
    bootstrap: Bootstrap,
    datasets: Sequence[str] | None = None,
    attack_names: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each method against ``baseline`` on the same examples, seed s against seed s.

    Outcomes per example: correct or not (clean accuracy on the in-distribution test split and each ood set, from
    ``correct`` = ``{(dataset, method, seed): {split: bool array}}``), and robust under each attack or not (the attack
    failed on a correctly classified example: accuracy under attack). Per row: both rates (mean over seeds), the
    difference in percentage points with a paired bootstrap interval (examples resampled within each seed, seeds as
    strata), the discordant counts pooled over seeds, the exact McNemar p-value pooled over seeds
    (:func:`advtrain.stats.stratified_mcnemar`) and Holm's adjustment over every row of the table.
    """
    if datasets is None:
        datasets = list(dict.fromkeys([k[0] for k in correct] + [s["dataset"] for s in summaries]))
    rows = []
    for dataset in datasets:
        metrics: list[tuple[str, str, dict[tuple[str, int], np.ndarray]]] = []
        splits = list(dict.fromkeys(split for (d, _, _), v in correct.items() if d == dataset for split in v))
        for split in splits:
            outcomes = {(m, seed): np.asarray(v[split], dtype=bool) for (d, m, seed), v in correct.items()
                        if d == dataset and split in v}
            name = f"accuracy ({dataset} test)" if split == "in_distribution" else f"accuracy ({split})"
            metrics.append((name, split, outcomes))
        for attack in dict.fromkeys(s["attack"] for s in summaries if s["dataset"] == dataset):
            outcomes = {}
            for s in summaries:
                if s["dataset"] == dataset and s["attack"] == attack:
                    f = _frame(s).sort_values("index")
                    outcomes[(s["method"], s["seed"])] = pd.Series((f["result_type"] == "Failed").to_numpy(),
                                                                   index=f["index"].to_numpy())
            metrics.append((f"accuracy under {_label(attack, attack_names)}", attack, outcomes))
        for name, evaluated, outcomes in metrics:
            for method in methods:
                if method == baseline:
                    continue
                seeds = sorted(seed for m, seed in outcomes if m == method and (baseline, seed) in outcomes)
                if not seeds:
                    continue
                pairs = [_aligned(outcomes[(method, seed)], outcomes[(baseline, seed)]) for seed in seeds]
                test = stratified_mcnemar([discordant(x, y) for x, y in pairs])
                # Keyed by the examples (not the methods): every comparison on them shares a seed's resamples.
                diff = paired_difference({seed: (100.0 * x, 100.0 * y) for seed, (x, y) in zip(seeds, pairs,
                                                                                               strict=True)},
                                         bootstrap, "paired", dataset, evaluated)
                rows.append({"dataset": dataset, "metric": name, "evaluated_on": evaluated, "method": method,
                             "baseline": baseline, "seeds": len(seeds), "examples": len(pairs[0][0]),
                             "method_pct": float(np.mean([100.0 * x.mean() for x, _ in pairs])),
                             "baseline_pct": float(np.mean([100.0 * y.mean() for _, y in pairs])),
                             "difference": diff["difference"], "ci_low": round_bound(diff["low"], "low"),
                             "ci_high": round_bound(diff["high"], "high"),
                             "confidence": bootstrap.confidence, "method_only": test["b"],
                             "baseline_only": test["c"], "p_value": test["p"],
                             "p_per_seed": "; ".join(f"{p:.3g}" for p in test["p_per_stratum"])})
    numeric = pd.DataFrame(rows)
    if numeric.empty:
        return numeric, pd.DataFrame()
    numeric["p_holm"] = holm(numeric["p_value"].to_numpy())
    ci = f"{round(100 * bootstrap.confidence)}% CI"
    display = pd.DataFrame({
        "dataset": numeric["dataset"], "metric": numeric["metric"], "method": numeric["method"],
        "ours (%)": numeric["method_pct"].map(lambda v: f"{v:.2f}"),
        f"{baseline} (%)": numeric["baseline_pct"].map(lambda v: f"{v:.2f}"),
        f"− {baseline} (pp)": numeric["difference"].map(lambda v: f"{v:+.2f}"),
        ci: [format_interval(lo, hi, 2) for lo, hi in zip(numeric["ci_low"], numeric["ci_high"], strict=True)],
        f"only ours / only {baseline}": [f"{b} / {c}" for b, c in
                                         zip(numeric["method_only"], numeric["baseline_only"], strict=True)],
        "p (McNemar)": numeric["p_value"].map(format_p),
        "p (Holm)": numeric["p_holm"].map(format_p),
        "seeds × examples": [f"{s} × {n}" for s, n in zip(numeric["seeds"], numeric["examples"], strict=True)],
    })
    return numeric, display


def _aligned(first, second) -> tuple[np.ndarray, np.ndarray]:
    """Two models' outcomes on the same examples: arrays in row order (clean accuracy) or Series by example index
    (attacks: the records' ``index``)."""
    if isinstance(first, pd.Series):
        if not first.index.equals(second.index):
            raise ValueError("the two models were attacked on different examples (record indices differ)")
        return first.to_numpy(dtype=bool), second.to_numpy(dtype=bool)
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if first.shape != second.shape:
        raise ValueError(f"predictions on different test sets: {first.shape} vs {second.shape} examples")
    return first, second


def format_p(p: float) -> str:
    if p is None or math.isnan(p):
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------- validity


def validity_table(checks: Sequence[tuple[dict, pd.DataFrame]], methods: Sequence[str],
                   attack_names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (attack, dataset, method), pooled over seeds: words changed (mean, median, p90, max), the whole-text
    similarity (mean, 10th percentile), the share of adversarial examples outside the recipe's bounds, and the
    perplexity of the original and the adversarial texts under the causal LM (mean, as OpenAttack's "Avg. Fluency
    (ppl)", and median; NaN perplexities, texts of one token, skipped).

    ``checks``: (gathered summary, its validity frame from :func:`advtrain.attacks.validity.check`) per run.
    """
    numeric, display = [], []
    cells = list(dict.fromkeys((s["attack"], s["dataset"]) for s, _ in checks))
    for attack, dataset in cells:
        for method in methods:
            runs = [(s, f) for s, f in checks if s["attack"] == attack and s["dataset"] == dataset
                    and s["method"] == method]
            if not runs:
                continue
            f = pd.concat([frame for _, frame in runs], ignore_index=True)
            used_use = any("use" in (s.get("resources") or {}) for s, _ in runs)
            n = len(f)

            def share(column, frame=f):
                if column not in frame or frame[column].isna().all():
                    return math.nan
                values = frame[column].dropna().astype(bool)
                return 100.0 * values.mean() if len(values) else math.nan

            words = f["words_changed"].astype(float)
            sim = f["similarity"].astype(float)
            checked = int(f["similarity_checked"].fillna(False).astype(bool).sum()) if "similarity_checked" in f \
                else 0
            fluency = {side: (f[f"{side}_perplexity"].astype(float).dropna() if f"{side}_perplexity" in f
                              else pd.Series(dtype=float)) for side in ("original", "perturbed")}
            row = {"attack": _label(attack, attack_names), "dataset": dataset, "method": method,
                   "seeds": len(runs), "adversarial_examples": n,
                   "words_changed_mean": words.mean() if n else math.nan,
                   "words_changed_median": words.median() if n else math.nan,
                   "words_changed_p90": words.quantile(0.9) if n else math.nan,
                   "words_changed_max": words.max() if n else math.nan,
                   "changed_pct_mean": f["changed_pct"].astype(float).mean() if n else math.nan,
                   "similarity_mean": sim.mean() if n else math.nan,
                   "similarity_p10": sim.quantile(0.1) if n else math.nan,
                   "similarity_checked": checked,
                   "exceeds_similarity_pct": share("exceeds_similarity"),
                   "exceeds_modification_rate_pct": share("exceeds_modification_rate"),
                   "exceeds_edit_distance_pct": share("exceeds_edit_distance"),  # DeepWordBug's Levenshtein bound
                   "stopword_changed_pct": share("stopword_changed"),
                   "exceeds_any_pct": share("exceeds_any"),
                   "bounds_checked": describe(attack) if attack in BOUNDS else MISSING,
                   "attack_encoder": "USE" if used_use else "sentence_encoder",
                   "perplexity_original_mean": _stat(fluency["original"], "mean"),
                   "perplexity_original_median": _stat(fluency["original"], "median"),
                   "perplexity_adversarial_mean": _stat(fluency["perturbed"], "mean"),
                   "perplexity_adversarial_median": _stat(fluency["perturbed"], "median")}
            numeric.append(row)
            display.append({
                "attack": row["attack"], "dataset": dataset, "method": method, "adversarial examples": str(n),
                "words changed mean (median, p90, max)": (
                    f"{row['words_changed_mean']:.2f} ({row['words_changed_median']:g}, "
                    f"{row['words_changed_p90']:g}, {row['words_changed_max']:g})" if n else MISSING),
                "% of words": format_value(row["changed_pct_mean"], 1),
                "similarity mean (p10)": (f"{row['similarity_mean']:.3f} ({row['similarity_p10']:.3f})"
                                          if n else MISSING),
                "beyond similarity bound %": _share_text(row["exceeds_similarity_pct"], checked, n),
                "beyond rate bound %": format_value(row["exceeds_modification_rate_pct"], 1),
                "beyond edit-distance bound %": format_value(row["exceeds_edit_distance_pct"], 1),
                "stopword changed %": format_value(row["stopword_changed_pct"], 1),
                "any bound %": format_value(row["exceeds_any_pct"], 1),
                "bounds checked": row["bounds_checked"] + (" (attack used USE)" if used_use else ""),
                "perplexity original mean (median)": _mean_median(row, "perplexity_original"),
                "perplexity adversarial mean (median)": _mean_median(row, "perplexity_adversarial"),
                "seeds": str(len(runs)),
            })
    return pd.DataFrame(numeric), pd.DataFrame(display)


def _stat(values: pd.Series, how: str) -> float:
    return float(getattr(values, how)()) if len(values) else math.nan


def _mean_median(row: dict, stem: str) -> str:
    mean, median = row[f"{stem}_mean"], row[f"{stem}_median"]
    return MISSING if math.isnan(mean) else f"{mean:.1f} ({median:.1f})"


def _share_text(pct: float, checked: int, n: int) -> str:
    if math.isnan(pct):
        return MISSING
    return f"{pct:.1f} (of {checked})" if checked != n else f"{pct:.1f}"


def adversarial_samples(checks: Sequence[tuple[dict, pd.DataFrame]], methods: Sequence[str], per_method: int,
                        bootstrap: Bootstrap, attack_names: dict[str, str] | None = None) -> pd.DataFrame:
    """A few adversarial examples per (attack, dataset, method), from the first seed, drawn with a fixed seed:
    original and adversarial text side by side, changed words in **bold** (with the words around them)."""
    rows = []
    cells = list(dict.fromkeys((s["attack"], s["dataset"]) for s, _ in checks))
    for attack, dataset in cells:
        for method in methods:
            runs = sorted(((s, f) for s, f in checks if s["attack"] == attack and s["dataset"] == dataset
                           and s["method"] == method), key=lambda r: r[0]["seed"])
            if not runs or per_method <= 0:
                continue
            summary, frame = runs[0]
            if frame.empty:
                continue
            rng = bootstrap.rng("samples", attack, dataset, method)
            picked = np.sort(rng.choice(len(frame), size=min(per_method, len(frame)), replace=False))
            for _, r in frame.iloc[picked].iterrows():
                rows.append({"attack": _label(attack, attack_names), "dataset": dataset, "method": method,
                             "seed": summary["seed"], "example": int(r["index"]),
                             "label → prediction": _labels(r),
                             "words changed": int(r["words_changed"]), "similarity": f"{r['similarity']:.3f}",
                             "original": r["original_marked"], "adversarial": r["perturbed_marked"]})
    columns = ["attack", "dataset", "method", "seed", "example", "label → prediction", "words changed",
               "similarity", "original", "adversarial"]
    return pd.DataFrame(rows, columns=columns)


def _labels(row) -> str:
    if "ground_truth" in row and "perturbed_output" in row and not pd.isna(row["ground_truth"]):
        return f"{int(row['ground_truth'])} → {int(row['perturbed_output'])}"
    return MISSING


def write_samples(samples: pd.DataFrame, stem, caption: str) -> list:
    """csv (texts as they are), md (pipes escaped so the table holds) and tex (bold as \\textbf)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    samples.to_csv(paths[0], index=False)
    md_frame = samples.astype(str).apply(lambda col: col.str.replace("|", r"\|", regex=False))
    body = md_frame.to_markdown(index=False, disable_numparse=True) if len(samples) else "(no adversarial examples)"
    paths[1].write_text(f"{caption}\n\n{body}\n", encoding="utf-8")
    tex = to_latex(samples.astype(str), caption)
    paths[2].write_text(re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", tex), encoding="utf-8")
    return paths
