"""Download the POS corpus (NLTK's treebank sample or CoNLL-2000) into the resource cache (a localrules job)."""

from advtrain import downloads
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
sources = downloads.settings(snakemake.config)
print(f"fetching NLTK's {snakemake.params.corpus} from {snakemake.params.index} into {snakemake.output[0]}")
downloads.fetch_nltk_packages([snakemake.params.corpus], snakemake.output[0], index_url=snakemake.params.index,
                              key="lca.data.nltk_data", retries=sources["retries"])
