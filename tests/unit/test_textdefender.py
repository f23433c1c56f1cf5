"""TAVAT and InfoBERT (advtrain.training.textdefender) against TextDefender's trainers restated
(tests/references/textdefender_references.py) on a tiny random BERT with dropout on: the same seeds give the same
parameter gradients, logged loss and TAVAT memory."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import textdefender_references as reference
import torch
from transformers import BertConfig, BertForSequenceClassification

from advtrain.training.embedding import build_embedding_adversary
from advtrain.training.embedding_settings import DEFAULTS
from advtrain.training.textdefender import InfoBertAdversary, TokenAwareAdversary
from advtrain.training.trainer import AdvTrainer

TOLERANCE = 1e-6


def _model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2, output_hidden_states=True)
    return BertForSequenceClassification(config).train()  # dropout on, as in training


def _batch(seed: int, rows: int = 6, length: int = 12) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 12, (rows, length), generator=g)  # a small range: tokens repeat (TAVAT's memory sums them)
    mask = torch.ones_like(ids)
    for row, n in enumerate(torch.randint(2, length + 1, (rows,), generator=g).tolist()):
        mask[row, n:] = 0  # right padding, as the tokenizer pads
    mask[0] = 1  # the longest row sets the batch's length, as a padding collator does
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.randint(0, 2, (rows,), generator=g)}


def _as_tuple(inputs: dict) -> tuple:
    return inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"], inputs["labels"]


def _assert_same_gradients(ours, theirs):
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=TOLERANCE, rtol=1e-5), (name, (a.grad - b.grad).abs().max())


@pytest.mark.parametrize("token_memory", [True, False])
def test_tavat_matches_textdefender(token_memory):
    theirs = _model()
    ours = copy.deepcopy(theirs)
    args = SimpleNamespace(**{**vars(reference.TAVAT_ARGS), "use_global_embedding": token_memory})
    torch.manual_seed(3)
    memory = reference.tavat_memory(args, theirs)
    adversary = build_embedding_adversary({"kind": "tavat", "token_memory": token_memory})
    assert isinstance(adversary, TokenAwareAdversary) and adversary.steps == 2
    torch.manual_seed(3)
    adversary._memory(ours.get_input_embeddings())  # drawn as TextDefender draws it
    assert torch.allclose(adversary.memory, memory, atol=1e-7)
    adversary.memory, start = memory.clone(), memory.clone()
    for seed in (1, 2):  # two batches: the second reads the memory the first wrote
        inputs = _batch(seed)
        theirs.zero_grad()
        ours.zero_grad()
        torch.manual_seed(10 + seed)
        tr_loss, memory = reference.tavat_train(args, theirs, _as_tuple(inputs), memory)
        torch.manual_seed(10 + seed)
        loss = adversary.loss(ours, inputs)
        loss.backward()
        assert abs(loss.item() - tr_loss) < TOLERANCE
        _assert_same_gradients(ours, theirs)
        assert torch.allclose(adversary.memory, memory, atol=TOLERANCE)
    assert torch.equal(adversary.memory, start) != token_memory  # written to only when on


@pytest.mark.parametrize("chunk", [32, 4])  # 4: the pairs fall into several InfoNCE chunks, shuffled first
def test_infobert_matches_textdefender(chunk):
    theirs = _model()
    ours = copy.deepcopy(theirs)
    args = SimpleNamespace(**{**vars(reference.INFOBERT_ARGS), "batch_size": chunk})
    torch.manual_seed(5)
    trainer = reference.InfoBert(args, theirs)
    adversary = build_embedding_adversary({"kind": "infobert", "anchor_chunk": chunk})
    assert isinstance(adversary, InfoBertAdversary) and adversary.steps == 3
    adversary.critic = copy.deepcopy(trainer.mi_estimator.F_func).requires_grad_(False)
    for seed in (1, 2):
        inputs = _batch(seed)
        theirs.zero_grad()
        ours.zero_grad()
        torch.manual_seed(20 + seed)
        tr_loss = trainer.train(args, _as_tuple(inputs))
        torch.manual_seed(20 + seed)
        loss = adversary.loss(ours, inputs)
        loss.backward()
        assert abs(loss.item() - tr_loss) < TOLERANCE
        _assert_same_gradients(ours, theirs)


def test_infobert_regularisers_change_the_gradient():
    """alpha and beta are not inert: without them the update is FreeLB's (the same draws otherwise)."""
    grads = []
    for weights in ({}, {"alpha": 0.0, "beta": 0.0}):
        model = _model()
        adversary = build_embedding_adversary({"kind": "infobert", **weights})
        torch.manual_seed(7)
        adversary.loss(model, _batch(1)).backward()
        grads.append(model.bert.embeddings.word_embeddings.weight.grad.clone())
    assert (grads[0] - grads[1]).abs().max() > 1e-6


def test_compute_loss_runs_no_clean_forward():
    """The Trainer's loss is the adversary's K perturbed forwards only (TextDefender has no clean term)."""
    model = _model()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    trainer = SimpleNamespace(embedding_adversary=build_embedding_adversary({"kind": "tavat"}), input_adversary=None,
                              flooding=None, smoothing=None)
    loss = AdvTrainer.compute_loss(trainer, model, _batch(1))
    assert len(calls) == 2 and loss.requires_grad
    model.eval()  # evaluation: the clean loss
    AdvTrainer.compute_loss(trainer, model, _batch(1))
    assert len(calls) == 3


def test_defaults_and_bad_settings():
    assert {k: getattr(build_embedding_adversary({"kind": "tavat"}), k) for k in DEFAULTS["tavat"]} == DEFAULTS["tavat"]
    assert build_embedding_adversary({"kind": "infobert", "step_size": "4e-2"}).step_size == 4e-2  # PyYAML string
    for settings, key in (({"kind": "tavat", "epsilon": 0.1}, "epsilon"), ({"kind": "tavat", "steps": 0}, "steps"),
                          ({"kind": "infobert", "alpha": -1}, "alpha"),
                          ({"kind": "infobert", "anchor_low": 0.9, "anchor_high": 0.5}, "anchor_high"),
                          ({"kind": "tavat", "token_memory": "yes"}, "token_memory")):
        with pytest.raises(ValueError, match=rf"\b{key}\b"):
            build_embedding_adversary(settings)
