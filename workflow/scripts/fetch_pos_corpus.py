"""Download the POS corpus (NLTK's treebank sample or CoNLL-2000) into the resource cache (a localrules job)."""

import nltk

from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
corpus = snakemake.params.corpus
print(f"nltk.download({corpus!r}) into {snakemake.output[0]}")
if not nltk.download(corpus, download_dir=snakemake.output[0], raise_on_error=True):
    raise SystemExit(f"could not download NLTK's {corpus}: without network access, set lca.data.nltk_data to an "
                     f"NLTK data folder with corpora/{corpus}")
