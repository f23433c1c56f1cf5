"""Linguistic Correlation Analysis: POS data, the tagger, activations, the probe's rankings and Tables 5-7."""

from __future__ import annotations

import json

import neurox_references as neurox
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import shared_data
from transformers import AutoTokenizer

from advtrain.data import DataError
from advtrain.lca import activations as acts
from advtrain.lca import probe as probes
from advtrain.lca.analysis import analyse, association, top_words
from advtrain.lca.pos_data import load_pos_data, read_tagged_file, summarise, tag_set
from advtrain.lca.tables import table5, table6, table7, write_table6

TAGS = ["DT", "JJ", "NN", "RB", "VBZ"]


def synthetic(n_words: int, seed: int, neurons: int = 12) -> dict:
    """Neuron k fires only on words of tag k (k < len(TAGS)); the others are noise. Tag k's words are t{k}w{i}."""
    rng = np.random.default_rng(seed)
    tags = rng.integers(0, len(TAGS), size=n_words)
    x = rng.normal(0.0, 0.3, size=(n_words, neurons))
    x[np.arange(n_words), tags] += 3.0
    words = np.array([f"t{t}w{rng.integers(0, 6)}" for t in tags])
    return {"activations": x.astype(np.float16), "words": words, "tags": tags.astype(np.int32),
            "layers": np.int32(2), "hidden_size": np.int32(neurons // 2)}


SETTINGS = {"probe": {"epochs": 10, "batch_size": 128, "learning_rate": 3e-2, "l1": 1e-2, "l2": 1e-4},
            "top_neurons": 1, "words_per_neuron": 4, "ablation_neurons": 5, "search_stride": 50}


def test_probe_ranks_the_firing_neuron_first_and_table5_matches_fully():
    train, test = synthetic(2000, 0), synthetic(400, 1)
    result = analyse(train, test, TAGS, SETTINGS, seed=0)
    assert result["probe_accuracy"] > 0.95
    for k, row in enumerate(result["association"]):
        assert row["neurons"][0] == k, row
        assert row["total"] == 4 and row["match"] == 4 and row["percent"] == 100.0
        assert all(w.startswith(f"t{k}w") for w in row["words"])
        assert row["usual_tag_words"] == row["words"]
    # The top-5 ranked neurons overall are the five firing ones; a probe on them alone keeps the accuracy.
    assert sorted(result["top_ranked_neurons"]) == sorted(f"L{k // 6}:{k % 6}" for k in range(5))
    assert result["ablation_accuracy"] > 0.95


def test_same_seed_same_ranking_and_ablation_keeps_only_the_chosen_neurons(monkeypatch):
    train, test = synthetic(1500, 2), synthetic(300, 3)
    a = probes.train_probe(train["activations"], train["tags"], len(TAGS), seed=7, epochs=2)
    b = probes.train_probe(train["activations"], train["tags"], len(TAGS), seed=7, epochs=2)
    assert np.array_equal(probes.weights(a), probes.weights(b))
    assert np.array_equal(probes.neuron_ordering(probes.weights(a)), probes.neuron_ordering(probes.weights(b)))
    seen = {}
    real = probes.train_probe

    def spy(x, y, classes, **kwargs):
        seen["shape"] = x.shape
        return real(x, y, classes, **kwargs)

    monkeypatch.setattr(probes, "train_probe", spy)
    probes.ablation_accuracy(train["activations"], train["tags"], test["activations"], test["tags"],
                             np.array([3, 0]), len(TAGS), epochs=1)
    assert seen["shape"] == (1500, 2)
    # Only neuron 0 kept: the probe can tell tag 0 from the rest and nothing else.
    acc = probes.ablation_accuracy(train["activations"], train["tags"], test["activations"], test["tags"],
                                   np.array([0]), len(TAGS), epochs=3, learning_rate=1e-2)
    assert acc < 0.6


def test_probe_training_is_neuroxs():
    """NeuroX 1.0.9's train_logistic_regression_probe (tests/references/neurox_references.py) and ours (the defaults) reach the
    same weights on a small random problem: batches of 32 in order (the last one short), elastic net, Adam."""
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, size=(203, 24)).astype(np.float32)  # 203 = 6 batches of 32 + one of 11
    y = (x[:, :5].argmax(1) + (rng.random(203) < 0.2)) % 5
    settings = {"l1": 1e-3, "l2": 1e-3, "epochs": 3, "learning_rate": 1e-2}
    torch.manual_seed(5)
    theirs = neurox.train_logistic_regression_probe(x, y, lambda_l1=1e-3, lambda_l2=1e-3, num_epochs=3,
                                                    batch_size=32, learning_rate=1e-2)
    ours = probes.train_probe(x, y, 5, seed=5, **settings)  # batch 32, in order, raw activations: the defaults
    assert torch.allclose(ours["probe"].linear.weight, theirs.linear.weight, atol=1e-6, rtol=0)
    assert torch.allclose(ours["probe"].linear.bias, theirs.linear.bias, atol=1e-6, rtol=0)
    assert not torch.allclose(theirs.linear.weight, neurox.LinearProbe(24, 5).linear.weight)  # it trained
    # z-scoring (ours, lca.probe.zscore) is NeuroX's probe on standardised activations.
    mean, std = probes.zscore_stats(x)
    torch.manual_seed(5)
    theirs = neurox.train_logistic_regression_probe((x - mean) / std, y, lambda_l1=1e-3, lambda_l2=1e-3,
                                                    num_epochs=3, batch_size=32, learning_rate=1e-2)
    ours = probes.train_probe(x, y, 5, seed=5, zscore=True, **settings)
    assert torch.allclose(ours["probe"].linear.weight, theirs.linear.weight, atol=1e-5, rtol=0)
    # Reshuffled batches of 128 (lca.probe.shuffle, batch_size: the former defaults) are another trajectory.
    other = probes.train_probe(x, y, 5, seed=5, batch_size=128, shuffle=True, **settings)
    assert not torch.allclose(other["probe"].linear.weight, ours["probe"].linear.weight, atol=1e-3)


def test_top_neurons_follow_the_mass_rule():
    w = np.array([[5.0, 3.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0]])
    top = probes.top_neurons_per_class(w, 0.5)
    assert list(top[0]) == [0] and list(top[1]) == [3]
    top = probes.top_neurons_per_class(w, 0.8)
    assert list(top[0]) == [0, 1]
    assert list(probes.neuron_ordering(w, 10)[:3]) == [0, 3, 1]  # share 0: each class's top neuron first


# NeuroX 1.0.9's get_top_neurons and get_neuron_ordering (neurox/interpretation/linear_probe.py), restated on a weight
# matrix instead of a probe; the code is NeuroX's, line for line.
def neurox_get_top_neurons(weights, percentage, class_to_idx):
    weights = np.abs(weights)
    top_neurons = {}
    for c in class_to_idx:
        total_mass = np.sum(weights[class_to_idx[c], :])
        sort_idx = np.argsort(weights[class_to_idx[c], :])[::-1]
        cum_sums = np.cumsum(weights[class_to_idx[c], sort_idx])
        unselected_neurons = np.where(cum_sums >= total_mass * percentage)[0]
        if unselected_neurons.shape[0] == 0:
            selected_neurons = np.arange(cum_sums.shape[0])
        else:
            selected_neurons = np.arange(unselected_neurons[0] + 1)
        top_neurons[c] = sort_idx[selected_neurons]
    top_neurons_union = set()
    for k in top_neurons:
        for t_n in top_neurons[k]:
            top_neurons_union.add(t_n)
    return np.array(list(top_neurons_union)), top_neurons


def neurox_get_neuron_ordering(weights, class_to_idx, search_stride=100):
    neuron_orderings = [neurox_get_top_neurons(weights, p / search_stride, class_to_idx)[0]
                        for p in range(search_stride + 1)]
    considered_neurons = set()
    ordering = []
    cutoffs = []
    for local_ordering in neuron_orderings:
        local_ordering = list(local_ordering)
        new_neurons = set(local_ordering).difference(considered_neurons)
        ordering = ordering + list(new_neurons)
        considered_neurons = considered_neurons.union(new_neurons)
        cutoffs.append(len(ordering))
    return ordering, cutoffs


def test_neuron_ordering_is_neuroxs():
    # NeuroX's own unit test: neuron 2 first (the largest weight in both classes), then 0, then 1.
    w = np.array([[4, 1, 5], [1, 1, 10]], dtype=np.float32)
    assert list(probes.neuron_ordering(w)) == [2, 0, 1] == neurox_get_neuron_ordering(w, {"c0": 0, "c1": 1})[0]
    # A probe's |W| over 45 tags and 13 layers x 8 units (sparse, as an elastic net leaves it), with ties.
    rng = np.random.default_rng(3)
    w = (rng.exponential(1.0, size=(45, 104)) * (rng.random((45, 104)) < 0.3)).astype(np.float32)
    w[:, 7] = w[:, 9]
    tags = {f"T{i}": i for i in range(45)}
    for stride in (100, 10):
        ours = probes.neuron_ordering(w, stride)
        theirs, _ = neurox_get_neuron_ordering(w, tags, stride)
        assert list(ours) == [int(n) for n in theirs], stride
        assert sorted(ours) == list(range(104))
    for percentage in (0.0, 0.3, 1.0):
        per_tag = probes.top_neurons_per_class(w, percentage)
        theirs = neurox_get_top_neurons(w, percentage, tags)[1]
        assert all(list(per_tag[i]) == list(theirs[f"T{i}"]) for i in range(45)), percentage


def test_top_words_are_distinct_and_by_activation():
    x = np.array([[1.0], [5.0], [4.0], [5.0], [3.0]])
    words = np.array(["a", "b", "c", "b", "d"])
    assert top_words(x, words, 0, 3) == ["b", "c", "d"]
    rankings = np.array([[0]])
    rows = association(rankings, {"activations": x, "words": words, "tags": np.array([0, 0, -1, 0, 0])},
                       {"activations": x, "words": words, "tags": np.array([0, 0, 0, 0, 0])}, ["NN"],
                       top_neurons=1, words_per_neuron=3)
    assert rows[0]["match"] == 2 and rows[0]["total"] == 3  # c has no gold tag in the test data


# ------------------------------------------------------------------------------------------------ data
def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")
    return path


def test_local_conll_file_split_and_traces(tmp_path):
    sentences = [[("The", "DT"), ("*T*-1", "-NONE-"), ("cat", "NN"), ("runs", "VBZ")]] * 19 + [[("Ok", "UH")]]
    file = write_conll(tmp_path / "pos.txt", sentences)
    splits = load_pos_data({"source": "local", "files": {"all": str(file)}, "test_fraction": 0.25, "split_seed": 1})
    assert len(splits["train"]) == 15 and len(splits["test"]) == 5
    assert all("-NONE-" not in s["tags"] for s in splits["train"] + splits["test"])
    again = load_pos_data({"source": "local", "files": {"all": str(file)}, "test_fraction": 0.25, "split_seed": 1})
    assert again == splits
    kept = load_pos_data({"source": "local", "files": {"all": str(file)}, "drop_traces": False})
    assert "-NONE-" in tag_set(kept["train"])
    assert summarise(splits)["train"]["sentences"] == 15


def test_bad_pos_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("The DT\ncat\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 2"):
        read_tagged_file(bad)
    (tmp_path / "latin.txt").write_bytes(b"The DT\ncaf\xe9 NN\n")
    with pytest.raises(DataError, match=r"latin\.txt, line 2: not UTF-8"):
        read_tagged_file(tmp_path / "latin.txt")
    with pytest.raises(DataError, match="lca.data.files"):
        load_pos_data({"source": "local", "files": {"train": str(bad)}})
    with pytest.raises(DataError, match="lca.data.nltk_data"):
        load_pos_data({"source": "treebank", "nltk_data": str(tmp_path / "nowhere")})


def test_nltk_treebank_sample():
    folder = shared_data("nltk_data")
    splits = load_pos_data({"source": "treebank", "nltk_data": str(folder), "test_fraction": 0.1, "split_seed": 42})
    assert len(splits["train"]) + len(splits["test"]) == 3914 and len(splits["test"]) == 391
    assert "-NONE-" not in tag_set(splits["train"]) and {"JJ", "MD", "VBD", ":", "VBZ"} <= set(tag_set(splits["train"]))


# ------------------------------------------------------------------------------------------------ tagger + activations
def test_tagger_trains_and_activations_cover_every_word(tmp_path, tiny_model):
    from advtrain.lca.pos_data import write_sentences
    from advtrain.lca.tagging import fine_tune_tagger

    rng = np.random.default_rng(0)
    vocab = {"DT": ["the", "a"], "JJ": ["good", "bad", "great"], "NN": ["movie", "film", "plot"]}
    sentences = []
    for _ in range(60):
        n = int(rng.integers(1, 4))
        words = [vocab["DT"][rng.integers(2)]] + [vocab["JJ"][rng.integers(3)] for _ in range(n)] + [
            vocab["NN"][rng.integers(3)]]
        sentences.append({"words": words, "tags": ["DT"] + ["JJ"] * n + ["NN"]})
    write_sentences(sentences[:50], tmp_path / "train.jsonl")
    write_sentences(sentences[50:], tmp_path / "test.jsonl")
    tags = tag_set(sentences)
    spec = {"train": {"max_length": 16, "batch_size": 8, "learning_rate": 3e-3, "epochs": 3, "precision": "auto"},
            "parts": {"adversarial_embedding": {"kind": "pgd", "steps": 1}}}
    metrics = fine_tune_tagger(tiny_model, tmp_path / "train.jsonl", tmp_path / "test.jsonl", tags,
                               tmp_path / "model", tmp_path / "ckpt", spec, seed=1)
    assert metrics["test_token_accuracy"] > 0.8, metrics
    assert not (tmp_path / "ckpt").exists()
    out = acts.extract(tmp_path / "model", sentences[50:], tags, max_length=16, batch_size=4)
    words = sum(len(s["words"]) for s in sentences[50:])
    assert out["activations"].shape[0] == len(out["words"]) == len(out["tags"]) == words
    assert out["activations"].dtype == np.float32  # NeuroX's; lca.activations_dtype: float16 rounds the same values
    half = acts.extract(tmp_path / "model", sentences[50:], tags, max_length=16, batch_size=4, dtype="float16")
    assert np.array_equal(half["activations"], out["activations"].astype(np.float16))
    with pytest.raises(ValueError, match="lca.activations_dtype"):
        acts.extract(tmp_path / "model", sentences[50:], tags, max_length=16, dtype="bfloat16")
    assert out["activations"].shape[1] == int(out["layers"]) * int(out["hidden_size"])
    assert list(out["words"][: len(sentences[50]["words"])]) == sentences[50]["words"]
    acts.save(out, tmp_path / "a.npz")
    back = acts.load(tmp_path / "a.npz")
    assert np.array_equal(back["activations"], out["activations"]) and list(back["words"]) == list(out["words"])
    average = acts.extract(tmp_path / "model", sentences[50:], tags, max_length=16, pooling="average")
    assert average["activations"].shape == out["activations"].shape
    # A word of several sub-tokens is its last one's state by default, as NeuroX's extractor (aggregation="last").
    split = [{"words": ["the", "goodmovieplot", "film"], "tags": ["DT", "JJ", "NN"]}]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    pieces = [len(tokenizer.tokenize(w)) for w in split[0]["words"]]
    assert pieces[1] > 1
    default, last, first = (acts.extract(tmp_path / "model", split, tags, max_length=16, **kw)["activations"]
                            for kw in ({}, {"pooling": "last"}, {"pooling": "first"}))
    assert np.array_equal(default, last)
    for i, n in enumerate(pieces):
        assert np.array_equal(default[i], first[i]) == (n == 1), (split[0]["words"][i], n)


# ------------------------------------------------------------------------------------------------ tables
def test_tables_put_the_papers_values_beside_ours(tmp_path):
    train, test = synthetic(800, 4), synthetic(200, 5)
    tags = ["JJ", "MD", "VBD", "VBZ", "RB"]
    per_seed = {seed: analyse(train, test, tags, SETTINGS, seed) for seed in (1, 2)}
    results = [{**per_seed[seed], "method": method, "seed": seed} for method in ("BERT", "LDS", "PGD-AT")
               for seed in (1, 2)]
    numeric, display = table5(results, ["BERT", "LDS", "PGD-AT"])
    jj = numeric.set_index("tag").loc["JJ"]
    assert jj["PGD-AT_paper_match"] == 6 and jj["PGD-AT_paper_total"] == 10
    assert jj["BERT_n"] == 2 and 0 <= jj["BERT_percent_mean"] <= 100
    assert display.set_index("POS").loc["JJR", "BERT %"] == "—"  # no JJR in these models
    assert display.set_index("POS").loc["JJ", "seeds"] == "2"
    words = table6(results, ["BERT", "LDS", "PGD-AT"])
    assert "**" in words.set_index("POS").loc["JJ", "BERT"]
    write_table6(words, tmp_path / "t6", "Table 6")
    assert r"\textbf{" in (tmp_path / "t6.tex").read_text()
    numeric7, display7 = table7(results, ["BERT", "LDS", "PGD-AT"])
    assert list(numeric7["paper"]) == [34.2, 38.6, 35.3]
    assert (numeric7["n"] == 2).all()
    json.dumps(results)  # the per-model results are JSON-serialisable as the rule writes them
    assert isinstance(pd.DataFrame(numeric7), pd.DataFrame)
