"""Read a dataset's source, check it, and write each split as text,label parquet with a JSON summary."""

import json

from advtrain.data import prepare, write_split
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
name = snakemake.wildcards.dataset
splits = [key for key in ("train", "validation", "test") if key in snakemake.output.keys()]
frames = prepare(name, snakemake.params.dataset, snakemake.input.get("source"), splits)
for split, (df, sources) in frames.items():
    summary = write_split(df, snakemake.output[split], snakemake.output[f"{split}_summary"], sources)
    print(f"{name}/{split}: {json.dumps(summary)}")
