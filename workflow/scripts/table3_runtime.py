"""Table 3: fine-tuning wall time per method and dataset (Snakemake's benchmark of each train job), ratio to BERT."""

import json
from pathlib import Path

import pandas as pd

from advtrain.logs import redirect_to
from advtrain.tables import table3_runtime, write_display_table

redirect_to(snakemake.log[0])
runs = []
for metrics_file, benchmark_file in zip(snakemake.input.metrics, snakemake.input.benchmarks, strict=True):
    metrics = json.loads(Path(metrics_file).read_text())
    runs.append({"dataset": metrics["dataset"], "method": metrics["method"], "seed": metrics["seed"],
                 "job_seconds": float(pd.read_csv(benchmark_file, sep="\t")["s"].iloc[0]),
                 "train_seconds": metrics["wall_seconds"]})
baseline = "BERT" if "BERT" in snakemake.params.methods else snakemake.params.methods[0]
numeric, display = table3_runtime(runs, snakemake.params.methods, baseline=baseline)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption=f"Table 3: fine-tuning wall time (minutes, mean ± sd over seeds) and the ratio to {baseline}, "
                    "ours beside the paper's (one V100, 4 epochs)")
print(display.to_markdown(index=False))
