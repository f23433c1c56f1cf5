"""TextAttack classes of TextDefender's TextAttack copy (RockyLzy/TextDefender 06a5068, ``textattack/``) that
TextAttack 0.3.11 lacks, restated on 0.3.11's classes for :mod:`advtrain.attacks.protocols`.

Imports TextAttack at module level: import it only inside the functions that need it, after
:func:`advtrain.attacks.resources.import_textattack`.
"""

from __future__ import annotations

import numpy as np
from textattack.goal_functions import UntargetedClassification
from textattack.transformations import CompositeTransformation


class PerWordBudgetClassification(UntargetedClassification):
    """``UntargetedClassification`` whose query budget is ``query_budget_per_word`` x the example's words.

    TextDefender's copy keeps the constructor's ``query_budget`` as ``query_budget_size`` and sets
    ``self.query_budget = self.query_budget_size * attacked_text.num_words`` in ``init_attack_example``
    (``textattack/goal_functions/goal_function.py``:43, 59), before the first query, which counts. The rest is
    0.3.11's (its ``get_results`` truncates a call at the budget and ends the search on reaching it, as the copy's).
    """

    def __init__(self, model_wrapper, query_budget_per_word: int, **kwargs):
        super().__init__(model_wrapper, query_budget=float("inf"), **kwargs)
        self.query_budget_per_word = query_budget_per_word

    def init_attack_example(self, attacked_text, ground_truth_output):
        self.query_budget = self.query_budget_per_word * attacked_text.num_words
        return super().init_attack_example(attacked_text, ground_truth_output)

    def extra_repr_keys(self):
        # The per-word rate, not the last example's budget: the printed Attack does not depend on what it attacked.
        return ["query_budget_per_word", *(["maximizable"] if self.maximizable else [])]


class RandomCompositeTransformation(CompositeTransformation):
    """TextDefender's ``RandomCompositeTransformation`` (``textattack/transformations/
    random_composite_transformation.py``:15-36), as written: ``total_count`` draws (with replacement, NumPy's global
    generator) of one of the transformations, the union of their candidates."""

    def __init__(self, transformations, total_count=20):
        super().__init__(transformations)
        self.total_count = total_count

    def __call__(self, *args, **kwargs):
        new_attacked_texts = set()
        transformation_num = len(self.transformations)
        if transformation_num <= 0:
            raise ValueError
        index = np.random.choice(transformation_num, self.total_count, replace=True)
        for i in index:
            new_attacked_texts.update(self.transformations[i](*args, **kwargs))
        return list(new_attacked_texts)
