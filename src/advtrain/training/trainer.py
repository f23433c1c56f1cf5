"""The one Trainer subclass of the project: a method's parts add loss terms in ``compute_loss``.

Everything else (AMP, clipping, checkpoints, resumption, progress) is Hugging Face ``Trainer``'s; the optimiser and
the schedule are too unless a method follows a reference trainer's (``advtrain.training.optim``).
"""

from __future__ import annotations

import torch
from transformers import Trainer


class AdvTrainer(Trainer):
    """``Trainer`` whose loss is the clean loss plus the terms of the method's parts.

    ``embedding_adversary`` (see ``advtrain.training.embedding``) perturbs the embeddings and returns the
    adversarial term, added to the clean loss times its ``clean_weight`` (FreeLB: 0, no clean term); ``None`` is
    plain fine-tuning. ``input_adversary`` (see ``advtrain.training.input_space``) generates adversarial examples
    at epoch starts and appends them to the batches of their originals.
    ``optimizer_name`` and ``lr_schedule`` are ``train.optimizer`` and ``train.lr_schedule``
    (``advtrain.training.optim``).
    """

    def __init__(self, *args, embedding_adversary=None, input_adversary=None, optimizer_name: str = "adamw_torch",
                 lr_schedule: str = "linear", **kwargs):
        if input_adversary is not None:
            from advtrain.training.input_space import INDEX_COLUMN, InputAdversaryCallback

            # Each training row carries its index, so a batch can take in its originals' adversarial examples.
            train = kwargs["train_dataset"]
            kwargs["train_dataset"] = train.add_column(INDEX_COLUMN, list(range(len(train))))
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), InputAdversaryCallback(input_adversary)]
        super().__init__(*args, **kwargs)
        self.embedding_adversary = embedding_adversary
        self.input_adversary = input_adversary
        self.optimizer_name = optimizer_name
        self.lr_schedule = lr_schedule

    def create_optimizer(self):
        """Hugging Face's AdamW, or a reference trainer's optimiser over the same two groups (weight decay on all but
        biases and LayerNorm: TextAttack's and mt-dnn's no_decay lists pick the same parameters of a BERT)."""
        if self.optimizer is not None or self.optimizer_name == "adamw_torch":
            return super().create_optimizer()
        from advtrain.training.optim import build_optimizer

        decay = set(self.get_decay_parameter_names(self.model))
        trained = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in trained if n in decay], "weight_decay": self.args.weight_decay},
                  {"params": [p for n, p in trained if n not in decay], "weight_decay": 0.0}]
        self.optimizer = build_optimizer(self.optimizer_name, groups, lr=self.args.learning_rate,
                                         eps=self.args.adam_epsilon, betas=(self.args.adam_beta1, self.args.adam_beta2))
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None and self.lr_schedule == "mtdnn":
            from advtrain.training.optim import mtdnn_schedule

            # mt-dnn's warm-up is a share of the steps, not rounded up to whole steps as Hugging Face's ratio is.
            warmup = self.args.warmup_steps or self.args.warmup_ratio * num_training_steps
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer if optimizer is None else optimizer, mtdnn_schedule(num_training_steps, warmup))
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.input_adversary is not None:
            from advtrain.training.input_space import INDEX_COLUMN

            if INDEX_COLUMN not in self._signature_columns:  # kept by remove_unused_columns, popped before forward
                self._signature_columns.append(INDEX_COLUMN)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from advtrain.training.input_space import INDEX_COLUMN

        indices = inputs.pop(INDEX_COLUMN, None)
        weights = None
        if self.input_adversary is not None and model.training and indices is not None:
            inputs, weights = self.input_adversary.extend(inputs, indices)
        # Only while training: evaluation reports the clean loss.
        adversary = self.embedding_adversary if model.training else None
        if adversary is not None and not adversary.needs_clean_forward:
            # FreeLB: no clean term and nothing compares with the clean logits, so the clean forward would only cost
            # a pass (and draw dropout masks that the reference does not).
            loss = adversary.loss(model, inputs, None)
            return (loss, None) if return_outputs else loss
        outputs = model(**inputs)
        loss = outputs.loss
        if weights is not None:
            # TextAttack's adversarial-training loss: batch mean of per-example cross-entropy, adversarial ones x alpha.
            per_example = torch.nn.functional.cross_entropy(outputs.logits.float(), inputs["labels"], reduction="none")
            loss = (per_example * weights).mean()
        if adversary is not None:
            loss = adversary.clean_weight * loss + adversary.loss(model, inputs, outputs.logits)
        return (loss, outputs) if return_outputs else loss
