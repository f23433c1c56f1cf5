"""A2T's gradient word ranking (advtrain.attacks.word_alignment) on a WordPiece, a byte-level BPE and SentencePiece
(Metaspace "▁") tokenizers: every word gets its tokens and a nonzero score; WordPiece rankings are TextAttack's."""

from __future__ import annotations

import copy
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FILLER, NEGATIVE, POSITIVE, synthetic_reviews

from advtrain.attacks.resources import import_textattack

PLAIN = [text for text, _ in synthetic_reviews(6, seed=5)] + [" ".join(POSITIVE[:3] + FILLER[:5] + NEGATIVE[:2])]
PUNCTUATED = ["The film, though long, was EXCELLENT!", "it's a well-made movie... isn't it?",
              "\"Dull\" -- and the cast (all of it) was bad."]
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _corpus() -> list[str]:
    return [text for text, _ in synthetic_reviews(1000, seed=0)] + [" ".join(POSITIVE + NEGATIVE + FILLER)] * 5


def _fast(tok, **specials):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=96, **specials)


def byte_level_bpe():
    """A RoBERTa / GPT-2 style tokenizer: byte-level BPE, words carry a leading "Ġ"."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=320, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return _fast(tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def sentencepiece_unigram():
    """An ALBERT / DeBERTa-v2 / XLM-R style tokenizer: a Unigram model over Metaspace pieces ("▁good"), with a piece
    for each word of the synthetic reviews (and "▁ex" + "cellent"), single characters for the rest."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for text in _corpus() for w in text.split()} - {"excellent"})
    pieces = [(p, 0.0) for p in specials] + [(f"\u2581{w}", -2.0) for w in words] + [("\u2581ex", -3.0),
                                                                                   ("cellent", -3.0)]
    pieces += [(c, -8.0) for c in "\u2581abcdefghijklmnopqrstuvwxyz0123456789'-.,!?()\""]
    tok = Tokenizer(models.Unigram(pieces, unk_id=1))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return _fast(tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _victim(kind: str, tiny_model):
    import transformers as tr
    from textattack.models.wrappers import HuggingFaceModelWrapper

    torch.manual_seed(0)
    size = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
            "num_labels": 2, **NO_DROPOUT}
    if kind == "wordpiece":
        tokenizer = tr.AutoTokenizer.from_pretrained(tiny_model)
        tokenizer.model_max_length = 96
        model = tr.AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2, **NO_DROPOUT)
    elif kind == "byte-level-bpe":
        tokenizer = byte_level_bpe()
        model = tr.RobertaForSequenceClassification(tr.RobertaConfig(
            vocab_size=len(tokenizer), max_position_embeddings=100, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            **size))
    else:
        tokenizer = sentencepiece_unigram()
        config = (tr.AlbertConfig(vocab_size=len(tokenizer), embedding_size=16, max_position_embeddings=96,
                                  pad_token_id=0, classifier_dropout_prob=0.0, **size)
                  if kind == "sentencepiece-albert" else
                  tr.DebertaV2Config(vocab_size=len(tokenizer), max_position_embeddings=96, pad_token_id=0, **size))
        model = tr.AutoModelForSequenceClassification.from_config(config)
    model.eval()
    return HuggingFaceModelWrapper(model, tokenizer)


@pytest.fixture(scope="module")
def textattack():
    return import_textattack()


@pytest.fixture(scope="module")
def victims(textattack, tiny_model):
    return {kind: _victim(kind, tiny_model)
            for kind in ("wordpiece", "byte-level-bpe", "sentencepiece-albert", "sentencepiece-deberta")}


def _search(wrapper, stock: bool = False):
    from textattack.search_methods import GreedyWordSwapWIR

    from advtrain.attacks.word_alignment import OffsetAlignedWordSwapWIR

    search = (GreedyWordSwapWIR(wir_method="gradient", truncate_words_to=90) if stock else
              OffsetAlignedWordSwapWIR(truncate_words_to=90))
    # what textattack.Attack wires in: the victim, and every word as a candidate (no constraints here)
    search.get_victim_model = lambda: wrapper
    search.get_indices_to_order = lambda text: (text.num_words, list(range(text.num_words)))
    return search


def _by_word_ids(wrapper, text: str) -> tuple[dict[int, list[int]], np.ndarray]:
    """The reference: tokens per word from the tokenizer's own word_ids() (pre-tokenizer words: plain text only),
    and each word's score (L1 norm of the mean gradient of its tokens) from get_grad."""
    enc = wrapper.tokenizer([text], add_special_tokens=True, padding="max_length", truncation=True)
    tokens: dict[int, list[int]] = {}
    for position, word in enumerate(enc.word_ids(0)):
        if word is not None:
            tokens.setdefault(word, []).append(position)
    gradient = wrapper.get_grad(text)["gradient"]
    return tokens, np.array([np.abs(gradient[t].mean(axis=0)).sum() for _, t in sorted(tokens.items())])


@pytest.mark.parametrize("kind", ["wordpiece", "byte-level-bpe", "sentencepiece-albert", "sentencepiece-deberta"])
def test_every_word_gets_its_tokens_and_a_nonzero_gradient_score(victims, kind):
    from textattack.shared import AttackedText

    from advtrain.attacks.word_alignment import align_words_to_tokens

    wrapper = victims[kind]
    for text in PLAIN:
        attacked = AttackedText(text)
        tokens, scores = _by_word_ids(wrapper, text)
        assert align_words_to_tokens(attacked, wrapper.tokenizer) == tokens, (kind, text)
        assert len(tokens) == attacked.num_words and (scores > 0).all(), (kind, text, scores)
        order, _ = _search(wrapper)._get_index_order(attacked)
        assert list(order) == list(np.argsort(-scores, kind="stable")), (kind, text)
    for text in PUNCTUATED:  # punctuation is no word of TextAttack's; every word still has tokens
        mapping = align_words_to_tokens(AttackedText(text), wrapper.tokenizer)
        assert all(mapping.values()), (kind, text, mapping)


def test_textattack_alignment_misses_every_sentencepiece_word(victims):
    """What the module fixes: TextAttack 0.3.11 aligns no "▁" token, so every score is 0 and the order is the words'."""
    from textattack.shared import AttackedText

    wrapper = victims["sentencepiece-albert"]
    for text in PLAIN:
        attacked = AttackedText(text)
        assert "\u2581" in "".join(wrapper.tokenize([text])[0])
        mapping = attacked.align_with_model_tokens(wrapper)
        assert all(v is None for v in mapping.values()), mapping
        order, _ = _search(wrapper, stock=True)._get_index_order(attacked)
        ours, _ = _search(wrapper)._get_index_order(attacked)
        assert list(ours) != list(order)


@pytest.mark.parametrize("kind", ["wordpiece", "byte-level-bpe"])
def test_same_tokens_and_ranking_as_textattack_where_its_alignment_works(victims, kind):
    from textattack.shared import AttackedText

    from advtrain.attacks.word_alignment import align_words_to_tokens

    wrapper = victims[kind]
    compared = 0
    # TextAttack also gives a word the bare "Ġ" of a punctuation mark before it (an empty string matches any word):
    # byte-level BPE is compared on plain text
    for text in PLAIN + (PUNCTUATED if kind == "wordpiece" else []):
        attacked = AttackedText(text)
        stock = attacked.align_with_model_tokens(wrapper)
        if not all(stock.values()):
            # an [UNK] (the tiny vocabulary has no apostrophe) derails TextAttack's matching for the later words
            assert kind == "wordpiece" and "'" in text, (text, stock)
            continue
        compared += 1
        assert align_words_to_tokens(attacked, wrapper.tokenizer) == stock, text
        ours, _ = _search(wrapper)._get_index_order(attacked)
        theirs, _ = _search(wrapper, stock=True)._get_index_order(attacked)
        assert list(ours) == list(theirs), text
    assert compared >= len(PLAIN) + (2 if kind == "wordpiece" else 0)


def test_accented_and_unknown_words_are_aligned(victims):
    """An uncased WordPiece strips accents ("café" -> "cafe") and maps unknown characters to [UNK]: TextAttack's
    prefix matching loses words after them, the offsets do not."""
    from textattack.shared import AttackedText

    from advtrain.attacks.word_alignment import align_words_to_tokens

    wrapper = victims["wordpiece"]
    attacked = AttackedText("the caf\u00e9 was good \u4e2d\u6587 and zzzqqq")
    ours = align_words_to_tokens(attacked, wrapper.tokenizer)
    assert all(ours.values()), ours
    assert None in attacked.align_with_model_tokens(wrapper).values()


def test_two_columns_align_within_their_own_segment(victims):
    from textattack.shared import AttackedText

    from advtrain.attacks.word_alignment import align_words_to_tokens

    wrapper = victims["wordpiece"]
    attacked = AttackedText(OrderedDict(premise="the movie was good", hypothesis="the film was dull"))
    enc = wrapper.tokenizer([attacked.tokenizer_input], add_special_tokens=True, padding="max_length",
                            truncation=True)
    mapping = align_words_to_tokens(attacked, wrapper.tokenizer)
    words = enc.word_ids(0)
    segments = enc.sequence_ids(0)
    expected = {}
    for position, (word, segment) in enumerate(zip(words, segments, strict=True)):
        if word is not None:
            expected.setdefault(word + 4 * segment, []).append(position)
    assert mapping == expected


def test_slow_tokenizer_is_an_error(victims, tiny_model):
    from textattack.shared import AttackedText
    from transformers import BertTokenizer

    from advtrain.attacks.word_alignment import align_words_to_tokens

    with pytest.raises(TypeError, match=r"BertTokenizer is not a fast tokenizer: .*use_fast=True"):
        align_words_to_tokens(AttackedText("good film"), BertTokenizer(str(tiny_model / "vocab.txt")))


@pytest.mark.parametrize("kind", ["wordpiece", "byte-level-bpe", "sentencepiece-albert"])
def test_gradient_at_the_texts_length_is_textattacks_padded_gradient(victims, kind):
    """The project's victim (advtrain.attacks.victim) takes A2T's gradient over the text's own tokens; TextAttack's
    pads to model_max_length (96 here). With dropout off they agree at every token of the text, to float rounding,
    and the word ranking is the same; the project's gradient has a row per token, no more."""
    from textattack.shared import AttackedText

    from advtrain.attacks.victim import padded_wrapper

    stock = victims[kind]
    ours = padded_wrapper(stock.model, stock.tokenizer)
    for text in PLAIN + PUNCTUATED:
        padded = stock.get_grad(text)["gradient"]
        short = ours.get_grad(text)["gradient"]
        n = len(ours.tokenizer([text], add_special_tokens=True)["input_ids"][0])
        assert padded.shape[0] == 96 and short.shape == (n, padded.shape[1]), (kind, text)
        np.testing.assert_allclose(short, padded[:n], rtol=1e-4, atol=1e-6, err_msg=f"{kind}: {text}")
        attacked = AttackedText(text)
        assert list(_search(ours)._get_index_order(attacked)[0]) == list(_search(stock)._get_index_order(attacked)[0])
    assert not stock.model.training and not ours.model.training  # both put the model back in eval mode


def _textattack_get_grad_unpadded(wrapper, text: str) -> np.ndarray:
    """TextAttack 0.3.11's HuggingFaceModelWrapper.get_grad restated line for line (train mode, both forwards with
    a graph, ``loss.backward()`` into every parameter, the embedding output's gradient from a hook), at the text's
    own length: the reference for the project's cheaper form."""
    model = wrapper.model
    model.train()
    embedding_layer = model.get_input_embeddings()
    original_state = embedding_layer.weight.requires_grad
    embedding_layer.weight.requires_grad = True
    emb_grads = []

    def grad_hook(module, grad_in, grad_out):
        emb_grads.append(grad_out[0])

    hook = embedding_layer.register_full_backward_hook(grad_hook)
    model.zero_grad()
    enc = wrapper.tokenizer([text], add_special_tokens=True, return_tensors="pt", truncation=True)
    labels = model(**enc).logits.argmax(dim=1)
    model(**enc, labels=labels)[0].backward()
    gradient = emb_grads[0][0].cpu().numpy()
    embedding_layer.weight.requires_grad = original_state
    hook.remove()
    model.zero_grad()
    model.eval()
    return gradient


@pytest.mark.parametrize("kind", ["wordpiece", "byte-level-bpe"])
def test_gradient_with_dropout_is_textattacks_bit_for_bit(victims, kind):
    """With dropout on (A2T's attacks run get_grad in train mode) and the same random state, the project's get_grad
    (label forward without a graph, only the input's gradient) returns TextAttack's gradient exactly: the same
    dropout draws, the same kernels for the input's gradient."""
    from advtrain.attacks.victim import padded_wrapper

    tiny = victims[kind]
    # The tiny victims have no dropout: the same weights in a model whose dropouts (attention's included) are 0.1.
    config = copy.deepcopy(tiny.model.config)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        if hasattr(config, key):
            setattr(config, key, 0.1)
    model = type(tiny.model)(config)
    model.load_state_dict(tiny.model.state_dict())
    model.eval()
    stock = SimpleNamespace(model=model, tokenizer=tiny.tokenizer)
    ours = padded_wrapper(model, tiny.tokenizer)
    for seed, text in enumerate(PLAIN + PUNCTUATED):
        torch.manual_seed(seed)
        reference = _textattack_get_grad_unpadded(stock, text)
        torch.manual_seed(seed)
        gradient = ours.get_grad(text)["gradient"]
        assert np.array_equal(gradient, reference), (kind, text, float(np.abs(gradient - reference).max()))
        torch.manual_seed(seed + 1000)  # another draw: dropout does change the gradient
        assert not np.array_equal(ours.get_grad(text)["gradient"], reference)
    assert not ours.model.training
