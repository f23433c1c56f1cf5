"""Certified accuracy of one RanMASK / SAFER model at each radius, on the attacks' sample of its test split."""

import json
from pathlib import Path

import pandas as pd

from advtrain.attacks.run import select_examples
from advtrain.certification import certify
from advtrain.device import claim_job_gpu
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
settings = snakemake.params.settings
test = pd.read_parquet(snakemake.input.test)
# The sample TextFooler & co. attack (attacks.num_examples, attacks.seed): certified beside empirical robustness.
examples = select_examples(test, snakemake.params.num_examples, snakemake.params.seed)
result = certify(snakemake.input.model, examples, settings["eval_batch_size"], settings["max_length"],
                 settings.get("precision", "auto"))
w = snakemake.wildcards
record = {"dataset": w.dataset, "method": w.method, "seed": int(w.seed), **result}
Path(snakemake.output[0]).write_text(json.dumps(record, indent=1, default=str) + "\n")
print(json.dumps({k: v for k, v in record.items() if k != "records"}, indent=1, default=str))
