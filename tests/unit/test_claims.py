"""The claims table (advtrain.claims): per-example records whose truth is known by construction (a method truly
better, identical, truly worse; one seed and three), the detectable effect against a simulation, the paper-table
verdicts against hand-made cells and the real tables, and the claims file's checks. No models; seconds."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from advtrain import claims as C
from advtrain.stats import Bootstrap, mcnemar_exact

REPO = Path(__file__).resolve().parents[2]
PAPER_TEXT = REPO.parent / "shared" / "paper" / "altinisik2022_adversarial_training_text.md"
BOOT = Bootstrap(resamples=500, confidence=0.95, seed=0)


def paired(n: int, only_first: int, only_second: int, both: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two models' per-example correctness with exactly these counts (the rest wrong for both), in random order."""
    first = np.array([1] * only_first + [0] * only_second + [1] * both + [0] * (n - only_first - only_second - both),
                     dtype=bool)
    second = np.array([0] * only_first + [1] * only_second + [1] * both + [0] * (n - only_first - only_second - both),
                      dtype=bool)
    order = np.random.default_rng(seed).permutation(n)
    return first[order], second[order]


def run_of(methods=("BERT", "PGD-AT"), seeds=(1,), **kw) -> C.Run:
    return C.Run(methods=tuple(methods), families=C.method_families(dict.fromkeys(methods)),
                 datasets=kw.pop("datasets", ("MR",)), ood=kw.pop("ood", ("YELP",)),
                 attacks=kw.pop("attacks", ("textfooler",)), seeds=tuple(seeds), **kw)


def claim(metric="accuracy", side=("method", "PGD-AT"), than=("method", "BERT"), direction="higher", **scope):
    h = {"metric": metric, "side": {side[0]: side[1]}, "than": [{than[0]: than[1]}], "direction": direction, **scope}
    return C.parse_claims({"claims": [{"id": "T", "quote": "q", "where": "w", "hypotheses": [h]}]})[0]


def verdict(claim_, run, evidence) -> dict:
    (comparison,) = C.expand(claim_, run)
    return C.run_verdict(comparison, evidence, BOOT)


def accuracy_evidence(per_seed: dict[int, tuple[np.ndarray, np.ndarray]], first="PGD-AT", second="BERT"):
    correct = {}
    for seed, (a, b) in per_seed.items():
        correct[("MR", first, seed)] = {"in_distribution": a}
        correct[("MR", second, seed)] = {"in_distribution": b}
    return C.Evidence(correct=correct)


# --------------------------------------------------------------------------- run verdicts, truth known


def test_truly_better_is_supported_with_the_true_effect_inside_the_interval():
    # 150 examples only PGD-AT gets right, 50 only BERT: a true difference of +10 pp on 1,000 examples.
    ev = accuracy_evidence({1: paired(1000, 150, 50, 600, seed=1)})
    r = verdict(claim(), run_of(), ev)
    assert r["verdict"] == C.SUPPORTED
    assert r["effect"] == pytest.approx(10.0)
    assert r["low"] < 10.0 < r["high"] and r["low"] > 0
    assert (r["side_only"], r["than_only"], r["units"]) == (150, 50, 1000)
    assert r["p"] == pytest.approx(mcnemar_exact(150, 50))
    assert "PGD-AT, BERT; MR/in_distribution; seeds 1; 1 stratum of 1000 units" == r["rests_on"]


def test_truly_worse_is_contradicted_and_a_claim_of_lower_is_then_supported():
    ev = accuracy_evidence({1: paired(1000, 50, 150, 600, seed=2)})
    r = verdict(claim(), run_of(), ev)
    assert r["verdict"] == C.CONTRADICTED
    assert r["effect"] == pytest.approx(-10.0) and r["high"] < 0
    assert verdict(claim(direction="lower"), run_of(), ev)["verdict"] == C.SUPPORTED


def test_identical_models_are_inconclusive_and_could_detect_nothing():
    a, _ = paired(500, 100, 0, 300, seed=3)
    r = verdict(claim(), run_of(), accuracy_evidence({1: (a, a.copy())}))
    assert r["verdict"] == C.INCONCLUSIVE
    assert (r["effect"], r["low"], r["high"], r["p"]) == (0.0, 0.0, 0.0, 1.0)
    assert math.isnan(r["detectable"])  # no discordant pair: the sample says nothing about any effect


def test_equally_good_models_are_inconclusive_with_an_interval_around_zero():
    r = verdict(claim(), run_of(), accuracy_evidence({1: paired(1000, 100, 100, 600, seed=4)}))
    assert r["verdict"] == C.INCONCLUSIVE
    assert r["effect"] == 0.0 and r["low"] < 0 < r["high"]
    assert r["detectable"] == pytest.approx(100 * C.detectable_effect(1000, 0.2))


def test_three_seeds_pool_what_one_seed_cannot_show():
    # +4 pp with a 20% discordance rate: 400 examples cannot show it (detectable about 6 pp), 3 x 400 can.
    one = {1: paired(400, 48, 32, 250, seed=5)}
    three = {s: paired(400, 48, 32, 250, seed=10 + s) for s in (1, 2, 3)}
    r1 = verdict(claim(), run_of(seeds=(1,)), accuracy_evidence(one))
    r3 = verdict(claim(), run_of(seeds=(1, 2, 3)), accuracy_evidence(three))
    assert r1["verdict"] == C.INCONCLUSIVE and r1["detectable"] > 4.0
    assert r3["verdict"] == C.SUPPORTED and r3["detectable"] < 4.0
    assert r1["effect"] == pytest.approx(4.0) and r3["effect"] == pytest.approx(4.0)
    assert (r3["side_only"], r3["than_only"], r3["units"]) == (144, 96, 1200)
    assert r3["p"] == pytest.approx(mcnemar_exact(144, 96))
    assert r3["high"] - r3["low"] < r1["high"] - r1["low"]  # three strata: a narrower interval
    assert "seeds 1, 2, 3; 3 strata" in r3["rests_on"]


def test_a_missing_seed_is_left_out_and_said():
    ev = accuracy_evidence({1: paired(400, 80, 20, 250, seed=6), 2: paired(400, 80, 20, 250, seed=7)})
    r = verdict(claim(), run_of(seeds=(1, 2, 3)), ev)
    assert "seeds 1, 2;" in r["rests_on"] and r["units"] == 800


def summary(method, seed, robust: np.ndarray, dataset="MR", attack="textfooler") -> dict:
    types = np.where(robust, "Failed", "Successful")
    return {"dataset": dataset, "method": method, "seed": seed, "attack": attack,
            "examples": [{"index": int(i), "result_type": str(t), "num_queries": 10} for i, t in
                         zip(np.arange(len(robust)) * 3, types, strict=True)]}


def test_a_family_is_the_mean_of_its_members_per_example():
    # PGD-AT robust on 120 examples where BERT is not (and the reverse on 20); LDS exactly as BERT. The AT-EP
    # family's outcome is the share of its two methods robust: its effect is half PGD-AT's, on the same examples.
    pgd, bert = paired(600, 120, 20, 200, seed=8)
    summaries = [summary("PGD-AT", 1, pgd), summary("LDS", 1, bert), summary("BERT", 1, bert)]
    ev = C.Evidence(summaries=summaries)
    run = run_of(("BERT", "PGD-AT", "LDS"))
    family = verdict(claim("robustness", side=("family", "AT-EP")), run, ev)
    single = verdict(claim("robustness"), run, ev)
    assert single["effect"] == pytest.approx(100 / 6)
    assert family["effect"] == pytest.approx(single["effect"] / 2)
    # The sign test counts examples, each once: the same 120 / 20 examples differ.
    assert (family["side_only"], family["than_only"], family["units"]) == (120, 20, 600)
    assert family["verdict"] == C.SUPPORTED
    assert "PGD-AT, LDS, BERT; MR/textfooler" in family["rests_on"]


def test_attack_records_on_different_examples_stop_with_a_clear_error():
    a, b = paired(50, 10, 5, 20, seed=9)
    wrong = summary("BERT", 1, b)
    wrong["examples"] = wrong["examples"][1:] + [{"index": 999, "result_type": "Failed", "num_queries": 1}]
    with pytest.raises(ValueError, match="different examples"):
        verdict(claim("robustness"), run_of(), C.Evidence(summaries=[summary("PGD-AT", 1, a), wrong]))


def test_lca_match_ratio_pairs_tags_and_the_ablation_pairs_seeds():
    def analysis(method, seed, matches, ablation):
        return {"method": method, "seed": seed, "ablation_accuracy": ablation,
                "association": [{"tag": f"T{i}", "match": m, "total": 5} for i, m in enumerate(matches)]}

    lca = [analysis("PGD-AT", s, [5] * 12, 0.40 + s / 100) for s in (1, 2, 3)]
    lca += [analysis("BERT", s, [1] * 12, 0.30) for s in (1, 2, 3)]
    run = run_of(seeds=(1, 2, 3), lca_methods=("BERT", "PGD-AT"), lca_seeds=(1, 2, 3))
    ev = C.Evidence(lca=lca)
    ratio = verdict(claim("lca_match_ratio"), run, ev)
    assert ratio["verdict"] == C.SUPPORTED and ratio["effect"] == pytest.approx(80.0)
    assert ratio["units"] == 36  # 12 tags x 3 seeds
    ablation = verdict(claim("lca_ablation_accuracy"), run, ev)
    # 3 seeds, all higher: the exact sign test cannot go below p = 0.25, so inconclusive whatever the effect.
    assert ablation["effect"] == pytest.approx(12.0) and ablation["p"] == pytest.approx(0.25)
    assert ablation["verdict"] == C.INCONCLUSIVE and ablation["units"] == 3


# --------------------------------------------------------------------------- the detectable effect


def test_detectable_effect_solves_connors_formula():
    n, psi = 2000, 0.12
    delta = C.detectable_effect(n, psi)
    za, zb = 1.959963984540054, 0.8416212335729143
    assert n == pytest.approx((za * math.sqrt(psi) + zb * math.sqrt(psi - delta ** 2)) ** 2 / delta ** 2)
    assert C.detectable_effect(4 * n, psi) < delta  # more examples, smaller effects
    assert math.isnan(C.detectable_effect(3, 0.5))  # too few pairs to detect even the largest effect


def test_detectable_effect_has_power_near_0_8_in_a_simulation():
    n, psi = 1500, 0.15
    delta = C.detectable_effect(n, psi)
    rng = np.random.default_rng(0)
    counts = rng.multinomial(n, [(psi + delta) / 2, (psi - delta) / 2, 1 - psi], size=1500)
    power = np.mean([mcnemar_exact(b, c) < 0.05 for b, c, _ in counts])
    # The exact test is a little conservative against the normal approximation.
    assert 0.75 <= power <= 0.85, power


# --------------------------------------------------------------------------- configuration and expansion


def test_families_from_the_paper_the_config_key_or_the_methods_one_part():
    fam = C.method_families({"BERT": {}, "LDS": {}, "ALUM": {"adversarial_embedding": {"kind": "alum"}},
                             "Mine": {"adversarial_input": {"recipe": "a2t"}},
                             "BackTranslation_PGD-AT": {"augment": {}, "adversarial_embedding": {}},
                             "SSMBA": {"family": "AT-custom"}})
    assert fam == {"BERT": "baseline", "LDS": "AT-EP", "ALUM": "AT-EP", "Mine": "AT-IP",
                   "BackTranslation_PGD-AT": None, "SSMBA": "AT-custom"}


def test_run_from_the_quick_preset_and_what_it_cannot_test():
    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    run = C.Run.from_config(config)
    assert run.methods == ("BERT", "PGD-AT", "LDS") and run.datasets == ("MR",) and run.ood == ("YELP",)
    assert run.attacks == ("textfooler",) and run.lca_methods == ("BERT", "LDS", "PGD-AT")
    claims = {c.id: c for c in C.load_claims(REPO / "config" / "claims.yaml")}
    c2 = C.expand(claims["C2"], run)
    assert [c.untestable for c in c2] == ["no configured method for AT-IP (family) or AT-DA (family)",
                                          "no configured method for AT-IP (family)"]
    (c7,) = C.expand(claims["C7"], run)
    assert c7.untestable == "no configured method for BackTranslation or AT-DA (family); dataset(s) IMDB not configured"
    c3 = C.expand(claims["C3"], run)
    assert [c.untestable is None for c in c3] == [True, False, False, True, False, False]
    assert c3[3].cells == (("MR", "YELP"),) and c3[3].side_methods == ("PGD-AT", "LDS")
    (c7_on_mr,) = C.expand(claims["C7"], run_of(("BERT", "SSMBA", "BackTranslation")))
    assert c7_on_mr.untestable == "dataset(s) IMDB not configured"
    assert c7_on_mr.than_methods == ("SSMBA",)  # BackTranslation against the other AT-DA methods


@pytest.mark.parametrize(("change", "message"), [
    ({"metric": "f1"}, r"claim T, hypotheses\[0\].metric: 'f1' is not one of"),
    ({"direction": "better"}, r"claim T, hypotheses\[0\].direction"),
    ({"side": {"model": "X"}}, r"claim T, hypotheses\[0\].side: a side is"),
    ({"than": []}, r"claim T, hypotheses\[0\].than: must be a non-empty list"),
    ({"datasets": "MR"}, r"claim T, hypotheses\[0\]: `datasets` must be `all` or a non-empty list"),
    ({"attacks": ["pso"]}, r"claim T, hypotheses\[0\].attacks: only a robustness hypothesis"),
    ({"typo": 1}, r"claim T, hypotheses\[0\]: unknown key\(s\) \['typo'\]"),
])
def test_claims_file_errors_name_the_claim_and_key(change, message):
    h = {"metric": "accuracy", "side": {"method": "A"}, "than": [{"method": "B"}], "direction": "higher", **change}
    with pytest.raises(C.ClaimsError, match=message):
        C.parse_claims({"claims": [{"id": "T", "quote": "q", "where": "w", "hypotheses": [h]}]}, "claims.yaml")


def test_claims_file_errors_on_the_claim_itself(tmp_path):
    h = {"metric": "accuracy", "side": {"method": "A"}, "than": [{"method": "B"}], "direction": "higher"}
    with pytest.raises(C.ClaimsError, match="claim T: `id` repeats"):
        C.parse_claims({"claims": [{"id": "T", "quote": "q", "where": "w", "hypotheses": [h]}] * 2})
    with pytest.raises(C.ClaimsError, match="claim T: `quote` must be a non-empty string"):
        C.parse_claims({"claims": [{"id": "T", "where": "w", "hypotheses": [h]}]})
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims: [\n")
    with pytest.raises(C.ClaimsError, match=f"claims file {bad}: cannot read it"):
        C.load_claims(bad)


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="the paper's text is not in this checkout's shared folder")
def test_every_quote_is_the_papers_text():
    # The extracted text keeps footnote marks as HTML (Tab. 5<sup>1</sup>); the quotes leave them out.
    text = re.sub(r"\s+", " ", re.sub(r"<sup>.*?</sup>", "", PAPER_TEXT.read_text(encoding="utf-8")))
    for c in C.load_claims(REPO / "config" / "claims.yaml"):
        for part in c.quote.split(" ... "):
            assert part.strip(" .") in text, (c.id, part)


# --------------------------------------------------------------------------- paper verdicts


def test_paper_verdict_on_hand_made_cells(monkeypatch):
    table4 = pd.DataFrame({"family": ["baseline", "AT-EP", "AT-EP"], "method": ["BERT", "LDS", "PGD-AT"],
                           "MR_on_MR": [80.0, 81.0, 82.0], "MR_on_YELP": [70.0, 60.0, 70.0],
                           "IMDB_on_IMDB": [90.0, 90.0, 90.0]})
    monkeypatch.setattr(C.paper, "load", lambda name: table4)
    acc = C.paper_verdict(claim(side=("family", "AT-EP")).hypotheses[0], C.Side("method", "BERT"))
    # IMDB is a tie: a tie does not point the claimed way.
    assert acc["paper"] == "disagrees in 1 of 2 cells" and acc["paper_disagree"].startswith("IMDB: AT-EP 90.00")
    ood = C.paper_verdict(claim("ood_accuracy", side=("family", "AT-EP")).hypotheses[0], C.Side("method", "BERT"))
    assert ood["paper"] == "disagrees in 1 of 1 cell"
    assert ood["paper_disagree"] == "MR→YELP: AT-EP 65.00 (LDS 60.00, PGD-AT 70.00) vs BERT 70.00 (accuracy %)"
    lower = C.paper_verdict(claim("ood_accuracy", direction="lower", side=("method", "LDS")).hypotheses[0],
                            C.Side("method", "BERT"))
    assert lower["paper"] == "agrees in the 1 cell"
    absent = C.paper_verdict(claim(side=("method", "ALUM")).hypotheses[0], C.Side("method", "BERT"))
    assert absent["paper"] == "not in the paper's tables"


def test_paper_verdict_on_the_real_tables():
    claims = {c.id: c for c in C.load_claims(REPO / "config" / "claims.yaml")}
    c3_ood = claims["C3"].hypotheses[1]
    v = C.paper_verdict(c3_ood, C.Side("family", "baseline"))
    assert v["paper"] == "disagrees in 1 of 2 cells"
    assert "MR→YELP: AT-EP 84.98 (LDS 81.80, PGD-AT 88.16) vs BERT 87.06" in v["paper_disagree"]
    c9 = claims["C9"].hypotheses
    assert [C.paper_verdict(h, h.than[0])["paper"] for h in c9] == ["agrees in all 2 cells"] * 2
    # Robustness reads Table 2's ASR the other way round: PGD-AT's 94.7 on IMDB TextFooler is less robust.
    c4 = C.paper_verdict(claims["C4"].hypotheses[0], C.Side("method", "LDS"))
    assert c4["paper"] == "disagrees in 2 of 8 cells"
    assert "IMDB TextFooler: PGD-AT 94.70 vs LDS 91.50" in c4["paper_disagree"]
    c7 = C.paper_verdict(claims["C7"].hypotheses[0], C.Side("family", "AT-DA"))
    assert c7["paper_cells"] == 4 and "IMDB PSO: BackTranslation 42.80 vs SSMBA 41.80" in c7["paper_disagree"]


# --------------------------------------------------------------------------- the table


def test_combine_a_claims_comparisons():
    def rows(*verdicts):
        p = {C.SUPPORTED: 0.001, C.CONTRADICTED: 0.02, C.INCONCLUSIVE: 0.5, C.UNTESTABLE: math.nan}
        return pd.DataFrame({"run_verdict": verdicts, "p_value": [p[v] for v in verdicts]})

    assert C.combine(rows(C.SUPPORTED, C.SUPPORTED), 0.05) == C.SUPPORTED
    assert C.combine(rows(C.SUPPORTED, C.INCONCLUSIVE), 0.05) == C.INCONCLUSIVE
    assert C.combine(rows(C.CONTRADICTED, C.INCONCLUSIVE), 0.05) == C.CONTRADICTED
    # Holm over the claim's three comparisons: 3 x 0.02 is not below 0.05.
    assert C.combine(rows(C.CONTRADICTED, C.INCONCLUSIVE, C.INCONCLUSIVE), 0.05) == C.INCONCLUSIVE
    assert C.combine(rows(C.SUPPORTED, C.UNTESTABLE), 0.05) == "inconclusive (1 of 2 comparisons tested)"
    assert C.combine(rows(C.UNTESTABLE), 0.05) == C.UNTESTABLE


def test_claims_table_end_to_end(tmp_path):
    run = run_of(("BERT", "PGD-AT", "LDS"))
    claims = C.load_claims(REPO / "config" / "claims.yaml")
    # BERT right on 600 of 800 examples; PGD-AT also right on 60 of the others (+7.5 pp); LDS flips about 10%.
    bert = np.arange(800) % 4 != 0
    pgd = bert.copy()
    pgd[np.flatnonzero(~bert)[:60]] = True
    lds = bert ^ (np.random.default_rng(1).random(800) < 0.1)
    correct = {("MR", m, 1): {"in_distribution": x, "YELP": x} for m, x in
               (("BERT", bert), ("PGD-AT", pgd), ("LDS", lds))}
    table = C.claims_table(claims, run, C.Evidence(correct=correct), BOOT)
    c9 = table[table["claim"] == "C9"]
    assert list(c9["run_verdict"]) == [C.SUPPORTED, C.SUPPORTED]
    assert c9["effect_pp"].to_numpy() == pytest.approx([7.5, 7.5])
    c2 = table[table["claim"] == "C2"]
    assert set(c2["run_verdict"]) == {C.UNTESTABLE}
    assert set(c2["why_not"]) == {"no configured method for AT-IP (family) or AT-DA (family)",
                                  "no configured method for AT-IP (family)"}
    # Robustness and LCA are configured (attacks, LCA methods) but have no records here: said, not hidden.
    why = table.loc[table["metric"].isin(["robustness", "lca_match_ratio"]), "why_not"]
    assert "configured, but no records found" in set(why) and not (why == "").any()
    assert (table["paper"] != "").all()
    paths = C.write_claims(table, run, tmp_path / "claims")
    assert [p.name for p in paths] == ["claims.csv", "claims.md", "claims.tex"]
    assert r"\toprule" in paths[2].read_text() and "MR→YELP" in paths[2].read_text()
    md = paths[1].read_text()
    for cid in ("C1", "C6", "C9"):
        assert f"| {cid} " in md
    assert "disagrees in 1 of 2 cells" in md and "MR→YELP: AT-EP 84.98" in md
    back = pd.read_csv(paths[0])
    assert len(back) == len(table) and back["comparison"].is_unique


def test_make_claims_reads_the_workflows_files(tmp_path):
    """The rule's call: eval JSONs with their predictions beside them, gathered attack summaries, LCA analyses."""
    import json

    from advtrain.predictions import save_predictions

    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    labels = np.arange(400) % 2
    bert, pgd = paired(400, 60, 20, 300, seed=20)  # PGD-AT truly worse in distribution: -10 pp
    evals, attacks, lca = [], [], []
    for method, right in (("BERT", bert), ("PGD-AT", pgd), ("LDS", bert)):
        folder = tmp_path / "eval" / "MR" / method
        folder.mkdir(parents=True)
        preds = np.where(right, labels, 1 - labels)
        save_predictions(folder / "seed1.predictions.npz", {"in_distribution": (preds, labels), "YELP": (preds, labels)})
        (folder / "seed1.json").write_text(json.dumps({"dataset": "MR", "method": method, "seed": 1}))
        evals.append(folder / "seed1.json")
        attack = tmp_path / f"{method}.textfooler.json"
        attack.write_text(json.dumps(summary(method, 1, right[:100])))
        attacks.append(attack)
        analysis = tmp_path / f"{method}.lca.json"
        analysis.write_text(json.dumps({"method": method, "seed": 1, "ablation_accuracy": 0.5,
                                        "association": [{"tag": "NN", "match": 2, "total": 5}]}))
        lca.append(analysis)
    table, paths = C.make_claims(REPO / "config" / "claims.yaml", config, evals, attacks, lca, tmp_path / "claims")
    c9 = table[table["comparison"] == "C9.1"].iloc[0]
    assert c9["run_verdict"] == C.CONTRADICTED and c9["effect_pp"] == pytest.approx(-10.0)
    assert c9["rests_on"] == "PGD-AT, BERT; MR/in_distribution; seeds 1; 1 stratum of 400 units"
    c8 = table[table["comparison"] == "C8.1"].iloc[0]  # AT-EP (PGD-AT, LDS) against BERT under TextFooler
    assert c8["rests_on"].startswith("PGD-AT, LDS, BERT; MR/textfooler;") and c8["units"] == 100
    assert paths[1].read_text().startswith(C.CAPTION + "\n\nRun: methods BERT, PGD-AT, LDS")
    section = C.summary_section(table)
    assert "| C9 " in section and "contradicted" in section


def test_an_omitted_part_leaves_its_claims_untestable_and_says_why(tmp_path):
    """`--omit-from lca_train`: the LCA claims are not testable, naming the option; the others are judged as before,
    and the run line of the table says what the run left out."""
    from advtrain.summary import omitted_evidence

    omitted = omitted_evidence({"lca_train"})
    assert omitted == {"lca": "not made in this run (`--omit-from lca_train`)"}
    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    run = C.Run.from_config(config, omitted)
    claims = {c.id: c for c in C.load_claims(REPO / "config" / "claims.yaml")}
    lca_claims = [c for c in claims.values() if any(h.metric.startswith("lca_") for h in c.hypotheses)]
    assert lca_claims
    for c in lca_claims:
        for comparison in C.expand(c, run):
            assert comparison.untestable == "lca not made in this run (`--omit-from lca_train`)"
    assert all(c.untestable is None for c in C.expand(claims["C9"], run))  # accuracy: not omitted
    c2 = C.expand(claims["C2"], C.Run.from_config(config, {"attacks": "not made in this run (`--omit-from x`)"}))
    assert c2[0].untestable.startswith("attacks not made in this run (`--omit-from x`); no configured method")
    bert, pgd = paired(100, 10, 10, 60, seed=1)
    table = C.claims_table(list(claims.values()), run, accuracy_evidence({1: (pgd, bert)}), BOOT)
    assert set(table.loc[table["comparison"].str.startswith(lca_claims[0].id), "run_verdict"]) == {C.UNTESTABLE}
    assert "; lca not made in this run (`--omit-from lca_train`)." in C.render_markdown(table, run)
    # Omitting an upstream stage removes every part that reads it.
    assert set(omitted_evidence({"train"})) == {"evaluation", "attacks"}
    assert set(omitted_evidence({"fetch_model"})) == {"evaluation", "attacks", "lca"}


def test_predictions_of_different_lengths_stop_with_a_clear_error():
    a, _ = paired(100, 10, 5, 50, seed=21)
    ev = C.Evidence(correct={("MR", "PGD-AT", 1): {"in_distribution": a},
                             ("MR", "BERT", 1): {"in_distribution": np.concatenate([a, a[:5]])}})
    with pytest.raises(ValueError, match="MR/in_distribution, seed 1: the two sides were evaluated on different"):
        verdict(claim(), run_of(), ev)


def test_a_sign_test_and_a_mean_that_disagree_establish_nothing():
    # A family half right on 300 examples BERT gets wrong, BERT alone right on 200: more examples favour the family
    # (p < 0.001) but the mean difference favours BERT. Neither is supported.
    a = np.concatenate([np.full(300, 0.5), np.zeros(200), np.zeros(100)])
    b = np.concatenate([np.zeros(300), np.ones(200), np.zeros(100)])
    r = C.paired_test([{"key": ("MR", "in_distribution", 1), "a": a, "b": b}], "higher", BOOT, "t")
    assert r["p"] < 0.001 and r["effect"] < 0
    assert r["verdict"] == C.INCONCLUSIVE
