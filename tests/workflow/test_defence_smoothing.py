"""RanMASK and SAFER (a `smoothing` part) through the tiny workflow: each trains on noisy copies, is evaluated and
attacked (one TextFooler shard) through its ensemble, and is certified at each radius beside those numbers."""

from __future__ import annotations

import json

import pytest
from attack_fixtures import one_textfooler_shard
from conftest import TWO_JOBS, run_snakemake, tiny_config, write_config

ENSEMBLE = 8  # copies per prediction (100 in the study: TextDefender's), small so that the CPU test stays short
METHODS = {
    "RanMASK": {"train": {"epochs": 2}, "family": "smoothing",
                "smoothing": {"kind": "ranmask", "ensemble_size": ENSEMBLE, "certify_samples": 40}},
    "SAFER": {"train": {"epochs": 2}, "family": "smoothing",
              "smoothing": {"kind": "safer", "ensemble_size": ENSEMBLE, "certify_samples": 40}},
}


@pytest.mark.slow
def test_smoothing_methods_train_are_evaluated_attacked_and_certified(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["seeds"] = [1]
    config["methods"].update(METHODS)
    config["run"] = {"methods": list(METHODS), "datasets": ["MR"]}
    config["attacks"] = one_textfooler_shard(tmp_path, tiny_model, query_budget=40)
    write_config(tmp_path, config)
    run_snakemake(tmp_path, *TWO_JOBS, "results/tables/certified_accuracy.csv",
                  *(f"results/eval/MR/{m}/seed1.json" for m in METHODS))
    for method, kind in (("RanMASK", "ranmask"), ("SAFER", "safer")):
        model = tmp_path / f"results/models/MR/{method}/seed1/model"
        saved = json.loads((model / "smoothing.json").read_text())
        assert saved["kind"] == kind and saved["ensemble_size"] == ENSEMBLE
        if kind == "safer":  # the perturbation sets of the tiny embedding's synonym groups travel with the model
            table = json.loads((model / "safer_perturbation.json").read_text())
            assert table["film"][0] == "film" and "movie" in table["film"]
        metrics = json.loads((tmp_path / f"results/models/MR/{method}/seed1/metrics.json").read_text())
        assert metrics["smoothing"]["kind"] == kind
        ev = json.loads((tmp_path / f"results/eval/MR/{method}/seed1.json").read_text())
        assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
        summary = json.loads((tmp_path / f"results/attacks/MR/{method}/seed1/textfooler.json").read_text())
        assert summary["total"] == 4
        certified = json.loads((tmp_path / f"results/certify/MR/{method}/seed1.json").read_text())
        assert certified["examples"] == 4 and len(certified["records"]) == 4
        accuracy = [certified["certified_accuracy"][str(d)] for d in range(len(certified["certified_accuracy"]))]
        assert accuracy == sorted(accuracy, reverse=True)  # certified at r means certified at every smaller r
        assert accuracy[0] <= certified["ensemble_accuracy"] + 1e-9 or kind == "safer"
    table = (tmp_path / "results/tables/certified_accuracy.csv").read_text().splitlines()
    assert table[0].startswith("dataset,method,seed,kind,examples,ensemble_accuracy,under_textfooler,r0")
    assert len(table) == 3
