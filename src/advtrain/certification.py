"""Certified accuracy of a RanMASK or SAFER model at each radius (words changed), on the attacks' sample.

:mod:`advtrain.smoothing` holds the bounds; this runs the model on the Monte-Carlo copies. RanMASK (``classifier.py
:396-444``): the guess is the vote of the ensemble's copies; a wrong guess is not certified; otherwise
``certify_samples`` further copies give the bound and the radius. SAFER (``evaluation.py:242-300``): ``p`` is the
share of ``certify_samples`` copies classified with the true label; the radius follows from the text's overlaps.
The certification copies are drawn from a generator of their own (seeded by the text, apart from the ensemble's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advtrain import smoothing as sm


def _predictions(model, tokenizer, texts: list[str], batch_size: int, max_length: int, precision: str) -> np.ndarray:
    from advtrain.evaluation import logits

    return logits(model, tokenizer, texts, batch_size, max_length, precision, desc="certifying").argmax(-1)


def certify_example(predict, smoothing: sm.Smoothing, text: str, label: int, tv: dict | None = None) -> dict:
    """One example's record: the ensemble's guess, the certified radius (None: wrong guess; -1: not certified) and
    the statistic it came from. ``predict(texts)`` gives the model's labels."""
    settings = smoothing.settings
    n = int(settings["certify_samples"])
    votes = np.bincount(predict(smoothing.copies(text)), minlength=2)
    guess = int(votes.argmax())
    samples = smoothing.noisy(text, n, sm.text_state(settings["seed"] + 1, text))
    words = len(text.split())
    record = {"label": int(label), "guess": guess, "words": words}
    if smoothing.kind == "ranmask":
        if guess != label:  # classifier.py:421-423
            return {**record, "radius": None}
        count = int((predict(samples) == guess).sum())
        bound = sm.clopper_pearson_lower(count, n, float(settings["alpha"]))
        radius = sm.ranmask_radius(bound, words, sm.kept_words(words, float(settings["mask_rate"])), count / n)
        return {**record, "count": count, "bound": bound, "radius": radius}
    p = float((predict(samples) == label).mean())  # evaluation.py:291-297: accuracy over the random copies
    radius = sm.safer_radius(p, sm.text_overlaps(text.lower(), tv), float(settings["mc_error"]))
    return {**record, "p": p, "radius": radius}


def certify(model_dir: str | Path, examples: Sequence[tuple], batch_size: int, max_length: int,
            precision: str = "auto") -> dict:
    """Each example's record and the certified accuracy at each radius (:func:`certified_accuracy`)."""
    from advtrain.evaluation import load_classifier

    smoothing = sm.load(model_dir)
    if smoothing is None:
        raise ValueError(f"{model_dir} was not trained with a `smoothing` part (no {sm.SETTINGS_FILE}): nothing to "
                         "certify")
    model, tokenizer = load_classifier(model_dir)
    tv = sm.overlaps(smoothing.table) if smoothing.kind == "safer" else None

    def predict(texts):
        return _predictions(model, tokenizer, texts, batch_size, max_length, precision)

    records = [certify_example(predict, smoothing, str(text), int(label), tv) for text, label, *_ in examples]
    return {"kind": smoothing.kind, "settings": smoothing.settings, "examples": len(records),
            "ensemble_accuracy": float(np.mean([r["guess"] == r["label"] for r in records])) if records else None,
            "certified_accuracy": certified_accuracy(records), "records": records}


def certified_accuracy(records: Sequence[dict]) -> dict[int, float]:
    """{radius d: share of the examples certified at d or more}, d from 0 to the largest radius certified."""
    radii = [r["radius"] for r in records if r["radius"] is not None and r["radius"] >= 0]
    top = max(radii, default=0)
    return {d: sum(r >= d for r in radii) / len(records) if records else 0.0 for d in range(top + 1)}


def certified_table(results: Sequence[dict], attacks: Sequence[dict] = (), max_radius: int = 10) -> pd.DataFrame:
    """One row per (dataset, method, seed): the ensemble's accuracy and accuracy under each attack on the sample
    (the empirical numbers), then the certified accuracy (%) at radius 0 to ``max_radius``."""
    under = {(a["dataset"], a["method"], a["seed"], a["attack"]): a.get("accuracy_under_attack") for a in attacks}
    recipes = sorted({a["attack"] for a in attacks})
    rows = []
    for res in results:
        key = (res["dataset"], res["method"], res["seed"])
        row = {"dataset": key[0], "method": key[1], "seed": key[2], "kind": res["kind"], "examples": res["examples"],
               "ensemble_accuracy": 100 * res["ensemble_accuracy"] if res["ensemble_accuracy"] is not None else None}
        for recipe in recipes:
            value = under.get((*key, recipe))
            row[f"under_{recipe}"] = 100 * value if value is not None else None
        certified = {int(d): v for d, v in res["certified_accuracy"].items()}
        for d in range(max_radius + 1):
            row[f"r{d}"] = 100 * certified.get(d, 0.0)
        rows.append(row)
    return pd.DataFrame(rows)
