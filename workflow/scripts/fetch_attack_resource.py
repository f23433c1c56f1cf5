"""Download one attack resource into the cache (a localrules job: it needs the network)."""

from advtrain import downloads
from advtrain.attacks.resources import fetch
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
print(f"fetching attack resource {snakemake.params.kind} into {snakemake.output[0]}")
fetch(snakemake.params.kind, snakemake.output[0], downloads.settings(snakemake.config))
