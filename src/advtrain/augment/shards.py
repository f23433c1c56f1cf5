"""Shards of a training split, per-row seeds, and the summary every augmenter writes.

Every random draw of an augmenter is seeded by (augmenter seed, source row, sample, ...) rather than by a stream
shared across the run, so a row's augmentation does not depend on which shard or batch it lands in: the gathered
output of K shards equals the output of one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["text", "label", "source_id"]


def parse_scatteritem(item: str) -> tuple[int, int]:
    """Snakemake's ``{scatteritem}`` ``"2-of-4"`` -> (index 1, 4 shards)."""
    index, _, total = item.partition("-of-")
    index, total = int(index), int(total)
    if not 1 <= index <= total:
        raise ValueError(f"scatteritem {item!r}: expected i-of-n with 1 <= i <= n")
    return index - 1, total


def shard_rows(train: pd.DataFrame, index: int, shards: int) -> pd.DataFrame:
    """Rows ``index, index + shards, ...`` of the split, with their row number as ``source_id``.

    Strided rather than contiguous: a split sorted by anything (length, label, source) still gives shards of
    similar cost.
    """
    if not 0 <= index < shards:
        raise ValueError(f"shard index {index} out of range for {shards} shards")
    frame = train[["text", "label"]].copy()
    frame["source_id"] = np.arange(len(train), dtype=np.int64)
    return frame.iloc[index::shards].reset_index(drop=True)


def row_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (augmenter seed, source id, sample, try, ...), via numpy's SeedSequence."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def empty_rows() -> pd.DataFrame:
    return pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype="int64"),
                         "source_id": pd.Series(dtype="int64")})


def gather(frames) -> pd.DataFrame:
    """Concatenate shard outputs in source order (a stable sort keeps each source's samples in order)."""
    frames = [f[COLUMNS] for f in frames]
    if not frames:
        return empty_rows()
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values("source_id", kind="stable").reset_index(drop=True)


def summarise(rows: pd.DataFrame, inputs: pd.DataFrame, seconds: float, **extra) -> dict:
    """rows, seconds, rows/s and the share of outputs identical to their input (whitespace- and case-blind)."""
    originals = inputs.set_index("source_id")["text"]
    same = 0
    if len(rows):
        source = originals.loc[rows["source_id"].to_numpy()].to_numpy()
        same = int(sum(_norm(a) == _norm(b) for a, b in zip(rows["text"], source, strict=True)))
    return {
        "inputs": int(len(inputs)),
        "rows": int(len(rows)),
        "seconds": float(seconds),
        "rows_per_second": float(len(rows) / seconds) if seconds > 0 else None,
        "identical_to_input": same,
        "identical_pct": 100.0 * same / len(rows) if len(rows) else None,
        **extra,
    }


def gather_summaries(summaries: list[dict], rows: pd.DataFrame) -> dict:
    """One summary for the gathered file: counts and seconds summed over shards (seconds = GPU-seconds)."""
    out: dict = {"shards": len(summaries), "rows": int(len(rows))}
    for key in ("inputs", "seconds", "identical_to_input"):
        out[key] = sum(s.get(key) or 0 for s in summaries)
    out["rows_per_second"] = out["rows"] / out["seconds"] if out["seconds"] > 0 else None
    out["identical_pct"] = 100.0 * out["identical_to_input"] / out["rows"] if out["rows"] else None
    counters = sorted({k for s in summaries for k, v in (s.get("stats") or {}).items() if isinstance(v, int | float)})
    out["stats"] = {k: sum((s.get("stats") or {}).get(k, 0) for s in summaries) for k in counters}
    for key in ("augmenter", "kind", "settings", "models", "device"):
        if summaries and key in summaries[0]:
            out[key] = summaries[0][key]
    return out


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def write_json(obj: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, default=str) + "\n")
