"""attacks.protocol in the workflow (dry runs): TextDefender's preset shows its sample rule and budget per example,
plans its table, and a query budget set beside it stops the run naming both keys."""

from __future__ import annotations

import yaml
from attack_fixtures import one_textfooler_shard
from conftest import REPO, run_snakemake, write_config


def preset_config(workdir, config, tiny_model) -> dict:
    """The tiny config with config/textdefender.yaml's `attacks` laid over one TextFooler shard (as Snakemake merges
    a --configfile layer: key by key), its recipes kept to TextFooler."""
    preset = yaml.safe_load((REPO / "config/textdefender.yaml").read_text())["attacks"]
    attacks = {**one_textfooler_shard(workdir / "resources", tiny_model), **preset, "recipes": ["textfooler"]}
    return {**config, "attacks": attacks}


def test_textdefender_preset_dry_run_shows_its_budget_and_sample(tiny_workdir, tiny_model):
    workdir, config = tiny_workdir
    write_config(workdir, preset_config(workdir, config, tiny_model))
    proc = run_snakemake(workdir, "-n")
    log = proc.stderr + proc.stdout
    assert "attacks.protocol: textdefender" in log
    assert ("sample rule: 1000 random test examples with more than 4 words (split on spaces), without replacement, "
            "NumPy seed 42") in log
    assert "budget per example: 50 x words queries" in log
    assert "rule attack_shard:" in proc.stdout and "results/tables/textdefender_attacks.md" in proc.stdout


def test_query_budget_beside_the_protocol_stops_the_run(tiny_workdir, tiny_model):
    workdir, config = tiny_workdir
    config = preset_config(workdir, config, tiny_model)
    config["attacks"]["query_budget"] = 2000
    write_config(workdir, config)
    proc = run_snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert "attacks.query_budget: 2000 is set, but attacks.protocol: textdefender" in proc.stdout + proc.stderr
