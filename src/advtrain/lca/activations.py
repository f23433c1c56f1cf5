"""Per-word activations of every layer of a fine-tuned tagger: the neurons the probe ranks.

A word's activation vector is the concatenation over all hidden-state layers (the embedding output and each
transformer layer, as NeuroX extracts them) of its last sub-token's state (NeuroX's ``aggregation`` default; or
the first, or the mean of its sub-tokens). Neuron ``j`` is column ``j``: layer ``j // hidden_size``, unit
``j % hidden_size``. Stored once per model in an ``.npz`` with the words, their tag indices and their sentence
numbers.

As NeuroX, the forward runs in float32 (no autocast, whatever the tagger trained in) and the activations are kept
as float32 (``lca.activations_dtype``): 94,084 treebank words x 9,984 neurons (BERT-base) are 3.76 GB, 1.88 GB as
float16, whose rounding changed the probe's rankings less than another initial seed does
(``benchmarks/fidelity_i22_lca.py``; docs/fidelity.md, lca-activations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from advtrain import device, models

POOLING = ("first", "last", "average")
DTYPES = ("float32", "float16")


@torch.no_grad()
def extract(model_dir: str | Path, sentences: list[dict], tags: list[str], max_length: int, batch_size: int = 32,
            pooling: str = "last", dtype: str = "float32", precision: str = "fp32") -> dict[str, np.ndarray]:
    """``{"activations": [words x neurons] of ``dtype``, "words", "tags", "sentence", "layers", "hidden_size"}``.

    Words cut off by ``max_length`` are left out (their count is ``dropped_words``); tags unknown to the tagger
    get index -1. ``precision`` is the forward's (``advtrain.device.autocast``): fp32 is NeuroX's.
    """
    if pooling not in POOLING:
        raise ValueError(f"lca.pooling: {pooling!r} is not one of {', '.join(POOLING)}")
    if dtype not in DTYPES:
        raise ValueError(f"lca.activations_dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    dev = device.device()
    model, tokenizer = models.load_classifier(model_dir, head="token", split_words=True)
    model = model.to(dev).eval()
    tag_index = {t: i for i, t in enumerate(tags)}
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]["words"]))
    rows: dict[int, tuple] = {}
    dropped = 0
    for start in tqdm(range(0, len(order), batch_size), desc="activations", mininterval=5):
        idx = order[start : start + batch_size]
        batch = [sentences[i]["words"] for i in idx]
        enc = tokenizer(batch, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        with device.autocast(precision):
            out = model(**{k: v.to(dev) for k, v in enc.items()}, output_hidden_states=True)
        states = torch.cat(out.hidden_states, dim=-1).float().cpu()  # [batch, tokens, layers * hidden]
        for b, i in enumerate(idx):
            pieces: dict[int, list[int]] = {}
            for position, word in enumerate(enc.word_ids(b)):
                if word is not None:
                    pieces.setdefault(word, []).append(position)
            words = sentences[i]["words"]
            dropped += len(words) - len(pieces)
            vectors = []
            for word in sorted(pieces):
                positions = pieces[word]
                if pooling == "first":
                    vectors.append(states[b, positions[0]])
                elif pooling == "last":
                    vectors.append(states[b, positions[-1]])
                else:
                    vectors.append(states[b, positions].mean(0))
            kept = sorted(pieces)
            rows[i] = (torch.stack(vectors).numpy() if vectors else np.zeros((0, states.shape[-1]), np.float32),
                       [words[w] for w in kept], [tag_index.get(sentences[i]["tags"][w], -1) for w in kept])
    ordered = [rows[i] for i in range(len(sentences))]
    return {
        "activations": np.concatenate([r[0] for r in ordered]).astype(dtype, copy=False),
        "words": np.array([w for r in ordered for w in r[1]], dtype=object).astype(str),
        "tags": np.array([t for r in ordered for t in r[2]], dtype=np.int32),
        "sentence": np.array([i for i, r in enumerate(ordered) for _ in r[1]], dtype=np.int32),
        "layers": np.int32(len(out.hidden_states)),
        "hidden_size": np.int32(out.hidden_states[0].shape[-1]),
        "dropped_words": np.int64(dropped),
    }


def save(result: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # np.savez_compressed appends .npz to a str path; a file object keeps the name
        np.savez_compressed(f, **result)


def load(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
