"""Accuracy of one fine-tuned model on its in-distribution test split and on every ood test split."""

import json
from pathlib import Path

from advtrain.device import claim_job_gpu
from advtrain.evaluation import evaluate
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
settings = snakemake.params.settings
splits = {"in_distribution": snakemake.input.in_distribution}
splits.update({name: snakemake.input[name] for name in snakemake.params.ood})
result = evaluate(snakemake.input.model, splits, settings["eval_batch_size"], settings["max_length"],
                  settings.get("precision", "auto"), predictions_out=snakemake.output.predictions)
w = snakemake.wildcards
record = {"dataset": w.dataset, "method": w.method, "seed": int(w.seed), **result}
Path(snakemake.output[0]).write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(record, indent=2))
