"""POS-tagged sentences for the Linguistic Correlation Analysis: NLTK's Penn Treebank sample, CoNLL-2000, or a file.

A sentence is ``{"words": [...], "tags": [...]}``; splits are JSON lines, one sentence per line. The split is fixed
by the config (a seeded shuffle for a corpus with one part, the corpus's own train/test files for CoNLL-2000), so
every model is probed on the same words.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from advtrain.data import DataError

#: Penn Treebank's empty elements (traces, null complementisers): not words of the surface sentence.
TRACE_TAG = "-NONE-"


def _nltk_corpus(name: str, nltk_data: str | Path | None):
    import nltk

    if nltk_data:
        if not Path(nltk_data).is_dir():
            raise DataError(f"lca.data.nltk_data: {nltk_data} is not a folder (an NLTK data folder with "
                            f"corpora/{name}).")
        from advtrain.downloads import nltk_folder_problem

        problem = nltk_folder_problem(nltk_data)  # NLTK would skip the folder silently
        if problem:
            raise DataError(f"lca.data.nltk_data: {problem}.")
        if str(nltk_data) not in nltk.data.path:
            nltk.data.path.insert(0, str(nltk_data))
    corpus = getattr(nltk.corpus, name)
    try:
        corpus.fileids()
    except LookupError:
        raise DataError(f"lca.data: NLTK's {name} corpus was not found in {nltk.data.path}. Set lca.data.nltk_data "
                        f"to an NLTK data folder that has corpora/{name} (nltk.download('{name}') fetches it).") \
            from None
    return corpus


def read_tagged_file(path: str | Path, word_column: int = 0, tag_column: int = 1) -> list[list[tuple[str, str]]]:
    """CoNLL-style file: one ``word ... tag`` token per line (whitespace-separated), a blank line between sentences."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (lca.data.files)")
    sentences, current = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 ({exc.reason})") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            if current:
                sentences.append(current)
                current = []
            continue
        if len(fields) <= max(word_column, tag_column):
            raise DataError(f"{path}, line {number}: expected at least {max(word_column, tag_column) + 1} "
                            f"whitespace-separated columns (word, tag), got {line!r}")
        current.append((fields[word_column], fields[tag_column]))
    if current:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path}: no tagged sentences")
    return sentences


def _as_records(sentences, drop_traces: bool) -> list[dict]:
    records = []
    for sentence in sentences:
        pairs = [(w, t) for w, t in sentence if not (drop_traces and t == TRACE_TAG)]
        if pairs:
            records.append({"words": [w for w, _ in pairs], "tags": [t for _, t in pairs]})
    return records


def _split(records: list[dict], test_fraction: float, seed: int) -> dict[str, list[dict]]:
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(records) * test_fraction))
    if n_test >= len(records):
        raise DataError(f"lca.data.test_fraction: {test_fraction} leaves no training sentences "
                        f"({len(records)} sentences)")
    test = sorted(order[:n_test])
    train = sorted(order[n_test:])
    return {"train": [records[i] for i in train], "test": [records[i] for i in test]}


def load_pos_data(settings: dict) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` sentences as configured in ``lca.data``.

    ``source``: ``treebank`` (NLTK's 3,914-sentence WSJ sample, split by ``test_fraction``/``split_seed``),
    ``conll2000`` (its train.txt/test.txt) or ``local`` (``files: {train, test}`` or ``{all}`` in CoNLL layout).
    """
    source = settings.get("source", "treebank")
    drop = settings.get("drop_traces", True)
    fraction, seed = settings.get("test_fraction", 0.1), settings.get("split_seed", 42)
    if source == "treebank":
        corpus = _nltk_corpus("treebank", settings.get("nltk_data"))
        splits = _split(_as_records(corpus.tagged_sents(), drop), fraction, seed)
    elif source == "conll2000":
        corpus = _nltk_corpus("conll2000", settings.get("nltk_data"))
        splits = {s: _as_records(corpus.tagged_sents(f"{s}.txt"), drop) for s in ("train", "test")}
    elif source == "local":
        files = settings.get("files") or {}
        columns = settings.get("columns") or {}
        read = lambda f: read_tagged_file(f, columns.get("word", 0), columns.get("tag", 1))  # noqa: E731
        if set(files) == {"train", "test"}:
            splits = {s: _as_records(read(files[s]), drop) for s in ("train", "test")}
        elif set(files) == {"all"}:
            splits = _split(_as_records(read(files["all"]), drop), fraction, seed)
        else:
            raise DataError(f"lca.data.files: give either {{train, test}} or {{all}}, got {sorted(files)}")
    else:
        raise DataError(f"lca.data.source: unknown source {source!r} (treebank, conll2000, local)")
    limits = settings.get("max_sentences") or {}
    for split, limit in limits.items():
        if limit:
            splits[split] = splits[split][:limit]
    for split, records in splits.items():
        if not records:
            raise DataError(f"lca.data: the {split} split has no sentences")
    return splits


def tag_set(train: list[dict]) -> list[str]:
    """Tags of the training split, sorted: the label set of the tagger and the probe."""
    return sorted({t for s in train for t in s["tags"]})


def write_sentences(records: list[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_sentences(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(splits: dict[str, list[dict]]) -> dict:
    counts = Counter(t for s in splits["train"] for t in s["tags"])
    return {
        split: {"sentences": len(records), "words": sum(len(s["words"]) for s in records)}
        for split, records in splits.items()
    } | {"tags": len(counts), "train_tag_counts": dict(counts.most_common())}
