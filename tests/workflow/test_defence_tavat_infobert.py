"""TAVAT and InfoBERT, as config/defences.yaml defines them, through the workflow on the tiny BERT: trained,
evaluated and attacked by one TextFooler shard."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from attack_fixtures import one_textfooler_shard
from conftest import REPO, TWO_JOBS, run_snakemake, tiny_config, write_config

METHODS = ("TAVAT", "InfoBERT")


@pytest.mark.slow
def test_tavat_and_infobert_train_evaluate_and_are_attacked(tmp_path, tiny_model, tiny_data):
    preset = yaml.safe_load((REPO / "config/defences.yaml").read_text())
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["seeds"] = [1]
    config["methods"].update({m: preset["methods"][m] for m in METHODS})
    config["run"] = {"methods": ["BERT", *METHODS], "datasets": ["MR"]}
    config["attacks"] = one_textfooler_shard(tmp_path, tiny_model)
    write_config(tmp_path, config)
    run_snakemake(tmp_path, *TWO_JOBS, "results/tables/table2_asr.csv", "results/tables/table4_accuracy.csv")
    for method in METHODS:
        metrics = json.loads((tmp_path / f"results/models/MR/{method}/seed1/metrics.json").read_text())
        assert metrics["spec"]["parts"]["adversarial_embedding"]["kind"] == method.lower()
        assert metrics["steps"] > 0 and math.isfinite(metrics["train_loss"])
        ev = json.loads((tmp_path / f"results/eval/MR/{method}/seed1.json").read_text())
        assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
        summary = json.loads((tmp_path / f"results/attacks/MR/{method}/seed1/textfooler.json").read_text())
        assert summary["total"] == 4
    table = (tmp_path / "results/tables/table2_asr.csv").read_text()
    assert all(m in table for m in METHODS)
