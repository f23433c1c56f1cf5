"""How much an attack changed each text, and whether the recipe's own bounds held, from the attack records.

For every successful adversarial example (Successful or Maximized): the words changed (TextAttack's
``AttackedText.all_words_diff``, as in the records), the sentence-encoder cosine similarity of the whole original
and adversarial texts, and the checks of the recipe's constraints (:data:`BOUNDS`), read off the final text:

- similarity: the recipe's sentence-encoder threshold and metric, on the recipe's windows. TextAttack checks the
  window of ``window`` words around each word *when that word is swapped*, against the original (BAE) or against the
  text of that step (TextFooler), and skips texts shorter than the window; here every changed word's window is
  compared between the original and the *final* text (TextAttack's ``text_window_around_index``), and the lowest
  counts. Later swaps inside a window lower it, so this is stricter than the recipe: a flagged example may still have
  passed every check the attack made. A2T compares whole texts with the original, which the final text must pass
  exactly (up to the encoder's numerics).
- modification rate (A2T, A2T-MLM): at most max(ceil(0.1 * words), 4) words changed (``MaxModificationRate``);
  BERT-Attack: at most ceil(0.4 * words) (``MaxWordsPerturbed``, of the fewer of the two texts' words).
- edit distance (DeepWordBug): the Levenshtein distance of the whole original and final text, at most 30 characters
  (``LevenshteinEditDistance``, against the original, so the final text must pass it exactly).
- stopwords: no changed word is a stopword (``StopwordModification``: TextFooler's own list, NLTK's English list for
  the others), compared as TextAttack does, case-sensitively.

With a ``perplexity`` scorer (:mod:`advtrain.attacks.fluency`), each example also gets the perplexity of its
original and of its adversarial text under the configured causal LM (``attacks.resources.causal_lm``), as
OpenAttack's fluency metric reports it.

The encoder is the configured ``attacks.resources.sentence_encoder`` (the one A2T and, without USE, TextFooler and
BAE use). When an attack used USE, the similarity check uses a different encoder than the attack did, and the table
says so. PSO and PWWS have no similarity or rate bound; only their stopword bound is checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain.attacks.budget import SUCCESS
from advtrain.attacks.recipes import REGISTRY, Bounds, Similarity  # noqa: F401  (Bounds, Similarity: re-exported)

#: The bounds of each recipe in :mod:`advtrain.attacks.recipes` that can be read off the final text (its record's).
BOUNDS = {name: recipe.bounds for name, recipe in REGISTRY.items() if recipe.bounds}


def describe(recipe: str) -> str:
    """What is checked for ``recipe``, in one line (for the table)."""
    bounds = BOUNDS[recipe]
    parts = []
    if bounds.similarity:
        s = bounds.similarity
        where = f"{s.window}-word windows" if s.window else "whole text"
        parts.append(f"{s.metric} ≥ {s.threshold:g} ({where})")
    if bounds.max_rate:
        rate, least = bounds.max_rate
        parts.append(f"≤ max(⌈{rate:g}·words⌉, {least}) words")
    if bounds.max_percent:
        parts.append(f"≤ ⌈{bounds.max_percent:g}·words⌉ words")
    if bounds.max_edit_distance is not None:
        parts.append(f"Levenshtein ≤ {bounds.max_edit_distance} characters (whole text)")
    parts.append(f"no {'TextFooler' if bounds.stopwords == 'textfooler' else 'NLTK'} stopword changed")
    return "; ".join(parts)


def similarity(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Row-wise cosine (or TextAttack's angular) similarity of two embedding matrices."""
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.clip((a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), -1.0, 1.0)
    if metric == "angular":
        return 1.0 - np.arccos(cos) / math.pi
    if metric != "cosine":
        raise ValueError(f"unknown similarity metric {metric!r}")
    return cos


def stopword_set(kind: str) -> frozenset[str]:
    if kind == "textfooler":
        from advtrain.attacks.recipes import TEXTFOOLER_STOPWORDS

        return TEXTFOOLER_STOPWORDS
    import nltk

    return frozenset(nltk.corpus.stopwords.words("english"))


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """Character span of each of ``words`` in ``text``, found left to right (as TextAttack locates its words)."""
    spans, cursor = [], 0
    for word in words:
        start = text.find(word, cursor)
        if start < 0:
            raise ValueError(f"word {word!r} not found in the text after position {cursor}")
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return spans


def mark(text: str, words: Sequence[str], changed: Sequence[int], context: int | None = 8,
         marker: str = "**") -> str:
    """``text`` with the words at ``changed`` wrapped in ``marker``; with ``context``, only the words within
    ``context`` of a change are kept, gaps shown as "…". Whitespace runs become one space."""
    spans = word_spans(text, words)
    changed = sorted(set(changed))
    if not spans:
        return " ".join(text.split())
    keep = [(0, len(spans) - 1)]
    if context is not None and changed:
        keep = []
        for i in changed:
            lo, hi = max(0, i - context), min(len(spans) - 1, i + context)
            if keep and lo <= keep[-1][1] + 1:
                keep[-1] = (keep[-1][0], max(keep[-1][1], hi))
            else:
                keep.append((lo, hi))
    pieces = []
    marked = set(changed)
    for n, (lo, hi) in enumerate(keep):
        start = 0 if lo == 0 else spans[lo][0]
        end = len(text) if hi == len(spans) - 1 else spans[hi][1]
        out, cursor = [], start
        for i in range(lo, hi + 1):
            if i in marked:
                s, e = spans[i]
                out += [text[cursor:s], marker, text[s:e], marker]
                cursor = e
        out.append(text[cursor:end])
        piece = " ".join("".join(out).split())
        if lo > 0:
            piece = "… " + piece
        if hi < len(spans) - 1 and n == len(keep) - 1:
            piece += " …"
        pieces.append(piece)
    return " ".join(pieces)


def check(records: Sequence[dict], recipe: str, encode: Callable[[list[str]], np.ndarray],
          attacked_text=None, stopwords: frozenset[str] | None = None, context: int | None = 8,
          perplexity: Callable[[list[str]], np.ndarray] | None = None) -> pd.DataFrame:
    """One row per successful record of ``recipe``: size of the change, similarity, the bound checks, the
    perplexities of the original and adversarial texts (with ``perplexity``; NaN without) and the texts with the
    changed words marked (``context`` words around each change).

    ``encode`` maps a list of texts to embeddings (rows); ``attacked_text`` is TextAttack's ``AttackedText`` class
    (imported after NLTK is set up; see :func:`advtrain.attacks.resources.import_textattack`).
    """
    if attacked_text is None:
        from textattack.shared import AttackedText as attacked_text
    bounds = BOUNDS[recipe]
    stopwords = stopword_set(bounds.stopwords) if stopwords is None else stopwords
    sim = bounds.similarity
    rows, texts = [], {}

    def slot(text: str) -> int:
        return texts.setdefault(text, len(texts))

    for record in records:
        if record["result_type"] not in SUCCESS:
            continue
        original = attacked_text(record["original_text"])
        perturbed = attacked_text(record["perturbed_text"])
        changed = sorted(original.all_words_diff(perturbed))
        row = {"index": record["index"], "ground_truth": record["ground_truth"],
               "perturbed_output": record["perturbed_output"], "words_changed": record["words_changed"],
               "words_total": record["words_total"],
               "changed_pct": 100.0 * record["words_changed"] / record["words_total"] if record["words_total"] else 0.0,
               "full": (slot(original.text), slot(perturbed.text)), "windows": []}
        if sim and changed and not (sim.window and len(perturbed.words) < sim.window):
            width = sim.window or float("inf")
            row["windows"] = [(slot(original.text_window_around_index(i, width)),
                               slot(perturbed.text_window_around_index(i, width))) for i in changed]
        if bounds.max_rate:
            rate, least = bounds.max_rate
            row["max_words"] = max(math.ceil(original.num_words * rate), least)
            row["exceeds_modification_rate"] = len(changed) > row["max_words"]
        if bounds.max_percent:  # MaxWordsPerturbed: of the fewer words of the two texts
            row["max_words"] = math.ceil(min(original.num_words, perturbed.num_words) * bounds.max_percent)
            row["exceeds_modification_rate"] = len(changed) > row["max_words"]
        if bounds.max_edit_distance is not None:
            import editdistance  # TextAttack's LevenshteinEditDistance's

            row["edit_distance"] = int(editdistance.eval(original.text, perturbed.text))
            row["exceeds_edit_distance"] = row["edit_distance"] > bounds.max_edit_distance
        row["stopwords_changed"] = sum(original.words[i] in stopwords for i in changed)
        row["original_marked"] = mark(original.text, original.words, changed, context)
        row["perturbed_marked"] = mark(perturbed.text, perturbed.words, changed, context)
        rows.append(row)

    embeddings = np.asarray(encode(list(texts))) if texts else np.zeros((0, 1))
    # One scorer call for the run's whole texts (not the windows): the broker batches them all together.
    full, ordered = sorted({slot for row in rows for slot in row["full"]}), list(texts)
    fluency = dict.fromkeys(full, math.nan)
    if perplexity is not None and full:
        fluency.update(zip(full, np.asarray(perplexity([ordered[i] for i in full]), dtype=float), strict=True))
    out = []
    for row in rows:
        a, b = row.pop("full")
        windows = row.pop("windows")
        row["original_perplexity"], row["perturbed_perplexity"] = float(fluency[a]), float(fluency[b])
        row["similarity"] = float(similarity(embeddings[a], embeddings[b])[0])
        if sim:
            row["similarity_threshold"] = sim.threshold
            row["similarity_checked"] = bool(windows)
            lowest = (float(similarity(embeddings[[i for i, _ in windows]], embeddings[[j for _, j in windows]],
                                       sim.metric).min()) if windows else math.nan)
            row["bound_similarity"] = lowest
            row["exceeds_similarity"] = lowest < sim.threshold if windows else None  # None: not checked
        row["stopword_changed"] = row["stopwords_changed"] > 0
        row["exceeds_any"] = bool(row.get("exceeds_similarity") or row.get("exceeds_modification_rate")
                                  or row.get("exceeds_edit_distance") or row["stopword_changed"])
        out.append(row)
    columns = ["index", "ground_truth", "perturbed_output", "words_changed", "words_total", "changed_pct", "similarity", "similarity_threshold",
               "bound_similarity", "similarity_checked", "exceeds_similarity", "max_words",
               "exceeds_modification_rate", "edit_distance", "exceeds_edit_distance", "stopwords_changed",
               "stopword_changed", "exceeds_any",
               "original_perplexity", "perturbed_perplexity", "original_marked", "perturbed_marked"]
    return pd.DataFrame(out).reindex(columns=columns)


def sentence_encoder(path: str | Path, batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    """``encode(texts)`` with the sentence-transformers folder at ``path``, on the GPU when there is one."""
    from sentence_transformers import SentenceTransformer

    from advtrain import device
    from advtrain.attacks.resources import sentence_encoder_path

    model = SentenceTransformer(str(sentence_encoder_path(path)), device=str(device.device()))

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    return encode
