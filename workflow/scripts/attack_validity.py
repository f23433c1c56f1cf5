"""The adversarial examples of one attack on one dataset, run by run: words changed, sentence-encoder similarity, the
recipe's bounds, and the perplexity of the original and adversarial texts under the causal LM."""

from advtrain.attacks import gather
from advtrain.attacks import resources as res
from advtrain.attacks.fluency import perplexity
from advtrain.attacks.run import read_records
from advtrain.attacks.validity import check, sentence_encoder
from advtrain.device import claim_job_gpu
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake, shareable=True)  # the sentence encoder and the LM: one slot of a GPU, like an attack shard
res.import_textattack(snakemake.input.nltk_data)  # NLTK first: TextAttack reads its stopwords on import
encode = sentence_encoder(snakemake.input.sentence_encoder)
# One scorer for every run: the cell's runs attack the same test examples, whose originals are scored once. No causal
# LM (attacks.fluency.enabled false): the perplexity columns stay empty.
lm = getattr(snakemake.input, "causal_lm", None)
fluency = perplexity(lm, snakemake.params.fluency_max_length, snakemake.params.batch_tokens) if lm else None
for out, shards in snakemake.params.runs.items():
    records = gather(read_records(p) for p in shards)
    frame = check(records, snakemake.wildcards.attack, encode, perplexity=fluency)
    frame.to_csv(out, index=False)
    outside = int(frame["exceeds_any"].sum()) if len(frame) else 0
    print(f"{out}: {len(frame)} adversarial examples of {len(records)} records; outside the recipe's bounds: {outside}; "
          f"median perplexity original {frame['original_perplexity'].median():.1f}, "
          f"adversarial {frame['perturbed_perplexity'].median():.1f}")
