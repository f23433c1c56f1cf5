"""Probe one tagger's neurons: rankings per tag, association with the tags' words, the top-neuron ablation."""

import json

import torch

from advtrain.lca import activations
from advtrain.lca.analysis import analyse
from advtrain.lca.tagging import load_tags
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
result = analyse(
    activations.load(snakemake.input.train),
    activations.load(snakemake.input.test),
    load_tags(snakemake.input.tags),
    snakemake.params.settings,
    seed=int(snakemake.wildcards.seed),
)
result.update(method=snakemake.wildcards.method, seed=int(snakemake.wildcards.seed))
with open(snakemake.output[0], "w") as f:
    json.dump(result, f, indent=1)
print(f"probe accuracy {result['probe_accuracy']:.4f}; top-{result['ablation_neurons']} neurons "
      f"{result['top_ranked_neurons']}: {result['ablation_accuracy']:.4f}")
