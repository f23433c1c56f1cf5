"""Every layer's activations for each word of the POS train and test splits, from one fine-tuned tagger."""

from advtrain.device import claim_job_gpu
from advtrain.lca import activations
from advtrain.lca.pos_data import read_sentences
from advtrain.lca.tagging import load_tags
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
tags = load_tags(snakemake.input.tags)
for split in ("train", "test"):
    result = activations.extract(
        snakemake.input.model,
        read_sentences(snakemake.input[split]),
        tags,
        max_length=snakemake.params.max_length,
        batch_size=snakemake.params.batch_size,
        pooling=snakemake.params.pooling,
        dtype=snakemake.params.dtype,
    )
    activations.save(result, snakemake.output[split])
    print(f"{split}: {result['activations'].shape[0]} words x {result['activations'].shape[1]} neurons "
          f"({int(result['layers'])} layers, {result['activations'].dtype}, {result['activations'].nbytes:,} bytes), "
          f"{int(result['dropped_words'])} words cut by max_length")
