"""SSMBA (Ng et al. 2020): corrupt an example with the MLM noising function, reconstruct it by sampling from a
masked language model, keep the original's label.

Follows the reference implementation (nng555/ssmba): of the non-special tokens, ``int(noise_prob * n + U)`` are
selected; each selected token is masked (1 - random_token_prob - leave_unmasked_prob), replaced by a random
vocabulary token (random_token_prob) or left unchanged (leave_unmasked_prob); masked and randomised positions are
resampled from the MLM's distribution (``topk`` = -1: the full distribution), special and ``[unused*]`` tokens
excluded. A reconstruction that is empty, identical to the input or to an earlier sample of the same input is
retried, ``max_tries`` attempts per sample; inputs shorter than ``min_length`` tokens are not augmented. Two
departures, both so that nothing is lost: every retry corrupts the original (the reference cycles through earlier
samples), and reviews longer than the MLM's window are reconstructed window by window instead of being skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from advtrain import device as dev
from advtrain.augment.shards import COLUMNS, empty_rows, row_seed

DEFAULTS = {
    "noise_prob": 0.15,
    "random_token_prob": 0.1,
    "leave_unmasked_prob": 0.1,
    "samples": 1,
    "topk": -1,
    "max_tries": 10,
    "min_length": 3,
    "batch_tokens": 8192,
    "seed": 0,
    "precision": "auto",
}

# What the noising function did to each token.
UNTOUCHED, MASKED, RANDOM, KEPT = 0, 1, 2, 3


def noise(ids: np.ndarray, rng: np.random.Generator, noise_prob: float, random_token_prob: float,
          leave_unmasked_prob: float, mask_id: int, random_pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The MLM noising of one sequence of (non-special) token ids: (noised ids, action per token)."""
    n = len(ids)
    actions = np.full(n, UNTOUCHED, dtype=np.int8)
    # The reference's count: noise_prob * n in expectation, whatever the length.
    count = min(n, int(noise_prob * n + rng.random()))
    if count:
        chosen = rng.choice(n, count, replace=False)
        p_mask = 1.0 - random_token_prob - leave_unmasked_prob
        actions[chosen] = rng.choice([MASKED, RANDOM, KEPT], size=count,
                                     p=[p_mask, random_token_prob, leave_unmasked_prob])
    noised = np.array(ids, dtype=np.int64, copy=True)
    noised[actions == MASKED] = mask_id
    n_random = int((actions == RANDOM).sum())
    if n_random:
        noised[actions == RANDOM] = rng.choice(random_pool, n_random)
    return noised, actions


def check_settings(settings: dict, key: str) -> dict:
    s = {**DEFAULTS, **settings}
    if s["random_token_prob"] + s["leave_unmasked_prob"] > 1:
        raise ValueError(f"{key}: random_token_prob + leave_unmasked_prob must be at most 1")
    if s["topk"] == 0 or s["topk"] < -1:
        raise ValueError(f"{key}.topk: -1 (the full distribution) or a positive k, got {s['topk']}")
    return s


class SSMBA:
    """An MLM loaded once; ``augment(rows)`` returns the reconstructions of a frame of text,label,source_id rows."""

    def __init__(self, model_path: str, settings: dict, key: str = "augmentation.augmenters.ssmba"):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.settings = check_settings(settings, key)
        self.device = dev.device()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForMaskedLM.from_pretrained(model_path).to(self.device).eval()
        tok = self.tokenizer
        if tok.mask_token_id is None:
            raise ValueError(f"{key}.model: {model_path} has no mask token; SSMBA needs a masked language model")
        vocab_size = self.model.get_output_embeddings().weight.shape[0]
        excluded = np.zeros(vocab_size, dtype=bool)
        excluded[[i for i in tok.all_special_ids if i < vocab_size]] = True
        excluded[min(len(tok), vocab_size):] = True  # rows of the head the tokenizer cannot decode
        for token, i in tok.get_vocab().items():
            if token.startswith("[unused") and i < vocab_size:
                excluded[i] = True  # BERT's placeholder tokens, as in the reference
        self.excluded = torch.from_numpy(excluded).to(self.device)
        self.random_pool = np.flatnonzero(~excluded)
        positions = getattr(self.model.config, "max_position_embeddings", None) or 512
        limit = min(positions, tok.model_max_length if tok.model_max_length < 1_000_000 else positions)
        self.window = limit - tok.num_special_tokens_to_add()
        # How many special tokens precede the content ([CLS] for BERT): found with a placeholder id.
        self.prefix = tok.build_inputs_with_special_tokens([-1]).index(-1)
        self.stats = {k: 0 for k in ("tokens", "masked", "random", "kept", "attempts", "rejected",
                                     "gave_up", "too_short", "windows")}

    # ------------------------------------------------------------------ one pass of noising + reconstruction
    def _segments(self, noised: np.ndarray, actions: np.ndarray):
        """Windows of at most ``self.window`` tokens: (input ids with specials, target positions, content slice)."""
        for start in range(0, len(noised), self.window):
            content = noised[start:start + self.window].tolist()
            ids = self.tokenizer.build_inputs_with_special_tokens(content)
            offsets = list(range(self.prefix, self.prefix + len(content)))  # where each content token sits in ids
            act = actions[start:start + self.window]
            targets = [offsets[j] for j in np.flatnonzero((act == MASKED) | (act == RANDOM))]
            yield ids, targets, offsets, start

    @torch.inference_mode()
    def reconstruct(self, items: list[tuple[np.ndarray, np.ndarray, int]], desc: str = "ssmba") -> list[np.ndarray]:
        """items: (noised ids, actions, seed). Returns the ids with the noised positions resampled by the MLM."""
        out = [noised.copy() for noised, _, _ in items]
        segments = [(i, w, seg) for i, (noised, actions, _) in enumerate(items)
                    for w, seg in enumerate(self._segments(noised, actions)) if seg[1]]
        self.stats["windows"] += len(segments)
        # Longest first, batches of at most batch_tokens (padded) tokens: the logits of a batch take
        # batch_tokens x vocabulary floats whatever the mix of lengths.
        segments.sort(key=lambda s: -len(s[2][0]))
        batches, current = [], []
        for seg in segments:
            if current and (len(current) + 1) * len(current[0][2][0]) > self.settings["batch_tokens"]:
                batches.append(current)
                current = []
            current.append(seg)
        if current:
            batches.append(current)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        topk = self.settings["topk"]
        for batch in tqdm(batches, desc=desc, unit="batch", mininterval=10):
            width = len(batch[0][2][0])
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for b, (_, _, (ids, _, _, _)) in enumerate(batch):
                input_ids[b, :len(ids)] = torch.tensor(ids)
                attention[b, :len(ids)] = 1
            with dev.autocast(self.settings["precision"]):
                logits = self.model(input_ids=input_ids.to(self.device),
                                    attention_mask=attention.to(self.device)).logits
            for b, (i, w, (_, targets, offsets, start)) in enumerate(batch):
                scores = logits[b, targets].float().masked_fill(self.excluded, float("-inf"))
                if topk > 0:
                    kth = scores.topk(min(topk, scores.shape[-1]), dim=-1).values[:, -1:]
                    scores = scores.masked_fill(scores < kth, float("-inf"))
                # A generator per (item, window): the draw does not depend on the batch the window is in.
                gen = torch.Generator(device=self.device).manual_seed(row_seed(items[i][2], w))
                sampled = torch.multinomial(scores.softmax(-1), 1, generator=gen).squeeze(-1).cpu().numpy()
                position = {offset: start + j for j, offset in enumerate(offsets)}
                out[i][[position[t] for t in targets]] = sampled
        return out

    # ------------------------------------------------------------------ a frame of rows
    def augment(self, rows: pd.DataFrame) -> pd.DataFrame:
        s = self.settings
        tok = self.tokenizer
        ids = tok(list(rows["text"]), add_special_tokens=False)["input_ids"]
        # Compared with the reconstructions, which are decoded the same way (an uncased MLM lowercases).
        baseline = [_norm(t) for t in tok.batch_decode(ids, skip_special_tokens=True)]
        sources = rows["source_id"].to_numpy()
        accepted: dict[int, list[tuple[int, str]]] = {}
        pending = []
        for i, seq in enumerate(ids):
            if len(seq) < max(s["min_length"], 1):
                self.stats["too_short"] += 1
                continue
            accepted[i] = []
            pending.extend((i, k, 0) for k in range(s["samples"]))
        round_ = 0
        while pending:
            round_ += 1
            items = []
            for i, k, t in pending:
                rng = np.random.default_rng(row_seed(s["seed"], sources[i], k, t))
                noised, actions = noise(np.asarray(ids[i]), rng, s["noise_prob"], s["random_token_prob"],
                                        s["leave_unmasked_prob"], tok.mask_token_id, self.random_pool)
                self.stats["tokens"] += len(actions)
                self.stats["masked"] += int((actions == MASKED).sum())
                self.stats["random"] += int((actions == RANDOM).sum())
                self.stats["kept"] += int((actions == KEPT).sum())
                items.append((noised, actions, row_seed(s["seed"], sources[i], k, t, 1)))
            recon = self.reconstruct(items, desc=f"ssmba round {round_} ({len(items)} samples)")
            texts = tok.batch_decode([r.tolist() for r in recon], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=True)
            retry = []
            for (i, k, t), text in zip(pending, texts, strict=True):
                self.stats["attempts"] += 1
                text = " ".join(text.split())
                if text and _norm(text) != baseline[i] and text not in {x for _, x in accepted[i]}:
                    accepted[i].append((k, text))
                    continue
                self.stats["rejected"] += 1
                if t + 1 < s["max_tries"]:
                    retry.append((i, k, t + 1))
                else:
                    self.stats["gave_up"] += 1
            pending = retry
        out = [(text, int(rows["label"].iloc[i]), int(sources[i]))
               for i in sorted(accepted) for _, text in sorted(accepted[i])]
        return pd.DataFrame(out, columns=COLUMNS) if out else empty_rows()


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
