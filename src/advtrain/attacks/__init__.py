"""Word-level adversarial attacks (TextAttack 0.3.11 recipes) on fine-tuned classifiers, with local resources.

- :mod:`advtrain.attacks.resources`: what each recipe needs (embeddings, encoders, taggers, ...), how a local copy is
  checked and loaded, and how it is fetched when the network is available.
- :mod:`advtrain.attacks.recipes`: TextFooler, BAE, A2T (and A2T-MLM) and PSO, built from TextAttack's own components.
- :mod:`advtrain.attacks.run`: attack a sample of a test split with ``textattack.Attacker``, sharded and resumable.
- :mod:`advtrain.attacks.metrics`: attack success rate and the other TextAttack summary numbers.

Nothing here imports TextAttack at module import time: TextAttack reads NLTK's stopwords when it is imported, so the
NLTK data folder has to be registered first (:func:`advtrain.attacks.resources.import_textattack`).
"""

from advtrain.attacks.metrics import gather, summarise
from advtrain.attacks.recipes import RECIPES, AttackBuild, build_attack, required_resources
from advtrain.attacks.resources import RESOURCE_KEYS, resource_key
from advtrain.attacks.run import (
    attack_examples,
    load_model_wrapper,
    select_examples,
    shard_count,
    shard_indices,
)

__all__ = [
    "RECIPES",
    "RESOURCE_KEYS",
    "AttackBuild",
    "attack_examples",
    "build_attack",
    "gather",
    "load_model_wrapper",
    "required_resources",
    "resource_key",
    "select_examples",
    "shard_count",
    "shard_indices",
    "summarise",
]
