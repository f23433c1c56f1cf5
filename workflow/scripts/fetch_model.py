"""Download the pretrained model into the resource cache (a localrules job: it needs the network)."""

from advtrain import downloads
from advtrain.logs import redirect_to
from advtrain.sources import fetch_model

redirect_to(snakemake.log[0])
print(f"fetching {snakemake.params.name} into {snakemake.output[0]}")
fetch_model(snakemake.params.name, snakemake.output[0], retries=downloads.settings(snakemake.config)["retries"])
