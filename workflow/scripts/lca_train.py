"""Fine-tune a POS tagger with one method's parts; resumes from the last epoch checkpoint."""

import json

from advtrain.device import claim_job_gpu
from advtrain.lca.tagging import fine_tune_tagger, load_tags
from advtrain.logs import redirect_to
from advtrain.training.finetune import write_metrics

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
print("method spec:", json.dumps(snakemake.params.spec, indent=2))
metrics = fine_tune_tagger(
    model_path=snakemake.input.model,
    train_path=snakemake.input.train,
    test_path=snakemake.input.test,
    tags=load_tags(snakemake.input.tags),
    output_dir=snakemake.output.model,
    checkpoint_dir=snakemake.params.checkpoints,
    spec=snakemake.params.spec,
    seed=int(snakemake.wildcards.seed),
)
metrics.update(method=snakemake.wildcards.method)
write_metrics(metrics, snakemake.output.metrics)
print("metrics:", json.dumps(metrics, indent=2, default=str))
