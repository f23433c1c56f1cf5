"""The settings and epoch schedule of an ``adversarial_input`` part (AT-IP), free of torch and TextAttack.

The workflow checks these before any job starts (``advtrain.config_check``, called by ``workflow/rules/common.smk``),
so this module imports nothing heavy: a dry run must not pay for torch. The training side is :mod:`advtrain.training.input_space`.
"""

from __future__ import annotations

import math

import numpy as np

from advtrain.attacks.recipes import TRAINING_RECIPES
from advtrain.config import ConfigError, schema_defaults

#: Recipes usable for training: those whose record (advtrain.attacks.recipes.REGISTRY) says ``training=True``.
RECIPES = TRAINING_RECIPES
#: Unset keys of a method's ``adversarial_input`` part: the schema's ``x-default`` values (``$defs/adversarial_input``).
#: fraction 0.2 and query budget 200 are the A2T authors' training command; one clean epoch and alpha = 1 are
#: TextAttack's ``TrainingArgs`` defaults.
DEFAULTS = schema_defaults("adversarial_input", keyword="x-default")


def resolve(part: dict) -> dict:
    """The part's settings with :data:`DEFAULTS` for unset keys; a bad value names its key."""
    part = dict(part or {})
    unknown = sorted(set(part) - set(DEFAULTS) - {"recipe"})
    if unknown:
        raise ConfigError(f"adversarial_input: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: recipe, {', '.join(DEFAULTS)})")
    if part.get("recipe") not in RECIPES:
        raise ConfigError(f"adversarial_input.recipe: {part.get('recipe')!r} is not one of {', '.join(RECIPES)}")
    settings = {**DEFAULTS, **part}
    if not 0 < settings["fraction"] <= 1:
        raise ConfigError(f"adversarial_input.fraction: {settings['fraction']} is not in (0, 1]")
    return settings


def check_schedule(part: dict, epochs: float, where: str = "adversarial_input") -> None:
    """Clean epochs must leave at least one adversarial epoch (TextAttack asserts the same)."""
    settings = resolve(part)
    total = math.ceil(epochs)
    if settings["clean_epochs"] >= total:
        raise ConfigError(f"{where}.clean_epochs: {settings['clean_epochs']} clean epoch(s) leave no adversarial "
                          f"epoch in a run of {total} epoch(s) (train.epochs); lower it or train longer")


def attack_epoch(epoch: int, clean_epochs: int, interval: int) -> bool:
    """Whether 1-based ``epoch`` starts by generating adversarial examples (TextAttack's rule)."""
    return epoch > clean_epochs and (epoch - clean_epochs - 1) % interval == 0


def sample_indices(n: int, fraction: float, seed: int, epoch: int) -> list[int]:
    """The training examples attacked in ``epoch``: a seeded sample of ``ceil(fraction * n)``, a new one each epoch."""
    k = min(n, math.ceil(n * fraction))
    rng = np.random.default_rng([seed, epoch])
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))
