"""A word swap over a precomputed synonym-neighbour table, the stand-in for the counter-fitted embedding.

TextAttack's ``WordSwapEmbedding`` asks the counter-fitted vectors for a word's nearest neighbours and
``WordEmbeddingDistance`` then keeps those with cosine similarity >= a threshold. Where the vectors themselves are
not available, a table word -> neighbours built from the same vectors (e.g. Jia et al. 2019's
``counterfitted_neighbors.json``: up to 8 neighbours within Euclidean distance 0.5 of unit vectors, so cosine
similarity >= 0.875) gives candidates that already meet TextFooler's (0.5) and A2T's (0.8) thresholds, but fewer
of them. The recipe builders report this as a substitution; it is never chosen silently.

Imports TextAttack at module level: import it only after :func:`advtrain.attacks.resources.configure_nltk`.
"""

from __future__ import annotations

from textattack.transformations import WordSwap
from textattack.transformations.word_swaps.word_swap_embedding import recover_word_case


class WordSwapNeighbourList(WordSwap):
    """Replace a word with up to ``max_candidates`` of its listed neighbours, in the table's order, case kept."""

    def __init__(self, neighbours: dict[str, list[str]], max_candidates: int = 15, source: str = "", **kwargs):
        super().__init__(**kwargs)
        self.neighbours = neighbours
        self.max_candidates = max_candidates
        self.source = source

    def _get_replacement_words(self, word):
        candidates = self.neighbours.get(word.lower(), ())
        return [recover_word_case(c, word) for c in candidates[: self.max_candidates] if c != word.lower()]

    def extra_repr_keys(self):
        return ["max_candidates", "source"]
