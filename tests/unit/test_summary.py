"""results/summary.md from table and figure files."""

from __future__ import annotations

import pytest

from advtrain.summary import write_summary


def make_table(folder, stem, caption, formats=("csv", "md", "tex")):
    folder.mkdir(parents=True, exist_ok=True)
    for ext in formats:
        body = f"{caption}\n\n| a |\n|---|\n| 1 ± 0 |\n" if ext == "md" else "x"
        (folder / f"{stem}.{ext}").write_text(body)
    return folder / f"{stem}.md"


def test_summary_quotes_each_table_and_links_each_figure(tmp_path):
    results = tmp_path / "results"
    t4 = make_table(results / "tables", "table4_accuracy", "Table 4: accuracy (%)")
    t1 = make_table(results / "tables", "table1_toy", "Toy study (Table 1)", formats=("csv", "md"))
    (results / "figures").mkdir()
    (results / "figures/tradeoff.png").write_bytes(b"png")
    (results / "figures/tradeoff.pdf").write_bytes(b"pdf")
    path = write_summary(results / "summary.md", [t1, t4], [results / "figures/tradeoff.png"],
                         {"methods": ["BERT", "PGD-AT"], "seeds": [1, 2], "attacks": "none"})
    text = path.read_text()
    assert "- **methods**: BERT, PGD-AT" in text and "- **seeds**: 1, 2" in text and "- **attacks**: none" in text
    assert "- **tables**: 2," in text and "- **figures**: 1," in text
    # Paths relative to the summary's folder; only the formats that exist are listed.
    assert "### table1_toy\n\n`tables/table1_toy.csv`, `tables/table1_toy.md`\n\nToy study (Table 1)" in text
    assert "`tables/table4_accuracy.tex`" in text and "| 1 ± 0 |" in text
    assert "`figures/tradeoff.png` (also `figures/tradeoff.pdf`)" in text
    assert "![tradeoff](figures/tradeoff.png)" in text
    assert text.index("table1_toy") < text.index("table4_accuracy")


def test_empty_table_is_an_error(tmp_path):
    empty = tmp_path / "table2_asr.md"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="table2_asr.md: empty table"):
        write_summary(tmp_path / "summary.md", [empty], [], {})


def test_omitted_rules_and_files_name_the_tables_they_remove():
    from advtrain.summary import omitted

    stems = ["table1_toy", "table2_asr", "table4_accuracy", "table5_lca", "table6_lca_words", "paired_vs_bert",
             "tradeoff", "budget_MR_textfooler"]
    assert omitted(stems, {"lca_train"}) == {
        "table5_lca": "not made: `--omit-from lca_train`", "table6_lca_words": "not made: `--omit-from lca_train`"}
    # An attack resource's fetch rule (fetch_attack_<kind>) removes every result that reads the attacks.
    assert set(omitted(stems, {"fetch_attack_hownet"})) == {"table2_asr", "paired_vs_bert", "tradeoff",
                                                             "budget_MR_textfooler"}
    # ... unless attacks are not configured: then the paired tables do not read them.
    assert "paired_vs_bert" not in omitted(stems, {"gather_attack"}, attacks=False)
    assert set(omitted(stems, {"results/tables/table4_accuracy.csv", "tradeoff_figure"})) == {"table4_accuracy",
                                                                                              "tradeoff"}
    assert set(omitted(stems, {"train"})) == set(stems) - {"table1_toy", "table5_lca", "table6_lca_words"}
    assert omitted(stems, set()) == {}


def test_summary_lists_what_the_run_left_out_and_why(tmp_path):
    results = tmp_path / "results"
    t4 = make_table(results / "tables", "table4_accuracy", "Table 4: accuracy (%)")
    absent = {"table5_lca": "not made: `--omit-from lca_train`", "table6_lca_words": "not made: `--omit-from lca_train`",
              "table2_asr": "not configured: `attacks.recipes` is empty"}
    text = write_summary(results / "summary.md", [t4], [], {"methods": ["BERT"]}, absent=absent).read_text()
    assert ("## Not in this run\n\n- `table5_lca`, `table6_lca_words`: not made: `--omit-from lca_train`\n"
            "- `table2_asr`: not configured: `attacks.recipes` is empty\n") in text
    assert text.index("Not in this run") < text.index("## Tables")
    assert "Not in this run" not in write_summary(results / "s.md", [t4], [], {"methods": ["BERT"]}).read_text()


def test_summary_states_each_claims_verdicts_before_the_tables(tmp_path):
    """The claims table's csv (rule claims) becomes a section of one line per claim, at the table's confidence."""
    import pandas as pd

    results = tmp_path / "results"
    t4 = make_table(results / "tables", "table4_accuracy", "Table 4: accuracy (%)")
    rows = [{"claim": "C1", "quote": "augmentation helps", "where": "Section 5", "run_verdict": "supported",
             "p_value": 0.001, "paper_cells": 2, "paper_disagreeing": 1, "confidence": 0.95},
            {"claim": "C2", "quote": "AT-IP is most robust", "where": "Section 4", "run_verdict": "not testable",
             "p_value": float("nan"), "paper_cells": 4, "paper_disagreeing": 0, "confidence": 0.95}]
    csv = results / "tables/claims.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    text = write_summary(results / "summary.md", [t4], [], {"methods": ["BERT"]}, claims=csv).read_text()
    section = text[text.index("## The paper's claims"):text.index("## Tables")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| C")]
    assert cells == [["C1", "augmentation helps", "Section 5", "supported", "disagrees in 1 of 2 cells"],
                     ["C2", "AT-IP is most robust", "Section 4", "not testable", "agrees in all 4 cells"]]
