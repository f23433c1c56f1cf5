"""advtrain.config and advtrain.sources: schema messages name the key, cross-references, method settings,
precision, resource locations; and the same checks as a user meets them through `snakemake -n`."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, planned_jobs, run_snakemake, tiny_config, write_config

from advtrain import sources as res
from advtrain.config import (
    TRAIN_KEYS,
    ConfigError,
    check_references,
    effective_source,
    explain_validation_errors,
    method_parts,
    method_spec,
    resolve_precision,
    selected_methods,
    train_settings,
    training_datasets,
)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DELETE = object()


@pytest.fixture(scope="module")
def repo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture()
def config(repo_config) -> dict:
    return copy.deepcopy(repo_config)


def edit(config: dict, path: tuple, value) -> dict:
    """Set (or, with DELETE, remove) ``config[path[0]][path[1]]...``."""
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


def lines_for(message: str, key: str) -> list[str]:
    return [line for line in message.splitlines() if line.startswith(f"{key}:")]


# --------------------------------------------------------------------------- schema messages

BAD_CONFIGS = [
    # wrong types
    ("seeds-string", ("seeds",), "1", "seeds"),
    ("seed-item-string", ("seeds",), ["1", 2], "seeds.0"),
    ("batch-size-string", ("model", "batch_size"), "32", "model.batch_size"),
    ("batch-size-float", ("model", "batch_size"), 32.5, "model.batch_size"),
    ("epochs-word", ("model", "epochs"), "four", "model.epochs"),
    ("offline-string", ("offline",), "yes", "offline"),
    ("method-list", ("methods", "BERT"), [], "methods.BERT"),
    # out of range
    ("learning-rate-zero", ("model", "learning_rate"), 0, "model.learning_rate"),
    ("learning-rate-negative", ("model", "learning_rate"), -2e-5, "model.learning_rate"),
    ("warmup-above-1", ("model", "warmup_ratio"), 1.5, "model.warmup_ratio"),
    # the optimiser keys (issue 22): the model's defaults and a method's override
    ("optimizer-unknown", ("model", "optimizer"), "adamw", "model.optimizer"),
    ("optimizer-override-unknown", ("methods", "ALUM", "train", "optimizer"), "adamax", "methods.ALUM.train.optimizer"),
    ("adam-epsilon-zero", ("model", "adam_epsilon"), 0, "model.adam_epsilon"),
    ("adam-epsilon-string", ("methods", "A2T", "train", "adam_epsilon"), "1e-6", "methods.A2T.train.adam_epsilon"),
    ("max-grad-norm-negative", ("methods", "A2T", "train", "max_grad_norm"), -1.0, "methods.A2T.train.max_grad_norm"),
    ("max-grad-norm-null", ("model", "max_grad_norm"), None, "model.max_grad_norm"),
    ("lr-schedule-unknown", ("methods", "ALUM", "train", "lr_schedule"), "cosine", "methods.ALUM.train.lr_schedule"),
    ("max-length-zero", ("model", "max_length"), 0, "model.max_length"),
    ("negative-seed", ("seeds",), [1, -2, 3], "seeds.1"),
    ("batch-size-zero", ("model", "batch_size"), 0, "model.batch_size"),
    ("method-learning-rate", ("methods", "PGD-AT", "train"), {"learning_rate": -1.0},
     "methods.PGD-AT.train.learning_rate"),
    ("carve-negative", ("datasets", "IMDB", "carve"), {"validation": -0.1}, "datasets.IMDB.carve.validation"),
    ("max-examples-zero", ("datasets", "MR", "max_examples"), {"train": 0}, "datasets.MR.max_examples.train"),
    ("split-seed-negative", ("datasets", "IMDB", "split_seed"), -1, "datasets.IMDB.split_seed"),
    ("label-map-2", ("datasets", "YELP", "label_map"), {1: 0, 2: 2}, "datasets.YELP.label_map.2"),
    # unknown method parts
    ("method-mixup", ("methods", "PGD-AT", "mixup"), {"kind": "synonym"}, "methods.PGD-AT.mixup"),
    ("augment-typo", ("methods", "PGD-AT", "augment"), {"augmenters": ["ssmba"], "kind": "eda"},
     "methods.PGD-AT.augment.kind"),
    ("method-bogus", ("methods", "BERT"), {"bogus": 1}, "methods.BERT.bogus"),
    ("embedding-kind", ("methods", "ALUM", "adversarial_embedding", "kind"), "fgsm",
     "methods.ALUM.adversarial_embedding.kind"),
    ("embedding-no-kind", ("methods", "ALUM", "adversarial_embedding", "kind"), DELETE,
     "methods.ALUM.adversarial_embedding"),
    ("embedding-negative-epsilon", ("methods", "PGD-AT", "adversarial_embedding", "epsilon"), -0.003,
     "methods.PGD-AT.adversarial_embedding.epsilon"),
    ("embedding-negative-steps", ("methods", "LDS", "adversarial_embedding", "steps"), -1,
     "methods.LDS.adversarial_embedding.steps"),
    ("embedding-fractional-steps", ("methods", "LDS", "adversarial_embedding", "steps"), 1.5,
     "methods.LDS.adversarial_embedding.steps"),
    ("embedding-unknown-norm", ("methods", "PGD-AT", "adversarial_embedding", "norm"), "l1",
     "methods.PGD-AT.adversarial_embedding.norm"),
    ("embedding-unknown-grad-norm", ("methods", "PGD-AT", "adversarial_embedding", "grad_norm"), "adam",
     "methods.PGD-AT.adversarial_embedding.grad_norm"),
    ("embedding-negative-weight", ("methods", "ALUM", "adversarial_embedding", "weight"), -1,
     "methods.ALUM.adversarial_embedding.weight"),
    # typo'd keys at several levels
    ("top-level-seed", ("seed",), 1, "seed"),
    ("model-lerning-rate", ("model", "lerning_rate"), 1e-5, "model.lerning_rate"),
    ("dataset-sorce", ("datasets", "IMDB", "sorce"), {"hf": {"name": "imdb", "splits": {"train": "train"}}},
     "datasets.IMDB.sorce"),
    ("method-train-typo", ("methods", "LDS", "train"), {"epoch": 2}, "methods.LDS.train.epoch"),
    ("embedding-typo", ("methods", "PGD-AT", "adversarial_embedding", "epsilom"), 0.1,
     "methods.PGD-AT.adversarial_embedding.epsilom"),
    ("splits-typo", ("datasets", "IMDB", "source", "hf", "splits", "tset"), "test",
     "datasets.IMDB.source.hf.splits.tset"),
    ("carve-typo", ("datasets", "IMDB", "carve"), {"valid": 0.1}, "datasets.IMDB.carve.valid"),
    ("run-typo", ("run", "dataset"), ["IMDB"], "run.dataset"),
    ("toy-typo", ("toy", "thetta"), 0.5, "toy.thetta"),
    # datasets
    ("unknown-role", ("datasets", "IMDB", "role"), "eval", "datasets.IMDB.role"),
    ("unknown-local-format", ("datasets", "MR", "source"), {"local": {"format": "xlsx", "files": {"train": "a"}}},
     "datasets.MR.source.local.format"),
    ("local-without-files", ("datasets", "MR", "source"), {"local": {"format": "csv"}}, "datasets.MR.source.local"),
    ("local-short-sha256", ("datasets", "MR", "source"),
     {"local": {"format": "csv", "files": {"train": "a.csv"}, "sha256": {"train": "abc123"}}},
     "datasets.MR.source.local.sha256.train"),
    ("unknown-empty-texts", ("datasets", "MR", "empty_texts"), "skip", "datasets.MR.empty_texts"),
    ("hf-without-splits", ("datasets", "IMDB", "source", "hf", "splits"), DELETE, "datasets.IMDB.source.hf"),
    ("empty-source", ("datasets", "IMDB", "source"), {}, "datasets.IMDB.source"),
    ("no-source", ("datasets", "YELP", "source"), DELETE, "datasets.YELP"),
    ("empty-model-path", ("model", "path"), "", "model.path"),
    # enums, arrays, required keys
    ("bad-precision", ("model", "precision"), "fp8", "model.precision"),
    ("empty-seeds", ("seeds",), [], "seeds"),
    ("duplicate-seeds", ("seeds",), [1, 2, 1], "seeds"),
    ("model-without-name", ("model", "name"), DELETE, "model"),
    ("toy-update-mode", ("toy", "update_mode"), "full", "toy.update_mode"),
    # values the schema used to let through
    ("seed-too-large", ("seeds",), [1, 2**32], "seeds.1"),
    ("attack-seed-too-large", ("attacks", "seed"), 2**40, "attacks.seed"),
    ("pso-search-unknown", ("attacks", "pso_search"), "textattack-0.3.9", "attacks.pso_search"),
    ("carve-fractional-count", ("datasets", "IMDB", "carve"), {"validation": 2.5}, "datasets.IMDB.carve.validation"),
    ("carve-whole-train", ("datasets", "IMDB", "carve"), {"validation": 1.0001}, "datasets.IMDB.carve.validation"),
    ("empty-text-column", ("datasets", "IMDB", "source", "hf", "text_column"), "",
     "datasets.IMDB.source.hf.text_column"),
    ("run-no-methods", ("run", "methods"), [], "run.methods"),
    ("run-no-datasets", ("run", "datasets"), [], "run.datasets"),
    ("run-duplicate-dataset", ("run", "datasets"), ["MR", "MR"], "run.datasets"),
]


def test_repo_config_is_valid(repo_config):
    assert explain_validation_errors(copy.deepcopy(repo_config), SCHEMA) == ""
    check_references(copy.deepcopy(repo_config))


def test_tiny_config_is_valid(tmp_path):
    data = {k: tmp_path / k for k in ("tiny_train", "tiny_test", "mr_pos", "mr_neg", "yelp")}
    config = tiny_config(tmp_path / "model", data, tmp_path / "resources")
    assert explain_validation_errors(config, SCHEMA) == ""
    check_references(config)


@pytest.mark.parametrize(("path", "value", "key"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_schema_message_names_the_key(config, path, value, key):
    message = explain_validation_errors(edit(config, path, value), SCHEMA)
    assert message, "invalid config accepted"
    assert lines_for(message, key), f"no line starts with {key!r}:\n{message}"


def test_schema_unknown_key_lists_allowed_keys(config):
    edit(config, ("methods", "PGD-AT", "mixup"), {"kind": "synonym"})
    (line,) = lines_for(explain_validation_errors(config, SCHEMA), "methods.PGD-AT.mixup")
    assert "unknown key" in line
    assert "adversarial_embedding" in line and "train" in line


@pytest.mark.parametrize(("section", "name"), [("datasets", "1bad"), ("methods", "bad name")])
def test_schema_bad_entry_names(config, section, name):
    config[section][name] = copy.deepcopy(next(iter(config[section].values())))
    message = explain_validation_errors(config, SCHEMA)
    assert lines_for(message, section)
    assert repr(name) in message


def test_schema_reports_every_error(config):
    edit(config, ("model", "learning_rate"), -1)
    edit(config, ("seeds",), [])
    edit(config, ("methods", "LDS", "bogus"), True)
    message = explain_validation_errors(config, SCHEMA)
    for key in ("model.learning_rate", "seeds", "methods.LDS.bogus"):
        assert lines_for(message, key), message
    assert len(message.splitlines()) == len(set(message.splitlines()))  # no repeats


def test_distinct_bad_configs():
    assert len({c[0] for c in BAD_CONFIGS}) == len(BAD_CONFIGS) >= 20


# --------------------------------------------------------------------------- cross-references


@pytest.mark.parametrize(("path", "value", "key", "words"), [
    (("run", "methods"), ["BERT", "FGSM"], "run.methods[1]", ["'FGSM'", "BERT", "PGD-AT"]),
    (("run", "datasets"), ["IMDB", "SST2"], "run.datasets[1]", ["'SST2'", "IMDB", "MR", "YELP"]),
    (("run", "datasets"), ["YELP"], "run.datasets[0]", ["'YELP'", "ood"]),
    (("datasets", "YELP", "source", "hf", "splits"), {"validation": "validation"}, "datasets.YELP.source",
     ["ood", "'test'"]),
    (("datasets", "MR", "source", "hf", "splits"), {"test": "test"}, "datasets.MR.source", ["'train'"]),
], ids=["unknown-method", "unknown-dataset", "ood-in-run", "ood-without-test", "train-without-train"])
def test_check_references_names_the_key(config, path, value, key, words):
    edit(config, path, value)
    assert explain_validation_errors(config, SCHEMA) == ""  # valid for the schema: only the cross-check sees it
    with pytest.raises(ConfigError) as err:
        check_references(config)
    message = str(err.value)
    assert message.startswith(f"{key}:"), message
    for word in words:
        assert word in message


@pytest.mark.parametrize(("path", "value", "key", "words"), [
    (("model", "learning_rate"), float("nan"), "model.learning_rate", ["nan", "finite"]),
    (("model", "epochs"), float("inf"), "model.epochs", ["inf", "finite"]),
    (("methods", "PGD-AT", "adversarial_embedding", "epsilon"), float("inf"),
     "methods.PGD-AT.adversarial_embedding.epsilon", ["inf"]),
    (("toy", "noise_sigmas"), [0.1, float("nan")], "toy.noise_sigmas.1", ["nan"]),
    (("toy", "switch_epoch"), 10**6, "toy.switch_epoch", ["1000000", "toy.epochs"]),
    (("toy", "x_low"), 5.0, "toy.x_low", ["5.0", "toy.x_high"]),
    (("datasets", "IMDB", "carve"), {"validation": 0.6, "test": 0.4}, "datasets.IMDB.carve", ["add up to 1"]),
    (("datasets", "MR", "source"), {"local": {"format": "csv", "encoding": "utf-99", "files": {"train": "a.csv"}}},
     "datasets.MR.source.local.encoding", ["'utf-99'"]),
    (("datasets", "MR", "source"), {"local": {"format": "rt-polarity", "files": {"pos": "p"}}},
     "datasets.MR.source.local.files", ["rt-polarity", "`neg`"]),
    (("datasets", "MR", "source"), {"local": {"format": "rt-polarity", "files": {"train": "t"}}},
     "datasets.MR.source.local.files", ["rt-polarity", "got train"]),
    (("datasets", "MR", "source"), {"local": {"format": "csv", "files": {"pos": "p", "neg": "n"}}},
     "datasets.MR.source.local.files", ["rt-polarity", "csv"]),
    (("datasets", "MR", "source"),
     {"local": {"format": "csv", "files": {"train": "a.csv"}, "sha256": {"test": "0" * 64}}},
     "datasets.MR.source.local.sha256.test", ["no file `test`", "(train)"]),
], ids=["nan-learning-rate", "infinite-epochs", "infinite-epsilon", "nan-in-list", "switch-after-last-epoch",
        "x-low-above-x-high", "carve-fractions-take-all", "unknown-encoding", "rt-polarity-without-neg",
        "rt-polarity-with-split-files", "csv-with-pos-neg", "sha256-of-no-file"])
def test_check_references_consistency(config, path, value, key, words):
    """Values each valid for the schema that the workflow still cannot run with: stopped before any job."""
    edit(config, path, value)
    assert explain_validation_errors(config, SCHEMA) == ""
    with pytest.raises(ConfigError) as err:
        check_references(config)
    message = str(err.value)
    assert message.startswith(f"{key}:"), message
    for word in words:
        assert word in message, message


def test_check_references_accepts_edge_values(config):
    config["toy"]["switch_epoch"] = config["toy"]["epochs"]  # adversarial epochs: none, allowed
    config["datasets"]["IMDB"]["carve"] = {"validation": 0.5, "test": 100}  # a count: checked against the data
    config["datasets"]["MR"]["source"]["local"] = {"format": "rt-polarity", "encoding": "latin-1",
                                                   "files": {"pos": "p", "neg": "n"}}
    check_references(config)


def test_check_references_ood_local_without_test(config):
    config["datasets"]["YELP"]["source"] = {"local": {"format": "label-text", "files": {"train": "yelp.txt"}}}
    with pytest.raises(ConfigError, match=r"^datasets\.YELP\.source: an ood dataset needs a 'test' split"):
        check_references(config)


def test_check_references_no_training_dataset(config):
    for ds in config["datasets"].values():
        ds["role"] = "ood"
    config["run"]["datasets"] = None
    with pytest.raises(ConfigError, match=r"^datasets: no dataset with role 'train'"):
        check_references(config)


def test_check_references_rt_polarity_pair_is_a_training_source(config):
    config["datasets"]["MR"]["source"] = {"local": {"format": "rt-polarity", "files": {"pos": "p", "neg": "n"}}}
    check_references(config)


def test_selection_defaults(config):
    assert training_datasets(config) == ["IMDB", "MR"]
    assert selected_methods(config)[:4] == ["BERT", "PGD-AT", "LDS", "ALUM"]
    assert selected_methods(config) == list(config["methods"])
    config["run"] = {"methods": ["LDS"], "datasets": None}
    assert selected_methods(config) == ["LDS"]
    assert training_datasets(config) == ["IMDB", "MR"]  # every role: train dataset
    config["datasets"]["MR"]["role"] = "ood"
    assert training_datasets(config) == ["IMDB"]


# --------------------------------------------------------------------------- methods and train settings


def test_method_train_override_wins_and_is_local(config):
    model_before = copy.deepcopy(config["model"])
    config["methods"]["PGD-AT"]["train"] = {"learning_rate": 1e-4, "epochs": 2}

    pgd = train_settings(config, "PGD-AT")
    assert pgd["learning_rate"] == 1e-4
    assert pgd["epochs"] == 2
    for key in set(TRAIN_KEYS) - {"learning_rate", "epochs"}:
        assert pgd.get(key) == config["model"].get(key)
    assert "name" not in pgd and "path" not in pgd

    defaults = {k: config["model"][k] for k in TRAIN_KEYS if k in config["model"]}
    for other in ("BERT", "LDS"):
        assert train_settings(config, other) == defaults
    assert config["model"] == model_before  # nothing written back into the defaults

    spec = method_spec(config, "PGD-AT")
    assert spec["train"] == pgd
    assert "train" not in spec["parts"]
    assert spec["parts"]["adversarial_embedding"]["kind"] == "pgd"
    assert config["methods"]["PGD-AT"]["train"] == {"learning_rate": 1e-4, "epochs": 2}  # not popped


def test_reference_trainers_override_the_optimiser(config):
    """AT-IP on TextAttack's optimiser, ALUM on mt-dnn's; the others on the model's (Hugging Face's) defaults."""
    assert {k: config["model"][k] for k in ("optimizer", "adam_epsilon", "max_grad_norm", "lr_schedule")} == {
        "optimizer": "adamw_torch", "adam_epsilon": 1e-8, "max_grad_norm": 1.0, "lr_schedule": "linear"}
    for method in ("A2T", "A2T_MLM", "BERT_Attack", "A2T_PGD-AT"):
        settings = train_settings(config, method)
        assert (settings["optimizer"], settings["adam_epsilon"], settings["max_grad_norm"]) == ("adamw_hf", 1e-6, 0)
    alum = train_settings(config, "ALUM")
    assert (alum["optimizer"], alum["lr_schedule"], alum["max_grad_norm"]) == ("adamax_mtdnn", "mtdnn", 1.0)
    for method in ("BERT", "PGD-AT", "LDS", "SSMBA", "BackTranslation"):
        assert train_settings(config, method)["optimizer"] == "adamw_torch"


def test_method_spec_of_baseline(config):
    spec = method_spec(config, "BERT")
    assert spec == {"train": {k: config["model"][k] for k in TRAIN_KEYS if k in config["model"]}, "parts": {}}
    config["methods"]["BERT"] = None  # `BERT:` with no value in YAML
    assert method_spec(config, "BERT")["parts"] == {}


def test_method_spec_changes_only_with_its_method(config):
    before = {m: method_spec(config, m) for m in config["methods"]}
    config["methods"]["LDS"]["adversarial_embedding"]["steps"] = 5
    after = {m: method_spec(config, m) for m in config["methods"]}
    assert after["LDS"] != before["LDS"]
    assert {m: s for m, s in after.items() if m != "LDS"} == {m: s for m, s in before.items() if m != "LDS"}


def test_method_parts_returns_a_copy(config):
    parts = method_parts(config, "PGD-AT")
    parts["adversarial_embedding"]["steps"] = 99
    assert config["methods"]["PGD-AT"]["adversarial_embedding"]["steps"] == 3


def test_unknown_method(config):
    with pytest.raises(ConfigError, match=r"^methods: unknown method 'FGSM'"):
        method_spec(config, "FGSM")


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize(("precision", "cuda", "bf16", "expected"), [
    ("auto", False, False, "fp32"),
    ("auto", False, True, "fp32"),
    # Not half precision: at the paper's eps the adversarial step is the size of its rounding (ledger `precision`).
    ("auto", True, True, "fp32"),
    ("auto", True, False, "fp32"),
    ("tf32", True, True, "tf32"),
    ("fp32", False, False, "fp32"),
    ("fp32", True, True, "fp32"),
    ("bf16", True, True, "bf16"),
    ("fp16", True, True, "fp16"),
    ("fp16", True, False, "fp16"),
])
def test_resolve_precision(precision, cuda, bf16, expected):
    assert resolve_precision(precision, cuda, bf16) == expected


@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16"])
def test_gpu_precision_on_cpu_is_an_error(precision):
    with pytest.raises(ConfigError, match=rf"^model\.precision: {precision} needs a CUDA GPU"):
        resolve_precision(precision, cuda_available=False, bf16_supported=False)


# --------------------------------------------------------------------------- resources


@pytest.mark.parametrize(("name", "expected"), [
    ("bert-base-uncased", "bert-base-uncased"),
    ("google/bert_uncased_L-2_H-128_A-2", "google--bert_uncased_L-2_H-128_A-2"),
    ("org/model v1.0", "org--model--v1.0"),
    ("/leading/", "leading"),
])
def test_slug(name, expected):
    assert res.slug(name) == expected


def test_model_location(config):
    assert res.model_location(config) == ("resources/models/google-bert--bert-base-uncased", False)
    config["cache_dir"] = "/data/cache"
    config["model"]["name"] = "google/bert_uncased_L-2_H-128_A-2"
    assert res.model_location(config) == ("/data/cache/models/google--bert_uncased_L-2_H-128_A-2", False)
    config["model"]["path"] = "/models/bert"
    assert res.model_location(config) == ("/models/bert", True)


def test_dataset_location(config):
    assert res.dataset_location(config, "IMDB") == ("resources/datasets/IMDB/stanfordnlp--imdb", False)
    config["datasets"]["IMDB"]["source"]["hf"]["path"] = "/data/imdb"
    assert res.dataset_location(config, "IMDB") == ("/data/imdb", True)
    config["datasets"]["MR"]["source"] = {"local": {"format": "rt-polarity", "files": {"pos": "p", "neg": "n"}}}
    assert res.dataset_location(config, "MR") == (None, True)


def test_needs_network(config, tmp_path):
    assert res.needs_network(config)
    config["model"]["path"] = "/models/bert"
    assert res.needs_network(config)  # the hub datasets still need fetching
    for name, ds in config["datasets"].items():
        ds["source"]["hf"]["path"] = f"/data/{name}"
    assert not res.needs_network(config)
    config["model"]["path"] = None
    assert res.needs_network(config)
    data = {k: tmp_path / k for k in ("tiny_train", "tiny_test", "mr_pos", "mr_neg", "yelp")}
    assert not res.needs_network(tiny_config(tmp_path / "model", data, tmp_path / "resources"))


def test_require_local(tmp_path):
    assert res.require_local(tmp_path, "model.path") == tmp_path
    with pytest.raises(res.ResourceError, match=r"^model\.path: .*nothere does not exist"):
        res.require_local(tmp_path / "nothere", "model.path")


def test_require_model_folder_names_what_is_missing(tmp_path, tiny_model):
    assert res.require_model_folder(tiny_model, "model.path") == tiny_model
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(res.ResourceError) as err:
        res.require_model_folder(empty, "model.path")
    assert str(err.value).startswith(
        f"model.path: {empty} is not a complete model folder: missing config.json (the model's configuration); the "
        "weights (model.safetensors, pytorch_model.bin, or a sharded model.safetensors.index.json with its shards); "
        "a tokenizer (tokenizer.json, or vocab.txt, vocab.json + merges.txt, or a SentencePiece"), err.value
    assert "Set `model.path` to a folder written by save_pretrained" in str(err.value)

    no_weights = tmp_path / "no_weights"
    shutil.copytree(tiny_model, no_weights, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    with pytest.raises(res.ResourceError, match=r"missing the weights \(model\.safetensors, [^;]*\)\. Set"):
        res.require_model_folder(no_weights, "model.path")

    sharded = tmp_path / "sharded"
    shutil.copytree(no_weights, sharded)
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(res.ResourceError, match=r"missing model-00002-of-00002\.safetensors \(listed in model\."
                                                r"safetensors\.index\.json\)\. Set"):
        res.require_model_folder(sharded, "model.path")

    sentencepiece = tmp_path / "sentencepiece"
    shutil.copytree(tiny_model, sentencepiece, ignore=shutil.ignore_patterns("tokenizer*", "vocab*"))
    (sentencepiece / "spiece.model").write_bytes(b"")
    assert res.require_model_folder(sentencepiece, "model.path") == sentencepiece
    with pytest.raises(res.ResourceError, match=r"model\.path: .*config\.json is a file; set `model\.path` to the "):
        res.require_model_folder(tiny_model / "config.json", "model.path")
    with pytest.raises(res.ResourceError, match=r"^model\.path: .*nothere does not exist"):
        res.require_model_folder(tmp_path / "nothere", "model.path")


def test_path_errors_name_the_folder_a_relative_path_was_resolved_against(tmp_path, monkeypatch, tiny_model):
    """Relative paths resolve against the working directory (Snakemake's -d): the error says so, and points out the
    config file beside which the path does exist."""
    work, layer = tmp_path / "work", tmp_path / "layer"
    work.mkdir()
    shutil.copytree(tiny_model, layer / "tiny")
    monkeypatch.chdir(work)
    cwd = os.getcwd()
    monkeypatch.setattr(res, "CONFIG_FILES", [work / "config.yaml", layer / "local.yaml"])
    with pytest.raises(res.ResourceError) as err:
        res.require_model_folder("tiny", "model.path")
    assert str(err.value) == (
        f"model.path: tiny (resolved against the working directory {cwd}, Snakemake's -d) does not exist; "
        f"{layer / 'tiny'} does, beside {layer / 'local.yaml'}, but paths in config files are relative to the working "
        "directory: write it as an absolute path. Set `model.path` to an existing local copy, or unset it to let the "
        "workflow download it.")
    (work / "tiny").mkdir()  # found, but not a model folder: still named with its folder
    with pytest.raises(res.ResourceError, match=rf"^model\.path: tiny \(resolved against the working directory "
                                                rf"{re.escape(cwd)}, Snakemake's -d\) is not a complete model folder"):
        res.require_model_folder("tiny", "model.path")
    assert res.resolved(work / "tiny") == str(work / "tiny")  # absolute: nothing to resolve


def test_missing_local_dataset_file_is_named_at_start_up(tmp_path, tiny_data):
    config = tiny_config(tmp_path / "model", tiny_data, tmp_path / "resources")
    res.require_dataset_files(config, ["IMDB", "MR", "YELP"])
    config["datasets"]["MR"]["source"]["local"]["files"]["neg"] = str(tmp_path / "nothere.neg")
    res.require_dataset_files(config, ["IMDB", "YELP"])  # MR is not in this run
    with pytest.raises(res.ResourceError) as err:
        res.require_dataset_files(config, ["IMDB", "MR"])
    assert str(err.value) == (f"datasets.MR.source.local.files.neg: {tmp_path / 'nothere.neg'} does not exist. Set "
                              "`datasets.MR.source.local.files.neg` to an existing file.")


def test_lca_local_inputs_are_the_paths_checked_at_start_up():
    from advtrain.lca import settings

    local = {"methods": ["BERT"], "data": {"source": "local", "files": {"train": "a.txt", "test": "b.txt"}}}
    assert settings.local_paths({"lca": local}) == {"lca.data.files.train": "a.txt", "lca.data.files.test": "b.txt"}
    treebank = {"methods": ["BERT"], "data": {"source": "treebank", "nltk_data": "nltk", "files": {"all": "x"}}}
    assert settings.local_paths({"lca": treebank}) == {"lca.data.nltk_data": "nltk"}
    assert settings.local_paths({"lca": {**treebank, "methods": []}}) == {}  # no tagger: nothing read


@pytest.mark.parametrize(("kind", "make", "message"), [
    ("nltk_data", lambda p: p.mkdir(), r"not an NLTK data folder .*: NLTK package\(s\) stopwords, averaged_"
     r"perceptron_tagger_eng, universal_tagset not found in it"),
    ("word_embedding", lambda p: (p.mkdir(), (p / "paragram.npy").touch()), r"missing wordlist\.pickle, nn\.npy"),
    ("sentence_encoder", lambda p: p.mkdir(), r"expected a folder with modules\.json"),
    ("masked_lm", lambda p: p.mkdir(), r"not a complete model folder: missing config\.json"),
    ("causal_lm", lambda p: p.mkdir(), r"not a complete model folder: missing config\.json"),
    ("hownet", lambda p: p.mkdir(), r"expected the file itself, not a folder"),
    ("flair_pos", lambda p: p.mkdir(), r"expected one pytorch_model\.bin or \*\.pt model file"),
    ("use", lambda p: p.mkdir(), r"expected a TF SavedModel folder with saved_model\.pb"),
])
def test_local_attack_resources_are_checked_at_start_up(tmp_path, kind, make, message):
    """What the loaders would find wrong in a job, found by looking at the files (nothing loaded or imported)."""
    from advtrain.attacks import resources as attack_res

    path = tmp_path / kind
    make(path)
    with pytest.raises(res.ResourceError, match=rf"^attacks\.resources\.{kind}: {re.escape(str(path))} is .*{message}"):
        attack_res.check_local(kind, path)


def test_a_complete_nltk_data_folder_passes_the_start_up_check(tmp_path):
    from advtrain.attacks import resources as attack_res

    for location in attack_res.NLTK_PACKAGES.values():  # zips or unpacked folders, as NLTK reads them
        (tmp_path / location).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{location}.zip").touch()
    assert attack_res.check_local("nltk_data", tmp_path) == tmp_path


# --------------------------------------------------------------------------- through snakemake


def parse_dry_run(output: str) -> tuple[dict[str, int], list[tuple[str, dict[str, str]]]]:
    """(job counts from the first "Job stats" table, [(rule, wildcards)] of the listed jobs)."""
    counts: dict[str, int] = {}
    table = output.split("Job stats:", 1)[1].splitlines()
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts, planned_jobs(output)


@pytest.fixture()
def tiny_bad_workdir(tmp_path, tiny_model, tiny_data):
    """A tiny config of the tiny model (a folder with config, weights and tokenizer: checked at start-up)."""
    return tmp_path, tiny_config(tiny_model, tiny_data, tmp_path / "resources")


def test_snakemake_dry_run_tiny_config_control(tiny_bad_workdir):
    workdir, config = tiny_bad_workdir
    write_config(workdir, config)
    proc = run_snakemake(workdir, "-n", "--cores", "1", check=False, cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts, _ = parse_dry_run(proc.stdout + proc.stderr)
    assert counts["train"] == 4


@pytest.mark.parametrize(("path", "value", "key"), [
    (("model", "learning_rate"), -1e-5, "model.learning_rate"),
    (("run", "datasets"), ["IMDB", "SST2"], "run.datasets[1]"),
    (("methods", "PGD"), {"mixup": {"kind": "synonym"}}, "methods.PGD.mixup"),
], ids=["negative-learning-rate", "unknown-dataset-in-run", "unknown-method-part"])
def test_snakemake_dry_run_stops_on_bad_config(tiny_bad_workdir, path, value, key):
    workdir, config = tiny_bad_workdir
    write_config(workdir, edit(config, path, value))
    proc = run_snakemake(workdir, "-n", "--cores", "1", check=False, cwd=workdir)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "Invalid configuration" in output
    assert f"{key}:" in output, output[-3000:]
    assert "Job stats" not in output
    assert not re.search(r"^(local)?rule \S+:$", output, re.M)
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_snakemake_dry_run_stops_on_an_empty_model_folder(tiny_bad_workdir):
    """An empty model.path stops the run at start-up naming the key, the folder and what it lacks (it used to start
    the data jobs and fail each train job with "'NoneType' object has no attribute 'endswith'")."""
    workdir, config = tiny_bad_workdir
    (workdir / "empty_model").mkdir()
    write_config(workdir, edit(config, ("model", "path"), str(workdir / "empty_model")))
    proc = run_snakemake(workdir, "-n", "--cores", "1", check=False, cwd=workdir)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert f"model.path: {workdir / 'empty_model'} is not a complete model folder: missing config.json" in output
    assert "Job stats" not in output and planned_jobs(output) == []
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_snakemake_dry_run_repo_config(tmp_path, repo_config):
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "all", "-s", str(REPO / "Snakefile"),
           "-d", str(tmp_path), "--configfile", str(REPO / "config.yaml")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]

    counts, jobs = parse_dry_run(output)
    trained, methods, seeds = repo_config["run"]["datasets"], repo_config["methods"], repo_config["seeds"]
    assert trained == ["IMDB", "MR"]
    runs = len(trained) * len(methods) * len(seeds)
    expected = {"fetch_model": 1, "fetch_dataset": len(repo_config["datasets"]), "prepare_training_dataset": 2,
                "train": runs, "evaluate": runs, "table4_accuracy": 1}
    assert {k: counts.get(k) for k in expected} == expected, counts

    listed = {rule for rule, _ in jobs}
    assert set(expected) <= listed
    for rule in ("prepare_training_dataset", "train", "evaluate"):
        assert {w["dataset"] for r, w in jobs if r == rule} == {"IMDB", "MR"}, rule
    assert {w["dataset"] for r, w in jobs if r == "fetch_dataset"} == {"IMDB", "MR", "YELP"}
    assert {(w["method"], int(w["seed"])) for r, w in jobs if r == "train"} == {
        (m, s) for m in methods for s in seeds}
    assert not (tmp_path / "results").exists()  # a dry-run starts nothing


def test_local_source_wins_over_hub_source(config):
    """A local-data config layered over config.yaml leaves both sources; the local files are used."""
    ds = config["datasets"]["IMDB"]
    ds["source"]["local"] = {"format": "csv", "files": {"train": "a.csv", "test": "b.csv"}}
    assert effective_source(ds) == ("local", ds["source"]["local"])
    assert res.dataset_location(config, "IMDB") == (None, True)


# --------------------------------------------------------------------------- the one configuration pass


def validated(config: dict) -> dict:
    """``config`` as the workflow reads it: checked against the schema by Snakemake, which fills its defaults."""
    from snakemake.utils import validate

    validate(config, schema=str(SCHEMA))
    return config


def test_config_check_reports_every_problem_at_once(config, tmp_path):
    """One pass, one error: each problem a line naming its key or file, in the order the workflow reads them."""
    from advtrain import config_check

    config = validated(config)
    assert config_check.problems(copy.deepcopy(config)) == []
    config["run"]["methods"] = ["BERT", "FGSM"]
    config["toy"]["x_low"] = 5.0
    config["methods"]["SSMBA"]["augment"]["augmenters"] = ["ssmba", "eda"]
    config["lca"]["methods"] = ["PGD-AT", "A2T"]
    config["attacks"]["resources"]["hownet"] = str(tmp_path / "missing.pkl")
    with pytest.raises(ConfigError) as err:
        config_check.check(config)
    lines = str(err.value).splitlines()
    keys = ["run.methods[1]:", "toy.x_low:", "attacks.resources.hownet", "methods.SSMBA.augment.augmenters[1]:",
            "lca.methods[1]:"]
    found = [next((i for i, line in enumerate(lines) if key in line), None) for key in keys]
    assert None not in found and found == sorted(found), str(err.value)


def test_validation_fills_the_schema_defaults_of_absent_blocks(config):
    """The rule files read attacks/augmentation/lca/devices/statistics settings without a fallback: Snakemake's
    validation writes the schema's defaults, nested ones of an absent block too."""
    for block in ("attacks", "augmentation", "lca", "devices", "statistics"):
        config.pop(block, None)
    config = validated(config)
    assert config["attacks"]["num_examples"] == 1000 and config["attacks"]["recipes"] == []
    assert config["attacks"]["pso_search"] == "textattack-0.3.8" and config["attacks"]["query_budget"] is None
    assert config["augmentation"]["shards"] == 4 and config["devices"]["attack_shards_per_gpu"] == 1
    assert config["lca"]["data"]["source"] == "treebank" and config["lca"]["pooling"] == "last"
    assert config["lca"]["batch_size"] == 64 and config["statistics"]["confidence"] == 0.95


def test_adversarial_input_defaults_are_the_schemas_and_stay_out_of_the_config(config):
    """input_schedule.DEFAULTS are the schema's `x-default`s; validation leaves a method's part as written (its train
    params, and so its jobs, do not change)."""
    from advtrain.training import input_schedule

    schema = yaml.safe_load(SCHEMA.read_text())
    properties = schema["$defs"]["adversarial_input"]["properties"]
    assert input_schedule.DEFAULTS == {k: v["x-default"] for k, v in properties.items() if k != "recipe"}
    assert input_schedule.DEFAULTS["fraction"] == 0.2 and input_schedule.DEFAULTS["seed"] == 765
    written = copy.deepcopy(config["methods"]["A2T"]["adversarial_input"])
    assert validated(config)["methods"]["A2T"]["adversarial_input"] == written


def test_resource_needs_follow_the_configured_resources():
    from advtrain import resource_needs

    resources = {"nltk_data": ("cache/nltk", False), "word_embedding": ("cache/we", False),
                 "word_neighbours": ("local/neighbours.json", True), "sentence_encoder": ("cache/se", False),
                 "use": (None, False), "masked_lm": ("models/bert", False), "hownet": ("cache/h", False),
                 "flair_pos": ("cache/f", False), "causal_lm": ("cache/lm", False)}
    # A local word_neighbours file stands in for the word embedding (not configured locally).
    assert resource_needs.recipe_kinds("textfooler", resources) == ["nltk_data", "word_neighbours", "sentence_encoder"]
    assert resource_needs.attack_kinds(["pso", "a2t_mlm"], resources) == [
        "nltk_data", "hownet", "flair_pos", "masked_lm", "sentence_encoder", "causal_lm"]
    assert resource_needs.attack_kinds([], resources) == []
    # The masked LM that is the pretrained model's folder is fetched by fetch_model, not as an attack resource.
    assert not resource_needs.fetch_needed(["masked_lm", "word_neighbours"], resources, "models/bert")
    assert resource_needs.fetch_needed(["masked_lm"], resources, "models/other")


def test_a_methods_family_is_validated_and_not_trained(config):
    """`methods.<m>.family` groups a method in the claims table (advtrain.claims): the schema takes a name, training
    (method_spec, the train rule's params) never sees it; `claims` defaults to the paper's claims file."""
    before = method_spec(config, "ALUM")
    config["methods"]["ALUM"]["family"] = "other"
    assert explain_validation_errors(config, SCHEMA) == ""
    assert method_spec(config, "ALUM") == before
    config["methods"]["ALUM"]["family"] = ""
    assert lines_for(explain_validation_errors(config, SCHEMA), "methods.ALUM.family")
    config["methods"]["ALUM"]["family"] = "other"
    config.pop("claims", None)
    assert validated(config)["claims"] == "config/claims.yaml"
