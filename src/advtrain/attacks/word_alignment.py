"""A2T's gradient word ranking with each word aligned to the model's tokens by the tokenizer's character offsets.

TextAttack 0.3.11's ``AttackedText.align_with_model_tokens`` matches each word against the model's tokens with the
prefixes ``##``, ``Ġ`` and ``__`` stripped. SentencePiece tokens start with ``▁`` (ALBERT, DeBERTa-v2/v3, XLM-R,
T5), so no word matches a token: every word scores 0 and ``GreedyWordSwapWIR(wir_method="gradient")`` (A2T,
A2T_MLM) silently searches in word order. Accents stripped by an uncased tokenizer ("café" -> "cafe") and unknown
words ("[UNK]") miss the same way. :class:`OffsetAlignedWordSwapWIR` gives each word the tokens whose character span
(a fast tokenizer's offset mapping) overlaps the word's span in the text: for WordPiece and byte-level BPE that is
the tokens TextAttack finds where its matching works, and it is right for every fast tokenizer.

Imports TextAttack at module level: import it only after :func:`advtrain.attacks.resources.configure_nltk`.
"""

from __future__ import annotations

import bisect

import numpy as np
from textattack.search_methods import GreedyWordSwapWIR
from textattack.shared import AttackedText


def word_spans(attacked_text) -> list[tuple[int, int] | None]:
    """(start, end) of each of ``attacked_text.words`` in ``attacked_text.text`` (words are found in order, as
    TextAttack finds them); None for a word not found verbatim."""
    text, spans, position = attacked_text.text, [], 0
    for word in attacked_text.words:
        start = text.find(word, position)
        if start < 0:
            spans.append(None)
            continue
        spans.append((start, start + len(word)))
        position = start + len(word)
    return spans


def align_words_to_tokens(attacked_text, tokenizer, encoding=None) -> dict[int, list[int] | None]:
    """{word index: [token positions]} (None where a word has no token), positions as in ``encoding``.

    ``encoding`` is the tokenizer's output for ``[attacked_text.tokenizer_input]`` with ``return_offsets_mapping``
    (by default made here without padding, as :mod:`advtrain.attacks.victim`'s ``get_grad`` tokenizes, so positions
    index its gradient; they index TextAttack's too, whose padding to ``max_length`` follows the text's tokens: the
    project pads on the right, ``advtrain.models.prepare``). A token belongs to a word when their character spans overlap; a token that overlaps no
    word (the bare "Ġ" of a byte-level BPE, the bare "▁" of a SentencePiece model: a space) belongs to the word of
    the other tokens of its pre-tokenized word (``word_ids``), as TextAttack's matching counts a bare "Ġ"; special
    and padding tokens, and punctuation outside words, belong to none. Inputs of several columns (a tuple)
    are joined with a line break, as ``AttackedText.text`` joins them.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer: aligning words to tokens needs its "
                        "character offsets (load it with use_fast=True)")
    columns = attacked_text.tokenizer_input
    columns = (columns,) if isinstance(columns, str) else tuple(columns)
    if encoding is None:
        encoding = tokenizer([attacked_text.tokenizer_input], add_special_tokens=True, truncation=True,
                             max_length=tokenizer.model_max_length, return_offsets_mapping=True)
    column_start = [sum(len(c) + 1 for c in columns[:k]) for k in range(len(columns))]
    tokens = [(column_start[column or 0] + int(start), column_start[column or 0] + int(end), (column, word))
              for (start, end), column, word in zip(encoding["offset_mapping"][0], encoding.sequence_ids(0),
                                                    encoding.word_ids(0), strict=True)]
    spans = word_spans(attacked_text)
    located = [(span[0], span[1], i) for i, span in enumerate(spans) if span is not None]  # in text order
    ends = [end for _, end, _ in located]
    mapping: dict[int, list[int]] = {i: [] for i in range(len(spans))}
    word_of_group = {}  # (column, pre-tokenized word) -> the first word its characters belong to
    unaligned = []
    for position, (start, end, group) in enumerate(tokens):
        if group[0] is None:  # special or padding token
            continue
        overlapping = []
        k = bisect.bisect_right(ends, start)  # the first word ending after the token starts
        while k < len(located) and located[k][0] < end:
            overlapping.append(located[k][2])
            k += 1
        for i in overlapping:
            mapping[i].append(position)
            word_of_group.setdefault(group, i)
        if not overlapping and group[1] is not None:
            unaligned.append((position, group))
    for position, group in unaligned:  # a bare "Ġ" or "▁" before a word: the word of its pre-tokenized word
        if group in word_of_group:
            mapping[word_of_group[group]].append(position)
    return {i: sorted(positions) or None for i, positions in mapping.items()}


class OffsetAlignedWordSwapWIR(GreedyWordSwapWIR):
    """A2T's search, ``GreedyWordSwapWIR(wir_method="gradient")``, with words aligned to tokens by character offsets.

    Only the word ranking differs from TextAttack 0.3.11: the same gradient (``get_grad``, on the same text, cut to
    the same words), the same score per word (L1 norm of the mean gradient of its tokens, 0 for a word without
    tokens), the same greedy search; the tokens of each word come from :func:`align_words_to_tokens`.
    """

    def __init__(self, truncate_words_to=None):
        super().__init__(wir_method="gradient", truncate_words_to=truncate_words_to)

    def _get_index_order(self, initial_text, max_len=-1):
        _, indices_to_order = self.get_indices_to_order(initial_text)
        if self.truncate_words_to is not None:
            indices_to_order = sorted(indices_to_order)[: self.truncate_words_to]
        victim_model = self.get_victim_model()
        gradient_text = initial_text
        if self.truncate_words_to is not None and indices_to_order and isinstance(initial_text.tokenizer_input, str):
            # as TextAttack: the gradient of the text up to the last word ranked
            gradient_text = AttackedText(initial_text.text_of_first_n_words(max(indices_to_order) + 1))
        gradient = victim_model.get_grad(gradient_text.tokenizer_input)["gradient"]
        word_tokens = align_words_to_tokens(gradient_text, victim_model.tokenizer)
        index_scores = np.zeros(len(indices_to_order))
        for i, index in enumerate(indices_to_order):
            tokens = word_tokens[index]
            if tokens:
                index_scores[i] = np.linalg.norm(np.mean(gradient[tokens], axis=0), ord=1)
        return np.array(indices_to_order)[(-index_scores).argsort()], False
