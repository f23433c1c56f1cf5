"""FreeLB and FreeLB++ (kinds ``freelb``, ``freelb_plus``) against TextDefender's training step, on a tiny BERT."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import freelb_reference as reference
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

from advtrain.training import embedding
from advtrain.training.embedding import DEFAULTS, build_embedding_adversary
from advtrain.training.trainer import AdvTrainer

#: The trainer's other parts, absent (a stub trainer for AdvTrainer.compute_loss).
NO_OTHER_PARTS = {"input_adversary": None, "flooding": None, "smoothing": None}


def _config(num_labels: int) -> BertConfig:
    # Dropout as BERT's (0.1): TextDefender trains with it on, and the comparison draws the same masks.
    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 100, (4, 8), generator=g)
    attention_mask = torch.ones(4, 8, dtype=torch.long)
    attention_mask[1, 5:] = 0
    attention_mask[3, 3:] = 0
    input_ids[attention_mask == 0] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": torch.zeros_like(input_ids),
            "labels": torch.tensor([0, 1, 2, 1])}


def _ours(model, inputs, settings, monkeypatch):
    """AdvTrainer.compute_loss's loss and backward; returns (loss, the deltas the forwards used)."""
    used = []

    def record(function):
        def wrapped(*args, **kwargs):
            delta = function(*args, **kwargs)
            used.append(delta.detach().clone())
            return delta
        return wrapped

    monkeypatch.setattr(embedding, "random_start", record(embedding.random_start))
    monkeypatch.setattr(embedding, "project", record(embedding.project))
    trainer = SimpleNamespace(embedding_adversary=build_embedding_adversary(settings), **NO_OTHER_PARTS)
    model.zero_grad()
    loss = AdvTrainer.compute_loss(trainer, model, dict(inputs))
    loss.backward()
    monkeypatch.undo()
    return loss.item(), used


def _update(model):
    """TextDefender's end of the step: clipping at max-grad-norm 1.0 (base.py:45), AdamW (main.py:517) with its
    default eps 1e-8 and weight decay 1e-6 (base.py:41-44); a larger learning rate than its 2e-5 so that a wrong
    gradient shows in the weights."""
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, eps=1e-8, weight_decay=1e-6)
    optimizer.step()


@pytest.mark.parametrize(
    ("settings", "max_norm"),
    [
        ({"kind": "freelb"}, 0.0),
        ({"kind": "freelb_plus"}, 0.0),
        # FreeLB with a norm bound (adv-max-norm > 0): small enough that the projection acts.
        ({"kind": "freelb", "bound": "ball", "epsilon": 0.06}, 0.06),
    ],
    ids=["freelb", "freelb_plus", "freelb-bounded"],
)
def test_matches_textdefenders_step(settings, max_norm, monkeypatch):
    torch.manual_seed(0)
    theirs = BertForSequenceClassification(_config(3)).train()
    mine = copy.deepcopy(theirs)
    inputs = _batch()
    defaults = DEFAULTS[settings["kind"]]

    torch.manual_seed(7)
    their_loss, their_deltas = reference.freelb_step(
        theirs, inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"], inputs["labels"],
        adv_steps=defaults["steps"], adv_lr=defaults["step_size"], init_mag=defaults["init_std"], max_norm=max_norm)
    torch.manual_seed(7)
    my_loss, my_deltas = _ours(mine, inputs, settings, monkeypatch)

    assert len(my_deltas) == len(their_deltas) == defaults["steps"]
    assert my_loss == pytest.approx(their_loss, rel=1e-6)
    for k, (a, b) in enumerate(zip(my_deltas, their_deltas, strict=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=lambda m, k=k: f"delta_{k}: {m}")
    if max_norm:
        assert max(d.flatten(1).norm(dim=1).max().item() for d in their_deltas) == pytest.approx(max_norm, rel=1e-5)
    their_grads = dict(theirs.named_parameters())
    for name, p in mine.named_parameters():
        torch.testing.assert_close(p.grad, their_grads[name].grad, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    _update(theirs)
    _update(mine)
    for (name, a), b in zip(mine.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def test_no_clean_forward_and_k_forwards():
    """FreeLB's loss has no clean term: the trainer runs K perturbed forwards and no clean one."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(_config(3)).train()
    calls = []
    model.bert.encoder.register_forward_hook(lambda *_: calls.append(1))
    for kind, steps in (("freelb", 5), ("freelb_plus", 10)):
        calls.clear()
        trainer = SimpleNamespace(embedding_adversary=build_embedding_adversary({"kind": kind}), **NO_OTHER_PARTS)
        assert not trainer.embedding_adversary.needs_clean_forward
        loss = AdvTrainer.compute_loss(trainer, model, _batch())
        assert len(calls) == steps and torch.isfinite(loss)
    # A clean weight brings the clean forward (and its loss) back.
    calls.clear()
    trainer = SimpleNamespace(embedding_adversary=build_embedding_adversary({"kind": "freelb", "clean_weight": 1.0}),
                              **NO_OTHER_PARTS)
    AdvTrainer.compute_loss(trainer, model, _batch())
    assert len(calls) == 6


def test_start_is_textdefenders_and_zero_at_padding():
    mask = _batch()["attention_mask"]
    torch.manual_seed(3)
    ours = embedding.random_start((4, 8, 32), mask, 0.05, "uniform")
    torch.manual_seed(3)
    theirs = reference.delta_initial(torch.zeros(4, 8, 32), mask, 0.05)
    assert torch.equal(ours, theirs)
    assert (ours[mask == 0] == 0).all()
    # Its norm is at most init_std per example (U(-1, 1) has |u| <= 1).
    assert (ours.flatten(1).norm(dim=1) <= 0.05).all()


def test_token_classification_without_clean_logits():
    """The LCA taggers can use FreeLB: without a clean forward the [B, T] labels say the task is per token."""
    torch.manual_seed(0)
    model = BertForTokenClassification(_config(5)).train()
    inputs = _batch()
    labels = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(2))
    labels[inputs["attention_mask"] == 0] = -100
    inputs["labels"] = labels
    loss = build_embedding_adversary({"kind": "freelb", "steps": 2}).loss(model, inputs, None)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"kind": "freelb", "steps": 0}, "steps"),
        ({"kind": "freelb", "ascent_divergence": "kl"}, "ascent_divergence"),
        ({"kind": "freelb", "accumulate": "yes"}, "accumulate"),
        ({"kind": "freelb_plus", "clean_weight": -1}, "clean_weight"),
        ({"kind": "freelb", "bound": "l2ball"}, "bound"),
    ],
)
def test_rejects_bad_settings(settings, key):
    with pytest.raises(ValueError, match=f"adversarial_embedding.{key}"):
        build_embedding_adversary(settings)
