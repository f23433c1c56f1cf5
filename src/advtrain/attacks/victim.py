"""The victim classifier as TextAttack sees it: a ``HuggingFaceModelWrapper`` that pads each batch to its longest text.

TextAttack's wrapper pads every query to ``tokenizer.model_max_length``, so MR's 20-word sentences cost as much as
full-length inputs (most of an attack's time went there). Padding to the batch's longest text gives the same logits up
to the last bits, because the attention mask hides the padding; the attack stage and input-space adversarial training
both use this wrapper, with or without the query broker (:mod:`advtrain.attacks.broker`).

A2T's word ranking (``get_grad``) pads the same way: TextAttack runs the one text's forward and backward over
``model_max_length`` positions (512 in A2T's training settings, for a 25-token MR sentence), which made the gradient,
not the queries, most of an A2T attack's time. Here it runs at the text's own length (fidelity ledger
``victim-padding``), and under the query broker the gradients of the examples in flight run as one batch, each with
its own dropout draws (:mod:`advtrain.attacks.gradients`).
"""

from __future__ import annotations

import copy
from pathlib import Path

_CLASS = None
#: Copies per forward of a smoothing victim attacked one example at a time (RanMASK's attack wrapper batches 600 for
#: SST-2, ``classifier.py:157-161``); under the query broker, ``attacks.batch_tokens`` cuts them instead.
ENSEMBLE_BATCH = 600


def _wrapper_class():
    global _CLASS
    if _CLASS is None:
        import torch

        from advtrain.attacks.resources import prepare_textattack

        prepare_textattack()  # before TextAttack's first import: its post-install step downloads nothing
        from textattack.models.wrappers import HuggingFaceModelWrapper

        class BatchPaddedWrapper(HuggingFaceModelWrapper):
            """``__call__`` pads to the batch's longest text; ``batch_sizes`` counts the texts of every forward."""

            def __init__(self, model, tokenizer):
                super().__init__(model, tokenizer)
                self.batch_sizes: list[int] = []

            def __call__(self, text_input_list):
                enc = self.tokenizer(list(text_input_list), add_special_tokens=True, padding=True, truncation=True,
                                     max_length=self.tokenizer.model_max_length, return_tensors="pt")
                enc = enc.to(next(self.model.parameters()).device)
                self.batch_sizes.append(len(text_input_list))
                with torch.no_grad():
                    return self.model(**enc).logits

            def get_grad(self, text_input):
                """TextAttack 0.3.11's ``get_grad`` (train mode, so dropout on, drawn from torch's global generator;
                the loss of the predicted label; the gradient of the word-embedding layer's output) over the text's
                own tokens instead of ``model_max_length`` positions: the same gradient at every token when dropout
                is off (to float rounding: the attention mask hides the padding); with dropout on, masks drawn over
                fewer positions, a different draw of the same distribution. ``gradient`` has one row per token of
                the text. See :class:`advtrain.attacks.gradients.GradientTwin`."""
                return self.gradient_twin().gradients([text_input])[0]

            def get_grads(self, texts, generators):
                """:meth:`get_grad` for several texts at once, each drawing its dropout from its own generator (the
                query broker's workers; :mod:`advtrain.attacks.gradients`)."""
                return self.gradient_twin().gradients(texts, generators)

            def gradient_twin(self):
                """The train-mode twin of the model that takes the gradients (built on first use)."""
                twin = getattr(self, "_gradient_twin", None)
                if twin is None:
                    from advtrain.attacks.gradients import GradientTwin

                    twin = self._gradient_twin = GradientTwin(self.model, self.tokenizer)
                return twin

        _CLASS = BatchPaddedWrapper
    return _CLASS


def padded_wrapper(model, tokenizer, max_length: int | None = None):
    """Wrap ``model`` for TextAttack; ``max_length`` (the length the model was trained with) caps every query.

    The tokenizer is copied, so the caller's keeps its own ``model_max_length``.
    """
    from advtrain.models import prepare

    tokenizer = copy.deepcopy(tokenizer)
    prepare(tokenizer, model)  # a decoder-only model's padding token (a no-op on a loaded classifier)
    if max_length:
        tokenizer.model_max_length = int(max_length)
    return _wrapper_class()(model, tokenizer)


class EnsembleVictim:
    """The victim of a smoothing method (RanMASK, SAFER): a text's prediction is the ensemble of its noisy copies, as
    TextDefender's attacks query its ensemble wrapper (``main.py:718-720``; ledger row ``smoothing-ensemble``).

    ``inner`` runs the copies: the padded wrapper, or under the query broker a worker's brokered victim
    (:meth:`over`), so the copies of all pending texts share the broker's large forwards. TextAttack counts one
    query per text, as for any victim; each text's copies are the same whenever it is asked
    (:meth:`advtrain.smoothing.Smoothing.copies`). A2T's gradient is the plain text's, as TextDefender's wrappers
    compute it (``huggingface_model_ensemble_wrapper.py:105-161``).
    """

    def __init__(self, inner, smoothing, batch_size: int | None = None):
        self.inner, self.smoothing = inner, smoothing
        #: Copies per call of ``inner`` (None: all of a call's copies at once, the broker cuts them).
        self.batch_size = batch_size

    def over(self, inner) -> EnsembleVictim:
        """The same ensemble over another runner of the copies (a worker's brokered victim)."""
        return EnsembleVictim(inner, self.smoothing, None)

    def __call__(self, text_input_list):
        import torch

        texts = [str(t) for t in text_input_list]
        copies = self.smoothing.expand(texts)
        step = self.batch_size or len(copies) or 1
        rows = [self.inner(copies[i:i + step]) for i in range(0, len(copies), step)]
        if not rows:  # no texts: no rows, as many columns as the model has classes
            model = getattr(self.inner, "model", None)
            return torch.empty(0, int(getattr(getattr(model, "config", None), "num_labels", 2)))
        logits = torch.cat([torch.as_tensor(r).detach().float().cpu() for r in rows])
        return torch.as_tensor(self.smoothing.combine(logits.numpy()), dtype=torch.float32)

    def get_grad(self, text_input):
        return self.inner.get_grad(text_input)

    def __getattr__(self, name):  # model, tokenizer, batch_sizes: the inner wrapper's
        if name in ("inner", "smoothing", "batch_size"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def load_model_wrapper(model_dir: str | Path, max_length: int | None = None, nltk_data: str | Path | None = None):
    """:func:`padded_wrapper` around a fine-tuned classifier folder, in eval mode, on the GPU when there is one.

    ``max_length`` (e.g. the length the model was fine-tuned with) replaces ``tokenizer.model_max_length``, which
    keeps long reviews from being cut at a different length than in training.
    """
    import torch

    from advtrain.attacks import resources as res
    from advtrain.models import load_classifier

    res.import_textattack(nltk_data)
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a fine-tuned model folder (no config.json)")
    model, tokenizer = load_classifier(model_dir)
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    wrapper = padded_wrapper(model, tokenizer, max_length)
    from advtrain.smoothing import load as load_smoothing

    smoothing = load_smoothing(model_dir)  # a RanMASK / SAFER model predicts with its ensemble
    return wrapper if smoothing is None else EnsembleVictim(wrapper, smoothing, ENSEMBLE_BATCH)
