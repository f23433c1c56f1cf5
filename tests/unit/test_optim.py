"""The optimisers against the reference trainers' code (issue 22, items 3, 4 and 7): a few steps of ``AdvTrainer``
with a method's train settings from config.yaml equal a few steps of TextAttack's or mt-dnn's loop, restated in
tests/references/optim_references.py, on a tiny BERT; the baseline's settings (the values before) do not."""

from __future__ import annotations

import copy

import datasets
import optim_references as ref
import pytest
import torch
import yaml
from conftest import REPO, synthetic_reviews
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
)

from advtrain import config as cfg
from advtrain.training.finetune import last_complete_checkpoint, optimizer_choice, training_arguments
from advtrain.training.optim import LegacyAdamW, MtdnnAdamax, mtdnn_schedule
from advtrain.training.trainer import AdvTrainer

ROWS = 8  # one batch of 8 (the AT-IP and ALUM batch size) per step: every step sees the same examples in any order
TOLERANCE = 1e-6
GAIN = 300.0


@pytest.fixture(scope="module")
def study() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def tiny(tiny_model):
    """(model without dropout, so both loops compute the same losses; the rows as a dataset; one collated batch)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with torch.no_grad():  # gradient norms above 1 (BERT's at the start of fine-tuning), where clipping acts
        model.classifier.weight.mul_(GAIN)
    rows = synthetic_reviews(ROWS, seed=3)
    encoded = tokenizer([t for t, _ in rows], truncation=True, max_length=32)
    ds = datasets.Dataset.from_dict({**encoded, "labels": [label for _, label in rows]})
    batch = DataCollatorWithPadding(tokenizer)([ds[i] for i in range(ROWS)])
    return model, ds, tokenizer, dict(batch)


class StopAfter(TrainerCallback):
    """Ends training after ``epochs`` epochs (each one step here), once that epoch's checkpoint is written."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.epoch >= self.epochs


def trainer_run(tiny, settings: dict, steps: int, tmp_path, stop_after: int | None = None) -> dict:
    """``steps`` steps of AdvTrainer as fine_tune builds it (from the last checkpoint in ``tmp_path``, if any; or
    killed after ``stop_after`` steps); the trained parameters."""
    model, ds, tokenizer, _ = tiny
    model = copy.deepcopy(model)
    settings = {**settings, "epochs": steps, "batch_size": ROWS, "precision": "fp32", "dataloader_workers": 0}
    trainer = AdvTrainer(model=model, args=training_arguments(settings, tmp_path / "ckpt", seed=1), train_dataset=ds,
                         data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                         callbacks=[StopAfter(stop_after)] if stop_after else None, **optimizer_choice(settings))
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(tmp_path / "ckpt"))
    assert trainer.state.global_step == (stop_after or steps)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def reference_run(tiny, loop, steps: int, **kwargs) -> tuple[dict, list[float]]:
    model = copy.deepcopy(tiny[0])
    norms = loop(model, [tiny[3]] * steps, **kwargs)
    return {n: p.detach().clone() for n, p in model.named_parameters()}, norms


def test_at_ip_steps_equal_textattacks_trainer(study, tiny, tmp_path):
    """A2T's train settings (TextAttack's AdamW at eps 1e-6, no clipping) take TextAttack's steps; with one warm-up
    step instead of 100, so that the three steps move the parameters."""
    settings = {**cfg.train_settings(study, "A2T"), "warmup_steps": 1}
    expected, norms = reference_run(tiny, ref.textattack_train, 3, learning_rate=settings["learning_rate"],
                                    num_warmup_steps=1, weight_decay=settings["weight_decay"])
    start = {n: p.detach() for n, p in tiny[0].named_parameters()}
    assert largest_difference(expected, start) > 5e-5  # the steps did move the parameters
    assert max(norms) > 1.0  # clipping at 1.0 would have been active
    assert largest_difference(trainer_run(tiny, settings, 3, tmp_path / "a"), expected) < TOLERANCE
    # The values before (the baseline's torch AdamW, eps 1e-8, clipping at 1.0), and each change alone, do not.
    for before in ({"optimizer": "adamw_torch", "adam_epsilon": 1e-8, "max_grad_norm": 1.0},
                   {"max_grad_norm": 1.0}, {"adam_epsilon": 1e-8}, {"optimizer": "adamw_torch"}):
        other = trainer_run(tiny, {**settings, **before}, 3, tmp_path / str(len(before)) / str(sorted(before)[0]))
        assert largest_difference(other, expected) > 10 * TOLERANCE, before


def test_alum_steps_equal_mtdnns_adamax(study, tiny, tmp_path):
    """ALUM's train settings (mt-dnn's Adamax, clipping at 1.0, its warmup_linear over 10% of the steps) take mt-dnn's
    steps: four steps, the first in the warm-up (learning rate 0), then 0.75, 0.5, 0.25 of it (Hugging Face: 1, 2/3,
    1/3). Only the optimiser is compared: the ALUM part's loss is tested in tests/unit/test_embedding.py."""
    settings = cfg.train_settings(study, "ALUM")
    expected, norms = reference_run(tiny, ref.mtdnn_train, 4, learning_rate=settings["learning_rate"],
                                    warmup=settings["warmup_ratio"])
    assert max(norms) > 1.0
    assert largest_difference(trainer_run(tiny, settings, 4, tmp_path / "alum"), expected) < TOLERANCE
    for before in ({"optimizer": "adamw_torch", "adam_epsilon": 1e-8, "lr_schedule": "linear"},
                   {"lr_schedule": "linear"}, {"max_grad_norm": 0}):
        other = trainer_run(tiny, {**settings, **before}, 4, tmp_path / "before" / str(sorted(before)[0]))
        assert largest_difference(other, expected) > 10 * TOLERANCE, before


@pytest.mark.parametrize("method", ["A2T", "ALUM"])
def test_a_resumed_run_takes_the_same_steps(study, tiny, tmp_path, method):
    """The reference optimisers' state (moments, step counts) and the mt-dnn schedule survive a checkpoint."""
    settings = {**cfg.train_settings(study, method), "warmup_steps": 1}
    whole = trainer_run(tiny, settings, 3, tmp_path / "whole")
    trainer_run(tiny, settings, 3, tmp_path / "killed", stop_after=2)
    resumed = trainer_run(tiny, settings, 3, tmp_path / "killed")
    assert largest_difference(resumed, whole) < 1e-7


def test_mtdnn_schedule_is_warmup_linear():
    factor = mtdnn_schedule(1000, 100.0)
    for step in (0, 50, 99, 100, 101, 500, 999):
        assert factor(step) == pytest.approx(ref.warmup_linear(step / 1000, 0.1))
    assert factor(100) == pytest.approx(0.9)  # the drop after the warm-up


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_the_optimisers_restate_their_references_on_random_gradients(weight_decay):
    """Fifty steps on a tensor with gradients of very different scales (where epsilon matters)."""
    gen = torch.Generator().manual_seed(0)
    scales = torch.logspace(-9, 0, 20)
    grads = [torch.randn(20, generator=gen) * scales for _ in range(50)]
    for ours_cls, ref_cls, kwargs in ((LegacyAdamW, ref.TransformersAdamW, {}),
                                      (MtdnnAdamax, ref.MtdnnAdamax, {"max_grad_norm": 0})):
        start = torch.randn(20, generator=gen)
        a, b = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
        ours = ours_cls([{"params": [a], "weight_decay": weight_decay}], lr=1e-3, eps=1e-6)
        theirs = ref_cls([{"params": [b], "weight_decay": weight_decay}], lr=1e-3, **kwargs)
        for g in grads:
            a.grad, b.grad = g.clone(), g.clone()
            ours.step()
            theirs.step()
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
