"""POS-tagged sentences for the LCA: a fixed train/test split of the configured corpus."""

import json

from advtrain.lca.pos_data import load_pos_data, summarise, tag_set, write_sentences
from advtrain.lca.tagging import save_tags
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
settings = dict(snakemake.params.settings)
if "nltk_data" in snakemake.input.keys():
    settings["nltk_data"] = snakemake.input.nltk_data
splits = load_pos_data(settings)
write_sentences(splits["train"], snakemake.output.train)
write_sentences(splits["test"], snakemake.output.test)
save_tags(tag_set(splits["train"]), snakemake.output.tags)
summary = summarise(splits)
with open(snakemake.output.summary, "w") as f:
    json.dump(summary, f, indent=1)
print(json.dumps(summary, indent=1))
