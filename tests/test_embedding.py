"""Embedding-space adversaries (PGD-AT, LDS, ALUM) on tiny random BERT models."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

from advtrain.training.embedding import (
    _DIVERGENCES,
    DEFAULTS,
    EmbeddingAdversary,
    _reduce,
    ascend,
    build_embedding_adversary,
    project,
)

KINDS = ("pgd", "lds", "alum")


def _config(num_labels: int) -> BertConfig:
    return BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 100, (4, 8), generator=g)
    attention_mask = torch.ones(4, 8, dtype=torch.long)
    attention_mask[1, 5:] = 0
    attention_mask[3, 3:] = 0
    input_ids[attention_mask == 0] = 0
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
    }


@pytest.fixture
def seq():
    torch.manual_seed(0)
    model = BertForSequenceClassification(_config(3)).eval()
    inputs = {**_batch(), "labels": torch.tensor([0, 1, 2, 1])}
    return model, inputs


@pytest.fixture
def tok():
    torch.manual_seed(0)
    model = BertForTokenClassification(_config(5)).eval()
    inputs = _batch()
    labels = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(2))
    labels[inputs["attention_mask"] == 0] = -100
    labels[:, 0] = -100  # [CLS]
    labels[0, 4] = -100  # a word-piece continuation
    return model, {**inputs, "labels": labels}


def _adversary(kind: str, **overrides) -> EmbeddingAdversary:
    return build_embedding_adversary({**DEFAULTS[kind], "kind": kind, **overrides})


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("projection", ["example", "token"])
def test_project_bounds_norm_and_keeps_padding_zero(norm, projection):
    mask = _batch()["attention_mask"]
    delta = torch.randn(4, 8, 32, generator=torch.Generator().manual_seed(3))
    eps = 0.05
    out = project(delta, mask, eps, norm, projection)
    assert torch.all(out[mask == 0] == 0)
    if norm == "linf":
        assert out.abs().max() <= eps
    elif projection == "example":
        assert torch.all(out.flatten(1).norm(dim=-1) <= eps * (1 + 1e-5))
    else:
        assert torch.all(out.norm(dim=-1) <= eps * (1 + 1e-5))
    # A perturbation already inside the ball is left alone.
    small = project(delta * 1e-6, mask, eps, norm, projection)
    assert torch.allclose(small, delta * 1e-6 * mask[..., None])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("grad_norm", ["none", "steepest", "token_inf"])
def test_one_ascent_step_increases_adversarial_loss(seq, kind, grad_norm):
    model, inputs = seq
    adversary = _adversary(kind, init_std=0.01, epsilon=10.0, norm="l2", grad_norm=grad_norm)
    adversary.step_size = 3.0 if grad_norm == "none" else 0.05
    clean = model(**inputs).logits
    embeds, mask, valid, forward = adversary._context(model, inputs, clean)

    def objective(logits):
        return _reduce(_DIVERGENCES[kind](clean.detach(), logits, inputs["labels"]), valid, per_example=True)

    def run(steps):
        torch.manual_seed(7)  # same random start for both
        return ascend(
            lambda d: forward(embeds.detach() + d),
            objective,
            mask,
            32,
            steps=steps,
            epsilon=adversary.epsilon,
            step_size=adversary.step_size,
            init_std=adversary.init_std,
            norm="l2",
            grad_norm=grad_norm,
        )

    delta0, delta1 = run(0), run(1)
    assert not torch.equal(delta0, delta1)
    with torch.no_grad():
        before, after = objective(forward(embeds + delta0)), objective(forward(embeds + delta1))
    assert after > before


def test_ascent_respects_bound_and_padding(seq):
    model, inputs = seq
    adversary = _adversary("pgd", epsilon=0.01, step_size=1.0, grad_norm="steepest")
    delta = adversary.perturbation(model, inputs, model(**inputs).logits)
    assert torch.all(delta.flatten(1).norm(dim=-1) <= 0.01 * (1 + 1e-5))
    assert torch.all(delta[inputs["attention_mask"] == 0] == 0)
    assert delta.dtype == torch.float32 and not delta.requires_grad


@pytest.mark.parametrize("task", ["seq", "tok"])
def test_zero_steps_zero_epsilon_reduce_to_clean_loss_and_zero(task, request):
    model, inputs = request.getfixturevalue(task)
    outputs = model(**inputs)
    pgd = _adversary("pgd", steps=0, epsilon=0.0).loss(model, inputs, outputs.logits)
    assert torch.allclose(pgd, outputs.loss, atol=1e-6)
    for kind in ("lds", "alum"):
        term = _adversary(kind, steps=0, epsilon=0.0).loss(model, inputs, outputs.logits)
        assert abs(term.item()) < 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_ascent_touches_no_parameter_grad_but_loss_reaches_embeddings(seq, kind):
    model, inputs = seq
    adversary = _adversary(kind)
    outputs = model(**inputs)
    adversary.perturbation(model, inputs, outputs.logits)
    assert all(p.grad is None for p in model.parameters())
    adversary.loss(model, inputs, outputs.logits).backward()
    grad = model.get_input_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_token_classification_with_ignored_labels(tok, kind):
    model, inputs = tok
    outputs = model(**inputs)
    adversary = _adversary(kind, epsilon=0.1, step_size=0.01, grad_norm="steepest")
    term = adversary.loss(model, inputs, outputs.logits)
    assert term.dim() == 0 and torch.isfinite(term) and term >= 0
    (outputs.loss + term).backward()
    assert model.get_input_embeddings().weight.grad is not None


def test_lds_final_term_can_reach_clean_logits(seq):
    model, inputs = seq
    clean = model(**inputs).logits.detach().requires_grad_(True)
    _adversary("lds", init_std=0.01, epsilon=0.1).loss(model, inputs, clean).backward()
    assert clean.grad is not None and clean.grad.abs().sum() > 0
    clean.grad = None
    _adversary("alum").loss(model, inputs, clean).backward()
    assert clean.grad is None


@pytest.mark.parametrize("kind", KINDS)
def test_works_under_bf16_autocast(seq, kind):
    model, inputs = seq
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(**inputs)
        loss = outputs.loss + _adversary(kind).loss(model, inputs, outputs.logits)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.get_input_embeddings().weight.grad is not None


def test_build_defaults_and_none():
    assert build_embedding_adversary(None) is None
    for kind in KINDS:
        adversary = build_embedding_adversary({"kind": kind})
        assert adversary.kind == kind
        assert {k: getattr(adversary, k) for k in DEFAULTS[kind]} == DEFAULTS[kind]
    assert build_embedding_adversary({"kind": "pgd"}).epsilon == 0.003
    assert build_embedding_adversary({"kind": "pgd", "step_size": "1e-3"}).step_size == 1e-3  # PyYAML string


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"kind": "pgd", "epsilon": -0.1}, "epsilon"),
        ({"kind": "pgd", "steps": -1}, "steps"),
        ({"kind": "pgd", "steps": 1.5}, "steps"),
        ({"kind": "pgd", "norm": "l1"}, "norm"),
        ({"kind": "pgd", "projection": "sentence"}, "projection"),
        ({"kind": "pgd", "grad_norm": "l1"}, "grad_norm"),
        ({"kind": "pgd", "step_size": "fast"}, "step_size"),
        ({"kind": "freelb"}, "kind"),
        ({"steps": 3}, "kind"),
        ({"kind": "lds", "epsilonn": 0.1}, "epsilonn"),
    ],
)
def test_build_rejects_bad_settings(settings, key):
    with pytest.raises(ValueError, match=rf"\b{key}\b"):
        build_embedding_adversary(settings)


def test_ascent_runs_without_dropout_and_restores_each_modules_mode():
    from transformers import BertConfig, BertForSequenceClassification

    from advtrain.training.embedding import build_embedding_adversary

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.5,
                        attention_probs_dropout_prob=0.5)
    model = BertForSequenceClassification(config)
    model.train()
    model.bert.pooler.eval()  # a module in its own mode must come back in it
    inputs = {"input_ids": torch.randint(5, 100, (3, 8)), "attention_mask": torch.ones(3, 8, dtype=torch.long),
              "labels": torch.tensor([0, 1, 0])}
    clean = model(**inputs).logits
    seen = []
    hook = model.bert.encoder.register_forward_pre_hook(lambda m, a: seen.append(m.training))
    off = build_embedding_adversary({"kind": "pgd", "steps": 2})
    off.perturbation(model, inputs, clean)
    assert seen == [False, False]  # both ascent steps without dropout
    assert model.training and not model.bert.pooler.training
    seen.clear()
    on = build_embedding_adversary({"kind": "pgd", "steps": 2, "ascent_dropout": True})
    on.perturbation(model, inputs, clean)
    hook.remove()
    assert seen == [True, True]
    torch.manual_seed(1)
    a = off.perturbation(model, inputs, clean)
    torch.manual_seed(1)
    b = off.perturbation(model, inputs, clean)
    torch.testing.assert_close(a, b)  # same start, no dropout masks: the same perturbation
