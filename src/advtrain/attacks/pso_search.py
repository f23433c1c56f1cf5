"""PSO's search as TextAttack 0.3.3-0.3.10 ran it (the paper's authors ran <= 0.3.8), built on 0.3.11's class.

TextAttack 0.3.11 changed two things in ``ParticleSwarmOptimization`` (commits f21163be, e0fa51b7, 14b52f64):

1. The mutation's change ratio. ``AttackedText.words_diff_ratio`` returned ``np.sum(self.words != x.words) / n``:
   ``!=`` between two Python lists is one bool, so the ratio was 1/n when any word differed (0 otherwise) and the
   mutation probability ``1 - 2 * ratio`` stayed near 1. 0.3.11 counts the differing words (TextAttack issue #787).
2. The elites' copies. 0.3.8 took the initial global elite and local elites by reference (``max(population)`` and
   ``copy.copy(population)``, a copy of the list), and ``_turn`` returned its source member itself when no move passed
   the constraints. A particle could then *be* its local elite or the global elite, and ``_perturb`` (in place) changed
   that elite with it. 0.3.11 copies every member.

:class:`ParticleSwarmOptimization038` undoes both through 0.3.11's own code paths, with TextAttack left unpatched:
it overrides the change-ratio hook, returns ``_turn``'s source member when 0.3.11 returns a copy of it, and gives the
initial population members a ``copy.copy`` that returns the member itself until the elites are built
(``_pre_iteration_setup``, which 0.3.11 calls right after). ``tests/unit/test_pso_search.py`` checks the result against
0.3.8's ``perform_search``, ``_turn`` and ``words_diff_ratio`` restated (``tests/references/pso_reference.py``).
"""

from __future__ import annotations

import numpy as np
from textattack.search_methods import ParticleSwarmOptimization, PopulationMember


def list_diff_ratio(original, current) -> float:
    """TextAttack <= 0.3.10's ``AttackedText.words_diff_ratio``: 1/n if any word differs, else 0."""
    assert original.num_words == current.num_words
    return float(np.sum(original.words != current.words)) / original.num_words


class _InitialMember(PopulationMember):
    """A member of the initial population: ``copy.copy`` returns it itself while ``by_reference`` (0.3.8 built the
    initial elites from these very objects), an ordinary shallow copy afterwards."""

    by_reference = True

    def __copy__(self):
        if self.by_reference:
            return self
        twin = _InitialMember.__new__(_InitialMember)
        twin.__dict__.update(self.__dict__)
        return twin


class ParticleSwarmOptimization038(ParticleSwarmOptimization):
    """TextAttack 0.3.11's ``ParticleSwarmOptimization`` with 0.3.8's change ratio and elites taken by reference."""

    def _initialize_population(self, initial_result, pop_size):
        return [_InitialMember(m.attacked_text, m.result) for m in super()._initialize_population(initial_result,
                                                                                                 pop_size)]

    def _pre_iteration_setup(self, population):
        # The elites now hold the initial members themselves; later copies (elite updates) copy, as in 0.3.8.
        for member in population:
            member.by_reference = False
        super()._pre_iteration_setup(population)

    def _turn(self, source_text, target_text, prob, original_text):
        moved = super()._turn(source_text, target_text, prob, original_text)
        # 0.3.11 returns copy.copy(source_text) when no move passes the constraints; 0.3.8 returned source_text.
        return source_text if moved.attacked_text is source_text.attacked_text else moved

    def _compute_change_ratio(self, pop_member, local_elite, initial_result):
        return list_diff_ratio(initial_result.attacked_text, pop_member.attacked_text)


#: The class of each ``attacks.pso_search`` value. The names are :data:`advtrain.attacks.recipes.PSO_SEARCHES`
#: (torch-free there, for the start-up checks; tests/unit/test_pso_search.py checks that both list the same): not imported
#: from there, because the recipes import this module.
SEARCHES = {"textattack-0.3.8": ParticleSwarmOptimization038, "textattack-0.3.11": ParticleSwarmOptimization}


def search_method(search: str, pop_size: int = 60, max_iters: int = 20):
    """PSOZang2020's search (``pop_size`` 60, ``max_iters`` 20) as ``attacks.pso_search`` names it."""
    if search not in SEARCHES:
        raise ValueError(f"attacks.pso_search: {search!r} is not one of {', '.join(SEARCHES)}")
    return SEARCHES[search](pop_size=pop_size, max_iters=max_iters)
