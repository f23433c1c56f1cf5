"""TextDefender's attack construction, restated from its code (RockyLzy/TextDefender, HEAD 06a5068:
``utils/textattack_utils.py`` ``build_english_attacker``:97-164, ``args.py``:28-36, ``main.py``:253-257 and its
TextAttack copy's ``goal_functions/goal_function.py``:43, 59), not from advtrain's, for tests/unit/test_protocols.py.

Kept as written, on TextAttack 0.3.11's stock recipes (``TextFoolerJin2019.build``, ``PSOZang2020.build``), with these
changes only, each the same stand-in advtrain's builders make for an offline machine:

- the counter-fitted embedding TextAttack downloads (``WordEmbedding.counterfitted_GLOVE_embedding``) and HowNet's
  bank (``download_from_s3``) are read from the local files given;
- ``UniversalSentenceEncoder(**kwargs)`` (needs tensorflow_hub) is ``SBERT(model_name=<local folder>, **kwargs)``,
  the recipe's and TextDefender's alike;
- TextDefender's goal function is 0.3.11's ``UntargetedClassification`` with the copy's two lines
  (:class:`TextDefenderUntargetedClassification`).
"""

from __future__ import annotations

import contextlib
import unittest.mock
from types import SimpleNamespace

import numpy as np

#: ProgramArgs' attack settings (args.py:28-36).
ARGS = SimpleNamespace(attack_method="textfooler", attack_numbers=1000, modify_ratio=0.3, neighbour_vocab_size=50,
                       sentence_similarity=0.840845057, query_budget_size=50, seed=42)


def goal_function_class():
    from textattack.goal_functions import UntargetedClassification

    class TextDefenderUntargetedClassification(UntargetedClassification):
        """goal_function.py:43 (``self.query_budget_size = query_budget``) and :59 (per example, before the first
        query: ``self.query_budget = self.query_budget_size * attacked_text.num_words``)."""

        def __init__(self, model_wrapper, query_budget=float("inf"), **kwargs):
            super().__init__(model_wrapper, query_budget=query_budget, **kwargs)
            self.query_budget_size = query_budget

        def init_attack_example(self, attacked_text, ground_truth_output):
            self.query_budget = self.query_budget_size * attacked_text.num_words
            return super().init_attack_example(attacked_text, ground_truth_output)

    return TextDefenderUntargetedClassification


@contextlib.contextmanager
def local_resources(word_embedding: str, sentence_encoder: str, hownet: str | None = None):
    """TextAttack's downloads replaced by local files while the reference builds (see the module docstring)."""
    from textattack.attack_recipes import textfooler_jin_2019
    from textattack.constraints.semantics.sentence_encoders import SBERT
    from textattack.shared import WordEmbedding, utils

    from advtrain.attacks import resources as res

    embedding = res.load_word_embedding(word_embedding)
    folder = str(res.sentence_encoder_path(sentence_encoder))

    def use(**kwargs):
        return SBERT(model_name=folder, **kwargs)

    with contextlib.ExitStack() as stack:
        stack.enter_context(unittest.mock.patch.object(WordEmbedding, "counterfitted_GLOVE_embedding",
                                                       staticmethod(lambda: embedding)))
        stack.enter_context(unittest.mock.patch.object(textfooler_jin_2019, "UniversalSentenceEncoder", use))
        if hownet:
            stack.enter_context(unittest.mock.patch.object(utils, "download_from_s3", lambda *a, **k: str(hownet)))
        yield use


def build_english_attacker(args, model, use):
    """textattack_utils.py:97-164 for the recipes 0.3.11 has stock builds of here (TextFooler, PSO); ``use``: the
    UniversalSentenceEncoder stand-in."""
    from textattack import Attack
    from textattack.attack_recipes import PSOZang2020, TextFoolerJin2019
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import InputColumnModification
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.transformations import WordSwapEmbedding

    UntargetedClassification = goal_function_class()
    UniversalSentenceEncoder = use

    if args.attack_method == 'pso':
        attacker = PSOZang2020.build(model)
    elif args.attack_method == 'textfooler':
        attacker = TextFoolerJin2019.build(model)
    else:
        attacker = TextFoolerJin2019.build(model)

    if args.attack_method in ['textfooler', 'pwws', 'textbugger', 'pso']:
        attacker.transformation = WordSwapEmbedding(max_candidates=args.neighbour_vocab_size)
        for constraint in attacker.constraints:
            if isinstance(constraint, WordEmbeddingDistance):
                attacker.constraints.remove(constraint)
    attacker.constraints.append(MaxWordsPerturbed(max_percent=args.modify_ratio))
    use_constraint = UniversalSentenceEncoder(
        threshold=args.sentence_similarity,
        metric="angular",
        compare_against_original=False,
        window_size=15,
        skip_text_shorter_than_window=True,
    )
    attacker.constraints.append(use_constraint)
    input_column_modification = InputColumnModification(
        ["premise", "hypothesis"], {"premise"}
    )
    attacker.pre_transformation_constraints.append(input_column_modification)

    attacker.goal_function = UntargetedClassification(model, query_budget=args.query_budget_size)
    return Attack(attacker.goal_function, attacker.constraints + attacker.pre_transformation_constraints,
                  attacker.transformation, attacker.search_method)


def choose_instances(instances, args, seed=42):
    """main.py:253-257 after set_seed(seed) (utils/public.py:92-96); ``instances``: (text_a, label) pairs."""
    np.random.seed(seed)
    test_instances = [x for x in instances if len(x[0].split(' ')) > 4]
    # TextDefender's instances are objects: a 1-D object array of them (np.array of tuples would be 2-D).
    population = np.empty(len(test_instances), dtype=object)
    population[:] = test_instances
    choice_instances = np.random.choice(population, size=(args.attack_numbers,), replace=False)
    return list(choice_instances)
