"""The one Trainer subclass of the project: a method's parts add loss terms in ``compute_loss``.

Everything else (AMP, optimiser, scheduler, checkpoints, resumption, progress) is Hugging Face ``Trainer``'s.
"""

from __future__ import annotations

from transformers import Trainer


class AdvTrainer(Trainer):
    """``Trainer`` whose loss is the clean loss plus the terms of the method's parts.

    ``embedding_adversary`` (see ``advtrain.training.embedding``) perturbs the word embeddings and returns the
    adversarial term; ``None`` is plain fine-tuning.
    """

    def __init__(self, *args, embedding_adversary=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.embedding_adversary = embedding_adversary

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = outputs.loss
        # Only while training: evaluation reports the clean loss.
        if self.embedding_adversary is not None and model.training:
            loss = loss + self.embedding_adversary.loss(model, inputs, outputs.logits)
        return (loss, outputs) if return_outputs else loss
