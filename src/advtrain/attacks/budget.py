"""Attack success as a function of the query budget, and the effort attacks took, from per-example outcomes.

An example whose attack succeeded after q model queries counts as a success at every budget >= q. The curve is
valid up to the budget that was run (``attacks.query_budget``; with no budget, up to the largest query count
recorded): beyond it nothing was tried. Below it, the curve at budget q is what the same run had reached after q
queries; a run stopped at q could in addition succeed on a candidate inside the batch of queries that crosses q,
so the curve is a lower bound on such a run's ASR (TextAttack truncates that batch and keeps its best result).

Outcomes are the ``examples`` columns of a gathered attack summary (:func:`advtrain.attacks.metrics.outcomes`):
``result_type`` (Successful / Failed / Skipped / Maximized, with Maximized counted as a success as TextAttack
does) and ``num_queries`` per example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

SUCCESS = ("Successful", "Maximized")


def outcome_frame(summary: dict, where: str = "attack summary") -> pd.DataFrame:
    """The per-example outcomes of a gathered summary as a frame (index, result_type, num_queries, ...)."""
    examples = summary.get("examples")
    if not examples:
        raise ValueError(f"{where}: no per-example `examples` (written by gather_attack since the budget analysis "
                         "was added); rerun its gather_attack job")
    return pd.DataFrame(examples)


def success_mask(result_types: Sequence[str]) -> np.ndarray:
    return np.isin(np.asarray(result_types, dtype=object), SUCCESS)


def attacked_mask(result_types: Sequence[str]) -> np.ndarray:
    return np.asarray(result_types, dtype=object) != "Skipped"


def budget_curve(result_types: Sequence[str], num_queries: Sequence[int], budget: float) -> pd.DataFrame:
    """ASR and accuracy under attack (%) as step functions of the query budget.

    One row per distinct query count at which an attack succeeded (the value holds from that budget up to the next
    row), then a last row at ``budget``; the first row is budget 1 (nothing succeeded before the first query).
    """
    types = np.asarray(result_types, dtype=object)
    queries = np.asarray(num_queries, dtype=float)
    total = len(types)
    success = success_mask(types)
    attacked = int(attacked_mask(types).sum())  # = the examples the model got right before the attack
    steps = np.unique(np.clip(queries[success], 1, budget)) if success.any() else np.array([])
    points = np.unique(np.concatenate([[1.0], steps, [float(budget)]]))
    reached = np.searchsorted(np.sort(np.clip(queries[success], 1, budget)), points, side="right")
    return pd.DataFrame({
        "budget": points,
        "successes": reached,
        "asr": 100.0 * reached / attacked if attacked else math.nan,
        "accuracy_under_attack": 100.0 * (attacked - reached) / total if total else math.nan,
    })


def step_values(curve: pd.DataFrame, budgets: Sequence[float], column: str = "asr") -> np.ndarray:
    """A curve's value at each of ``budgets`` (the step function read off its rows)."""
    position = np.searchsorted(curve["budget"].to_numpy(), np.asarray(budgets, dtype=float), side="right") - 1
    values = curve[column].to_numpy()
    return np.where(position >= 0, values[np.clip(position, 0, None)], np.nan)


def auc_terms(result_types: Sequence[str], num_queries: Sequence[int], budget: float) -> tuple[np.ndarray, ...]:
    """Per-example terms of the areas under the curves over log-budget, normalised by log(budget):

    AUC(ASR) = sum(a) / sum(attacked), AUC(accuracy under attack) = sum(attacked - a) / n, with
    a_i = 1 - log(q_i) / log(budget) for a success after q_i queries (the share of [1, budget] on the log scale
    where it counts) and 0 otherwise; attacked_i = 1 unless the example was skipped (misclassified before the
    attack). Both areas are in [0, 1]: the mean height of the curve over log-budget. Returns (a, attacked).
    """
    if not budget or budget <= 1:
        raise ValueError(f"the area over log-budget needs a query budget above 1 (got {budget})")
    types = np.asarray(result_types, dtype=object)
    queries = np.clip(np.asarray(num_queries, dtype=float), 1, budget)
    success = success_mask(types)
    a = np.where(success, 1.0 - np.log(queries) / math.log(budget), 0.0)
    return a, attacked_mask(types).astype(float)


def auc(result_types: Sequence[str], num_queries: Sequence[int], budget: float) -> dict[str, float]:
    """Areas (%) under the ASR and accuracy-under-attack curves over log-budget, from 1 query to ``budget``."""
    a, attacked = auc_terms(result_types, num_queries, budget)
    return {"auc_asr": float(100.0 * a.sum() / attacked.sum()) if attacked.sum() else math.nan,
            "auc_accuracy_under_attack": float(100.0 * (attacked - a).sum() / len(a)) if len(a) else math.nan}


def effort(result_types: Sequence[str], num_queries: Sequence[int],
           budget: float | Sequence[float] | None) -> dict:
    """Queries per example (median, 90th percentile) for successes and failures, and the failures that stopped at
    the budget (``num_queries >= budget``): a model that is "robust" mostly through those ran out the budget.
    ``budget``: one for every example, one per example (a protocol's, e.g. TextDefender's 50 x words), or None."""
    types = np.asarray(result_types, dtype=object)
    queries = np.asarray(num_queries, dtype=float)
    success = success_mask(types)
    failed = types == "Failed"

    def spread(mask):
        values = queries[mask]
        if values.size == 0:
            return math.nan, math.nan
        return float(np.median(values)), float(np.quantile(values, 0.9))

    limited = budget is not None and (not np.isscalar(budget) or bool(budget))
    at_budget = int((failed & (queries >= np.asarray(budget, dtype=float))).sum()) if limited else 0
    attacked = int(attacked_mask(types).sum())
    s_median, s_p90 = spread(success)
    f_median, f_p90 = spread(failed)
    return {"attacked": attacked, "skipped": int((types == "Skipped").sum()),
            "successes": int(success.sum()), "success_queries_median": s_median, "success_queries_p90": s_p90,
            "failures": int(failed.sum()), "failure_queries_median": f_median, "failure_queries_p90": f_p90,
            "failures_at_budget": at_budget,
            "failures_at_budget_pct": 100.0 * at_budget / attacked if attacked else math.nan}
