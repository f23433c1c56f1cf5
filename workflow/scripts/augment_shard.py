"""Augment one shard of a training split with one augmenter (SSMBA or back-translation)."""

import json

import pandas as pd
import torch

from advtrain.augment import augment_shard, parse_scatteritem, shard_rows
from advtrain.augment.shards import write_json
from advtrain.device import claim_job_gpu
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
torch.set_num_threads(snakemake.threads)  # shards are the parallelism on a CPU: a few threads each
spec = snakemake.params.spec
index, shards = parse_scatteritem(snakemake.wildcards.scatteritem)
rows = shard_rows(pd.read_parquet(snakemake.input.train), index, shards)
models = {key[len("model_"):]: path for key, path in snakemake.input.items() if key.startswith("model_")}
print(f"{snakemake.wildcards.augmenter} ({spec['kind']}), shard {index + 1} of {shards}: {len(rows)} rows")
out, summary = augment_shard(spec["kind"], spec, models, rows, augmenter=snakemake.wildcards.augmenter)
out.to_parquet(snakemake.output.rows, index=False)
summary.update(dataset=snakemake.wildcards.dataset, shard=index + 1, shards=shards)
write_json(summary, snakemake.output.summary)
print(json.dumps(summary, indent=1, default=str))
