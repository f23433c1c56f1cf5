"""TextDefender's attack protocol (advtrain.attacks.protocols) against TextDefender's code restated
(tests/references/textdefender_attack_reference.py): the printed Attack and same-seed records of TextFooler and PSO,
the sample rule and the budget of 50 x words; and the protocol's way from the config to the shards."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pandas as pd
import pytest
from attack_fixtures import attack_env
from conftest import REPO, synthetic_reviews

from advtrain.attacks import AttackSettings, attack_examples, build_attack, protocols
from advtrain.attacks.run import _record, example_seed, read_records
from advtrain.config import ConfigError

MAX_LENGTH = 32
SEED = 765


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    return attack_env(tmp_path_factory.mktemp("protocol_env"), tiny_model, MAX_LENGTH)


@pytest.fixture(scope="module")
def wrapper(env):
    return env["wrapper"]


def ours(recipe, wrapper, resources):
    settings = {"pso_search": "textattack-0.3.11"} if recipe == "pso" else {}  # 0.3.11's stock search, as the reference
    build = build_attack(recipe, wrapper, resources, **settings)
    return protocols.apply("textdefender", build, wrapper, resources)


def reference(recipe, wrapper, resources):
    import textdefender_attack_reference as ref

    with ref.local_resources(resources["word_embedding"], resources["sentence_encoder"], resources["hownet"]) as use:
        return ref.build_english_attacker(SimpleNamespace(**{**vars(ref.ARGS), "attack_method": recipe}), wrapper, use)


def without_goal_function(attack) -> str:
    """The printed Attack less its goal function's entry (compared apart: the class and budget attribute differ in
    name only, see test_goal_function_is_textdefenders)."""
    return re.sub(r"\(goal_function\):.*?\n  \(transformation\)", "(transformation)", str(attack), flags=re.S)


@pytest.mark.parametrize("recipe", ["textfooler", "pso"])
def test_protocol_attack_is_textdefenders(env, wrapper, examples, tmp_path, recipe):
    """The printed Attack (every component and setting), then the records of the same examples and seeds."""
    from advtrain.attacks.concurrent import attack_all

    resources = env["resources"]
    examples = examples[:2] if recipe == "pso" else examples  # PSO spends up to its 50 x words budget per example
    build = ours(recipe, wrapper, resources)
    theirs = reference(recipe, wrapper, resources)
    assert without_goal_function(build.attack) == without_goal_function(theirs)
    printed = str(build.attack)
    assert "MaxWordsPerturbed" in printed and "WordSwapEmbedding" in printed and "WordEmbeddingDistance" not in printed
    assert build.substitutions and build.substitutions[-1].startswith("sentence_encoder: UniversalSentenceEncoder")

    out = tmp_path / f"{recipe}.jsonl"
    settings = AttackSettings(max_length=MAX_LENGTH, seed=SEED, concurrency=1, protocol="textdefender",
                              pso_search="textattack-0.3.11")
    summary = attack_examples(env["victim"], examples, recipe, resources, settings, out_path=out)
    records = read_records(out)
    assert summary["run"]["protocol"] == "textdefender"
    jobs = [(i, text, label) for i, (text, label) in enumerate(examples)]
    results = attack_all(theirs, jobs, lambda text, label: example_seed(SEED, text, label))
    expected = [_record(i, examples[i], results[i], 0) for i, _, _ in jobs]
    scores = ("original_score", "perturbed_score")
    assert [{k: v for k, v in r.items() if k not in (*scores, "query_budget")} for r in records] == [
        {k: v for k, v in r.items() if k not in scores} for r in expected]
    for a, b in zip(records, expected, strict=True):
        assert [a[k] for k in scores] == pytest.approx([b[k] for k in scores], rel=1e-5, abs=1e-6)
        assert a["query_budget"] == 50 * a["words_total"] and a["num_queries"] <= a["query_budget"]
    assert {r["result_type"] for r in records} - {"Skipped"}, "the tiny victim should be attacked on something"


@pytest.mark.parametrize("recipe", ["pwws", "textbugger", "bert_attack", "deepwordbug"])
def test_protocol_builds_the_literatures_recipes_as_textdefender(env, wrapper, recipe):
    """The recipes of config/textdefender.yaml and the rest TextDefender builds, each as build_english_attacker
    leaves it (textattack_utils.py:100-164): the search of its stock recipe, the swap TextDefender puts in (50
    candidates), no word-embedding distance, at most 30 % of words, the windowed similarity and 50 x words queries.
    Built only: attacking with BERT-Attack's 50 masked-LM candidates per sub-word costs minutes on the tiny model."""
    from advtrain.attacks.textdefender_parts import PerWordBudgetClassification

    build = ours(recipe, wrapper, env["resources"])
    stock = build_attack(recipe, wrapper, env["resources"]).attack
    attack = build.attack
    assert type(attack.search_method) is type(stock.search_method)
    assert isinstance(attack.goal_function, PerWordBudgetClassification)
    printed = str(attack)
    assert "WordEmbeddingDistance" not in printed
    assert re.search(r"MaxWordsPerturbed\(\s*\(max_percent\):\s*0\.3\b", printed), printed
    assert re.search(r"\(window_size\):\s*15\b", printed) and "0.840845057" in printed, printed
    if recipe == "bert_attack":
        assert re.search(r"\(transformation\):\s*WordSwapMaskedLM", printed), printed
        assert attack.transformation.method == "bert-attack" and attack.transformation.max_candidates == 50
    elif recipe == "deepwordbug":  # printed as its parent, CompositeTransformation
        from advtrain.attacks.textdefender_parts import RandomCompositeTransformation

        assert isinstance(attack.transformation, RandomCompositeTransformation)
        assert attack.transformation.total_count == 50 and len(attack.transformation.transformations) == 4
    else:
        assert re.search(r"\(transformation\):\s*WordSwap(Embedding|NeighbourList)", printed), printed
        assert attack.transformation.max_candidates == 50


@pytest.fixture(scope="module")
def examples():
    return synthetic_reviews(4, seed=5)


def test_goal_function_is_textdefenders(env, wrapper):
    """Ours and the restated copy's: UntargetedClassification with 50 queries per word, set per example before the
    first query, which counts."""
    from textattack.goal_functions import UntargetedClassification
    from textattack.shared import AttackedText

    goal = ours("textfooler", wrapper, env["resources"]).attack.goal_function
    theirs = reference("textfooler", wrapper, env["resources"]).goal_function
    assert isinstance(goal, UntargetedClassification) and isinstance(theirs, UntargetedClassification)
    assert goal.query_budget_per_word == theirs.query_budget_size == 50
    assert goal.batch_size == theirs.batch_size
    for text in ("a good film", "the plot was really quite dull and the acting poor"):
        for g in (goal, theirs):
            g.init_attack_example(AttackedText(text), 1)
        assert goal.query_budget == theirs.query_budget == 50 * len(text.split()) == protocols.example_budget(
            len(text.split()))
        assert goal.num_queries == theirs.num_queries == 1


def test_example_budget():
    assert protocols.example_budget(7) == 350
    assert protocols.example_budget(7, "paper") is None
    with pytest.raises(ValueError, match="attacks.protocol"):
        protocols.example_budget(7, "advbench")


def test_sample_rule_is_textdefenders():
    """More than 4 words split on spaces, drawn without replacement by NumPy seeded with the seed: TextDefender's
    main.py:253-257 restated, on rows with short ones among them."""
    import textdefender_attack_reference as ref

    rows = synthetic_reviews(60, seed=3) + [("too short", 1), ("one two three four", 0), ("a  b c d", 1)]
    test = pd.DataFrame(rows, columns=["text", "label"])
    for n, seed in ((20, 42), (20, 7), (5, 42)):
        chosen = protocols.select_examples(test, n, seed)
        assert chosen == ref.choose_instances(rows, SimpleNamespace(attack_numbers=n), seed)
        assert len(chosen) == n and all(len(t.split(" ")) > 4 for t, _ in chosen)
    eligible = [r for r in rows if len(r[0].split(" ")) > 4]
    assert "a  b c d" in [t for t, _ in eligible]  # 5 fields when split on single spaces, as TextDefender counts
    everything = protocols.select_examples(test, 1000, 42, return_index=True)  # more than there are: all, shuffled
    assert sorted(t for t, _, _ in everything) == sorted(t for t, _ in eligible)
    assert all(test.loc[i, "text"] == t for t, _, i in everything)
    assert protocols.sample("paper", test, 5, 42) != protocols.sample("textdefender", test, 5, 42)


def test_protocol_in_config_and_shards():
    import yaml

    assert protocols.describe({"protocol": "paper", "num_examples": 9}) == {}  # the paper's shards keep their params
    preset = yaml.safe_load((REPO / "config/textdefender.yaml").read_text())["attacks"]
    shown = protocols.describe({**preset})
    assert shown["protocol"] == "textdefender"
    assert shown["sample_rule"].startswith("1000 random test examples with more than 4 words")
    assert shown["budget_per_example"].startswith("50 x words")
    with pytest.raises(ConfigError, match=r"attacks\.query_budget: 2000 is set.*attacks\.protocol: textdefender"):
        protocols.check_config({"attacks": {"protocol": "textdefender", "query_budget": 2000}})
    protocols.check_config({"attacks": {"protocol": "paper", "query_budget": 2000}})
    # The protocol's constraints read USE (or its stand-in) and the counter-fitted swap (PSO's own: HowNet)
    assert "word_embedding" not in protocols.required_resources("paper", "pso")
    assert {"word_embedding", "sentence_encoder"} <= set(protocols.required_resources("textdefender", "pso"))


def test_textdefender_table_has_its_columns():
    """Clean%, then per attack Aua%, Suc% and #Query, from the gathered summaries (mean ± sd over seeds)."""
    from advtrain.attacks.metrics import summarise
    from advtrain.tables import textdefender_table

    def run(method, seed, attack, kinds, queries):
        records = [{"result_type": k, "num_queries": q, "words_changed": 1, "words_total": 10}
                   for k, q in zip(kinds, queries, strict=True)]
        return {"dataset": "MR", "method": method, "seed": seed, "attack": attack, **summarise(records)}

    summaries = [run("BERT", 1, "textfooler", ["Successful", "Failed", "Skipped", "Successful"], [10, 40, 1, 20]),
                 run("BERT", 2, "textfooler", ["Successful", "Failed", "Failed", "Skipped"], [30, 50, 60, 1]),
                 run("BERT", 1, "pso", ["Failed", "Failed", "Skipped", "Successful"], [100, 200, 1, 300])]
    numeric, display = textdefender_table(summaries, ["BERT", "PGD-AT"])
    assert list(display.columns) == ["dataset", "method", "Clean%", "TextFooler Aua%", "TextFooler Suc%",
                                     "TextFooler #Query", "PSO Aua%", "PSO Suc%", "PSO #Query", "seeds"]
    row = display.iloc[0]
    # TextFooler: seed 1 Clean 75, Aua 25, Suc 66.7, #Query 70/3; seed 2 Clean 75, Aua 50, Suc 33.3, #Query 140/3
    assert row["Clean%"] == "75.0 ± 0.0" and row["TextFooler Aua%"] == "37.5 ± 17.7"
    assert row["TextFooler Suc%"] == "50.0 ± 23.6" and row["TextFooler #Query"] == "35.0 ± 16.5"
    assert (row["PSO Aua%"], row["PSO Suc%"], row["PSO #Query"]) == ("50.0", "33.3", "200.0")
    assert list(display["method"]) == ["BERT"]  # PGD-AT has no runs
    tf = numeric[numeric["attack"] == "TextFooler"].iloc[0]
    assert tf["accuracy_under_attack_mean"] == pytest.approx(37.5) and tf["seeds"] == 2


def test_schema_lists_the_protocols():
    import yaml

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    key = schema["properties"]["attacks"]["properties"]["protocol"]
    assert tuple(key["enum"]) == protocols.PROTOCOLS and key["default"] == protocols.DEFAULT


def test_effort_counts_failures_at_each_examples_budget():
    """Under a per-example budget (records with `query_budget`), a failure "ran out the budget" at its own budget."""
    from advtrain.attacks.metrics import outcomes, summarise
    from advtrain.robustness import effort_table

    records = [{"index": i, "result_type": k, "num_queries": q, "words_changed": 0, "words_total": w,
                "query_budget": 50 * w} for i, (k, q, w) in enumerate(
                    [("Failed", 250, 5), ("Failed", 250, 6), ("Successful", 40, 6), ("Skipped", 1, 9)])]
    summary = {"dataset": "MR", "method": "BERT", "seed": 1, "attack": "textfooler", "query_budget": None,
               **summarise(records), "examples": outcomes(records)}
    assert summary["examples"]["query_budget"] == [250, 300, 300, 450]
    numeric, display = effort_table([summary], ["BERT"])
    assert numeric.iloc[0]["failures_at_budget"] == 1  # 250 of 250; the other failure stopped at 250 of 300
    assert display.iloc[0]["budget"] == "per example"
    assert display.iloc[0]["failed at budget (% of attacked)"] == "1 (33.3)"
