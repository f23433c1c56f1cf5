"""Download a Hugging Face dataset into the resource cache (a localrules job: it needs the network)."""

from advtrain.logs import redirect_to
from advtrain.resources import fetch_dataset

redirect_to(snakemake.log[0])
hf = snakemake.params.hf
print(f"fetching {hf['name']} into {snakemake.output[0]}")
fetch_dataset(snakemake.wildcards.dataset, hf["name"], hf.get("config_name"), snakemake.output[0])
