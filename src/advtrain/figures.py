"""The robustness-generalisation trade-off figure: average ASR against accuracy per method, ours and the paper's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from advtrain import paper


def save_figure(fig, stem: str | Path) -> list[Path]:
    """``{stem}.png`` (150 dpi) and ``{stem}.pdf`` of ``fig``, which is closed; returns both paths."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def tradeoff_points(table4: pd.DataFrame, table2: pd.DataFrame, datasets: Sequence[str], ood: str = "YELP") -> pd.DataFrame:
    """One row per (dataset, method, source): average ASR (x), in-distribution and ood accuracy (y), in %.

    ``table4``/``table2`` are the numeric frames of Tables 4 and 2 (``*_mean`` columns are ours, ``*_paper`` the
    paper's); a method missing on either axis is left out.
    """
    t4 = table4.set_index("method")
    average = table2[table2["attack"] == "Average"].set_index("dataset")
    rows = []
    for dataset in datasets:
        if dataset not in average.index:
            continue
        for method in t4.index:
            for source, suffix in (("ours", "mean"), ("paper", "paper")):
                asr = average.loc[dataset].get(f"{method}_{suffix}", math.nan)
                acc_in = t4.loc[method].get(f"{dataset}_on_{dataset}_{suffix}", math.nan)
                acc_ood = t4.loc[method].get(f"{dataset}_on_{ood}_{suffix}", math.nan)
                if not math.isnan(asr) and not (math.isnan(acc_in) and math.isnan(acc_ood)):
                    rows.append({"dataset": dataset, "method": method, "source": source, "average_asr": asr,
                                 "in_distribution_accuracy": acc_in, f"{ood}_accuracy": acc_ood})
    return pd.DataFrame(rows)


#: Points of one panel closer than this share of the panel's span (on both axes) get one label: their labels, printed
#: apart, would overlap ("PGDFAT" for PGD-AT and FAT on one spot).
LABEL_NEIGHBOURHOOD = 0.03


def point_labels(points: pd.DataFrame, column: str) -> list[tuple[float, float, str]]:
    """(x, y, label) per group of coinciding points of one panel (x = average ASR, y = ``column``): the methods of a
    group joined by commas in one label, at the group's first point; the paper's points are marked "(paper)"."""
    rows = [(float(p["average_asr"]), float(p[column]),
             p["method"] if p["source"] == "ours" else f"{p['method']} (paper)")
            for _, p in points.iterrows() if not (math.isnan(p["average_asr"]) or math.isnan(p[column]))]
    if not rows:
        return []
    xs, ys = [r[0] for r in rows], [r[1] for r in rows]
    # Relative to the span, as the axes scale to it; at least 0.01 pp so that equal values join when the span is 0.
    near_x = max(LABEL_NEIGHBOURHOOD * (max(xs) - min(xs)), 0.01)
    near_y = max(LABEL_NEIGHBOURHOOD * (max(ys) - min(ys)), 0.01)
    groups: list[list[tuple[float, float, str]]] = []
    for row in rows:
        for group in groups:
            if abs(group[0][0] - row[0]) <= near_x and abs(group[0][1] - row[1]) <= near_y:
                group.append(row)
                break
        else:
            groups.append([row])
    return [(g[0][0], g[0][1], ", ".join(r[2] for r in g)) for g in groups]


def plot_tradeoff(points: pd.DataFrame, stem: str | Path, ood: str = "YELP") -> list[Path]:
    """Per dataset, two panels (in distribution, ood): ASR on x, accuracy on y; filled = ours, hollow = paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(points["dataset"])) or ["—"]
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 4 * len(datasets)), squeeze=False)
    methods = sorted(set(points["method"])) if len(points) else []
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    for row, dataset in enumerate(datasets):
        for col, (column, label) in enumerate((("in_distribution_accuracy", f"{dataset} accuracy (%)"),
                                               (f"{ood}_accuracy", f"{ood} accuracy (%)"))):
            ax = axes[row][col]
            sub = points[points["dataset"] == dataset] if len(points) else points
            for _, p in sub.iterrows():
                ours = p["source"] == "ours"
                ax.scatter(p["average_asr"], p[column], s=60, color=colours[p["method"]],
                           facecolors=colours[p["method"]] if ours else "none", marker="o" if ours else "s")
            for x, y, text in point_labels(sub, column):
                ax.annotate(text, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
            ax.set_xlabel("average attack success rate (%), lower = more robust")
            ax.set_ylabel(label)
            ax.set_title(f"trained on {dataset}")
            ax.grid(alpha=0.3)
    fig.suptitle("Robustness vs generalisation: ours (filled) and the paper's (hollow squares)")
    fig.tight_layout()
    return save_figure(fig, stem)


def paper_points(datasets: Sequence[str]) -> pd.DataFrame:
    """The paper's own (ASR, accuracy) points, for a figure without runs of ours."""
    t4 = paper.load("table4_accuracy").set_index("method")
    t2 = paper.load("table2_asr")
    rows = []
    for dataset in datasets:
        average = t2[(t2["attack"] == "Average") & (t2["dataset"] == dataset)]
        for method in t4.index:
            if method in average.columns:
                rows.append({"dataset": dataset, "method": method, "source": "paper",
                             "average_asr": float(average[method].iloc[0]),
                             "in_distribution_accuracy": float(t4.loc[method, f"{dataset}_on_{dataset}"]),
                             "YELP_accuracy": float(t4.loc[method, f"{dataset}_on_YELP"])})
    return pd.DataFrame(rows)


def plot_budget_curves(curves: pd.DataFrame, stem: str | Path, title: str, budget: float,
                       limited: bool = True) -> list[Path]:
    """ASR and accuracy under attack (%) against the query budget (log scale), one line per method.

    ``curves`` is :func:`advtrain.robustness.mean_curves` for one (dataset, attack): the mean over seeds as a step
    line, the seeds' range shaded when there are several. The x axis ends at ``budget``: nothing beyond it was run.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = list(dict.fromkeys(curves["method"])) if len(curves) else []
    for ax, (metric, label) in zip(axes, (("asr", "attack success rate (%)"),
                                          ("accuracy_under_attack", "accuracy under attack (%)")), strict=True):
        for i, method in enumerate(methods):
            sub = curves[(curves["method"] == method) & (curves["metric"] == metric)]
            colour = plt.cm.tab10(i % 10)
            ax.step(sub["budget"], sub["mean"], where="post", color=colour, label=f"{method} ({sub['seeds'].iloc[0]} seed(s))")
            if sub["seeds"].iloc[0] > 1:
                ax.fill_between(sub["budget"], sub["low"], sub["high"], step="post", color=colour, alpha=0.15)
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlim(1, budget * 1.05)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("query budget (model queries per example, log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    if methods:
        axes[0].legend(fontsize=8, loc="upper left")
    valid = f"valid up to the budget run ({budget:g} queries)" if limited else \
        f"no budget: up to the largest query count recorded ({budget:g})"
    fig.suptitle(f"{title}: success after q queries counts at every budget ≥ q; {valid}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)
