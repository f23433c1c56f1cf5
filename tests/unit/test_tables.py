"""Tables: aggregation over seeds, the paper's values beside ours, and the three file formats."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest
from conftest import REPO

from advtrain import paper
from advtrain.tables import (
    format_mean_sd,
    mean_sd,
    sample_notes,
    table2_asr,
    table4_accuracy,
    write_display_table,
    write_table,
)


def test_mean_sd_uses_the_sample_sd_and_ignores_missing():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert mean_sd([5.0]) == (5.0, 0.0, 1)
    mean, sd, n = mean_sd([float("nan")])
    assert n == 0 and math.isnan(mean) and math.isnan(sd)
    assert format_mean_sd(2.0, 1.0, 3) == "2.00 ± 1.00"
    assert format_mean_sd(5.0, 0.0, 1) == "5.00"
    assert format_mean_sd(math.nan, math.nan, 0) == "—"


def test_paper_tables_ship_with_the_package():
    table4 = paper.load("table4_accuracy").set_index("method")
    assert table4.loc["PGD-AT", "MR_on_YELP"] == pytest.approx(88.16)
    assert set(paper.load("table2_asr")["attack"]) == {"TextFooler", "A2T", "BAE", "PSO", "Average"}
    with pytest.raises(KeyError):
        paper.path("table9")


def evals():
    return [
        {"dataset": "MR", "method": "BERT", "seed": 1, "accuracy": {"in_distribution": 0.80, "YELP": 0.70}},
        {"dataset": "MR", "method": "BERT", "seed": 2, "accuracy": {"in_distribution": 0.90, "YELP": 0.80}},
        {"dataset": "IMDB", "method": "BERT", "seed": 1, "accuracy": {"in_distribution": 0.95, "YELP": 0.85}},
        {"dataset": "MR", "method": "NEW", "seed": 1, "accuracy": {"in_distribution": 0.5, "YELP": 0.5}},
    ]


def test_table4_aggregates_over_seeds_beside_the_paper():
    numeric, display = table4_accuracy(evals(), ["BERT", "NEW"])
    bert = numeric.set_index("method").loc["BERT"]
    assert bert["MR_on_MR_mean"] == pytest.approx(85.0)
    assert bert["MR_on_MR_sd"] == pytest.approx(pd.Series([80.0, 90.0]).std())
    assert bert["MR_on_MR_n"] == 2 and bert["IMDB_on_IMDB_n"] == 1
    assert bert["MR_on_MR_paper"] == pytest.approx(85.27)
    assert bert["seeds"] == 2
    row = display.set_index("method").loc["BERT"]
    assert row["MR→MR (ours)"] == "85.00 ± 7.07" and row["MR→MR (paper)"] == "85.27"
    assert row["IMDB→YELP (ours)"] == "85.00"
    new = display.set_index("method").loc["NEW"]
    assert new["MR→MR (paper)"] == "—" and new["IMDB→IMDB (ours)"] == "—"


def test_tables_are_written_as_csv_markdown_and_booktabs(tmp_path):
    numeric, display = table4_accuracy(evals(), ["BERT"])
    paths = write_display_table(numeric, display, tmp_path / "t4", caption="Table 4: accuracy (%)")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    assert pd.read_csv(paths[0])["MR_on_MR_mean"].iloc[0] == pytest.approx(85.0)
    md = paths[1].read_text()
    assert md.startswith("Table 4") and "| BERT" in md and "85.00 ± 7.07" in md
    tex = paths[2].read_text()
    assert r"\toprule" in tex and r"$\pm$" in tex and r"\caption{Table 4: accuracy (\%)}" in tex
    plain = write_table(pd.DataFrame({"a_b": [1]}), tmp_path / "plain")
    assert r"a\_b" in plain[2].read_text()


def test_table2_notes_a_capped_sample(tmp_path):
    """A test split smaller than attacks.num_examples: the gathered summaries' note, once per dataset, under the
    table in markdown and LaTeX."""
    note = "requested 500, attacked 50 (the test split has 50 rows)"
    summaries = [{"dataset": "MR", "sample_note": note}, {"dataset": "MR", "sample_note": note},
                 {"dataset": "IMDB", "sample_note": None}]
    assert sample_notes(summaries) == [f"MR: {note}"]
    frame = pd.DataFrame({"attack": ["TextFooler"]})
    md, tex = write_table(frame, tmp_path / "t2", caption="Table 2", notes=sample_notes(summaries))[1:]
    assert md.read_text().endswith(f"\n\nNotes:\n- MR: {note}\n")
    assert f"\\par\\footnotesize MR: {note}\n\\end{{table}}" in tex.read_text()
    assert "Notes" not in write_table(frame, tmp_path / "plain")[1].read_text()


def test_table2_asr_rows_average_and_paper():
    summaries = []
    for seed, (tf, pso) in zip([1, 2], [(0.8, 0.4), (0.6, 0.2)], strict=True):
        summaries.append({"dataset": "MR", "method": "BERT", "seed": seed, "attack": "textfooler",
                          "attack_success_rate": tf, "substitutions": ["USE -> sentence encoder"]})
        summaries.append({"dataset": "MR", "method": "BERT", "seed": seed, "attack": "pso",
                          "attack_success_rate": pso, "substitutions": []})
    summaries.append({"dataset": "MR", "method": "LDS", "seed": 1, "attack": "pso",
                      "attack_success_rate": None, "substitutions": []})
    numeric, display = table2_asr(summaries, ["BERT", "LDS"])
    assert list(numeric["attack"]) == ["TextFooler", "PSO", "Average"]
    rows = numeric.set_index("attack")
    assert rows.loc["TextFooler", "BERT_mean"] == pytest.approx(70.0)
    assert rows.loc["TextFooler", "BERT_n"] == 2
    assert rows.loc["TextFooler", "BERT_paper"] == pytest.approx(82.1)
    # Average: each seed's mean over attacks (60, 40), then mean ± sd over seeds.
    assert rows.loc["Average", "BERT_mean"] == pytest.approx(50.0)
    assert rows.loc["Average", "BERT_sd"] == pytest.approx(math.sqrt(200.0))
    # Only TextFooler and PSO ran: the paper's side averages the paper's values for those two, not its four attacks.
    assert rows.loc["Average", "BERT_paper"] == pytest.approx((82.1 + 79.8) / 2)
    assert rows.loc["Average", "averaged_over"] == "TextFooler; PSO"
    assert display["attack"].iloc[-1] == "Average (TextFooler, PSO)"
    assert rows.loc["PSO", "LDS_n"] == 0  # nothing attacked: NaN, shown as missing
    assert "USE -> sentence encoder" in rows.loc["TextFooler", "substitutions"]
    disp = display.set_index("attack")
    assert disp.loc["TextFooler", "BERT (ours)"] == "70.00 ± 14.14"
    assert disp.loc["TextFooler", "BERT (paper)"] == "82.10"
    assert disp.loc["PSO", "substitutions"] == "—"
    # The seeds behind each row: one number when the methods agree, else per method.
    assert disp.loc["TextFooler", "seeds"] == "BERT 2, LDS 0" and disp.loc["PSO", "seeds"] == "BERT 2, LDS 0"
    assert table2_asr(summaries[:4], ["BERT"])[1].iloc[-1]["seeds"] == "2"


def test_table2_carries_both_asr_denominators():
    """TextAttack's ASR (successful / (successful + failed), skipped = already misclassified left out) is what Table 2
    shows; the paper's wording, successful / all sampled examples, is in the csv as <method>_over_total_*."""
    from advtrain.attacks.metrics import summarise

    def records(successful, failed, skipped):
        kinds = ["Successful"] * successful + ["Failed"] * failed + ["Skipped"] * skipped
        return [{"result_type": k, "num_queries": 1, "words_changed": 1, "words_total": 5} for k in kinds]

    counts = {1: (6, 2, 2), 2: (3, 3, 4)}  # per seed: successful, failed, skipped
    summaries = [{"dataset": "MR", "method": "BERT", "seed": seed, "attack": "textfooler", "substitutions": [],
                  **summarise(records(*c))} for seed, c in counts.items()]
    numeric, display = table2_asr(summaries, ["BERT"])
    row = numeric.set_index("attack").loc["TextFooler"]
    textattack = [100 * s / (s + f) for s, f, _ in counts.values()]  # 75, 50
    paper_wording = [100 * s / (s + f + k) for s, f, k in counts.values()]  # 60, 30
    assert row["BERT_mean"] == pytest.approx(sum(textattack) / 2)
    assert row["BERT_over_total_mean"] == pytest.approx(sum(paper_wording) / 2)
    assert row["BERT_over_total_sd"] == pytest.approx(statistics.stdev(paper_wording))
    assert row["BERT_over_total_n"] == 2
    assert numeric.set_index("attack").loc["Average", "BERT_over_total_mean"] == pytest.approx(45.0)
    assert display.set_index("attack").loc["TextFooler", "BERT (ours)"] == "62.50 ± 17.68"
    caption = (REPO / "workflow/scripts/table2_asr.py").read_text()
    assert "successful / (successful + failed attacks)" in caption and "_over_total_" in caption


def test_table2_average_beside_the_papers_printed_average_only_for_its_four_attacks():
    printed = paper.load("table2_asr").set_index(["attack", "dataset"])
    def run(attacks):
        return [{"dataset": "IMDB", "method": "LDS", "seed": 1, "attack": a, "attack_success_rate": 0.5,
                 "substitutions": []} for a in attacks]

    numeric, display = table2_asr(run(["textfooler", "bae", "a2t", "pso"]), ["LDS"])
    assert numeric.set_index("attack").loc["Average", "LDS_paper"] == printed.loc[("Average", "IMDB"), "LDS"]
    assert display["attack"].iloc[-1] == "Average"
    # An attack the paper did not run: no paper average to compare with.
    numeric, display = table2_asr(run(["textfooler", "deepwordbug"]), ["LDS"])
    assert math.isnan(numeric.set_index("attack").loc["Average", "LDS_paper"])
    assert display.set_index("attack").loc["Average (TextFooler, DeepWordBug)", "LDS (paper)"] == "—"


def test_table3_gives_minutes_and_ratios_beside_the_papers():
    from advtrain.tables import table3_runtime

    runs = [{"dataset": "MR", "method": m, "seed": s, "job_seconds": sec, "train_seconds": sec - 30}
            for m, secs in (("BERT", (600, 660)), ("PGD-AT", (1800, 1860))) for s, sec in zip((1, 2), secs, strict=True)]
    numeric, display = table3_runtime(runs, ["BERT", "PGD-AT", "LDS"])
    pgd = numeric.set_index("method").loc["PGD-AT"]
    assert pgd["MR_minutes_mean"] == pytest.approx(30.5) and pgd["MR_n"] == 2
    assert pgd["MR_train_minutes_mean"] == pytest.approx(30.0)
    assert pgd["MR_ratio"] == pytest.approx(30.5 / 10.5)
    assert pgd["MR_paper_minutes"] == pytest.approx(69.0) and pgd["MR_paper_ratio"] == pytest.approx(69.0 / 38.2)
    lds = numeric.set_index("method").loc["LDS"]
    assert lds["MR_n"] == 0 and math.isnan(lds["MR_ratio"])
    assert display.set_index("method").loc["LDS", "MR min (ours)"] == "—"
    assert display.set_index("method").loc["BERT", "MR ×BERT (ours)"] == "1.00"
    assert list(display.set_index("method")["MR seeds"]) == ["2", "2", "0"]
    assert "IMDB_ratio" not in numeric.columns  # no IMDB runs


def test_paired_comparisons_pair_seeds_and_give_t_intervals():
    from scipy import stats

    from advtrain.tables import paired_comparisons

    evals = [{"dataset": "MR", "method": m, "seed": s, "accuracy": {"in_distribution": acc, "YELP": 0.8}}
             for m, accs in (("BERT", (0.80, 0.82, 0.84)), ("LDS", (0.81, 0.84, 0.85))) for s, acc in zip((1, 2, 3), accs, strict=True)]
    attacks = [{"dataset": "MR", "method": m, "seed": s, "attack": a, "attack_success_rate": v}
               for m, v in (("BERT", 0.6), ("LDS", 0.5)) for s in (1, 2) for a in ("textfooler", "bae")]
    numeric, display = paired_comparisons(evals, attacks, ["BERT", "LDS"])
    acc = numeric.set_index(["metric"]).loc["accuracy"]
    diffs = [1.0, 2.0, 1.0]
    half = stats.t.ppf(0.975, 2) * pd.Series(diffs).std() / 3 ** 0.5
    assert acc["seeds"] == 3 and acc["difference"] == pytest.approx(4 / 3)
    assert acc["ci_low"] == pytest.approx(4 / 3 - half) and acc["ci_high"] == pytest.approx(4 / 3 + half)
    asr = numeric.set_index(["metric"]).loc["average ASR"]
    assert asr["seeds"] == 2 and asr["difference"] == pytest.approx(-10.0) and asr["ci_low"] == pytest.approx(-10.0)
    assert set(numeric["metric"]) == {"accuracy", "YELP accuracy", "average ASR"}
    assert "BERT" not in set(numeric["method"])


def test_tradeoff_figure_has_ours_and_the_papers_points(tmp_path):
    from advtrain.figures import paper_points, plot_tradeoff, tradeoff_points

    pgd = {"dataset": "MR", "method": "PGD-AT", "seed": 1, "accuracy": {"in_distribution": 0.86, "YELP": 0.83}}
    numeric4, _ = table4_accuracy([*evals(), pgd], ["BERT", "PGD-AT"])
    summaries = [{"dataset": "MR", "method": m, "seed": 1, "attack": "textfooler", "attack_success_rate": 0.5}
                 for m in ("BERT", "PGD-AT")]
    numeric2, _ = table2_asr(summaries, ["BERT", "PGD-AT"])
    points = tradeoff_points(numeric4, numeric2, ["MR", "IMDB"])
    ours = points[points["source"] == "ours"]
    assert set(ours["method"]) == {"BERT", "PGD-AT"} and (ours["average_asr"] == 50.0).all()
    paper_row = points[(points["source"] == "paper") & (points["method"] == "PGD-AT")].iloc[0]
    # Only TextFooler ran, so the paper's point uses its TextFooler ASR (87.8), not its four-attack average (60.5).
    assert paper_row["average_asr"] == pytest.approx(87.8) and paper_row["in_distribution_accuracy"] == pytest.approx(86.59)
    assert set(points["dataset"]) == {"MR"}  # no IMDB attacks
    paths = plot_tradeoff(points, tmp_path / "tradeoff")
    assert all(p.stat().st_size > 1000 for p in paths)
    assert len(paper_points(["MR", "IMDB"])) == 16


def test_coinciding_points_of_the_tradeoff_figure_share_one_label(tmp_path):
    """PGD-AT and FAT on one spot print "PGD-AT, FAT" once instead of two labels over each other ("PGDFAT")."""
    from advtrain.figures import plot_tradeoff, point_labels

    def point(method, asr, acc, source="ours"):
        return {"dataset": "MR", "method": method, "source": source, "average_asr": asr,
                "in_distribution_accuracy": acc, "YELP_accuracy": acc - 5}

    points = pd.DataFrame([point("BERT", 60.0, 85.0), point("PGD-AT", 40.0, 84.0), point("FAT", 40.0, 84.0),
                           point("FAT", 40.0, 84.0, "paper"), point("LDS", 20.0, 80.0)])
    labels = point_labels(points, "in_distribution_accuracy")
    assert labels == [(60.0, 85.0, "BERT"), (40.0, 84.0, "PGD-AT, FAT, FAT (paper)"), (20.0, 80.0, "LDS")]
    # A point a fifth of the span away keeps its own label.
    apart = point_labels(points.assign(average_asr=[60.0, 40.0, 48.0, 40.0, 20.0]), "in_distribution_accuracy")
    assert [text for _, _, text in apart] == ["BERT", "PGD-AT, FAT (paper)", "FAT", "LDS"]
    assert all(p.stat().st_size > 1000 for p in plot_tradeoff(points, tmp_path / "tradeoff"))


def test_table2_cells_name_each_substitution_and_its_text_is_a_note_under_the_table(tmp_path):
    from advtrain.tables import substitution_notes

    use = ("sentence_encoder: UniversalSentenceEncoder -> sentence-transformers /very/long/path/all-MiniLM-L6-v2 "
           "(same threshold/window: threshold=0.84, window_size=15; `attacks.resources.use` is not set)")
    neighbours = ("word_embedding: WordSwapEmbedding(max_candidates=50) + WordEmbeddingDistance(min_cos_sim=0.5) "
                  "-> the neighbour table /very/long/path/neighbours.json (at most 50 neighbours per word)")
    summaries = [{"dataset": "MR", "method": m, "seed": 1, "attack": attack, "attack_success_rate": 0.5,
                  "substitutions": subs}
                 for m in ("BERT", "PGD-AT")
                 for attack, subs in (("textfooler", [neighbours, use]), ("a2t", [neighbours]), ("pso", []))]
    numeric, display = table2_asr(summaries, ["BERT", "PGD-AT"])
    cells = display.set_index("attack")["substitutions"]
    assert cells["TextFooler"] == "[1] word_embedding; [2] sentence_encoder"
    assert cells["A2T"] == "[1] word_embedding" and cells["PSO"] == "—"
    assert cells.iloc[-1] == "[1] word_embedding; [2] sentence_encoder"  # the Average row
    # The csv keeps every cell's full text; md and tex give it once, under the table.
    assert numeric.set_index("attack").loc["TextFooler", "substitutions"] == f"{neighbours}; {use}"
    notes = substitution_notes(summaries)
    assert notes == [f"[1] {neighbours}", f"[2] {use}"]
    paths = write_display_table(numeric, display, tmp_path / "t2", caption="Table 2", notes=notes)
    md = paths[1].read_text()
    table, below = md.split("\n\nNotes:\n- ", 1)
    assert "/very/long/path" not in table and md.count("/very/long/path/neighbours.json") == 1
    assert below.startswith("[1] word_embedding: WordSwapEmbedding(max_candidates=50)")
    tex = paths[2].read_text()
    assert tex.count(r"\par\footnotesize [2] sentence\_encoder") == 1 and tex.index(r"\bottomrule") < tex.index(r"\par\footnotesize [1]")
