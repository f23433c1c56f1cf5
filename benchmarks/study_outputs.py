"""Compare two runs of the tiny study file by file: does a restructure change what the workflow computes?

Issue 24 moved code without changing behaviour; this is how that was shown. Run the tiny study
(tests/workflow/test_full_study.py)
on each commit with the same base folder, keep its results, then compare:

    PYTHONHASHSEED=0 ADVTRAIN_KEEP_STUDY=/tmp/before python -m pytest tests/workflow/test_full_study.py \
        --basetemp=/tmp/study -n0 \
        -k every_table      # on the old commit; then the same with /tmp/after on the new one
    python benchmarks/study_outputs.py /tmp/before /tmp/after

Every file under ``results/`` (and the study's ``logs/`` names) must be present in both. A file passes when its bytes
are equal; a JSON or CSV file also passes when it is equal after dropping what measures time (keys/columns in
:data:`VOLATILE`) and with floats equal to the last bits (relative 1e-12, which allows a summation order, not a
change of method). What differs is printed, and the exit status is 1 if anything does.

Files that measure time (Snakemake's benchmarks, Table 3's minutes and ratios, and its section of the summary) are
compared on their other content only; PDFs without their creation date; model weights byte for byte. Both runs must
build the same inputs: the tests' tiny BERT has a frozen vocabulary, and PYTHONHASHSEED=0 fixes the order in which
TextAttack iterates its sets of candidate words.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from pathlib import Path

#: Keys and columns that measure wall time or the machine's state, not what was computed.
VOLATILE = re.compile(
    r"(^|_)(s|seconds|secs|minutes|runtime|elapsed|wall|time|timestamp|date|started|finished|per_second|"
    r"samples_per_second|steps_per_second|max_rss|max_vms|max_uss|max_pss|io_in|io_out|mean_load|cpu_time|"
    r"h:m:s|total_flos|ratio_to_bert|throughput|queries_per_second|created|"
    # How the query broker happened to batch the texts in flight (thread timing); the records are compared in full.
    r"forwards)($|_)",
    re.I,
)
#: Table 3's measured ratio to BERT (its time over BERT's); the paper's ratio beside it is compared.
TIME_RATIO = re.compile(r"^(?!.*paper).*_ratio$")
#: Whole files that only measure time (Snakemake's benchmark: directive) or hold run metadata.
TIME_FILES = re.compile(r"(^|/)benchmarks/|\.tsv$|trainer_state\.json$|training_args\.bin$")
#: Tables whose numbers are times (Table 3 and its sources): compared on their other columns.
REL_TOL = 1e-12


def _equal_values(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            return False
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-300)
    return a == b


def _strip(node):
    """The JSON value without time-measuring keys."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not VOLATILE.search(str(k))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _json_equal(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return _equal_values(a, b)


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _csv_rows(text: str, times: bool = False) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{k: _number(v) for k, v in row.items()
             if not VOLATILE.search(str(k)) and not (times and TIME_RATIO.search(str(k)))} for row in rows]


def _without_sections(markdown: bytes, stems: tuple[str, ...]) -> bytes:
    """The summary without the sections of tables that render times (``### <stem>`` up to the next heading)."""
    kept, skipping = [], False
    for line in markdown.decode().splitlines():
        if line.startswith("#"):
            skipping = any(line.strip() == f"### {stem}" for stem in stems)
        if not skipping:
            kept.append(line)
    return "\n".join(kept).encode()


_PDF_DATES = re.compile(rb"/(CreationDate|ModDate) \(D:[^)]*\)")


def same(path: str, a: bytes, b: bytes, time_tables: tuple[str, ...] = ()) -> bool:
    if a == b or TIME_FILES.search(path):
        return True
    if path.endswith("summary.md"):
        return _without_sections(a, time_tables) == _without_sections(b, time_tables)
    if path.endswith(".json"):
        try:
            return _json_equal(_strip(json.loads(a)), _strip(json.loads(b)))
        except ValueError:
            return False
    if path.endswith(".csv"):
        times = any(f"/{stem}." in f"/{path}" for stem in time_tables)
        rows_a, rows_b = _csv_rows(a.decode(), times), _csv_rows(b.decode(), times)
        return len(rows_a) == len(rows_b) and all(_json_equal(x, y) for x, y in zip(rows_a, rows_b, strict=True))
    if path.endswith(".pdf"):
        return _PDF_DATES.sub(b"", a) == _PDF_DATES.sub(b"", b)
    return False


def compare(before: Path, after: Path, *, time_tables: tuple[str, ...] = ("table3_runtime",)) -> list[str]:
    """Every difference between the two results folders, one line each."""
    files_a = {p.relative_to(before).as_posix() for p in before.rglob("*") if p.is_file()}
    files_b = {p.relative_to(after).as_posix() for p in after.rglob("*") if p.is_file()}
    problems = [f"only before: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only after: {p}" for p in sorted(files_b - files_a)]
    for path in sorted(files_a & files_b):
        if any(f"/{stem}." in f"/{path}" for stem in time_tables) and not path.endswith(".csv"):
            continue  # Table 3's md/tex render the times; its csv is compared without them
        if not same(path, (before / path).read_bytes(), (after / path).read_bytes(), time_tables):
            problems.append(f"differs: {path}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after)
    n = sum(1 for p in args.before.rglob("*") if p.is_file())
    for line in problems:
        print(line)
    print(f"{n} files before; {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
