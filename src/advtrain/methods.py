"""What a method is made of: one record per method part, and where each part's kinds are registered.

A method (config ``methods.<name>``) is its ``train`` settings (and its claims ``family``) plus parts. Each :class:`Part` record below says which
key of the part tells what it is (its kind), where its kinds are registered, and how the trainer gets it. So:

- a new kind of an existing part is one record in that part's registry, plus its implementation:
  ``adversarial_embedding``: an entry in :data:`advtrain.training.embedding_settings.DEFAULTS` (its settings; a new
  divergence goes in ``advtrain.training.embedding._DIVERGENCES``); ``adversarial_input``: a recipe record with
  ``training=True`` in :data:`advtrain.attacks.recipes.REGISTRY`; augmenters (``augmentation.augmenters.<name>.kind``,
  which an ``augment`` part names): an entry in :data:`advtrain.augment.KINDS`;
- a new part is one :class:`Part` record in :data:`PARTS` plus its implementation;
- ``flooding`` (Flooding-X): how its level is chosen, ``select``, is one of
  :data:`advtrain.training.flooding.SELECTIONS`.

The schema (``workflow/schemas/config.schema.yaml``) restates the names; ``tests/repository/test_registries.py`` checks it
against these registries. Torch-free: the workflow reads this while it builds the DAG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str  # the key under `methods.<name>`
    kind_key: str  # the part's key whose value says what the part is (a changed value is another method)
    kinds: Callable[[], tuple[str, ...]] | None  # the registered kinds; None: names defined in the config
    #: (the part's settings, **run context) -> the value of AdvTrainer's keyword argument ``trainer_arg``; None: the
    #: part acts on the data, not the trainer.
    build: Callable | None = None
    trainer_arg: str | None = None
    tagger: bool = False  # an LCA POS tagger can use it (the others act on sentiment data)


def _embedding_kinds() -> tuple[str, ...]:
    from advtrain.training.embedding_settings import KINDS

    return KINDS


def _embedding_adversary(settings: dict, **context):
    from advtrain.training.embedding import build_embedding_adversary

    return build_embedding_adversary(settings)


def _training_recipes() -> tuple[str, ...]:
    from advtrain.attacks.recipes import TRAINING_RECIPES

    return TRAINING_RECIPES


def _input_adversary(settings: dict, **context):
    from advtrain.training.input_space import build_input_adversary

    return build_input_adversary(settings, **context)


def _smoothing_kinds() -> tuple[str, ...]:
    from advtrain.smoothing import KINDS

    return KINDS


def _smoothing(settings: dict, **context):
    from advtrain.smoothing import build

    return build(settings, tokenizer=context.get("tokenizer"), resources=context.get("resources"),
                 max_length=context.get("max_length"))
def _flooding_selections() -> tuple[str, ...]:
    from advtrain.training.flooding import SELECTIONS

    return SELECTIONS


def _flooding(settings: dict, **context):
    from advtrain.training.flooding import build_flooding

    return build_flooding(settings)


#: A method's keys that are not parts: ``train`` (its fine-tuning settings over ``model``) and ``family`` (the
#: family the claims table counts it in, advtrain.claims; training ignores it).
SETTINGS = ("train", "family")

#: Every method part, in the order the trainer builds them.
PARTS: dict[str, Part] = {p.name: p for p in (
    Part("adversarial_embedding", "kind", _embedding_kinds, _embedding_adversary, "embedding_adversary", tagger=True),
    Part("adversarial_input", "recipe", _training_recipes, _input_adversary, "input_adversary"),
    Part("augment", "augmenters", None),  # augmented rows join the training data (advtrain.augment.training_frame)
    # RanMASK / SAFER: noisy copies in training, an ensemble of them in prediction (advtrain.smoothing)
    Part("smoothing", "kind", _smoothing_kinds, _smoothing, "smoothing"),
    Part("flooding", "select", _flooding_selections, _flooding, "flooding"),  # |J - b| + b on the whole objective
)}
