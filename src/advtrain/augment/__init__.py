"""Offline data augmentation for the AT-DA methods: SSMBA and back-translation.

Augmented copies of a training split are generated once, before training, in shards (one job per shard), and
gathered into ``results/augment/{dataset}/{augmenter}.parquet`` (text,label,source_id). A method's ``augment``
part names the augmenters whose rows are added to its training set and the fraction of them to add.

Config: ``augmentation.shards`` and ``augmentation.augmenters.<name>`` with a ``kind`` (``ssmba`` |
``backtranslation``), its models (``model``; ``forward`` and ``backward``) as a hub ``name`` or a local ``path``,
and the kind's settings (``ssmba.DEFAULTS``, ``backtranslation.DEFAULTS``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advtrain.augment.defaults import BACKTRANSLATION_DEFAULTS
from advtrain.augment.shards import (
    COLUMNS,
    Timer,
    gather,
    gather_summaries,
    parse_scatteritem,
    shard_rows,
    summarise,
)
from advtrain.config import schema_defaults

__all__ = ["BACKTRANSLATION_DEFAULTS", "COLUMNS", "KINDS", "MODEL_ROLES", "PART_DEFAULTS", "augment_shard", "check_config", "fetch_model", "fetch_targets", "gather", "gather_summaries", "model_location",
           "model_locations", "used_augmenters",
           "parse_scatteritem", "sample_augmented", "shard_rows", "summarise", "training_frame"]



@dataclass(frozen=True)
class AugmenterKind:
    """One augmenter kind (``augmentation.augmenters.<name>.kind``). Adding a kind is one record in :data:`KINDS`,
    its implementation (a class with ``augment(rows)``, ``settings`` and ``stats``) and its schema entry."""

    roles: tuple[str, ...]  # the config keys of the models it reads, each a hub `name` or a local `path`
    build: Callable  # (models {role: folder}, settings, key) -> the augmenter


def _ssmba(models: dict, settings: dict, key: str):
    from advtrain.augment.ssmba import SSMBA

    return SSMBA(models["model"], settings, key=key)


def _backtranslation(models: dict, settings: dict, key: str):
    from advtrain.augment.backtranslation import BackTranslation

    return BackTranslation(models["forward"], models["backward"], settings, key=key)


#: Every augmenter kind.
KINDS: dict[str, AugmenterKind] = {
    "ssmba": AugmenterKind(("model",), _ssmba),
    "backtranslation": AugmenterKind(("forward", "backward"), _backtranslation),
}
# The models each kind reads, by config key.
MODEL_ROLES = {kind: record.roles for kind, record in KINDS.items()}


def augmenters(config: dict) -> dict[str, dict]:
    return dict((config.get("augmentation") or {}).get("augmenters") or {})


def check_config(config: dict) -> None:
    """Cross-references the schema cannot express: a method's augmenters must be defined (every unknown one is a
    line of the error)."""
    from advtrain.config import ConfigError

    defined = augmenters(config)
    problems = [f"methods.{method}.augment.augmenters[{i}]: unknown augmenter {name!r} "
                f"(defined under `augmentation.augmenters`: {', '.join(defined) or 'none'})"
                for method, parts in config["methods"].items()
                for i, name in enumerate(((parts or {}).get("augment") or {}).get("augmenters", []))
                if name not in defined]
    if problems:
        raise ConfigError("\n".join(problems))


def used_augmenters(config: dict, methods: list[str]) -> list[str]:
    """The augmenters ``methods`` name (in `augmentation.augmenters`' order): only their local models must exist,
    only theirs are fetched."""
    named = {name for m in methods for name in
             (((config["methods"].get(m) or {}).get("augment") or {}).get("augmenters") or [])}
    return [name for name in augmenters(config) if name in named]


def model_locations(config: dict) -> dict[str, dict[str, tuple[str, bool]]]:
    """{augmenter: {role: (folder, is_local)}}: a local path, the pretrained model's folder, or a fetch output."""
    return {name: {role: model_location(config, name, role) for role in MODEL_ROLES[spec["kind"]]}
            for name, spec in augmenters(config).items()}


def fetch_targets(config: dict, methods: list[str]) -> dict[str, tuple[str, str]]:
    """{cache folder name: (hub name, config key)} of the models ``fetch_augment_model`` downloads for ``methods``:
    those without a local path, other than the pretrained model's folder."""
    from advtrain import sources as res

    model_dir = res.model_location(config)[0]
    locations = model_locations(config)
    return {Path(path).name: (augmenters(config)[name][role]["name"], model_key(name, role))
            for name in used_augmenters(config, methods)
            for role, (path, local) in locations[name].items()
            if not local and path != model_dir}


def model_location(config: dict, augmenter: str, role: str) -> tuple[str, bool]:
    """(folder of an augmenter's model, whether it is a configured local path).

    A local ``path`` wins. A hub ``name`` equal to the pretrained model's (as namespaced hub ids) is that model's
    folder (one copy); any other is fetched into ``{cache_dir}/augment/``.
    """
    from advtrain import sources as res

    spec = augmenters(config)[augmenter][role]
    if spec.get("path"):
        return str(spec["path"]), True
    if res.hub_id(spec["name"]) == res.hub_id(config["model"]["name"]):
        return res.model_location(config)
    return f"{config['cache_dir']}/augment/{res.slug(res.hub_id(spec['name']))}", False


def model_key(augmenter: str, role: str) -> str:
    return f"augmentation.augmenters.{augmenter}.{role}"


def fetch_model(name: str, dest: str | Path, key: str, retries: int = 3) -> Path:
    """Download an augmenter's hub model; the error names the config key (``key``.name / ``key``.path)."""
    from advtrain import sources as res

    return res.fetch_model(name, dest, key=key, retries=retries)


def augment_shard(kind: str, settings: dict, models: dict[str, str], rows: pd.DataFrame,
                  augmenter: str = "") -> tuple[pd.DataFrame, dict]:
    """Augment one shard's rows; returns (text,label,source_id rows, summary)."""
    from advtrain import device as dev
    from advtrain.sources import require_local

    key = f"augmentation.augmenters.{augmenter or kind}"
    if kind not in KINDS:
        raise ValueError(f"{key}.kind: unknown augmenter kind {kind!r} (known: {', '.join(KINDS)})")
    for role in KINDS[kind].roles:
        require_local(models[role], f"{key}.{role}.path")
    settings = {k: v for k, v in settings.items() if k not in ("kind", *KINDS[kind].roles)}
    augmenter_ = KINDS[kind].build(models, settings, key)
    with Timer() as timer:
        out = augmenter_.augment(rows)
    summary = summarise(out, rows, timer.seconds, augmenter=augmenter, kind=kind,
                        settings=augmenter_.settings, models=models, device=str(dev.device()),
                        stats=augmenter_.stats)
    return out, summary


#: Unset keys of a method's ``augment`` part, the schema's defaults (validation fills them in the workflow; here for
#: callers without it): TextAttack-A2T's train.py adds 20% of the augmented rows (``--pct-of-augmented 0.2``).
PART_DEFAULTS = schema_defaults("augment")


def sample_augmented(n: int, fraction: float, seed: int) -> list[int]:
    """Which of ``n`` augmented rows join the training set, in the order they join: TextAttack-A2T's train.py
    shuffles the row indices with Python's ``random.shuffle`` and keeps the first ``ceil(n * fraction)``.

    A2T shuffles with the unseeded module generator (a new subset every run); here a ``random.Random(seed)`` does
    the same shuffle, so a given seed reproduces ``random.seed(seed)`` followed by A2T's code.
    """
    indices = list(range(n))
    random.Random(seed).shuffle(indices)
    return indices[: math.ceil(n * fraction)]


def training_frame(train_path: str | Path, augmented: list[str | Path], part: dict | None) -> pd.DataFrame:
    """The training split followed by the augmented rows a method's ``augment`` part selects.

    ``fraction`` (default 0.2, A2T's) of each augmenter's rows are added, A2T's sample (:func:`sample_augmented`)
    drawn with ``seed`` (default 0), so every training seed of a method sees the same augmented rows.
    """
    from advtrain.data import read_split

    train = read_split(train_path)[["text", "label"]]
    part = part or {}
    if augmented and not part:
        raise ValueError("augmented files given for a method without an `augment` part")
    frames = [train]
    for path in augmented:
        rows = pd.read_parquet(path)
        missing = set(COLUMNS) - set(rows.columns)
        if missing:
            raise ValueError(f"{path}: expected columns {', '.join(COLUMNS)}; missing {', '.join(sorted(missing))}")
        settings = {**PART_DEFAULTS, **part}
        rows = rows.iloc[sample_augmented(len(rows), float(settings["fraction"]), int(settings["seed"]))]
        frames.append(rows[["text", "label"]].astype({"label": train["label"].dtype}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["name"] = " + ".join([Path(train_path).name, *(Path(p).name for p in augmented)])
    return out
