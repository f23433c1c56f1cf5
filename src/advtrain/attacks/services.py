"""The models the query broker batches for, each as a :class:`Service`: how texts are keyed (identical
tokenisations are one row) and measured (tokens, for the forward budget), and how a chunk of them is run.

- :func:`victim_service`: the victim's wrapper (pad to the longest text).
- :func:`encoder_service`: a sentence-encoder constraint's encoder (sentence-transformers or USE).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

#: Characters per token, to estimate from the pending texts when a full forward's worth waits.
CHARS_PER_TOKEN = 4


class Service:
    """One model the broker batches for: ``keys`` maps texts to (dedup key, length in tokens); ``forward`` runs a
    chunk of distinct texts and returns one row per text."""

    def __init__(self, name: str, keys: Callable[[list[str]], list[tuple]], forward: Callable[[list[str]], object]):
        self.name, self.keys, self.forward = name, keys, forward
        self.batch_sizes: list[int] = []  # distinct texts per forward
        self.requests = 0
        self.seconds = 0.0


def victim_service(wrapper) -> Service:
    """The victim: texts with the same token ids are one row; a chunk goes through ``wrapper`` (pad to longest).

    The broker's thread tokenises with its own copy of the tokenizer: a fast tokenizer called from two threads at
    once fails ("Already borrowed"), and the workers use the wrapper's (A2T's gradient, TextAttack's word alignment).
    """
    tokenizer = getattr(wrapper, "tokenizer", None)
    if tokenizer is not None:
        wrapper = copy.copy(wrapper)  # the model (and the forward counter) stay shared
        wrapper.tokenizer = tokenizer = copy.deepcopy(tokenizer)

    def keys(texts):
        if tokenizer is None or not callable(tokenizer):
            return [(t, len(t) // CHARS_PER_TOKEN + 2) for t in texts]
        ids = tokenizer(texts, add_special_tokens=True, truncation=True,
                        max_length=tokenizer.model_max_length)["input_ids"]
        return [(tuple(i), len(i)) for i in ids]

    def forward(texts):
        import torch

        out = wrapper(texts)
        return out.detach().cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    return Service("victim", keys, forward)


def encoder_service(constraint) -> Service:
    """A sentence-encoder constraint's encoder: a sentence-transformers model runs each chunk as one ``encode``
    batch; any other encoder (USE) gets the chunk through the constraint's own ``encode``."""
    model = getattr(constraint, "model", None)
    encode = constraint.encode
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(model, "max_seq_length"):
        def keys(texts):
            ids = tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
            return [(t, len(i)) for t, i in zip(texts, ids, strict=True)]

        def forward(texts):
            import torch

            return torch.as_tensor(model.encode(texts, batch_size=len(texts), show_progress_bar=False))
    else:
        def keys(texts):
            return [(t, len(t.split()) + 2) for t in texts]

        def forward(texts):
            import torch

            out = encode(texts)
            return out.detach().cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    return Service(f"encoder:{type(constraint).__name__}", keys, forward)
