"""Tiny, offline stand-ins for every attack resource, in the layouts the real ones have.

- a counter-fitted-style ``WordEmbedding`` folder (paragramcf layout) whose synonym groups are close together;
- a HowNet candidate bank (``word_candidates_sense.pkl`` format: word -> pos -> candidates);
- a flair ``SequenceTagger`` file that tags by lexicon lookup (one-hot embeddings straight to the tag layer);
- a sentence-transformers folder (the tiny BERT + mean pooling);
- a victim classifier: the tiny BERT with a sequence-classification head, briefly trained on the synthetic reviews;
- a causal LM for the fluency metric: the tiny GPT-2 of conftest (:func:`build_causal_lm`);
- a run's validity checks as attack_validity writes them (:func:`validity_frame`).
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FILLER, NEGATIVE, POSITIVE, build_tiny_decoder, shared_data, synthetic_reviews

# Synonym groups: each group's vectors lie close together (cosine > 0.8), groups are far apart.
GROUPS: dict[str, list[str]] = {
    "positive": POSITIVE + ["fine", "nice", "lovely", "decent", "terrific", "splendid"],
    "negative": NEGATIVE + ["lousy", "horrible", "mediocre", "weak", "tedious", "awkward"],
    "movie": ["movie", "film", "picture", "flick", "cinema"],
    "plot": ["plot", "storyline", "narrative"],
    "story": ["story", "tale", "yarn"],
    "acting": ["acting", "performance", "portrayal"],
    "cast": ["cast", "ensemble", "actors"],
    "script": ["script", "screenplay", "dialogue"],
    "director": ["director", "filmmaker", "auteur"],
    "scene": ["scene", "sequence", "segment"],
    "ending": ["ending", "finale", "conclusion"],
    "really": ["really", "truly", "genuinely"],
    "quite": ["quite", "rather", "fairly"],
    "very": ["very", "extremely", "highly"],
}
POS_OF_GROUP = {"positive": "ADJ", "negative": "ADJ", "really": "ADV", "quite": "ADV", "very": "ADV"}
CLOSED_CLASS = {"the": "DET", "a": "DET", "this": "DET", "was": "VERB", "is": "VERB", "and": "CONJ", "it": "PRON"}
UPOS = ["ADJ", "ADV", "NOUN", "VERB", "DET", "CONJ", "PRON", "X"]


def lexicon() -> dict[str, str]:
    """Universal POS of every word the tiny resources know."""
    tags = {w: POS_OF_GROUP.get(g, "NOUN") for g, words in GROUPS.items() for w in words}
    tags.update(CLOSED_CLASS)
    return tags


def vocabulary(n_random: int = 240) -> list[str]:
    words = [w for group in GROUPS.values() for w in group]
    words += [w for w in FILLER if w not in words]
    words += [f"word{i:03d}" for i in range(n_random)]
    assert len(words) == len(set(words))
    return words


def build_word_embedding(dest: Path, dim: int = 24, neighbours: int = 60, seed: int = 0) -> Path:
    """A paragramcf-layout folder: paragram.npy, wordlist.pickle, nn.npy, mse_dist.p, cos_sim.p."""
    rng = np.random.default_rng(seed)
    words = vocabulary()
    group_of = {w: g for g, ws in GROUPS.items() for w in ws}
    centres = {g: rng.normal(size=dim) for g in GROUPS}
    rows = []
    for w in words:
        base = centres[group_of[w]] if w in group_of else rng.normal(size=dim)
        rows.append(base + 0.2 * rng.normal(size=dim))
    matrix = np.asarray(rows, dtype=np.float32)
    dist = ((matrix[:, None, :] - matrix[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(dist, axis=1, kind="stable")[:, : neighbours + 1]  # row i starts with i itself
    assert (nn[:, 0] == np.arange(len(words))).all()
    dest.mkdir(parents=True, exist_ok=True)
    np.save(dest / "paragram.npy", matrix)
    np.save(dest / "nn.npy", nn.astype(np.int64))
    with open(dest / "wordlist.pickle", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    for name in ("mse_dist.p", "cos_sim.p"):  # empty caches, as pickled dict-of-dicts
        with open(dest / name, "wb") as f:
            pickle.dump(defaultdict(dict), f)
    return dest


def build_hownet(dest: Path) -> Path:
    """word -> {pos: [candidates]}, the format of TextAttack's word_candidates_sense.pkl."""
    tags = lexicon()
    bank = {}
    for words in GROUPS.values():
        for w in words:
            pos = {"ADJ": "adj", "ADV": "adv", "NOUN": "noun", "VERB": "verb"}[tags[w]]
            bank[w] = {pos: [c for c in words if c != w]}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as f:
        pickle.dump(bank, f)
    return dest


def build_flair_tagger(dest: Path, tags: dict[str, str] | None = None) -> Path:
    """A flair SequenceTagger file ("upos" layer) that returns each word's tag in ``tags`` (default: the lexicon
    above; a tag outside UPOS becomes X), unknown words X."""
    import torch
    from flair.data import Dictionary
    from flair.embeddings import OneHotEmbeddings
    from flair.models import SequenceTagger

    tags = {w: t if t in UPOS else "X" for w, t in (lexicon() if tags is None else tags).items()}
    vocab = Dictionary(add_unk=True)
    for w in tags:
        vocab.add_item(w)
    tag_dict = Dictionary(add_unk=False)
    for t in UPOS:
        tag_dict.add_item(t)
    embeddings = OneHotEmbeddings(vocab, embedding_length=len(UPOS))
    tagger = SequenceTagger(embeddings, tag_dict, "upos", use_rnn=False, use_crf=False, reproject_embeddings=False,
                            dropout=0.0, word_dropout=0.0, locked_dropout=0.0)
    with torch.no_grad():
        table = torch.zeros(len(vocab), len(UPOS))
        for w, t in tags.items():
            table[vocab.get_idx_for_item(w), UPOS.index(t)] = 10.0
        table[vocab.get_idx_for_item("<unk>"), UPOS.index("X")] = 10.0
        embeddings.embedding_layer.weight.copy_(table)
        linear = torch.zeros_like(tagger.linear.weight)
        for j, t in enumerate(UPOS):
            linear[tagger.label_dictionary.get_idx_for_item(t), j] = 1.0
        tagger.linear.weight.copy_(linear)
        tagger.linear.bias.zero_()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tagger.save(str(dest))
    return dest


def build_sentence_encoder(dest: Path, bert_dir: Path) -> Path:
    """A sentence-transformers folder: the tiny BERT with mean pooling."""
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(bert_dir), max_seq_length=64)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(dest))
    return dest


def build_victim(dest: Path, bert_dir: Path, steps: int = 80, seed: int = 0) -> Path:
    """The tiny BERT with a classification head, trained for a few steps so it reads the sentiment words."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(bert_dir))
    model = BertForSequenceClassification.from_pretrained(str(bert_dir), num_labels=2)
    rows = synthetic_reviews(600, seed=seed + 11)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = [rows[(step * 16 + k) % len(rows)] for k in range(16)]
        enc = tokenizer([t for t, _ in batch], padding=True, truncation=True, max_length=32, return_tensors="pt")
        loss = model(**enc, labels=torch.tensor([y for _, y in batch])).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest


def build_causal_lm(dest: Path) -> Path:
    """A tiny GPT-2 (2 layers, hidden 32, byte-level BPE) standing in for openai-community/gpt2."""
    return build_tiny_decoder(dest, kind="gpt2")


def build_resources(root: Path, bert_dir: Path, nltk_data: Path) -> dict[str, str]:
    """Every attack resource but USE, as {kind: path} (the shape of config ``attacks.resources``)."""
    return {
        "word_embedding": str(build_word_embedding(root / "paragramcf")),
        "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", bert_dir)),
        "masked_lm": str(bert_dir),
        "hownet": str(build_hownet(root / "hownet" / "word_candidates_sense.pkl")),
        "flair_pos": str(build_flair_tagger(root / "flair" / "pytorch_model.bin")),
        "nltk_data": str(nltk_data),
        "causal_lm": str(build_causal_lm(root / "causal_lm")),
    }


def attack_env(root: Path, bert_dir: Path, max_length: int, resources: dict[str, str] | None = None) -> dict:
    """What the attack test modules share: the tiny victim under ``root``, the attack resources (all of
    :func:`build_resources` unless ``resources`` is given) and the victim's TextAttack wrapper at ``max_length``."""
    from advtrain.attacks import load_model_wrapper

    if resources is None:
        resources = build_resources(root / "resources", bert_dir, shared_data("nltk_data"))
    victim = build_victim(root / "victim", bert_dir)
    return {"root": root, "resources": resources, "victim": victim,
            "wrapper": load_model_wrapper(victim, max_length, resources["nltk_data"])}


def validity_frame(n, exceeds):
    """A run's validity checks as attack_validity writes them: n adversarial examples, the first ``exceeds`` of them
    beyond the similarity bound."""
    return pd.DataFrame({
        "index": range(n), "ground_truth": 1, "perturbed_output": 0, "words_changed": range(1, n + 1),
        "words_total": 10, "changed_pct": [10.0 * (i + 1) for i in range(n)], "similarity": 0.9,
        "similarity_threshold": 0.9, "bound_similarity": 0.95, "similarity_checked": True,
        "exceeds_similarity": [i < exceeds for i in range(n)], "max_words": np.nan,
        "exceeds_modification_rate": np.nan, "stopwords_changed": 0, "stopword_changed": False,
        "exceeds_any": [i < exceeds for i in range(n)],
        "original_perplexity": [50.0 + i for i in range(n)], "perturbed_perplexity": [80.0 + 10 * i for i in range(n)],
        "original_marked": [f"a **good** | film {i}" for i in range(n)],
        "perturbed_marked": [f"a **fine** | film {i}" for i in range(n)]})


# --------------------------------------------------------------------------- attack records

SCORES = ("original_score", "perturbed_score")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_scores(records: list[dict]) -> list[dict]:
    """Records without their shard and scores: the query broker batches the examples of the shards that run at once
    together, so a score can differ in the last bits with what ran beside it (compared approximately)."""
    return [{k: v for k, v in r.items() if k != "shard_index" and k not in SCORES} for r in records]


def assert_same_records(a: list[dict], b: list[dict]) -> None:
    """Equal texts, outcomes and query counts; scores equal to float32 rounding."""
    assert without_scores(a) == without_scores(b)
    for x, y in zip(a, b, strict=True):
        assert [x[k] for k in SCORES] == pytest.approx([y[k] for k in SCORES], rel=1e-5, abs=1e-6)


def one_textfooler_shard(root: Path, bert_dir: Path, query_budget: int = 60) -> dict:
    """The workflow tests' ``attacks`` block: one TextFooler shard of 4 examples on local stand-in resources."""
    return {
        "recipes": ["textfooler"], "num_examples": 4, "query_budget": query_budget, "shards": 1,
        "model_batch_size": 16, "seed": 765,
        "resources": {
            "use": None,
            "word_embedding": str(build_word_embedding(root / "paragramcf")),
            "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", bert_dir)),
            "masked_lm": str(bert_dir),
            "nltk_data": str(shared_data("nltk_data")),
            "causal_lm": str(build_causal_lm(root / "causal_lm")),
        },
    }
