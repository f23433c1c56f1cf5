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
