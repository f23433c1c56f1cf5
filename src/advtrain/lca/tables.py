"""Tables 5, 6 and 7 of the paper from the per-model LCA results, ours beside the paper's."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from advtrain import paper
from advtrain.lca.analysis import PAPER_TAGS
from advtrain.tables import format_mean_sd, format_value, mean_sd, seeds_label, to_latex, write_display_table


def _by_method(results: Sequence[dict], methods: Sequence[str]) -> dict[str, list[dict]]:
    return {m: sorted((r for r in results if r["method"] == m), key=lambda r: r["seed"]) for m in methods}


def _tag_row(result: dict, tag: str) -> dict | None:
    return next((row for row in result["association"] if row["tag"] == tag), None)


def table5(results: Sequence[dict], methods: Sequence[str], tags: Sequence[str] = PAPER_TAGS):
    """Match / total / % per tag and method (mean over seeds), the paper's beside; (numeric, display)."""
    paper_df = paper.load("table5_lca").set_index("pos")
    numeric, display = [], []
    for tag in tags:
        num, disp = {"tag": tag}, {"POS": tag}
        counts = {}
        for method, runs in _by_method(results, methods).items():
            rows = [r for r in (_tag_row(run, tag) for run in runs) if r is not None]
            matches, totals, percents = ([r[k] for r in rows] for k in ("match", "total", "percent"))
            pm, ps, n = mean_sd(percents)
            num.update({f"{method}_match": mean_sd(matches)[0], f"{method}_total": mean_sd(totals)[0],
                        f"{method}_percent_mean": pm, f"{method}_percent_sd": ps, f"{method}_n": n})
            disp[f"{method} match/total"] = (f"{matches[0]}/{totals[0]}" if n == 1 else
                                            f"{mean_sd(matches)[0]:.1f}/{mean_sd(totals)[0]:.1f}" if n else "—")
            disp[f"{method} %"] = format_mean_sd(pm, ps, n)
            counts[method] = n
            if tag in paper_df.index and f"{method}_match" in paper_df.columns:
                match, total = paper_df.loc[tag, f"{method}_match"], paper_df.loc[tag, f"{method}_total"]
                num.update({f"{method}_paper_match": float(match), f"{method}_paper_total": float(total),
                            f"{method}_paper_percent": 100.0 * match / total})
                disp[f"{method} paper"] = f"{int(match)}/{int(total)} ({100.0 * match / total:.2f})"
            else:
                num[f"{method}_paper_percent"] = math.nan
                disp[f"{method} paper"] = "—"
        disp["seeds"] = seeds_label(counts)
        numeric.append(num)
        display.append(disp)
    return pd.DataFrame(numeric), pd.DataFrame(display)


def table5_all_tags(results: Sequence[dict]) -> pd.DataFrame:
    """Every tag of every model (one row per method, seed and tag), for the full CSV."""
    rows = []
    for result in results:
        for row in result["association"]:
            rows.append({"method": result["method"], "seed": result["seed"], "tag": row["tag"],
                         "match": row["match"], "total": row["total"], "percent": row["percent"],
                         "test_words_with_tag": row["test_words_with_tag"],
                         "neurons": " ".join(row["neuron_names"]), "words": " ".join(row["words"])})
    return pd.DataFrame(rows)


def table6(results: Sequence[dict], methods: Sequence[str], tags: Sequence[str] = PAPER_TAGS) -> pd.DataFrame:
    """Words most related to each tag (first seed), **bold** where the word's usual training tag is the tag."""
    rows = []
    for tag in tags:
        row = {"POS": tag}
        for method, runs in _by_method(results, methods).items():
            found = _tag_row(runs[0], tag) if runs else None
            if found is None:
                row[method] = "—"
                continue
            usual = set(found["usual_tag_words"])
            row[method] = " ".join(f"**{w}**" if w in usual else w for w in found["words"])
        rows.append(row)
    return pd.DataFrame(rows)


def table7(results: Sequence[dict], methods: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy (%) of the probe on the top-ranked neurons only, and of the full probe, per method."""
    paper_df = paper.load("table7_ablation")
    numeric, display = [], []
    for method, runs in _by_method(results, methods).items():
        am, asd, n = mean_sd(100.0 * r["ablation_accuracy"] for r in runs)
        fm, fsd, _ = mean_sd(100.0 * r["probe_accuracy"] for r in runs)
        ref = float(paper_df[method].iloc[0]) if method in paper_df.columns else math.nan
        numeric.append({"method": method, "top_neurons": runs[0]["ablation_neurons"] if runs else None,
                        "ablation_mean": am, "ablation_sd": asd, "n": n, "paper": ref,
                        "all_neurons_mean": fm, "all_neurons_sd": fsd})
        display.append({"method": method, "top-neuron probe (ours)": format_mean_sd(am, asd, n),
                        "paper": format_value(ref), "all-neuron probe (ours)": format_mean_sd(fm, fsd, n),
                        "seeds": str(n)})
    return pd.DataFrame(numeric), pd.DataFrame(display)


def write_table6(df: pd.DataFrame, stem: str | Path, caption: str) -> None:
    """csv and md as they are; tex with the markdown bold turned into \\textbf."""
    write_display_table(df, df, stem, caption)
    tex = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", to_latex(df, caption))
    Path(stem).with_suffix(".tex").write_text(tex, encoding="utf-8")
