"""A tiny GPT-2 (no padding token, as GPT-2's own tokenizer) through the workflow: start-up checks and a whole run."""

from __future__ import annotations

import copy
import json

import pytest
from attack_fixtures import one_textfooler_shard
from conftest import TWO_JOBS, run_snakemake, tiny_config, write_config

METHODS = {
    "PGD-AT": {"adversarial_embedding": {"kind": "pgd"}},
    "A2T": {"train": {"epochs": 2},
            "adversarial_input": {"recipe": "a2t", "clean_epochs": 1, "fraction": 0.05, "query_budget": 60,
                                  "model_batch_size": 16}},
}


def gpt2_config(tiny_gpt2, tiny_data, workdir, methods=METHODS):
    config = tiny_config(tiny_gpt2, tiny_data, workdir / "resources")
    config["model"]["name"] = "tiny-gpt2"
    config["seeds"] = [1]
    config["methods"].update(copy.deepcopy(methods))
    config["run"] = {"methods": list(config["methods"]), "datasets": ["MR"]}
    return config


def test_embedding_output_on_gpt2_stops_at_start_up(tmp_path, tiny_gpt2, tiny_data):
    config = gpt2_config(tiny_gpt2, tiny_data, tmp_path, {"ALUM": {"adversarial_embedding": {"kind": "alum"}}})
    write_config(tmp_path, config)
    proc = run_snakemake(tmp_path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "methods.ALUM.adversarial_embedding.perturb" in out and f"model.path: {tiny_gpt2}" in out, out[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_gpt2_trains_evaluates_and_is_attacked(tmp_path, tiny_gpt2, tiny_data, tiny_model):
    """BERT (plain fine-tuning), PGD-AT and A2T on MR, evaluated, and a TextFooler shard against each."""
    config = gpt2_config(tiny_gpt2, tiny_data, tmp_path)
    config["attacks"] = one_textfooler_shard(tmp_path, tiny_model)
    write_config(tmp_path, config)
    # Table 2 and Table 4 need every model trained, evaluated and attacked (the toy study is not needed here).
    run_snakemake(tmp_path, *TWO_JOBS, "results/tables/table2_asr.csv", "results/tables/table4_accuracy.csv")
    for method in ("BERT", "PGD-AT", "A2T"):
        run = tmp_path / f"results/models/MR/{method}/seed1"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["validation_accuracy"] >= 0.5
        assert json.loads((run / "model/config.json").read_text())["pad_token_id"] is not None
        ev = json.loads((tmp_path / f"results/eval/MR/{method}/seed1.json").read_text())
        assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
        summary = json.loads((tmp_path / f"results/attacks/MR/{method}/seed1/textfooler.json").read_text())
        assert summary["total"] == 4
    a2t = json.loads((tmp_path / "results/models/MR/A2T/seed1/metrics.json").read_text())["adversarial_input"]
    assert [e["kind"] for e in a2t["epochs"]] == ["clean", "adversarial"] and a2t["epochs"][1]["attacked"] == 11
    # Finished jobs leave no checkpoint behind.
    assert not [p for p in (tmp_path / "results/checkpoints").rglob("*") if p.is_file()]


def test_a_failed_training_job_leaves_no_empty_folders(tmp_path, tiny_gpt2, tiny_data):
    """Weights cut short pass the start-up check (the file is there) and fail in `train`: the benchmark and
    checkpoint folders made for that job go with it."""
    import shutil

    broken = tmp_path / "broken_gpt2"
    shutil.copytree(tiny_gpt2, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    config = gpt2_config(broken, tiny_data, tmp_path, {})
    config["run"]["methods"] = ["BERT"]
    write_config(tmp_path, config)
    proc = run_snakemake(tmp_path, "--cores", "2", "results/models/MR/BERT/seed1/metrics.json", check=False)
    assert proc.returncode != 0 and "Error in rule train" in proc.stdout + proc.stderr
    assert (tmp_path / "results/data/MR/train.parquet").is_file()
    assert not (tmp_path / "results/benchmarks").exists() and not (tmp_path / "results/checkpoints").exists()
