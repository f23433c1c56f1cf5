"""Gather the shards of one attack run: ASR, accuracy under attack, ... and the substitutions the recipe reported."""

import json
from pathlib import Path

from advtrain.attacks import gather, summarise
from advtrain.attacks.metrics import json_safe, outcomes
from advtrain.attacks.recipes import SETTING_KEYS
from advtrain.attacks.run import read_records, sample_note
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
records = gather(read_records(p) for p in snakemake.input.records)
shard_runs = [json.loads(Path(p).read_text())["run"] for p in snakemake.input.summaries]
summary = summarise(records)
test_rows = json.loads(Path(snakemake.input.test_summary).read_text())["rows"]
substitutions = list(dict.fromkeys(s for run in shard_runs for s in run.get("substitutions", [])))
first = shard_runs[0] if shard_runs else {}
w = snakemake.wildcards
out = {
    "dataset": w.dataset,
    "method": w.method,
    "seed": int(w.seed),
    "attack": w.attack,
    **summary,
    "substitutions": substitutions,
    "resources": first.get("resources", {}),
    "query_budget": first.get("query_budget"),
    "model_batch_size": first.get("model_batch_size"),
    "random_seed": first.get("random_seed"),
    **{k: first[k] for k in SETTING_KEYS if k in first},  # a recipe's own settings
    **{k: first[k] for k in ("protocol",) if k in first},  # attacks.protocol, when not the paper's
    "requested_examples": snakemake.params.requested,
    # "requested 500, attacked 50 (the test split has 50 rows)" when the split is smaller than attacks.num_examples
    "sample_note": sample_note(snakemake.params.requested, len(records), test_rows),
    "shards": len(shard_runs),
    "seconds": sum(run.get("seconds", 0.0) for run in shard_runs),
    "examples": outcomes(records),  # per example, for the budget curves, effort and paired tests
}
if out["sample_note"]:
    print(f"sample: {out['sample_note']}")
for note in substitutions:
    print(f"substitution: {note}")
Path(snakemake.output[0]).write_text(json.dumps(json_safe(out), indent=1, allow_nan=False))
print(json.dumps(json_safe(summary), indent=1))
