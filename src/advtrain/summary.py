"""``results/summary.md``: one page that says which tables and figures a run produced, where, and what they show.

Each table's markdown file starts with its caption line, so the summary quotes the tables themselves rather than
re-deriving any number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

REPORT_COMMAND = "snakemake --report report.html"


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


def write_summary(
    dest: str | Path,
    tables: Sequence[str | Path],
    figures: Sequence[str | Path],
    run: dict,
    fidelity: str | Path | None = None,
) -> Path:
    """Write the summary next to the tables it lists; paths in it are relative to its own folder.

    ``run`` describes the selection (methods, datasets, seeds, attacks, LCA methods) in one line each. ``fidelity``
    is the table of the fidelity ledger's rows the run used with non-reference values (rule ``fidelity``), quoted
    in its own section.
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
        "## Tables",
        "",
    ]
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
