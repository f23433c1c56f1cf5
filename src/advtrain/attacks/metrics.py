"""Summary numbers of an attack run, as TextAttack 0.3.11's ``AttackLogManager.log_summary`` defines them.

On records (dicts with ``result_type`` in Successful / Failed / Skipped / Maximized, ``num_queries``,
``words_changed``, ``words_total``), following ``textattack/metrics/attack_metrics``:

- ``successful``: every result that is neither Failed nor Skipped (TextAttack counts Maximized as successful);
- ``attack_success_rate`` = successful / (successful + failed): NaN when nothing was attacked (TextAttack prints 0);
- ``original_accuracy`` = (total - skipped) / total; ``accuracy_under_attack`` = failed / total;
- ``avg_perturbed_word_pct``: mean of 100 * words_changed / words_total over successful results with a change;
- ``avg_words_per_input``: mean words_total over all results;
- ``avg_num_queries``: mean num_queries over results that were not skipped.

TextAttack reports the rates in percent rounded to 2 decimals; here rates are fractions in [0, 1] and nothing is
rounded. ``successful_over_total`` (successful / total) is the paper's wording of ASR ("successful attacks to the
number of samples"), kept alongside for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RESULT_TYPES = ("Successful", "Failed", "Skipped", "Maximized")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise(records: Iterable[dict]) -> dict:
    records = list(records)
    kinds = [r["result_type"] for r in records]
    unknown = set(kinds) - set(RESULT_TYPES)
    if unknown:
        raise ValueError(f"unknown result_type(s): {', '.join(sorted(unknown))}")
    total = len(records)
    failed = kinds.count("Failed")
    skipped = kinds.count("Skipped")
    maximized = kinds.count("Maximized")
    successful = total - failed - skipped
    attacked = successful + failed
    succeeded = [r for r in records if r["result_type"] not in ("Failed", "Skipped")]
    pct = [100.0 * r["words_changed"] / r["words_total"] for r in succeeded if r["words_total"]]
    return {
        "total": total,
        "successful": successful,
        "failed": failed,
        "skipped": skipped,
        "maximized": maximized,
        "attack_success_rate": successful / attacked if attacked else math.nan,
        "successful_over_total": successful / total if total else math.nan,
        "original_accuracy": (total - skipped) / total if total else math.nan,
        "accuracy_under_attack": failed / total if total else math.nan,
        "avg_perturbed_word_pct": _mean([p for p in pct if p > 0]),
        "avg_words_per_input": _mean([r["words_total"] for r in records]),
        "avg_num_queries": _mean([r["num_queries"] for r in records if r["result_type"] != "Skipped"]),
    }


#: The per-example fields :func:`outcomes` keeps (what the budget, effort and paired analyses read).
OUTCOME_FIELDS = ("index", "result_type", "num_queries", "words_changed", "words_total")


def outcomes(records: Iterable[dict]) -> dict[str, list]:
    """Each example's outcome, column by column (``{field: [value per record]}``, records in ``index`` order): a
    compact copy of the records without their texts, kept in the gathered summary."""
    records = sorted(records, key=lambda r: r["index"])
    out = {name: [r[name] for r in records] for name in OUTCOME_FIELDS}
    if records and all("query_budget" in r for r in records):  # a protocol's per-example budget (50 x words)
        out["query_budget"] = [r["query_budget"] for r in records]
    return out


def gather(shard_record_lists: Iterable[Iterable[dict]]) -> list[dict]:
    """The records of all shards in one list, ordered by ``index``; an index seen twice is an error."""
    records = [r for shard in shard_record_lists for r in shard]
    records.sort(key=lambda r: r["index"])
    seen = [r["index"] for r in records]
    duplicates = sorted({i for a, i in zip(seen, seen[1:], strict=False) if a == i})
    if duplicates:
        raise ValueError(f"example index(es) in more than one shard: {duplicates[:10]}")
    return records


def summaries_equal(a: dict, b: dict, tol: float = 1e-12) -> bool:
    """Equality of two summaries where NaN equals NaN."""
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) or isinstance(y, float):
            if not (math.isnan(x) and math.isnan(y)) and not math.isclose(x, y, rel_tol=tol, abs_tol=tol):
                return False
        elif x != y:
            return False
    return True


def json_safe(value):
    """NaN (e.g. an ASR with nothing attacked) as None, recursively, so summaries are valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
