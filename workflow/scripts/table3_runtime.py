"""Table 3: fine-tuning wall time per method and dataset (Snakemake's benchmark of each train job), ratio to BERT,
with the training loop's CPU time beside it and a mark on times measured under contention."""

import json
from pathlib import Path

import pandas as pd

from advtrain.logs import redirect_to
from advtrain.tables import table3_notes, table3_runtime, write_display_table

redirect_to(snakemake.log[0])
share = snakemake.params.contention_share
runs = []
for metrics_file, benchmark_file in zip(snakemake.input.metrics, snakemake.input.benchmarks, strict=True):
    metrics = json.loads(Path(metrics_file).read_text())
    benchmark = pd.read_csv(benchmark_file, sep="\t")
    # Snakemake writes NA where its 30-second sampling saw nothing (a job shorter than its first sample).
    job_cpu = pd.to_numeric(benchmark["cpu_time"], errors="coerce").iloc[0] if "cpu_time" in benchmark else None
    timing = metrics.get("timing") or {}  # absent in metrics written before the job recorded its timing
    runs.append({"dataset": metrics["dataset"], "method": metrics["method"], "seed": metrics["seed"],
                 "job_seconds": float(benchmark["s"].iloc[0]), "train_seconds": metrics["wall_seconds"],
                 "job_cpu_seconds": None if job_cpu is None or pd.isna(job_cpu) else float(job_cpu),
                 **{key: timing.get(key) for key in ("cpu_seconds", "contended_share", "load_1min_mean", "cpus")}})
baseline = "BERT" if "BERT" in snakemake.params.methods else snakemake.params.methods[0]
numeric, display = table3_runtime(runs, snakemake.params.methods, baseline=baseline, contention_share=share)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption=f"Table 3: fine-tuning wall time (minutes, mean ± sd over seeds) and the ratio to {baseline}, "
                    "ours beside the paper's (one V100, 4 epochs); CPU: the training loop's CPU time",
                    notes=table3_notes(runs, share))
print(display.to_markdown(index=False))
