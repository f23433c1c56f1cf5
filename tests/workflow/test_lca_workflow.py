"""The LCA branch of the workflow: dry run on config.yaml, and end to end on the tiny model with a POS file."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TWO_JOBS, run_snakemake, tiny_config, write_config

VOCAB = {"DT": ["the", "a", "this"], "JJ": ["good", "bad", "great", "dull"], "NN": ["movie", "film", "plot", "cast"],
         "VBZ": ["is", "seems", "looks"], "RB": ["very", "really", "quite"], ".": ["."]}


def pos_file(path, n: int, seed: int = 0):
    """CoNLL-layout sentences 'DT (JJ) NN VBZ (RB) JJ .' with their tags."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        tags = ["DT"] + ["JJ"] * int(rng.integers(0, 2)) + ["NN", "VBZ"] + ["RB"] * int(rng.integers(0, 2)) + ["JJ", "."]
        lines += [f"{VOCAB[t][rng.integers(len(VOCAB[t]))]} {t}" for t in tags] + [""]
    path.write_text("\n".join(lines))
    return path


def lca_config(tiny_model, tiny_data, workdir, methods=("BERT", "PGD-AT")):
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["methods"]["PGD-AT"] = {"adversarial_embedding": {"kind": "pgd", "grad_norm": "steepest"}}
    config["methods"]["LDS"] = {"adversarial_embedding": {"kind": "lds", "grad_norm": "steepest"}}
    config["seeds"] = [1]
    config["lca"] = {
        "methods": list(methods),
        "data": {"source": "local", "files": {"all": str(pos_file(workdir / "pos.txt", 120))}, "test_fraction": 0.2},
        "train": {"epochs": 2},
        "probe": {"epochs": 5, "batch_size": 64, "learning_rate": 0.01, "l1": 0.001, "l2": 0.001},
        "activations_dtype": "float16",
        "top_neurons": 3, "words_per_neuron": 2, "ablation_neurons": 4, "search_stride": 20,
    }
    return config


def test_dry_run_on_the_study_config_shows_the_lca_branch():
    proc = run_snakemake(REPO, "-n", "--quiet", "rules", check=True)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert counts["lca_train"] == "9" and counts["lca_activations"] == "9" and counts["lca_probe"] == "9"
    assert counts["lca_tables"] == "1" and counts["lca_data"] == "1"


def test_omitting_the_lca_branch_still_schedules_the_summary_and_nothing_for_lca(tmp_path, tiny_model, tiny_data):
    """--omit-from lca_train: the summary's inputs leave the LCA tables out (it is still written, naming them as
    absent), and lca_data, which only lca_train reads, does not run."""
    write_config(tmp_path, lca_config(tiny_model, tiny_data, tmp_path))

    def jobs(*args):
        proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", *args)
        return dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))

    everything = jobs()
    assert everything["lca_data"] == "1" and everything["lca_tables"] == "1" and everything["summary"] == "1"
    omitted = jobs("--omit-from", "lca_train")
    assert omitted["summary"] == "1" and omitted["all"] == "1" and omitted["table4_accuracy"] == "1"
    assert not [rule for rule in omitted if rule.startswith("lca_")]


def test_bad_lca_config_is_stopped_before_any_job(tmp_path, tiny_model, tiny_data):
    config = lca_config(tiny_model, tiny_data, tmp_path)
    config["lca"]["methods"] = ["BERT", "FreeLB"]
    write_config(tmp_path, config)
    proc = run_snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0 and "lca.methods[1]: unknown method 'FreeLB'" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_lca_branch_end_to_end(tmp_path, tiny_model, tiny_data):
    write_config(tmp_path, lca_config(tiny_model, tiny_data, tmp_path))
    run_snakemake(tmp_path, *TWO_JOBS, "results/tables/table5_lca.csv", "results/tables/table7_ablation.csv")
    results = tmp_path / "results"
    summary = json.loads((results / "lca/data/summary.json").read_text())
    assert summary["train"]["sentences"] == 96 and summary["test"]["sentences"] == 24
    for method in ("BERT", "PGD-AT"):
        metrics = json.loads((results / f"lca/models/{method}/seed1/metrics.json").read_text())
        assert metrics["test_token_accuracy"] > 0.5 and metrics["spec"]["train"]["epochs"] == 2
        analysis = json.loads((results / f"lca/analysis/{method}/seed1.json").read_text())
        assert analysis["tags"] == sorted(VOCAB)
        assert len(analysis["top_ranked_neurons"]) == 4 and 0 <= analysis["ablation_accuracy"] <= 1
        assert all(1 <= row["total"] <= 6 for row in analysis["association"])
        with np.load(results / f"lca/activations/{method}/seed1/test.npz") as npz:
            assert npz["activations"].dtype == np.float16 and len(npz["words"]) == len(npz["tags"])  # the key's
    table5 = pd.read_csv(results / "tables/table5_lca.csv")
    assert list(table5["tag"]) == ["JJ", "JJR", "MD", "VBD", ":", "VBZ", "RB", "VBG"]
    assert table5.set_index("tag").loc["VBZ", "PGD-AT_paper_match"] == 9
    assert table5.set_index("tag").loc["JJ", "BERT_n"] == 1
    assert set(pd.read_csv(results / "tables/table5_lca_all_tags.csv")["tag"]) == set(VOCAB)
    table7 = pd.read_csv(results / "tables/table7_ablation.csv")
    assert list(table7["method"]) == ["BERT", "PGD-AT"] and list(table7["paper"]) == [34.2, 35.3]
    assert (results / "tables/table6_lca_words.tex").read_text().startswith("\\begin{table}")
    assert (tmp_path / "logs/lca/probe/BERT/seed1.log").stat().st_size > 0
