"""Input-space adversarial training (A2T, A2T_MLM, BERT-Attack): schedule, generated examples, resumption.

Offline on the tiny model with the tiny attack resources of tests/support/attack_fixtures.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from attack_fixtures import build_sentence_encoder, build_victim, build_word_embedding
from conftest import REPO, shared_data, synthetic_reviews
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from advtrain.attacks import build_attack, required_resources
from advtrain.config import ConfigError
from advtrain.errors import ResourceError
from advtrain.training import input_space as ip
from advtrain.training.finetune import fine_tune

SETTINGS = {"max_length": 32, "batch_size": 8, "eval_batch_size": 64, "learning_rate": 1e-3, "epochs": 3,
            "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "fp32"}


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    """Tiny resources (embedding, sentence encoder, the tiny BERT as masked LM) and a small train/validation split.

    Training starts from the briefly trained tiny victim, so the attacks of the first adversarial epoch find a model
    that reads the sentiment words (an untrained one is skipped or unbreakable).
    """
    root = tmp_path_factory.mktemp("input_at")
    resources = {
        "word_embedding": str(build_word_embedding(root / "paragramcf")),
        "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", tiny_model)),
        "masked_lm": str(tiny_model),
        "nltk_data": str(shared_data("nltk_data")),
    }
    rows = synthetic_reviews(140, seed=7)
    pd.DataFrame(rows[:100], columns=["text", "label"]).to_parquet(root / "train.parquet", index=False)
    pd.DataFrame(rows[100:], columns=["text", "label"]).to_parquet(root / "validation.parquet", index=False)
    victim = build_victim(root / "victim", tiny_model)
    return {"root": root, "resources": resources, "model": victim, "train": root / "train.parquet",
            "validation": root / "validation.parquet"}


def spec(part: dict, epochs: int = 3) -> dict:
    return {"train": {**SETTINGS, "epochs": epochs}, "parts": {"adversarial_input": part}}


def train(env, name: str, part: dict, epochs: int = 3, **kwargs) -> dict:
    out = env["root"] / name
    return fine_tune(env["model"], env["train"], env["validation"], out / "model", out / "checkpoints",
                     spec(part, epochs), seed=1, attack_resources=env["resources"], **kwargs)


# ---------------------------------------------------------------------------------------------------- settings
def test_schedule_follows_textattack():
    # 1 clean epoch, then every epoch; with interval 2 every other epoch (the ones between are clean).
    assert [ip.attack_epoch(e, 1, 1) for e in range(1, 5)] == [False, True, True, True]
    assert [ip.attack_epoch(e, 2, 2) for e in range(1, 7)] == [False, False, True, False, True, False]
    assert [ip.attack_epoch(e, 0, 1) for e in range(1, 3)] == [True, True]


def test_sample_is_seeded_and_sized():
    a = ip.sample_indices(100, 0.2, seed=3, epoch=2)
    assert len(a) == 20 == len(set(a)) and a == ip.sample_indices(100, 0.2, seed=3, epoch=2)
    assert a != ip.sample_indices(100, 0.2, seed=3, epoch=3)  # a new sample each epoch
    assert len(ip.sample_indices(7, 0.2, seed=3, epoch=2)) == 2  # ceil


def test_bad_settings_name_their_key():
    with pytest.raises(ConfigError, match=r"adversarial_input\.recipe"):
        ip.resolve({"recipe": "textfooler"})
    with pytest.raises(ConfigError, match=r"adversarial_input: unknown key\(s\) alpha"):
        ip.resolve({"recipe": "a2t", "alpha": 1})
    with pytest.raises(ConfigError, match=r"methods\.A2T\.adversarial_input\.clean_epochs"):
        ip.check_schedule({"recipe": "a2t", "clean_epochs": 4}, epochs=4, where="methods.A2T.adversarial_input")
    assert ip.resolve({"recipe": "a2t"})["fraction"] == 0.2


def test_missing_resource_stops_before_training(env, tmp_path):
    resources = {k: v for k, v in env["resources"].items() if k != "masked_lm"}
    with pytest.raises(ResourceError, match=r"attacks\.resources\.masked_lm"):
        ip.InputAdversary({"recipe": "bert_attack"}, resources, ["a"], [0], None, 32, tmp_path)


def test_bert_attack_recipe(env):
    """BERT-Attack keeps the published 48 candidates; its USE constraint is the reported sentence-encoder stand-in."""
    assert required_resources("bert_attack") == ["nltk_data", "masked_lm", "sentence_encoder"]
    model = AutoModelForSequenceClassification.from_pretrained(env["model"], num_labels=2)
    wrapper = ip.model_wrapper(model, AutoTokenizer.from_pretrained(env["model"]), 32)
    build = build_attack("BERT-Attack", wrapper, env["resources"], query_budget=50)
    assert build.attack.transformation.max_candidates == 48
    assert build.attack.transformation.method == "bert-attack"
    assert any("UniversalSentenceEncoder" in s for s in build.substitutions)
    assert type(build.attack.search_method).__name__ == "GreedyWordSwapWIR"


def test_a2t_word_window_follows_the_training_length(env):
    """TextAttack 0.3.11's A2T recipe truncates its word ranking at min(1024, tokenizer.model_max_length, positions - 2)
    words; the training wrapper's tokenizer carries the method's max_length (AT-IP: 512, so 510 words on BERT-base)."""
    model = AutoModelForSequenceClassification.from_pretrained(env["model"], num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(env["model"])
    positions = model.config.max_position_embeddings  # 128 in the tiny BERT
    for max_length in (64, 512):
        build = build_attack("a2t", ip.model_wrapper(model, tokenizer, max_length), env["resources"], query_budget=20)
        assert build.attack.search_method.truncate_words_to == min(1024, max_length, positions - 2)


def test_generation_with_the_broker_matches_one_at_a_time(env):
    """AT-IP's example generation through the query broker gives one-at-a-time's records (A2T: dropout-on gradient)."""
    model = AutoModelForSequenceClassification.from_pretrained(env["model"], num_labels=2).eval()
    wrapper = ip.model_wrapper(model, AutoTokenizer.from_pretrained(env["model"]), 32)
    attack = build_attack("a2t", wrapper, env["resources"], query_budget=60).attack
    examples = [(text, label, i) for i, (text, label) in enumerate(synthetic_reviews(6, seed=9))]
    seed_of = ip._epoch_seed(765, 2)
    alone = ip.attack_records(attack, examples, seed_of, concurrency=1)
    together = ip.attack_records(attack, examples, seed_of, concurrency=3, batch_tokens=256)
    keys = ("source_index", "result_type", "perturbed_text", "num_queries")
    assert [{k: r[k] for k in keys} for r in together] == [{k: r[k] for k in keys} for r in alone]
    assert [r["source_index"] for r in alone] == list(range(6))


# ---------------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def a2t_run(env):
    """A2T for 3 epochs with 2 clean ones: only epoch 3 is adversarial."""
    part = {"recipe": "a2t", "clean_epochs": 2, "fraction": 0.15, "query_budget": 60, "model_batch_size": 16}
    return train(env, "a2t", part, epochs=3, keep_checkpoints=True)


def test_clean_epochs_then_adversarial_examples_are_added(env, a2t_run):
    report = a2t_run["adversarial_input"]
    epochs = {e["epoch"]: e for e in report["epochs"]}
    assert sorted(epochs) == [1, 2, 3]
    for clean in (1, 2):
        assert epochs[clean]["kind"] == "clean" and epochs[clean]["attacked"] == 0 and epochs[clean]["trained_on"] == 0
    adv = epochs[3]
    assert adv["kind"] == "adversarial" and adv["attacked"] == 15  # ceil(0.15 * 100)
    assert adv["attacked"] == adv["succeeded"] + adv["failed"] + adv["skipped"]
    assert adv["added"] == adv["succeeded"] > 0
    assert adv["trained_on"] == adv["added"]  # every added example went through a batch
    assert adv["generation_seconds"] > 0 and adv["training_seconds"] > 0
    assert report["totals"]["added"] == adv["added"]
    records = [json.loads(line) for line in
               (env["root"] / "a2t/model/adversarial_examples/epoch3.jsonl").read_text().splitlines()]
    train_rows = pd.read_parquet(env["train"])
    successful = [r for r in records if r["result_type"] == "Successful"]
    assert len(successful) == adv["added"]
    for r in successful:
        assert r["perturbed_text"] != r["original_text"] == train_rows["text"][r["source_index"]]
        assert r["ground_truth"] == train_rows["label"][r["source_index"]]


def test_resumed_job_reuses_its_epochs_examples_and_matches(env, a2t_run, tmp_path):
    """kill -9 after epoch 2's checkpoint (and epoch 3's generation): the rerun reads epoch 3's examples back and
    ends with the uninterrupted run's weights."""
    out = tmp_path / "killed"
    part = {"recipe": "a2t", "clean_epochs": 2, "fraction": 0.15, "query_budget": 60, "model_batch_size": 16}
    args = dict(model_path=str(env["model"]), train_path=str(env["train"]), validation_path=str(env["validation"]),
                output_dir=str(out / "model"), checkpoint_dir=str(out / "checkpoints"), spec=spec(part), seed=1,
                attack_resources=env["resources"], keep_checkpoints=True)
    code = ("import json, sys; from advtrain.training.finetune import fine_tune; "
            "fine_tune(**json.loads(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    store = out / "checkpoints" / ip.STORE
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (store / "epoch3.json").exists():
        time.sleep(0.1)
    assert proc.poll() is None, "training finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "model").exists()

    metrics = fine_tune(**args)
    assert metrics["resumed_from"].endswith("checkpoint-" + str(2 * 13))  # 100 examples / batch 8 = 13 steps
    epochs = {e["epoch"]: e for e in metrics["adversarial_input"]["epochs"]}
    assert epochs[3]["source"] == "reused"
    assert metrics["steps"] == a2t_run["steps"]
    assert epochs[3]["added"] == {e["epoch"]: e for e in a2t_run["adversarial_input"]["epochs"]}[3]["added"]
    resumed = AutoModelForSequenceClassification.from_pretrained(out / "model").state_dict()
    clean = AutoModelForSequenceClassification.from_pretrained(env["root"] / "a2t/model").state_dict()
    for name, value in clean.items():
        torch.testing.assert_close(resumed[name], value, msg=f"{name} differs after resuming")
