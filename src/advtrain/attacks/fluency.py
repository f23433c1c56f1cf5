"""Fluency of the original and adversarial texts: their perplexity under a causal LM, as OpenAttack reports it.

OpenAttack's English fluency metric (thunlp/OpenAttack 4df712e, ``OpenAttack/metric/algorithms/gptlm.py:21-27``,
class ``GPT2LM``, name "Fluency (ppl)") loads the hub's ``gpt2`` (now ``openai-community/gpt2``) and scores one
adversarial text at a time::

    ipt = GPT2TokenizerFast.from_pretrained("gpt2")(adversarial_sample, return_tensors="pt", verbose=False)
    math.exp(GPT2LMHeadModel.from_pretrained("gpt2")(**ipt, labels=ipt.input_ids)[0])

that is exp of the mean negative log-likelihood of tokens 2..n, each given the tokens before it: the text tokenised
as it stands (GPT-2's tokenizer adds no BOS token, so the first token is context only), untruncated, in float32.
``AttackEval`` (``OpenAttack/attack_eval/attack_eval.py:81-87, 231-252``) measures successful examples only and
reports "Avg. Fluency (ppl)", the arithmetic mean of those per-text perplexities.

Here the per-text value is the same, for the original text too, with these differences (ledger rows
``fluency-perplexity``, ``fluency-batching``):

- a text is cut at ``max_length`` tokens (``attacks.fluency.max_length``; default the LM's positions, 1024 for
  GPT-2), where OpenAttack's GPT-2 would fail on a longer text;
- texts are scored in batches as the query broker batches them (:func:`advtrain.attacks.broker.batched_rows`):
  each distinct tokenisation once, sorted by length, right-padded into forwards of at most ``attacks.batch_tokens``
  padded tokens, each text's loss over its own tokens only; equal to one text per forward up to float rounding;
- a text of fewer than two tokens has nothing to predict: NaN (OpenAttack's mean loss is NaN too); the tables skip
  NaN where OpenAttack's average would become NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from advtrain.attacks.services import Service

#: The key of the cut-off length in errors.
MAX_LENGTH_KEY = "attacks.fluency.max_length"


def positions(model, tokenizer) -> int:
    """Tokens the LM can read: its position table (GPT-2's ``n_positions``), else the tokenizer's limit."""
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return int(tokenizer.model_max_length)


def token_limit(model, tokenizer, max_length: int | None) -> int:
    """``max_length``, or the LM's positions when null; more than the LM's positions is an error naming the key."""
    most = positions(model, tokenizer)
    if max_length is None:
        return most
    if max_length > most:
        raise ValueError(f"{MAX_LENGTH_KEY}: {max_length} exceeds the {most} positions of the causal LM "
                         "(attacks.resources.causal_lm); set it to at most that, or null")
    return int(max_length)


def lm_service(model, tokenizer, max_length: int | None = None) -> Service:
    """The causal LM as a broker :class:`Service`: texts keyed by their token ids (cut at the limit); a chunk's row
    per text is its mean negative log-likelihood (float64; NaN below two tokens)."""
    import torch

    limit = token_limit(model, tokenizer, max_length)
    device = next(model.parameters()).device

    def ids_of(texts):
        # As OpenAttack: the tokenizer's own defaults (GPT-2's adds no special token), only cut at the limit.
        return tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]

    def keys(texts):
        return [(tuple(i), len(i)) for i in ids_of(texts)]

    def forward(texts):
        ids = ids_of(texts)
        width = max(len(i) for i in ids)
        if width < 2:
            return torch.full((len(ids),), float("nan"), dtype=torch.float64)
        # Right padding (GPT-2 has no pad token; the pad id is never read): positions stay 0..n-1 for each text.
        input_ids = torch.zeros((len(ids), width), dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, tokens in enumerate(ids):
            input_ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, :len(tokens)] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:],
                                                reduction="none")
        scored = mask[:, 1:].bool()  # token t is predicted from tokens < t of the same text
        total = nll.masked_fill(~scored, 0.0).double().sum(dim=1)
        count = scored.sum(dim=1).double()
        return (total / count).cpu()  # 0/0 = NaN: nothing to predict

    return Service("causal_lm", keys, forward)


class Perplexity:
    """``perplexity(texts)``: each text's perplexity under the causal LM, as OpenAttack's ``GPT2LM``.

    One call's texts are batched as the query broker batches its pending texts (each distinct tokenisation once,
    sorted by length, ``batch_tokens`` padded tokens per forward); texts scored by an earlier call are not scored
    again (the same test examples are attacked in every run of a cell).
    """

    def __init__(self, service: Service, batch_tokens: int = 8192):
        self.service, self.batch_tokens = service, int(batch_tokens)
        self._known: dict[str, float] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        from advtrain.attacks.broker import batched_rows

        new = list(dict.fromkeys(t for t in texts if t not in self._known))
        if new:
            rows = torch.stack(batched_rows(self.service, new, self.batch_tokens))
            self._known.update(zip(new, np.exp(rows.numpy().astype(np.float64)).tolist(), strict=True))
        return np.array([self._known[t] for t in texts], dtype=np.float64)


def perplexity(path: str | Path, max_length: int | None = None, batch_tokens: int = 8192) -> Callable:
    """:class:`Perplexity` with the causal LM folder at ``path`` (``attacks.resources.causal_lm``), on the GPU when
    there is one, in float32 as OpenAttack."""
    from advtrain import device
    from advtrain.attacks.resources import load_causal_lm

    model, tokenizer = load_causal_lm(path)
    model.to(device.device())
    return Perplexity(lm_service(model, tokenizer, max_length), batch_tokens)
