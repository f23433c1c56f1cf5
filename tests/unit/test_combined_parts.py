"""Methods are compositions: every pair of parts the schema allows trains together (the paper's future work)."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_input_adversarial import SETTINGS, env  # noqa: F401  (the module-scoped fixture, reused)

from advtrain.training.finetune import fine_tune

PARTS = {
    "adversarial_embedding": {"kind": "pgd", "steps": 2, "epsilon": 0.01, "step_size": 0.005, "grad_norm": "steepest"},
    "adversarial_input": {"recipe": "a2t", "clean_epochs": 1, "fraction": 0.1, "query_budget": 40,
                          "model_batch_size": 16},
    "augment": {"augmenters": ["copy"], "fraction": 0.5},
    "flooding": {"select": "accordance", "window": 2},  # the accordance measured every 2 steps
}


@pytest.fixture(scope="module")
def augmented(env):  # noqa: F811
    """A stand-in augmenter output: each training review with its first word dropped, the label kept."""
    train = pd.read_parquet(env["train"])
    rows = pd.DataFrame({"text": train["text"].str.split().str[1:].str.join(" "), "label": train["label"],
                         "source_id": range(len(train))})
    path = env["root"] / "augmented.parquet"
    rows.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("pair", list(itertools.combinations(PARTS, 2)), ids="+".join)
def test_each_pair_of_parts_trains(env, augmented, tmp_path, pair):  # noqa: F811
    parts = {name: PARTS[name] for name in pair}
    spec = {"train": {**SETTINGS, "epochs": 2}, "parts": parts}
    metrics = fine_tune(env["model"], env["train"], env["validation"], tmp_path / "model", tmp_path / "ckpt", spec,
                        seed=1, attack_resources=env["resources"],
                        augmented_paths=[augmented] if "augment" in parts else ())
    assert (tmp_path / "model" / "config.json").is_file() and metrics["steps"] > 0
    assert metrics["spec"]["parts"] == parts
    # Augmentation adds half of the 100 augmented rows to the 100 originals.
    assert metrics["train_examples"] == (150 if "augment" in parts else 100)
    if "flooding" in parts:
        assert metrics["flooding"]["select"] == "accordance" and metrics["flooding"]["windows"]
    if "adversarial_input" in parts:
        epochs = {e["epoch"]: e for e in metrics["adversarial_input"]["epochs"]}
        assert epochs[1]["kind"] == "clean" and epochs[2]["kind"] == "adversarial" and epochs[2]["attacked"] > 0


def test_study_config_has_the_combined_methods():
    methods = yaml.safe_load((REPO / "config.yaml").read_text())["methods"]
    assert set(methods["BackTranslation_PGD-AT"]) == {"augment", "adversarial_embedding"}
    assert set(methods["A2T_PGD-AT"]) == {"train", "adversarial_input", "adversarial_embedding"}  # A2T's training
