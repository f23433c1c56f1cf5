"""advtrain.data: readers, checks, carving/sampling, summaries, and the real developer data (when present)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_data

from advtrain.data import (
    DataError,
    carve_splits,
    check_split,
    load_source,
    normalise,
    prepare,
    prepare_dataset,
    read_hf_split,
    read_label_text,
    read_rt_polarity,
    read_split,
    read_table,
    sample,
    summarise,
    write_split,
)

# --------------------------------------------------------------------------- helpers


def frame(n: int, prefix: str = "review") -> pd.DataFrame:
    """``n`` balanced rows with unique texts (so disjointness can be checked by text)."""
    return pd.DataFrame({
        "text": [f"{prefix} {i} was {'good' if i % 2 else 'bad'}" for i in range(n)],
        "label": [i % 2 for i in range(n)],
    })


def csv_config(files: dict[str, Path], **extra) -> dict:
    return {"role": "train", "source": {"local": {"format": "csv", "files": {k: str(v) for k, v in files.items()}}},
            **extra}


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- readers


def test_rt_polarity_splits_on_newline_only(tmp_path):
    pos = ["a fine film \u2026 truly", "warm and funny", "the best \u2026 of the year \u2026"]
    neg = ["dull \u2026 and long", "a mess"]
    (tmp_path / "p").write_bytes(("\n".join(pos) + "\n").encode("cp1252"))
    (tmp_path / "n").write_bytes(("\n".join(neg) + "\n").encode("cp1252"))
    assert b"\x85" in (tmp_path / "p").read_bytes()  # the byte str.splitlines would break on

    df = read_rt_polarity(tmp_path / "p", tmp_path / "n", "cp1252")

    assert list(df.columns) == ["text", "label"]
    assert df["text"].tolist() == pos + neg
    assert df["label"].tolist() == [1, 1, 1, 0, 0]


def test_rt_polarity_without_trailing_newline_is_named_as_truncated(tmp_path):
    """A last line without a line break is a file cut short until its recorded sha256 vouches for it."""
    (tmp_path / "p").write_bytes(b"one\ntwo")
    (tmp_path / "n").write_bytes(b"three\n")
    digest = hashlib.sha256(b"one\ntwo").hexdigest()
    with pytest.raises(DataError) as err:
        read_rt_polarity(tmp_path / "p", tmp_path / "n")
    assert str(err.value).startswith(f"{tmp_path / 'p'}, line 2: the last line has no line break ('two'): the file "
                                     "was probably truncated.")
    local = {"format": "rt-polarity", "files": {"pos": str(tmp_path / "p"), "neg": str(tmp_path / "n")}}
    ds = {"role": "train", "source": {"local": local}}
    with pytest.raises(DataError, match=rf"record `datasets\.MR\.source\.local\.sha256\.pos: {digest}`"):
        load_source("MR", ds, None)
    local["sha256"] = {"pos": digest.upper()}
    df, _ = load_source("MR", ds, None)["train"]
    assert df["text"].tolist() == ["one", "two", "three"]
    assert df["label"].tolist() == [1, 1, 0]


def test_rt_polarity_bad_encoding_names_file_and_line(tmp_path):
    (tmp_path / "rt.pos").write_bytes(b"first line\nsecond line\nthird \x85 line\n")
    (tmp_path / "rt.neg").write_bytes(b"fine\n")
    with pytest.raises(DataError) as err:
        read_rt_polarity(tmp_path / "rt.pos", tmp_path / "rt.neg", "utf-8")
    msg = str(err.value)
    assert "rt.pos" in msg
    assert "0x85" in msg
    assert "line 3" in msg, msg


def test_label_text_parsing(tmp_path):
    path = tmp_path / "yelp.txt"
    path.write_text("1 great food , friendly staff\n\n0 cold and   slow \n1 ok\r\n", encoding="utf-8")
    df = read_label_text(path)
    assert df["text"].tolist() == ["great food , friendly staff", "cold and   slow", "ok"]
    assert df["label"].tolist() == [1, 0, 1]


@pytest.mark.parametrize("line", ["great food without a label", "1", "x great food"])
def test_label_text_bad_line_names_file_and_line(tmp_path, line):
    path = tmp_path / "yelp.txt"
    path.write_text(f"1 fine\n0 also fine\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"yelp\.txt, line 3: expected '<label> <text>'"):
        read_label_text(path)


TABLE = pd.DataFrame({"id": [7, 8, 9], "sentence": ["a, quoted \"one\"", "tab\tinside", "plain"],
                      "stars": [1, 2, 1]})


def _write_table(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
        return
    if fmt == "jsonl":
        text = df.to_json(orient="records", lines=True)
    else:
        text = df.to_csv(sep="\t" if fmt == "tsv" else ",", index=False)
    raw = text.encode("utf-8")
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


@pytest.mark.parametrize(("fmt", "name"), [
    ("csv", "t.csv"), ("csv", "t.csv.gz"), ("tsv", "t.tsv"), ("tsv", "t.tsv.gz"),
    ("jsonl", "t.jsonl"), ("jsonl", "t.jsonl.gz"), ("parquet", "t.parquet"),
])
def test_read_table_formats(tmp_path, fmt, name):
    path = tmp_path / name
    _write_table(TABLE, path, fmt)
    df = read_table(path, fmt)
    assert list(df.columns) == ["id", "sentence", "stars"]  # all columns kept
    assert df["sentence"].tolist() == TABLE["sentence"].tolist()
    out = normalise(df, str(path), text_column="sentence", label_column="stars", label_map={1: 0, 2: 1})
    assert out["text"].tolist() == TABLE["sentence"].tolist()
    assert out["label"].tolist() == [0, 1, 0]
    assert str(out["label"].dtype) == "int64"


def test_read_table_csv_keeps_na_like_cells_as_written(tmp_path):
    """The reader converts nothing: "NA" stays "NA" (never NaN -> "nan"); whether it is a text is load_source's."""
    path = tmp_path / "t.csv"
    path.write_text("text,label\nNA,1\nnull,0\n,1\n", encoding="utf-8")
    df = normalise(read_table(path, "csv"), str(path))
    assert df["text"].tolist() == ["NA", "null", ""]


def test_read_table_encoding_option(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("text,label\ncaf\u00e9 \u2026,1\n".encode("cp1252"))
    assert read_table(path, "csv", encoding="cp1252")["text"].tolist() == ["caf\u00e9 \u2026"]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    import datasets

    dest = tmp_path_factory.mktemp("hf") / "tiny"
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": [f"train text {i}" for i in range(20)],
                                             "lab": [i % 2 for i in range(20)]}),
        "test": datasets.Dataset.from_dict({"sentence": ["test a", "test b", "test c", "test d"],
                                            "lab": [1, 0, 1, 0]}),
    })
    dd.save_to_disk(str(dest))
    return dest


def test_read_hf_split(hf_dir):
    df = read_hf_split(hf_dir, "test")
    assert df["sentence"].tolist() == ["test a", "test b", "test c", "test d"]
    assert df["lab"].tolist() == [1, 0, 1, 0]


def test_read_hf_missing_split_names_folder_and_split(hf_dir):
    with pytest.raises(DataError) as err:
        read_hf_split(hf_dir, "validation")
    assert str(hf_dir) in str(err.value)
    assert "'validation'" in str(err.value)


def test_read_hf_not_a_saved_dataset(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="save_to_disk") as err:
        read_hf_split(tmp_path / "junk", "train")
    assert "junk" in str(err.value)


def test_prepare_dataset_from_hf_copy(hf_dir):
    ds = {"role": "train", "source": {"hf": {"name": "tiny", "splits": {"train": "train", "test": "test"},
                                             "text_column": "sentence", "label_column": "lab"}},
          "carve": {"validation": 0.25}}
    out = prepare_dataset("TINY", ds, str(hf_dir), ["train", "validation", "test"])
    assert {k: len(v) for k, v in out.items()} == {"train": 15, "validation": 5, "test": 4}
    assert out["test"]["text"].tolist() == ["test a", "test b", "test c", "test d"]
    assert not set(out["validation"]["text"]) & set(out["train"]["text"])


# --------------------------------------------------------------------------- normalise


def test_normalise_label_map_yelp_style(tmp_path):
    path = tmp_path / "yelp.txt"
    path.write_text("1 bad\n2 good\n2 fine\n", encoding="utf-8")
    df = read_label_text(path)
    for label_map in ({1: 0, 2: 1}, {"1": 0, "2": 1}):  # keys compared as strings (YAML gives ints)
        out = normalise(df, str(path), label_map=label_map)
        assert out["label"].tolist() == [0, 1, 1]


def test_normalise_label_map_missing_label(tmp_path):
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 2, 3]})
    with pytest.raises(DataError, match=r"yelp\.txt: labels \['3'\] are not in the source's label_map"):
        normalise(df, "yelp.txt", label_map={1: 0, 2: 1})


@pytest.mark.parametrize(("column", "kind"), [("text", "text"), ("label", "label")])
def test_normalise_missing_column_names_file_and_column(column, kind):
    df = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}).drop(columns=column)
    with pytest.raises(DataError) as err:
        normalise(df, "data/reviews.csv")
    msg = str(err.value)
    assert msg.startswith("data/reviews.csv:")
    assert f"missing {kind} column '{column}'" in msg
    assert f"{kind}_column" in msg


def test_normalise_custom_columns_selects_and_renames():
    df = pd.DataFrame({"review": ["x", "y"], "sentiment": ["1", "0"], "other": [5, 6]})
    out = normalise(df, "f.csv", text_column="review", label_column="sentiment")
    assert list(out.columns) == ["text", "label"]
    assert out["label"].tolist() == [1, 0]


@pytest.mark.parametrize(("labels", "bad", "row", "num_labels"), [
    ([0, 1, 2], "2", 3, 2), (["0", "pos", "1"], "pos", 2, None), ([1, -1, 0], "-1", 2, None),
    ([0.5, 1, 0], "0.5", 1, None),
])
def test_normalise_rejects_labels_that_are_not_class_indices(labels, bad, row, num_labels):
    """Whole numbers >= 0, below `num_labels` when it is given (tests/unit/test_kclass.py: more classes)."""
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": labels})
    with pytest.raises(DataError) as err:
        normalise(df, "f.csv", num_labels=num_labels)
    msg = str(err.value)
    assert msg.startswith("f.csv:")
    assert bad in msg and f"row {row}" in msg and "label_map" in msg


def test_normalise_null_text_does_not_pass_silently(tmp_path):
    """A missing text (null in jsonl/parquet/hub data) must not leave as a NaN/"None"/"nan" text."""
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n{"text": null, "label": 0}\n', encoding="utf-8")
    try:
        out = normalise(read_table(path, "jsonl"), str(path))
    except DataError as exc:
        assert "t.jsonl" in str(exc)
    else:
        assert out["text"].notna().all(), out
        assert not out["text"].isin(["nan", "None"]).any(), out


# --------------------------------------------------------------------------- rows without text (issue 23)


EMPTY_ROWS = 'text,label\ngood film,1\n,0\nNaN,1\n"two\nlines",0\n  ,1\nbad film,0\nNA,1\n'


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_empty_and_nan_texts_stop_with_file_lines_and_key(tmp_path, fmt):
    path = tmp_path / f"train.{fmt}"
    path.write_text(EMPTY_ROWS.replace(",", "\t") if fmt == "tsv" else EMPTY_ROWS, encoding="utf-8")
    ds = {"role": "train", "source": {"local": {"format": fmt, "files": {"train": str(path)}}}}
    with pytest.raises(DataError) as err:
        prepare_dataset("T", ds, None, ["train"])
    # The quoted text over lines 5-6 moves every later row down a line.
    assert str(err.value) == (
        f"{path}: 4 rows without text (empty, or a missing value such as NaN): line 3 (''), line 4 ('NaN'), "
        "line 7 ('  '), line 9 ('NA'). Fill in or remove them, or set `datasets.T.empty_texts: drop` to leave such "
        "rows out (the data summary counts them)."
    )


def test_empty_texts_drop_is_counted_in_the_summary(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(EMPTY_ROWS, encoding="utf-8")
    ds = {"role": "train", "empty_texts": "drop", "source": {"local": {"format": "csv", "files": {"train": str(path)}}}}
    ((df, sources),) = prepare("T", ds, None, ["train"]).values()
    assert df["text"].tolist() == ["good film", "two\nlines", "bad film"]
    assert df["label"].tolist() == [1, 0, 0]
    assert sources == [{"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "bytes": path.stat().st_size, "rows": 7, "empty_texts_dropped": 4}]
    summary = write_split(df, tmp_path / "train.parquet", tmp_path / "train.json", sources)
    assert json.loads((tmp_path / "train.json").read_text()) == summary
    assert summary["rows"] == 3 and summary["sources"][0]["empty_texts_dropped"] == 4


def test_jsonl_null_and_empty_texts_are_named_by_line(tmp_path):
    """As in a csv: the line in the file (a blank line counted), null shown as null."""
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n\n{"text": "", "label": 0}\n{"text": null, "label": 1}\n'
                    '{"text": "NaN", "label": 0}\n', encoding="utf-8")
    ds = {"role": "train", "source": {"local": {"format": "jsonl", "files": {"train": str(path)}}}}
    with pytest.raises(DataError, match=re.escape(f"{path}: 2 rows without text (empty, or a missing value such as "
                                                  "NaN): line 3 (''), line 4 (null). Fill in")):
        load_source("T", ds, None)  # a jsonl string "NaN" is a text: only a csv/tsv cell cannot hold a null


def test_parquet_label_text_and_rt_polarity_empty_texts(tmp_path):
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["a", None, " "], "label": [1, 0, 1]}).to_parquet(pq, index=False)
    yelp = tmp_path / "yelp.txt"
    yelp.write_text("1 fine\n\n0 \n1 good\n", encoding="utf-8")
    (tmp_path / "p").write_bytes(b"fine\n\ngood\n")
    (tmp_path / "n").write_bytes(b"bad\n")
    cases = [
        ({"format": "parquet", "files": {"test": str(pq)}}, f"{pq}: 2 rows without text", "row 2 (null), row 3 (' ')"),
        ({"format": "label-text", "files": {"test": str(yelp)}}, f"{yelp}: 1 row without text", "line 3 ('')"),
        ({"format": "rt-polarity", "files": {"pos": str(tmp_path / "p"), "neg": str(tmp_path / "n")}},
         f"{tmp_path / 'p'}: 1 row without text", "line 2 ('')"),
    ]
    for local, head, rows in cases:
        with pytest.raises(DataError, match=re.escape(head) + r".*: " + re.escape(rows + ". Fill in")):
            load_source("D", {"role": "ood", "source": {"local": local}}, None)


def test_hub_empty_text_is_named_by_row(tmp_path):
    import datasets

    path = tmp_path / "hub"
    datasets.Dataset.from_dict({"text": ["a", "b", ""], "label": [1, 0, 1]}).save_to_disk(str(path))
    ds = {"role": "ood", "source": {"hf": {"name": "x/y", "splits": {"test": "train"}}}}
    with pytest.raises(DataError, match=re.escape(f"{path} [train]: 1 row without text (empty, or a missing value "
                                                  "such as NaN): row 3 ('')")):
        load_source("Y", ds, str(path))
    ((df, sources),) = prepare("Y", {**ds, "empty_texts": "drop"}, str(path), ["test"]).values()
    assert df["text"].tolist() == ["a", "b"]
    assert sources == [{"path": str(path), "split": "train", "rows": 3, "empty_texts_dropped": 1}]


def test_rows_are_numbered_where_lines_cannot_be_told(tmp_path):
    """A field beyond the csv module's size limit: pandas reads the file, the rows are named by number."""
    path = tmp_path / "t.csv"
    path.write_text(f"text,label\n{'long ' * 40000},1\nNaN,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}: 1 row without text (empty, or a missing value such as "
                                                  "NaN): row 2 ('NaN')")):
        load_source("T", csv_config({"train": path}), None)


def test_cr_line_breaks_are_line_breaks(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"text,label\rgood,1\rbad,0\r")
    assert load_source("T", csv_config({"train": path}), None)["train"][0]["text"].tolist() == ["good", "bad"]
    path.write_bytes(b"text,label\rgood,1\rbad")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 3: the last line has no line break ('bad')")):
        load_source("T", csv_config({"train": path}), None)


def test_label_error_after_dropped_rows_names_the_line(tmp_path):
    """Rows left out do not shift the line a later error names; a missing label is not a label_map matter."""
    path = tmp_path / "t.csv"
    path.write_text("text,label\n,1\ngood,1\nno label here\nbad,0\n", encoding="utf-8")
    ds = {"role": "train", "empty_texts": "drop", "source": {"local": {"format": "csv", "files": {"train": str(path)}}}}
    with pytest.raises(DataError) as err:
        load_source("T", ds, None)
    assert str(err.value) == f"{path}: line 4 has no 'label' value (1 row without one): a missing field"


# --------------------------------------------------------------------------- truncated files, sha256 (issue 23)


@pytest.mark.parametrize(("content", "last"), [
    ("label,text\n1,a fine film\n0,a dull and overlong fi", "'0,a dull and overlong fi'"),
    ("text,label\na fine film,1\na dull and overlong fi", "'a dull and overlong fi'"),
], ids=["label-text-order", "text-label-order"])
def test_csv_cut_mid_line_is_named_as_truncated(tmp_path, content, last):
    path = tmp_path / "train.csv"
    path.write_text(content, encoding="utf-8")
    digest = hashlib.sha256(content.encode()).hexdigest()
    ds = {"role": "train", "source": {"local": {"format": "csv", "files": {"train": str(path)}}}}
    with pytest.raises(DataError) as err:
        prepare_dataset("IMDB", ds, None, ["train"])
    assert str(err.value) == (
        f"{path}, line 3: the last line has no line break ({last}): the file was probably truncated. Restore the "
        "whole file; if it is complete as it is, end it with a line break or record "
        f"`datasets.IMDB.source.local.sha256.train: {digest}`."
    )


@pytest.mark.parametrize(("fmt", "name", "content"), [
    ("jsonl", "t.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "lab'),
    ("tsv", "t.tsv.gz", gzip.compress(b"text\tlabel\na fine fil")),
    ("label-text", "yelp.txt", b"1 fine\n0 bad fo"),
], ids=["jsonl", "tsv-gz", "label-text"])
def test_other_text_formats_cut_mid_line(tmp_path, fmt, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    ds = {"role": "ood", "source": {"local": {"format": fmt, "files": {"test": str(path)}}}}
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 2: the last line has no line break"):
        load_source("D", ds, None)


def test_recorded_sha256_is_checked_before_reading(tmp_path):
    path = write_csv(tmp_path / "train.csv", frame(6))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    ds = csv_config({"train": path})
    ds["source"]["local"]["sha256"] = {"train": digest}
    assert load_source("T", ds, None)["train"][0]["text"].tolist() == frame(6)["text"].tolist()
    path.write_bytes(path.read_bytes()[:-9])  # cut short
    with pytest.raises(DataError) as err:
        load_source("T", ds, None)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(err.value) == (
        f"datasets.T.source.local.sha256.train: {path} has sha256 {actual}, not {digest} as recorded: the file "
        "changed, or was cut short or corrupted, since the checksum was recorded. Restore the file, or record the "
        "new checksum if the change is intended."
    )


def test_summary_records_each_file_carved_splits_their_source(tmp_path):
    train = tmp_path / "train.csv.gz"
    train.write_bytes(gzip.compress(frame(40).to_csv(index=False).encode()))
    test = write_csv(tmp_path / "test.csv", frame(10, "test"))
    ds = {**csv_config({"train": train, "test": test}), "carve": {"validation": 8}}
    out = prepare("T", ds, None, ["train", "validation", "test"])
    record = {"path": str(train), "sha256": hashlib.sha256(train.read_bytes()).hexdigest(),  # the file as stored
              "bytes": train.stat().st_size, "rows": 40, "empty_texts_dropped": 0}
    assert out["train"][1] == out["validation"][1] == [record]
    assert out["test"][1] == [{"path": str(test), "sha256": hashlib.sha256(test.read_bytes()).hexdigest(),
                               "bytes": test.stat().st_size, "rows": 10, "empty_texts_dropped": 0}]
    assert [len(df) for df, _ in out.values()] == [32, 8, 10]


# --------------------------------------------------------------------------- bad data


def test_empty_file_names_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty$"):
        read_table(path, "csv")


@pytest.mark.parametrize(("name", "content", "read"), [
    ("t.tsv", b"", lambda p: read_table(p, "tsv")),
    ("t.jsonl", b"\n\n", lambda p: read_table(p, "jsonl")),
    ("t.csv.gz", gzip.compress(b""), lambda p: read_table(p, "csv")),
    ("t.parquet", b"", lambda p: read_table(p, "parquet")),
    ("yelp.txt", b"", read_label_text),
], ids=["tsv", "jsonl-blank-lines", "csv-gz", "parquet", "label-text"])
def test_empty_file_is_named_as_empty(tmp_path, name, content, read):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: file is empty"):
        read(path)


def test_empty_rt_polarity_file_is_named(tmp_path):
    """An empty .pos file is an error naming it, not a dataset with one class only."""
    (tmp_path / "rt.pos").write_bytes(b"")
    (tmp_path / "rt.neg").write_bytes(b"dull\nlong\n")
    with pytest.raises(DataError, match=r"rt\.pos: file is empty"):
        read_rt_polarity(tmp_path / "rt.pos", tmp_path / "rt.neg")


def test_missing_file_names_file(tmp_path):
    for reader in (lambda p: read_table(p, "csv"), lambda p: read_table(p, "parquet"), read_label_text):
        with pytest.raises(DataError, match=r"nothere\.\w+: file not found"):
            reader(tmp_path / "nothere.csv")


def test_non_utf8_gives_file_and_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\nfine,1\nalso fine,0\ncaf\xe9,1\n")
    with pytest.raises(DataError) as err:
        read_table(path, "csv")
    msg = str(err.value)
    assert msg.startswith(f"{path}, line 4:")
    assert "0xe9" in msg and "encoding" in msg


def test_non_utf8_in_gzip_and_label_text(tmp_path):
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"text,label\n\xff,1\n"))
    with pytest.raises(DataError, match=r"t\.csv\.gz, line 2: byte 0xff"):
        read_table(gz, "csv")
    txt = tmp_path / "y.txt"
    txt.write_bytes(b"1 ok\n0 ok\n1 \x92quoted\x92\n")
    with pytest.raises(DataError, match=r"y\.txt, line 3: byte 0x92"):
        read_label_text(txt)


# --------------------------------------------------------------------------- wrong encodings

ROWS = [(1, "a café in the crème brûlée district"), (0, "naïve, dull and far too long"), (1, "a charming film")]


def _write_rows(path: Path, fmt: str, encoding: str) -> None:
    """ROWS in ``fmt``, encoded as ``encoding`` (Python's utf-16 / utf-32 write a byte-order mark)."""
    if fmt == "label-text":
        text = "".join(f"{label} {t}\n" for label, t in ROWS)
    elif fmt == "rt-polarity":
        text = "".join(f"{t}\n" for _, t in ROWS)
    elif fmt == "jsonl":
        text = "".join(json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n" for label, t in ROWS)
    else:
        sep = "\t" if fmt == "tsv" else ","
        text = f"text{sep}label\n" + "".join(f"{t.replace(',', '')}{sep}{label}\n" for label, t in ROWS)
    path.write_bytes(text.encode(encoding))


def _read_rows(path: Path, fmt: str, encoding: str) -> list[str]:
    if fmt == "label-text":
        return read_label_text(path, encoding)["text"].tolist()
    if fmt == "rt-polarity":
        return read_rt_polarity(path, path, encoding)["text"].tolist()[: len(ROWS)]
    return read_table(path, fmt, encoding)["text"].tolist()


READERS = ["csv", "tsv", "jsonl", "label-text", "rt-polarity"]
# (id, written as, read as, what the message says): the file and the encoding that fits are named in each.
WRONG_ENCODINGS = [
    ("utf16-as-cp1252", "utf-16-le", "cp1252",
     r"NUL bytes at every second byte: the file is utf-16-le text \(without a byte-order mark\), not cp1252\. "
     r"Set the source's `encoding: utf-16-le`"),
    ("utf16-as-utf8", "utf-16-le", "utf-8", r"the file is utf-16-le text .*, not utf-8\. Set the source's "
     r"`encoding: utf-16-le`"),
    ("utf16-bom-as-cp1252", "utf-16", "cp1252",
     r"starts with a UTF-16-LE byte-order mark, so it is utf-16 text, not cp1252\. Set the source's "
     r"`encoding: utf-16`"),
    ("utf16-bom-as-utf8", "utf-16", "utf-8", r"UTF-16-LE byte-order mark.*`encoding: utf-16`"),
    ("utf8-as-cp1252", "utf-8", "cp1252",
     r", line \d: 'é' reads as 'Ã©' in cp1252: the file is UTF-8\. Set the source's `encoding: utf-8`"),
    ("utf8-as-latin1", "utf-8", "latin-1", r", line \d: 'é' reads as .* in latin-1: the file is UTF-8\."),
    ("latin1-as-utf8", "latin-1", "utf-8",
     r", line \d: byte 0xe9 cannot be decoded as utf-8\. It reads as text in cp1252: set the source's "
     r"`encoding: cp1252`"),
]


@pytest.mark.parametrize("fmt", READERS)
@pytest.mark.parametrize(("written", "read", "message"), [c[1:] for c in WRONG_ENCODINGS],
                         ids=[c[0] for c in WRONG_ENCODINGS])
def test_wrong_encoding_names_file_and_fitting_encoding(tmp_path, fmt, written, read, message):
    """Every reader that takes an `encoding` stops on a file in another one, naming the file (and line) and the
    encoding that fits; the advice, followed, reads the file."""
    path = tmp_path / f"data.{fmt}"
    _write_rows(path, fmt, written)
    with pytest.raises(DataError) as err:
        _read_rows(path, fmt, read)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    assert re.search(message, msg), msg
    advised = re.search(r"`encoding: ([\w-]+)`", msg).group(1)
    assert _read_rows(path, fmt, advised)[0].endswith("café in the crème brûlée district")


@pytest.mark.parametrize("fmt", READERS)
@pytest.mark.parametrize(("written", "read"), [("utf-16", "utf-16"), ("utf-16-le", "utf-16"), ("utf-16-be", "utf-16"),
                                               ("utf-16-be", "utf-16-be"), ("utf-32", "utf-32"),
                                               ("utf-8-sig", "utf-8"), ("utf-8-sig", "utf-8-sig"),
                                               ("cp1252", "cp1252"), ("latin-1", "latin-1")])
def test_matching_encoding_is_read(tmp_path, fmt, written, read):
    """The configured encoding's own byte-order mark is dropped (no '\\ufeff' in a header or the first text); a
    utf-16 file without one is read in the byte order its NUL bytes show."""
    path = tmp_path / f"data.{fmt}"
    _write_rows(path, fmt, written)
    assert _read_rows(path, fmt, read) == [t.replace(",", "") if fmt in ("csv", "tsv") else t for _, t in ROWS]


def test_control_characters_are_not_text(tmp_path):
    """A decoding that is mostly control characters is rejected; a few stray ones (as in real IMDB reviews) pass."""
    noisy = tmp_path / "noisy.txt"
    noisy.write_bytes(b"1 fine text\n0 \x01\x02\x03\x04 binary \x05\x06\x07\x08\n")
    with pytest.raises(DataError, match=r"noisy\.txt, line 2: \d+% of the characters are control or replacement "
                                        r"characters \(the first: '\\x01'\)"):
        read_label_text(noisy)
    stray = tmp_path / "stray.txt"
    stray.write_bytes(("1 it was \x96 well \x85 made\n" + "0 a long enough review of a dull film\n" * 10).encode())
    assert len(read_label_text(stray)) == 11


def test_nul_bytes_without_a_pattern_are_not_text(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"1 fine\n0 also fine\n1 bro\x00ken\n")
    with pytest.raises(DataError, match=r"bin\.txt, line 3: NUL characters: this is not utf-8 text\. "
                                        r"Neither utf-8 nor cp1252 reads it as text: fix the file"):
        read_label_text(path)


def test_corrupt_cp1252_byte_advises_no_other_encoding(tmp_path):
    """cp1252 leaves 0x81 undefined; latin-1 would read it, but would also turn the file's 0x85 ellipses into control
    characters, so it is not advised."""
    path = tmp_path / "rt.pos"
    path.write_bytes(b"a fine \x85 film\nsecond \x81 line\n")
    with pytest.raises(DataError, match=r"rt\.pos, line 2: byte 0x81 cannot be decoded as cp1252\. Neither utf-8 nor "
                                        r"cp1252 reads it as text: fix the file\.$"):
        read_rt_polarity(path, path)


def test_gzip_of_utf16_names_the_file(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress("text,label\ngood,1\nbad,0\n".encode("utf-16")))
    with pytest.raises(DataError, match=r"t\.csv\.gz: starts with a UTF-16-LE byte-order mark"):
        read_table(path, "csv")
    assert read_table(path, "csv", "utf-16")["text"].tolist() == ["good", "bad"]


def test_wrong_encoding_through_prepare_dataset(tmp_path):
    """MR's rt-polarity files saved as UTF-16 and read with the documented default (cp1252) stop the dataset."""
    for name in ("pos", "neg"):
        (tmp_path / f"rt.{name}").write_bytes("".join(f"{t} {i}\n" for i, (_, t) in enumerate(ROWS * 4))
                                              .encode("utf-16"))
    ds = {"role": "train", "source": {"local": {"format": "rt-polarity", "files": {
        "pos": str(tmp_path / "rt.pos"), "neg": str(tmp_path / "rt.neg")}}}, "carve": {"test": 0.25, "validation": 0.25}}
    with pytest.raises(DataError, match=r"rt\.pos: starts with a UTF-16-LE byte-order mark.*`encoding: utf-16`"):
        prepare_dataset("MR", ds, None, ["train", "validation", "test"])
    ds["source"]["local"]["encoding"] = "utf-16"
    out = prepare_dataset("MR", ds, None, ["train", "validation", "test"])
    assert not any("\x00" in t for t in out["train"]["text"])


def test_missing_column_through_load_source(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", pd.DataFrame({"review": ["a", "b"], "label": [0, 1]}))
    with pytest.raises(DataError) as err:
        load_source("T", csv_config({"train": path}), None)
    assert str(path) in str(err.value)
    assert "missing text column 'text'" in str(err.value)


def test_truncated_parquet_names_file(tmp_path):
    path = tmp_path / "train.parquet"
    frame(500).to_parquet(path, index=False)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    for read in (lambda p: read_table(p, "parquet"), read_split):
        with pytest.raises(DataError) as err:
            read(path)
        assert str(path) in str(err.value)
        assert "parquet" in str(err.value)


@pytest.mark.parametrize("content", [b"this is not gzip", gzip.compress(b"text,label\n" + b"words,1\n" * 500)[:60]],
                         ids=["not-gzip", "truncated-gzip"])
def test_bad_gzip_names_file(tmp_path, content):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"train\.csv\.gz: not a valid gzip file"):
        read_table(path, "csv")


def test_unparseable_csv_names_file(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('text,label\n"unterminated quote,1\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.csv: cannot parse as csv"):
        read_table(path, "csv")


def test_check_split_problems():
    with pytest.raises(DataError, match=r"here: split 'test' is empty"):
        check_split(frame(0), "here", "test")
    with pytest.raises(DataError, match=r"here: split 'train' has one class only \(label 1\)"):
        check_split(pd.DataFrame({"text": ["a", "b"], "label": [1, 1]}), "here", "train")
    with pytest.raises(DataError, match=r"only empty texts"):
        check_split(pd.DataFrame({"text": ["", "  "], "label": [0, 1]}), "here", "train")
    check_split(frame(4), "here", "train")


@pytest.mark.parametrize(("test_df", "problem"), [
    (frame(0), "is empty"),
    (pd.DataFrame({"text": ["x", "y", "z"], "label": [1, 1, 1]}), "one class only"),
], ids=["empty-split", "one-class"])
def test_bad_split_through_prepare_dataset_names_file(tmp_path, test_df, problem):
    train = write_csv(tmp_path / "train.csv", frame(40))
    test = write_csv(tmp_path / "test_split.csv", test_df)
    with pytest.raises(DataError) as err:
        prepare_dataset("T", csv_config({"train": train, "test": test}), None, ["train", "test"])
    msg = str(err.value)
    assert problem in msg and "'test'" in msg
    assert "test_split.csv" in msg, f"message does not name the file: {msg}"


def test_empty_label_text_file_is_an_error(tmp_path):
    path = tmp_path / "yelp.txt"
    path.write_text("\n\n", encoding="utf-8")
    ds = {"role": "ood", "source": {"local": {"format": "label-text", "files": {"test": str(path)}}}}
    with pytest.raises(DataError, match="is empty"):
        prepare_dataset("Y", ds, None, ["test"])


def test_rt_polarity_needs_pos_and_neg(tmp_path):
    ds = {"role": "train", "source": {"local": {"format": "rt-polarity", "files": {"train": "x"}}}}
    with pytest.raises(DataError, match=r"datasets\.MR\.source\.local\.files"):
        load_source("MR", ds, None)


# --------------------------------------------------------------------------- prepare_dataset: carve, sample


@pytest.mark.parametrize(("carve", "sizes"), [
    ({"validation": 0.1, "test": 0.2}, {"train": 140, "validation": 20, "test": 40}),
    ({"validation": 30, "test": 50}, {"train": 120, "validation": 30, "test": 50}),
], ids=["fraction", "count"])
def test_carve_deterministic_and_disjoint(carve, sizes):
    train = frame(200)
    a = carve_splits(train, carve, seed=7)
    b = carve_splits(train, carve, seed=7)
    c = carve_splits(train, carve, seed=8)
    assert {k: len(v) for k, v in a.items()} == sizes
    for split in sizes:
        pd.testing.assert_frame_equal(a[split], b[split])
    assert a["validation"]["text"].tolist() != c["validation"]["text"].tolist()
    texts = {k: set(v["text"]) for k, v in a.items()}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert texts["train"] | texts["validation"] | texts["test"] == set(train["text"])  # nothing lost
    # train keeps the source order
    order = {t: i for i, t in enumerate(train["text"])}
    assert [order[t] for t in a["train"]["text"]] == sorted(order[t] for t in a["train"]["text"])


def test_carve_more_than_train_is_an_error():
    with pytest.raises(DataError, match="carve"):
        carve_splits(frame(50), {"validation": 30, "test": 30}, seed=0)


@pytest.mark.parametrize(("carve", "message"), [
    ({"validation": 300}, r"datasets\.T\.carve\.validation: 300 rows requested from a train split of 300 rows"),
    ({"validation": 200, "test": 150},
     r"datasets\.T\.carve: 150 \(test\) \+ 200 \(validation\) = 350 rows requested from a train split of 300"),
], ids=["one-split", "two-splits"])
def test_carve_count_beyond_train_names_the_key(tmp_path, carve, message):
    train = write_csv(tmp_path / "train.csv", frame(300, "train"))
    with pytest.raises(DataError, match=message):
        prepare_dataset("T", csv_config({"train": train}, carve=carve), None, ["train", *carve])


def test_carve_count_samples_a_label_sorted_train(tmp_path):
    """A2T's IMDB split is a count (5,000 of 25,000 reviews) sampled at random; IMDB's train is sorted by label, so
    a slice would hold one class: the carve takes exactly the count, from both classes."""
    sorted_train = frame(500, "train").sort_values("label", kind="stable").reset_index(drop=True)
    test = write_csv(tmp_path / "test.csv", frame(40, "test"))
    ds = csv_config({"train": write_csv(tmp_path / "train.csv", sorted_train), "test": test},
                    carve={"validation": 100})
    out = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    assert {k: len(v) for k, v in out.items()} == {"train": 400, "validation": 100, "test": 40}
    assert sorted_train["label"].iloc[:100].nunique() == 1  # what a slice would give
    assert 0.35 < out["validation"]["label"].mean() < 0.65
    assert set(out["validation"]["text"]) | set(out["train"]["text"]) == set(sorted_train["text"])


def test_prepare_dataset_carves_missing_splits(tmp_path):
    train = write_csv(tmp_path / "train.csv", frame(300, "train"))
    test = write_csv(tmp_path / "test.csv", frame(60, "test"))
    ds = csv_config({"train": train, "test": test}, carve={"validation": 0.1}, split_seed=3)
    out = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    again = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    other = prepare_dataset("T", {**ds, "split_seed": 4}, None, ["train", "validation", "test"])

    assert {k: len(v) for k, v in out.items()} == {"train": 270, "validation": 30, "test": 60}
    for split in out:
        pd.testing.assert_frame_equal(out[split], again[split])
    assert out["validation"]["text"].tolist() != other["validation"]["text"].tolist()
    pd.testing.assert_frame_equal(out["test"], frame(60, "test"))  # a split the source has is not carved
    train_texts = set(out["train"]["text"])
    assert not train_texts & set(out["validation"]["text"])
    assert not train_texts & set(out["test"]["text"])
    for df in out.values():  # both classes everywhere (balanced source, random carve)
        assert df["label"].nunique() == 2
        assert 0.3 < df["label"].mean() < 0.7


def test_prepare_dataset_default_split_seed_is_fixed(tmp_path):
    train = write_csv(tmp_path / "train.csv", frame(100))
    ds = csv_config({"train": train}, carve={"validation": 10, "test": 10})
    a = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    b = prepare_dataset("T", {**ds, "split_seed": 42}, None, ["train", "validation", "test"])
    for split in a:
        pd.testing.assert_frame_equal(a[split], b[split])


def test_prepare_rt_polarity_carves_all_splits(tiny_data):
    ds = {"role": "train", "source": {"local": {"format": "rt-polarity", "encoding": "cp1252",
                                                "files": {"pos": str(tiny_data["mr_pos"]),
                                                          "neg": str(tiny_data["mr_neg"])}}},
          "carve": {"validation": 40, "test": 40}}
    out = prepare_dataset("MR", ds, None, ["train", "validation", "test"])
    assert {k: len(v) for k, v in out.items()} == {"train": 220, "validation": 40, "test": 40}
    assert all("\u2026" in t for t in out["train"]["text"])


@pytest.mark.parametrize("missing", ["validation", "test"])
def test_missing_split_without_carve_names_dataset_key(tmp_path, missing):
    train = write_csv(tmp_path / "train.csv", frame(50))
    other = {"test": "validation", "validation": "test"}[missing]
    files = {"train": train, other: write_csv(tmp_path / f"{other}.csv", frame(10, other))}
    with pytest.raises(DataError) as err:
        prepare_dataset("MYDATA", csv_config(files), None, ["train", "validation", "test"])
    msg = str(err.value)
    assert "datasets.MYDATA" in msg
    assert f"no {missing} split" in msg
    assert "datasets.MYDATA.carve" in msg


def test_missing_train_cannot_be_carved(tmp_path):
    test = write_csv(tmp_path / "test.csv", frame(20))
    ds = csv_config({"test": test}, carve={"validation": 0.1})
    with pytest.raises(DataError, match=r"datasets\.NOTRAIN"):
        prepare_dataset("NOTRAIN", ds, None, ["train", "validation", "test"])


def test_max_examples_sampling_fixed_for_seed(tmp_path):
    train = write_csv(tmp_path / "train.csv", frame(400, "train"))
    test = write_csv(tmp_path / "test.csv", frame(100, "test"))
    ds = csv_config({"train": train, "test": test}, carve={"validation": 50}, split_seed=1,
                    max_examples={"train": 60, "test": 25})
    out = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    again = prepare_dataset("T", ds, None, ["train", "validation", "test"])
    other = prepare_dataset("T", {**ds, "split_seed": 2}, None, ["train", "validation", "test"])

    assert {k: len(v) for k, v in out.items()} == {"train": 60, "validation": 50, "test": 25}
    for split in out:
        pd.testing.assert_frame_equal(out[split], again[split])
    assert out["test"]["text"].tolist() != other["test"]["text"].tolist()
    assert set(out["test"]["text"]) <= set(frame(100, "test")["text"])
    # original order kept
    idx = [int(t.split()[1]) for t in out["test"]["text"]]
    assert idx == sorted(idx)
    for df in out.values():
        assert df["label"].nunique() == 2


def test_sample_helper():
    df = frame(30)
    assert sample(df, None, 0) is df
    assert sample(df, 30, 0) is df
    assert sample(df, 100, 0) is df
    pd.testing.assert_frame_equal(sample(df, 10, 5), sample(df, 10, 5))
    assert len(sample(df, 10, 5)) == 10


def test_local_label_text_with_label_map_through_prepare(tmp_path):
    path = tmp_path / "yelp.txt"
    path.write_text("".join(f"{1 + i % 2} review {i}\n" for i in range(20)), encoding="utf-8")
    ds = {"role": "ood", "source": {"local": {"format": "label-text", "files": {"test": str(path)}}},
          "label_map": {1: 0, 2: 1}}
    out = prepare_dataset("YELP", ds, None, ["test"])
    assert out["test"]["label"].tolist() == [i % 2 for i in range(20)]


# --------------------------------------------------------------------------- summarise, write/read


def test_summarise_hash_and_counts():
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [1, 0, 1, 1]})
    s = summarise(df)
    assert s["rows"] == 4
    assert s["labels"] == {"0": 1, "1": 3}
    assert s["positive_fraction"] == pytest.approx(0.75) and s["num_labels"] == 2
    expected = hashlib.sha256(b"1\ta\n0\tb\n1\tc\n1\td\n").hexdigest()
    assert s["sha256"] == expected

    same = pd.DataFrame({"text": list("abcd"), "label": pd.array([1, 0, 1, 1], dtype="int32")}, index=[9, 8, 7, 6])
    assert summarise(same)["sha256"] == s["sha256"]  # content only: index and int width do not matter

    changed_text = df.assign(text=["a", "b", "c", "e"])
    changed_label = df.assign(label=[1, 0, 1, 0])
    reordered = df.iloc[::-1].reset_index(drop=True)
    hashes = {summarise(x)["sha256"] for x in (changed_text, changed_label, reordered)}
    assert s["sha256"] not in hashes and len(hashes) == 3


def test_write_split_read_split_round_trip(tmp_path):
    df = pd.DataFrame({"text": ["caf\u00e9 \u2026", "", "tab\there", "NA"], "label": [1, 0, 1, 0]})
    pq, js = tmp_path / "out" / "deep" / "train.parquet", tmp_path / "out" / "deep" / "train.json"
    summary = write_split(df.assign(extra=1), pq, js)
    back = read_split(pq)
    assert list(back.columns) == ["text", "label"]
    assert back["text"].tolist() == df["text"].tolist()
    assert back["label"].tolist() == df["label"].tolist()
    assert json.loads(js.read_text()) == summary == summarise(back) == summarise(df)


def test_read_split_wrong_columns(tmp_path):
    path = tmp_path / "x.parquet"
    pd.DataFrame({"sentence": ["a"], "label": [1]}).to_parquet(path)
    with pytest.raises(DataError, match=r"x\.parquet: expected columns text,label"):
        read_split(path)


# --------------------------------------------------------------------------- real developer data


@pytest.mark.shared_data
def test_real_mr_rt_polarity_cp1252():
    pos, neg = shared_data("mr", "rt-polarity.pos"), shared_data("mr", "rt-polarity.neg")
    df = read_rt_polarity(pos, neg, "cp1252")
    assert len(df) == 10662
    assert df["label"].value_counts().to_dict() == {1: 5331, 0: 5331}
    # the 15 + 18 bytes 0x85 are decoded as cp1252's ellipsis, inside lines (not line breaks)
    assert int(df["text"].str.count("\u2026").sum()) == 33
    assert not df["text"].str.contains("\x85").any()
    assert (df["text"].str.strip() != "").all()
    ds = {"role": "train", "source": {"local": {"format": "rt-polarity", "encoding": "cp1252",
                                                "files": {"pos": str(pos), "neg": str(neg)}}},
          "carve": {"validation": 0.1, "test": 0.1}}
    out = prepare_dataset("MR", ds, None, ["train", "validation", "test"])
    assert {k: len(v) for k, v in out.items()} == {"train": 8530, "validation": 1066, "test": 1066}


@pytest.mark.shared_data
def test_real_imdb_train_csv_gz():
    path = shared_data("imdb", "train.csv.gz")
    raw = read_table(path, "csv")
    assert list(raw.columns) == ["label", "rating", "id", "text"]
    df = normalise(raw, str(path))
    assert len(df) == 25000
    assert df["label"].value_counts().to_dict() == {0: 12500, 1: 12500}
    assert df["text"].str.len().min() > 0


@pytest.mark.shared_data
def test_real_imdb_carved_as_the_study_config():
    """config.yaml's IMDB carve on the real 25,000 training reviews (negatives first in the file): A2T's 20,000 /
    5,000, both labels in each."""
    import yaml
    from conftest import REPO

    imdb = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["IMDB"]
    ds = {**imdb, "source": {"local": {"format": "csv", "files": {
        "train": str(shared_data("imdb", "train.csv.gz")), "test": str(shared_data("imdb", "test.csv.gz"))}}}}
    out = prepare_dataset("IMDB", ds, None, ["train", "validation"])
    assert {k: len(v) for k, v in out.items()} == {"train": 20000, "validation": 5000}
    assert 0.48 < out["validation"]["label"].mean() < 0.52


@pytest.mark.shared_data
def test_real_yelp_label_text():
    path = shared_data("yelp", "textfooler_yelp_1000.txt")
    df = normalise(read_label_text(path), str(path))
    assert len(df) == 1000
    assert df["label"].value_counts().to_dict() == {0: 518, 1: 482}
