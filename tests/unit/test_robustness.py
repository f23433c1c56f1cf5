"""Robustness tables from synthetic per-example records with known answers: budget curves and their areas, attack
effort, paired per-example tests, intervals in Tables 2 and 4, every configured dataset in the tables, and the
validity checks of adversarial examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from attack_fixtures import validity_frame

from advtrain.attacks import budget
from advtrain.attacks.metrics import outcomes
from advtrain.robustness import (
    adversarial_samples,
    budget_curves,
    budget_table,
    effort_table,
    mean_curves,
    paired_example_tests,
    validity_table,
    write_samples,
)
from advtrain.stats import Bootstrap
from advtrain.tables import table2_asr, table4_accuracy

FAST = Bootstrap(resamples=200)


def records(types, queries):
    return [{"index": i, "result_type": t, "num_queries": q, "words_changed": 1 if t == "Successful" else 0,
             "words_total": 10} for i, (t, q) in enumerate(zip(types, queries, strict=True))]


def summary(method, seed, types, queries, attack="textfooler", dataset="MR", query_budget=50):
    return {"dataset": dataset, "method": method, "seed": seed, "attack": attack, "query_budget": query_budget,
            "attack_success_rate": None, "substitutions": [], "examples": outcomes(records(types, queries))}


TYPES = ["Successful", "Successful", "Failed", "Skipped", "Successful"]
QUERIES = [3, 10, 50, 0, 10]


def test_budget_curve_steps_exactly_at_the_recorded_query_counts():
    curve = budget.budget_curve(TYPES, QUERIES, 50)
    assert list(curve["budget"]) == [1, 3, 10, 50]
    assert list(curve["successes"]) == [0, 1, 3, 3]
    assert list(curve["asr"]) == [0.0, 25.0, 75.0, 75.0]  # 4 attacked (one skipped)
    assert list(curve["accuracy_under_attack"]) == [80.0, 60.0, 20.0, 20.0]  # of all 5
    # Between steps the value holds; one query below a step it has not yet changed.
    assert list(budget.step_values(curve, [2, 3, 9, 10, 49])) == [0.0, 25.0, 25.0, 75.0, 75.0]


def test_area_over_log_budget_is_the_integral_of_the_step_curve():
    area = budget.auc(TYPES, QUERIES, 50)
    expected = (25.0 * (math.log(10) - math.log(3)) + 75.0 * (math.log(50) - math.log(10))) / math.log(50)
    assert area["auc_asr"] == pytest.approx(expected)
    # The accuracy curve's area, numerically on a fine log grid.
    grid = np.exp(np.linspace(0, math.log(50), 200001))
    values = budget.step_values(budget.budget_curve(TYPES, QUERIES, 50), grid, "accuracy_under_attack")
    assert area["auc_accuracy_under_attack"] == pytest.approx(values.mean(), abs=1e-3)
    with pytest.raises(ValueError, match="above 1"):
        budget.auc(TYPES, QUERIES, 1)


def test_effort_separates_failures_that_hit_the_budget():
    e = budget.effort(TYPES + ["Failed"], QUERIES + [20], 50)
    assert e["successes"] == 3 and e["success_queries_median"] == 10 and e["failures"] == 2
    assert e["failures_at_budget"] == 1 and e["failures_at_budget_pct"] == pytest.approx(100 / 5)
    assert math.isnan(budget.effort(["Failed"], [5], None)["success_queries_median"])


def test_budget_and_effort_tables_per_method():
    runs = [summary("BERT", 1, TYPES, QUERIES), summary("BERT", 2, TYPES, QUERIES),
            summary("LDS", 1, ["Failed"] * 4 + ["Successful"], [50, 50, 50, 50, 40])]
    numeric, display = budget_table(runs, ["BERT", "LDS"], FAST)
    bert = numeric.set_index("method").loc["BERT"]
    assert bert["auc_asr_mean"] == pytest.approx(budget.auc(TYPES, QUERIES, 50)["auc_asr"])
    assert bert["auc_asr_sd"] == 0 and bert["asr_at_1_budget"] == 75.0 and bert["seeds"] == 2
    assert bert["asr_at_0.1_budget"] == 25.0  # 5 queries: only the success after 3
    assert bert["auc_asr_ci_low"] <= bert["auc_asr_mean"] <= bert["auc_asr_ci_high"]
    assert list(display.columns[:4]) == ["attack", "dataset", "method", "budget"]
    assert "ASR @ 10% budget" in display.columns and "ASR area 95% CI" in display.columns
    curves = budget_curves(runs)
    assert set(curves["valid_up_to"]) == {50.0} and curves["budget"].max() == 50
    mean = mean_curves(curves)
    lds = mean[(mean["method"] == "LDS") & (mean["metric"] == "asr")]
    assert list(lds["budget"]) == [1, 40, 50] and list(lds["mean"]) == [0.0, 20.0, 20.0]
    numeric, display = effort_table(runs, ["BERT", "LDS"])
    lds = numeric.set_index("method").loc["LDS"]
    assert lds["failures_at_budget"] == 4 and lds["failures_at_budget_pct"] == 80.0
    assert display.set_index("method").loc["LDS", "failed at budget (% of attacked)"] == "4 (80.0)"
    with pytest.raises(ValueError, match="no per-example `examples`"):
        budget_table([{**runs[0], "examples": None}], ["BERT"], FAST)


def test_unlimited_budget_ends_at_the_largest_query_count():
    runs = [summary("BERT", 1, TYPES, QUERIES, query_budget=None)]
    numeric, display = budget_table(runs, ["BERT"], FAST)
    assert numeric["budget"].iloc[0] == 50 and not numeric["budget_limited"].iloc[0]
    assert display["budget"].iloc[0] == "50 (largest recorded)"


def correct_sets(rng, n=300):
    """Clean correctness per (dataset, method, seed): PGD-AT identical to BERT, ALWAYS right on every example."""
    out = {}
    for seed in (1, 2):
        base = {"in_distribution": rng.random(n) < 0.8, "YELP": rng.random(n) < 0.7}
        out[("MR", "BERT", seed)] = base
        out[("MR", "PGD-AT", seed)] = {k: v.copy() for k, v in base.items()}
        out[("MR", "ALWAYS", seed)] = {k: np.ones(n, dtype=bool) for k in base}
    return out


def test_paired_tests_identical_methods_and_an_always_right_one():
    rng = np.random.default_rng(0)
    correct = correct_sets(rng)
    attacks = []
    for seed in (1, 2):
        types = list(rng.choice(["Successful", "Failed", "Skipped"], size=60))
        attacks += [summary("BERT", seed, types, [5] * 60), summary("PGD-AT", seed, types, [5] * 60),
                    summary("ALWAYS", seed, ["Failed"] * 60, [50] * 60)]
    numeric, display = paired_example_tests(correct, attacks, ["BERT", "PGD-AT", "ALWAYS"], "BERT", FAST)
    rows = numeric.set_index(["method", "metric"])
    assert set(numeric["metric"]) == {"accuracy (MR test)", "accuracy (YELP)", "accuracy under TextFooler"}
    for metric in ("accuracy (MR test)", "accuracy (YELP)", "accuracy under TextFooler"):
        same = rows.loc[("PGD-AT", metric)]
        assert same["difference"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
        assert same["p_value"] == 1.0 and same["method_only"] == same["baseline_only"] == 0
        better = rows.loc[("ALWAYS", metric)]
        assert better["difference"] > 0 and better["ci_low"] > 0 and better["p_value"] < 1e-6
        assert better["baseline_only"] == 0 and better["p_holm"] >= better["p_value"]
    clean = rows.loc[("ALWAYS", "accuracy (MR test)")]
    expected = np.mean([100.0 * (1 - correct[("MR", "BERT", s)]["in_distribution"].mean()) for s in (1, 2)])
    assert clean["difference"] == pytest.approx(expected) and clean["seeds"] == 2 and clean["examples"] == 300
    # Holm over the whole table: six tests, the smallest p multiplied by 6 (capped at 1).
    assert numeric["p_holm"].min() == pytest.approx(min(1.0, 6 * numeric["p_value"].min()))
    assert {"p (McNemar)", "p (Holm)", "95% CI", "only ours / only BERT"} <= set(display.columns)
    # Records pair by example index: a run attacked on other examples is an error.
    shifted = [dict(a) for a in attacks]
    shifted[1] = {**shifted[1], "examples": {**shifted[1]["examples"],
                                             "index": [i + 1 for i in shifted[1]["examples"]["index"]]}}
    with pytest.raises(ValueError, match="different examples"):
        paired_example_tests(correct, shifted, ["BERT", "PGD-AT"], "BERT", FAST)


def evals_for(correct):
    return [{"dataset": d, "method": m, "seed": s, "accuracy": {k: float(v.mean()) for k, v in splits.items()}}
            for (d, m, s), splits in correct.items()]


def test_table4_has_a_column_for_every_configured_dataset():
    rng = np.random.default_rng(1)
    correct = correct_sets(rng)
    # A third training dataset the paper does not have, and a second ood set.
    for seed in (1, 2):
        correct[("MOVIES", "BERT", seed)] = {"in_distribution": np.ones(50, dtype=bool),
                                             "YELP": rng.random(50) < 0.5, "SST": rng.random(50) < 0.5}
    numeric, display = table4_accuracy(evals_for(correct), ["BERT", "PGD-AT"], ["YELP", "SST"],
                                       datasets=["MR", "MOVIES"], correct=correct, bootstrap=FAST)
    labels = ["MR→MR", "MR→YELP", "MR→SST", "MOVIES→MOVIES", "MOVIES→YELP", "MOVIES→SST"]
    assert [c for c in display.columns if c.endswith("(ours)")] == [f"{label} (ours)" for label in labels]
    bert = numeric.set_index("method").loc["BERT"]
    assert bert["MR_on_MR_paper"] == pytest.approx(85.27) and bert["MR_on_YELP_paper"] == pytest.approx(87.06)
    assert math.isnan(bert["MOVIES_on_MOVIES_paper"]) and math.isnan(bert["MR_on_SST_paper"])
    row = display.set_index("method").loc["BERT"]
    assert row["MOVIES→MOVIES (paper)"] == "—" and row["MOVIES→MOVIES (ours)"] == "100.00 ± 0.00"
    # A constant per-example outcome has a point interval; the others contain the mean.
    assert (bert["MOVIES_on_MOVIES_ci_low"], bert["MOVIES_on_MOVIES_ci_high"]) == (100.0, 100.0)
    assert row["MOVIES→MOVIES 95% CI"] == "[100.0, 100.0]"
    assert bert["MR_on_MR_ci_low"] <= bert["MR_on_MR_mean"] <= bert["MR_on_MR_ci_high"]
    assert row["MOVIES→YELP (ours)"] != "—"
    assert display.set_index("method").loc["PGD-AT", "MOVIES→MOVIES (ours)"] == "—"
    # Without per-example predictions: no interval columns (as before).
    plain, _ = table4_accuracy(evals_for(correct), ["BERT"], ["YELP"], datasets=["MR"])
    assert not [c for c in plain.columns if "ci_" in c]


def test_table2_intervals_per_cell_and_for_the_average():
    rng = np.random.default_rng(2)
    runs = []
    for seed in (1, 2):
        for attack in ("textfooler", "a2t"):
            types = list(rng.choice(["Successful", "Failed"], size=80))
            s = summary("BERT", seed, types, [5] * 80, attack=attack)
            s["attack_success_rate"] = types.count("Successful") / 80
            runs.append(s)
    runs.append({**summary("LDS", 1, ["Successful"] * 80, [5] * 80), "attack_success_rate": 1.0})
    numeric, display = table2_asr(runs, ["BERT", "LDS"], bootstrap=FAST)
    rows = numeric.set_index("attack")
    for attack in ("TextFooler", "A2T", "Average"):
        assert rows.loc[attack, "BERT_ci_low"] <= rows.loc[attack, "BERT_mean"] <= rows.loc[attack, "BERT_ci_high"]
    assert (rows.loc["TextFooler", "LDS_ci_low"], rows.loc["TextFooler", "LDS_ci_high"]) == (100.0, 100.0)
    assert math.isnan(rows.loc["A2T", "LDS_ci_low"])  # LDS was not attacked with A2T
    columns = list(display.columns)
    assert columns.index("BERT 95% CI") == columns.index("BERT (ours)") + 1
    assert display.set_index("attack").loc["A2T", "LDS 95% CI"] == "—"


def test_identical_outcomes_get_identical_rounded_intervals_in_every_table():
    """Two methods that get the same examples right and wrong (the same attack outcomes) share their resamples:
    the same interval in Tables 2 and 4 and the budget table, with bounds rounded to two decimals in the csv."""
    rng = np.random.default_rng(5)
    runs, correct = [], {}
    for seed in (1, 2):
        types = list(rng.choice(["Successful", "Failed", "Skipped"], size=40, p=[0.4, 0.5, 0.1]))
        queries = list(rng.integers(1, 50, size=40))
        right = rng.random(60) < 0.7
        for method in ("BERT", "PGD-AT"):
            runs.append({**summary(method, seed, types, queries),
                         "attack_success_rate": types.count("Successful") / (40 - types.count("Skipped"))})
            correct[("MR", method, seed)] = {"in_distribution": right.copy(), "YELP": right.copy()}
    t2, _ = table2_asr(runs, ["BERT", "PGD-AT"], bootstrap=FAST)
    t4, _ = table4_accuracy(evals_for(correct), ["BERT", "PGD-AT"], ["YELP"], datasets=["MR"], correct=correct,
                            bootstrap=FAST)
    budget_rows, _ = budget_table(runs, ["BERT", "PGD-AT"], FAST)
    for bound in ("ci_low", "ci_high"):
        assert t2[f"BERT_{bound}"].tolist() == t2[f"PGD-AT_{bound}"].tolist()
    assert not t2["BERT_ci_low"].isna().any()
    by_method = t4.set_index("method")
    ci = [c for c in t4.columns if "_ci_" in c]
    assert by_method.loc["BERT", ci].tolist() == by_method.loc["PGD-AT", ci].tolist()
    area = budget_rows.set_index("method")[["auc_asr_ci_low", "auc_asr_ci_high"]]
    assert area.loc["BERT"].tolist() == area.loc["PGD-AT"].tolist()
    bounds = np.concatenate([t2[["BERT_ci_low", "BERT_ci_high"]].to_numpy().ravel(), by_method[ci].to_numpy().ravel(),
                             area.to_numpy().ravel()])
    assert np.array_equal(bounds, np.round(bounds, 2))


def test_every_table_shows_a_dataset_added_by_config():
    """A third training dataset (MOVIES) beside MR: a row or column in every table, the paper's side missing."""
    from advtrain.figures import tradeoff_points
    from advtrain.tables import table3_runtime

    rng = np.random.default_rng(3)
    attacks = []
    for dataset in ("MR", "MOVIES"):
        for method in ("BERT", "LDS"):
            types = list(rng.choice(["Successful", "Failed"], size=20))
            attacks.append({**summary(method, 1, types, [5] * 20, dataset=dataset),
                            "attack_success_rate": types.count("Successful") / 20})
    t2, d2 = table2_asr(attacks, ["BERT", "LDS"], bootstrap=FAST)
    assert set(t2["dataset"]) == {"MR", "MOVIES"}
    assert d2.set_index(["attack", "dataset"]).loc[("TextFooler", "MOVIES"), "BERT (paper)"] == "—"
    runs = [{"dataset": d, "method": m, "seed": 1, "job_seconds": 60.0, "train_seconds": 50.0}
            for d in ("MR", "MOVIES") for m in ("BERT", "LDS")]
    _, d3 = table3_runtime(runs, ["BERT", "LDS"])
    assert "MOVIES min (ours)" in d3.columns and d3.set_index("method").loc["LDS", "MOVIES min (paper)"] == "—"
    correct = {(d, m, 1): {"in_distribution": rng.random(30) < 0.8, "YELP": rng.random(30) < 0.8}
               for d in ("MR", "MOVIES") for m in ("BERT", "LDS")}
    t4, d4 = table4_accuracy(evals_for(correct), ["BERT", "LDS"], ["YELP"], datasets=["MR", "MOVIES"],
                             correct=correct, bootstrap=FAST)
    assert {"MOVIES→MOVIES (ours)", "MOVIES→YELP (paper)"} <= set(d4.columns)
    paired, _ = paired_example_tests(correct, attacks, ["BERT", "LDS"], "BERT", FAST)
    assert set(paired["dataset"]) == {"MR", "MOVIES"}
    for table in (budget_table(attacks, ["BERT", "LDS"], FAST)[0], effort_table(attacks, ["BERT", "LDS"])[0]):
        assert set(table["dataset"]) == {"MR", "MOVIES"}
    points = tradeoff_points(t4, t2, ["MR", "MOVIES"])
    assert set(points[points["source"] == "ours"]["dataset"]) == {"MR", "MOVIES"}
    assert set(points[points["source"] == "paper"]["dataset"]) == {"MR"}


# --------------------------------------------------------------------------- validity


def test_mark_wraps_changed_words_and_keeps_context():
    from advtrain.attacks.validity import mark

    text = "The movie, frankly, was   dull and the ending was bad."
    words = ["The", "movie", "frankly", "was", "dull", "and", "the", "ending", "was", "bad"]
    assert mark(text, words, [4], context=None) == "The movie, frankly, was **dull** and the ending was bad."
    assert mark(text, words, [4], context=1) == "… was **dull** and …"
    assert mark(text, words, [1, 9], context=1) == "The **movie**, frankly … was **bad**."
    assert mark(text, words, [], context=2) == "The movie, frankly, was dull and the ending was bad."


def bag_of_words(texts):
    """A stand-in sentence encoder: word counts over a fixed vocabulary (identical texts: similarity 1)."""
    vocab = sorted({w for t in texts for w in t.lower().split()})
    return np.array([[t.lower().split().count(w) for w in vocab] for t in texts], dtype=float)


@pytest.fixture(scope="module")
def attacked_text():
    from conftest import shared_data

    from advtrain.attacks import resources as res

    res.import_textattack(shared_data("nltk_data"))
    from textattack.shared import AttackedText

    return AttackedText


def record(index, original, perturbed, result="Successful"):
    changed = sum(a != b for a, b in zip(original.split(), perturbed.split(), strict=True))
    return {"index": index, "original_text": original, "perturbed_text": perturbed, "result_type": result,
            "ground_truth": 1, "perturbed_output": 0, "words_changed": changed,
            "words_total": len(original.split())}


def test_validity_checks_the_recipes_bounds(attacked_text):
    from advtrain.attacks.validity import BOUNDS, check, describe

    base = "a fine film with a fine cast and a fine script about a fine town in a fine year"  # 20 words
    five = base.replace("fine", "nice")  # 5 changed words: more than A2T's max(ceil(2.0), 4) = 4
    one = base.replace("fine film", "nice film")
    rows = [record(0, base, five), record(1, base, one), record(2, base, base.replace("with", "sans")),
            record(3, base, base, "Failed")]
    frame = check(rows, "a2t", bag_of_words, attacked_text=attacked_text, stopwords=frozenset({"with"}))
    assert list(frame["index"]) == [0, 1, 2]  # only successful attacks
    assert list(frame["max_words"]) == [4, 4, 4]
    assert list(frame["exceeds_modification_rate"]) == [True, False, False]
    assert list(frame["stopwords_changed"]) == [0, 0, 1] and list(frame["exceeds_any"])[1:] == [False, True]
    assert frame["similarity"].between(0, 1).all()
    # A2T compares whole texts (cosine >= 0.9): five swaps of "fine" move the bag of words below it, one does not.
    assert list(frame["exceeds_similarity"]) == [True, False, False]
    assert frame["similarity_checked"].all()
    assert frame["original_marked"].iloc[1].startswith("a **fine** film")
    # TextFooler's 15-word windows: a 20-word text is checked, a shorter one skipped as TextAttack does.
    short = record(4, "a fine film with a fine cast", "a nice film with a fine cast")
    tf = check([rows[0], short], "textfooler", bag_of_words, attacked_text=attacked_text, stopwords=frozenset())
    assert list(tf["similarity_checked"]) == [True, False] and math.isnan(tf["bound_similarity"].iloc[1])
    assert tf["exceeds_similarity"].iloc[0] and pd.isna(tf["exceeds_similarity"].iloc[1])  # not checked
    assert "max_words" in tf and tf["max_words"].isna().all()
    pso = check(rows[:1], "pso", bag_of_words, attacked_text=attacked_text, stopwords=frozenset())
    assert pso["exceeds_similarity"].isna().all() and not pso["exceeds_any"].iloc[0]
    assert BOUNDS["textfooler"].similarity.metric == "angular" and "15-word windows" in describe("textfooler")


def test_validity_checks_the_literature_recipes_bounds(attacked_text):
    """Issue 28's recipes: DeepWordBug's Levenshtein distance (whole text, at most 30 characters), BERT-Attack's
    MaxWordsPerturbed (ceil(0.4 * words)) and whole-text cosine >= 0.2, TextBugger's whole-text angular >= 0.8."""
    from advtrain.attacks.validity import check, describe

    base = "a fine film with a fine cast and a fine script"  # 11 words
    bugs = "a fnie film with a fien cast and a fine script"  # 2 words, 4 characters edited
    many = "a fnie flim with a fien csat and a fnie sricpt"  # 6 words, 12 characters edited
    long = " ".join([base] * 6)
    rows = [record(0, base, bugs), record(1, base, many),
            record(2, long, long.replace("fine", "finely"))]  # 18 words, 2 characters inserted in each
    dwb = check(rows, "deepwordbug", bag_of_words, attacked_text=attacked_text, stopwords=frozenset())
    assert list(dwb["edit_distance"]) == [4, 12, 36]
    assert list(dwb["exceeds_edit_distance"]) == [False, False, True] == list(dwb["exceeds_any"])
    assert dwb["exceeds_similarity"].isna().all() and dwb["max_words"].isna().all()
    assert describe("deepwordbug") == "Levenshtein ≤ 30 characters (whole text); no NLTK stopword changed"

    bert = check(rows[:2], "bert_attack", bag_of_words, attacked_text=attacked_text, stopwords=frozenset())
    assert list(bert["max_words"]) == [5, 5] and list(bert["exceeds_modification_rate"]) == [False, True]
    assert not bert["exceeds_similarity"].any() and "edit_distance" in bert and bert["edit_distance"].isna().all()
    assert describe("bert_attack").startswith("cosine ≥ 0.2 (whole text); ≤ ⌈0.4·words⌉ words")
    bugger = check(rows[:2], "textbugger", bag_of_words, attacked_text=attacked_text, stopwords=frozenset())
    assert list(bugger["exceeds_similarity"]) == [False, True]  # 6 of 11 words out of the bag: angular < 0.8
    assert describe("pwws") == "no NLTK stopword changed"


def test_validity_table_and_samples(tmp_path):
    frame = validity_frame
    checks = [(summary("BERT", 1, [], []) | {"resources": {"use": "/x"}}, frame(4, 1)),
              (summary("BERT", 2, [], []), frame(4, 3))]
    csv = tmp_path / "validity.csv"
    checks[1][1].to_csv(csv, index=False)
    checks[1] = (checks[1][0], pd.read_csv(csv))  # as the rule reads it back
    numeric, display = validity_table(checks, ["BERT"])
    row = numeric.iloc[0]
    assert row["adversarial_examples"] == 8 and row["words_changed_mean"] == 2.5 and row["words_changed_max"] == 4
    assert row["exceeds_similarity_pct"] == 50.0 and math.isnan(row["exceeds_modification_rate_pct"])
    assert row["attack_encoder"] == "USE" and "(attack used USE)" in display["bounds checked"].iloc[0]
    # Fluency: validity_frame's perplexities are 50..53 (original) and 80..110 (adversarial) in each run.
    assert row["perplexity_original_mean"] == 51.5 and row["perplexity_original_median"] == 51.5
    assert row["perplexity_adversarial_mean"] == 95.0 and row["perplexity_adversarial_median"] == 95.0
    assert display["perplexity original mean (median)"].iloc[0] == "51.5 (51.5)"
    assert display["perplexity adversarial mean (median)"].iloc[0] == "95.0 (95.0)"
    # A one-token text's NaN is skipped; a validity.csv written before the fluency columns shows "—".
    nan_one = checks[0][1].assign(perturbed_perplexity=[math.nan, 80.0, 90.0, 130.0])
    row = validity_table([(checks[0][0], nan_one)], ["BERT"])[0].iloc[0]
    assert row["perplexity_adversarial_mean"] == 100.0 and row["perplexity_adversarial_median"] == 90.0
    old = [(s, f.drop(columns=["original_perplexity", "perturbed_perplexity"])) for s, f in checks]
    numeric, display = validity_table(old, ["BERT"])
    assert math.isnan(numeric["perplexity_adversarial_mean"].iloc[0])
    assert display["perplexity adversarial mean (median)"].iloc[0] == "—"
    samples = adversarial_samples(checks, ["BERT"], 2, FAST)
    assert len(samples) == 2 and set(samples["seed"]) == {1} and samples["label → prediction"].iloc[0] == "1 → 0"
    assert samples.equals(adversarial_samples(checks, ["BERT"], 2, FAST))  # a fixed draw
    paths = write_samples(samples, tmp_path / "attack_examples", caption="Adversarial examples")
    md, tex = paths[1].read_text(), paths[2].read_text()
    assert md.startswith("Adversarial examples") and r"**good** \| film" in md
    assert r"\textbf{good}" in tex and "**" not in tex


def test_budget_figure_has_a_line_per_method(tmp_path):
    from advtrain.figures import plot_budget_curves

    runs = [summary("BERT", 1, TYPES, QUERIES), summary("BERT", 2, TYPES, QUERIES),
            summary("LDS", 1, ["Failed"] * 4 + ["Successful"], [50, 50, 50, 50, 40])]
    paths = plot_budget_curves(mean_curves(budget_curves(runs)), tmp_path / "budget_MR_textfooler",
                               "TextFooler on MR", 50)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
