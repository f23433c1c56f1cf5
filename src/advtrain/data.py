"""Datasets: read a source (hub copy or local files), check it, carve and sample splits, write parquet + summary.

Every split leaves here as a ``text,label`` frame with labels 0..k-1: k (``num_labels``) is the dataset's
``num_labels`` when configured, else the largest label + 1 (every class in between must occur), recorded in the
split's parquet (``DataFrame.attrs``) and summary, where training and evaluation read it. Anything else is a
``DataError`` that names
the file (and line, where there is one) and the problem: a recorded sha256 that does not match, a text file whose
last line has no line break (probably truncated), rows without text (unless ``empty_texts: drop``), a missing label.
Each split's summary records the files its rows came from (path, sha256, bytes, rows, rows left out).
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain.config import effective_source

SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""


# --------------------------------------------------------------------------- reading


def _file_bytes(path: Path, sha256: str | None = None, key: str | None = None) -> tuple[bytes, dict]:
    """The file's content (gunzipped for .gz) and its record for the data summary (path, sha256 and size of the
    file as stored); checked against ``sha256`` when one is recorded (``key`` names the setting), as a download's."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    stored = path.read_bytes()
    digest = hashlib.sha256(stored).hexdigest()
    if sha256 and digest != sha256.lower():
        raise DataError(
            f"{key or 'sha256'}: {path} has sha256 {digest}, not {sha256.lower()} as recorded: the file changed, or "
            "was cut short or corrupted, since the checksum was recorded. Restore the file, or record the new "
            "checksum if the change is intended."
        )
    raw = stored
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(stored)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    return raw, {"path": str(path), "sha256": digest, "bytes": len(stored)}


def _check_last_line(text: str, path: Path, record: dict, key: str | None) -> None:
    """A text file whose last line has no line break was most likely cut short while it was written or copied (a
    csv's last text shortened, its label lost): an error naming the file and the line, unless its sha256 vouches
    for it."""
    last = text[max(text.rfind("\n"), text.rfind("\r")) + 1:]  # "\r" alone: an old Mac file's line break
    if not last.strip():
        return
    line = (text.count("\n") or text.count("\r")) + 1
    where = f"`{key}: {record['sha256']}`" if key else f"its `sha256: {record['sha256']}` in the source"
    raise DataError(
        f"{path}, line {line}: the last line has no line break ({last[-40:]!r}): the file was "
        f"probably truncated. Restore the whole file; if it is complete as it is, end it with a line break or "
        f"record {where}."
    )


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


def _read_text(path: Path, encoding: str, sha256: str | None = None, key: str | None = None) -> tuple[str, dict]:
    """A local text file decoded and checked (its recorded ``sha256``, its encoding, its last line), and its record
    for the data summary. ``key`` is the setting that holds the file's sha256."""
    raw, record = _file_bytes(path, sha256, key)
    text = _decode(raw, path, encoding)
    if not sha256:  # a recorded checksum vouches for the file as it is
        _check_last_line(text, path, record, key)
    return text, record


def _rt_polarity_file(path: Path, label: int, encoding: str, sha256: str | None = None,
                      key: str | None = None) -> tuple[pd.DataFrame, list[int], dict]:
    """One of MR's files: its sentences with ``label``, the line of each, and the file's record."""
    text, record = _read_text(path, encoding, sha256, key)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    df = pd.DataFrame({"text": [line.strip() for line in lines], "label": label})
    return df, list(range(1, len(lines) + 1)), record


def read_rt_polarity(pos: Path, neg: Path, encoding: str = "cp1252") -> pd.DataFrame:
    """The MR ``rt-polarity.pos/.neg`` pair: one sentence per ``\\n``-terminated line, label from the file.

    Split on ``"\\n"`` only: the files contain byte 0x85 (cp1252 "…"), which ``str.splitlines`` would treat as a
    line break when the text is decoded as latin-1.
    """
    frames = [_rt_polarity_file(Path(path), label, encoding)[0] for path, label in ((pos, 1), (neg, 0))]
    return pd.concat(frames, ignore_index=True)


def _label_text_file(path: Path, encoding: str, sha256: str | None = None,
                     key: str | None = None) -> tuple[pd.DataFrame, list[int], dict]:
    text, record = _read_text(path, encoding, sha256, key)
    labels, texts, lines = [], [], []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        label, sep, body = line.partition(" ")
        if not sep or not label.lstrip("-").isdigit():
            raise DataError(f"{path}, line {i}: expected '<label> <text>', got {line[:60]!r}")
        labels.append(int(label))
        texts.append(body.strip())
        lines.append(i)
    return pd.DataFrame({"text": texts, "label": labels}), lines, record


def read_label_text(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """``<label> <text>`` per line (the TextFooler files, e.g. its YELP sample)."""
    return _label_text_file(Path(path), encoding)[0]


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise DataError(f"{path}: cannot read as parquet ({exc})") from exc


def _parse_table(text: str, path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False)
        sep = "\t" if fmt == "tsv" else ","
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse as {fmt} ({exc})") from exc


def _record_lines(text: str, fmt: str, rows: int) -> list[int] | None:
    """The line each data row of a csv/tsv/jsonl text starts on (1-based, as an editor shows it); None when they
    cannot be told (then rows are named by number)."""
    if fmt == "jsonl":
        starts = [i for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    else:
        starts, before = [], 0
        reader = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
        try:
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):  # pandas skips blank and whitespace-only lines
                    starts.append(before + 1)
                before = reader.line_num
        except csv.Error:  # e.g. a field beyond the csv module's size limit: fall back to row numbers
            return None
        starts = starts[1:]  # the header
    return starts if len(starts) == rows else None


def _table_file(path: Path, fmt: str, encoding: str, sha256: str | None = None,
                key: str | None = None) -> tuple[pd.DataFrame, Callable[[], list[int] | None], dict]:
    """A csv/tsv/jsonl/parquet file, all columns kept; a function giving each row's line (worked out only when a
    row has to be named); the file's record."""
    if fmt == "parquet":
        _, record = _file_bytes(path, sha256, key)
        return _read_parquet(path).reset_index(drop=True), lambda: None, record
    text, record = _read_text(path, encoding, sha256, key)
    df = _parse_table(text, path, fmt)
    return df, functools.cache(lambda: _record_lines(text, fmt, len(df))), record


def read_table(path: Path, fmt: str, encoding: str = "utf-8") -> pd.DataFrame:
    """csv / tsv / jsonl (optionally gzipped) or parquet, all columns kept."""
    path = Path(path)
    if fmt == "parquet":
        return _read_parquet(path)
    return _table_file(path, fmt, encoding)[0]


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
    label_map: dict | None = None, lines: list[int] | Callable | None = None, num_labels: int | None = None,
    key: str = "num_labels",
) -> pd.DataFrame:
    """Select and rename the text and label columns; map labels to class indices 0, 1, ...; reject anything else.

    ``num_labels``: the classes the dataset has (configured under ``key``); a label outside 0..num_labels-1 is an
    error naming its row. Unset: any label that is a whole number >= 0 (:func:`class_count` then checks the set).
    ``lines``: the line in the file of each row of the frame as read, which ``df`` (its index) is or is a subset of:
    errors then name the line (or the row as read) rather than the row of ``df``.
    """
    for kind, col in (("text", text_column), ("label", label_column)):
        if col not in df.columns:
            raise DataError(
                f"{where}: missing {kind} column {col!r} (columns: {', '.join(map(str, df.columns))}); "
                f"set the source's `{kind}_column`"
            )

    def place(row: int) -> str:
        if lines is None:
            return f"row {row + 1}"
        located, read = lines() if callable(lines) else lines, int(df.index[row])
        return f"line {located[read]}" if located else f"row {read + 1}"

    nulls = np.flatnonzero(df[text_column].isna().to_numpy())
    if nulls.size:
        raise DataError(f"{where}: {place(int(nulls[0]))} has no text ({nulls.size} rows without text)")
    out = pd.DataFrame({"text": df[text_column].astype(str).to_numpy(), "label": df[label_column].to_numpy()})
    # A missing label is a missing field (a row cut short, a lost separator), not a label to map.
    unlabelled = np.flatnonzero(df[label_column].isna().to_numpy()
                                | (df[label_column].astype(str).str.strip() == "").to_numpy())
    if unlabelled.size:
        raise DataError(f"{where}: {place(int(unlabelled[0]))} has no {label_column!r} value "
                        f"({unlabelled.size} row{'s' if unlabelled.size > 1 else ''} without one): a missing field")
    if label_map:
        mapping = {str(k): v for k, v in label_map.items()}
        unmapped = sorted({str(v) for v in out["label"]} - set(mapping))
        if unmapped:
            raise DataError(f"{where}: labels {unmapped} are not in the source's label_map")
        out["label"] = [mapping[str(v)] for v in out["label"]]
    labels = pd.to_numeric(out["label"], errors="coerce")
    bad = labels.isna() | (labels < 0) | (labels != labels.round())
    if num_labels is not None:
        bad |= labels >= num_labels
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        allowed = (f"one of the {num_labels} classes 0..{num_labels - 1} (`{key}: {num_labels}`)"
                   if num_labels is not None else "a class index (a whole number 0, 1, 2, ...)")
        raise DataError(
            f"{where}: label {out['label'].iloc[row]!r} in {place(row)} is not {allowed}; add a `label_map` "
            "to the dataset's config"
        )
    out["label"] = labels.astype("int64")
    return out


def class_count(name: str, ds_config: dict, frames: dict[str, tuple[pd.DataFrame, str, list]]) -> int:
    """The dataset's number of classes: ``num_labels`` when configured (:func:`normalise` has checked every label
    against it), else the largest label + 1 over the source's splits, every class below it present in one of them
    (labels 1/2 with no 0 are a numbering to map, not three classes)."""
    configured = ds_config.get("num_labels")
    if configured is not None:
        return int(configured)
    seen = set().union(*(set(df["label"].tolist()) for df, _, _ in frames.values()))
    count = max(seen, default=0) + 1
    absent = sorted(set(range(count)) - seen)
    if absent:
        origins = "; ".join(where for _, where, _ in frames.values())
        raise DataError(
            f"datasets.{name} ({origins}): the labels run to {count - 1} but class{'es' if len(absent) > 1 else ''} "
            f"{', '.join(map(str, absent))} never occur: number the classes 0..k-1 with `datasets.{name}.label_map` "
            f"(e.g. YELP polarity's 1/2: {{1: 0, 2: 1}}), or set `datasets.{name}.num_labels` if a class is absent "
            "from these rows"
        )
    return max(count, 2)


def label_count(path: str | Path, df: pd.DataFrame | None = None) -> int:
    """The number of classes of a split written by :func:`write_split` (recorded in its parquet); a frame without
    the record (a test's, an augmenter's): its largest label + 1, at least 2."""
    df = read_split(path) if df is None else df
    recorded = df.attrs.get("num_labels")
    return int(recorded) if recorded is not None else max(int(df["label"].max()) + 1, 2)


def check_label_space(df: pd.DataFrame, where: str, num_labels: int, model: str) -> None:
    """A test split scored by a model with ``num_labels`` classes must have the same classes: an out-of-distribution
    set shares the training set's label space (YELP's negative/positive for IMDB and MR; not AG News' 4 topics)."""
    recorded = df.attrs.get("num_labels")
    if recorded is not None and int(recorded) != num_labels:
        raise DataError(
            f"{where}: {recorded} classes, but {model} has {num_labels}: an out-of-distribution set must share the "
            "training set's labels. Leave it out with `run.ood_datasets`, or give it the training set's classes "
            "(`label_map`, `num_labels`)"
        )
    outside = np.flatnonzero(df["label"].to_numpy() >= num_labels)
    if outside.size:
        row = int(outside[0])
        raise DataError(f"{where}: label {int(df['label'].iloc[row])} in row {row + 1} is not one of the "
                        f"{num_labels} classes of {model}")


#: The cells pandas.read_csv reads as missing by default (its ``na_values``), as the ``datasets`` csv loader (pandas)
#: did for the reference code: in a csv/tsv text column they are a missing value written out, not a text.
NA_SPELLINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
})


def keep_texts(
    df: pd.DataFrame, where: str, text_column: str = "text", *, lines: list[int] | Callable | None = None,
    spelled: bool = False, policy: str = "error", key: str = "empty_texts",
) -> tuple[pd.DataFrame, int]:
    """``df`` without its rows that have no text (null, empty or blank; with ``spelled``, a csv/tsv's missing value
    written out, :data:`NA_SPELLINGS`) and how many were left out (``policy: drop``); with ``policy: error``, an
    error naming ``where``, the rows (their ``lines`` in the file where known) and the setting ``key``."""
    if text_column not in df.columns:  # normalise names the missing column
        return df, 0
    texts = df[text_column]
    null = texts.isna().to_numpy()
    stripped = texts.where(~null, "").astype(str).str.strip()
    missing = null | (stripped == "").to_numpy()
    if spelled:
        missing |= stripped.isin(NA_SPELLINGS).to_numpy()
    rows = np.flatnonzero(missing)
    if not rows.size:
        return df, 0
    located = lines() if callable(lines) else lines

    def at(i: int) -> str:
        value = texts.iloc[i]
        return f"{f'line {located[i]}' if located else f'row {i + 1}'} ({'null' if null[i] else repr(value)})"

    listed = ", ".join(at(i) for i in rows[:5]) + (f" and {rows.size - 5} more" if rows.size > 5 else "")
    if policy == "drop":
        print(f"{where}: left out {rows.size} of {len(df)} rows without text (`{key}: drop`): {listed}", flush=True)
        return df.loc[~missing], int(rows.size)  # the index stays the rows' as read (normalise's `lines`)
    one = rows.size == 1
    raise DataError(
        f"{where}: {rows.size} row{'' if one else 's'} without text (empty, or a missing value such as NaN): "
        f"{listed}. Fill in or remove {'it' if one else 'them'}, or set `{key}: drop` to leave such rows out (the "
        "data summary counts them)."
    )


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


def _origin(name: str, ds_config: dict, hf_path: str | None) -> dict[str, tuple[pd.DataFrame, str, list[dict]]]:
    """Every split the source provides: its rows (normalised to text/label, rows without text left out or an error
    as `empty_texts` says), where they came from, and the record of each file read (path, sha256, bytes, rows)."""
    kind, source = effective_source(ds_config)
    label_map, num_labels = ds_config.get("label_map"), ds_config.get("num_labels")
    policy, policy_key = ds_config.get("empty_texts", "error"), f"datasets.{name}.empty_texts"

    def checked(df, where, record, lines=None, spelled=False, text_column="text", label_column="label"):
        kept, dropped = keep_texts(df, where, text_column, lines=lines, spelled=spelled, policy=policy,
                                   key=policy_key)
        record = {**record, "rows": int(len(df)), "empty_texts_dropped": dropped}
        return normalise(kept, where, text_column, label_column, label_map, lines, num_labels,
                         f"datasets.{name}.num_labels"), record

    frames: dict[str, tuple[pd.DataFrame, str, list[dict]]] = {}
    if kind == "hf":
        for split, src_split in source["splits"].items():
            where = f"{hf_path} [{src_split}]"
            df, record = checked(read_hf_split(Path(hf_path), src_split), where,
                                 {"path": str(hf_path), "split": src_split}, lambda: None,
                                 text_column=source.get("text_column", "text"),
                                 label_column=source.get("label_column", "label"))
            frames[split] = (df, where, [record])
        return frames
    fmt, files = source["format"], source["files"]
    sums = source.get("sha256") or {}

    def recorded(file_key: str) -> tuple[str | None, str]:
        return sums.get(file_key), f"datasets.{name}.source.local.sha256.{file_key}"

    if fmt == "rt-polarity":
        if not {"pos", "neg"} <= set(files):
            raise DataError(f"datasets.{name}.source.local.files: rt-polarity needs `pos` and `neg` files")
        parts, records = [], []
        for file_key, label in (("pos", 1), ("neg", 0)):
            path = Path(files[file_key])
            raw, lines, record = _rt_polarity_file(path, label, source.get("encoding", "cp1252"), *recorded(file_key))
            df, record = checked(raw, str(path), record, lines)
            parts.append(df)
            records.append(record)
        frames["train"] = (pd.concat(parts, ignore_index=True), f"{files['pos']} + {files['neg']}", records)
        return frames
    enc = source.get("encoding", "utf-8")
    for split, path in files.items():
        if fmt == "label-text":
            raw, lines, record = _label_text_file(Path(path), enc, *recorded(split))
            df, record = checked(raw, str(path), record, lines)
        else:
            raw, lines, record = _table_file(Path(path), fmt, enc, *recorded(split))
            # A csv/tsv cell cannot hold a null: a missing text is written out ("NaN", "NA", ...).
            df, record = checked(raw, str(path), record, lines, fmt in ("csv", "tsv"),
                                 source.get("text_column", "text"), source.get("label_column", "label"))
        frames[split] = (df, str(path), [record])
    return frames


def load_source(name: str, ds_config: dict, hf_path: str | None) -> dict[str, tuple[pd.DataFrame, str]]:
    """Every split the source provides (normalised to text/label), each with the file it came from."""
    return {split: (df, where) for split, (df, where, _) in _origin(name, ds_config, hf_path).items()}


def prepare(name: str, ds_config: dict, hf_path: str | None,
            splits: list[str]) -> dict[str, tuple[pd.DataFrame, list[dict]]]:
    """The requested splits of a dataset, checked, carved and sampled as configured, each with the record of the
    files its rows came from (a carved split: the train split's)."""
    frames = _origin(name, ds_config, hf_path)
    classes = class_count(name, ds_config, frames)  # before carving and sampling: the source's classes
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
        train, origin, records = frames["train"]
        try:
            carved = carve_splits(train, {s: carve[s] for s in missing}, seed)
        except DataError as exc:
            raise DataError(f"datasets.{name}.{exc} ({origin})") from None
        frames.update({s: (df, f"{origin}, carved {s}" if s != "train" else origin, records)
                       for s, df in carved.items()})
    limits = ds_config.get("max_examples") or {}
    out = {}
    for split in splits:
        df, origin, records = frames[split]
        df = sample(df, limits.get(split), seed)
        check_split(df, f"datasets.{name} ({origin})", split)
        df = df.copy()
        df.attrs["num_labels"] = classes  # travels in the parquet (pandas writes attrs) to training and evaluation
        out[split] = (df, records)
    return out


def prepare_dataset(name: str, ds_config: dict, hf_path: str | None, splits: list[str]) -> dict[str, pd.DataFrame]:
    """The requested splits of a dataset, checked, carved and sampled as configured."""
    return {split: df for split, (df, _) in prepare(name, ds_config, hf_path, splits).items()}


# --------------------------------------------------------------------------- writing


def summarise(df: pd.DataFrame) -> dict:
    """Row count, number of classes, label balance and a content hash (order-sensitive) of a split; the positive
    fraction for two classes."""
    digest = hashlib.sha256()
    for text, label in zip(df["text"], df["label"], strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    counts = df["label"].value_counts().sort_index()
    classes = label_count("", df)
    summary = {"rows": int(len(df)), "num_labels": classes, "labels": {str(k): int(v) for k, v in counts.items()}}
    if classes == 2:
        summary["positive_fraction"] = float(df["label"].mean())
    return {**summary, "sha256": digest.hexdigest()}


def write_split(df: pd.DataFrame, parquet_path: str | Path, summary_path: str | Path,
                sources: list[dict] | None = None) -> dict:
    """The split as parquet and its summary as JSON; ``sources``: the record of each file its rows came from
    (path, sha256, bytes, rows read, rows without text left out)."""
    Path(parquet_path).parent.mkdir(parents=True, exist_ok=True)
    out = df[["text", "label"]]
    out.attrs = {"num_labels": label_count("", df)}
    out.to_parquet(parquet_path, index=False)
    summary = summarise(df)
    if sources is not None:
        summary["sources"] = sources
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_split(path: str | Path) -> pd.DataFrame:
    """A split written by this module (re-checked: a truncated file is an error naming it)."""
    df = read_table(Path(path), "parquet")
    if list(df.columns[:2]) != ["text", "label"]:
        raise DataError(f"{path}: expected columns text,label, got {', '.join(df.columns)}")
    return df
