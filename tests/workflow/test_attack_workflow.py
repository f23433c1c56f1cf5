"""The attack stage in the workflow: sharded attacks, gathered summaries and Table 2, on tiny local resources."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from attack_fixtures import assert_same_records, build_resources, read_jsonl
from conftest import TWO_JOBS, planned_jobs, run_snakemake, shared_data, tiny_config, write_config

RECIPES = ["textfooler", "bae", "a2t", "pso"]
NUM_EXAMPLES = 4
RUN = "results/attacks/MR/BERT/seed1"


def attack_config(model, data, workdir, resources, shards=2):
    config = tiny_config(model, data, workdir / "resources")
    config["seeds"] = [1]
    config["run"] = {"methods": ["BERT"], "datasets": ["MR"]}
    config["attacks"] = {
        "recipes": RECIPES,
        "num_examples": NUM_EXAMPLES,
        "query_budget": 60,
        "shards": shards,
        "model_batch_size": 16,
        "seed": 765,
        "resources": {**dict.fromkeys(["use"]), **resources},
    }
    return config


@pytest.fixture(scope="module")
def attack_resources(tmp_path_factory, tiny_model):
    nltk_data = shared_data("nltk_data")
    return build_resources(tmp_path_factory.mktemp("attack_resources"), tiny_model, nltk_data)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, tiny_model, tiny_data, attack_resources):
    """A finished workflow run with every recipe, 2 shards each."""
    workdir = tmp_path_factory.mktemp("attack_workflow")
    config = attack_config(tiny_model, tiny_data, workdir, attack_resources)
    write_config(workdir, config)
    run_snakemake(workdir, *TWO_JOBS)
    return workdir, config


@pytest.mark.slow
def test_attack_stage_end_to_end(attacked):
    workdir, _ = attacked
    for recipe in RECIPES:
        shards = [workdir / RUN / recipe / f"shard{k}-of-2.jsonl" for k in (1, 2)]
        records = [r for path in shards for r in read_jsonl(path)]
        assert sorted(r["index"] for r in records) == list(range(NUM_EXAMPLES))
        summary = json.loads((workdir / f"{RUN}/{recipe}.json").read_text())  # valid JSON: NaN written as null
        assert summary["attack"] == recipe and summary["total"] == NUM_EXAMPLES and summary["shards"] == 2
        # The split has more rows than the sample: nothing capped it, so nothing to note.
        assert summary["requested_examples"] == NUM_EXAMPLES and summary["sample_note"] is None
        asr = summary["attack_success_rate"]
        assert asr is None or 0.0 <= asr <= 1.0
        for key in ("accuracy_under_attack", "skipped", "avg_perturbed_word_pct", "avg_num_queries"):
            assert key in summary
        assert isinstance(summary["substitutions"], list)
    # No USE configured: TextFooler and BAE report the sentence-encoder substitution.
    textfooler = json.loads((workdir / f"{RUN}/textfooler.json").read_text())
    assert textfooler["substitutions"]

    table = pd.read_csv(workdir / "results/tables/table2_asr.csv")
    assert list(table["attack"]) == ["TextFooler", "BAE", "A2T", "PSO", "Average"]
    assert set(table["dataset"]) == {"MR"}
    paper = table.set_index("attack")["BERT_paper"]
    assert paper["TextFooler"] == pytest.approx(82.1)
    md = (workdir / "results/tables/table2_asr.md").read_text()
    assert "82.10" in md and "substitutions" in md and "requested" not in md
    assert (workdir / "results/tables/table2_asr.tex").read_text().strip()


@pytest.mark.slow
def test_two_shards_equal_one(attacked, attack_resources):
    workdir, config = attacked
    two = {r: json.loads((workdir / f"{RUN}/{r}.json").read_text()) for r in RECIPES}
    two_records = {
        r: sorted((x for k in (1, 2) for x in read_jsonl(workdir / RUN / r / f"shard{k}-of-2.jsonl")),
                  key=lambda x: x["index"])
        for r in RECIPES
    }
    config["attacks"]["shards"] = 1
    write_config(workdir, config)
    run_snakemake(workdir, *TWO_JOBS, *(f"{RUN}/{r}.json" for r in RECIPES))
    for recipe in RECIPES:
        one_records = read_jsonl(workdir / RUN / recipe / "shard1-of-1.jsonl")
        assert_same_records(one_records, two_records[recipe])
        one = json.loads((workdir / f"{RUN}/{recipe}.json").read_text())
        assert one["shards"] == 1
        for key, value in one.items():
            if key in ("shards", "seconds"):
                continue
            if isinstance(value, float):
                assert math.isclose(value, two[recipe][key], rel_tol=1e-12), key
            else:
                assert value == two[recipe][key], key


@pytest.mark.slow
def test_pso_search_reruns_the_pso_attacks_only(attacked):
    """attacks.pso_search is a param of the PSO shards only: changing it plans PSO's shards again, no other attack."""
    workdir, config = attacked
    summary = json.loads((workdir / f"{RUN}/pso.json").read_text())
    assert summary["pso_search"] == "textattack-0.3.8"  # the schema's default reached the shards
    changed = {**config, "attacks": {**config["attacks"], "pso_search": "textattack-0.3.11"}}
    write_config(workdir, changed)
    try:
        jobs = planned_jobs(run_snakemake(workdir, "-n", *TWO_JOBS).stdout)
    finally:
        write_config(workdir, config)
    attacks = {w["attack"] for rule, w in jobs if rule in ("attack_shard", "gather_attack")}
    assert attacks == {"pso"}, jobs
    assert not {rule for rule, _ in jobs} & {"train", "prepare_training_dataset"}, jobs


def test_missing_local_resource_stops_at_start(tiny_workdir, tmp_path):
    workdir, config = tiny_workdir
    config["attacks"] = {"recipes": ["textfooler"], "resources": {"word_embedding": str(tmp_path / "nowhere")}}
    write_config(workdir, config)
    proc = run_snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert "attacks.resources.word_embedding" in proc.stdout + proc.stderr


def test_no_attacks_means_no_attack_jobs(tiny_workdir):
    workdir, config = tiny_workdir
    proc = run_snakemake(workdir, "-n")
    assert "attack_shard" not in proc.stdout
    # No Table 2 job or output (the claims job still reads the paper's own Table 2 for its paper-table verdicts).
    assert "rule table2_asr" not in proc.stdout and "results/tables/table2_asr" not in proc.stdout
    assert "src/advtrain/paper/table2_asr.csv" in proc.stdout


def test_schema_rejects_unknown_recipe(tiny_workdir):
    workdir, config = tiny_workdir
    config["attacks"] = {"recipes": ["hotflip"]}
    write_config(workdir, config)
    proc = run_snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0 and "hotflip" in proc.stdout + proc.stderr


def test_config_yaml_has_attacks():
    from conftest import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert config["attacks"]["recipes"] == ["textfooler", "bae", "a2t", "pso"]
