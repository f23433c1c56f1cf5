"""Datasets: read a source (hub copy or local files), check it, carve and sample splits, write parquet + summary.

Every split leaves here as a ``text,label`` frame with labels 0/1. Anything else is a ``DataError`` that names
the file (and line, where there is one) and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain.config import effective_source

SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""


# --------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    return raw


def _decode(raw: bytes, path: Path, encoding: str) -> str:
    """The file's text; an error naming the file (and line) when it is empty or not in ``encoding``."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: byte {raw[exc.start]:#04x} cannot be decoded as {encoding}. "
            "Set the source's `encoding` (e.g. cp1252 or latin-1) or fix the file."
        ) from exc
    if not text.strip():
        raise DataError(f"{path}: file is empty" + (" (only blank lines)" if text else ""))
    return text


def read_rt_polarity(pos: Path, neg: Path, encoding: str = "cp1252") -> pd.DataFrame:
    """The MR ``rt-polarity.pos/.neg`` pair: one sentence per ``\\n``-terminated line, label from the file.

    Split on ``"\\n"`` only: the files contain byte 0x85 (cp1252 "…"), which ``str.splitlines`` would treat as a
    line break when the text is decoded as latin-1.
    """
    frames = []
    for path, label in ((Path(pos), 1), (Path(neg), 0)):
        lines = _decode(_read_bytes(path), path, encoding).split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        frames.append(pd.DataFrame({"text": [line.strip() for line in lines], "label": label}))
    return pd.concat(frames, ignore_index=True)


def read_label_text(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """``<label> <text>`` per line (the TextFooler files, e.g. its YELP sample)."""
    path = Path(path)
    text = _decode(_read_bytes(path), path, encoding)
    labels, texts = [], []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        label, sep, body = line.partition(" ")
        if not sep or not label.lstrip("-").isdigit():
            raise DataError(f"{path}, line {i}: expected '<label> <text>', got {line[:60]!r}")
        labels.append(int(label))
        texts.append(body.strip())
    return pd.DataFrame({"text": texts, "label": labels})


def read_table(path: Path, fmt: str, encoding: str = "utf-8") -> pd.DataFrame:
    """csv / tsv / jsonl (optionally gzipped) or parquet, all columns kept."""
    path = Path(path)
    if fmt == "parquet":
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
            raise DataError(f"{path}: cannot read as parquet ({exc})") from exc
    text = _decode(_read_bytes(path), path, encoding)
    try:
        if fmt == "jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False)
        sep = "\t" if fmt == "tsv" else ","
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse as {fmt} ({exc})") from exc


def read_hf_split(path: Path, split: str) -> pd.DataFrame:
    """One split of a dataset saved with ``datasets.Dataset(Dict).save_to_disk``."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"{path}: not a dataset saved with save_to_disk ({exc})") from exc
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{path}: has no split {split!r} (it has {', '.join(ds)})")
        ds = ds[split]
    return ds.to_pandas()


# --------------------------------------------------------------------------- checking


def normalise(
    df: pd.DataFrame, where: str, text_column: str = "text", label_column: str = "label",
    label_map: dict | None = None,
) -> pd.DataFrame:
    """Select and rename the text and label columns; map labels to 0/1; reject anything else."""
    for kind, col in (("text", text_column), ("label", label_column)):
        if col not in df.columns:
            raise DataError(
                f"{where}: missing {kind} column {col!r} (columns: {', '.join(map(str, df.columns))}); "
                f"set the source's `{kind}_column`"
            )
    nulls = np.flatnonzero(df[text_column].isna().to_numpy())
    if nulls.size:
        raise DataError(f"{where}: row {int(nulls[0]) + 1} has no text ({nulls.size} rows without text)")
    out = pd.DataFrame({"text": df[text_column].astype(str).to_numpy(), "label": df[label_column].to_numpy()})
    if label_map:
        mapping = {str(k): v for k, v in label_map.items()}
        unmapped = sorted({str(v) for v in out["label"]} - set(mapping))
        if unmapped:
            raise DataError(f"{where}: labels {unmapped} are not in the source's label_map")
        out["label"] = [mapping[str(v)] for v in out["label"]]
    labels = pd.to_numeric(out["label"], errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{where}: label {out['label'].iloc[row]!r} in row {row + 1} is not 0 or 1; add a `label_map` "
            "to the dataset's config"
        )
    out["label"] = labels.astype("int64")
    return out


def check_split(df: pd.DataFrame, where: str, split: str) -> None:
    if len(df) == 0:
        raise DataError(f"{where}: split {split!r} is empty")
    if df["label"].nunique() < 2:
        raise DataError(f"{where}: split {split!r} has one class only (label {int(df['label'].iloc[0])})")
    empty = (df["text"].str.strip() == "").to_numpy()
    if empty.all():
        raise DataError(f"{where}: split {split!r} has only empty texts")


# --------------------------------------------------------------------------- splits


def _take(n: float, total: int) -> int:
    return int(round(n * total)) if n < 1 else int(n)


def carve_splits(train: pd.DataFrame, carve: dict, seed: int) -> dict[str, pd.DataFrame]:
    """Carve missing splits (fraction < 1 or row count) from train, with a fixed seeded permutation."""
    order = np.random.default_rng(seed).permutation(len(train))
    out, start = {}, 0
    for split in ("test", "validation"):
        if split in carve:
            n = _take(carve[split], len(train))
            out[split] = train.iloc[order[start : start + n]].reset_index(drop=True)
            start += n
    if start >= len(train):
        raise DataError(f"carve: {start} rows requested from a train split of {len(train)}")
    out["train"] = train.iloc[np.sort(order[start:])].reset_index(drop=True)
    return out


def sample(df: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A fixed random subset of at most ``n`` rows (original order kept)."""
    if n is None or n >= len(df):
        return df
    keep = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
    return df.iloc[keep].reset_index(drop=True)


def load_source(name: str, ds_config: dict, hf_path: str | None) -> dict[str, tuple[pd.DataFrame, str]]:
    """Every split the source provides (normalised to text/label), each with the file it came from."""
    kind, source = effective_source(ds_config)
    label_map = ds_config.get("label_map")
    frames: dict[str, tuple[pd.DataFrame, str]] = {}
    if kind == "hf":
        hf = source
        for split, src_split in hf["splits"].items():
            where = f"{hf_path} [{src_split}]"
            raw = read_hf_split(Path(hf_path), src_split)
            frames[split] = (normalise(raw, where, hf.get("text_column", "text"),
                                       hf.get("label_column", "label"), label_map), where)
        return frames
    local = source
    fmt, files, enc = local["format"], local["files"], local.get("encoding", "utf-8")
    if fmt == "rt-polarity":
        if not {"pos", "neg"} <= set(files):
            raise DataError(f"datasets.{name}.source.local.files: rt-polarity needs `pos` and `neg` files")
        where = f"{files['pos']} + {files['neg']}"
        pooled = read_rt_polarity(Path(files["pos"]), Path(files["neg"]), local.get("encoding", "cp1252"))
        frames["train"] = (normalise(pooled, where, label_map=label_map), where)
        return frames
    for split, path in files.items():
        if fmt == "label-text":
            raw = read_label_text(Path(path), enc)
            frames[split] = (normalise(raw, str(path), label_map=label_map), str(path))
        else:
            raw = read_table(Path(path), fmt, enc)
            frames[split] = (normalise(raw, str(path), local.get("text_column", "text"),
                                       local.get("label_column", "label"), label_map), str(path))
    return frames


def prepare_dataset(name: str, ds_config: dict, hf_path: str | None, splits: list[str]) -> dict[str, pd.DataFrame]:
    """The requested splits of a dataset, checked, carved and sampled as configured."""
    frames = load_source(name, ds_config, hf_path)
    seed = int(ds_config.get("split_seed", 42))
    missing = [s for s in splits if s not in frames]
    if missing:
        carve = ds_config.get("carve") or {}
        uncarved = [s for s in missing if s not in carve]
        if uncarved or "train" not in frames:
            raise DataError(
                f"datasets.{name}: the source has no {', '.join(uncarved or missing)} split; add it to the "
                f"source or set `datasets.{name}.carve` (e.g. carve: {{{(uncarved or missing)[0]}: 0.1}})"
            )
        train, origin = frames["train"]
        try:
            carved = carve_splits(train, {s: carve[s] for s in missing}, seed)
        except DataError as exc:
            raise DataError(f"datasets.{name}.{exc} ({origin})") from None
        frames.update({s: (df, f"{origin}, carved {s}" if s != "train" else origin) for s, df in carved.items()})
    limits = ds_config.get("max_examples") or {}
    out = {}
    for split in splits:
        df, origin = frames[split]
        df = sample(df, limits.get(split), seed)
        check_split(df, f"datasets.{name} ({origin})", split)
        out[split] = df
    return out


# --------------------------------------------------------------------------- writing


def summarise(df: pd.DataFrame) -> dict:
    """Row count, label balance and a content hash (order-sensitive) of a split."""
    digest = hashlib.sha256()
    for text, label in zip(df["text"], df["label"], strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    counts = df["label"].value_counts().sort_index()
    return {
        "rows": int(len(df)),
        "labels": {str(k): int(v) for k, v in counts.items()},
        "positive_fraction": float(df["label"].mean()),
        "sha256": digest.hexdigest(),
    }


def write_split(df: pd.DataFrame, parquet_path: str | Path, summary_path: str | Path) -> dict:
    Path(parquet_path).parent.mkdir(parents=True, exist_ok=True)
    df[["text", "label"]].to_parquet(parquet_path, index=False)
    summary = summarise(df)
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_split(path: str | Path) -> pd.DataFrame:
    """A split written by this module (re-checked: a truncated file is an error naming it)."""
    df = read_table(Path(path), "parquet")
    if list(df.columns[:2]) != ["text", "label"]:
        raise DataError(f"{path}: expected columns text,label, got {', '.join(df.columns)}")
    return df
