"""Offline augmentation (AT-DA): SSMBA's noising statistics, label/source preservation, shard invariance, long
reviews translated whole, the augment part's config, and the workflow's augmentation jobs (dry run)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, synthetic_reviews

from advtrain import augment
from advtrain.augment import backtranslation as bt
from advtrain.augment import shards, ssmba
from advtrain.config import ConfigError, explain_validation_errors

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the CI machine's two cores are shared, and contended threads slow generation tenfold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rows(n: int, seed: int = 5) -> pd.DataFrame:
    return shards.shard_rows(pd.DataFrame(synthetic_reviews(n, seed), columns=["text", "label"]), 0, 1)


def long_review(sentences: int = 30) -> str:
    return " ".join(f"{text}." for text, _ in synthetic_reviews(sentences, seed=9))


# ---------------------------------------------------------------------------- SSMBA noising


def test_noising_statistics_match_the_configured_probabilities():
    rng = np.random.default_rng(0)
    pool = np.arange(10, 300)
    counts = np.zeros(4)
    for _ in range(2000):
        ids = rng.integers(10, 300, size=rng.integers(5, 60))
        noised, actions = ssmba.noise(ids, rng, 0.15, 0.1, 0.1, mask_id=4, random_pool=pool)
        counts += np.bincount(actions, minlength=4)
        assert (noised[actions == ssmba.MASKED] == 4).all()
        assert (noised[actions == ssmba.UNTOUCHED] == ids[actions == ssmba.UNTOUCHED]).all()
        assert (noised[actions == ssmba.KEPT] == ids[actions == ssmba.KEPT]).all()
        assert np.isin(noised[actions == ssmba.RANDOM], pool).all()
        # The reference's count: floor(p * n + U) tokens selected in every sequence.
        assert (actions != ssmba.UNTOUCHED).sum() in (int(0.15 * len(ids)), int(0.15 * len(ids)) + 1)
    total, selected = counts.sum(), counts[1:].sum()
    assert total > 50_000
    assert selected / total == pytest.approx(0.15, abs=0.003)
    assert counts[ssmba.MASKED] / selected == pytest.approx(0.8, abs=0.015)
    assert counts[ssmba.RANDOM] / selected == pytest.approx(0.1, abs=0.01)
    assert counts[ssmba.KEPT] / selected == pytest.approx(0.1, abs=0.01)


def test_bad_ssmba_settings_name_the_key():
    with pytest.raises(ValueError, match="augmentation.augmenters.x: random_token_prob"):
        ssmba.check_settings({"random_token_prob": 0.6, "leave_unmasked_prob": 0.5}, "augmentation.augmenters.x")
    with pytest.raises(ValueError, match=r"\.topk"):
        ssmba.check_settings({"topk": 0}, "k")


# ---------------------------------------------------------------------------- SSMBA with the tiny MLM


@pytest.fixture(scope="module")
def ssmba_output(tiny_model):
    data = rows(60)
    out, summary = augment.augment_shard("ssmba", {"kind": "ssmba", "samples": 2, "seed": 3},
                                         {"model": str(tiny_model)}, data, augmenter="ssmba")
    return data, out, summary


def test_ssmba_keeps_labels_and_source_ids(ssmba_output):
    data, out, summary = ssmba_output
    assert list(out.columns) == ["text", "label", "source_id"]
    assert len(out) > len(data)  # two samples per input, a few may give up
    labels = data.set_index("source_id")["label"]
    assert (out["label"].to_numpy() == labels.loc[out["source_id"]].to_numpy()).all()
    assert out["source_id"].is_monotonic_increasing
    # Rejected: identical to the input or to an earlier sample of it.
    assert summary["identical_to_input"] == 0
    assert not out.duplicated(["source_id", "text"]).any()
    assert summary["rows"] == len(out) and summary["rows_per_second"] > 0
    stats = summary["stats"]
    assert stats["masked"] / (stats["masked"] + stats["random"] + stats["kept"]) > 0.6


def test_ssmba_sharded_output_equals_unsharded(tiny_model, ssmba_output):
    data, whole, _ = ssmba_output
    parts = []
    for index in range(3):
        part = shards.shard_rows(data[["text", "label"]], index, 3)
        parts.append(augment.augment_shard("ssmba", {"samples": 2, "seed": 3}, {"model": str(tiny_model)}, part)[0])
    pd.testing.assert_frame_equal(shards.gather(parts), whole)


def test_ssmba_reconstructs_reviews_longer_than_the_window(tiny_model):
    tiny = ssmba.SSMBA(str(tiny_model), {"seed": 1})
    text = long_review()
    n_tokens = len(tiny.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_tokens > 2 * tiny.window
    out = tiny.augment(pd.DataFrame({"text": [text], "label": [1], "source_id": [0]}))
    assert tiny.stats["windows"] >= 3
    # Token-for-token resampling: the reconstruction is as long as the review, not cut at the window.
    assert len(out) == 1 and abs(len(out["text"][0].split()) - len(text.split())) < 0.1 * len(text.split())


def test_ssmba_skips_inputs_shorter_than_min_length(tiny_model):
    tiny = ssmba.SSMBA(str(tiny_model), {"min_length": 3})
    out = tiny.augment(pd.DataFrame({"text": ["good", "the movie was good and fun"], "label": [1, 1],
                                     "source_id": [0, 1]}))
    assert tiny.stats["too_short"] == 1 and set(out["source_id"]) <= {1}


# ---------------------------------------------------------------------------- back-translation


def word_count(texts):
    return [len(t.split()) for t in texts]


def test_sentences_and_chunks_cover_the_text_within_the_limit():
    text = "First one. Second, with a <br /><br />break! A very " + "long " * 40 + "sentence? Last."
    assert bt.split_sentences("A b. C d!<br />E f? \"G.\" H") == ["A b.", "C d!", "E f?", '"G."', "H"]
    chunks = bt.chunk_text(text, word_count, limit=8)
    assert all(n <= 8 for n in word_count(chunks)) and len(chunks) > 5
    assert " ".join(chunks).split() == re.sub(r"<br\s*/?>", " ", text).split()


def test_chunks_are_recounted_exactly():
    # A counter that is not additive (a pair costs more than its parts): over-limit chunks are halved.
    def count(texts):
        return [len(t.split()) + (3 if len(t.split()) > 4 else 0) for t in texts]

    chunks = bt.chunk_text("a b c. d e f. g h i. j k l.", count, limit=6)
    assert all(n <= 6 for n in count(chunks)) and " ".join(chunks).split() == "a b c. d e f. g h i. j k l.".split()


def test_bad_backtranslation_settings_name_the_key():
    with pytest.raises(ValueError, match=r"bt\.samples"):
        bt.check_settings({"do_sample": False, "samples": 2}, "bt")


def test_backtranslation_samples_as_a2t_did():
    """TextAttack-A2T's augmenters.py calls ``generate(input_ids, do_sample=True, temperature=0.8)`` on FSMT wmt19;
    the rest of the settings come from the model's config (FSMT's num_beams 5) and transformers' defaults (top_k 50).
    """
    from transformers import FSMTConfig, GenerationConfig

    a2t = GenerationConfig.from_model_config(FSMTConfig())
    a2t.update(do_sample=True, temperature=0.8)
    ours = bt.check_settings({}, "bt")
    assert {k: ours[k] for k in ("do_sample", "num_beams", "temperature", "top_k", "top_p")} == {
        "do_sample": a2t.do_sample, "num_beams": a2t.num_beams, "temperature": a2t.temperature, "top_k": a2t.top_k,
        "top_p": a2t.top_p}
    assert ours["num_beams"] == 5 and ours["top_k"] == 50


def test_seeded_beam_selection_samples_without_replacement():
    """The top-k of scores + Gumbel noise (SeededBeamSampling) draws k items without replacement from softmax(scores),
    as transformers' ``torch.multinomial(softmax(scores), k)`` does: the ordered pairs' frequencies match."""
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    draws = 8000
    counts = torch.zeros(4, 4)
    sampler = bt.SeededBeamSampling(types.SimpleNamespace(_get_top_k_continuations=None), [0], torch.device("cpu"))

    def library(accumulated_log_probs, beams_to_keep, do_sample, **_):
        assert do_sample is False
        top = torch.topk(accumulated_log_probs, beams_to_keep)
        return top.values, top.indices, None

    for _ in range(draws):
        kept, chosen, _ = sampler._select(library, scores, beams_to_keep=2, do_sample=True)
        torch.testing.assert_close(kept, scores.gather(1, chosen))  # the scores carry on without the noise
        counts[chosen[0, 0], chosen[0, 1]] += 1
    p = scores.exp()[0]
    expected = torch.tensor([[0.0 if i == j else float(p[i] * p[j] / (1 - p[i])) for j in range(4)] for i in range(4)])
    assert torch.allclose(counts / draws, expected, atol=0.02), counts / draws


BT_FAST = {"kind": "backtranslation", "max_new_tokens": 12, "batch_size": 8, "seed": 2}


def test_long_review_is_translated_whole(tiny_marian, monkeypatch):
    """With an identity translator the rejoined output is the review; with the tiny Marian nothing is cut."""
    back = bt.BackTranslation(str(tiny_marian["forward"]), str(tiny_marian["backward"]), BT_FAST)
    text = long_review()
    limit = back.forward.max_source
    assert limit == 64 and len(back.forward.tokenizer(text)["input_ids"]) > 4 * limit
    frame = pd.DataFrame({"text": [text], "label": [0], "source_id": [7]})
    out = back.augment(frame)
    assert back.stats["forward_truncated_inputs"] == 0 and back.stats["chunks"] > 4
    assert out["text"][0] and list(out["source_id"]) == [7]

    identity = bt.BackTranslation.__new__(bt.BackTranslation)
    identity.__dict__.update(back.__dict__, stats={"chunks": 0, "multi_chunk_inputs": 0, "empty_inputs": 0})
    monkeypatch.setattr(bt.Translator, "translate", lambda self, texts, seeds, desc: (list(texts), {}))
    assert identity.augment(frame)["text"][0].split() == text.split()


def test_backtranslation_labels_sources_and_shards(tiny_marian):
    data = rows(12)
    models = {k: str(v) for k, v in tiny_marian.items()}
    whole, summary = augment.augment_shard("backtranslation", BT_FAST, models, data, augmenter="bt")
    assert list(whole["source_id"]) == list(data["source_id"])
    assert list(whole["label"]) == list(data["label"])
    assert summary["rows"] == 12 and summary["identical_pct"] is not None
    parts = [augment.augment_shard("backtranslation", BT_FAST, models,
                                   shards.shard_rows(data[["text", "label"]], i, 2))[0] for i in range(2)]
    pd.testing.assert_frame_equal(shards.gather(parts), whole)
    # Another seed samples other translations; beam search is deterministic and needs no seed.
    other, _ = augment.augment_shard("backtranslation", {**BT_FAST, "seed": 3}, models, data)
    assert list(other["text"]) != list(whole["text"])
    # Sampling without beams is batch-independent too, and draws other translations than beam sampling.
    one_beam = {**BT_FAST, "num_beams": 1, "top_k": 0}
    single, _ = augment.augment_shard("backtranslation", one_beam, models, data)
    parts = [augment.augment_shard("backtranslation", one_beam, models,
                                   shards.shard_rows(data[["text", "label"]], i, 2))[0] for i in range(2)]
    pd.testing.assert_frame_equal(shards.gather(parts), single)
    assert list(single["text"]) != list(whole["text"])
    beams = {**BT_FAST, "do_sample": False, "num_beams": 2}
    first, _ = augment.augment_shard("backtranslation", beams, models, data.head(3))
    again, _ = augment.augment_shard("backtranslation", {**beams, "seed": 9}, models, data.head(3))
    pd.testing.assert_frame_equal(first, again)


# ---------------------------------------------------------------------------- shards, summaries, training data


def test_shards_partition_the_split():
    data = rows(10)[["text", "label"]]
    parts = [shards.shard_rows(data, i, 3) for i in range(3)]
    assert sorted(int(s) for p in parts for s in p["source_id"]) == list(range(10))
    assert shards.parse_scatteritem("2-of-3") == (1, 3)
    with pytest.raises(ValueError):
        shards.parse_scatteritem("4-of-3")


def test_gathered_summary_sums_the_shards():
    out = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0], "source_id": [0, 1, 2]})
    parts = [{"inputs": 2, "rows": 2, "seconds": 1.0, "identical_to_input": 1, "stats": {"chunks": 3}, "kind": "x"},
             {"inputs": 1, "rows": 1, "seconds": 2.0, "identical_to_input": 0, "stats": {"chunks": 1}, "kind": "x"}]
    summary = shards.gather_summaries(parts, out)
    assert summary["rows"] == 3 and summary["seconds"] == 3.0 and summary["rows_per_second"] == 1.0
    assert summary["identical_pct"] == pytest.approx(100 / 3) and summary["stats"] == {"chunks": 4}


def a2t_augmented_rows(augmented: pd.DataFrame, pct_of_augmented: float, seed: int) -> pd.DataFrame:
    """TextAttack-A2T's train.py (QData/TextAttack-A2T, main(): the `args.augmented_data` branch) restated on a
    frame, with the module generator seeded first (A2T leaves it unseeded)."""
    import math
    import random

    random.seed(seed)
    sampled_indices = list(range(len(augmented)))
    random.shuffle(sampled_indices)
    sampled_indices = sampled_indices[: math.ceil(len(sampled_indices) * pct_of_augmented)]
    return augmented.iloc[sampled_indices]


def test_training_frame_adds_a2ts_sample_of_the_augmented_rows(tmp_path):
    train = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "label": [i % 2 for i in range(10)]})
    train.to_parquet(tmp_path / "train.parquet")
    aug = pd.DataFrame({"text": [f"a{i}" for i in range(23)], "label": [i % 2 for i in range(23)],
                        "source_id": range(23)})
    aug.to_parquet(tmp_path / "ssmba.parquet")

    def frame(**part):
        return augment.training_frame(tmp_path / "train.parquet", [tmp_path / "ssmba.parquet"],
                                      {"augmenters": ["ssmba"], **part})

    # The default is A2T's --pct-of-augmented 0.2: ceil(0.2 * 23) = 5 rows, the ones A2T's shuffle keeps, in its order.
    default = frame()
    assert list(default.columns) == ["text", "label"] and len(default) == 10 + 5
    assert default.iloc[:10].equals(train)
    for fraction, seed in ((0.2, 0), (0.5, 1), (0.37, 7), (1.0, 3)):
        ours = frame(fraction=fraction, seed=seed)
        theirs = a2t_augmented_rows(aug, fraction, seed)
        assert list(ours["text"][10:]) == list(theirs["text"]), (fraction, seed)
        assert list(ours["label"][10:]) == list(theirs["label"])
    assert list(default["text"][10:]) == list(a2t_augmented_rows(aug, 0.2, 0)["text"])
    assert frame(fraction=0.5, seed=1).equals(frame(fraction=0.5, seed=1))
    assert len(augment.training_frame(tmp_path / "train.parquet", [], None)) == 10


# ---------------------------------------------------------------------------- config


@pytest.fixture()
def repo_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_repo_config_has_the_papers_at_da_methods(repo_config):
    assert repo_config["methods"]["SSMBA"]["augment"]["augmenters"] == ["ssmba"]
    assert repo_config["methods"]["BackTranslation"]["augment"]["augmenters"] == ["backtranslation"]
    augment.check_config(repo_config)
    assert augment.model_location(repo_config, "ssmba", "model") == (
        "resources/models/google-bert--bert-base-uncased", False)
    assert augment.model_location(repo_config, "backtranslation", "forward") == (
        "resources/augment/Helsinki-NLP--opus-mt-en-de", False)
    local = copy.deepcopy(repo_config)
    local["augmentation"]["augmenters"]["backtranslation"]["backward"]["path"] = "/models/de-en"
    assert augment.model_location(local, "backtranslation", "backward") == ("/models/de-en", True)


@pytest.mark.parametrize("path, value, key", [
    (("methods", "SSMBA", "augment", "fraction"), 1.5, "methods.SSMBA.augment.fraction"),
    (("methods", "SSMBA", "augment", "augmentors"), ["ssmba"], "methods.SSMBA.augment.augmentors"),
    (("augmentation", "augmenters", "ssmba", "noise_prob"), 2, "augmentation.augmenters.ssmba.noise_prob"),
    (("augmentation", "augmenters", "ssmba", "top_k"), 5, "augmentation.augmenters.ssmba.top_k"),
    (("augmentation", "augmenters", "backtranslation", "temprature"), 0.8,
     "augmentation.augmenters.backtranslation.temprature"),
    (("augmentation", "augmenters", "backtranslation", "kind"), "eda", "augmentation.augmenters.backtranslation.kind"),
    (("augmentation", "shards"), 0, "augmentation.shards"),
])
def test_schema_names_the_bad_augmentation_key(repo_config, path, value, key):
    node = repo_config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert f"{key}:" in explain_validation_errors(repo_config, SCHEMA)


def test_only_the_selected_methods_augmenters_are_fetched(repo_config):
    """The fetch map (fetch_augment_model's wildcard values): the hub models of the augmenters the selected methods
    use, without a local path, other than the pretrained model's folder (the SSMBA MLM here)."""
    assert augment.used_augmenters(repo_config, ["BERT", "SSMBA"]) == ["ssmba"]
    assert augment.fetch_targets(repo_config, ["BERT", "SSMBA"]) == {}
    assert augment.fetch_targets(repo_config, ["BackTranslation"]) == {
        "Helsinki-NLP--opus-mt-en-de": ("Helsinki-NLP/opus-mt-en-de", "augmentation.augmenters.backtranslation.forward"),
        "Helsinki-NLP--opus-mt-de-en": ("Helsinki-NLP/opus-mt-de-en", "augmentation.augmenters.backtranslation.backward"),
    }
    repo_config["augmentation"]["augmenters"]["backtranslation"]["backward"]["path"] = "/models/de-en"
    assert list(augment.fetch_targets(repo_config, ["BackTranslation"])) == ["Helsinki-NLP--opus-mt-en-de"]


def test_unknown_augmenters_are_all_named(repo_config):
    repo_config["methods"]["SSMBA"]["augment"]["augmenters"] = ["ssmbaa"]
    repo_config["methods"]["BackTranslation"]["augment"]["augmenters"] = ["backtranslation", "bt"]
    with pytest.raises(ConfigError) as err:
        augment.check_config(repo_config)
    assert str(err.value).splitlines() == [
        "methods.SSMBA.augment.augmenters[0]: unknown augmenter 'ssmbaa' (defined under `augmentation.augmenters`: "
        "ssmba, backtranslation)",
        "methods.BackTranslation.augment.augmenters[1]: unknown augmenter 'bt' (defined under "
        "`augmentation.augmenters`: ssmba, backtranslation)"]


def test_unknown_augmenter_names_the_method(repo_config):
    repo_config["methods"]["SSMBA"]["augment"]["augmenters"] = ["ssmbaa"]
    with pytest.raises(ConfigError, match=r"methods\.SSMBA\.augment\.augmenters\[0\]: unknown augmenter 'ssmbaa'"):
        augment.check_config(repo_config)


def test_missing_local_model_names_the_key(tiny_model):
    from advtrain.errors import ResourceError

    with pytest.raises(ResourceError, match=r"augmentation\.augmenters\.mlm\.model\.path"):
        augment.augment_shard("ssmba", {}, {"model": "/nowhere/mlm"}, rows(2), augmenter="mlm")


def test_dry_run_augments_only_for_the_at_da_methods(tmp_path):
    """`snakemake -n` on config.yaml: augmentation jobs per (dataset, augmenter, shard), read only by the train
    jobs of SSMBA and BackTranslation."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "all", "-s", str(REPO / "Snakefile"),
           "-d", str(tmp_path), "--configfile", str(REPO / "config.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    shards_n = config["augmentation"]["shards"]
    jobs = re.findall(r"^(?:local)?rule (\S+):\n((?:    .*\n)+)", out, re.M)
    shard_jobs = [body for rule, body in jobs if rule == "augment_shard"]
    assert len(shard_jobs) == 2 * 2 * shards_n  # IMDB, MR x ssmba, backtranslation
    fetched = [body for rule, body in jobs if rule == "fetch_augment_model"]
    assert sorted(re.search(r"output: (\S+)", b).group(1) for b in fetched) == [
        "resources/augment/Helsinki-NLP--opus-mt-de-en", "resources/augment/Helsinki-NLP--opus-mt-en-de"]
    readers = set()
    for rule, body in jobs:
        if rule != "train":
            continue
        method = re.search(r"method=([^,\n]+)", body).group(1)
        inputs = re.search(r"input: (.*)", body).group(1)
        augmented = re.findall(r"results/augment/\w+/(\w+)\.parquet", inputs)
        expected = ((config["methods"][method] or {}).get("augment") or {}).get("augmenters", [])
        assert augmented == expected, (method, inputs)
        if augmented:
            readers.add(method)
    # The paper's AT-DA methods, and the combination beyond the paper that builds on back-translation.
    assert readers == {"SSMBA", "BackTranslation", "BackTranslation_PGD-AT"}
    assert json.dumps(config["methods"])  # the config parsed and every method was checked above
