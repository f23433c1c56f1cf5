"""Rule claims in the workflow (dry runs): a target of rule all, its inputs follow the configured parts and
--omit-from, and the claims file is checked before any job."""

from __future__ import annotations

import re

from conftest import REPO, run_snakemake, tiny_config, write_config
from test_lca_workflow import lca_config

from advtrain.summary import omitted


def job_inputs(output: str, rule: str) -> list[str]:
    """The inputs of the one job of ``rule`` in a dry run's job listing (the line after the job's header)."""
    (line,) = re.findall(rf"^(?:local)?rule {rule}:\n    input: (.*)$", output, flags=re.M)
    return line.split(", ")


def test_claims_is_a_target_of_rule_all_and_reads_the_default_claims(tmp_path, tiny_model, tiny_data):
    """The tiny config has no `claims`: the default, config/claims.yaml, is read from the workflow's folder (the
    run's working directory has none)."""
    write_config(tmp_path, tiny_config(tiny_model, tiny_data, tmp_path / "resources"))
    out = run_snakemake(tmp_path, "-n").stdout
    assert {f"results/tables/claims.{ext}" for ext in ("csv", "md", "tex")} <= set(job_inputs(out, "all"))
    assert "results/tables/claims.csv" in job_inputs(out, "summary")
    claims = job_inputs(out, "claims")
    assert claims[0] == str(REPO / "config/claims.yaml")
    assert "results/eval/MR/BERT/seed1.predictions.npz" in claims


def test_a_missing_claims_file_stops_the_run_naming_the_key(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["claims"] = "mine.yaml"
    write_config(tmp_path, config)
    proc = run_snakemake(tmp_path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and re.search(r"^claims: .*mine\.yaml", out, flags=re.M), out


def test_claims_are_made_whatever_else_is_omitted():
    """Omitting attacks or LCA does not remove the claims table (its claims on them say why they are not testable,
    see test_claims.py); only omitting rule claims itself, or its file, does."""
    for entry in ("lca_probe", "gather_attack", "evaluate", "train"):
        assert omitted(["claims"], {entry}, attacks=True) == {}
    assert omitted(["claims"], {"claims"}) == {"claims": "not made: `--omit-from claims`"}
    assert omitted(["claims"], {"results/tables/claims.csv"}) == {
        "claims": "not made: `--omit-from results/tables/claims.csv`"}


def test_omitted_lca_leaves_the_claims_job_without_lca_inputs(tmp_path, tiny_model, tiny_data):
    """--omit-from lca_train: the claims job stays (a target of rule all and an input of the summary) and reads the
    evaluations but no LCA analysis."""
    write_config(tmp_path, lca_config(tiny_model, tiny_data, tmp_path))
    everything = job_inputs(run_snakemake(tmp_path, "-n").stdout, "claims")
    assert "results/lca/analysis/BERT/seed1.json" in everything
    out = run_snakemake(tmp_path, "-n", "--omit-from", "lca_train").stdout
    claims = job_inputs(out, "claims")
    assert "results/eval/MR/BERT/seed1.json" in claims and not [f for f in claims if "results/lca" in f]
    assert "results/tables/claims.csv" in job_inputs(out, "summary")
    assert "results/tables/claims.md" in job_inputs(out, "all")
