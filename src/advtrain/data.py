"""Datasets: read a source (hub copy or local files), check it, carve and sample splits, write parquet + summary.

Every split leaves here as a ``text,label`` frame with labels 0/1. Anything else is a ``DataError`` that names
the file (and line, where there is one) and the problem.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import re
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


# Byte-order marks, longest first (UTF-32-LE's starts with UTF-16-LE's): (bytes, codec, family).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)
# Well-formed UTF-8 multi-byte sequences: in a single-byte (cp1252, latin-1) file they are rare; in UTF-8 every
# non-ASCII character is one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# Characters no text file holds (C0 controls but tab and line breaks, C1 controls, U+FFFD): a few are noise (IMDB has
# C1 dashes from an old mis-decoding, 0.008 %), this share of the text means the decoding is wrong.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_NOT_TEXT_SHARE = 0.01


def _codec(encoding: str) -> str:
    return codecs.lookup(encoding).name


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _wide_encoding(raw: bytes) -> str | None:
    """utf-16-le/-be or utf-32-le/-be when the NUL bytes fall where that encoding puts them for Latin text."""
    sample = raw[:1 << 16]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    zeros = [sample[i::4].count(0) / len(sample[i::4]) for i in range(4)]
    if min(zeros[1:]) > 0.9 and zeros[0] < 0.5:
        return "utf-32-le"
    if min(zeros[:3]) > 0.9 and zeros[3] < 0.5:
        return "utf-32-be"
    even, odd = (zeros[0] + zeros[2]) / 2, (zeros[1] + zeros[3]) / 2
    if odd > 0.5 and even < 0.1:
        return "utf-16-le"
    if even > 0.5 and odd < 0.1:
        return "utf-16-be"
    return None


_HIGH_BYTES = bytes(range(0x80, 0x100))


def _utf8_share(raw: bytes) -> tuple[float, int]:
    """(share of the non-ASCII bytes that form well-formed UTF-8 sequences, number of non-ASCII bytes)."""
    high = len(raw) - len(raw.translate(None, _HIGH_BYTES))
    if not high:
        return 0.0, 0
    return sum(len(m) for m in _UTF8_SEQUENCE.findall(raw)) / high, high


def _problem(raw: bytes, text: str, encoding: str) -> tuple[str, str | None] | None:
    """Why ``text`` (``raw`` decoded as ``encoding``) is not text any reader would accept ("line N: ...") and the
    encoding that fits when that is already known; None when it is plausible: no NUL characters, not UTF-8 read as a
    single-byte encoding (mojibake such as 'Ã©' for 'é'), not a share of control / replacement characters."""
    nul = text.find("\x00")
    if nul >= 0:
        return f"line {_line_of(text, nul)}: NUL characters: this is not {encoding} text.", None
    if not _codec(encoding).startswith("utf"):
        share, high = _utf8_share(raw)
        if high and share >= 0.9:
            first = _UTF8_SEQUENCE.search(raw)
            line = raw.count(b"\n", 0, first.start()) + 1
            char, misread = first.group().decode("utf-8"), first.group().decode(encoding, "replace")
            whole = "" if share == 1 else f" (all but {round(high * (1 - share))} of its non-ASCII bytes)"
            return f"line {line}: {char!r} reads as {misread!r} in {encoding}: the file is UTF-8{whole}.", "utf-8"
    bad = sum(1 for _ in _NOT_TEXT.finditer(text))
    if bad > _NOT_TEXT_SHARE * len(text):
        first = _NOT_TEXT.search(text)
        return (f"line {_line_of(text, first.start())}: {bad / len(text):.0%} of the characters are control or "
                f"replacement characters (the first: {first.group()!r}): this is not {encoding} text."), None
    return None


def _fitting_encoding(raw: bytes, tried: str) -> str | None:
    """utf-8 or cp1252 (not ``tried``), whichever reads ``raw`` as plausible text first; None if neither does.

    latin-1 is never advised: it reads any bytes, and where it differs from cp1252 (0x80-0x9f) it gives control
    characters, e.g. for a cp1252 file with one corrupt byte."""
    for candidate in ("utf-8", "cp1252"):
        if _codec(candidate) == _codec(tried):
            continue
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        if _problem(raw, text, candidate) is None:
            return candidate
    return None


def _advice(raw: bytes, encoding: str) -> str:
    fits = _fitting_encoding(raw, encoding)
    if fits is None:
        return "Neither utf-8 nor cp1252 reads it as text: fix the file."
    if fits == "utf-8":
        return "It reads as UTF-8 text: set the source's `encoding: utf-8`."
    return f"It reads as text in {fits}: set the source's `encoding: {fits}`."


def _decode(raw: bytes, path: Path, encoding: str) -> str:
    """The file's text; an error naming the file (and line) when it is empty, not in ``encoding``, or decodes into
    something that is not text (a byte-order mark or NUL pattern of another encoding, mojibake, control characters).

    A byte-order mark of the configured encoding's family is dropped (``utf-8`` reads a UTF-8 file with one).
    """
    codec = _codec(encoding)
    for bom, bom_codec, family in _BOMS:
        if raw.startswith(bom):
            if codec not in {family, bom_codec, f"{family}-sig"}:
                raise DataError(
                    f"{path}: starts with a {bom_codec.upper()} byte-order mark, so it is {family} text, not "
                    f"{encoding}. Set the source's `encoding: {family}`."
                )
            raw, codec = raw[len(bom):], bom_codec
            break
    else:
        wide = _wide_encoding(raw)
        if wide and codec != wide:
            if codec == wide[:6]:  # utf-16 / utf-32 without a byte-order mark: its NUL bytes give the byte order
                codec = wide
            else:
                raise DataError(
                    f"{path}: NUL bytes at every {'second' if wide.startswith('utf-16') else 'fourth'} byte: the file is {wide} "
                    f"text (without a byte-order mark), not {encoding}. Set the source's `encoding: {wide}`."
                )
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: byte {raw[exc.start]:#04x} cannot be decoded as {encoding}. " + _advice(raw, encoding)
        ) from exc
    if not text.strip():
        raise DataError(f"{path}: file is empty" + (" (only blank lines)" if text else ""))
    problem = _problem(raw, text, encoding)
    if problem:
        what, fits = problem
        advice = f"Set the source's `encoding: {fits}`." if fits else _advice(raw, encoding)
        raise DataError(f"{path}, {what} {advice}")
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
    """Carve missing splits (fraction < 1 or row count, e.g. A2T's 5,000 IMDB validation reviews) from train: a
    random sample from a fixed seeded permutation, never a slice (IMDB's train is sorted by label)."""
    order = np.random.default_rng(seed).permutation(len(train))
    out, start, taken = {}, 0, {}
    for split in ("test", "validation"):
        if split in carve:
            n = taken[split] = _take(carve[split], len(train))
            out[split] = train.iloc[order[start : start + n]].reset_index(drop=True)
            start += n
    if start >= len(train):
        # Name the key(s): carve.validation alone, or carve with each split's rows.
        if len(taken) == 1:
            key, asked = f"carve.{next(iter(taken))}", str(start)
        else:
            key, asked = "carve", " + ".join(f"{n} ({split})" for split, n in taken.items()) + f" = {start}"
        raise DataError(f"{key}: {asked} rows requested from a train split of {len(train)} rows, "
                        "leaving none for training")
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
