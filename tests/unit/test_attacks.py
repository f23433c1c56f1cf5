"""The attack stage's package half: recipes built from local resources, sharded and resumable runs, metrics.

Everything runs offline on tiny stand-ins (tests/support/attack_fixtures.py): a paragramcf-layout embedding, a HowNet bank,
a lexicon flair tagger, a tiny sentence-transformers encoder and masked LM, and a briefly trained tiny victim.
"""

from __future__ import annotations

import json
import math

import pytest
from attack_fixtures import attack_env, build_word_embedding
from conftest import REPO, synthetic_reviews

from advtrain.attacks import (
    RECIPES,
    RESOURCE_KEYS,
    AttackSettings,
    Shard,
    attack_examples,
    build_attack,
    gather,
    required_resources,
    select_examples,
    shard_count,
    shard_indices,
    summarise,
)
from advtrain.attacks import resources as res
from advtrain.attacks.metrics import summaries_equal
from advtrain.attacks.recipes import REGISTRY
from advtrain.attacks.run import read_records, sample_note
from advtrain.errors import ResourceError

MAX_LENGTH = 32
PSO_BUDGET = 120  # PSO spends thousands of queries per example without a budget
FIELDS = {"index": int, "original_text": str, "perturbed_text": str, "ground_truth": int, "original_output": int,
          "perturbed_output": int, "result_type": str, "num_queries": int, "words_changed": int,
          "words_total": int, "perturbed_word_fraction": float}


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    return attack_env(tmp_path_factory.mktemp("attack_env"), tiny_model, MAX_LENGTH)


@pytest.fixture(scope="module")
def wrapper(env):
    return env["wrapper"]


@pytest.fixture(scope="module")
def examples():
    return synthetic_reviews(5, seed=5)


def run(env, examples, recipe, tmp, name, shard=None, **settings):
    """``settings``: AttackSettings' fields, over one example at a time (``concurrency`` 1), 16 texts per forward."""
    settings.setdefault("query_budget", PSO_BUDGET if recipe == "pso" else None)
    settings = {"concurrency": 1, "model_batch_size": 16, **settings}
    out = tmp / f"{name}.jsonl"
    summary = attack_examples(env["victim"], examples, recipe, env["resources"],
                              AttackSettings(max_length=MAX_LENGTH, **settings), out_path=out, shard=shard or Shard())
    return summary, read_records(out)


def check_records(records, examples, positions):
    assert [r["index"] for r in records] == positions
    for r in records:
        for key, kind in FIELDS.items():
            assert isinstance(r[key], kind), (key, r)
        text, label = examples[r["index"]][:2]
        assert r["original_text"] == text and r["ground_truth"] == label
        assert r["words_total"] == len(text.split())
        assert r["perturbed_word_fraction"] == pytest.approx(r["words_changed"] / r["words_total"])
        kind = r["result_type"]
        assert kind in {"Successful", "Failed", "Skipped"}
        if kind == "Skipped":
            assert r["original_output"] != label and r["perturbed_text"] == text and r["words_changed"] == 0
        else:
            assert r["original_output"] == label and r["num_queries"] >= 1
        if kind == "Successful":
            assert r["perturbed_output"] != label and r["words_changed"] >= 1 and r["perturbed_text"] != text
        if kind == "Failed":
            assert r["perturbed_output"] == label


def strip(records):
    return [{k: v for k, v in r.items() if k != "shard_index"} for r in records]


def assert_same_records(ours, theirs):
    """Equal records, scores up to the last bits (a batch's shape changes those; see attacks/concurrent.py)."""
    scores = ("original_score", "perturbed_score")
    assert [{k: v for k, v in r.items() if k not in scores} for r in strip(ours)] == [
        {k: v for k, v in r.items() if k not in scores} for r in strip(theirs)]
    for a, b in zip(ours, theirs, strict=True):
        assert [a[k] for k in scores] == pytest.approx([b[k] for k in scores], rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------------------------------------ recipes end to end
@pytest.mark.parametrize("recipe", RECIPES)  # every recipe of the registry
def test_recipe_runs_end_to_end(env, examples, tmp_path, recipe):
    """One at a time (TextAttack's loop), then 3 examples at once through the query broker: the same records."""
    examples = examples[:4]
    summary, records = run(env, examples, recipe, tmp_path, recipe)
    check_records(records, examples, list(range(4)))
    assert {k: v for k, v in summary.items() if k != "run"} == pytest.approx(summarise(records), nan_ok=True)
    assert summary["original_accuracy"] > 0, "the tiny victim should classify some examples right"
    run_info = summary["run"]
    assert set(required_resources(recipe)) <= set(run_info["resources"])
    if "use" in REGISTRY[recipe].resources:  # the sentence encoder stands in for USE (TextFooler, BAE, ...)
        assert len(run_info["substitutions"]) == 1
        assert run_info["substitutions"][0].startswith("sentence_encoder: UniversalSentenceEncoder -> sentence-")
    else:
        assert run_info["substitutions"] == []
    if recipe == "pso":
        assert all(r["num_queries"] <= PSO_BUDGET for r in records)

    brokered_summary, brokered = run(env, examples, recipe, tmp_path, f"{recipe}-broker", concurrency=3)
    assert_same_records(brokered, records)
    forwards = brokered_summary["run"]["forwards"]
    assert forwards["concurrency"] == 3
    assert forwards["victim"]["requests"] > forwards["victim"]["forwards"], "queries of examples shared forwards"


def test_recipes_keep_the_published_settings(env, wrapper):
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.pre_transformation import MaxModificationRate, StopwordModification
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.constraints.semantics.sentence_encoders import SBERT
    from textattack.search_methods import GreedyWordSwapWIR, ParticleSwarmOptimization
    from textattack.transformations import WordSwapEmbedding, WordSwapHowNet, WordSwapMaskedLM

    def find(attack, cls):
        return [c for c in attack.constraints + attack.pre_transformation_constraints if isinstance(c, cls)]

    tf = build_attack("textfooler", wrapper, env["resources"], query_budget=77, model_batch_size=8).attack
    assert isinstance(tf.transformation, WordSwapEmbedding) and tf.transformation.max_candidates == 50
    assert find(tf, WordEmbeddingDistance)[0].min_cos_sim == 0.5
    assert find(tf, PartOfSpeech)[0].allow_verb_noun_swap is True
    use = find(tf, SBERT)[0]
    assert (use.threshold, use.metric, use.window_size, use.compare_against_original,
            use.skip_text_shorter_than_window) == (0.840845057, "angular", 15, False, True)
    assert "the" in find(tf, StopwordModification)[0].stopwords and "movie" not in find(tf, StopwordModification)[0].stopwords
    assert isinstance(tf.search_method, GreedyWordSwapWIR) and tf.search_method.wir_method == "delete"
    assert tf.goal_function.query_budget == 77 and tf.goal_function.batch_size == 8

    bae = build_attack("bae", wrapper, env["resources"]).attack
    assert isinstance(bae.transformation, WordSwapMaskedLM)
    assert (bae.transformation.method, bae.transformation.max_candidates, bae.transformation.min_confidence) == (
        "bae", 50, 0.0)
    use = find(bae, SBERT)[0]
    assert (use.threshold, use.metric, use.window_size, use.compare_against_original) == (0.936338023, "cosine", 15, True)
    assert bae.goal_function.query_budget == math.inf

    a2t = build_attack("a2t", wrapper, env["resources"]).attack
    assert a2t.transformation.max_candidates == 20 and find(a2t, WordEmbeddingDistance)[0].min_cos_sim == 0.8
    assert find(a2t, PartOfSpeech)[0].allow_verb_noun_swap is False
    assert (find(a2t, MaxModificationRate)[0].max_rate, find(a2t, MaxModificationRate)[0].min_threshold) == (0.1, 4)
    sbert = find(a2t, SBERT)[0]
    assert (sbert.threshold, sbert.metric, sbert.window_size) == (0.9, "cosine", math.inf)
    assert a2t.search_method.wir_method == "gradient"
    # TextAttack's GreedyWordSwapWIR, its words aligned to tokens by offsets (tests/unit/test_word_alignment.py)
    assert type(a2t.search_method).__name__ == "OffsetAlignedWordSwapWIR"
    assert isinstance(a2t.search_method, GreedyWordSwapWIR)

    pso = build_attack("pso", wrapper, env["resources"]).attack
    assert isinstance(pso.transformation, WordSwapHowNet) and "good" in pso.transformation.candidates_bank
    assert isinstance(pso.search_method, ParticleSwarmOptimization)
    assert (pso.search_method.pop_size, pso.search_method.max_iters) == (60, 20)


def test_local_flair_tagger_serves_textattack(env, wrapper):
    from textattack.shared import AttackedText

    build_attack("pso", wrapper, env["resources"])
    text = AttackedText("the good movie was really dull")
    assert [text.pos_of_word_index(i) for i in range(6)] == ["DET", "ADJ", "NOUN", "VERB", "ADV", "ADJ"]


# ------------------------------------------------------------------------------------------------ resources
@pytest.mark.parametrize("recipe, kind", [("textfooler", "word_embedding"), ("bae", "masked_lm"),
                                          ("a2t", "sentence_encoder"), ("pso", "hownet"), ("pso", "flair_pos")])
def test_missing_resource_names_its_config_key(env, wrapper, tmp_path, recipe, kind):
    resources = {k: v for k, v in env["resources"].items() if k != kind}
    with pytest.raises(ResourceError, match=f"attacks.resources.{kind}"):
        build_attack(recipe, wrapper, resources)
    resources[kind] = str(tmp_path / "absent")
    with pytest.raises(ResourceError, match=rf"attacks\.resources\.{kind}: .*absent does not exist"):
        build_attack(recipe, wrapper, resources)


def test_missing_sentence_encoder_names_both_keys(env, wrapper):
    resources = {k: v for k, v in env["resources"].items() if k != "sentence_encoder"}
    with pytest.raises(ResourceError) as err:
        build_attack("bae", wrapper, resources)
    assert "attacks.resources.use" in str(err.value) and "attacks.resources.sentence_encoder" in str(err.value)


def test_broken_resources_are_reported(env, tmp_path, monkeypatch):
    import nltk

    folder = build_word_embedding(tmp_path / "we")
    (folder / "nn.npy").unlink()
    with pytest.raises(ResourceError, match=r"attacks\.resources\.word_embedding: .*missing nn\.npy"):
        res.load_word_embedding(folder)
    monkeypatch.setattr(nltk.data, "path", [])
    with pytest.raises(ResourceError, match=r"attacks\.resources\.nltk_data: NLTK package"):
        res.configure_nltk(tmp_path)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ResourceError, match=r"attacks\.resources\.flair_pos"):
        res.load_flair_pos(tmp_path / "junk.pkl")


def test_use_substitution_is_reported(env, wrapper, tmp_path):
    if res.tensorflow_hub_available():
        pytest.skip("tensorflow_hub is installed: USE would be used")
    (tmp_path / "use").mkdir()
    build = build_attack("textfooler", wrapper, {**env["resources"], "use": str(tmp_path / "use")})
    [message] = build.substitutions
    assert message.startswith(f"sentence_encoder: UniversalSentenceEncoder -> sentence-transformers "
                              f"{env['resources']['sentence_encoder']} (same threshold/window")
    assert "threshold=0.840845057" in message and "window_size=15" in message
    assert "tensorflow_hub is not installed" in message
    assert required_resources("textfooler", {"use": "x"}) == ["nltk_data", "word_embedding", "sentence_encoder"]


def test_neighbour_table_stands_in_for_the_embedding(env, wrapper, examples, tmp_path):
    table = {"good": ["great", "fine", "Good"], "bad": ["poor", "awful"], "movie": ["film"], "lonely": []}
    (tmp_path / "nb.json").write_text(json.dumps(table))
    resources = {k: v for k, v in env["resources"].items() if k != "word_embedding"}
    resources["word_neighbours"] = str(tmp_path / "nb.json")
    assert required_resources("textfooler", resources) == ["nltk_data", "word_neighbours", "sentence_encoder"]
    assert required_resources("a2t", resources)[1] == "word_neighbours"
    assert required_resources("a2t", env["resources"])[1] == "word_embedding", "the embedding wins when set"
    for recipe, candidates, cos in (("textfooler", 50, 0.5), ("a2t", 20, 0.8)):
        build = build_attack(recipe, wrapper, resources)
        swap = build.attack.transformation
        assert type(swap).__name__ == "WordSwapNeighbourList" and swap.max_candidates == candidates
        assert not any(type(c).__name__ == "WordEmbeddingDistance" for c in build.attack.constraints)
        [message] = [m for m in build.substitutions if m.startswith("word_embedding:")]
        assert f"min_cos_sim={cos}" in message and str(tmp_path / "nb.json") in message
        assert "at most 2 neighbours per word" in message  # "good" itself is dropped
        assert build.resources["word_neighbours"] == str(tmp_path / "nb.json")
    assert swap._get_replacement_words("Good") == ["Great", "Fine"], "case recovered, the word itself dropped"
    assert swap._get_replacement_words("unknown") == []
    summary, records = run({**env, "resources": resources}, examples[:3], "textfooler", tmp_path, "nb")
    check_records(records, examples[:3], [0, 1, 2])
    assert any(m.startswith("word_embedding:") for m in summary["run"]["substitutions"])
    del resources["word_neighbours"]
    with pytest.raises(ResourceError, match=r"attacks\.resources\.word_embedding.*attacks\.resources\.word_neighbours"):
        build_attack("textfooler", wrapper, resources)


def test_textbugger_takes_the_neighbour_table_without_a_cosine_check(env, wrapper, tmp_path):
    """TextBugger's WordSwapEmbedding(max_candidates=5) has no WordEmbeddingDistance: the table stands in for it."""
    (tmp_path / "nb.json").write_text(json.dumps({"good": ["great", "fine"], "movie": ["film"]}))
    resources = {k: v for k, v in env["resources"].items() if k != "word_embedding"}
    resources["word_neighbours"] = str(tmp_path / "nb.json")
    build = build_attack("textbugger", wrapper, resources)
    swap = build.attack.transformation.transformations[-1]
    assert type(swap).__name__ == "WordSwapNeighbourList" and swap.max_candidates == 5
    [message] = [m for m in build.substitutions if m.startswith("word_embedding:")]
    assert message.startswith("word_embedding: WordSwapEmbedding(max_candidates=5) -> the neighbour table ")
    assert "WordEmbeddingDistance" not in message and "cosine" not in message


def test_pwws_needs_wordnet_in_the_nltk_data(env, wrapper, tmp_path, monkeypatch):
    """WordNet is not required of every nltk_data folder (one fetched before PWWS existed serves the others), but
    PWWS stops at its build naming the key when it is missing."""
    import shutil

    import nltk

    folder = tmp_path / "nltk_data"
    for location in res.NLTK_PACKAGES.values():
        (folder / location).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{env['resources']['nltk_data']}/{location}.zip", folder / f"{location}.zip")
    monkeypatch.setattr(nltk.data, "path", [])
    resources = {**env["resources"], "nltk_data": str(folder)}
    build_attack("deepwordbug", wrapper, resources)  # NLTK's stopwords only
    with pytest.raises(ResourceError, match=r"attacks\.resources\.nltk_data: pwws needs the NLTK package wordnet"):
        build_attack("pwws", wrapper, resources)


@pytest.mark.parametrize("content", ["[1, 2]", "{\"a\": \"b\"}", "{\"a\": []}", "not json"])
def test_bad_neighbour_table_names_its_key(tmp_path, content):
    (tmp_path / "nb.json").write_text(content)
    with pytest.raises(ResourceError, match=r"attacks\.resources\.word_neighbours"):
        res.load_word_neighbours(tmp_path / "nb.json")


def test_word_embedding_loader_reads_paragramcf_layout(env):
    emb = res.load_word_embedding(env["resources"]["word_embedding"])
    good = emb.word2index("good")
    neighbours = {emb.index2word(i) for i in emb.nearest_neighbours(good, 5)}
    assert neighbours <= {"great", "excellent", "wonderful", "superb", "enjoyable", "brilliant", "charming", "fine",
                          "nice", "lovely", "decent", "terrific", "splendid"}
    assert emb.get_cos_sim("good", "great") > 0.8 > emb.get_cos_sim("good", "bad")
    assert emb.get_cos_sim("good", "great") == emb._cos_sim_mat[min(good, emb.word2index("great"))][
        max(good, emb.word2index("great"))]


def test_resource_locations():
    config = {"cache_dir": "cache", "attacks": {"resources": {"hownet": "/data/hownet.pkl"}}}
    assert res.resource_location(config, "hownet") == ("/data/hownet.pkl", True)
    assert res.resource_location(config, "word_embedding") == ("cache/attacks/paragramcf", False)
    # where the workflow fetches it (the pretrained model's folder instead when that model is its source)
    assert res.resource_location(config, "masked_lm") == ("cache/attacks/masked_lm/google-bert--bert-base-uncased",
                                                          False)
    assert res.resource_location({**config, "model": {"name": "google-bert/bert-base-uncased"}}, "masked_lm") == (
        "cache/models/google-bert--bert-base-uncased", False)
    assert res.resource_location(config, "use") == (None, False)
    assert res.resource_location(config, "word_neighbours") == (None, False)
    assert set(RESOURCE_KEYS) == set(res.FETCHERS)
    with pytest.raises(ValueError, match="unknown attack resource"):
        res.resource_location(config, "glove")


# ------------------------------------------------------------------------------------------------ metrics
def test_success_rate_follows_textattack():
    def rec(kind, i, changed=1, total=10, queries=5):
        return {"index": i, "result_type": kind, "words_changed": changed, "words_total": total, "num_queries": queries}

    records = [rec("Successful", 0, 1, 10, 20), rec("Successful", 1, 3, 10, 40), rec("Failed", 2, 2, 10, 60),
               rec("Skipped", 3, 0, 10, 1), rec("Maximized", 4, 1, 5, 30)]
    s = summarise(records)
    assert (s["total"], s["successful"], s["failed"], s["skipped"], s["maximized"]) == (5, 3, 1, 1, 1)
    assert s["attack_success_rate"] == pytest.approx(3 / 4)
    assert s["successful_over_total"] == pytest.approx(3 / 5)
    assert s["original_accuracy"] == pytest.approx(4 / 5)
    assert s["accuracy_under_attack"] == pytest.approx(1 / 5)
    assert s["avg_perturbed_word_pct"] == pytest.approx((10 + 30 + 20) / 3)
    assert s["avg_num_queries"] == pytest.approx((20 + 40 + 60 + 30) / 4)
    assert s["avg_words_per_input"] == pytest.approx(45 / 5)
    nothing = summarise([rec("Skipped", 0, 0)])
    assert math.isnan(nothing["attack_success_rate"]) and nothing["original_accuracy"] == 0
    assert math.isnan(summarise([])["accuracy_under_attack"])
    with pytest.raises(ValueError, match="more than one shard"):
        gather([[rec("Failed", 0)], [rec("Failed", 0)]])


def test_select_examples_and_shards():
    import pandas as pd

    df = pd.DataFrame(synthetic_reviews(50, seed=3), columns=["text", "label"])
    first = select_examples(df, 10, seed=1)
    assert first == select_examples(df.copy(), 10, seed=1) != select_examples(df, 10, seed=2)
    assert len(first) == 10 and all(isinstance(t, str) and y in (0, 1) for t, y in first)
    with_index = select_examples(df, 10, seed=1, return_index=True)
    assert [(df.text[i], df.label[i]) for _, _, i in with_index] == first
    assert len(select_examples(df, 500, seed=1)) == 50
    parts = [shard_indices(11, k, 3) for k in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(11)) and parts[1] == [1, 4, 7, 10]
    with pytest.raises(ValueError):
        shard_indices(11, 3, 3)


# ------------------------------------------------------------------------------------------------ shards, resume
@pytest.fixture(scope="module")
def pso_single(env, examples, tmp_path_factory):
    return run(env, examples, "pso", tmp_path_factory.mktemp("single"), "single")


def test_two_shards_equal_one(env, examples, tmp_path, pso_single):
    summary, records = pso_single
    shards = []
    for k in range(2):
        shard_summary, shard_records = run(env, examples, "pso", tmp_path, f"shard{k}", Shard(index=k, count=2))
        check_records(shard_records, examples, shard_indices(len(examples), k, 2))
        assert shard_summary["total"] == len(shard_records)
        shards.append(shard_records)
    gathered = gather(shards)
    assert strip(gathered) == strip(records)
    single = {k: v for k, v in summary.items() if k != "run"}
    assert summaries_equal(summarise(gathered), single)


class Killed(BaseException):
    """Stands in for the job being killed: nothing in the attack loop catches it."""


def test_checkpointed_run_resumes(env, examples, tmp_path, monkeypatch, pso_single):
    """Killed after 2 examples (one at a time); the rerun, 3 at a time through the broker, attacks only the rest."""
    import textattack

    calls = []
    real = textattack.Attack.attack
    limit = {"n": 2}

    def counted(self, example, ground_truth_output):
        if len(calls) >= limit["n"]:
            raise Killed("simulated kill")
        calls.append(example.text)
        return real(self, example, ground_truth_output)

    monkeypatch.setattr(textattack.Attack, "attack", counted)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Killed):
        run(env, examples, "pso", tmp_path, "resumed", Shard(checkpoint_dir=ckpt), checkpoint_interval=1)
    assert len(read_records(ckpt / "records.jsonl")) == 2 and (ckpt / "attack_run.json").is_file()
    assert not (tmp_path / "resumed.jsonl").exists()
    with open(ckpt / "records.jsonl", "a") as f:
        f.write('{"index": 4, "original_')  # the line a kill cut short

    calls.clear()
    limit["n"] = 99
    summary, records = run(env, examples, "pso", tmp_path, "resumed", Shard(checkpoint_dir=ckpt), checkpoint_interval=1,
                           concurrency=3)
    assert summary["run"]["resumed_examples"] == 2
    assert sorted(calls) == sorted(t for t, _ in examples[2:]), "only the examples after the checkpoint again"
    assert_same_records(records, pso_single[1])
    assert summaries_equal(summarise(records), summarise(pso_single[1]))
    assert not (ckpt / "records.jsonl").exists(), "the checkpoint is removed once the output is written"
    json.dumps(summary)  # the summary is JSON-serialisable as returned


@pytest.mark.timeout(600)
def test_example_that_raises_is_reported_and_the_others_finish(env, examples, tmp_path, monkeypatch, pso_single):
    """With the broker, an example whose attack raises stops neither its worker nor the others: the shard fails
    naming it once the rest are done and checkpointed, and the rerun attacks only that one."""
    import textattack

    from advtrain.attacks.concurrent import AttackErrors

    real = textattack.Attack.attack
    bad = examples[1][0]
    attacked = []

    def flaky(self, example, ground_truth_output):
        attacked.append(example.text)
        if example.text == bad:
            raise ValueError("a broken example")
        return real(self, example, ground_truth_output)

    monkeypatch.setattr(textattack.Attack, "attack", flaky)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(AttackErrors, match=r"1 example\(s\) raised.*\n  1: ValueError: a broken example") as err:
        run(env, examples, "pso", tmp_path, "flaky", Shard(checkpoint_dir=ckpt), concurrency=2)
    assert list(err.value.errors) == [1]
    assert sorted(r["index"] for r in read_records(ckpt / "records.jsonl")) == [0, 2, 3, 4]

    monkeypatch.setattr(textattack.Attack, "attack", real)
    summary, records = run(env, examples, "pso", tmp_path, "flaky", Shard(checkpoint_dir=ckpt), concurrency=2)
    assert summary["run"]["resumed_examples"] == 4
    assert_same_records(records, pso_single[1])


def test_json_safe_turns_nan_into_null_recursively():
    import json

    from advtrain.attacks.metrics import json_safe

    value = {"asr": float("nan"), "runs": [{"x": float("nan")}, 1.5], "pair": (float("nan"), "a")}
    assert json.loads(json.dumps(json_safe(value), allow_nan=False)) == {
        "asr": None, "runs": [{"x": None}, 1.5], "pair": [None, "a"]}


# --------------------------------------------------------------------------- capped samples, empty shards


def test_attack_settings_defaults_are_the_schemas():
    """AttackSettings' defaults (for library use) are the workflow's: the schema's ``attacks`` defaults."""
    import dataclasses

    import yaml

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    keys = schema["properties"]["attacks"]["properties"]
    defaults = {f.name: f.default for f in dataclasses.fields(AttackSettings) if f.name != "max_length"}
    assert defaults == {key: keys[key]["default"] for key in defaults}
    # model.max_length is required by the schema: so is the field
    assert dataclasses.fields(AttackSettings)[0].default is dataclasses.MISSING


def test_shards_never_outnumber_the_requested_examples():
    assert shard_count({"shards": 8, "num_examples": 3}) == 3
    assert shard_count({"shards": 4, "num_examples": 1000}) == 4
    assert shard_count({}) == 4


def test_sample_note_says_requested_and_attacked():
    assert sample_note(500, 50, 50) == "requested 500, attacked 50 (the test split has 50 rows)"
    assert sample_note(500, 500, 872) is None
    assert sample_note(None, 50, 50) is None


def test_an_empty_shard_writes_a_valid_empty_record_and_loads_nothing(tmp_path):
    """A split smaller than the shard count (the DAG is built before the split exists): the shard beyond the sample
    writes empty records and a summary without loading the model (here absent) or TextAttack."""
    out = tmp_path / "shard3-of-3.jsonl"
    summary = attack_examples(tmp_path / "no-model", [("good film", 1), ("bad film", 0)], "textfooler", {},
                              AttackSettings(max_length=None), out_path=out,
                              shard=Shard(index=2, count=3, checkpoint_dir=tmp_path / "ckpt"))
    assert out.read_text() == "" and read_records(out) == []
    assert summary["total"] == 0 and math.isnan(summary["attack_success_rate"])
    assert summary["run"]["examples"] == 0 and summary["run"]["substitutions"] == []
    assert not (tmp_path / "ckpt").exists()
