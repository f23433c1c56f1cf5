"""Download the configured splits of a Hugging Face dataset into the resource cache (a localrules job)."""

from advtrain import downloads
from advtrain.logs import redirect_to
from advtrain.sources import fetch_dataset

redirect_to(snakemake.log[0])
hf = snakemake.params.hf
print(f"fetching {hf['name']} ({', '.join(hf['splits'].values())}) into {snakemake.output[0]}")
fetch_dataset(snakemake.wildcards.dataset, hf, snakemake.output[0],
              retries=downloads.settings(snakemake.config)["retries"])
