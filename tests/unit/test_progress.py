"""Progress of attack runs (advtrain.progress): the counts and times it reports, in an attack shard's log and in an
epoch's generation, and that it leaves the records alone; the gradient thread of the broker leaves them alone too.

The tiny attack runs use the tiny victim and resources of tests/support/attack_fixtures.py (A2T: its gradient word
ranking runs on the broker's gradient thread).
"""

from __future__ import annotations

import io
import re

import pytest
from attack_fixtures import build_sentence_encoder, build_victim, build_word_embedding
from conftest import shared_data, synthetic_reviews
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from advtrain.attacks import AttackSettings, attack_examples, build_attack
from advtrain.attacks.run import read_records
from advtrain.progress import AttackProgress, duration
from advtrain.training import input_space as ip

LINE = re.compile(r"(?P<label>.*): (?P<done>\d+)/(?P<total>\d+) examples(?: \((?P<resumed>\d+) from the checkpoint\))?, "
                  r"succeeded (?P<Successful>\d+), failed (?P<Failed>\d+), skipped (?P<Skipped>\d+), "
                  r"(?P<queries>[\d,]+) queries; elapsed (?P<elapsed>\S+), remaining (?P<remaining>\S+)$")


def parse(text: str, label: str) -> list[dict]:
    """The progress lines of ``label`` in ``text``, their numbers as ints."""
    out = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match["label"] == label:
            row = match.groupdict()
            for key in ("done", "total", "Successful", "Failed", "Skipped"):
                row[key] = int(row[key])
            row["queries"] = int(row["queries"].replace(",", ""))
            out.append(row)
    return out


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# ---------------------------------------------------------------------------------------------------- the reporter
def test_lines_every_share_or_interval_with_counts_and_time_left():
    clock, out = Clock(), io.StringIO()
    progress = AttackProgress("[attack] x", 40, stream=out, clock=clock, line_share=0.25, line_seconds=30)
    kinds = ["Successful", "Failed", "Skipped", "Failed"] * 10
    for kind in kinds[:12]:
        clock.now += 2.0  # 2 s an example
        progress.add(kind, 10 if kind != "Skipped" else 1)
    lines = parse(out.getvalue(), "[attack] x")
    assert [r["done"] for r in lines] == [10]  # every 25% (10 examples); 24 s < 30 s
    assert lines[0] == {**lines[0], "total": 40, "Successful": 3, "Failed": 5, "Skipped": 2, "queries": 82,
                        "elapsed": "20s", "remaining": "1m00s"}  # 30 examples left at 2 s each
    clock.now += 31.0  # a slow example: the interval makes a line before the next share
    progress.add("Failed", 10)
    progress.close()
    lines = parse(out.getvalue(), "[attack] x")
    assert [r["done"] for r in lines] == [10, 13]  # the interval's line, which is also the last one
    assert lines[-1]["elapsed"] == "55s" and lines[-1]["Failed"] == 7 and lines[-1]["queries"] == 103


def test_resumed_examples_count_as_done_but_not_for_the_rate():
    clock, out = Clock(), io.StringIO()
    with AttackProgress("[attack] r", 10, done=6, stream=out, clock=clock, line_share=0.5) as progress:
        clock.now += 5.0
        progress.add("Successful", 7)
        clock.now += 5.0
        progress.add("Successful", 7)  # 2 of the 4 left: a line
        clock.now += 5.0
        progress.add("Failed", 9)  # closed before the next line: the last line says it
    lines = parse(out.getvalue(), "[attack] r")
    assert [(r["done"], r["resumed"], r["remaining"]) for r in lines] == [(8, "6", "10s"), (9, "6", "5s")]


def test_a_terminal_gets_a_bar_and_the_last_line():
    out = io.StringIO()
    progress = AttackProgress("[attack] bar", 3, stream=out, bar=True, line_share=0.01, line_seconds=0)
    for _ in range(3):
        progress.add("Failed", 4)
    progress.close()
    text = out.getvalue()
    assert "3/3" in text and "succeeded 0, failed 3, skipped 0, 12 queries" in text  # the bar's postfix
    assert [r["done"] for r in parse(text.replace("\r", "\n"), "[attack] bar")] == [3]  # no periodic lines


def test_durations():
    assert [duration(s) for s in (0, 59.6, 61, 3725)] == ["0s", "1m00s", "1m01s", "1h02m05s"]


# ---------------------------------------------------------------------------------------------------- tiny attacks
@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("progress")
    resources = {"word_embedding": str(build_word_embedding(root / "paragramcf")),
                 "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", tiny_model)),
                 "nltk_data": str(shared_data("nltk_data"))}
    return {"root": root, "resources": resources, "victim": build_victim(root / "victim", tiny_model)}


def test_attack_shard_reports_its_counts(env, tmp_path, capfd):
    examples = synthetic_reviews(6, seed=11)
    out = tmp_path / "shard.jsonl"
    attack_examples(env["victim"], examples, "a2t", env["resources"],
                    AttackSettings(max_length=32, query_budget=60, concurrency=2, batch_tokens=256), out_path=out)
    records = read_records(out)
    lines = parse(capfd.readouterr().err, "[attack] a2t, shard 1 of 1")
    assert [r["done"] for r in lines] == [1, 2, 3, 4, 5, 6]  # every example (5% of 6); the last says all
    for r in lines:
        assert r["Successful"] + r["Failed"] + r["Skipped"] == r["done"] and r["total"] == 6
    kinds = [r["result_type"] for r in records]
    assert {k: lines[-1][k] for k in ("Successful", "Failed", "Skipped")} == {k: kinds.count(k) for k in
                                                                               ("Successful", "Failed", "Skipped")}
    assert lines[-1]["queries"] == sum(r["num_queries"] for r in records) and lines[-1]["remaining"] == "0s"


@pytest.mark.parametrize("concurrency", [1, 3])
def test_generation_reports_progress_and_the_same_records(env, capfd, concurrency):
    model = AutoModelForSequenceClassification.from_pretrained(env["victim"], num_labels=2).eval()
    wrapper = ip.model_wrapper(model, AutoTokenizer.from_pretrained(env["victim"]), 32)
    attack = build_attack("a2t", wrapper, env["resources"], query_budget=60).attack
    examples = [(text, label, 10 + i) for i, (text, label) in enumerate(synthetic_reviews(5, seed=3))]
    seed_of = ip._epoch_seed(765, 2)
    silent = ip.attack_records(attack, examples, seed_of, concurrency=concurrency, batch_tokens=256)
    capfd.readouterr()
    watched = ip.attack_records(attack, examples, seed_of, concurrency=concurrency, batch_tokens=256,
                                progress="[adversarial_input] epoch 2, generating")
    lines = parse(capfd.readouterr().err, "[adversarial_input] epoch 2, generating")
    if concurrency == 1:  # the same forwards: identical to the last bit
        assert watched == silent
    else:  # the broker's batches may differ between runs: scores up to float32 rounding
        scores = ("original_score", "perturbed_score")
        assert [{k: v for k, v in r.items() if k not in scores} for r in watched] == [
            {k: v for k, v in r.items() if k not in scores} for r in silent]
    kinds = [r["result_type"] for r in watched]
    assert lines[-1]["done"] == 5 and lines[-1]["queries"] == sum(r["num_queries"] for r in watched)
    assert [lines[-1][k] for k in ("Successful", "Failed", "Skipped")] == [kinds.count(k) for k in
                                                                           ("Successful", "Failed", "Skipped")]
