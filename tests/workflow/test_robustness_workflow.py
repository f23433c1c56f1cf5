"""A training dataset added by config alone (MOVIES, a local csv source the paper does not have): the DAG grows by
exactly that dataset's jobs, and every table and figure of the report shows it, with "—" for the paper's value.

The report rules run for real on synthetic per-run files (eval JSONs and predictions, gathered attack summaries with
their per-example outcomes, validity checks, train metrics), with Snakemake's ``--allowed-rules`` limited to them:
what the other rules would write is given, so no model is trained.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from attack_fixtures import validity_frame
from conftest import TWO_JOBS, planned_jobs, run_snakemake, synthetic_reviews, tiny_config, write_config

from advtrain.attacks.metrics import outcomes
from advtrain.attacks.resources import NLTK_PACKAGES, WORD_EMBEDDING_FILES
from advtrain.predictions import save_predictions

DATASETS = ["MR", "MOVIES"]
METHODS = ["BERT", "PGD-AT"]
SEEDS = [1, 2]
RECIPES = ["textfooler", "a2t"]
REPORT_RULES = ["table2_asr", "table3_runtime", "table4_accuracy", "paired_comparisons", "paired_examples",
                "attack_budget", "attack_effort", "budget_figure", "validity_tables", "tradeoff_figure", "fidelity",
                "claims", "summary", "all"]


def movies_config(tiny_model, tiny_data, workdir, datasets):
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    rows = synthetic_reviews(80, seed=5)
    pd.DataFrame(rows[:60], columns=["text", "label"]).to_csv(workdir / "movies_train.csv", index=False)
    pd.DataFrame(rows[60:], columns=["text", "label"]).to_csv(workdir / "movies_test.csv", index=False)
    config["datasets"]["MOVIES"] = {
        "role": "train", "carve": {"validation": 0.2},
        "source": {"local": {"format": "csv", "files": {"train": str(workdir / "movies_train.csv"),
                                                        "test": str(workdir / "movies_test.csv")}}},
    }
    config["methods"]["PGD-AT"] = {"adversarial_embedding": {"kind": "pgd"}}
    config["run"] = {"methods": METHODS, "datasets": datasets}
    # Local folders holding the files the start-up check looks for (empty: no attack job runs here).
    resources = {}
    placeholders = {"word_embedding": [WORD_EMBEDDING_FILES[n] for n in ("matrix", "wordlist", "nn")],
                    "sentence_encoder": ["modules.json"], "nltk_data": [f"{p}.zip" for p in NLTK_PACKAGES.values()],
                    "causal_lm": ["config.json", "model.safetensors", "tokenizer.json"]}
    for kind, files in placeholders.items():
        (workdir / "res" / kind).mkdir(parents=True, exist_ok=True)
        for name in files:
            (workdir / "res" / kind / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / "res" / kind / name).touch()
        resources[kind] = str(workdir / "res" / kind)
    config["attacks"] = {"recipes": RECIPES, "num_examples": 12, "query_budget": 30, "shards": 1,
                         "resources": resources}
    config["lca"] = {"methods": []}
    config["statistics"] = {"bootstrap_resamples": 100, "adversarial_samples": 1}
    return config


def test_a_dataset_added_by_config_adds_exactly_its_jobs(tmp_path, tiny_model, tiny_data):
    jobs = {}
    for name, datasets in (("before", ["MR"]), ("after", DATASETS)):
        workdir = tmp_path / name
        workdir.mkdir()
        write_config(workdir, movies_config(tiny_model, tiny_data, workdir, datasets))
        proc = run_snakemake(workdir, "-n")
        jobs[name] = {(rule, tuple(sorted(w.items()))) for rule, w in planned_jobs(proc.stdout)}
    added = jobs["after"] - jobs["before"]
    assert jobs["before"] <= jobs["after"]
    assert added and all(dict(w).get("dataset") == "MOVIES" for _, w in added), sorted(added)
    per_rule = pd.Series([rule for rule, _ in added]).value_counts().to_dict()
    runs = len(METHODS) * len(SEEDS)
    assert per_rule == {"prepare_training_dataset": 1, "train": runs, "evaluate": runs,
                        "attack_shard": runs * len(RECIPES), "gather_attack": runs * len(RECIPES),
                        "attack_validity": len(RECIPES), "budget_figure": len(RECIPES)}


def fake_runs(workdir, rng):
    """What train, evaluate, the attacks and attack_validity would have written, for every run."""
    sizes = {"MR": 40, "MOVIES": 20, "YELP": 80}
    for dataset in DATASETS:
        for method in METHODS:
            for seed in SEEDS:
                skill = 0.9 if method == "BERT" else 0.6
                predictions, accuracy = {}, {}
                for split, n in (("in_distribution", sizes[dataset]), ("YELP", sizes["YELP"])):
                    labels = rng.integers(0, 2, n)
                    preds = np.where(rng.random(n) < skill, labels, 1 - labels)
                    predictions[split] = (preds, labels)
                    accuracy[split] = float((preds == labels).mean())
                stem = workdir / f"results/eval/{dataset}/{method}/seed{seed}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                save_predictions(stem.with_suffix(".predictions.npz"), predictions)
                stem.with_suffix(".json").write_text(json.dumps(
                    {"dataset": dataset, "method": method, "seed": seed, "accuracy": accuracy,
                     "examples": {k: len(v[0]) for k, v in predictions.items()}}))
                model = workdir / f"results/models/{dataset}/{method}/seed{seed}"
                model.mkdir(parents=True, exist_ok=True)
                (model / "metrics.json").write_text(json.dumps(
                    {"dataset": dataset, "method": method, "seed": seed, "wall_seconds": 50.0}))
                bench = workdir / f"results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
                bench.parent.mkdir(parents=True, exist_ok=True)
                bench.write_text("s\th:m:s\n60.0\t0:01:00\n")
                for attack in RECIPES:
                    types = list(rng.choice(["Successful", "Failed", "Skipped"], size=12, p=[0.5, 0.4, 0.1]))
                    queries = [int(q) for q in rng.integers(1, 31, 12)]
                    records = [{"index": i, "result_type": t, "num_queries": 0 if t == "Skipped" else q,
                                "words_changed": 1, "words_total": 10}
                               for i, (t, q) in enumerate(zip(types, queries, strict=True))]
                    successful = types.count("Successful")
                    run = workdir / f"results/attacks/{dataset}/{method}/seed{seed}/{attack}"
                    run.mkdir(parents=True, exist_ok=True)
                    run.with_suffix(".json").write_text(json.dumps({
                        "dataset": dataset, "method": method, "seed": seed, "attack": attack, "query_budget": 30,
                        "attack_success_rate": successful / (successful + types.count("Failed")),
                        "substitutions": [], "resources": {}, "examples": outcomes(records)}))
                    validity_frame(successful, 1).to_csv(run / "validity.csv", index=False)
    for stem in ("table1_toy",):
        (workdir / f"results/tables/{stem}.md").parent.mkdir(parents=True, exist_ok=True)
        for ext in ("csv", "md", "tex"):
            (workdir / f"results/tables/{stem}.{ext}").write_text("Toy study\n\n| a |\n|---|\n| 1 |\n")
    (workdir / "results/figures").mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        (workdir / f"results/figures/figure1_toy.{ext}").write_bytes(b"figure")


@pytest.mark.slow
def test_every_table_and_figure_shows_a_dataset_added_by_config(tmp_path, tiny_model, tiny_data):
    workdir = tmp_path
    write_config(workdir, movies_config(tiny_model, tiny_data, workdir, DATASETS))
    fake_runs(workdir, np.random.default_rng(0))
    run_snakemake(workdir, *TWO_JOBS, "--allowed-rules", *REPORT_RULES)
    tables = workdir / "results/tables"
    header4 = (tables / "table4_accuracy.md").read_text().splitlines()[2]
    for column in ("MR→MR (ours)", "MOVIES→MOVIES (ours)", "MOVIES→MOVIES 95% CI", "MOVIES→YELP (paper)"):
        assert column in header4, column
    table4 = pd.read_csv(tables / "table4_accuracy.csv")
    assert table4["MOVIES_on_MOVIES_paper"].isna().all() and (table4["MOVIES_on_MOVIES_n"] == 2).all()
    assert (table4["MR_on_MR_paper"] > 0).all()
    display4 = (tables / "table4_accuracy.md").read_text()
    assert display4.count("| —") >= 4  # MOVIES→MOVIES and MOVIES→YELP (paper) for both methods
    table2 = pd.read_csv(tables / "table2_asr.csv")
    assert set(table2["dataset"]) == set(DATASETS)
    assert table2.loc[table2["dataset"] == "MOVIES", "BERT_paper"].isna().all()
    assert (table2.loc[table2["dataset"] == "MR", "BERT_paper"] > 0).all()
    for stem in ("table3_runtime", "paired_vs_bert", "paired_examples_vs_bert", "attack_budget", "attack_effort",
                 "attack_validity", "attack_examples"):
        text = (tables / f"{stem}.md").read_text()
        assert "MOVIES" in text and "MR" in text, stem
    validity = pd.read_csv(tables / "attack_validity.csv")  # the fluency columns, from validity_frame's perplexities
    assert (validity["perplexity_original_mean"] < validity["perplexity_adversarial_mean"]).all()
    assert "perplexity adversarial mean (median)" in (tables / "attack_validity.md").read_text()
    paired = pd.read_csv(tables / "paired_examples_vs_bert.csv")
    assert {"accuracy (MOVIES test)", "accuracy (MR test)", "accuracy under A2T"} <= set(paired["metric"])
    points = pd.read_csv(workdir / "results/figures/tradeoff_points.csv")
    assert set(points.loc[points["source"] == "ours", "dataset"]) == set(DATASETS)
    for dataset in DATASETS:
        for attack in RECIPES:
            assert (workdir / f"results/figures/budget_{dataset}_{attack}.png").stat().st_size > 1000
    summary = (workdir / "results/summary.md").read_text()
    assert "![budget_MOVIES_a2t](figures/budget_MOVIES_a2t.png)" in summary
    assert "- **datasets**: MR, MOVIES" in summary
