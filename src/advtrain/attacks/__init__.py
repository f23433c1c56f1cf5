"""Word-level adversarial attacks (TextAttack 0.3.11 recipes) on fine-tuned classifiers, with local resources.

- :mod:`~advtrain.attacks.run`: the attack stage: a fixed sample of a test split, one shard of it, checkpointed and
  resumable, one JSON record per example (:func:`attack_examples`, :class:`AttackSettings`, :class:`Shard`).
- :mod:`~advtrain.attacks.recipes`: TextFooler, BAE, A2T (and A2T-MLM), PSO and BERT-Attack, built from TextAttack's
  own components.
- :mod:`~advtrain.attacks.resources`: what each recipe needs (embeddings, encoders, taggers, ...), how a local copy is
  checked and loaded, and how it is fetched when the network is available.
- :mod:`~advtrain.attacks.victim`: the victim's TextAttack wrapper, padding each batch to its longest text.
- :mod:`~advtrain.attacks.concurrent`: many examples at once in one process, each with TextAttack's own
  ``Attack.attack`` on its own copy of the attack, their model queries batched by the query broker.
- :mod:`~advtrain.attacks.broker`: the query broker: one thread that runs the workers' pending queries as a few
  large forwards.
- :mod:`~advtrain.attacks.services`: the models the broker batches for (the victim, a sentence encoder).
- :mod:`~advtrain.attacks.rng`: the global random generators' state, handed over between the workers.
- :mod:`~advtrain.attacks.pso_search`: PSO's search as TextAttack 0.3.8 ran it, on 0.3.11's class.
- :mod:`~advtrain.attacks.word_alignment`: A2T's gradient word ranking, words aligned to tokens by character offsets.
- :mod:`~advtrain.attacks.neighbour_swap`: a word swap over a synonym-neighbour table (the counter-fitted stand-in).
- :mod:`~advtrain.attacks.metrics`: attack success rate and the other TextAttack summary numbers; shards gathered.
- :mod:`~advtrain.attacks.budget`: attack success as a function of the query budget, and the attacks' effort.
- :mod:`~advtrain.attacks.validity`: how much each attack changed its text, and whether the recipe's bounds held.

Nothing here imports TextAttack at module import time: TextAttack reads NLTK's stopwords when it is imported, so the
NLTK data folder has to be registered first (:func:`advtrain.attacks.resources.import_textattack`). The modules that
subclass TextAttack's classes (``pso_search``, ``word_alignment``, ``neighbour_swap``) import it at module level and
are imported only inside the functions that need them.
"""

from advtrain.attacks.metrics import gather, summarise
from advtrain.attacks.recipes import RECIPES, AttackBuild, build_attack, required_resources
from advtrain.attacks.resources import RESOURCE_KEYS, resource_key
from advtrain.attacks.run import (
    AttackSettings,
    Shard,
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
    "AttackSettings",
    "Shard",
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
