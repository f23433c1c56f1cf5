"""Flooding-X as config/defences.yaml defines it, through the workflow on the tiny BERT: trained (choosing its level
inside the train job), evaluated, and attacked by one TextFooler shard."""

from __future__ import annotations

import json

import pytest
import yaml
from attack_fixtures import one_textfooler_shard
from conftest import REPO, TWO_JOBS, run_snakemake, tiny_config, write_config

PRESET = yaml.safe_load((REPO / "config/defences.yaml").read_text())


@pytest.mark.slow
def test_flooding_x_trains_evaluates_and_is_attacked(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["seeds"] = [1]
    config["methods"]["Flooding-X"] = PRESET["methods"]["Flooding-X"]
    config["run"] = {"methods": ["BERT", "Flooding-X"], "datasets": ["MR"]}
    config["attacks"] = one_textfooler_shard(tmp_path, tiny_model)
    write_config(tmp_path, config)
    run_snakemake(tmp_path, *TWO_JOBS, "results/tables/table2_asr.csv", "results/tables/table4_accuracy.csv")
    run = tmp_path / "results/models/MR/Flooding-X/seed1"
    metrics = json.loads((run / "metrics.json").read_text())
    flooding = metrics["flooding"]
    assert flooding["select"] == "accordance" and flooding["window"] == "epoch"
    # One window per epoch until the level is chosen: at the first window whose accordance falls to the threshold
    # (0) from above it; none after. Never chosen: plain fine-tuning, a window for every epoch.
    windows = flooding["windows"]
    assert windows and all(w["steps"] >= 2 for w in windows)
    above = [w["accordance"] > flooding["threshold"] for w in windows]
    if flooding["level"] is None:
        assert len(windows) == metrics["epochs"] and not any(not a and any(above[:i]) for i, a in enumerate(above))
    else:
        assert not above[-1] and any(above[:-1])
        assert flooding["level"] == windows[-1]["loss"] and flooding["selected_at_step"] == windows[-1]["step"]
    ev = json.loads((tmp_path / "results/eval/MR/Flooding-X/seed1.json").read_text())
    assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
    summary = json.loads((tmp_path / "results/attacks/MR/Flooding-X/seed1/textfooler.json").read_text())
    assert summary["total"] == 4
    table2 = (tmp_path / "results/tables/table2_asr.csv").read_text()
    assert "Flooding-X" in table2
