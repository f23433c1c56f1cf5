"""Tables of the paper, ours beside the paper's: aggregation over seeds and csv/md/tex writers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain import paper

MISSING = "—"


def mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value, NaN for none) and count."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), sd, int(arr.size)


def format_mean_sd(mean: float, sd: float, n: int, digits: int = 2) -> str:
    if n == 0 or math.isnan(mean):
        return MISSING
    if n == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def format_value(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.{digits}f}"


def write_table(df: pd.DataFrame, stem: str | Path, caption: str | None = None) -> list[Path]:
    """Write ``df`` as ``{stem}.csv`` (machine-readable), ``{stem}.md`` and ``{stem}.tex`` (booktabs).

    The markdown and LaTeX versions are meant for people: pass a frame of display strings for them if the
    numeric frame is not what should be read. Returns the three paths.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    df.to_csv(paths[0], index=False)
    md = df.to_markdown(index=False, disable_numparse=True)  # keep "82.10" as written
    if caption:
        md = f"{caption}\n\n{md}"
    paths[1].write_text(md + "\n", encoding="utf-8")
    paths[2].write_text(to_latex(df, caption), encoding="utf-8")
    return paths


def write_display_table(
    numeric: pd.DataFrame, display: pd.DataFrame, stem: str | Path, caption: str | None = None
) -> list[Path]:
    """Numbers to ``{stem}.csv``; the formatted ``display`` frame to ``{stem}.md`` and ``{stem}.tex``."""
    paths = write_table(display, stem, caption)
    numeric.to_csv(paths[0], index=False)
    return paths


def to_latex(df: pd.DataFrame, caption: str | None = None) -> str:
    """A booktabs tabular (wrapped in a table float when a caption is given)."""
    latex = df.to_latex(index=False, escape=True, na_rep=MISSING)
    latex = latex.replace("±", r"$\pm$").replace(MISSING, "--")
    if caption:
        escaped = caption.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
        latex = f"\\begin{{table}}[t]\n\\centering\n\\caption{{{escaped}}}\n{latex}\\end{{table}}\n"
    return latex


# --------------------------------------------------------------------------- Table 4

TABLE4_COLUMNS = (
    # (our column, training dataset, evaluation key in the eval JSON, paper column)
    ("IMDB→IMDB", "IMDB", "in_distribution", "IMDB_on_IMDB"),
    ("IMDB→YELP", "IMDB", "YELP", "IMDB_on_YELP"),
    ("MR→MR", "MR", "in_distribution", "MR_on_MR"),
    ("MR→YELP", "MR", "YELP", "MR_on_YELP"),
)


def table4_accuracy(
    evals: Sequence[dict], methods: Sequence[str], ood_dataset: str = "YELP"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy (%) per method: ours (mean ± sd over seeds, n) beside the paper's.

    ``evals`` are the evaluate rule's JSON records: ``{"dataset", "method", "seed", "accuracy": {key: acc}}``
    with accuracies as fractions. Returns (numeric frame, display frame).
    """
    paper_df = paper.load("table4_accuracy").set_index("method")
    columns = [
        (label.replace("YELP", ood_dataset), train, key if key == "in_distribution" else ood_dataset, pcol)
        for label, train, key, pcol in TABLE4_COLUMNS
    ]
    numeric_rows, display_rows = [], []
    for method in methods:
        num = {"method": method}
        disp = {"method": method}
        for label, train, key, pcol in columns:
            accs = [
                100.0 * e["accuracy"][key]
                for e in evals
                if e["method"] == method and e["dataset"] == train and key in e["accuracy"]
            ]
            mean, sd, n = mean_sd(accs)
            paper_value = float(paper_df.loc[method, pcol]) if method in paper_df.index else math.nan
            num.update({f"{pcol}_mean": mean, f"{pcol}_sd": sd, f"{pcol}_n": n, f"{pcol}_paper": paper_value})
            disp[f"{label} (ours)"] = format_mean_sd(mean, sd, n)
            disp[f"{label} (paper)"] = format_value(paper_value)
        seeds = {e["seed"] for e in evals if e["method"] == method}
        num["seeds"] = len(seeds)
        disp["seeds"] = str(len(seeds))
        numeric_rows.append(num)
        display_rows.append(disp)
    return pd.DataFrame(numeric_rows), pd.DataFrame(display_rows)
