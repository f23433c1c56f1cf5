"""Per-example predictions of the evaluate rule: one compressed ``.npz`` per model with, for every test split it was
evaluated on (``in_distribution`` and each ood dataset), the predicted and the true labels in the split's row order.

Every model of a training dataset is evaluated on the same splits, so these pair example by example across methods
(:mod:`advtrain.robustness`). Torch-free, so the report rules read them without the training stack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_predictions(path: str | Path, predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``predictions``: ``{split: (predicted labels, true labels)}``, written as ``prediction/<split>`` and
    ``label/<split>`` arrays."""
    arrays = {}
    for name, (preds, labels) in predictions.items():
        arrays[f"prediction/{name}"] = np.asarray(preds, dtype=np.int16)
        arrays[f"label/{name}"] = np.asarray(labels, dtype=np.int16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # an open file: np.savez_compressed would append .npz to any other name
        np.savez_compressed(f, **arrays)
    return path


def load_correct(path: str | Path) -> dict[str, np.ndarray]:
    """``{split: per-example correctness (bool array)}`` from a :func:`save_predictions` file."""
    with np.load(path) as data:
        splits = [key.split("/", 1)[1] for key in data.files if key.startswith("prediction/")]
        if not splits:
            raise ValueError(f"{path}: no predictions (expected prediction/<split> arrays)")
        return {s: data[f"prediction/{s}"] == data[f"label/{s}"] for s in splits}
