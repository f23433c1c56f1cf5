"""The one Trainer subclass of the project: a method's parts add loss terms in ``compute_loss``.

Everything else (AMP, clipping, checkpoints, resumption, progress) is Hugging Face ``Trainer``'s; the optimiser and
the schedule are too unless a method follows a reference trainer's (``advtrain.training.optim``).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer

#: The raw text a smoothing method's training rows keep, for its noise (advtrain.smoothing).
TEXT_COLUMN = "text"


class NoisyCollator:
    """A training batch of fresh noisy copies: one copy per example at every step, as RanMASK's and TextDefender's
    mask and SAFER trainers draw them (RanMASK ``trainer/mask.py:67-73``, TextDefender ``trainer/safer.py:52-58``),
    re-tokenised with ``smoothing.max_length``. Rows without a text (evaluation) go to ``collator`` as they are.
    One NumPy generator seeded with the run's seed draws every copy (a resumed run draws a new stream)."""

    def __init__(self, smoothing, tokenizer, collator, seed: int):
        self.smoothing, self.tokenizer, self.collator = smoothing, tokenizer, collator
        self.rng = np.random.RandomState(seed)

    def __call__(self, features):
        if features and TEXT_COLUMN in features[0]:
            texts = [f.pop(TEXT_COLUMN) for f in features]
            noisy = [self.smoothing.noisy(t, 1, self.rng)[0] for t in texts]
            enc = self.tokenizer(noisy, truncation=True, max_length=self.smoothing.max_length)
            features = [{**{k: v for k, v in f.items() if k not in enc}, **{k: enc[k][i] for k in enc}}
                        for i, f in enumerate(features)]
        return self.collator(features)


class AdvTrainer(Trainer):
    """``Trainer`` whose loss is the clean loss plus the terms of the method's parts.

    ``embedding_adversary`` (see ``advtrain.training.embedding``) perturbs the embeddings and returns the
    adversarial term, added to the clean loss times its ``clean_weight`` (FreeLB: 0, no clean term); ``None`` is
    plain fine-tuning. ``input_adversary`` (see ``advtrain.training.input_space``) generates adversarial examples
    at epoch starts and appends them to the batches of their originals. ``flooding``
    (``advtrain.training.flooding``) floods the training objective, |J - b| + b, after the other parts' terms; with
    ``select: accordance`` it is also the callback that chooses b.
    ``optimizer_name`` and ``lr_schedule`` are ``train.optimizer`` and ``train.lr_schedule``
    (``advtrain.training.optim``).
    """

    def __init__(self, *args, embedding_adversary=None, input_adversary=None, smoothing=None, flooding=None,
                 optimizer_name: str = "adamw_torch", lr_schedule: str = "linear", **kwargs):
        if input_adversary is not None:
            from advtrain.training.input_space import INDEX_COLUMN, InputAdversaryCallback

            # Each training row carries its index, so a batch can take in its originals' adversarial examples.
            train = kwargs["train_dataset"]
            kwargs["train_dataset"] = train.add_column(INDEX_COLUMN, list(range(len(train))))
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), InputAdversaryCallback(input_adversary)]
        if smoothing is not None:
            # RanMASK / SAFER: the training rows keep their text (fine_tune), each batch is re-tokenised from noisy
            # copies; evaluation batches (no text) are padded as they are.
            kwargs["data_collator"] = NoisyCollator(smoothing, kwargs["processing_class"], kwargs["data_collator"],
                                                    kwargs["args"].seed)
        if flooding is not None and flooding.select == "accordance":  # it measures the step gradients
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), flooding]
        super().__init__(*args, **kwargs)
        self.smoothing = smoothing
        self.embedding_adversary = embedding_adversary
        self.input_adversary = input_adversary
        self.flooding = flooding
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
        if self.smoothing is not None and TEXT_COLUMN not in self._signature_columns:  # popped by NoisyCollator
            self._signature_columns.append(TEXT_COLUMN)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from advtrain.training.input_space import INDEX_COLUMN

        indices = inputs.pop(INDEX_COLUMN, None)
        weights = None
        if self.input_adversary is not None and model.training and indices is not None:
            inputs, weights = self.input_adversary.extend(inputs, indices)
        # Only while training: evaluation reports the clean loss.
        adversary = self.embedding_adversary if model.training else None
        if adversary is not None and getattr(adversary, "replaces_loss", False) and not return_outputs:
            # TAVAT, InfoBERT (advtrain.training.textdefender): the loss is the perturbed forwards' alone, as their
            # reference trainers compute it, so no clean forward is run.
            return adversary.loss(model, inputs)
        if adversary is not None and not getattr(adversary, "needs_clean_forward", True):
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
            loss = getattr(adversary, "clean_weight", 1.0) * loss + adversary.loss(model, inputs, outputs.logits)
        if self.flooding is not None and model.training:
            loss = self.flooding.apply(loss)
        return (loss, outputs) if return_outputs else loss
