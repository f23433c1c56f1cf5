"""Training jobs' own timing (advtrain.training.timing) and Table 3's contention mark (advtrain.tables)."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import synthetic_reviews

from advtrain.tables import CONTENDED, table3_notes, table3_runtime, write_display_table
from advtrain.training.timing import JobTiming, contended_share, cpu_ticks, job_cpus

# --------------------------------------------------------------------------- the contention rule


@pytest.mark.parametrize(("others", "cpus", "threads", "share"), [
    (0.0, 2, 2, 0.0),     # alone on its cores
    (1.4, 2, 2, 0.7),     # issue 26's PGD-AT: ~5 of 7 runnable threads were other work's, on 2 cores
    (1.0, 2, 1, 0.0),     # a 1-thread job leaves a core free: other work there takes nothing from it
    (1.5, 2, 1, 0.5),     # ... beyond that core it does
    (10.0, 16, 2, 0.0),   # a busy 16-core node with 14 cores to spare
    (20.0, 16, 2, 1.0),   # more than the node: clipped at 1
    (0.5, 2, 8, 0.25),    # more torch threads than CPUs: the job needed the CPUs it may use
])
def test_contended_share_is_the_share_of_the_jobs_cores_other_work_held(others, cpus, threads, share):
    assert contended_share(others, cpus, threads) == pytest.approx(share)


def test_cpu_ticks_sums_the_jobs_cpus_and_counts_idle_and_iowait_as_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  30 0 10 100 5 0 0 0 0 0\n"
                    "cpu0 10 1 2 50 3 1 1 2 0 0\n"
                    "cpu1 20 0 8 50 2 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    assert cpu_ticks([0], str(stat)) == (10 + 1 + 2 + 1 + 1 + 2, 70)
    assert cpu_ticks([0, 1], str(stat)) == (17 + 28, 70 + 80)
    assert cpu_ticks([0, 2], str(stat)) is None  # a CPU it cannot see: no figure rather than a wrong one
    assert cpu_ticks([0], str(tmp_path / "absent")) is None


def _hog(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time\nt=time.time()+{seconds}\nwhile time.time()<t: pass"])


@pytest.mark.skipif(cpu_ticks(job_cpus()) is None, reason="needs /proc/stat")
def test_other_processes_busy_on_the_jobs_cpus_show_as_contention():
    """Busy processes beside a job that itself sleeps: the cores they held are others', the share near 1."""
    cpus = job_cpus()
    timing = JobTiming(interval=0.2)
    args = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    hogs = [_hog(1.5) for _ in cpus]
    try:
        timing.on_train_begin(args, None, None)
        time.sleep(1.0)
        timing.on_train_end(args, None, None)
    finally:
        for hog in hogs:
            hog.wait()
    record = timing.record
    assert record["contention_source"] == "proc_stat" and record["cpus"] == len(cpus)
    assert record["cpu_seconds"] < 0.2 * record["wall_seconds"]  # the job slept
    # Each hog keeps a core busy for the whole window (start-up aside).
    assert record["others_cpus"] > 0.6 * len(cpus)
    assert record["contended_share"] > 0.6
    assert record["load_samples"] >= 3 and record["load_1min_max"] >= record["load_1min_mean"] > 0
    assert record["gpu_step_seconds"] is None


# --------------------------------------------------------------------------- Table 3


def _runs():
    """MR: BERT trained alone, PGD-AT under a load of 7 on 2 cores (issue 26's figures); IMDB: not checked."""
    timing = {"cpus": 2}
    return [
        {"dataset": "MR", "method": "BERT", "seed": 1, "job_seconds": 200.0, "train_seconds": 160.0,
         "cpu_seconds": 290.0, "job_cpu_seconds": 330.0, "contended_share": 0.02, "load_1min_mean": 2.1, **timing},
        {"dataset": "MR", "method": "PGD-AT", "seed": 1, "job_seconds": 2180.0, "train_seconds": 2140.0,
         "cpu_seconds": 1860.0, "job_cpu_seconds": 1890.0, "contended_share": 0.71, "load_1min_mean": 7.0, **timing},
        {"dataset": "MR", "method": "LDS", "seed": 1, "job_seconds": 640.0, "train_seconds": 600.0,
         "cpu_seconds": 1100.0, "job_cpu_seconds": None, "contended_share": 0.05, "load_1min_mean": 2.3, **timing},
        {"dataset": "IMDB", "method": "BERT", "seed": 1, "job_seconds": 400.0, "train_seconds": 350.0},
    ]


def test_table3_marks_the_times_measured_under_contention_and_the_ratios_that_use_them():
    numeric, display = table3_runtime(_runs(), ["BERT", "PGD-AT", "LDS"], contention_share=0.1)
    num, disp = numeric.set_index("method"), display.set_index("method")
    assert list(num["MR_contended"]) == [False, True, False]
    assert list(num["MR_ratio_contended"]) == [False, True, False]
    assert num.loc["PGD-AT", "MR_ratio"] == pytest.approx(2180 / 200)
    assert num.loc["PGD-AT", "MR_cpu_ratio"] == pytest.approx(1860 / 290)
    assert num.loc["PGD-AT", "MR_job_cpu_minutes_mean"] == pytest.approx(1890 / 60)
    assert math.isnan(num.loc["LDS", "MR_job_cpu_minutes_mean"])  # the benchmark's NA
    assert num.loc["PGD-AT", "MR_contended_share_max"] == pytest.approx(0.71)
    assert disp.loc["PGD-AT", "MR min (ours)"] == f"36.3 {CONTENDED}"
    assert disp.loc["PGD-AT", "MR ×BERT (ours)"] == f"10.90 {CONTENDED}"
    assert disp.loc["PGD-AT", "MR CPU ×BERT (ours)"] == f"6.41 {CONTENDED}"
    assert disp.loc["LDS", "MR ×BERT (ours)"] == "3.20" and disp.loc["BERT", "MR min (ours)"] == "3.3"
    # IMDB's run has no timing record: not known, so neither marked nor called clean.
    assert num.loc["BERT", "IMDB_contended"] is None and disp.loc["BERT", "IMDB min (ours)"] == "6.7"
    assert disp.loc["BERT", "IMDB CPU min (ours)"] == "—"


def test_a_contended_baseline_marks_every_ratio_to_it():
    runs = [{**r, "contended_share": 0.9 if r["method"] == "BERT" else 0.0} for r in _runs() if r["dataset"] == "MR"]
    numeric, display = table3_runtime(runs, ["BERT", "PGD-AT", "LDS"], contention_share=0.1)
    assert list(numeric["MR_contended"]) == [True, False, False]
    assert list(numeric["MR_ratio_contended"]) == [True, True, True]
    assert display.set_index("method").loc["LDS", "MR min (ours)"] == "10.7"  # its own time is clean


def test_the_threshold_decides_the_mark():
    runs = [r for r in _runs() if r["dataset"] == "MR"]
    assert list(table3_runtime(runs, ["BERT", "PGD-AT", "LDS"], contention_share=0.8)[0]["MR_contended"]) == [
        False, False, False]
    assert list(table3_runtime(runs, ["BERT", "PGD-AT", "LDS"], contention_share=0.0)[0]["MR_contended"]) == [
        True, True, True]


def test_table3_files_carry_the_mark_its_footnote_and_a_boolean_column(tmp_path):
    runs = _runs()
    numeric, display = table3_runtime(runs, ["BERT", "PGD-AT", "LDS"], contention_share=0.1)
    notes = table3_notes(runs, 0.1)
    csv, md, tex = write_display_table(numeric, display, tmp_path / "table3_runtime", caption="Table 3", notes=notes)
    table = pd.read_csv(csv).set_index("method")
    assert table["MR_contended"].tolist() == [False, True, False] and table["MR_contended"].dtype == bool
    text = md.read_text(encoding="utf-8")
    assert f"10.90 {CONTENDED}" in text
    assert f"- {CONTENDED}: measured under contention" in text and "timing.contention_share" in text
    assert "snakemake --cores 2" in text and "--exclusive" in text
    assert "Under contention: MR PGD-AT seed 1 (share 0.71, mean 1-min load 7.0 on 2 CPUs)." in text
    assert "Not checked for contention" in text and "IMDB BERT seed 1" in text
    latex = tex.read_text(encoding="utf-8")
    assert CONTENDED not in latex and r"10.90 \textdagger{}" in latex and r"\par\footnotesize \textdagger{}:" in latex


# --------------------------------------------------------------------------- a training run records its timing


def test_a_training_run_records_its_cpu_time_and_the_load(tiny_model, tmp_path):
    from advtrain.config import method_spec
    from advtrain.data import write_split
    from advtrain.training.finetune import fine_tune

    rows = synthetic_reviews(48, seed=5)
    for name, part in (("train", rows[:32]), ("validation", rows[32:])):
        write_split(pd.DataFrame(part, columns=["text", "label"]), tmp_path / f"{name}.parquet",
                    tmp_path / f"{name}.json")
    config = {"model": {"max_length": 32, "batch_size": 8, "learning_rate": 3e-3, "epochs": 1,
                        "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "auto"},
              "methods": {"m": {}}}
    metrics = fine_tune(tiny_model, tmp_path / "train.parquet", tmp_path / "validation.parquet", tmp_path / "model",
                        tmp_path / "ckpt", method_spec(config, "m"), seed=1)
    record = metrics["timing"]
    assert 0 < record["wall_seconds"] <= metrics["wall_seconds"]
    assert record["cpu_seconds"] > 0 and record["own_cpus"] == pytest.approx(record["cpu_seconds"] / record["wall_seconds"])
    assert record["cpus"] == len(job_cpus()) and record["threads"] >= 1
    assert record["load_samples"] >= 2 and record["load_1min_max"] >= record["load_1min_mean"] >= 0
    assert 0.0 <= record["contended_share"] <= 1.0 and record["contention_source"] in {"proc_stat", "loadavg"}
    assert record["gpu_step_seconds"] is None and record["gpu_steps"] is None  # a CPU run: no GPU time


def test_gpu_step_time_sums_each_steps_cuda_events(monkeypatch):
    """No GPU here: stand-in events whose elapsed time is known check the bookkeeping (each step's begin to end,
    the older steps resolved on the way so that a long run holds few events)."""
    import advtrain.training.timing as timing_module

    class Event:
        clock = 0.0

        def __init__(self, enable_timing):
            assert enable_timing
            self.at = None

        def record(self):
            Event.clock += 10.0  # milliseconds between consecutive records
            self.at = Event.clock

        def synchronize(self):
            assert self.at is not None, "an event resolved before it was recorded"

        def elapsed_time(self, end):
            return end.at - self.at

    monkeypatch.setattr(timing_module.torch.cuda, "Event", Event)
    timing = JobTiming(interval=60.0)
    args = SimpleNamespace(device=SimpleNamespace(type="cuda"))
    timing.on_train_begin(args, None, None)
    for _ in range(300):
        timing.on_step_begin(args, None, None)
        timing.on_step_end(args, None, None)
    assert len(timing._events) < 256
    timing.on_train_end(args, None, None)
    assert timing.record["gpu_steps"] == 300 and timing.record["gpu_step_seconds"] == pytest.approx(300 * 0.010)
