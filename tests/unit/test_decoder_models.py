"""Decoder-only classifiers (GPT-2, Llama): start-up checks, padding, and every stage on a tiny GPT-2.

The tiny GPT-2 (tests/conftest.py ``build_tiny_decoder``) has, like GPT-2's own, a byte-level BPE tokenizer with an
end-of-sequence token and no padding token; its classifier reads the last token that is not padding.
"""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import torch
from attack_fixtures import build_sentence_encoder, build_word_embedding
from conftest import build_tiny_decoder, shared_data, synthetic_reviews

from advtrain import models
from advtrain.attacks import AttackSettings, attack_examples, load_model_wrapper
from advtrain.attacks.run import read_records
from advtrain.errors import ResourceError
from advtrain.evaluation import evaluate, load_classifier
from advtrain.training.finetune import fine_tune

SETTINGS = {"max_length": 32, "batch_size": 8, "eval_batch_size": 64, "learning_rate": 3e-3, "epochs": 4,
            "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "fp32"}
TEXTS = ["the movie was good", "a really dull and boring film with a clumsy script", "superb"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny_llama"), kind="llama")


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_gpt2, tiny_model):
    """Splits, the attack resources A2T and TextFooler read, and the tiny GPT-2 fine-tuned plainly (the baseline)."""
    root = tmp_path_factory.mktemp("decoder")
    rows = synthetic_reviews(280, seed=7)
    for name, part in (("train", rows[:240]), ("validation", rows[240:])):
        pd.DataFrame(part, columns=["text", "label"]).to_parquet(root / f"{name}.parquet", index=False)
    resources = {
        "word_embedding": str(build_word_embedding(root / "paragramcf")),
        "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", tiny_model)),
        "nltk_data": str(shared_data("nltk_data")),
    }
    baseline = train({"root": root}, tiny_gpt2, "baseline", {})
    return {"root": root, "resources": resources, "baseline": baseline, "model": root / "baseline/model"}


def train(env, model, name, parts, epochs=SETTINGS["epochs"], **kwargs):
    out = env["root"] / name
    return fine_tune(model, env["root"] / "train.parquet", env["root"] / "validation.parquet", out / "model",
                     out / "checkpoints", {"train": {**SETTINGS, "epochs": epochs}, "parts": parts}, seed=1, **kwargs)


# ---------------------------------------------------------------------------------------------------- start-up
def test_startup_check_names_model_path_and_the_method_key(tiny_gpt2, tiny_model, tmp_path):
    pgd = {"PGD-AT": {"adversarial_embedding": {"kind": "pgd"}}, "BERT": {}}
    assert models.check_model_folder(tiny_gpt2, "model.path", pgd)["model_type"] == "gpt2"
    # ALUM's default site is the embedding layer's output, which GPT-2 lacks (token + position tables only).
    with pytest.raises(ResourceError, match=r"methods\.ALUM\.adversarial_embedding\.perturb: .*model\.path: "):
        models.check_model_folder(tiny_gpt2, "model.path", {**pgd, "ALUM": {"adversarial_embedding": {"kind": "alum"}}})
    # An encoder takes both sites.
    models.check_model_folder(tiny_model, "model.path", {"ALUM": {"adversarial_embedding": {"kind": "alum"}}})
    # No padding token and nothing to pad with: stop at start-up, naming the key.
    bare = tmp_path / "bare"
    shutil.copytree(tiny_gpt2, bare)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        data = json.loads((bare / name).read_text())
        for key in ("eos_token", "bos_token", "unk_token", "pad_token"):
            data.pop(key, None)
        (bare / name).write_text(json.dumps(data))
    with pytest.raises(ResourceError, match=r"^model\.path: .*decoder-only model \(gpt2\).*neither a padding token"):
        models.check_model_folder(bare, "model.path", pgd)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_prepared_decoder_pads_right_with_eos_and_batches_do_not_change_logits(kind, tiny_gpt2, tiny_llama):
    model, tokenizer = models.load_classifier(tiny_gpt2 if kind == "gpt2" else tiny_llama, num_labels=2)
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "right"
    assert model.config.pad_token_id == tokenizer.pad_token_id == tokenizer.eos_token_id
    model.eval()
    with torch.no_grad():
        batched = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
        alone = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in TEXTS])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)
    if kind == "gpt2":
        # Why right: left padding shifts GPT-2's learned absolute positions, so a text's logits follow its batch.
        tokenizer.padding_side = "left"
        with torch.no_grad():
            left = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
        assert not torch.allclose(left, alone, atol=1e-4)


def test_tokenizer_without_padding_or_eos_fails_clearly(tiny_gpt2):
    model, tokenizer = models.load_classifier(tiny_gpt2, num_labels=2)
    tokenizer.pad_token = None
    tokenizer.eos_token = None
    with pytest.raises(ValueError, match="neither a padding token nor an end-of-sequence token"):
        models.prepare(tokenizer, model)


# ---------------------------------------------------------------------------------------------------- stages
def test_plain_fine_tuning_learns_and_saves_a_padded_model(env):
    metrics = env["baseline"]
    assert metrics["validation_accuracy"] > 0.8 and math.isfinite(metrics["train_loss"])
    saved = json.loads((env["model"] / "config.json").read_text())
    tokenizer = json.loads((env["model"] / "tokenizer_config.json").read_text())
    assert saved["pad_token_id"] is not None and tokenizer["pad_token"] == tokenizer["eos_token"]
    assert not (env["root"] / "baseline/checkpoints").exists()


def test_evaluation_matches_one_text_at_a_time(env):
    result = evaluate(env["model"], {"validation": env["root"] / "validation.parquet"}, batch_size=16, max_length=32,
                      predictions_out=env["root"] / "predictions.npz")
    assert result["accuracy"]["validation"] == pytest.approx(env["baseline"]["validation_accuracy"])
    model, tokenizer = load_classifier(env["model"])
    frame = pd.read_parquet(env["root"] / "validation.parquet")
    with torch.no_grad():
        alone = [int(model(**tokenizer([t], return_tensors="pt", truncation=True, max_length=32)).logits.argmax())
                 for t in frame["text"]]
    assert result["accuracy"]["validation"] == pytest.approx(float((frame["label"] == alone).mean()))


def test_pgd_at_trains_on_the_word_embeddings(env, tiny_gpt2):
    metrics = train(env, tiny_gpt2, "pgd", {"adversarial_embedding": {"kind": "pgd"}}, epochs=1)
    assert math.isfinite(metrics["train_loss"]) and metrics["steps"] == 30
    with pytest.raises(ValueError, match=r"adversarial_embedding\.perturb: 'embedding_output'.*GPT2"):
        train(env, tiny_gpt2, "pgd-output", {"adversarial_embedding": {"kind": "pgd", "perturb": "embedding_output"}},
              epochs=1)


def test_a2t_ranks_words_by_gradient_and_trains_on_its_examples(env):
    from advtrain.attacks.word_alignment import align_words_to_tokens

    wrapper = load_model_wrapper(env["model"], 32, env["resources"]["nltk_data"])
    from textattack.shared import AttackedText

    text = AttackedText("the plot was dull and the acting awful")
    gradient = wrapper.get_grad(text.tokenizer_input)["gradient"]
    aligned = align_words_to_tokens(text, wrapper.tokenizer)
    assert all(aligned[i] for i in range(len(text.words))), aligned  # every word has its byte-level BPE tokens
    assert all(abs(gradient[aligned[i]]).sum() > 0 for i in range(len(text.words)))

    part = {"recipe": "a2t", "clean_epochs": 1, "fraction": 0.1, "query_budget": 60, "model_batch_size": 16}
    metrics = train(env, env["model"], "a2t", {"adversarial_input": part}, epochs=2,
                    attack_resources=env["resources"])
    adv = {e["epoch"]: e for e in metrics["adversarial_input"]["epochs"]}[2]
    assert adv["kind"] == "adversarial" and adv["attacked"] == 24  # ceil(0.1 * 240)
    assert adv["added"] == adv["succeeded"] == adv["trained_on"] > 0
    assert math.isfinite(metrics["train_loss"])


def test_textfooler_shard_alone_and_brokered(env, tmp_path):
    examples = synthetic_reviews(6, seed=5)
    kwargs = dict(query_budget=None, model_batch_size=16, max_length=32)
    summary = attack_examples(env["model"], examples, "textfooler", env["resources"],
                              AttackSettings(concurrency=1, **kwargs), out_path=tmp_path / "a.jsonl")
    records = read_records(tmp_path / "a.jsonl")
    assert [r["index"] for r in records] == list(range(6))
    assert summary["original_accuracy"] > 0
    assert any(r["result_type"] == "Successful" for r in records)
    for r in records:
        if r["result_type"] == "Successful":
            assert r["perturbed_output"] != r["ground_truth"] and r["perturbed_text"] != r["original_text"]
    attack_examples(env["model"], examples, "textfooler", env["resources"], AttackSettings(concurrency=3, **kwargs),
                    out_path=tmp_path / "b.jsonl")
    keys = ("index", "result_type", "perturbed_text", "num_queries")
    assert [{k: r[k] for k in keys} for r in read_records(tmp_path / "b.jsonl")] == [
        {k: r[k] for k in keys} for r in records]


def test_lca_tagger_and_activations_on_the_fine_tuned_gpt2(env, tmp_path):
    """Words come split (is_split_into_words), which GPT-2's byte-level BPE takes with a space before each word."""
    import numpy as np

    from advtrain.lca import activations as acts
    from advtrain.lca.pos_data import write_sentences
    from advtrain.lca.tagging import fine_tune_tagger

    rng = np.random.default_rng(0)
    vocab = {"DT": ["the", "a"], "JJ": ["good", "bad", "great"], "NN": ["movie", "film", "plot"]}
    sentences = []
    for _ in range(60):
        n = int(rng.integers(1, 4))
        sentences.append({"words": [vocab["DT"][rng.integers(2)]] + [vocab["JJ"][rng.integers(3)] for _ in range(n)]
                          + [vocab["NN"][rng.integers(3)]], "tags": ["DT"] + ["JJ"] * n + ["NN"]})
    write_sentences(sentences[:50], tmp_path / "train.jsonl")
    write_sentences(sentences[50:], tmp_path / "test.jsonl")
    tags = ["DT", "JJ", "NN"]
    # More epochs than the tiny BERT's 3 (tests/unit/test_lca.py): a causal tagger reads each word's left context only.
    spec = {"train": {"max_length": 16, "batch_size": 8, "learning_rate": 3e-3, "epochs": 10, "precision": "auto"},
            "parts": {"adversarial_embedding": {"kind": "pgd", "steps": 1}}}
    metrics = fine_tune_tagger(env["model"], tmp_path / "train.jsonl", tmp_path / "test.jsonl", tags,
                               tmp_path / "tagger", tmp_path / "ckpt", spec, seed=1)
    assert metrics["test_token_accuracy"] > 0.8, metrics
    out = acts.extract(tmp_path / "tagger", sentences[50:], tags, max_length=16, batch_size=4)
    assert len(out["words"]) == sum(len(s["words"]) for s in sentences[50:]) and int(out["dropped_words"]) == 0
    assert out["activations"].shape[1] == int(out["layers"]) * int(out["hidden_size"])
