"""The fidelity ledger: docs/fidelity.md has a row for every row of advtrain.fidelity (with its config keys), the
study's config runs the reference values where the ledger says so, and a run lists the values it departs with."""

from __future__ import annotations

import copy
import inspect
import re

import pytest
import yaml
from conftest import REPO

from advtrain import fidelity
from advtrain.summary import write_summary

LEDGER = REPO / fidelity.LEDGER
#: Issue 16's items 1-9: each has a ledger row.
ISSUE_ROWS = ("pgd-start", "lds-clean-side", "alum-mtdnn", "at-ip-train", "at-da-fraction", "backtranslation-sampling",
              "lca-ordering", "lca-pooling", "asr-denominator")


def ledger_rows() -> dict[str, list[str]]:
    """{id: the row's cells} of the ledger's table (rows whose first cell is an id in backticks)."""
    rows = {}
    for line in LEDGER.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z0-9-]+)` \|", line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 7, (m.group(1), len(cells))  # id, component, paper, reference, ours, key, why
            rows[m.group(1)] = cells
    return rows


@pytest.fixture(scope="module")
def study() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_every_row_is_in_the_ledger_with_its_keys():
    rows = ledger_rows()
    ids = [r.id for r in fidelity.ROWS]
    assert len(ids) == len(set(ids))
    assert set(rows) == set(ids), set(rows) ^ set(ids)  # no row in one place only
    assert set(ISSUE_ROWS) <= set(ids)
    for row in fidelity.ROWS:
        key_cell = rows[row.id][5]
        for key in row.keys:
            assert f"`{key}`" in key_cell, (row.id, key)
        if not row.keys:
            assert key_cell == "—", row.id


def test_the_study_runs_the_reference_values_of_items_1_to_8(study):
    uses = fidelity.non_reference(study)
    rows = {u.row for u in uses}
    assert not rows & {"pgd-start", "lds-clean-side", "alum-mtdnn", "pgd-step", "at-ip-train", "at-ip-schedule",
                       "at-da-fraction", "backtranslation-sampling", "lca-ordering", "lca-pooling"}, \
        [u for u in uses if u.row in rows]
    # The declared departures of the study's config are listed, each with its key.
    keys = {(u.row, u.key) for u in uses}
    assert ("query-budget", "attacks.query_budget") in keys
    assert ("use-substitute", "attacks.resources.use") in keys
    assert ("backtranslation-model", "augmentation.augmenters.backtranslation.forward.name") in keys
    assert ("at-ip-fixed-share", "methods.{A2T, A2T_MLM, BERT_Attack, A2T_PGD-AT}.adversarial_input") in keys
    assert all(u.row in {r.id for r in fidelity.ROWS} for u in uses)


def test_the_former_embedding_settings_are_listed():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"]["PGD-AT"]["adversarial_embedding"].update(init="coordinate", init_std=1.0e-5)
    config["methods"]["LDS"]["adversarial_embedding"]["ascent_target"] = "training"
    config["methods"]["ALUM"]["adversarial_embedding"].update(step_size=1e-3)
    uses = {(u.row, u.key): (u.value, u.reference) for u in fidelity.non_reference(config)}
    assert uses[("pgd-start", "methods.PGD-AT.adversarial_embedding.init")] == ("coordinate", "sphere")
    assert uses[("pgd-start", "methods.PGD-AT.adversarial_embedding.init_std")] == (1.0e-5, 1e-3)
    assert uses[("lds-clean-side", "methods.LDS.adversarial_embedding.ascent_target")] == ("training", "ascent")
    assert uses[("alum-mtdnn", "methods.ALUM.adversarial_embedding.step_size")] == (1e-3, 1e-5)
    assert not any(r == "pgd-start" and "LDS" in k for r, k in uses)


def test_the_previous_defaults_are_listed_as_departures(study):
    """The values before issue 16 (AT-IP with the baseline's training, every augmented row, one-beam sampling without
    top-k, first sub-token) are each reported with the row, the key, the value and the reference's."""
    old = copy.deepcopy(study)
    for method in ("A2T", "A2T_MLM", "BERT_Attack", "A2T_PGD-AT"):
        del old["methods"][method]["train"]
    for method in ("SSMBA", "BackTranslation", "BackTranslation_PGD-AT"):
        old["methods"][method]["augment"]["fraction"] = 1.0
    old["augmentation"]["augmenters"]["backtranslation"].update(num_beams=1, top_k=0)
    old["lca"]["pooling"] = "first"
    found = {(u.row, u.key): (u.value, u.reference) for u in fidelity.non_reference(old)}
    assert found[("at-ip-train", "methods.A2T.train.learning_rate")] == (2e-5, 5e-5)
    assert found[("at-ip-train", "methods.A2T.train.batch_size")] == (32, 8)
    assert found[("at-ip-train", "methods.A2T.train.max_length")] == (256, 512)
    assert found[("at-ip-train", "methods.BERT_Attack.train.warmup_steps")] == ("warmup_ratio 0.1", 100)
    assert found[("at-da-fraction", "methods.SSMBA.augment.fraction")] == (1.0, 0.2)
    assert found[("backtranslation-sampling", "augmentation.augmenters.backtranslation.num_beams")] == (1, 5)
    assert found[("backtranslation-sampling", "augmentation.augmenters.backtranslation.top_k")] == (0, 50)
    assert found[("lca-pooling", "lca.pooling")] == ("first", "last")
    # Only what the run uses: without the AT-DA methods and LCA, their rows are silent.
    old["run"]["methods"] = ["BERT", "A2T"]
    old["lca"]["methods"] = []
    rows = {u.row for u in fidelity.non_reference(old)}
    assert "at-ip-train" in rows and not rows & {"at-da-fraction", "backtranslation-sampling", "lca-pooling"}


def test_the_summary_lists_the_departures(study, tmp_path):
    uses = [u._asdict() for u in fidelity.non_reference(study)]
    tables = tmp_path / "results" / "tables"
    paths = fidelity.write_uses(uses, tables / "fidelity")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    table = (tables / "table4_accuracy.md")
    table.write_text("Table 4: accuracy (%)\n\n| a |\n|---|\n| 1 |\n")
    text = write_summary(tmp_path / "results" / "summary.md", [table], [], {}, fidelity=tables / "fidelity.md").read_text()
    section = text[text.index("## Departures from the reference code"):]
    assert "docs/fidelity.md" in section and "`tables/fidelity.csv`" in section
    assert "| query-budget " in section and "attacks.query_budget" in section and "10000" in section
    assert section.count("\n| ") == len(uses) + 1  # the header and one line per value


def test_probe_defaults_are_the_probes():
    from advtrain.lca.probe import train_probe
    from advtrain.lca.settings import PROBE_DEFAULTS

    signature = inspect.signature(train_probe).parameters
    assert PROBE_DEFAULTS == {k: signature[k].default for k in PROBE_DEFAULTS}


def test_pso_search_is_listed_only_when_pso_runs_the_fixed_search(study):
    config = copy.deepcopy(study)
    assert config["attacks"]["pso_search"] == "textattack-0.3.8"
    assert not [u for u in fidelity.non_reference(config) if u.row == "pso-search"]
    config["attacks"]["pso_search"] = "textattack-0.3.11"
    uses = [(u.key, u.value, u.reference) for u in fidelity.non_reference(config) if u.row == "pso-search"]
    assert uses == [("attacks.pso_search", "textattack-0.3.11", "textattack-0.3.8")]
    config["attacks"]["recipes"] = ["textfooler", "a2t"]
    assert not [u for u in fidelity.non_reference(config) if u.row == "pso-search"]
