"""Attack protocols (``attacks.protocol``): what is attacked and under which common constraints, on top of a recipe.

``paper`` (the default) is the paper's: each recipe as TextAttack builds it (:mod:`advtrain.attacks.recipes`), a
fixed random sample of ``attacks.num_examples`` test examples, ``attacks.query_budget`` queries per example.

``textdefender`` is the protocol of TextDefender (Li et al. 2021, "Searching for an Effective Defender",
RockyLzy/TextDefender at 06a5068), which AdvBench4Text-style tables follow, so that our numbers can be set beside
theirs. Its ``build_english_attacker`` (``utils/textattack_utils.py``:97-164) takes the recipe TextAttack builds and

1. for TextFooler, PWWS, TextBugger and PSO (line 133) replaces the transformation with
   ``WordSwapEmbedding(max_candidates=50)`` (line 134; 50 = ``args.neighbour_vocab_size``, ``args.py``:34) and removes
   every ``WordEmbeddingDistance`` constraint (lines 135-137);
   for BERT-Attack (its ``bae``, lines 110-112) sets ``WordSwapMaskedLM(method="bert-attack", max_candidates=50)``;
   for DeepWordBug (lines 113-127) the four character swaps as ``RandomCompositeTransformation(total_count=50)``;
2. appends ``MaxWordsPerturbed(max_percent=0.3)`` (line 138; ``args.modify_ratio``, ``args.py``:33);
3. appends ``UniversalSentenceEncoder(threshold=0.840845057, metric="angular", compare_against_original=False,
   window_size=15, skip_text_shorter_than_window=True)`` (lines 139-146; ``args.sentence_similarity``, ``args.py``:35),
   to every recipe, so TextFooler has it twice and TextBugger beside its own;
4. appends ``InputColumnModification(["premise", "hypothesis"], {"premise"})`` to the pre-transformation constraints
   (lines 157-160);
5. replaces the goal function by ``UntargetedClassification(model, query_budget=50)`` (line 162;
   ``args.query_budget_size = args.neighbour_vocab_size``, ``args.py``:36), which its TextAttack copy turns into
   50 x the example's words: ``GoalFunction.init_attack_example`` sets ``query_budget = query_budget_size *
   attacked_text.num_words`` (``textattack/goal_functions/goal_function.py``:43, 59);
6. returns ``Attack(goal_function, constraints + pre_transformation_constraints, transformation, search_method)``
   (lines 163-164).

It attacks ``args.attack_numbers`` = 1000 (``args.py``:31) test examples drawn at random without replacement from those
with more than 4 words split on spaces (``main.py``:253, 257: ``len(x.text_a.split(' ')) > 4``,
``np.random.choice(..., replace=False)`` after ``np.random.seed(42)``, ``utils/public.py``:92-96).

Here :func:`apply` does 1-6 on the Attack that :func:`advtrain.attacks.recipes.build_attack` built (our builders are
TextAttack 0.3.11's, from local files), :func:`select_examples` draws the sample and :func:`example_budget` is the
budget. Where this departs from TextDefender: docs/fidelity.md, rows ``textdefender-*``. This module does not import
TextAttack at import time (the workflow reads it to build the DAG).
"""

from __future__ import annotations

from typing import Any

#: ``attacks.protocol``'s values; the first is the default.
PROTOCOLS = ("paper", "textdefender")
DEFAULT = "paper"

#: TextDefender's settings (RockyLzy/TextDefender args.py:31-36).
TEXTDEFENDER = {
    "attack_numbers": 1000,  # args.py:31
    "modify_ratio": 0.3,  # args.py:33
    "neighbour_vocab_size": 50,  # args.py:34
    "sentence_similarity": 0.840845057,  # args.py:35
    "query_budget_size": 50,  # args.py:36: = neighbour_vocab_size, queries per word (goal_function.py:59)
    "min_words": 4,  # main.py:253: more than 4 words
    "seed": 42,  # args.py:106, set_seed (utils/public.py:92)
}
#: The recipes (registry names) whose transformation TextDefender replaces by the counter-fitted embedding swap and
#: whose WordEmbeddingDistance it drops (textattack_utils.py:133).
EMBEDDING_SWAP = ("textfooler", "pwws", "textbugger", "pso")
#: Recipes TextDefender builds (textattack_utils.py:98-131), by our registry names; TextDefender's ``bae`` is
#: BERT-Attack (line 111). Any other recipe gets steps 2-6 only (row textdefender-recipes).
TEXTDEFENDER_RECIPES = (*EMBEDDING_SWAP, "bert_attack", "deepwordbug")


def protocol_name(name: str | None) -> str:
    name = DEFAULT if name is None else str(name)
    if name not in PROTOCOLS:
        raise ValueError(f"attacks.protocol: unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return name


def of(attacks: dict) -> str:
    """The protocol of a config's ``attacks`` block."""
    return protocol_name((attacks or {}).get("protocol"))


# ------------------------------------------------------------------------------------------ budget and sample
def example_budget(num_words: int, protocol: str = "textdefender") -> int | None:
    """The query budget of an example of ``num_words`` words (TextAttack's ``AttackedText.num_words``): TextDefender's
    50 x words (goal_function.py:59); None under ``paper``, whose budget is ``attacks.query_budget`` for every
    example."""
    if protocol_name(protocol) == "paper":
        return None
    return TEXTDEFENDER["query_budget_size"] * int(num_words)


def long_enough(text: str) -> bool:
    """TextDefender's filter (main.py:253): more than 4 words when split on single spaces."""
    return len(str(text).split(" ")) > TEXTDEFENDER["min_words"]


def select_examples(test_df, n: int | None, seed: int, return_index: bool = False) -> list[tuple]:
    """TextDefender's sample: ``n`` rows drawn without replacement, by NumPy's generator seeded with ``seed``, from the
    rows with more than 4 words (main.py:253-257); all of those rows when fewer than ``n`` (TextDefender raises).

    ``np.random.seed(seed); np.random.choice(rows, n, replace=False)`` draws ``permutation(len(rows))[:n]``, which is
    what ``RandomState(seed).choice(len(rows), n, replace=False)`` draws. Tuples as
    :func:`advtrain.attacks.run.select_examples`: ``(text, label)`` or ``(text, label, row index in test_df)``.
    """
    import numpy as np

    kept = test_df[test_df["text"].astype(str).map(long_enough)]
    n = len(kept) if n is None else min(int(n), len(kept))
    positions = np.random.RandomState(seed).choice(len(kept), size=n, replace=False) if n else []
    sample = kept.iloc[list(positions)]
    return _tuples(sample, return_index)


def sample(protocol: str, test_df, n: int | None, seed: int, return_index: bool = False) -> list[tuple]:
    """The examples a protocol attacks: the paper's fixed random sample (:func:`advtrain.attacks.run.select_examples`)
    or TextDefender's (:func:`select_examples`)."""
    if protocol_name(protocol) == "paper":
        return paper_sample(test_df, n, seed, return_index)
    return select_examples(test_df, n, seed, return_index)


def paper_sample(test_df, n: int | None, seed: int, return_index: bool = False) -> list[tuple]:
    """A fixed random sample of ``n`` rows (all rows, shuffled, when ``n`` is None or too large) of a split: the
    paper protocol's (``advtrain.attacks.run.select_examples``).

    Depends only on the split's rows and ``seed``, so every model is attacked on the same examples. Tuples are
    ``(text, label)``, or ``(text, label, row index in test_df)`` with ``return_index``.
    """
    n = len(test_df) if n is None else min(int(n), len(test_df))
    sample = test_df.sample(n=n, random_state=seed) if n else test_df.iloc[:0]
    return _tuples(sample, return_index)


def _tuples(sample, return_index: bool) -> list[tuple]:
    rows = zip(sample["text"].astype(str), sample["label"].astype(int), sample.index, strict=True)
    return [(t, int(y), plain(i)) if return_index else (t, int(y)) for t, y, i in rows]


def plain(value):
    """A NumPy scalar as the Python value (records and indices are written to JSON)."""
    return value.item() if hasattr(value, "item") else value


def describe(attacks: dict) -> dict[str, Any]:
    """What the protocol changes, for the attack shards' params (changing the protocol reruns the attacks) and the
    dry run's log: {} under ``paper``, so the paper's shards keep their params."""
    protocol = of(attacks)
    if protocol == "paper":
        return {}
    td = TEXTDEFENDER
    return {
        "protocol": protocol,
        "sample_rule": (f"{attacks.get('num_examples', td['attack_numbers'])} random test examples with more than "
                        f"{td['min_words']} words (split on spaces), without replacement, NumPy seed "
                        f"{attacks.get('seed')}"),
        "budget_per_example": f"{td['query_budget_size']} x words queries (TextAttack's AttackedText.num_words)",
        "constraints": (f"at most {td['modify_ratio']:.0%} of words changed, {td['neighbour_vocab_size']} candidates "
                        f"per word, USE angular similarity >= {td['sentence_similarity']} over 15-word windows, "
                        f"no word-embedding distance check for {', '.join(EMBEDDING_SWAP)}"),
    }


def check_config(config: dict) -> None:
    """A protocol with its own budget leaves ``attacks.query_budget`` unset (it would be silently ignored)."""
    from advtrain.config import ConfigError

    attacks = config.get("attacks") or {}
    if of(attacks) != "paper" and attacks.get("query_budget") is not None:
        raise ConfigError(
            f"attacks.query_budget: {attacks['query_budget']} is set, but attacks.protocol: {of(attacks)} gives each "
            f"example {TEXTDEFENDER['query_budget_size']} x its words queries; set attacks.query_budget: null")


# ------------------------------------------------------------------------------------------ resources
def required_resources(protocol: str, recipe: str, resources: dict | None = None) -> list[str]:
    """The resource kinds recipe ``recipe`` reads under ``protocol``: its own (:func:`recipes.required_resources`)
    and those the protocol's constraints and transformations add (USE or its stand-in; the counter-fitted embedding
    or its neighbour table; the masked LM)."""
    from advtrain.attacks import recipes

    kinds = recipes.required_resources(recipe, resources)
    if protocol_name(protocol) == "paper":
        return kinds
    resources = resources or {}
    name = recipes.recipe_name(recipe)
    extra = ["use" if recipes.use_available(resources) else "sentence_encoder"]
    if name in EMBEDDING_SWAP:
        extra.append("word_neighbours" if recipes.neighbours_instead(resources) else "word_embedding")
    if name == "bert_attack":
        extra.append("masked_lm")
    return list(dict.fromkeys([*kinds, *extra]))


# ------------------------------------------------------------------------------------------ the attack
def apply(protocol: str, build, model_wrapper, resources: dict, model_batch_size: int = 32):
    """``build`` (an :class:`~advtrain.attacks.recipes.AttackBuild`) under ``protocol``: the same build for
    ``paper``; for ``textdefender`` a new AttackBuild whose attack is ``build_english_attacker``'s steps 1-6 (module
    docstring) applied to ``build.attack``, its substitutions and resources extended with the protocol's.

    ``model_batch_size`` is kept on the new goal function (TextDefender's copy sends all of a call's texts at once;
    this batches the victim's forwards only).
    """
    if protocol_name(protocol) == "paper":
        return build
    from textattack import Attack
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import InputColumnModification
    from textattack.constraints.semantics import WordEmbeddingDistance

    from advtrain.attacks import recipes
    from advtrain.attacks.textdefender_parts import PerWordBudgetClassification

    td = TEXTDEFENDER
    ctx = recipes.BuildContext({k: v for k, v in (resources or {}).items() if v}, build.name)
    attack = build.attack
    transformation = attack.transformation
    constraints = list(attack.constraints)
    if build.name in EMBEDDING_SWAP:  # textattack_utils.py:133-137
        transformation = ctx.word_swap(max_candidates=td["neighbour_vocab_size"], min_cos_sim=0.5)[0]
        # TextDefender removes while iterating, which skips the element after a removed one; no recipe has two
        # WordEmbeddingDistance constraints in a row, so this removes what it removes.
        constraints = [c for c in constraints if not isinstance(c, WordEmbeddingDistance)]
    elif build.name == "bert_attack":  # lines 110-112 (TextDefender's "bae")
        transformation = recipes.masked_lm_swap(ctx, method="bert-attack", max_candidates=td["neighbour_vocab_size"])
    elif build.name == "deepwordbug":  # lines 113-127
        transformation = _character_swaps(td["neighbour_vocab_size"])
    constraints.append(MaxWordsPerturbed(max_percent=td["modify_ratio"]))  # line 138
    constraints.append(ctx.use_constraint(threshold=td["sentence_similarity"], metric="angular",  # lines 139-146
                                          compare_against_original=False, window_size=15,
                                          skip_text_shorter_than_window=True))
    pre = [*attack.pre_transformation_constraints,
           InputColumnModification(["premise", "hypothesis"], {"premise"})]  # lines 157-160
    goal = PerWordBudgetClassification(model_wrapper, td["query_budget_size"],  # line 162
                                       model_batch_size=model_batch_size)
    new = Attack(goal, constraints + pre, transformation, attack.search_method)  # lines 163-164
    used = {**build.resources, **ctx.used}
    return type(build)(name=build.name, attack=new, substitutions=[*build.substitutions, *ctx.substitutions],
                       resources=used)


def _character_swaps(total_count: int):
    """DeepWordBug's four character edits, ``total_count`` draws of them (textattack_utils.py:115-127)."""
    from textattack.transformations import (
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
        WordSwapRandomCharacterSubstitution,
    )

    from advtrain.attacks.textdefender_parts import RandomCompositeTransformation

    return RandomCompositeTransformation(
        [WordSwapNeighboringCharacterSwap(), WordSwapRandomCharacterSubstitution(),
         WordSwapRandomCharacterDeletion(), WordSwapRandomCharacterInsertion()],
        total_count=total_count)
