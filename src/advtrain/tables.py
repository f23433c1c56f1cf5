"""Tables of the paper, ours beside the paper's: aggregation over seeds and csv/md/tex writers."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain import paper
from advtrain.attacks.budget import attacked_mask, outcome_frame, success_mask
from advtrain.attacks.recipes import ATTACK_NAMES  # noqa: F401  (re-exported: the recipes' display names)
from advtrain.stats import Bootstrap, cell_interval, over_seeds, percentile_interval, ratio_replicates

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


def write_table(df: pd.DataFrame, stem: str | Path, caption: str | None = None,
                notes: Sequence[str] = ()) -> list[Path]:
    """Write ``df`` as ``{stem}.csv`` (machine-readable), ``{stem}.md`` and ``{stem}.tex`` (booktabs).

    The markdown and LaTeX versions are meant for people: pass a frame of display strings for them if the
    numeric frame is not what should be read. ``notes`` are printed once under the table (md and tex), for text
    too long for a cell. Returns the three paths.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    df.to_csv(paths[0], index=False)
    md = df.to_markdown(index=False, disable_numparse=True)  # keep "82.10" as written
    if caption:
        md = f"{caption}\n\n{md}"
    if notes:
        md += "\n\nNotes:\n" + "\n".join(f"- {note}" for note in notes)
    paths[1].write_text(md + "\n", encoding="utf-8")
    paths[2].write_text(to_latex(df, caption, notes), encoding="utf-8")
    return paths


def write_display_table(
    numeric: pd.DataFrame, display: pd.DataFrame, stem: str | Path, caption: str | None = None,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Numbers to ``{stem}.csv``; the formatted ``display`` frame (and ``notes``) to ``{stem}.md`` and
    ``{stem}.tex``."""
    paths = write_table(display, stem, caption, notes)
    numeric.to_csv(paths[0], index=False)
    return paths


#: LaTeX's special characters in running text (a caption or a note).
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "†": r"\textdagger{}"}


def _tex_text(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def to_latex(df: pd.DataFrame, caption: str | None = None, notes: Sequence[str] = ()) -> str:
    """A booktabs tabular (wrapped in a table float when a caption or notes are given; the notes under it)."""
    latex = df.to_latex(index=False, escape=True, na_rep=MISSING)
    latex = latex.replace("±", r"$\pm$").replace("†", r"\textdagger{}").replace(MISSING, "--")
    if caption or notes:
        head = f"\\caption{{{_tex_text(caption)}}}\n" if caption else ""
        tail = "".join(f"\\par\\footnotesize {_tex_text(note)}\n" for note in notes)
        latex = f"\\begin{{table}}[t]\n\\centering\n{head}{latex}{tail}\\end{{table}}\n"
    return latex


# --------------------------------------------------------------------------- Table 4


#: Decimals of an interval bound in a table's csv: a percentile of bootstrap replicates interpolates between two of
#: them (53.025), a precision the resampling does not have.
BOUND_DIGITS = 2


def round_bound(value: float, side: str) -> float:
    """An interval's ``"low"`` or ``"high"`` bound to :data:`BOUND_DIGITS` decimals, rounded outwards so that the
    printed interval still holds the computed one (and the point estimate inside it)."""
    if math.isnan(value):
        return value
    scaled = round(float(value) * 10**BOUND_DIGITS, 6)  # 53.0 * 100 is 5300.000000000001: not a reason to round up
    return (math.floor(scaled) if side == "low" else math.ceil(scaled)) / 10**BOUND_DIGITS


def format_interval(low: float, high: float, digits: int = 1) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return MISSING
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def table4_columns(datasets: Sequence[str], ood_datasets: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(label, training dataset, evaluation key in the eval JSON, column stem) per column: every training dataset in
    distribution and on every ood dataset. The stem ``{train}_on_{evaluated}`` is the paper's column name too."""
    columns = []
    for train in datasets:
        columns.append((f"{train}→{train}", train, "in_distribution", f"{train}_on_{train}"))
        columns += [(f"{train}→{ood}", train, ood, f"{train}_on_{ood}") for ood in ood_datasets]
    return columns


def table4_accuracy(
    evals: Sequence[dict], methods: Sequence[str], ood_datasets: Sequence[str] | str | None = None,
    datasets: Sequence[str] | None = None, correct: dict | None = None, bootstrap: Bootstrap | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy (%) per method on every (training dataset, evaluation set): ours (mean ± sd over seeds, n) beside
    the paper's, which is missing ("—") for a dataset or method the paper does not have.

    ``evals`` are the evaluate rule's JSON records: ``{"dataset", "method", "seed", "accuracy": {key: acc}}``
    with accuracies as fractions. ``datasets`` / ``ood_datasets`` (default: those in ``evals``) give the columns.
    With ``correct`` (``{(dataset, method, seed): {key: per-example correctness}}``, the evaluate rule's predictions)
    and ``bootstrap``, each cell gets a percentile interval: examples resampled within each seed, then seeds
    (``{stem}_ci_low`` / ``_ci_high``). Returns (numeric frame, display frame).
    """
    paper_df = paper.load("table4_accuracy").set_index("method")
    if datasets is None:
        datasets = list(dict.fromkeys(e["dataset"] for e in evals))
    if isinstance(ood_datasets, str):
        ood_datasets = [ood_datasets]
    if ood_datasets is None:
        ood_datasets = list(dict.fromkeys(k for e in evals for k in e["accuracy"] if k != "in_distribution"))
    intervals = bootstrap is not None and correct is not None
    numeric_rows, display_rows = [], []
    for method in methods:
        num = {"method": method}
        disp = {"method": method}
        for label, train, key, stem in table4_columns(datasets, ood_datasets):
            runs = sorted((e for e in evals if e["method"] == method and e["dataset"] == train
                           and key in e["accuracy"]), key=lambda e: e["seed"])
            mean, sd, n = mean_sd(100.0 * e["accuracy"][key] for e in runs)
            has_paper = method in paper_df.index and stem in paper_df.columns
            paper_value = float(paper_df.loc[method, stem]) if has_paper else math.nan
            num.update({f"{stem}_mean": mean, f"{stem}_sd": sd, f"{stem}_n": n, f"{stem}_paper": paper_value})
            disp[f"{label} (ours)"] = format_mean_sd(mean, sd, n)
            if intervals:
                per_seed = {e["seed"]: 100.0 * np.asarray(correct[(train, method, e["seed"])][key], dtype=float)
                            for e in runs if key in correct.get((train, method, e["seed"]), {})}
                # Keyed by the examples, not the method: every method's seed s is resampled alike.
                low, high = cell_interval(per_seed, bootstrap, "table4", train, key)
                num.update({f"{stem}_ci_low": round_bound(low, "low"),
                            f"{stem}_ci_high": round_bound(high, "high")})
                disp[f"{label} {round(100 * bootstrap.confidence)}% CI"] = format_interval(low, high)
            disp[f"{label} (paper)"] = format_value(paper_value)
        seeds = {e["seed"] for e in evals if e["method"] == method}
        num["seeds"] = len(seeds)
        disp["seeds"] = str(len(seeds))
        numeric_rows.append(num)
        display_rows.append(disp)
    return pd.DataFrame(numeric_rows), pd.DataFrame(display_rows)


def seeds_label(counts: dict[str, int]) -> str:
    """The number of seeds behind a row: one number when every method has it, else per method."""
    values = set(counts.values())
    if len(values) == 1:
        return str(values.pop())
    return ", ".join(f"{method} {n}" for method, n in counts.items())


#: The two ASR denominators: TextAttack's successful / (successful + failed), which Table 2 shows (the reference
#: evaluation, TextAttack-A2T's evaluate.py, attacks only correctly classified examples, where the two agree), and
#: the paper's wording, successful / all sampled examples (misclassified ones count as unbroken), in the csv as
#: ``<method>_over_total_*``.
ASR_KEYS = {"attack_success_rate": "", "successful_over_total": "_over_total"}


def _asr_percent(summary: dict, key: str = "attack_success_rate") -> float:
    value = summary.get(key)
    return math.nan if value is None else 100.0 * float(value)


def asr_interval(runs: Sequence[dict], bootstrap: Bootstrap, *key) -> tuple[float, float]:
    """Percentile interval (%) of the ASR of one Table 2 cell: ``runs`` are its gathered summaries, one per (seed,
    attack). Within each seed the examples are resampled (jointly across the attacks, which share the sample) and the
    seed's ASR, averaged over its attacks, is recomputed; then the seeds are resampled. A seed where nothing was
    attacked is left out, as in the point estimate."""
    by_seed: dict[int, list[dict]] = {}
    for run in runs:
        by_seed.setdefault(run["seed"], []).append(run)
    per_seed = []
    for seed in sorted(by_seed):
        frames = [outcome_frame(r, f"{r['dataset']}/{r['method']}/seed{seed}/{r['attack']}").set_index("index")
                  for r in by_seed[seed]]
        common = sorted(set.intersection(*(set(f.index) for f in frames)))
        types = [f.loc[common, "result_type"] for f in frames]
        success = np.column_stack([success_mask(t) for t in types])
        attacked = np.column_stack([attacked_mask(t) for t in types])
        if not attacked.any():
            continue
        replicates = ratio_replicates(success, attacked, bootstrap.resamples, bootstrap.rng(*key, "seed", seed))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate with nothing attacked anywhere: NaN
            per_seed.append(100.0 * np.nanmean(replicates, axis=1))
    if not per_seed:
        return math.nan, math.nan
    return percentile_interval(over_seeds(per_seed, bootstrap.rng(*key, "seeds")), bootstrap.confidence)


def substitution_names(summaries: Sequence[dict]) -> dict[str, str]:
    """A short name per distinct substitution the attack runs reported, in order of first appearance: "[1]
    word_embedding" (a number, then what was replaced: the text before its first colon). The full text, with its
    paths, is too long for a table cell; :func:`substitution_notes` gives it once per name, under the table."""
    texts = dict.fromkeys(n for s in summaries for n in s.get("substitutions") or [])
    return {text: f"[{i}] {text.split(':', 1)[0].strip()}" for i, text in enumerate(texts, 1)}


def substitution_notes(summaries: Sequence[dict]) -> list[str]:
    """The notes under Table 2: "[1] <the substitution's full text>", one per short name in its cells."""
    return [f"{name.split(' ', 1)[0]} {text}" for text, name in substitution_names(summaries).items()]


def table2_asr(
    summaries: Sequence[dict], methods: Sequence[str], attack_names: dict[str, str] | None = None,
    bootstrap: Bootstrap | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attack success rate (%): one row per (attack, dataset) plus an Average row per dataset; one column per method.

    ``summaries`` are the gathered attack JSON records: ``{"dataset", "method", "seed", "attack",
    "attack_success_rate" (fraction or None), "successful_over_total", "substitutions": [...]}``. Ours is mean ± sd
    over seeds of ``attack_success_rate`` (successful / (successful + failed)); the numeric frame also has
    ``successful_over_total`` as ``<method>_over_total_{mean,sd,n}`` (see :data:`ASR_KEYS`). The Average row
    averages each seed's ASR over the attacks first. The paper's value (``paper.load("table2_asr")``) sits beside
    ours, and the ``substitutions`` column lists every departure from the published recipe the runs reported (the full
    text in the numeric frame; in the display frame a short name, see :func:`substitution_names`).
    The paper's Average is over its four attacks; when other attacks ran, the paper's side of the Average row is the
    mean of its values for the attacks that ran (missing if one is not in the paper), so that both sides average
    the same attacks; ``averaged_over`` names them, and the display label reads e.g. "Average (TextFooler)".
    With ``bootstrap``, each of our cells also gets a percentile interval from the summaries' per-example outcomes
    (``{method}_ci_low`` / ``_ci_high``; see :func:`asr_interval`). Returns (numeric frame, display frame).
    """
    names = {**ATTACK_NAMES, **(attack_names or {})}
    paper_df = paper.load("table2_asr").set_index(["attack", "dataset"])
    attacks = list(dict.fromkeys(s["attack"] for s in summaries))
    datasets = list(dict.fromkeys(s["dataset"] for s in summaries))

    paper_attacks = [a for a in dict.fromkeys(paper_df.index.get_level_values("attack")) if a != "Average"]

    def paper_value(attack_label: str, dataset: str, method: str) -> float:
        key = (attack_label, dataset)
        if key in paper_df.index and method in paper_df.columns:
            return float(paper_df.loc[key, method])
        return math.nan

    def paper_average(labels: list[str], dataset: str, method: str) -> float:
        # The printed Average is the mean of the paper's four rows (to its rounding); any other set (one attack
        # included) gets the mean of the paper's values for it.
        if set(labels) == set(paper_attacks):
            return paper_value("Average", dataset, method)
        values = [paper_value(label, dataset, method) for label in labels]
        return sum(values) / len(values) if values else math.nan

    numeric_rows, display_rows = [], []
    short = substitution_names(summaries)

    def add_row(
        attack_label: str, dataset: str, per_key: dict[str, dict[str, list[float]]], notes: list[str],
        averaged: list[str], cell_runs: dict[str, list[dict]] | None = None,
    ) -> None:
        per_method = per_key["attack_success_rate"]
        num = {"attack": attack_label, "dataset": dataset, "averaged_over": "; ".join(averaged)}
        label = attack_label
        if averaged and set(averaged) != set(paper_attacks):
            label = f"{attack_label} ({', '.join(averaged)})"
        disp = {"attack": label, "dataset": dataset}
        counts = {}
        for method in methods:
            mean, sd, n = mean_sd(per_method.get(method, []))
            theirs = paper_average(averaged or [attack_label], dataset, method)
            num.update({f"{method}_mean": mean, f"{method}_sd": sd, f"{method}_n": n, f"{method}_paper": theirs})
            over_total = mean_sd(per_key["successful_over_total"].get(method, []))
            num.update({f"{method}_over_total_{k}": v for k, v in zip(("mean", "sd", "n"), over_total, strict=True)})
            disp[f"{method} (ours)"] = format_mean_sd(mean, sd, n)
            if bootstrap is not None:
                # Keyed by the attacked examples, not the method: identical outcomes, identical intervals.
                low, high = asr_interval(cell_runs.get(method, []), bootstrap, "table2", attack_label, dataset)
                num.update({f"{method}_ci_low": round_bound(low, "low"),
                            f"{method}_ci_high": round_bound(high, "high")})
                disp[f"{method} {round(100 * bootstrap.confidence)}% CI"] = format_interval(low, high)
            disp[f"{method} (paper)"] = format_value(theirs)
            counts[method] = n
        disp["seeds"] = seeds_label(counts)
        num["substitutions"] = "; ".join(notes)
        disp["substitutions"] = "; ".join(short[n] for n in notes) or MISSING
        numeric_rows.append(num)
        display_rows.append(disp)

    for attack in attacks:
        for dataset in datasets:
            runs = [s for s in summaries if s["attack"] == attack and s["dataset"] == dataset]
            if not runs:
                continue
            per_key = {key: {m: [_asr_percent(s, key) for s in runs if s["method"] == m] for m in methods}
                       for key in ASR_KEYS}
            notes = list(dict.fromkeys(n for s in runs for n in s.get("substitutions") or []))
            add_row(names.get(attack, attack), dataset, per_key, notes, [],
                    {m: [s for s in runs if s["method"] == m] for m in methods})
    for dataset in datasets:
        labels = [row["attack"] for row in numeric_rows if row["dataset"] == dataset]
        per_key = {key: {} for key in ASR_KEYS}
        for key, method in itertools.product(ASR_KEYS, methods):
            runs = [s for s in summaries if s["dataset"] == dataset and s["method"] == method]
            seeds = sorted({s["seed"] for s in runs})
            averages = []
            for seed in seeds:
                values = [_asr_percent(s, key) for s in runs if s["seed"] == seed]
                values = [v for v in values if not math.isnan(v)]
                if values:
                    averages.append(sum(values) / len(values))
            per_key[key][method] = averages
        notes = list(
            dict.fromkeys(n for s in summaries if s["dataset"] == dataset for n in s.get("substitutions") or [])
        )
        add_row("Average", dataset, per_key, notes, labels,
                {m: [s for s in summaries if s["dataset"] == dataset and s["method"] == m] for m in methods})
    return pd.DataFrame(numeric_rows), pd.DataFrame(display_rows)


def sample_notes(summaries: Sequence[dict]) -> list[str]:
    """Table 2's notes on capped samples, one per dataset: "MR: requested 500, attacked 50 (the test split has 50
    rows)" where a test split is smaller than ``attacks.num_examples`` (``sample_note`` of the gathered summaries)."""
    notes = {s["dataset"]: s["sample_note"] for s in summaries if s.get("sample_note")}
    return [f"{dataset}: {note}" for dataset, note in notes.items()]


# --------------------------------------------------------------------------- Table 3


#: The mark of a Table 3 time measured under contention (``\\textdagger`` in LaTeX; a boolean column in the csv).
CONTENDED = "†"


def is_contended(run: dict, threshold: float) -> bool | None:
    """Whether a training run was measured under contention: other work held more than ``threshold`` of the CPU
    its threads needed (``contended_share``, advtrain.training.timing); None where the run did not record it."""
    share = run.get("contended_share")
    return None if share is None else bool(share > threshold)


def _any_contended(flags: Sequence[bool | None]) -> bool | None:
    """True if any is; False if every one is known and none is; None (not known) otherwise."""
    if any(f is True for f in flags):
        return True
    return False if flags and all(f is False for f in flags) else None


def table3_runtime(runs: Sequence[dict], methods: Sequence[str], baseline: str = "BERT",
                   contention_share: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fine-tuning wall and CPU time (minutes) per method and dataset, their ratios to the baseline, beside the paper's.

    ``runs``: ``{"dataset", "method", "seed", "job_seconds" (Snakemake's benchmark of the train job),
    "train_seconds" (the training loop, metrics.json)}`` and, where the job recorded them (metrics.json's
    ``timing``), ``"cpu_seconds"`` (the training loop's CPU time), ``"contended_share"``; ``"job_cpu_seconds"`` is
    the benchmark's ``cpu_time``. Absolute minutes depend on the hardware (the paper: one V100, 4 epochs); the
    ratios to the baseline are what compare, and only between times measured alike: a time with a run whose
    ``contended_share`` exceeds ``contention_share`` (config ``timing.contention_share``) is marked
    :data:`CONTENDED`, and so is a ratio with such a time on either side. Returns (numeric frame, display frame).
    """
    paper_df = paper.load("table3_runtime_minutes").set_index("method")
    datasets = [d for d in ("IMDB", "MR") if any(r["dataset"] == d for r in runs)]
    datasets += sorted({r["dataset"] for r in runs} - set(datasets))

    def cell(method: str, dataset: str) -> list[dict]:
        return sorted((r for r in runs if r["method"] == method and r["dataset"] == dataset), key=lambda r: r["seed"])

    def minutes(method: str, dataset: str, key: str) -> list[float]:
        return [r[key] / 60.0 for r in cell(method, dataset) if r.get(key) is not None]

    def contended(method: str, dataset: str) -> bool | None:
        return _any_contended([is_contended(r, contention_share) for r in cell(method, dataset)])

    def marked(text: str, flag: bool | None) -> str:
        return f"{text} {CONTENDED}" if flag and text != MISSING else text

    numeric_rows, display_rows = [], []
    for method in methods:
        num, disp = {"method": method}, {"method": method}
        for dataset in datasets:
            job = minutes(method, dataset, "job_seconds")
            mean, sd, n = mean_sd(job)
            base, _, _ = mean_sd(minutes(baseline, dataset, "job_seconds"))
            cpu, cpu_sd, cpu_n = mean_sd(minutes(method, dataset, "cpu_seconds"))
            cpu_base, _, _ = mean_sd(minutes(baseline, dataset, "cpu_seconds"))
            theirs = float(paper_df.loc[method, dataset]) if method in paper_df.index and dataset in paper_df else math.nan
            their_base = float(paper_df.loc[baseline, dataset]) if baseline in paper_df.index and dataset in paper_df \
                else math.nan
            flag = contended(method, dataset)
            base_flag = contended(baseline, dataset)
            ratio_flag = _any_contended([flag, base_flag]) if n else None
            shares = [r["contended_share"] for r in cell(method, dataset) if r.get("contended_share") is not None]
            num.update({f"{dataset}_minutes_mean": mean, f"{dataset}_minutes_sd": sd, f"{dataset}_n": n,
                        f"{dataset}_train_minutes_mean": mean_sd(minutes(method, dataset, "train_seconds"))[0],
                        f"{dataset}_ratio": mean / base if base else math.nan,
                        f"{dataset}_cpu_minutes_mean": cpu, f"{dataset}_cpu_minutes_sd": cpu_sd,
                        f"{dataset}_cpu_ratio": cpu / cpu_base if cpu_base else math.nan,
                        f"{dataset}_job_cpu_minutes_mean": mean_sd(minutes(method, dataset, "job_cpu_seconds"))[0],
                        f"{dataset}_contended_share_max": max(shares) if shares else math.nan,
                        f"{dataset}_contended": flag, f"{dataset}_ratio_contended": ratio_flag,
                        f"{dataset}_paper_minutes": theirs, f"{dataset}_paper_ratio": theirs / their_base})
            disp[f"{dataset} min (ours)"] = marked(format_mean_sd(mean, sd, n, digits=1), flag)
            disp[f"{dataset} ×{baseline} (ours)"] = marked(format_value(num[f"{dataset}_ratio"]), ratio_flag)
            disp[f"{dataset} CPU min (ours)"] = marked(format_mean_sd(cpu, cpu_sd, cpu_n, digits=1), flag)
            disp[f"{dataset} CPU ×{baseline} (ours)"] = marked(format_value(num[f"{dataset}_cpu_ratio"]), ratio_flag)
            disp[f"{dataset} min (paper)"] = format_value(theirs, digits=1)
            disp[f"{dataset} ×{baseline} (paper)"] = format_value(num[f"{dataset}_paper_ratio"])
            disp[f"{dataset} seeds"] = str(n)
        numeric_rows.append(num)
        display_rows.append(disp)
    return pd.DataFrame(numeric_rows), pd.DataFrame(display_rows)


def table3_notes(runs: Sequence[dict], contention_share: float) -> list[str]:
    """Table 3's notes: what the mark means and how to get clean timings; the runs marked; those not checked."""
    notes = [f"{CONTENDED}: measured under contention: while the job trained, other processes held more than "
             f"{contention_share:.0%} of the CPU its threads needed (timing.contention_share; each job's "
             "metrics.json 'timing' has its CPU time, the load and the share); a ratio is marked when either of its "
             "times is. Such times depend on the neighbours, and CPU time is not immune (waiting threads spin). For "
             "clean timings train one job at a time on otherwise idle cores: locally `snakemake --cores 2` (the "
             "train rule's threads, so no other job runs beside it), on SLURM the train rule with `--exclusive` "
             "(README, \"Expected cost at paper scale\"); then rerun the marked jobs."]
    marked = [r for r in runs if is_contended(r, contention_share)]
    if marked:
        notes.append("Under contention: " + "; ".join(
            f"{r['dataset']} {r['method']} seed {r['seed']} (share {r['contended_share']:.2f}"
            + (f", mean 1-min load {r['load_1min_mean']:.1f} on {r['cpus']} CPUs" if r.get("load_1min_mean") is not None
               and r.get("cpus") else "") + ")" for r in marked) + ".")
    unchecked = [r for r in runs if r.get("contended_share") is None]
    if unchecked:
        notes.append("Not checked for contention (no timing record in metrics.json, or no /proc/stat nor load "
                     "average): " + "; ".join(f"{r['dataset']} {r['method']} seed {r['seed']}" for r in unchecked)
                     + ".")
    return notes


# --------------------------------------------------------------------------- paired comparisons over seeds


def paired_difference(ours: dict[int, float], base: dict[int, float], confidence: float = 0.95) -> dict:
    """Mean of (ours - base) over the seeds both have, with a t-based interval (needs >= 2 seeds)."""
    from scipy import stats

    seeds = sorted(set(ours) & set(base))
    diffs = np.asarray([ours[s] - base[s] for s in seeds], dtype=float)
    out = {"n": len(seeds), "mean": float(diffs.mean()) if len(seeds) else math.nan, "low": math.nan,
           "high": math.nan}
    if len(seeds) >= 2:
        half = stats.t.ppf(0.5 + confidence / 2, len(seeds) - 1) * diffs.std(ddof=1) / math.sqrt(len(seeds))
        out.update(low=out["mean"] - half, high=out["mean"] + half)
    return out


def paired_comparisons(evals: Sequence[dict], summaries: Sequence[dict], methods: Sequence[str],
                       baseline: str = "BERT", confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each method against the baseline, seed by seed: accuracy (in distribution, each ood set) and average ASR.

    Differences are in percentage points, method minus baseline; the interval is the t interval of the mean paired
    difference (seed s of a method against seed s of the baseline: same data order and initial head).
    """
    metrics: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for e in evals:
        for key, acc in e["accuracy"].items():
            label = "accuracy" if key == "in_distribution" else f"{key} accuracy"
            metrics.setdefault((e["dataset"], label), {}).setdefault(e["method"], {})[e["seed"]] = 100.0 * acc
    per_seed: dict[tuple[str, str, int], list[float]] = {}
    for s in summaries:
        value = _asr_percent(s)
        if not math.isnan(value):
            per_seed.setdefault((s["dataset"], s["method"], s["seed"]), []).append(value)
    for (dataset, method, seed), values in per_seed.items():
        metrics.setdefault((dataset, "average ASR"), {}).setdefault(method, {})[seed] = sum(values) / len(values)
    numeric, display = [], []
    for (dataset, metric), by_method in metrics.items():
        if baseline not in by_method:
            continue
        for method in methods:
            if method == baseline or method not in by_method:
                continue
            d = paired_difference(by_method[method], by_method[baseline], confidence)
            numeric.append({"dataset": dataset, "metric": metric, "method": method, "baseline": baseline,
                            "seeds": d["n"], "difference": d["mean"], "ci_low": d["low"], "ci_high": d["high"],
                            "confidence": confidence})
            interval = (f"[{d['low']:+.2f}, {d['high']:+.2f}]" if not math.isnan(d["low"]) else MISSING)
            display.append({"dataset": dataset, "metric": metric, "method": method,
                            f"− {baseline} (pp)": f"{d['mean']:+.2f}" if d["n"] else MISSING,
                            f"{int(confidence * 100)}% CI": interval, "seeds": str(d["n"])})
    return pd.DataFrame(numeric), pd.DataFrame(display)


# --------------------------------------------------------------------------- TextDefender's attack table

#: TextDefender's columns (its log: Accu(cln), Accu(rob), Succ, utils/metrics.py:228-230; and TextAttack's "Avg num
#: queries", attack_log_manager.py:148-157), from these keys of a gathered attack summary.
TEXTDEFENDER_COLUMNS = (("Clean%", "original_accuracy", 100.0), ("Aua%", "accuracy_under_attack", 100.0),
                        ("Suc%", "attack_success_rate", 100.0), ("#Query", "avg_num_queries", 1.0))


def textdefender_table(summaries: Sequence[dict], methods: Sequence[str],
                       attack_names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attack results in TextDefender's format (Li et al. 2021, its Tables 2-3; AdvBench4Text's alike): per dataset
    and method, the clean accuracy on the attacked sample, then per attack the accuracy under attack, the attack
    success rate (successful / (successful + failed)) and the mean model queries per attacked example (skipped ones
    left out, as TextAttack's summary), each mean ± sd over seeds.

    Clean% is each run's ``original_accuracy``; the attacks of one model see the same sample, so it is one value
    per seed (averaged over the attacks if a randomised victim makes them differ). Numeric frame: one row per
    (dataset, method, attack) with ``<key>_mean`` / ``_sd`` and ``seeds``; display frame: one row per (dataset,
    method), one column group per attack, as TextDefender prints it.
    """
    names = {**ATTACK_NAMES, **(attack_names or {})}
    attacks = list(dict.fromkeys(s["attack"] for s in summaries))
    numeric, display = [], []
    for dataset in dict.fromkeys(s["dataset"] for s in summaries):
        for method in methods:
            runs = [s for s in summaries if s["dataset"] == dataset and s["method"] == method]
            if not runs:
                continue
            clean_per_seed = {}
            for s in runs:
                clean_per_seed.setdefault(s["seed"], []).append(_percent(s, "original_accuracy", 100.0))
            clean = mean_sd(float(np.mean(v)) for v in clean_per_seed.values())
            row = {"dataset": dataset, "method": method, "Clean%": format_mean_sd(*clean, digits=1)}
            for attack in attacks:
                cell = sorted((s for s in runs if s["attack"] == attack), key=lambda s: s["seed"])
                label = names.get(attack, attack)
                num = {"dataset": dataset, "method": method, "attack": label, "seeds": len(cell)}
                for column, key, scale in TEXTDEFENDER_COLUMNS:
                    mean, sd, n = mean_sd(_percent(s, key, scale) for s in cell)
                    num.update({f"{key}_mean": mean, f"{key}_sd": sd})
                    if key != "original_accuracy":
                        row[f"{label} {column}"] = format_mean_sd(mean, sd, n, digits=1)
                numeric.append(num)
            row["seeds"] = str(len(clean_per_seed))
            display.append(row)
    return pd.DataFrame(numeric), pd.DataFrame(display)


def _percent(summary: dict, key: str, scale: float) -> float:
    value = summary.get(key)
    return math.nan if value is None else scale * float(value)
