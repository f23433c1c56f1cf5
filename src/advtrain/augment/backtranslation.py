"""Back-translation with MarianMT: English -> pivot -> English (default opus-mt-en-de, opus-mt-de-en).

A review is split into sentences, consecutive sentences are packed into chunks of at most ``max_length`` source
tokens (a sentence longer than that is split between words), each chunk is translated on its own and the
translations are rejoined, so an IMDB review is translated whole instead of truncated at the model's length.
Chunks are batched longest first (little padding). Generation is Hugging Face ``generate``: beam search
(``num_beams``), sampling (``do_sample`` with ``temperature``, ``top_k``, ``top_p``) or both, beam-search
multinomial sampling, which is what TextAttack-A2T's back-translation ran: ``generate(do_sample=True,
temperature=0.8)`` on FSMT wmt19, whose config brings ``num_beams: 5`` and transformers' default ``top_k: 50``.

Every draw comes from a generator per chunk, so a chunk's translation depends on its own seed only, not on the batch
it shares, and sharded output equals unsharded:

- one beam: ``SeededSampling``, a logits processor that adds Gumbel noise before greedy selection (argmax of
  logits / T + Gumbel noise is a sample of softmax(logits / T));
- several beams: ``SeededBeamSampling``, which makes transformers' beam sampling draw per chunk: at each step the
  library samples ``beams_to_keep`` continuations without replacement from the softmax of the accumulated scores
  over all beams; the top-k of those scores plus Gumbel noise is such a sample (Gumbel-top-k, Kool et al. 2019).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from advtrain import device as dev
from advtrain.augment.defaults import BACKTRANSLATION_DEFAULTS as DEFAULTS
from advtrain.augment.shards import COLUMNS, empty_rows, row_seed

_BREAK = re.compile(r"<br\s*/?>|\n", re.IGNORECASE)  # IMDB's HTML line breaks end a sentence too
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a review (a regex splitter: no model or corpus to fetch; a wrong split costs only context)."""
    out = []
    for paragraph in _BREAK.split(text):
        out.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip())
    return out


def chunk_text(text: str, count: Callable[[list[str]], list[int]], limit: int) -> list[str]:
    """Consecutive sentences packed into chunks of at most ``limit`` tokens, as counted by ``count``.

    ``count`` gives each string's token count without special tokens. Sentences over the limit are split between
    words. Counts of pieces are added when packing; each chunk is then counted exactly and halved if over (a
    tokenizer need not be additive), so only a single word longer than the limit can exceed it.
    """
    sentences = split_sentences(text)
    if not sentences:
        return []
    pieces: list[str] = []
    for sentence, n in zip(sentences, count(sentences), strict=True):
        pieces.extend([sentence] if n <= limit else _split_words(sentence, count, limit))
    chunks = _pack(pieces, count(pieces), limit)
    return [part for chunk in chunks for part in _fit(chunk, count, limit)]


def _pack(items: list[str], sizes: list[int], limit: int) -> list[str]:
    """Greedy: consecutive items joined by spaces while their sizes sum to at most ``limit`` (an item alone may exceed it)."""
    out, current, size = [], [], 0
    for item, n in zip(items, sizes, strict=True):
        if current and size + n > limit:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        out.append(" ".join(current))
    return out


def _split_words(sentence: str, count, limit: int) -> list[str]:
    words = sentence.split()
    return _pack(words, count(words), limit)


def _fit(chunk: str, count, limit: int) -> list[str]:
    words = chunk.split()
    if len(words) <= 1 or count([chunk])[0] <= limit:
        return [chunk]
    half = len(words) // 2
    return _fit(" ".join(words[:half]), count, limit) + _fit(" ".join(words[half:]), count, limit)


class SeededSampling:
    """Logits processor: Gumbel noise from one generator per row, so each row samples from its own stream.

    With greedy selection after it (``do_sample=False``, one beam), argmax(scores + Gumbel) samples from
    softmax(scores); temperature and top-k/top-p warpers go before it in the processor list.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g, device=scores.device)
                               for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        return scores.float() + gumbel


class SeededBeamSampling:
    """While active, ``model``'s beam search samples its continuations with one generator per input row.

    transformers (4.57) keeps, at each step of a beam search with ``do_sample``, ``beams_to_keep`` continuations of
    each input drawn without replacement (``torch.multinomial`` over the whole batch) from the softmax of the
    accumulated, processed log-probabilities over its beams x vocabulary, and carries their scores on. Here the
    library's own top-k selection (``_get_top_k_continuations`` without sampling) runs on those scores plus Gumbel
    noise from the row's generator, which selects the same distribution of continuations, and the selected
    continuations keep their scores without the noise, as in the library's sampling.
    """

    def __init__(self, model, seeds: Sequence[int], device: torch.device):
        if not hasattr(model, "_get_top_k_continuations"):
            import transformers

            raise RuntimeError(f"beam sampling (do_sample with num_beams > 1) is built on transformers 4.57's beam "
                               f"search; transformers {transformers.__version__} has no _get_top_k_continuations. "
                               "Set num_beams: 1 to sample without beams.")
        self.model = model
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def _select(self, library_select, accumulated_log_probs: torch.Tensor, beams_to_keep: int, **kwargs):
        uniform = torch.stack([torch.rand(accumulated_log_probs.shape[-1], generator=g,
                                          device=accumulated_log_probs.device) for g in self.generators])
        noisy = accumulated_log_probs + -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        _, sequences, beam_indices = library_select(accumulated_log_probs=noisy, beams_to_keep=beams_to_keep,
                                                    **{**kwargs, "do_sample": False})
        chosen = torch.topk(noisy, k=beams_to_keep).indices  # the continuations the library just kept, in its order
        return torch.gather(accumulated_log_probs, 1, chosen), sequences, beam_indices

    def __enter__(self):
        library_select = self.model._get_top_k_continuations
        self.model._get_top_k_continuations = (
            lambda accumulated_log_probs, beams_to_keep, **kwargs: self._select(
                library_select, accumulated_log_probs, beams_to_keep, **kwargs))
        return self

    def __exit__(self, *exc):
        del self.model._get_top_k_continuations  # the class's method again


def check_settings(settings: dict, key: str) -> dict:
    s = {**DEFAULTS, **settings}
    if not s["do_sample"] and s["samples"] > 1:
        raise ValueError(f"{key}.samples: beam search gives one translation; samples > 1 needs do_sample: true")
    return s


class Translator:
    """One MarianMT direction (any ``AutoModelForSeq2SeqLM`` with its tokenizer)."""

    def __init__(self, model_path: str, settings: dict, device: torch.device, chunk_inputs: bool = True):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.settings = settings
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_path).to(device).eval()
        positions = getattr(self.model.config, "max_position_embeddings", None) or 512
        model_max = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1_000_000 else positions
        # Source chunks fit the encoder; generated translations fit the decoder's positions. The backward model
        # reads the forward model's translations whole (a chunk of max_length tokens may come back longer).
        self.max_source = min(settings["max_length"] if chunk_inputs else positions, positions, model_max)
        self.max_new_tokens = min(settings["max_new_tokens"], positions - 1)
        self.specials = self.tokenizer.num_special_tokens_to_add()

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]

    def chunk(self, text: str) -> list[str]:
        return chunk_text(text, self.count, self.max_source - self.specials)

    @torch.inference_mode()
    def translate(self, texts: list[str], seeds: list[int], desc: str) -> tuple[list[str], dict]:
        from transformers import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        s = self.settings
        stats = {"sequences": len(texts), "truncated_inputs": 0, "hit_max_new_tokens": 0}
        lengths = self.count(texts)
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        out: list[str] = [""] * len(texts)
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        starts = range(0, len(order), s["batch_size"])
        for start in tqdm(starts, desc=desc, unit="batch", mininterval=10):
            idx = order[start:start + s["batch_size"]]
            stats["truncated_inputs"] += sum(lengths[i] + self.specials > self.max_source for i in idx)
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_source, return_tensors="pt").to(self.device)
            kwargs = {"num_beams": s["num_beams"], "do_sample": False, "max_new_tokens": self.max_new_tokens}
            sampling = contextlib.nullcontext()
            if s["do_sample"]:
                # The warpers transformers' sampling would add, in its order; the draw itself is seeded per chunk.
                keep = 2 if s["num_beams"] > 1 else 1  # a beam keeps a token besides end-of-sentence
                processors = [TemperatureLogitsWarper(s["temperature"])]
                if s["top_k"]:
                    processors.append(TopKLogitsWarper(s["top_k"], min_tokens_to_keep=keep))
                if s["top_p"] < 1.0:
                    processors.append(TopPLogitsWarper(s["top_p"], min_tokens_to_keep=keep))
                chunk_seeds = [seeds[i] for i in idx]
                if s["num_beams"] == 1:
                    processors.append(SeededSampling(chunk_seeds, self.device))
                else:
                    sampling = SeededBeamSampling(self.model, chunk_seeds, self.device)
                kwargs["logits_processor"] = LogitsProcessorList(processors)
            with dev.autocast(s["precision"]), sampling:
                generated = self.model.generate(**enc, **kwargs)
            # Translations cut at max_new_tokens (the forced end-of-sentence token does not count as an end).
            new = generated[:, 1:]
            done = (new != self.tokenizer.pad_token_id) & ~torch.isin(new, torch.tensor(sorted(eos), device=new.device))
            stats["hit_max_new_tokens"] += int((done.sum(-1) >= self.max_new_tokens - 1).sum())
            for i, text in zip(idx, self.tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                out[i] = " ".join(text.split())
        return out, stats


class BackTranslation:
    """source -> pivot -> source; ``augment(rows)`` returns one back-translation per row and sample."""

    def __init__(self, forward_path: str, backward_path: str, settings: dict,
                 key: str = "augmentation.augmenters.backtranslation"):
        self.settings = check_settings(settings, key)
        device = dev.device()
        self.forward = Translator(forward_path, self.settings, device)
        self.backward = Translator(backward_path, self.settings, device, chunk_inputs=False)
        self.stats: dict[str, int] = {"chunks": 0, "multi_chunk_inputs": 0, "empty_inputs": 0}

    def augment(self, rows: pd.DataFrame) -> pd.DataFrame:
        s = self.settings
        chunks, owner = [], []
        for i, text in enumerate(rows["text"]):
            parts = self.forward.chunk(str(text))
            if not parts:
                self.stats["empty_inputs"] += 1
                continue
            self.stats["multi_chunk_inputs"] += len(parts) > 1
            for k in range(s["samples"]):
                for c, part in enumerate(parts):
                    chunks.append(part)
                    owner.append((i, k, c))
        self.stats["chunks"] += len(chunks)
        sources = rows["source_id"].to_numpy()
        pivot = self._translate(self.forward, chunks, [row_seed(s["seed"], sources[i], k, c, 0) for i, k, c in owner],
                                "forward")
        back = self._translate(self.backward, pivot, [row_seed(s["seed"], sources[i], k, c, 1) for i, k, c in owner],
                               "backward")
        joined: dict[tuple[int, int], list[str]] = {}
        for (i, k, _), text in zip(owner, back, strict=True):
            joined.setdefault((i, k), []).append(text)
        out = [(" ".join(p for p in parts if p), int(rows["label"].iloc[i]), int(sources[i]))
               for (i, _), parts in sorted(joined.items())]
        return pd.DataFrame(out, columns=COLUMNS) if out else empty_rows()

    def _translate(self, translator: Translator, texts: list[str], seeds: list[int], direction: str) -> list[str]:
        result, stats = translator.translate(texts, seeds, desc=f"back-translation {direction}")
        for name, value in stats.items():
            self.stats[f"{direction}_{name}"] = self.stats.get(f"{direction}_{name}", 0) + value
        return result
