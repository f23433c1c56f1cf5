"""The fluency metric (advtrain.attacks.fluency) against OpenAttack's GPT2LM, restated in
tests/references/fluency_references.py, on a tiny GPT-2 built from a config; the causal LM resource's errors; the
validity check's perplexity columns."""

from __future__ import annotations

import math
import re

import fluency_references as reference
import numpy as np
import pytest
import torch
from attack_fixtures import build_causal_lm

from advtrain.attacks import fluency
from advtrain.attacks import resources as attack_res
from advtrain.sources import ResourceError

TEXTS = ["a good movie", "the plot was dull and the acting was bad", "a good movie",  # a repeat: scored once
         "this film is a fine film with a fine cast", "a", "terrible acting , dull plot !"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = build_causal_lm(tmp_path_factory.mktemp("causal_lm"))
    model, tokenizer = attack_res.load_causal_lm(folder)
    return folder, model, tokenizer


def openattack(model, tokenizer, texts):
    """OpenAttack's value of each text, one text per forward; NaN where it has no token to predict."""
    out = []
    for text in texts:
        with torch.no_grad():
            out.append(reference.gpt2lm_after_attack(tokenizer, model, text))
    return np.array(out, dtype=float)


def test_perplexity_is_openattacks_gpt2lm(lm):
    _, model, tokenizer = lm
    assert len(tokenizer("a")["input_ids"]) == 1  # one token: nothing to predict
    expected = openattack(model, tokenizer, TEXTS)
    assert np.isnan(expected[4]) and np.isfinite(np.delete(expected, 4)).all()
    # Tiny forwards (a few texts each) and one forward for all: the same values, and OpenAttack's.
    for batch_tokens, forwards in ((12, lambda n: n > 1), (8192, lambda n: n == 1)):
        scorer = fluency.Perplexity(fluency.lm_service(model, tokenizer), batch_tokens)
        got = scorer(TEXTS)
        np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
        sizes = scorer.service.batch_sizes
        assert forwards(len(sizes)) and sum(sizes) == len(set(TEXTS)), sizes
        assert np.array_equal(scorer(TEXTS[:2]), got[:2]) and scorer.service.batch_sizes == sizes  # known: not rerun
    # AttackEval's "Avg. Fluency (ppl)" over the successful examples; our tables' mean skips the NaN of one token.
    finite = [t for t in TEXTS if t != "a"]
    assert np.nanmean(got[[TEXTS.index(t) for t in finite]]) == pytest.approx(
        reference.attack_eval_average(openattack(model, tokenizer, finite).tolist()), rel=1e-5)


def test_a_text_is_cut_at_max_length(lm):
    _, model, tokenizer = lm
    text = " ".join(["the plot was dull and the acting was bad"] * 3)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 10
    cut = ids[:, :10]
    with torch.no_grad():
        expected = math.exp(model(input_ids=cut, labels=cut)[0])  # OpenAttack's formula on the first 10 tokens
    scorer = fluency.Perplexity(fluency.lm_service(model, tokenizer, max_length=10))
    assert scorer([text])[0] == pytest.approx(expected, rel=1e-5)
    # Null: the LM's positions (the tiny GPT-2 has 128), more than that names the key.
    assert fluency.token_limit(model, tokenizer, None) == 128
    with pytest.raises(ValueError, match=r"^attacks\.fluency\.max_length: 129 exceeds the 128 positions"):
        fluency.lm_service(model, tokenizer, max_length=129)


def test_perplexity_loads_the_configured_folder(lm):
    folder, model, tokenizer = lm
    scorer = fluency.perplexity(folder, batch_tokens=64)
    np.testing.assert_allclose(scorer(TEXTS[:2]), openattack(model, tokenizer, TEXTS[:2]), rtol=1e-5)


def test_the_causal_lm_resource_names_its_key(tmp_path):
    record = attack_res.KINDS["causal_lm"]
    assert record.source == "openai-community/gpt2" and not record.is_file
    assert attack_res.default_location("causal_lm", "cache") == "cache/attacks/causal_lm/openai-community--gpt2"
    assert attack_res.resource_paths({"cache_dir": "cache", "model": {"name": "x/y"}})["causal_lm"] == (
        "cache/attacks/causal_lm/openai-community--gpt2", False)
    missing = tmp_path / "nowhere"
    with pytest.raises(ResourceError, match=r"^attacks\.resources\.causal_lm: .*nowhere.* does not exist"):
        attack_res.load_causal_lm(missing)
    with pytest.raises(ResourceError, match=r"^attacks\.resources\.causal_lm: .* is needed but not set\. Set "
                       r"`attacks\.resources\.causal_lm`"):
        attack_res.require({"causal_lm": None}, "causal_lm")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ResourceError, match=rf"^attacks\.resources\.causal_lm: {re.escape(str(empty))} is not a "
                       "complete model folder"):
        attack_res.check_local("causal_lm", empty)


def test_validity_rows_carry_both_perplexities(lm):
    from conftest import shared_data

    from advtrain.attacks.validity import check

    _, model, tokenizer = lm
    attack_res.import_textattack(shared_data("nltk_data"))
    from textattack.shared import AttackedText

    pairs = [("a good movie with a fine cast", "a good film with a fine cast"),
             ("the plot was dull and the acting was bad", "the plot was dull and the acting was lousy")]
    records = [{"index": i, "original_text": a, "perturbed_text": b, "result_type": "Successful", "ground_truth": 1,
                "perturbed_output": 0, "words_changed": 1, "words_total": len(a.split())}
               for i, (a, b) in enumerate(pairs)]
    records.append({**records[0], "index": 2, "result_type": "Failed"})

    def encode(texts):
        return np.ones((len(texts), 3))

    scorer = fluency.Perplexity(fluency.lm_service(model, tokenizer))
    frame = check(records, "a2t", encode, attacked_text=AttackedText, perplexity=scorer)
    assert list(frame["index"]) == [0, 1]
    np.testing.assert_allclose(frame["original_perplexity"], openattack(model, tokenizer, [a for a, _ in pairs]),
                               rtol=1e-5)
    np.testing.assert_allclose(frame["perturbed_perplexity"], openattack(model, tokenizer, [b for _, b in pairs]),
                               rtol=1e-5)
    without = check(records, "a2t", encode, attacked_text=AttackedText)
    assert without[["original_perplexity", "perturbed_perplexity"]].isna().all().all()


def test_fluency_off_reads_no_causal_lm():
    from advtrain import resource_needs

    resources = {kind: (f"cache/{kind}", False) for kind in attack_res.KINDS}
    assert "causal_lm" in resource_needs.attack_kinds(["textfooler"], resources)
    assert "causal_lm" not in resource_needs.attack_kinds(["textfooler"], resources, fluency=False)
    assert resource_needs.fluency_enabled({"attacks": {}})
    assert not resource_needs.fluency_enabled({"attacks": {"fluency": {"enabled": False}}})
