"""Datasets with more than two classes (issue 28, item 1): the label checks, the recorded number of classes, the
label space an ood set must share, the presets for AG News and SST-2, and the k-class pieces of the victim and the
smoothing ensemble. The whole workflow on a 4-class dataset: tests/workflow/test_kclass_workflow.py."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from advtrain.attacks.victim import EnsembleVictim
from advtrain.config import check_references, explain_validation_errors, ood_datasets, reference_problems
from advtrain.data import (
    DataError,
    check_label_space,
    label_count,
    prepare,
    read_split,
    write_split,
)
from advtrain.smoothing import aggregate

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TOPICS = ["world", "sports", "business", "science"]


def topics_csv(path, n: int = 40, labels=None) -> str:
    """``n`` rows cycling through the 4 topics (labels 0..3 unless ``labels`` renames them)."""
    names = labels or [0, 1, 2, 3]
    rows = [{"text": f"news {i} about {TOPICS[i % 4]}", "label": names[i % 4]} for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def dataset(files: dict, **extra) -> dict:
    return {"role": "train", "source": {"local": {"format": "csv", "files": files}}, **extra}


def test_four_classes_are_read_from_the_data_and_recorded(tmp_path):
    ds = dataset({"train": topics_csv(tmp_path / "train.csv"), "test": topics_csv(tmp_path / "test.csv", 12)},
                 carve={"validation": 8})
    out = prepare("AG", ds, None, ["train", "validation", "test"])
    for split, (df, _) in out.items():
        assert df.attrs["num_labels"] == 4, split
        summary = write_split(df, tmp_path / f"{split}.parquet", tmp_path / f"{split}.json")
        assert summary["num_labels"] == 4 and "positive_fraction" not in summary  # a share of label 1 means nothing
        assert json.loads((tmp_path / f"{split}.json").read_text())["num_labels"] == 4
        # The parquet carries k to training and evaluation, whatever labels a sample happens to hold.
        assert label_count(tmp_path / f"{split}.parquet") == 4
    assert sorted(read_split(tmp_path / "train.parquet")["label"].unique()) == [0, 1, 2, 3]


def test_a_configured_num_labels_is_checked_row_by_row(tmp_path):
    path = topics_csv(tmp_path / "train.csv")
    with pytest.raises(DataError) as err:
        prepare("AG", dataset({"train": path}, num_labels=3, carve={"validation": 4, "test": 4}), None,
                ["train", "validation", "test"])
    message = str(err.value)
    # the file, the row's line (header = line 1, the first label 3 is the 4th row) and the key
    assert message.startswith(f"{path}: label '3' in line 5 is not one of the 3 classes 0..2 ") and "`datasets.AG.num_labels: 3`" in message
    # More classes than the rows show is allowed when configured: a class the sample lacks is still a class.
    out = prepare("AG", dataset({"train": path}, num_labels=6, carve={"validation": 4, "test": 4}), None, ["train"])
    assert out["train"][0].attrs["num_labels"] == 6


def test_a_numbering_with_a_gap_is_not_taken_for_more_classes(tmp_path):
    """YELP polarity's raw 1/2 labels would read as 3 classes with no class 0: an error pointing at label_map."""
    path = topics_csv(tmp_path / "yelp.csv", labels=[1, 2, 1, 2])
    ds = {"role": "ood", "source": {"local": {"format": "csv", "files": {"test": path}}}}
    with pytest.raises(DataError, match=r"datasets\.Y \(.*yelp\.csv\): the labels run to 2 but class 0 never occur"
                                        r".*`datasets\.Y\.label_map`.*`datasets\.Y\.num_labels`"):
        prepare("Y", ds, None, ["test"])
    out = prepare("Y", {**ds, "label_map": {1: 0, 2: 1}}, None, ["test"])
    assert out["test"][0].attrs["num_labels"] == 2


def test_an_ood_set_must_share_the_models_classes():
    binary = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    binary.attrs["num_labels"] = 2
    with pytest.raises(DataError, match=r"^yelp\.parquet \(YELP\): 2 classes, but the model m has 4: an "
                                        r"out-of-distribution set must share .*`run\.ood_datasets`"):
        check_label_space(binary, "yelp.parquet (YELP)", 4, "the model m")
    check_label_space(binary, "yelp.parquet (YELP)", 2, "the model m")
    unrecorded = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 4]})  # a frame written elsewhere
    with pytest.raises(DataError, match=r"^t: label 4 in row 3 is not one of the 4 classes of the model m$"):
        check_label_space(unrecorded, "t", 4, "the model m")


def layered(*files: str) -> dict:
    """config.yaml with the presets merged over it, key by key, as Snakemake merges --configfile files."""
    def merge(base, over):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)
        return base

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for name in files:
        merge(config, yaml.safe_load((REPO / name).read_text()))
    return config


@pytest.mark.parametrize(("preset", "trained", "ood"), [
    ("config/agnews.yaml", ["AGNEWS"], []), ("config/sst2.yaml", ["SST2"], ["YELP"])])
def test_the_presets_are_valid_over_config_yaml_and_the_quick_preset(preset, trained, ood):
    for base in ((), ("config/quick.yaml",)):
        config = layered(*base, preset)
        assert explain_validation_errors(config, SCHEMA) == ""
        check_references(config)
        assert config["run"]["datasets"] == trained and ood_datasets(config) == ood
    sst2 = layered("config/sst2.yaml")["datasets"]["SST2"]["source"]["hf"]
    assert sst2["splits"] == {"train": "train", "test": "validation"} and sst2["text_column"] == "sentence"


def test_ood_sets_of_other_classes_stop_at_start_up():
    """AG News without `run.ood_datasets: []` would be evaluated on YELP's two classes."""
    config = layered("config/agnews.yaml")
    config["run"]["ood_datasets"] = None
    assert ood_datasets(config) == ["YELP"]
    problems = list(reference_problems(config))
    assert problems == ["datasets.YELP.num_labels: 2 classes, but the training dataset AGNEWS has 4 "
                        "(datasets.AGNEWS.num_labels): an ood dataset must share the training datasets' labels; "
                        "leave it out with `run.ood_datasets`"]
    config["run"]["ood_datasets"] = ["AGNEWS", "NOPE"]
    assert list(reference_problems(config)) == [
        "run.ood_datasets[0]: dataset 'AGNEWS' has role 'train', not 'ood'",
        "run.ood_datasets[1]: unknown dataset 'NOPE' (defined under `datasets`: IMDB, MR, YELP, AGNEWS)"]


class FourClassRunner:
    """Stands in for the padded wrapper: a model with 4 classes, each text's logits from its length."""

    class model:  # noqa: N801 - the attribute the wrapper has
        class config:  # noqa: N801
            num_labels = 4

    def __call__(self, texts):
        return np.array([[len(t) % 4 == k for k in range(4)] for t in texts], dtype=np.float32)


class Copies:
    """Two copies per text (the smoothing's expand), combined by votes."""

    def expand(self, texts):
        return [t for t in texts for _ in range(2)]

    def combine(self, logits):
        return aggregate(logits, 2, "votes")


def test_the_ensemble_victim_answers_with_every_class():
    victim = EnsembleVictim(FourClassRunner(), Copies(), batch_size=3)
    out = victim(["abc", "abcd", "a"])
    assert out.shape == (3, 4)
    assert out.argmax(-1).tolist() == [3, 0, 1]
    assert tuple(victim([]).shape) == (0, 4)  # no texts: still the model's 4 columns
