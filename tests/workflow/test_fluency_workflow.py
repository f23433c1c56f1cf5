"""The validity checks' causal LM in the DAG (dry runs): fetched when unset, read from a local folder when set, and
neither with `attacks.fluency.enabled: false`. The perplexities themselves: tests/unit/test_fluency.py; the table's
columns on a real run: tests/workflow/test_full_study.py."""

from __future__ import annotations

import pytest
from attack_fixtures import build_causal_lm
from conftest import planned_jobs, run_snakemake, shared_data, tiny_config, write_config

from advtrain.attacks.resources import WORD_EMBEDDING_FILES

pytestmark = pytest.mark.slow

TARGET = "results/attacks/MR/BERT/seed1/textfooler/validity.csv"


def planned(tmp_path, tiny_model, tiny_data, name, **fluency_and_lm):
    workdir = tmp_path / name
    workdir.mkdir()
    embedding, encoder = tmp_path / "paragramcf", tmp_path / "sentence_encoder"
    for file in (embedding / WORD_EMBEDDING_FILES[n] for n in ("matrix", "wordlist", "nn")):  # layouts only
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch()
    encoder.mkdir(exist_ok=True)
    (encoder / "modules.json").write_text("[]")
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["seeds"] = [1]
    config["run"] = {"methods": ["BERT"], "datasets": ["MR"]}
    resources = {"word_embedding": str(embedding), "sentence_encoder": str(encoder),
                 "nltk_data": str(shared_data("nltk_data"))}
    if "causal_lm" in fluency_and_lm:
        resources["causal_lm"] = str(fluency_and_lm["causal_lm"])
    config["attacks"] = {"recipes": ["textfooler"], "num_examples": 4, "shards": 1, "resources": resources,
                         "fluency": fluency_and_lm.get("fluency", {})}
    write_config(workdir, config)
    proc = run_snakemake(workdir, "-n", TARGET)
    return [rule for rule, _ in planned_jobs(proc.stdout)]


def test_the_causal_lm_is_fetched_local_or_left_out(tmp_path, tiny_model, tiny_data):
    fetched = planned(tmp_path, tiny_model, tiny_data, "fetched")
    assert "fetch_attack_causal_lm" in fetched and "attack_validity" in fetched
    local = planned(tmp_path, tiny_model, tiny_data, "local", causal_lm=build_causal_lm(tmp_path / "lm"))
    assert "fetch_attack_causal_lm" not in local and "attack_validity" in local
    off = planned(tmp_path, tiny_model, tiny_data, "off", fluency={"enabled": False})
    assert "fetch_attack_causal_lm" not in off and "attack_validity" in off
