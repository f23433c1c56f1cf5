"""Gather an augmenter's shards into one text,label,source_id file (in source order) and one summary."""

import json
from pathlib import Path

import pandas as pd

from advtrain.augment import gather, gather_summaries
from advtrain.augment.shards import write_json
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
rows = gather(pd.read_parquet(p) for p in snakemake.input.rows)
rows.to_parquet(snakemake.output.rows, index=False)
summary = gather_summaries([json.loads(Path(p).read_text()) for p in snakemake.input.summaries], rows)
summary.update(dataset=snakemake.wildcards.dataset)
write_json(summary, snakemake.output.summary)
print(json.dumps(summary, indent=1, default=str))
