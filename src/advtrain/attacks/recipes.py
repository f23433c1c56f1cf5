"""The paper's four attacks as TextAttack 0.3.11 builds them, with every downloaded component made from a local file.

``bert_attack`` (BERT-Attack, Li et al. 2020) is built too, for input-space adversarial training
(:mod:`advtrain.training.input_space`) and the attack stage; it keeps the published 48 candidates where TextAttack
0.3.11 has 8. The attack stage also has the other recipes the literature reports: ``textbugger``
(TextBuggerLi2018), ``pwws`` (PWWSRen2019) and ``deepwordbug`` (DeepWordBugGao2018), each TextAttack's build (the
same in 0.3.8 and 0.3.11), checked against TextAttack's stock build in ``tests/unit/test_recipe_parity.py``.

Each recipe is one :class:`Recipe` record in :data:`REGISTRY` (near the end of this module): its builder, display
name, aliases, the resources it reads, where it may be used (attack stage, AT-IP), its own ``attacks.*`` settings and
the bounds ``attack_validity`` checks. Everything else (the workflow, the tables, the ledger's checks) derives from it.

Each ``_build_*`` below is the body of the recipe's ``build()`` in ``textattack/attack_recipes/`` (same transformation,
constraint classes, thresholds, windows, goal function and search), with three kinds of change, all listed here:

- Components that TextAttack downloads are constructed from ``resources`` ({kind: local path}, see
  :mod:`advtrain.attacks.resources`): the counter-fitted embedding is passed as ``embedding=``; the masked LM as a model
  + tokenizer; A2T's SBERT gets the local folder as ``model_name``; PSO's HowNet bank and flair tagger are read from
  local files by TextAttack's own code (see :func:`_hownet_swap` and ``register_flair_pos``).
- The Universal Sentence Encoder (TextFooler, BAE, BERT-Attack, TextBugger) needs ``tensorflow_hub``. When it is not importable, or no local
  USE is configured, TextAttack's ``SBERT`` constraint over ``resources["sentence_encoder"]`` takes its place with the
  USE constraint's threshold, metric, window and comparison settings, and the substitution is reported in
  :attr:`AttackBuild.substitutions`.
- The counter-fitted embedding (TextFooler, A2T, TextBugger): when ``word_embedding`` is not set but ``word_neighbours`` is, the
  swap draws from that neighbour table (:class:`~advtrain.attacks.neighbour_swap.WordSwapNeighbourList`, same
  ``max_candidates``) and ``WordEmbeddingDistance`` is dropped, because the table's neighbours were chosen within a
  distance that implies the recipe's cosine threshold; reported in :attr:`AttackBuild.substitutions`.
- PWWS's WordNet is NLTK's ``wordnet`` from ``attacks.resources.nltk_data``; ``WordSwapWordNet``'s
  ``nltk.download("omw-1.4")`` (other languages' lemmas) is skipped (:func:`_wordnet_swap`).
- A2T's gradient word ranking (A2T, A2T_MLM) aligns words to the model's tokens by the tokenizer's character offsets
  (:mod:`advtrain.attacks.word_alignment`): TextAttack's alignment strips only ``##``, ``Ġ`` and ``__``, so with
  SentencePiece (``▁``) tokens every word scored 0 and the search ran in word order. WordPiece rankings are unchanged.
- PSO's search (``attacks.pso_search``): by default TextAttack 0.3.3-0.3.10's (the authors ran <= 0.3.8), whose
  mutation ratio compared two lists and whose initial elites aliased population members; 0.3.11 fixed both
  (:mod:`advtrain.attacks.pso_search`). ``textattack-0.3.11`` is 0.3.11's class unchanged.
- The goal function gets ``query_budget`` and ``model_batch_size`` (A2T's recipe fixes 32; these only batch the
  victim's forward passes). ``WordSwapMaskedLM`` keeps ``max_length=512`` unless the masked LM has fewer positions.
"""

from __future__ import annotations

import functools
import unittest.mock
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from advtrain.attacks import resources as res
from advtrain.sources import ResourceError

#: ``attacks.pso_search``: PSO's search as TextAttack 0.3.3-0.3.10 ran it (the reference: the authors ran <= 0.3.8),
#: or as 0.3.11 fixed it (advtrain.attacks.pso_search).
PSO_SEARCHES = ("textattack-0.3.8", "textattack-0.3.11")
PSO_SEARCH_REFERENCE = "textattack-0.3.8"

# fmt: off
#: TextFooler's stopword list, copied from textattack/attack_recipes/textfooler_jin_2019.py (TextAttack 0.3.11).
TEXTFOOLER_STOPWORDS = frozenset(
    ["a", "about", "above", "across", "after", "afterwards", "again", "against", "ain", "all", "almost", "alone", "along", "already", "also", "although", "am", "among", "amongst", "an", "and", "another", "any", "anyhow", "anyone", "anything", "anyway", "anywhere", "are", "aren", "aren't", "around", "as", "at", "back", "been", "before", "beforehand", "behind", "being", "below", "beside", "besides", "between", "beyond", "both", "but", "by", "can", "cannot", "could", "couldn", "couldn't", "d", "didn", "didn't", "doesn", "doesn't", "don", "don't", "down", "due", "during", "either", "else", "elsewhere", "empty", "enough", "even", "ever", "everyone", "everything", "everywhere", "except", "first", "for", "former", "formerly", "from", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "he", "hence", "her", "here", "hereafter", "hereby", "herein", "hereupon", "hers", "herself", "him", "himself", "his", "how", "however", "hundred", "i", "if", "in", "indeed", "into", "is", "isn", "isn't", "it", "it's", "its", "itself", "just", "latter", "latterly", "least", "ll", "may", "me", "meanwhile", "mightn", "mightn't", "mine", "more", "moreover", "most", "mostly", "must", "mustn", "mustn't", "my", "myself", "namely", "needn", "needn't", "neither", "never", "nevertheless", "next", "no", "nobody", "none", "noone", "nor", "not", "nothing", "now", "nowhere", "o", "of", "off", "on", "once", "one", "only", "onto", "or", "other", "others", "otherwise", "our", "ours", "ourselves", "out", "over", "per", "please", "s", "same", "shan", "shan't", "she", "she's", "should've", "shouldn", "shouldn't", "somehow", "something", "sometime", "somewhere", "such", "t", "than", "that", "that'll", "the", "their", "theirs", "them", "themselves", "then", "thence", "there", "thereafter", "thereby", "therefore", "therein", "thereupon", "these", "they", "this", "those", "through", "throughout", "thru", "thus", "to", "too", "toward", "towards", "under", "unless", "until", "up", "upon", "used", "ve", "was", "wasn", "wasn't", "we", "were", "weren", "weren't", "what", "whatever", "when", "whence", "whenever", "where", "whereafter", "whereas", "whereby", "wherein", "whereupon", "wherever", "whether", "which", "while", "whither", "who", "whoever", "whole", "whom", "whose", "why", "with", "within", "without", "won", "won't", "would", "wouldn", "wouldn't", "y", "yet", "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves"]
)
# fmt: on


@dataclass
class AttackBuild:
    """A built attack, what it was built from, and every place it departs from the published recipe."""

    name: str
    attack: Any  # textattack.Attack
    substitutions: list[str] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)  # kind -> local path actually used


def recipe_name(name: str) -> str:
    key = name.strip().lower().replace(" ", "")
    key = ALIASES.get(key, key)
    if key not in RECIPES:
        raise ValueError(f"unknown attack recipe {name!r}; known: {', '.join(RECIPES)}")
    return key


def use_available(resources: dict) -> bool:
    """Whether USE itself is used (set, and tensorflow_hub importable); else the sentence encoder stands in."""
    return bool(resources.get("use")) and res.tensorflow_hub_available()


def neighbours_instead(resources: dict) -> bool:
    """Whether the neighbour table stands in for the word embedding (only the table is set)."""
    return bool(resources.get("word_neighbours")) and not resources.get("word_embedding")


def required_resources(name: str, resources: dict | None = None) -> list[str]:
    """The resource kinds recipe ``name`` reads, given ``resources`` (only which stand-ins are set matters).

    A recipe's record lists ``use`` and ``word_embedding``; the sentence encoder stands in for USE unless USE is set
    (and tensorflow_hub importable), and the neighbour table for the embedding when only the table is set.
    """
    resources = resources or {}
    stand_in = {"use": "use" if use_available(resources) else "sentence_encoder",
                "word_embedding": "word_neighbours" if neighbours_instead(resources) else "word_embedding"}
    return [stand_in.get(kind, kind) for kind in REGISTRY[recipe_name(name)].resources]


class BuildContext:
    """What a recipe build reads: the resources, and a log of what was used and substituted."""

    def __init__(self, resources: dict, recipe: str):
        self.resources = dict(resources)
        self.recipe = recipe  # the registry name being built, for messages (a builder never names itself)
        self.used: dict[str, str] = {}
        self.substitutions: list[str] = []

    def path(self, kind: str):
        path = res.require(self.resources, kind)
        self.used[kind] = str(path)
        return path

    def word_swap(self, max_candidates: int, min_cos_sim: float | None) -> tuple:
        """(transformation, [constraints]): WordSwapEmbedding + WordEmbeddingDistance, or the neighbour-table swap.

        ``min_cos_sim=None``: the recipe has no WordEmbeddingDistance (TextBugger), only the swap."""
        from textattack.constraints.semantics import WordEmbeddingDistance
        from textattack.transformations import WordSwapEmbedding

        if not neighbours_instead(self.resources):
            if not self.resources.get("word_embedding"):
                raise ResourceError(
                    f"{self.recipe}: needs the counter-fitted word embedding: set `{res.resource_key('word_embedding')}` "
                    f"to a local paragramcf folder, or `{res.resource_key('word_neighbours')}` to a neighbour table "
                    "to stand in for it (reported as a substitution).")
            embedding = res.load_word_embedding(self.path("word_embedding"))
            distance = [] if min_cos_sim is None else [WordEmbeddingDistance(embedding=embedding,
                                                                              min_cos_sim=min_cos_sim)]
            return WordSwapEmbedding(max_candidates=max_candidates, embedding=embedding), distance
        from advtrain.attacks.neighbour_swap import WordSwapNeighbourList

        table = res.load_word_neighbours(self.path("word_neighbours"))
        source = self.used["word_neighbours"]
        most = max(len(v) for v in table.values())
        if min_cos_sim is None:  # the recipe's swap alone: the table's first neighbours for the embedding's nearest
            self.substitutions.append(
                f"word_embedding: WordSwapEmbedding(max_candidates={max_candidates}) -> the neighbour table {source} "
                f"(at most {most} neighbours per word, the first {max_candidates} taken; "
                f"`{res.resource_key('word_embedding')}` is not set)")
        else:
            self.substitutions.append(
                f"word_embedding: WordSwapEmbedding(max_candidates={max_candidates}) + WordEmbeddingDistance("
                f"min_cos_sim={min_cos_sim}) -> the neighbour table {source} (at most {most} neighbours per word, "
                f"the first {max_candidates} taken; no cosine check: `{res.resource_key('word_embedding')}` is not set)")
        return WordSwapNeighbourList(table, max_candidates=max_candidates, source=source), []

    def masked_lm(self):
        return res.load_masked_lm(self.path("masked_lm"))

    def sbert(self, **kwargs):
        from textattack.constraints.semantics.sentence_encoders import SBERT

        folder = res.sentence_encoder_path(self.path("sentence_encoder"))
        return SBERT(model_name=str(folder), **kwargs)

    def use_constraint(self, **kwargs):
        """TextAttack's UniversalSentenceEncoder(**kwargs) on the local USE; else SBERT with the same settings."""
        if use_available(self.resources):
            from textattack.constraints.semantics.sentence_encoders import UniversalSentenceEncoder

            constraint = UniversalSentenceEncoder(**kwargs)
            constraint._tfhub_url = str(res.use_path(self.path("use")))  # hub.load() reads a local folder as well
            return constraint
        if not self.resources.get("sentence_encoder"):
            raise ResourceError(
                f"{self.recipe}: needs a sentence encoder: set `{res.resource_key('use')}` to a local Universal Sentence "
                f"Encoder (with tensorflow_hub installed), or `{res.resource_key('sentence_encoder')}` to a "
                "sentence-transformers folder to stand in for it.")
        constraint = self.sbert(**kwargs)
        why = ("tensorflow_hub is not installed" if self.resources.get("use") else
               f"`{res.resource_key('use')}` is not set")
        settings = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        self.substitutions.append(
            f"sentence_encoder: UniversalSentenceEncoder -> sentence-transformers {self.used['sentence_encoder']} "
            f"(same threshold/window: {settings}; {why})")
        return constraint


def _goal_function(model_wrapper, query_budget, model_batch_size):
    from textattack.goal_functions import UntargetedClassification

    return UntargetedClassification(model_wrapper, model_batch_size=model_batch_size,
                                    query_budget=query_budget if query_budget else float("inf"))


def masked_lm_swap(ctx: BuildContext, **kwargs):
    from textattack.transformations import WordSwapMaskedLM

    model, tokenizer = ctx.masked_lm()
    # WordSwapMaskedLM pads to max_length=512 by default: keep it unless the masked LM has fewer positions.
    positions = getattr(model.config, "max_position_embeddings", 512) or 512
    max_length = min(512, positions, tokenizer.model_max_length or 512)
    return WordSwapMaskedLM(masked_language_model=model, tokenizer=tokenizer, max_length=max_length, **kwargs)


def _build_textfooler(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    from textattack import Attack
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.pre_transformation import (
        InputColumnModification,
        RepeatModification,
        StopwordModification,
    )
    from textattack.search_methods import GreedyWordSwapWIR

    transformation, distance = ctx.word_swap(max_candidates=50, min_cos_sim=0.5)
    constraints = [RepeatModification(), StopwordModification(stopwords=set(TEXTFOOLER_STOPWORDS))]
    constraints.append(InputColumnModification(["premise", "hypothesis"], {"premise"}))
    constraints.extend(distance)  # WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.5)
    constraints.append(PartOfSpeech(allow_verb_noun_swap=True))
    constraints.append(ctx.use_constraint(threshold=0.840845057, metric="angular",
                                          compare_against_original=False, window_size=15,
                                          skip_text_shorter_than_window=True))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR(wir_method="delete")
    return Attack(goal_function, constraints, transformation, search_method)


def _build_bae(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    from textattack.attack_recipes import BAEGarg2019
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR

    transformation = masked_lm_swap(ctx, method="bae", max_candidates=50, min_confidence=0.0)
    constraints = [RepeatModification(), StopwordModification()]
    constraints.append(PartOfSpeech(allow_verb_noun_swap=True))
    constraints.append(ctx.use_constraint(threshold=0.936338023, metric="cosine",
                                          compare_against_original=True, window_size=15,
                                          skip_text_shorter_than_window=True))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR(wir_method="delete")
    return BAEGarg2019(goal_function, constraints, transformation, search_method)


def _build_a2t(ctx: BuildContext, model_wrapper, query_budget, model_batch_size, mlm: bool = False):
    from textattack import Attack
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.pre_transformation import (
        InputColumnModification,
        MaxModificationRate,
        RepeatModification,
        StopwordModification,
    )

    from advtrain.attacks.word_alignment import OffsetAlignedWordSwapWIR

    if not getattr(model_wrapper.tokenizer, "is_fast", False):
        raise ValueError(f"{ctx.recipe}: the gradient word ranking aligns words to tokens with a "
                         f"fast tokenizer's offsets; {type(model_wrapper.tokenizer).__name__} is not one")
    constraints = [RepeatModification(), StopwordModification()]
    constraints.append(InputColumnModification(["premise", "hypothesis"], {"premise"}))
    constraints.append(PartOfSpeech(allow_verb_noun_swap=False))
    constraints.append(MaxModificationRate(max_rate=0.1, min_threshold=4))
    constraints.append(ctx.sbert(threshold=0.9, metric="cosine"))  # recipe: model_name="stsb-distilbert-base"
    if mlm:
        transformation = masked_lm_swap(ctx, method="bae", max_candidates=20, min_confidence=0.0, batch_size=16)
    else:
        transformation, distance = ctx.word_swap(max_candidates=20, min_cos_sim=0.8)
        constraints.extend(distance)  # WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.8)
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    max_len = getattr(model_wrapper, "max_length", None) or min(
        1024,
        model_wrapper.tokenizer.model_max_length,
        model_wrapper.model.config.max_position_embeddings - 2,
    )
    # GreedyWordSwapWIR(wir_method="gradient", truncate_words_to=max_len), words aligned to tokens by offsets
    search_method = OffsetAlignedWordSwapWIR(truncate_words_to=max_len)
    return Attack(goal_function, constraints, transformation, search_method)


def _hownet_swap(ctx: BuildContext):
    """TextAttack's own WordSwapHowNet, reading the bank from the local file instead of its S3 cache.

    WordSwapHowNet.__init__ gets the bank's path from ``utils.download_from_s3(...)``; during the construction that
    call returns the local file, so the class's own loading code runs unchanged.
    """
    from textattack.shared import utils
    from textattack.transformations import WordSwapHowNet

    file = res.hownet_file(ctx.path("hownet"))
    with unittest.mock.patch.object(utils, "download_from_s3", lambda *args, **kwargs: str(file)):
        try:
            swap = WordSwapHowNet()
        except Exception as exc:  # pickle raises many types for a file that is not one
            raise res._bad("hownet", file, f"cannot unpickle ({exc})") from exc
    res.check_hownet_bank(swap.candidates_bank, file)
    return swap


def _build_pso(ctx: BuildContext, model_wrapper, query_budget, model_batch_size, pso_search=PSO_SEARCH_REFERENCE):
    from textattack import Attack
    from textattack.constraints.pre_transformation import (
        InputColumnModification,
        RepeatModification,
        StopwordModification,
    )

    from advtrain.attacks.pso_search import search_method

    # WordSwapHowNet asks AttackedText.pos_of_word_index for each word's part of speech: flair's "upos-fast".
    res.register_flair_pos(ctx.path("flair_pos"))
    transformation = _hownet_swap(ctx)
    constraints = [RepeatModification(), StopwordModification()]
    constraints.append(InputColumnModification(["premise", "hypothesis"], {"premise"}))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    # ParticleSwarmOptimization(pop_size=60, max_iters=20), 0.3.8's or 0.3.11's
    return Attack(goal_function, constraints, transformation, search_method(pso_search, pop_size=60, max_iters=20))


def _build_bert_attack(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    """BERTAttackLi2020.build with K = 48 candidates, as in Li et al. (2020) and TextAttack before 0.3.11.

    TextAttack 0.3.11 lowered ``max_candidates`` to 8 because 48 makes the sub-word combinations of multi-piece words
    explode (its issue #586); the paper we reproduce trained with the published attack, so K = 48 is kept here.
    """
    from textattack import Attack
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR

    transformation = masked_lm_swap(ctx, method="bert-attack", max_candidates=48)
    constraints = [RepeatModification(), StopwordModification()]
    constraints.append(MaxWordsPerturbed(max_percent=0.4))
    constraints.append(ctx.use_constraint(threshold=0.2, metric="cosine",
                                          compare_against_original=True, window_size=None))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR(wir_method="unk")
    return Attack(goal_function, constraints, transformation, search_method)


def _homoglyph_swap():
    """TextAttack's own WordSwapHomoglyphSwap, built where its wheel lacks ``shared/intentional_homoglyphs.txt``.

    TextAttack 0.3.11's ``__init__`` reads that file (Unicode's intentional homoglyphs) for the differential-evolution
    search of "Bad Characters" (Boucher et al. 2021), but its setup.py ships no package data, so the installed class
    cannot be built. TextBugger's greedy search calls only ``_get_replacement_words``, which reads the class's own
    ``homos`` table (0.3.8's, unchanged); where the file is missing it is read as empty, and nothing TextBugger does
    changes.
    """
    import builtins
    import io
    import os

    from textattack.transformations.word_swaps import word_swap_homoglyph_swap as module

    def read(path, *args, **kwargs):
        if str(path).endswith("intentional_homoglyphs.txt") and not os.path.exists(path):
            return io.StringIO("")
        return builtins.open(path, *args, **kwargs)

    with unittest.mock.patch.object(module, "open", read, create=True):  # the module's `open`, nobody else's
        return module.WordSwapHomoglyphSwap()


def _build_textbugger(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    """TextBuggerLi2018.build: four character bugs and the 5 nearest counter-fitted words, USE ≥ 0.8 (angular).

    TextAttack's ``WordSwapEmbedding(max_candidates=5)`` reads ``WordEmbedding.counterfitted_GLOVE_embedding()``,
    the ``paragramcf`` folder TextFooler reads (the paper used GloVe); it has no WordEmbeddingDistance.
    """
    from textattack import Attack
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (
        CompositeTransformation,
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
    )

    embedding_swap, _ = ctx.word_swap(max_candidates=5, min_cos_sim=None)
    transformation = CompositeTransformation([
        WordSwapRandomCharacterInsertion(random_one=True, letters_to_insert=" ", skip_first_char=True,
                                         skip_last_char=True),
        WordSwapRandomCharacterDeletion(random_one=True, skip_first_char=True, skip_last_char=True),
        WordSwapNeighboringCharacterSwap(random_one=True, skip_first_char=True, skip_last_char=True),
        _homoglyph_swap(),  # WordSwapHomoglyphSwap()
        embedding_swap,
    ])
    constraints = [RepeatModification(), StopwordModification()]
    # UniversalSentenceEncoder(threshold=0.8): its own defaults are metric="angular", the whole text, the original
    constraints.append(ctx.use_constraint(threshold=0.8, metric="angular"))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR(wir_method="delete")
    return Attack(goal_function, constraints, transformation, search_method)


def _wordnet_swap(ctx: BuildContext):
    """TextAttack's own WordSwapWordNet, its English synonyms read from ``attacks.resources.nltk_data``'s wordnet.

    ``WordSwapWordNet.__init__`` calls ``nltk.download("omw-1.4")`` (the Open Multilingual Wordnet, for other
    languages); English lemma names come from wordnet itself, so that call is skipped instead of reaching the network.
    """
    import nltk
    from textattack.transformations import WordSwapWordNet

    res.require_nltk_package("wordnet", ctx.recipe)
    with unittest.mock.patch.object(nltk, "download", lambda *args, **kwargs: True):
        return WordSwapWordNet()


def _build_pwws(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    """PWWSRen2019.build: WordNet synonyms, words ranked by probability-weighted saliency."""
    from textattack import Attack
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR

    transformation = _wordnet_swap(ctx)
    constraints = [RepeatModification(), StopwordModification()]
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR("weighted-saliency")
    return Attack(goal_function, constraints, transformation, search_method)


def _build_deepwordbug(ctx: BuildContext, model_wrapper, query_budget, model_batch_size):
    """DeepWordBugGao2018.build (``use_all_transformations=True``): four character edits, Levenshtein ≤ 30."""
    from textattack import Attack
    from textattack.constraints.overlap import LevenshteinEditDistance
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (
        CompositeTransformation,
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
        WordSwapRandomCharacterSubstitution,
    )

    transformation = CompositeTransformation([
        WordSwapNeighboringCharacterSwap(),
        WordSwapRandomCharacterSubstitution(),
        WordSwapRandomCharacterDeletion(),
        WordSwapRandomCharacterInsertion(),
    ])
    constraints = [RepeatModification(), StopwordModification()]
    constraints.append(LevenshteinEditDistance(30))
    goal_function = _goal_function(model_wrapper, query_budget, model_batch_size)
    search_method = GreedyWordSwapWIR()
    return Attack(goal_function, constraints, transformation, search_method)


# ---------------------------------------------------------------------------------------------------- the recipes
@dataclass(frozen=True)
class Similarity:
    metric: str  # "cosine" or "angular" (1 - arccos(cos) / pi), as TextAttack's SentenceEncoder
    threshold: float
    window: int | None  # words around each changed word; None = the whole text
    against: str  # what TextAttack compares with: "original" or "previous step"


@dataclass(frozen=True)
class Bounds:
    """The bounds of a recipe that can be read off its final text (:mod:`advtrain.attacks.validity`)."""

    similarity: Similarity | None
    stopwords: str  # "textfooler" (the recipe's own list) or "nltk" (NLTK's English stopwords)
    max_rate: tuple[float, int] | None = None  # MaxModificationRate(max_rate, min_threshold)
    max_percent: float | None = None  # MaxWordsPerturbed(max_percent): ceil(max_percent * the fewer words) words
    max_edit_distance: int | None = None  # LevenshteinEditDistance(max_edit_distance), characters of the whole text


@dataclass(frozen=True)
class Recipe:
    """One attack recipe: everything the package, the workflow and the tables know about it.

    Adding a recipe is a ``_build_*`` function above and one record in :data:`REGISTRY`, plus its name in the
    schema's enums (``attacks.recipes`` and/or ``adversarial_input.recipe``, which ``tests/repository/test_registries.py``
    checks against this table).
    """

    name: str  # the config's name (attacks.recipes, adversarial_input.recipe)
    display: str  # in tables and figures
    build: Callable  # (ctx, model_wrapper, query_budget, model_batch_size, **settings) -> textattack.Attack
    #: Resource kinds it reads; "use" and "word_embedding" give way to their stand-ins (:func:`required_resources`).
    resources: tuple[str, ...]
    aliases: tuple[str, ...] = ()  # other spellings recipe_name accepts (TextAttack's recipe names ...)
    attack_stage: bool = True  # may be listed in `attacks.recipes` (the attack stage, Table 2)
    training: bool = False  # may be a method's `adversarial_input.recipe` (AT-IP)
    #: Keys under `attacks` that only this recipe reads, with their defaults: passed to ``build`` and set as params
    #: of its attack shards only (changing one reruns this recipe's attacks).
    settings: dict[str, Any] = field(default_factory=dict)
    bounds: Bounds | None = None  # what attack_validity checks on its adversarial examples (attack stage)


_A2T_BOUNDS = Bounds(Similarity("cosine", 0.9, None, "original"), "nltk", (0.1, 4))

#: Every recipe, by name, in the order error messages list them.
REGISTRY: dict[str, Recipe] = {r.name: r for r in (
    Recipe("textfooler", "TextFooler", _build_textfooler, ("nltk_data", "word_embedding", "use"),
           aliases=("textfoolerjin2019",),
           bounds=Bounds(Similarity("angular", 0.840845057, 15, "previous step"), "textfooler")),
    Recipe("bae", "BAE", _build_bae, ("nltk_data", "masked_lm", "use"), aliases=("baegarg2019",),
           bounds=Bounds(Similarity("cosine", 0.936338023, 15, "original"), "nltk")),
    Recipe("a2t", "A2T", _build_a2t, ("nltk_data", "word_embedding", "sentence_encoder"), aliases=("a2tyoo2021",),
           training=True, bounds=_A2T_BOUNDS),
    Recipe("a2t_mlm", "A2T_MLM", functools.partial(_build_a2t, mlm=True), ("nltk_data", "masked_lm", "sentence_encoder"),
           aliases=("a2t-mlm", "a2tmlm"), training=True, bounds=_A2T_BOUNDS),  # A2T's mlm=True variant
    Recipe("pso", "PSO", _build_pso, ("nltk_data", "hownet", "flair_pos"), aliases=("psozang2020",),
           settings={"pso_search": PSO_SEARCH_REFERENCE}, bounds=Bounds(None, "nltk")),
    Recipe("bert_attack", "BERT-Attack", _build_bert_attack, ("nltk_data", "masked_lm", "use"),
           aliases=("bertattackli2020", "bert-attack", "bertattack"), training=True,
           bounds=Bounds(Similarity("cosine", 0.2, None, "original"), "nltk", max_percent=0.4)),
    # The literature's other recipes (issue 28): TextAttack's builds, attack stage only.
    Recipe("textbugger", "TextBugger", _build_textbugger, ("nltk_data", "word_embedding", "use"),
           aliases=("textbuggerli2018",), bounds=Bounds(Similarity("angular", 0.8, None, "original"), "nltk")),
    Recipe("pwws", "PWWS", _build_pwws, ("nltk_data",), aliases=("pwwsren2019",), bounds=Bounds(None, "nltk")),
    Recipe("deepwordbug", "DeepWordBug", _build_deepwordbug, ("nltk_data",), aliases=("deepwordbuggao2018",),
           bounds=Bounds(None, "nltk", max_edit_distance=30)),
)}

#: Views of :data:`REGISTRY`.
RECIPES = tuple(REGISTRY)
ALIASES = {alias: r.name for r in REGISTRY.values() for alias in r.aliases}
ATTACK_STAGE_RECIPES = tuple(r.name for r in REGISTRY.values() if r.attack_stage)
TRAINING_RECIPES = tuple(r.name for r in REGISTRY.values() if r.training)
#: Display names of the attack stage's recipes (tables, figures; the workflow passes them to its report scripts).
ATTACK_NAMES = {r.name: r.display for r in REGISTRY.values() if r.attack_stage}
#: Every recipe-specific key under `attacks` (recorded in a run's summary).
SETTING_KEYS = tuple(dict.fromkeys(key for r in REGISTRY.values() for key in r.settings))


def recipe_settings(name: str, attacks: dict) -> dict:
    """The recipe-specific settings of recipe ``name`` in the config's ``attacks`` block (defaults for unset keys)."""
    return {key: attacks.get(key, default) for key, default in REGISTRY[recipe_name(name)].settings.items()}


def build_attack(name: str, model_wrapper, resources: dict, query_budget: int | None = None,
                 model_batch_size: int = 32, **settings) -> AttackBuild:
    """Build recipe ``name`` (one of :data:`RECIPES`) against ``model_wrapper``.

    ``resources`` maps resource kinds to local paths (config ``attacks.resources``); a missing one raises
    :class:`~advtrain.sources.ResourceError` naming its config key. ``query_budget`` (None: unlimited) caps the
    model queries per example; ``model_batch_size`` is how many texts go through the victim at once. ``settings``:
    the recipe's own keys under ``attacks`` (:attr:`Recipe.settings`, e.g. PSO's ``pso_search``: TextAttack
    ``textattack-0.3.8``'s search or ``textattack-0.3.11``'s); another recipe's keys are ignored, unset ones default.
    """
    name = recipe_name(name)
    resources = {k: v for k, v in (resources or {}).items() if v}
    unknown = set(resources) - set(res.RESOURCE_KEYS)
    if unknown:
        raise ValueError(f"unknown attack resources: {', '.join(sorted(unknown))}; known: {', '.join(res.RESOURCE_KEYS)}")
    ctx = BuildContext(resources, name)
    folder = res.configure_nltk(resources.get("nltk_data"))  # before TextAttack is imported
    if folder:
        ctx.used["nltk_data"] = str(folder)
    res.import_textattack()
    recipe = REGISTRY[name]
    attack = recipe.build(ctx, model_wrapper, query_budget, model_batch_size, **recipe_settings(name, settings))
    return AttackBuild(name=name, attack=attack, substitutions=ctx.substitutions, resources=ctx.used)
