"""Fine-tune the pretrained model with one method and seed; resumes from the last epoch checkpoint."""

import json

from advtrain.device import claim_job_gpu
from advtrain.logs import redirect_to
from advtrain.models import check_model_folder
from advtrain.training.finetune import fine_tune, write_metrics

redirect_to(snakemake.log[0])
claim_job_gpu(snakemake)  # a GPU of its own on a workstation with several, before CUDA starts
print("method spec:", json.dumps(snakemake.params.spec, indent=2))
# A model.path was checked at start-up; a downloaded model (model.name) is checked here, before any checkpoint.
check_model_folder(snakemake.input.model, "model.path" if snakemake.config["model"].get("path") else "model.name",
                   {snakemake.wildcards.method: snakemake.params.spec.get("parts", {})})
metrics = fine_tune(
    model_path=snakemake.input.model,
    train_path=snakemake.input.train,
    validation_path=snakemake.input.validation,
    output_dir=snakemake.output.model,
    checkpoint_dir=snakemake.params.checkpoints,
    spec=snakemake.params.spec,
    seed=int(snakemake.wildcards.seed),
    # AT-DA: augmented rows (inputs named augment_<augmenter>) join the training split.
    augmented_paths=[path for key, path in snakemake.input.items() if key.startswith("augment_")],
    # AT-IP: the attack recipe's resources (inputs named res_<kind>, as the attack rules name them).
    attack_resources={key[4:]: path for key, path in snakemake.input.items() if key.startswith("res_")},
)
metrics.update(dataset=snakemake.wildcards.dataset, method=snakemake.wildcards.method)
write_metrics(metrics, snakemake.output.metrics)
print("metrics:", json.dumps(metrics, indent=2, default=str))
