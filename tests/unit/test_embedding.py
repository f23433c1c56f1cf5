"""Embedding-space adversaries (PGD-AT, LDS, ALUM) on tiny random BERT models."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import embedding_references as references
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

from advtrain.training.embedding import (
    _DIVERGENCES,
    ALUM_PAPER,
    ASCENT_TARGETS,
    BOUNDS,
    DEFAULTS,
    INITS,
    PERTURB_SITES,
    EmbeddingAdversary,
    _reduce,
    ascend,
    build_embedding_adversary,
    project,
    random_start,
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
    embeds, mask, valid, forward = adversary._site(model, inputs, clean)
    divergence = _DIVERGENCES[adversary.divergence]

    def objective(logits):
        return _reduce(divergence(clean.detach(), logits, inputs["labels"]), valid, per_example=True)

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


def test_final_term_reaches_clean_logits_unless_detached(seq):
    model, inputs = seq
    clean = model(**inputs).logits.detach().requires_grad_(True)
    for settings in ({"kind": "lds", "init_std": 0.01, "epsilon": 0.1}, {"kind": "alum"}):
        clean.grad = None
        build_embedding_adversary(settings).loss(model, inputs, clean).backward()
        assert clean.grad is not None and clean.grad.abs().sum() > 0, settings["kind"]
    clean.grad = None
    build_embedding_adversary({"kind": "alum", **ALUM_PAPER}).loss(model, inputs, clean).backward()
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
        ({"kind": "pgd++"}, "kind"),
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


# --- Reference behaviour, each restated from its source on a tiny input (issue 16, items 1-3) ---------------------


@pytest.mark.parametrize("length", [16, 512])
def test_start_norm_at_lengths_16_and_512(length):
    """Item 1: Algorithm 1's N(0, sigma^2) per coordinate has norm sigma * sqrt(T * H): with sigma = 1e-5 that is
    0.0011 at 16 x 768 and 0.0063 at 512 x 768, more than the bound 0.003. The default start is VAT's
    ``xi * d / ||d||`` (a random direction of norm xi per example): norm sigma at every length."""
    shape, eps = (2, length, 768), 0.003
    mask = torch.ones(shape[:2], dtype=torch.long)
    mask[1, length // 2:] = 0  # a padded example: the norm is over its valid tokens
    torch.manual_seed(0)
    old = random_start(shape, mask, 1e-5, "coordinate")
    torch.manual_seed(0)
    torch.testing.assert_close(old, references.algorithm1_start(shape, 1e-5) * mask[..., None])
    expected = 1e-5 * (mask.sum(-1).float() * 768).sqrt()
    torch.testing.assert_close(old.flatten(1).norm(dim=-1), expected, rtol=0.02, atol=0)
    if length == 512:
        # Both examples (512 and 256 valid tokens) start on the ball's surface: the start fills the ball.
        torch.testing.assert_close(project(old, mask, eps).flatten(1).norm(dim=-1), torch.full((2,), eps))

    sigma = DEFAULTS["pgd"]["init_std"]
    torch.manual_seed(0)
    ours = random_start(shape, mask, sigma, DEFAULTS["pgd"]["init"])
    torch.manual_seed(0)
    torch.testing.assert_close(ours, references.vat_start(shape, mask, sigma))
    torch.testing.assert_close(ours.flatten(1).norm(dim=-1), torch.full((2,), sigma))
    assert sigma < eps and torch.all(ours[mask == 0] == 0)
    for kind in ("pgd", "lds"):
        assert (DEFAULTS[kind]["init"], DEFAULTS[kind]["bound"]) == ("sphere", "ball")


def test_lds_ascent_target_is_the_clean_input_in_the_ascents_mode():
    """Item 2: TRADES runs its KL ascent under ``model.eval()`` against ``model(x_natural)`` in the same mode.
    Our delta equals TRADES's (restated with Algorithm 1's steepest L2 steps) whatever the training forward's
    dropout draw; with the former target (the training forward's logits) it follows the draw."""
    config = _config(3)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.3
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).train()
    inputs = {**_batch(), "labels": torch.tensor([0, 1, 2, 1])}
    settings = {"epsilon": 0.2, "step_size": 0.1, "init_std": 0.05}
    draws = []
    for seed in (1, 2):  # two training forwards, two dropout masks
        torch.manual_seed(seed)
        draws.append(model(**inputs).logits)
    assert not torch.allclose(draws[0], draws[1])

    def delta(adversary, clean):
        torch.manual_seed(7)
        return adversary.perturbation(model, inputs, clean)

    model.eval()
    embeddings = model.get_input_embeddings()(inputs["input_ids"]).detach()
    extra = {k: inputs[k] for k in ("attention_mask", "token_type_ids")}
    torch.manual_seed(7)
    start = references.vat_start(embeddings.shape, inputs["attention_mask"], settings["init_std"])
    reference = references.trades_l2_ascent(
        lambda e: model(inputs_embeds=e, **extra).logits, embeddings, inputs["attention_mask"], start,
        steps=3, step_size=settings["step_size"], epsilon=settings["epsilon"])
    model.train()

    lds = _adversary("lds", **settings)
    for clean in draws:
        torch.testing.assert_close(delta(lds, clean), reference, atol=1e-5, rtol=1e-3)  # |d| per coordinate ~ 1e-2
    old = _adversary("lds", **settings, ascent_target="training")
    cosine = F.cosine_similarity(delta(old, draws[0]).flatten(1), delta(old, draws[1]).flatten(1), dim=-1)
    assert cosine.min() < 0.99


def test_alum_step_on_a_fixed_gradient_is_mtdnns():
    """Item 3: SmartPerturbation's K = 1 step (norm_p "inf", token level) on the objective <delta, g>, whose
    gradient is g: ``noise + g * step_size`` divided by its per-token max-abs + adv_epsilon (1e-6), no clamp."""
    grad = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(4)) * 3.0
    alum = build_embedding_adversary({"kind": "alum"})
    settings = {k: getattr(alum, k) for k in ("steps", "epsilon", "step_size", "init_std", "norm", "projection",
                                               "grad_norm", "init", "bound")}
    torch.manual_seed(5)
    ours = ascend(lambda delta: delta, lambda out: (out * grad).sum(), torch.ones(2, 5), 8, **settings)
    torch.manual_seed(5)
    noise = references.algorithm1_start((2, 5, 8), 1e-5)  # generate_noise: N(0, 1) * adv_noise_var
    reference = references.mtdnn_norm_grad(noise + grad * 1e-5)  # train.py: --adv_step_size 1e-5
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-7)
    # Every token's perturbation has inf-norm max|v| / (max|v| + 1e-6), about 0.97 here, not 1e-5.
    assert ours.abs().amax(-1).min() > 0.95


def test_alum_matches_mtdnns_perturbation_on_the_embedding_output():
    """Item 3, end to end: mt-dnn's SmartPerturbation on the embedding layer's output, restated on a tiny BERT
    without padding or dropout, so that every forward is deterministic. Same delta, same loss, same parameter
    gradients, the clean side's included."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(_config(3)).eval()
    inputs = {**_batch(), "labels": torch.tensor([0, 1, 2, 1])}
    inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])
    matcher = references.bert_matcher(model, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    alum = build_embedding_adversary({"kind": "alum"})
    torch.manual_seed(3)
    reference_delta, reference_loss = references.mtdnn_smart_perturbation(*matcher, model(**inputs).logits)
    reference_grads = grads(reference_loss)
    torch.manual_seed(3)
    delta = alum.perturbation(model, inputs, model(**inputs).logits)
    torch.testing.assert_close(delta, reference_delta, rtol=1e-5, atol=1e-6)
    torch.manual_seed(3)
    loss = alum.loss(model, inputs, model(**inputs).logits)
    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-7)
    ours = grads(loss)
    assert ours.keys() == reference_grads.keys()
    assert "bert.embeddings.LayerNorm.weight" in ours  # the perturbation sits after the embedding LayerNorm
    for name, grad in reference_grads.items():
        torch.testing.assert_close(ours[name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_symmetric_kl_mtdnn_is_sym_kl_criterion():
    g = torch.Generator().manual_seed(5)
    clean, adv = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    values = {}
    for name, fn in (("ours", lambda c, a: _DIVERGENCES["symmetric_kl_mtdnn"](c, a, None).mean()),
                     ("reference", references.sym_kl_criterion)):
        c, a = clean.clone().requires_grad_(True), adv.clone().requires_grad_(True)
        value = fn(c, a)
        value.backward()
        values[name] = (value, c.grad, a.grad)
    for ours, reference in zip(values["ours"], values["reference"], strict=True):
        torch.testing.assert_close(ours, reference)
    # The value is the symmetric KL; only the gradients differ from the fully differentiated one.
    torch.testing.assert_close(values["ours"][0], _DIVERGENCES["symmetric_kl"](clean, adv, None).mean())


def test_stable_kl_is_mtdnns():
    g = torch.Generator().manual_seed(6)
    clean, adv = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g).requires_grad_(True)
    ours = _DIVERGENCES["stable_kl"](clean, adv, None).sum()
    (ours_grad,) = torch.autograd.grad(ours, adv)
    reference = references.stable_kl(adv, clean, reduce=False)
    (reference_grad,) = torch.autograd.grad(reference, adv)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(ours_grad, reference_grad)


def test_alum_paper_variant_is_the_previous_default():
    alum = build_embedding_adversary({"kind": "alum", **ALUM_PAPER})
    assert (alum.steps, alum.epsilon, alum.step_size, alum.init_std, alum.norm, alum.projection) == (
        1, 1e-5, 1e-3, pytest.approx(1e-5 ** 0.5), "linf", "token")
    assert (alum.perturb, alum.bound, alum.grad_norm, alum.divergence, alum.ascent_divergence) == (
        "word_embeddings", "ball", "token_inf", "symmetric_kl", "symmetric_kl")
    assert alum.detach_clean and not alum.ascent_dropout and alum.ascent_target == "training"


@pytest.mark.parametrize("perturb", ["word_embeddings", "embedding_output"])
def test_perturbation_site_hook_equals_direct_forward(seq, perturb):
    """The hook that replaces the perturbed module's output gives the logits of feeding that output by hand:
    ``inputs_embeds`` for the word embeddings, mt-dnn's embed_forward for the embedding layer's output."""
    model, inputs = seq
    clean = model(**inputs).logits
    base, mask, valid, forward = _adversary("pgd", perturb=perturb)._site(model, inputs, clean)
    delta = torch.randn(base.shape, generator=torch.Generator().manual_seed(8)) * 0.1
    if perturb == "word_embeddings":
        extra = {k: inputs[k] for k in ("attention_mask", "token_type_ids")}
        direct = model(inputs_embeds=model.get_input_embeddings()(inputs["input_ids"]) + delta, **extra).logits
    else:
        embed_encode, embed_forward = references.bert_matcher(
            model, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
        direct = embed_forward(embed_encode() + delta)
    torch.testing.assert_close(forward(base + delta), direct, rtol=1e-5, atol=1e-6)


def test_embedding_output_works_on_roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    config = RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, num_labels=2)
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config).train()
    inputs = {"input_ids": torch.randint(3, 100, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long),
              "labels": torch.tensor([0, 1])}
    outputs = model(**inputs)
    term = build_embedding_adversary({"kind": "alum"}).loss(model, inputs, outputs.logits)
    assert torch.isfinite(term) and term > 0
    term.backward()
    assert model.roberta.embeddings.LayerNorm.weight.grad is not None


def test_schema_lists_every_setting_and_choice():
    import yaml

    schema = yaml.safe_load((Path(__file__).parents[2] / "workflow/schemas/config.schema.yaml").read_text())
    properties = schema["$defs"]["adversarial_embedding"]["properties"]
    from advtrain.training import textdefender

    # TAVAT's and InfoBERT's own keys (their state, memory and critic, is not a setting).
    theirs = {f.name for cls in textdefender.KINDS.values() for f in fields(cls)} - {"memory", "critic"}
    assert set(properties) == {f.name for f in fields(EmbeddingAdversary)} | theirs
    for key, choices in {"kind": tuple(DEFAULTS), "perturb": PERTURB_SITES, "init": INITS, "bound": BOUNDS,
                         "ascent_target": ASCENT_TARGETS, "divergence": tuple(_DIVERGENCES),
                         "ascent_divergence": tuple(_DIVERGENCES)}.items():
        assert tuple(properties[key]["enum"]) == choices, key
