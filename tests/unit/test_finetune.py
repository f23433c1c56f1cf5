"""Fine-tuning through the Trainer subclass on the tiny model: learning, determinism, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import synthetic_reviews

from advtrain.config import method_spec
from advtrain.data import write_split
from advtrain.training.finetune import build_parts, fine_tune, last_complete_checkpoint


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    import pandas as pd

    root = tmp_path_factory.mktemp("splits")
    rows = synthetic_reviews(280, seed=7)
    for name, part in (("train", rows[:240]), ("validation", rows[240:])):
        write_split(pd.DataFrame(part, columns=["text", "label"]), root / f"{name}.parquet", root / f"{name}.json")
    return root


def spec(**train):
    config = {
        "model": {"max_length": 32, "batch_size": 8, "eval_batch_size": 64, "learning_rate": 3e-3, "epochs": 5,
                  "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "auto"},
        "methods": {"m": {"train": train} if train else {}},
    }
    return method_spec(config, "m")


def run(tiny_model, splits, tmp_path, name, s, seed=1):
    return fine_tune(tiny_model, splits / "train.parquet", splits / "validation.parquet", tmp_path / name / "model",
                     tmp_path / name / "ckpt", s, seed)


def test_fine_tuning_learns_and_writes_a_loadable_model(tiny_model, splits, tmp_path):
    metrics = run(tiny_model, splits, tmp_path, "a", spec())
    assert metrics["validation_accuracy"] > 0.9
    assert metrics["steps"] == 5 * 30 and metrics["precision"] == "fp32"
    assert (tmp_path / "a/model/config.json").exists() and (tmp_path / "a/model/tokenizer.json").exists()
    assert not (tmp_path / "a/ckpt").exists()  # checkpoints are dropped once the model is final
    json.dumps(metrics)


def test_same_seed_same_model_other_seed_other_model(tiny_model, splits, tmp_path):
    from transformers import AutoModelForSequenceClassification

    s = spec(epochs=1)
    run(tiny_model, splits, tmp_path, "a", s, seed=3)
    run(tiny_model, splits, tmp_path, "b", s, seed=3)
    run(tiny_model, splits, tmp_path, "c", s, seed=4)
    a, b, c = (AutoModelForSequenceClassification.from_pretrained(tmp_path / n / "model").state_dict()
               for n in "abc")
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_method_train_override_reaches_the_trainer(tiny_model, splits, tmp_path):
    metrics = run(tiny_model, splits, tmp_path, "a", spec(epochs=1, batch_size=16))
    assert metrics["steps"] == 15 and metrics["spec"]["train"]["batch_size"] == 16


def test_warmup_steps_replace_the_warmup_ratio(tmp_path):
    """A count of warm-up steps (TextAttack's num_warmup_steps: the A2T command's 100) wins over the ratio."""
    from advtrain.training.finetune import training_arguments

    steps = training_arguments({**spec()["train"], "warmup_ratio": 0.1, "warmup_steps": 100}, tmp_path, seed=1)
    assert steps.get_warmup_steps(4000) == 100 and steps.warmup_ratio == 0.0
    ratio = training_arguments({**spec()["train"], "warmup_ratio": 0.1}, tmp_path, seed=1)
    assert ratio.get_warmup_steps(4000) == 400 and ratio.warmup_steps == 0


def test_embedding_part_is_built_and_unknown_parts_are_refused():
    kwargs = build_parts({"adversarial_embedding": {"kind": "pgd"}})
    assert kwargs["embedding_adversary"].kind == "pgd"
    assert build_parts({}) == {}
    # augment (AT-DA) changes the data, not the trainer: a known part with no trainer arguments.
    assert build_parts({"augment": {"augmenters": ["ssmba"]}}) == {}
    with pytest.raises(NotImplementedError, match="mixup"):
        build_parts({"mixup": {"alpha": 0.2}})


def test_last_complete_checkpoint_skips_and_removes_partial_ones(tmp_path):
    assert last_complete_checkpoint(tmp_path / "absent") is None
    for step in (10, 20, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-30" / "trainer_state.json").write_text('{"trunc')  # killed while writing
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert not (tmp_path / "checkpoint-30").exists() and (tmp_path / "checkpoint-10").exists()
