"""Attack one shard of the fixed test sample with one recipe; checkpoints outside the outputs so a rerun resumes."""

import json
from pathlib import Path

import pandas as pd
import torch

from advtrain.attacks import AttackSettings, Shard, attack_examples, protocols
from advtrain.attacks.metrics import json_safe
from advtrain.device import claim_job_gpu
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake, shareable=True)  # one slot of a GPU (devices.attack_shards_per_gpu), before CUDA starts
torch.set_num_threads(snakemake.threads)  # shards are the parallelism: a few threads each, not every core
params = snakemake.params.settings
# How many examples are in flight does not change a record: read from the (validated) config, not passed as a param,
# whose change would rerun every shard.
broker = {key: snakemake.config["attacks"][key] for key in ("concurrency", "batch_tokens")}
settings = AttackSettings(
    max_length=snakemake.params.max_length,
    query_budget=params["query_budget"],
    model_batch_size=params["model_batch_size"],
    seed=params["seed"],
    checkpoint_interval=params["checkpoint_interval"],
    **snakemake.params.recipe_settings,
    protocol=params.get("protocol", protocols.DEFAULT),  # in `settings` only when not the paper's (attack.smk)
    **broker,
)
item, total = (int(x) for x in snakemake.wildcards.scatteritem.split("-of-"))
resources = {key[len("res_"):]: path for key, path in snakemake.input.items() if key.startswith("res_")}
test = pd.read_parquet(snakemake.input.test)
examples = protocols.sample(settings.protocol, test, params["num_examples"], settings.seed, return_index=True)
if settings.protocol != protocols.DEFAULT:
    for key in ("sample_rule", "budget_per_example", "constraints"):
        print(f"{settings.protocol} protocol, {key.replace('_', ' ')}: {params[key]}")
summary = attack_examples(
    snakemake.input.model,
    examples,
    snakemake.wildcards.attack,
    resources,
    settings,
    out_path=snakemake.output.records,
    shard=Shard(index=item - 1, count=total, checkpoint_dir=snakemake.params.checkpoints),
)
for note in summary["run"]["substitutions"]:
    print(f"substitution: {note}")
Path(snakemake.output.summary).write_text(json.dumps(json_safe(summary), indent=1, allow_nan=False, default=str))
print(json.dumps(summary["run"], indent=1, default=str))
