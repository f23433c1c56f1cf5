"""``results/summary.md``: one page that says which tables and figures a run produced, where, and what they show.

Each table's markdown file starts with its caption line, so the summary quotes the tables themselves rather than
re-deriving any number.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

REPORT_COMMAND = "snakemake --report report.html"

# --------------------------------------------------------------------------- what a run leaves out

#: The tables and figures of each optional part of the study (figures named ``budget_*`` are one per dataset and
#: attack).
ATTACK_TABLES = ("table2_asr", "attack_budget", "attack_effort", "attack_validity", "attack_examples")
ATTACK_FIGURES = ("tradeoff", "budget_*")
LCA_TABLES = ("table5_lca", "table6_lca_words", "table7_ablation")

#: The rules each table or figure is made from, as names or patterns; a table or figure made from a rule that
#: ``snakemake --omit-from`` names is not made. Shared stages first: every model-based result needs the data and
#: the fine-tuned models, and the accuracy-based ones the evaluation too.
MODELS = ("fetch_model", "fetch_dataset", "prepare_training_dataset", "fetch_augment_model", "augment_shard",
          "gather_augment", "train")
EVALUATION = (*MODELS, "prepare_ood_dataset", "evaluate")
LCA = ("fetch_model", "fetch_pos_corpus", "lca_data", "lca_train", "lca_activations", "lca_probe")
ATTACKS = (*MODELS, "fetch_attack_*", "attack_shard", "gather_attack")
MADE_FROM = {
    "table1_toy": ("toy_study",),
    "figure1_toy": ("toy_study",),
    "table2_asr": (*ATTACKS, "table2_asr"),
    "table3_runtime": (*MODELS, "table3_runtime"),
    "table4_accuracy": (*EVALUATION, "table4_accuracy"),
    **dict.fromkeys(LCA_TABLES, (*LCA, "lca_tables")),
    # With attacks configured, these read the attack summaries too (see omitted()).
    "paired_vs_bert": (*EVALUATION, "paired_comparisons"),
    "paired_examples_vs_bert": (*EVALUATION, "paired_examples"),
    "attack_budget": (*ATTACKS, "attack_budget"),
    "attack_effort": (*ATTACKS, "attack_effort"),
    "attack_validity": (*ATTACKS, "attack_validity", "validity_tables"),
    "attack_examples": (*ATTACKS, "attack_validity", "validity_tables"),
    "tradeoff": (*ATTACKS, *EVALUATION, "table2_asr", "table4_accuracy", "tradeoff_figure"),
    "budget_*": (*ATTACKS, "budget_figure"),
    "textdefender_attacks": (*ATTACKS, "textdefender_attacks"),  # under attacks.protocol textdefender
    # Judged on what the run made: an omitted part leaves its claims "not testable" (see omitted_evidence()), the
    # table is still made (from the rest, and from the paper's tables).
    "claims": ("claims",),
}


#: The tables that read the attack summaries when attacks are configured.
WITH_ATTACKS = ("paired_vs_bert", "paired_examples_vs_bert")

#: The parts of the study the claims are judged on, each with the rules it is made from.
EVIDENCE = {"evaluation": EVALUATION, "attacks": ATTACKS, "lca": LCA}


def omitted_evidence(omit_from: Iterable[str]) -> dict[str, str]:
    """{part of EVIDENCE: the --omit-from entries that remove it, as the claims table says it}: rule claims reads
    nothing of these parts, and the claims that need one are "not testable" in this run, naming the option."""
    entries = sorted(omit_from)
    out = {}
    for part, rules in EVIDENCE.items():
        hits = [e for e in entries if omits_any(rules, [e])]
        if hits:
            out[part] = f"not made in this run (`--omit-from {' '.join(hits)}`)"
    return out


def _made_from(stem: str, attacks: bool) -> tuple[str, ...]:
    extra = ATTACKS if attacks and stem in WITH_ATTACKS else ()
    for pattern, rules in MADE_FROM.items():
        if fnmatch.fnmatchcase(stem, pattern):
            return (*rules, *extra)
    raise KeyError(f"{stem}: no entry in advtrain.summary.MADE_FROM")


def _hits(entry: str, stem: str, attacks: bool) -> bool:
    """Whether an --omit-from entry (a rule name, or a file) removes ``stem``."""
    if omits_any(_made_from(stem, attacks), [entry]):
        return True
    path = PurePosixPath(entry.replace(os.sep, "/"))
    return path.parent.name in ("tables", "figures") and path.stem == stem


def omits_any(rules: Iterable[str], omit_from: Iterable[str]) -> bool:
    """Whether an --omit-from entry names one of ``rules`` (names or patterns)."""
    return any(fnmatch.fnmatchcase(entry, rule) for entry in omit_from for rule in rules)


def omitted(stems: Iterable[str], omit_from: Iterable[str], attacks: bool = True) -> dict[str, str]:
    """The tables and figures among ``stems`` that ``snakemake --omit-from`` entries (rule names or files) remove,
    each with the reason the summary prints; ``attacks``: whether attacks are configured (then the paired tables
    read their summaries)."""
    entries = sorted(omit_from)
    absent = {}
    for stem in stems:
        hits = [e for e in entries if _hits(e, stem, attacks)]
        if hits:
            absent[stem] = f"not made: `--omit-from {' '.join(hits)}`"
    return absent


def absent_section(absent: Mapping[str, str]) -> list[str]:
    """The summary's "Not in this run" lines: the absent tables and figures grouped by their reason."""
    if not absent:
        return []
    by_reason: dict[str, list[str]] = {}
    for stem, reason in absent.items():
        by_reason.setdefault(reason, []).append(stem)
    lines = ["## Not in this run", ""]
    lines += [f"- {', '.join(f'`{s}`' for s in stems)}: {reason}" for reason, stems in by_reason.items()]
    return [*lines, ""]


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def table_section(md_file: Path, start: Path) -> str:
    """A heading from the table's file name, its location (md, csv, tex beside it), then the table itself."""
    text = md_file.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{md_file}: empty table")
    formats = [_relative(md_file.with_suffix(ext), start) for ext in (".csv", ".md", ".tex")
               if md_file.with_suffix(ext).exists()]
    where = ", ".join(f"`{f}`" for f in formats)
    return f"### {md_file.stem}\n\n{where}\n\n{text}\n"


def figure_section(png: Path, start: Path) -> str:
    others = [_relative(png.with_suffix(ext), start) for ext in (".pdf",) if png.with_suffix(ext).exists()]
    also = f" (also {', '.join(f'`{o}`' for o in others)})" if others else ""
    rel = _relative(png, start)
    return f"### {png.stem}\n\n`{rel}`{also}\n\n![{png.stem}]({rel})\n"


def claims_section(csv: Path) -> str:
    """The claims, one line each, from the claims table's csv (at the confidence its verdicts were made at)."""
    import pandas as pd

    from advtrain.claims import summary_section

    table = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    return summary_section(table, 1.0 - float(table["confidence"].iloc[0])).rstrip("\n")


def write_summary(
    dest: str | Path,
    tables: Sequence[str | Path],
    figures: Sequence[str | Path],
    run: dict,
    fidelity: str | Path | None = None,
    absent: Mapping[str, str] | None = None,
    claims: str | Path | None = None,
) -> Path:
    """Write the summary next to the tables it lists; paths in it are relative to its own folder.

    ``run`` describes the selection (methods, datasets, seeds, attacks, LCA methods) in one line each. ``fidelity``
    is the table of the fidelity ledger's rows the run used with non-reference values (rule ``fidelity``), quoted
    in its own section. ``absent`` maps each table or figure of the study this run does not make to why (a part
    not configured, or removed by ``--omit-from``); they are listed before the tables. ``claims`` is the claims
    table's csv (rule ``claims``): each claim's verdicts on this run and on the paper's tables, before the tables.
    """
    dest = Path(dest)
    start = dest.parent
    lines = ["# Results summary", ""]
    lines += [f"- **{key}**: {', '.join(map(str, value)) if isinstance(value, list | tuple) else value}"
              for key, value in run.items()]
    lines += [
        f"- **tables**: {len(tables)}, each as csv (numbers), md and tex (booktabs); "
        "ours are mean ± sd over seeds with the number of seeds, the paper's beside them",
        f"- **figures**: {len(figures)}, each as png and pdf",
        f"- **HTML report** with every table and figure and its caption: `{REPORT_COMMAND}`",
        "",
    ]
    lines += absent_section(absent or {})
    if claims is not None:
        lines += [claims_section(Path(claims)), ""]
    lines += ["## Tables", ""]
    lines += [table_section(Path(t), start) for t in tables]
    lines += ["## Figures", ""]
    lines += [figure_section(Path(f), start) for f in figures]
    if fidelity is not None:
        from advtrain.fidelity import LEDGER

        lines += ["## Departures from the reference code", "",
                  f"The rows of the fidelity ledger (`{LEDGER}`) this run used with values other than the reference "
                  "code's; the ledger says why for each.", "", table_section(Path(fidelity), start)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines), encoding="utf-8")
    return dest
