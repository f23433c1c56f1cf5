"""Accuracy of a fine-tuned classifier on test splits (in distribution and out of distribution)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from advtrain import device, models
from advtrain.data import check_label_space, read_split
from advtrain.predictions import save_predictions
from advtrain.smoothing import load as load_smoothing


def load_classifier(model_dir: str | Path):
    model, tokenizer = models.load_classifier(model_dir)
    return model.to(device.device()).eval(), tokenizer


@torch.no_grad()
def logits(model, tokenizer, texts: Sequence[str], batch_size: int, max_length: int,
           precision: str = "auto", desc: str = "predicting") -> np.ndarray:
    """The logits of each text. Batches are built from length-sorted texts so little compute goes to padding."""
    order = np.argsort([len(t) for t in texts])[::-1]
    out = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
    dev = device.device()
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, mininterval=5):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(dev)
        with device.autocast(precision):
            out[idx] = model(**enc).logits.float().cpu().numpy()
    return out


def predict(model, tokenizer, texts: Sequence[str], batch_size: int, max_length: int,
            precision: str = "auto", desc: str = "predicting", smoothing=None) -> np.ndarray:
    """Predicted labels; with ``smoothing`` (RanMASK, SAFER: :mod:`advtrain.smoothing`), the ensemble's over each
    text's noisy copies (ledger row ``smoothing-ensemble``)."""
    if smoothing is None:
        return logits(model, tokenizer, texts, batch_size, max_length, precision, desc).argmax(-1)
    copies = smoothing.expand(list(texts))
    return smoothing.combine(logits(model, tokenizer, copies, batch_size, max_length, precision, desc)).argmax(-1)


def evaluate(model_dir: str | Path, test_splits: dict[str, str | Path], batch_size: int, max_length: int,
             precision: str = "auto", predictions_out: str | Path | None = None) -> dict:
    """``{"accuracy": {name: acc}, "examples": {name: n}}`` for each named test split.

    With ``predictions_out``, also writes each split's predicted and true labels in row order (see
    :func:`advtrain.predictions.save_predictions`), so that per-example tests can pair the models on the same examples.
    """
    model, tokenizer = load_classifier(model_dir)
    smoothing = load_smoothing(model_dir)  # a RanMASK / SAFER model predicts with its ensemble
    accuracy, examples, predictions = {}, {}, {}
    for name, path in test_splits.items():
        df = read_split(path)
        # An ood set scored by this model must have its classes (YELP's two for a 4-class AG News model would not).
        check_label_space(df, f"{path} ({name})", model.config.num_labels, f"the model {model_dir}")
        preds = predict(model, tokenizer, df["text"].tolist(), batch_size, max_length, precision, desc=name,
                        smoothing=smoothing)
        labels = df["label"].to_numpy()
        accuracy[name] = float((preds == labels).mean())
        examples[name] = int(len(df))
        predictions[name] = (preds, labels)
    if predictions_out is not None:
        save_predictions(predictions_out, predictions)
    return {"accuracy": accuracy, "examples": examples}
