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
                       "at-ip-best-epoch", "at-da-fraction", "imdb-validation", "backtranslation-sampling",
                       "lca-ordering", "lca-pooling", "lca-activations", "lca-choices"}, \
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
    # Issue 22: the probe's reshuffled batches of 128 over float16 activations.
    old["lca"]["probe"].update(batch_size=128, shuffle=True)
    old["lca"]["activations_dtype"] = "float16"
    found = {(u.row, u.key): (u.value, u.reference) for u in fidelity.non_reference(old)}
    assert found[("lca-probe", "lca.probe.batch_size")] == (128, 32)
    assert found[("lca-probe", "lca.probe.shuffle")] == (True, False)
    assert found[("lca-activations", "lca.activations_dtype")] == ("float16", "float32")
    # Only what the run uses: without the AT-DA methods and LCA, their rows are silent.
    old["run"]["methods"] = ["BERT", "A2T"]
    old["lca"]["methods"] = []
    rows = {u.row for u in fidelity.non_reference(old)}
    assert "at-ip-train" in rows and not rows & {"at-da-fraction", "backtranslation-sampling", "lca-pooling"}


def test_lca_choices_follow_their_keys(study):
    """The quick preset's shorter taggers and sentence cap are listed; another corpus replaces the split's keys."""
    quick = yaml.safe_load((REPO / "config/quick.yaml").read_text())
    found = {u.key: (u.value, u.reference) for u in fidelity.non_reference(quick) if u.row == "lca-choices"}
    assert found == {"lca.train.epochs": (1, 3), "lca.data.max_sentences": ({"train": 800}, "every sentence")}
    other = copy.deepcopy(study)
    other["lca"].update(words_per_neuron=3, data={"source": "conll2000"})
    other["methods"]["LDS"]["train"] = {"epochs": 2}  # the taggers' epochs differ: each method's is listed
    other["lca"]["train"] = {}
    found = {u.key: (u.value, u.reference) for u in fidelity.non_reference(other) if u.row == "lca-choices"}
    epochs = found.pop("lca.train.epochs")[0]
    assert epochs["LDS"] == 2 and epochs["BERT"] == study["model"]["epochs"]
    assert found == {"lca.words_per_neuron": (3, 5), "lca.data.source": ("conll2000", "treebank")}


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


def test_imdb_validation_row_follows_at_da_train_and_checks_the_carve(study):
    """Issue 22, item 5: A2T's 5,000 validation reviews. A fraction counts by the rows it takes of the 25,000; a
    source with its own validation split, or a run without IMDB, is not checked."""
    ids = [r.id for r in fidelity.ROWS]
    assert ids[ids.index("at-da-train") + 1] == "imdb-validation"
    doc = list(ledger_rows())
    assert doc[doc.index("at-da-train") + 1] == "imdb-validation"
    assert study["datasets"]["IMDB"]["carve"] == {"validation": 5000}
    row = fidelity.row("imdb-validation")

    def uses(carve=None, **changes):
        config = copy.deepcopy(study)
        if carve is not None:
            config["datasets"]["IMDB"]["carve"] = carve
        for key, value in changes.items():
            config[key] = value
        return [(u.key, u.value, u.reference) for u in row.uses(config)]

    assert uses() == []
    assert uses({"validation": 0.2}) == []  # 0.2 of 25,000 = 5,000 rows
    assert uses({"validation": 0.1}) == [("datasets.IMDB.carve.validation", 0.1, 5000)]  # the former default
    assert uses({"validation": 2500}) == [("datasets.IMDB.carve.validation", 2500, 5000)]
    assert uses({"validation": 0.1}, run={**study["run"], "datasets": ["MR"]}) == []
    own = copy.deepcopy(study)
    own["datasets"]["IMDB"]["source"] = {"local": {"format": "tsv", "files": {
        "train": "imdb/train.tsv", "validation": "imdb/val.tsv", "test": "imdb/test.tsv"}}}
    own["datasets"]["IMDB"]["carve"] = {"validation": 0.1}
    assert row.uses(own) == []


def test_corrected_rows_report_no_departure_and_say_why(study):
    """Issue 22, item 8: A2T evaluates checkpoint-epoch-4 (the last epoch, as here), and its ASR is over examples every
    model classifies correctly (nothing skipped)."""
    rows = ledger_rows()
    assert fidelity.row("at-ip-best-epoch").check is None
    assert not [u for u in fidelity.non_reference(study) if u.row in {"at-ip-best-epoch", "asr-denominator"}]
    best = rows["at-ip-best-epoch"]
    assert "checkpoint-epoch-" in best[3] and "--epoch 4" in best[3] and "same as the reference" in best[4]
    asr = rows["asr-denominator"]
    assert "len(results)" in asr[3] and "Nothing is skipped" in asr[3]


def test_the_optimiser_rows(study):
    """Issue 22: the study runs TextAttack's optimiser for AT-IP and mt-dnn's for ALUM (but the paper's 4 epochs); AT-DA
    is declared on the baseline's. The values before (Hugging Face's everywhere) are listed, key by key."""
    rows = ("grad-clipping", "adam-epsilon", "alum-optimizer")
    found = {(u.row, u.key): (u.value, u.reference) for u in fidelity.non_reference(study) if u.row in rows}
    at_da = ("SSMBA", "BackTranslation", "BackTranslation_PGD-AT")
    assert found == {
        ("alum-optimizer", "methods.ALUM.train.epochs"): (4, 5),
        **{("grad-clipping", f"methods.{m}.train.max_grad_norm"): (1.0, 0) for m in at_da},
        **{("adam-epsilon", f"methods.{m}.train.optimizer"): ("adamw_torch", "adamw_hf") for m in at_da},
        **{("adam-epsilon", f"methods.{m}.train.adam_epsilon"): (1e-8, 1e-6) for m in at_da},
    }
    old = copy.deepcopy(study)
    for method in ("A2T", "A2T_MLM", "BERT_Attack", "A2T_PGD-AT"):
        for key in ("optimizer", "adam_epsilon", "max_grad_norm"):
            del old["methods"][method]["train"][key]
    del old["methods"]["ALUM"]["train"]
    found = {(u.row, u.key): (u.value, u.reference) for u in fidelity.non_reference(old) if u.row in rows}
    assert found[("grad-clipping", "methods.A2T.train.max_grad_norm")] == (1.0, 0)
    assert found[("adam-epsilon", "methods.BERT_Attack.train.adam_epsilon")] == (1e-8, 1e-6)
    assert found[("adam-epsilon", "methods.A2T_PGD-AT.train.optimizer")] == ("adamw_torch", "adamw_hf")
    assert {k: found[("alum-optimizer", f"methods.ALUM.train.{k}")] for k in
            ("optimizer", "learning_rate", "batch_size", "max_length", "lr_schedule", "adam_epsilon")} == {
        "optimizer": ("adamw_torch", "adamax_mtdnn"), "learning_rate": (2e-5, 5e-5), "batch_size": (32, 8),
        "max_length": (256, 512), "lr_schedule": ("linear", "mtdnn"), "adam_epsilon": (1e-8, 1e-6)}
    assert ("alum-optimizer", "methods.ALUM.train.max_grad_norm") not in found  # 1.0 before and in mt-dnn
    # Only the methods a run trains: without AT-DA and ALUM, the study's config lists none of these rows.
    only = copy.deepcopy(study)
    only["run"]["methods"] = ["BERT", "A2T", "PGD-AT"]
    assert not {u.row for u in fidelity.non_reference(only)} & set(rows)


def test_pso_search_is_listed_only_when_pso_runs_the_fixed_search(study):
    config = copy.deepcopy(study)
    assert config["attacks"]["pso_search"] == "textattack-0.3.8"
    assert not [u for u in fidelity.non_reference(config) if u.row == "pso-search"]
    config["attacks"]["pso_search"] = "textattack-0.3.11"
    uses = [(u.key, u.value, u.reference) for u in fidelity.non_reference(config) if u.row == "pso-search"]
    assert uses == [("attacks.pso_search", "textattack-0.3.11", "textattack-0.3.8")]
    config["attacks"]["recipes"] = ["textfooler", "a2t"]
    assert not [u for u in fidelity.non_reference(config) if u.row == "pso-search"]
