"""The one Trainer subclass of the project: a method's parts add loss terms in ``compute_loss``.

Everything else (AMP, optimiser, scheduler, checkpoints, resumption, progress) is Hugging Face ``Trainer``'s.
"""

from __future__ import annotations

import torch
from transformers import Trainer


class AdvTrainer(Trainer):
    """``Trainer`` whose loss is the clean loss plus the terms of the method's parts.

    ``embedding_adversary`` (see ``advtrain.training.embedding``) perturbs the embeddings and returns the
    adversarial term; ``None`` is plain fine-tuning. ``input_adversary`` (see ``advtrain.training.input_space``)
    generates adversarial examples at epoch starts and appends them to the batches of their originals.
    """

    def __init__(self, *args, embedding_adversary=None, input_adversary=None, **kwargs):
        if input_adversary is not None:
            from advtrain.training.input_space import INDEX_COLUMN, InputAdversaryCallback

            # Each training row carries its index, so a batch can take in its originals' adversarial examples.
            train = kwargs["train_dataset"]
            kwargs["train_dataset"] = train.add_column(INDEX_COLUMN, list(range(len(train))))
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), InputAdversaryCallback(input_adversary)]
        super().__init__(*args, **kwargs)
        self.embedding_adversary = embedding_adversary
        self.input_adversary = input_adversary

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
        outputs = model(**inputs)
        loss = outputs.loss
        if weights is not None:
            # TextAttack's adversarial-training loss: batch mean of per-example cross-entropy, adversarial ones x alpha.
            per_example = torch.nn.functional.cross_entropy(outputs.logits.float(), inputs["labels"], reduction="none")
            loss = (per_example * weights).mean()
        # Only while training: evaluation reports the clean loss.
        if self.embedding_adversary is not None and model.training:
            loss = loss + self.embedding_adversary.loss(model, inputs, outputs.logits)
        return (loss, outputs) if return_outputs else loss
