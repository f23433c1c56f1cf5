"""Flooding-X against its reference (tests/references/flooding_references.py): the flooded loss in Flooding-X's own
training loop, the accordance against its pairwise definition, and how the level is chosen, kept and resumed."""

from __future__ import annotations

import copy

import datasets
import flooding_references as ref
import pytest
import torch
from conftest import synthetic_reviews
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
)

from advtrain.training.finetune import last_complete_checkpoint, optimizer_choice, training_arguments
from advtrain.training.flooding import Flooding, flood, mean_pairwise_cosine, resolve
from advtrain.training.trainer import AdvTrainer

TOLERANCE = 1e-6
GAIN = 30.0  # a sharper head: the tiny model's loss then moves within a few steps
#: run_flood.py's optimiser and schedule (l. 47-53, 137-156): transformers' AdamW at eps 1e-8, weight decay 0.01,
#: 10 % warm-up, no clipping; a large learning rate so that the tiny model's loss falls below b within the run.
REFERENCE_TRAIN = {"optimizer": "adamw_hf", "adam_epsilon": 1e-8, "weight_decay": 0.01, "warmup_ratio": 0.1,
                   "max_grad_norm": 0, "learning_rate": 1e-3, "precision": "fp32", "dataloader_workers": 0,
                   "max_length": 32}


@pytest.fixture(scope="module")
def tiny(tiny_model):
    """(model without dropout, so both loops compute the same losses; the tokenizer)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with torch.no_grad():
        model.classifier.weight.mul_(GAIN)
    return model, tokenizer


def rows(tokenizer, n: int) -> datasets.Dataset:
    reviews = synthetic_reviews(n, seed=3)
    encoded = tokenizer([t for t, _ in reviews], truncation=True, max_length=32)
    return datasets.Dataset.from_dict({**encoded, "labels": [label for _, label in reviews]})


class Recording(AdvTrainer):
    """AdvTrainer that keeps each training step's gradient and each training loss it returns."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.losses, self.grads = [], []
        trainer = self

        class Grads(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
                trainer.grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]).clone())

        self.add_callback(Grads())

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training:
            self.losses.append((float(loss), self.flooding.level if self.flooding else None))
        return loss


class StopAfter(TrainerCallback):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.epoch >= self.epochs


def run(tiny, part: dict | None, *, n: int, batch_size: int, epochs: int, ckpt, stop_after: int | None = None,
        **train) -> tuple[dict, Recording]:
    model, tokenizer = tiny
    settings = {**REFERENCE_TRAIN, "batch_size": batch_size, "epochs": epochs, **train}
    trainer = Recording(model=copy.deepcopy(model), args=training_arguments(settings, ckpt, seed=1),
                        train_dataset=rows(tokenizer, n), data_collator=DataCollatorWithPadding(tokenizer),
                        processing_class=tokenizer, flooding=Flooding(part) if part else None,
                        callbacks=[StopAfter(stop_after)] if stop_after else None, **optimizer_choice(settings))
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(ckpt))
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}, trainer


def largest_difference(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_fixed_level_steps_equal_run_flood(tiny, tmp_path):
    """Ten steps on one batch of 8 (run_flood.py's loop, AdamW, schedule) with b between the first and last loss."""
    model, tokenizer = tiny
    batch = dict(DataCollatorWithPadding(tokenizer)([rows(tokenizer, 8)[i] for i in range(8)]))
    plain, plain_losses, _ = ref.run_flood_loop(copy.deepcopy(model), batch, b=None, steps=10, lr=1e-3)
    b = plain_losses[4]  # reached after 4 steps: the flooded run ascends from there on
    expected, losses, _ = ref.run_flood_loop(copy.deepcopy(model), batch, b=b, steps=10, lr=1e-3)
    assert min(losses) < b and largest_difference(expected, plain) > 100 * TOLERANCE  # the flood acted
    ours, trainer = run(tiny, {"select": "fixed", "level": b}, n=8, batch_size=8, epochs=10, ckpt=tmp_path / "a")
    assert largest_difference(ours, expected) < TOLERANCE
    assert trainer.flooding.summary() == {"select": "fixed", "level": b}
    # The objective the trainer returned is the flooded one: at or above b, whatever the cross-entropy.
    assert [loss for loss, _ in trainer.losses] == pytest.approx([abs(x - b) + b for x in losses], abs=1e-5)


def test_accordance_is_the_mean_pairwise_cosine_and_nothing_changes_until_a_level(tiny, tmp_path):
    """Two epochs of 4 steps: each epoch's accordance equals the pairwise mean over its step gradients; at a
    threshold no window reaches, the run is plain fine-tuning step for step."""
    part = {"select": "accordance", "threshold": -1.0}
    ours, trainer = run(tiny, part, n=16, batch_size=4, epochs=2, ckpt=tmp_path / "a")
    plain, _ = run(tiny, None, n=16, batch_size=4, epochs=2, ckpt=tmp_path / "b")
    assert largest_difference(ours, plain) == 0.0
    summary = trainer.flooding.summary()
    assert summary["level"] is None and summary["selected_at_step"] is None and summary["window"] == "epoch"
    windows = summary["windows"]
    assert [w["steps"] for w in windows] == [4, 4] and [w["step"] for w in windows] == [4, 8]
    for w, grads in zip(windows, (trainer.grads[:4], trainer.grads[4:]), strict=True):
        assert w["accordance"] == pytest.approx(ref.accordance(grads), abs=1e-6)
    losses = [loss for loss, _ in trainer.losses]
    assert [w["loss"] for w in windows] == pytest.approx([sum(losses[:4]) / 4, sum(losses[4:]) / 4], rel=1e-6)


def expected_choice(windows: list[dict], threshold: float) -> int | None:
    """Index of the window the level comes from: the first at or below the threshold after one above it."""
    above = False
    for i, w in enumerate(windows):
        if w["accordance"] > threshold:
            above = True
        elif above:
            return i
    return None


@pytest.fixture(scope="module")
def measured(tiny, tmp_path_factory):
    """Windows of 2 steps over 3 epochs of a run that never floods, and a threshold that one of them falls to from
    above: the first window whose accordance is below an earlier one's."""
    part = {"select": "accordance", "threshold": -1.0, "window": 2}
    _, trainer = run(tiny, part, n=16, batch_size=4, epochs=3, ckpt=tmp_path_factory.mktemp("measure"))
    windows = trainer.flooding.summary()["windows"]
    values = [w["accordance"] for w in windows]
    k = next(i for i in range(1, len(values)) if values[i] < max(values[:i]))
    return windows, values[k]


def test_the_level_is_the_loss_of_the_first_window_fallen_to_the_threshold(tiny, tmp_path, measured):
    """Until the level is chosen the run is the measuring run; b is the chosen window's mean loss, then it floods."""
    windows, threshold = measured
    k = expected_choice(windows, threshold)
    ours, trainer = run(tiny, {"select": "accordance", "threshold": threshold, "window": 2}, n=16, batch_size=4,
                        epochs=3, ckpt=tmp_path / "a")
    summary = trainer.flooding.summary()
    assert summary["windows"] == windows[: k + 1]  # the same run until then, bit for bit on a CPU
    assert summary["level"] == windows[k]["loss"] and summary["selected_at_step"] == windows[k]["step"]
    b, chosen = summary["level"], 2 * (k + 1)  # losses recorded before the level was set, one per step
    assert all(level is None for _, level in trainer.losses[:chosen])
    assert all(level == b for _, level in trainer.losses[chosen:]) and min(x for x, _ in trainer.losses[chosen:]) >= b
    plain, _ = run(tiny, None, n=16, batch_size=4, epochs=3, ckpt=tmp_path / "b")
    assert largest_difference(ours, plain) > 100 * TOLERANCE


def test_a_level_is_never_chosen_before_a_window_above_the_threshold(tiny, tmp_path):
    """At threshold 1 no window is above it: no level, whatever the windows (a model at chance is never flooded)."""
    _, trainer = run(tiny, {"select": "accordance", "threshold": 1.0, "window": 2}, n=16, batch_size=4, epochs=1,
                     ckpt=tmp_path / "a")
    assert trainer.flooding.level is None and len(trainer.flooding.windows) == 2


def test_a_resumed_run_keeps_its_windows_and_level(tiny, tmp_path, measured):
    part = {"select": "accordance", "threshold": measured[1], "window": 2}
    whole, trainer = run(tiny, part, n=16, batch_size=4, epochs=3, ckpt=tmp_path / "whole")
    run(tiny, part, n=16, batch_size=4, epochs=3, ckpt=tmp_path / "cut", stop_after=2)
    resumed, again = run(tiny, part, n=16, batch_size=4, epochs=3, ckpt=tmp_path / "cut")
    assert again.flooding.summary() == trainer.flooding.summary()
    assert trainer.flooding.level is not None and largest_difference(resumed, whole) < TOLERANCE


def test_pairwise_identity_and_the_flood():
    units = torch.nn.functional.normalize(torch.randn(5, 7, dtype=torch.float64), dim=1)
    assert mean_pairwise_cosine(float(units.sum(0).square().sum()), 5) == pytest.approx(ref.accordance(list(units)))
    loss = torch.tensor([0.3, 0.05], requires_grad=True)
    flooded = flood(loss, 0.1)
    flooded.sum().backward()
    assert flooded.tolist() == pytest.approx([0.3, 0.15]) and loss.grad.tolist() == [1.0, -1.0]


@pytest.mark.parametrize(("part", "key"), [
    ({"select": "fixed"}, "flooding.level"),
    ({"select": "accordance", "level": 0.1}, "flooding.level"),
    ({"select": "accordance", "window": 1}, "flooding.window"),
    ({"select": "accordance", "threshold": 2}, "flooding.threshold"),
    ({"select": "loss"}, "flooding.select"),
])
def test_bad_settings_name_their_key(part, key):
    with pytest.raises(ValueError, match=key):
        resolve(part)


@pytest.mark.parametrize(("part", "message"), [
    ({"select": "fixed"}, "methods.FX.flooding: 'level' is a required property"),
    ({"select": "accordance", "level": 0.1}, "methods.FX.flooding: level is for select: fixed"),
    ({"select": "fixed", "level": 0.1, "window": 3}, "methods.FX.flooding: threshold and window choose the level"),
    ({"select": "accordance", "window": 1}, "methods.FX.flooding.window: 1 is less than the minimum of 2"),
])
def test_the_schema_names_the_key_of_a_bad_part(part, message):
    import yaml
    from conftest import REPO

    from advtrain.config import explain_validation_errors

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"]["FX"] = {"flooding": part}
    assert explain_validation_errors(config, REPO / "workflow/schemas/config.schema.yaml").startswith(message)
