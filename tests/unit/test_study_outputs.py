"""benchmarks/study_outputs.py: two runs compare equal when only times and the broker's batching differ, and a
changed number, a changed record or a missing file is reported."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "study_outputs.py"
spec = importlib.util.spec_from_file_location("study_outputs", SCRIPT)
study_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_outputs)


def write_run(root: Path, *, asr=40.0, seconds=1.0, forwards=11, minutes=0.5, text="a fine film") -> Path:
    (root / "tables").mkdir(parents=True)
    (root / "attacks").mkdir()
    (root / "tables/table2_asr.csv").write_text(f"attack,BERT\nTextFooler,{asr!r}\n")
    (root / "tables/table3_runtime.csv").write_text(
        f"method,MR_minutes_mean,MR_ratio,MR_paper_ratio\nBERT,{minutes},{minutes / 0.5},1.0\n")
    (root / "attacks/shard.json").write_text(json.dumps({"asr": asr, "run": {"seconds": seconds,
                                                                            "forwards": {"forwards": forwards}}}))
    (root / "attacks/shard.jsonl").write_text(json.dumps({"perturbed_text": text}) + "\n")
    (root / "summary.md").write_text(f"### table3_runtime\n\n{minutes}\n\n### table2_asr\n\n{asr:.1f}\n")
    return root


def test_times_and_batching_are_not_differences(tmp_path):
    before = write_run(tmp_path / "a")
    after = write_run(tmp_path / "b", seconds=9.0, forwards=12, minutes=0.8, asr=40.0 * (1 + 1e-15))
    assert study_outputs.compare(before, after) == []


def test_a_changed_result_is_reported(tmp_path):
    before = write_run(tmp_path / "a")
    changed = write_run(tmp_path / "b", asr=40.5, text="a good film")
    assert study_outputs.compare(before, changed) == [
        "differs: attacks/shard.json", "differs: attacks/shard.jsonl", "differs: summary.md",
        "differs: tables/table2_asr.csv"]
    (changed / "summary.md").unlink()
    assert "only before: summary.md" in study_outputs.compare(before, changed)
