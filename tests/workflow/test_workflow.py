"""The real workflow end to end on the tiny model and data, offline, as `snakemake --cores 2` runs it."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import REPO, TWO_JOBS, run_snakemake, tiny_config, write_config
from transformers import AutoModelForSequenceClassification

from advtrain.predictions import load_correct

pytestmark = pytest.mark.slow

EMBEDDING_METHODS = {
    "PGD-AT": {"adversarial_embedding": {"kind": "pgd", "grad_norm": "steepest"}},
    "LDS": {"adversarial_embedding": {"kind": "lds", "grad_norm": "steepest"}},
    "ALUM": {"adversarial_embedding": {"kind": "alum"}},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model, tiny_data):
    """One complete run of the tiny workflow: baseline and the embedding-space methods, two seeds."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["methods"].update(copy.deepcopy(EMBEDDING_METHODS))
    write_config(workdir, config)
    proc = run_snakemake(workdir, *TWO_JOBS)
    return workdir, config, proc


def test_every_stage_writes_its_files(finished_run):
    workdir, config, _ = finished_run
    results = workdir / "results"
    for ds in ("IMDB", "MR"):
        for split in ("train", "validation", "test"):
            summary = json.loads((results / "data" / ds / f"{split}.json").read_text())
            frame = pd.read_parquet(results / "data" / ds / f"{split}.parquet")
            assert summary["rows"] == len(frame) > 0 and list(frame.columns) == ["text", "label"]
    assert json.loads((results / "data/YELP/test.json").read_text())["rows"] == 80
    # MR: 300 sentences, 40 carved for validation and 40 for test, the 0x85 byte kept inside its line.
    assert [json.loads((results / f"data/MR/{s}.json").read_text())["rows"] for s in ("train", "validation", "test")] == [220, 40, 40]
    for method in config["methods"]:
        for seed in config["seeds"]:
            for ds in ("IMDB", "MR"):
                metrics = json.loads((results / f"models/{ds}/{method}/seed{seed}/metrics.json").read_text())
                assert metrics["steps"] > 0 and metrics["wall_seconds"] > 0
                assert metrics["spec"]["parts"] == config["methods"][method]
                bench = pd.read_csv(results / f"benchmarks/train/{ds}/{method}/seed{seed}.tsv", sep="\t")
                assert bench["s"].iloc[0] > 0
                assert (workdir / f"logs/train/{ds}/{method}/seed{seed}.log").stat().st_size > 0
                ev = json.loads((results / f"eval/{ds}/{method}/seed{seed}.json").read_text())
                assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
                # Each example's prediction, in the test split's row order, gives the same accuracy.
                correct = load_correct(results / f"eval/{ds}/{method}/seed{seed}.predictions.npz")
                assert {k: len(v) for k, v in correct.items()} == ev["examples"]
                assert {k: v.mean() for k, v in correct.items()} == pytest.approx(ev["accuracy"])
    # Checkpoints are removed once a model is final.
    assert not list((results / "checkpoints").rglob("checkpoint-*"))


def test_tiny_baseline_learns_the_synthetic_task(finished_run):
    workdir, config, _ = finished_run
    for ds in ("IMDB", "MR"):
        for seed in config["seeds"]:
            ev = json.loads((workdir / f"results/eval/{ds}/BERT/seed{seed}.json").read_text())
            # The label is carried by a sentiment word: a working pipeline gets it right nearly always.
            assert ev["accuracy"]["in_distribution"] > 0.9, ev
            assert ev["accuracy"]["YELP"] > 0.9, ev


def test_table4_has_our_values_beside_the_papers(finished_run):
    workdir, config, _ = finished_run
    numeric = pd.read_csv(workdir / "results/tables/table4_accuracy.csv")
    assert list(numeric["method"]) == list(config["methods"])
    bert = numeric.set_index("method").loc["BERT"]
    assert bert["MR_on_MR_paper"] == pytest.approx(85.27)
    assert bert["MR_on_MR_n"] == 2
    evals = [json.loads((workdir / f"results/eval/MR/BERT/seed{s}.json").read_text()) for s in (1, 2)]
    assert bert["MR_on_MR_mean"] == pytest.approx(100 * sum(e["accuracy"]["in_distribution"] for e in evals) / 2)
    assert pd.isna(numeric.set_index("method").loc["ALUM", "MR_on_MR_paper"])  # ALUM is not in the paper
    md = (workdir / "results/tables/table4_accuracy.md").read_text()
    assert "MR→MR (paper)" in md and "85.27" in md
    tex = (workdir / "results/tables/table4_accuracy.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex


def test_toy_study_outputs(finished_run):
    workdir, _, _ = finished_run
    table = pd.read_csv(workdir / "results/tables/table1_toy.csv")
    assert set(table["method"]) == {"OLS", "PGD-AT", "LDS"}
    assert (workdir / "results/figures/figure1_toy.png").stat().st_size > 1000


def test_nothing_left_to_do_after_a_complete_run(finished_run):
    workdir, _, _ = finished_run
    proc = run_snakemake(workdir, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_editing_one_method_reruns_only_its_jobs(finished_run, tmp_path):
    workdir, config, _ = finished_run
    edited = copy.deepcopy(config)
    edited["methods"]["PGD-AT"]["train"] = {"learning_rate": 1e-3}
    write_config(workdir, edited)
    try:
        proc = run_snakemake(workdir, "-n", "--cores", "2")
    finally:
        write_config(workdir, config)
    out = proc.stdout + proc.stderr
    stats = out[out.index("Job stats"):].split("\n\n")[0]
    counts = dict(line.split() for line in stats.splitlines()[3:])
    assert counts.get("train") == "4" and counts.get("evaluate") == "4", stats  # 2 datasets x 2 seeds
    assert counts.get("table4_accuracy") == "1"
    # Besides its own train and evaluate jobs, only the tables that read every model (Tables 4 and 3, the paired
    # comparisons over seeds and per example, the claims) and the summary that quotes them.
    assert set(counts) == {"train", "evaluate", "table4_accuracy", "table3_runtime", "paired_comparisons",
                           "paired_examples", "claims", "summary", "all", "total"}, stats
    for line in out.splitlines():
        if line.strip().startswith("output: results/models/"):
            assert "/PGD-AT/" in line, line


def _weights(path):
    model = AutoModelForSequenceClassification.from_pretrained(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_killed_training_job_resumes_from_its_last_checkpoint(tmp_path, tiny_model, tiny_data):
    """kill -9 mid-training, rerun: resumes from the epoch checkpoint and ends with the uninterrupted weights."""
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["model"]["epochs"] = 12
    target = "results/models/MR/BERT/seed1/metrics.json"

    killed = tmp_path / "killed"
    killed.mkdir()
    write_config(killed, config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(killed),
           "--configfile", str(killed / "config.yaml"), "--cores", "1", target]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = killed / "results/checkpoints/MR/BERT/seed1"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in checkpoints.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
        if done:
            time.sleep(0.5)  # let the checkpoint's last file land
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / target).exists()

    # Snakemake itself was killed too (as when a node dies): unlock, then rerun the incomplete job.
    run_snakemake(killed, "--unlock")
    run_snakemake(killed, "--cores", "1", "--rerun-incomplete", target)
    metrics = json.loads((killed / target).read_text())
    assert metrics["resumed_from"] and "checkpoint-" in metrics["resumed_from"]

    clean = tmp_path / "clean"
    clean.mkdir()
    write_config(clean, config)
    run_snakemake(clean, "--cores", "1", target)
    reference = json.loads((clean / target).read_text())
    assert reference["resumed_from"] is None and metrics["steps"] == reference["steps"]
    resumed_w, clean_w = _weights(killed / "results/models/MR/BERT/seed1/model"), _weights(clean / "results/models/MR/BERT/seed1/model")
    for name, value in clean_w.items():
        torch.testing.assert_close(resumed_w[name], value, msg=f"{name} differs after resuming")


# ---------------------------------------------------------------------------- AT-DA: augmentation, then training


@pytest.fixture(scope="module")
def augmented_run(tmp_path_factory, tiny_model, tiny_marian, tiny_data):
    """SSMBA and BackTranslation on MR, one seed: augmentation in 2 shards, training, evaluation, Table 4."""
    workdir = tmp_path_factory.mktemp("tiny_augmented_run")
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["seeds"] = [1]
    config["model"]["epochs"] = 1  # accuracy is not tested here; the augmented data's path into training is
    config["methods"].update({"SSMBA": {"augment": {"augmenters": ["ssmba"]}},
                              "BackTranslation": {"augment": {"augmenters": ["backtranslation"], "fraction": 0.5}}})
    config["augmentation"] = {"shards": 2, "augmenters": {
        "ssmba": {"kind": "ssmba", "model": {"name": "tiny-mlm", "path": str(tiny_model)}},
        "backtranslation": {"kind": "backtranslation", "max_new_tokens": 16,
                            "forward": {"name": "tiny-en-de", "path": str(tiny_marian["forward"])},
                            "backward": {"name": "tiny-de-en", "path": str(tiny_marian["backward"])}}}}
    config["run"] = {"methods": ["SSMBA", "BackTranslation"], "datasets": ["MR"]}
    write_config(workdir, config)
    targets = [f"results/eval/MR/{m}/seed1.json" for m in ("SSMBA", "BackTranslation")]
    proc = run_snakemake(workdir, *TWO_JOBS, *targets, "results/tables/table4_accuracy.csv")
    return workdir, config, proc


def test_augmented_methods_train_on_original_plus_augmented_rows(augmented_run):
    workdir, _, _ = augmented_run
    results = workdir / "results"
    train_rows = json.loads((results / "data/MR/train.json").read_text())["rows"]
    # SSMBA takes the default share, A2T's 20%.
    for name, method, fraction in (("ssmba", "SSMBA", 0.2), ("backtranslation", "BackTranslation", 0.5)):
        rows = pd.read_parquet(results / f"augment/MR/{name}.parquet")
        summary = json.loads((results / f"augment/MR/{name}.json").read_text())
        assert list(rows.columns) == ["text", "label", "source_id"] and summary["shards"] == 2
        assert summary["rows"] == len(rows) > 0.5 * train_rows and summary["rows_per_second"] > 0
        assert rows["source_id"].is_monotonic_increasing and rows["source_id"].max() < train_rows
        train = pd.read_parquet(results / "data/MR/train.parquet")
        assert (rows["label"].to_numpy() == train["label"].to_numpy()[rows["source_id"]]).all()
        metrics = json.loads((results / f"models/MR/{method}/seed1/metrics.json").read_text())
        assert metrics["train_examples"] == train_rows + math.ceil(fraction * len(rows))
        assert (workdir / f"logs/augment/MR/{name}/shard1-of-2.log").stat().st_size > 0


def test_table4_lists_the_augmented_methods_beside_the_paper(augmented_run):
    workdir, _, _ = augmented_run
    table = pd.read_csv(workdir / "results/tables/table4_accuracy.csv").set_index("method")
    assert list(table.index) == ["SSMBA", "BackTranslation"]
    assert table.loc["SSMBA", "MR_on_MR_paper"] == pytest.approx(85.24)
    assert table.loc["BackTranslation", "MR_on_MR_paper"] == pytest.approx(84.96)
    assert table.loc["SSMBA", "MR_on_MR_n"] == 1


# ---------------------------------------------------------------------------- input-space AT (AT-IP)
# Two epochs, the first clean, 5% attacked: kept short (tests/unit/test_input_adversarial.py checks what is generated).
INPUT_METHODS = {
    name: {"train": {"epochs": 2},
           "adversarial_input": {"recipe": recipe, "clean_epochs": 1, "fraction": 0.05, "query_budget": 60,
                                 "model_batch_size": 16}}
    for name, recipe in (("A2T", "a2t"), ("A2T_MLM", "a2t_mlm"), ("BERT_Attack", "bert_attack"))
}


@pytest.fixture(scope="module")
def input_at_run(tmp_path_factory, tiny_model, tiny_data):
    """A2T, A2T_MLM and BERT-Attack on MR, one seed, with the tiny attack resources."""
    from attack_fixtures import build_sentence_encoder, build_word_embedding
    from conftest import shared_data

    workdir = tmp_path_factory.mktemp("input_at_run")
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["seeds"] = [1]
    config["methods"].update(copy.deepcopy(INPUT_METHODS))
    config["run"] = {"methods": list(INPUT_METHODS), "datasets": ["MR"]}
    config["attacks"] = {"resources": {
        "word_embedding": str(build_word_embedding(workdir / "paragramcf")),
        "sentence_encoder": str(build_sentence_encoder(workdir / "sentence_encoder", tiny_model)),
        "masked_lm": str(tiny_model),
        "nltk_data": str(shared_data("nltk_data")),
    }}
    write_config(workdir, config)
    run_snakemake(workdir, *TWO_JOBS)
    return workdir, config


def test_input_space_methods_train_end_to_end(input_at_run):
    workdir, config = input_at_run
    for method in INPUT_METHODS:
        metrics = json.loads((workdir / f"results/models/MR/{method}/seed1/metrics.json").read_text())
        report = metrics["adversarial_input"]
        assert report["settings"]["recipe"] == INPUT_METHODS[method]["adversarial_input"]["recipe"]
        kinds = [(e["epoch"], e["kind"]) for e in report["epochs"]]
        assert kinds == [(1, "clean"), (2, "adversarial")], kinds
        adversarial = report["epochs"][-1]
        assert adversarial["attacked"] == 11  # ceil(0.05 * 220 MR training sentences)
        assert adversarial["added"] == adversarial["succeeded"] == adversarial["trained_on"]
        assert adversarial["generation_seconds"] > 0 and adversarial["training_seconds"] > 0
        assert (workdir / f"results/models/MR/{method}/seed1/model/adversarial_examples/epoch2.jsonl").is_file()
        ev = json.loads((workdir / f"results/eval/MR/{method}/seed1.json").read_text())
        assert set(ev["accuracy"]) == {"in_distribution", "YELP"}
    # BERT-Attack reports its USE stand-in; the resources are the configured local ones.
    bert_attack = json.loads((workdir / "results/models/MR/BERT_Attack/seed1/metrics.json").read_text())
    assert any("UniversalSentenceEncoder" in s for s in bert_attack["adversarial_input"]["substitutions"])
    assert bert_attack["adversarial_input"]["resources"]["masked_lm"] == config["attacks"]["resources"]["masked_lm"]
    table = pd.read_csv(workdir / "results/tables/table4_accuracy.csv")
    assert list(table["method"]) == list(INPUT_METHODS)
