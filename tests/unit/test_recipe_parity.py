"""The literature's recipes (issue 28) against TextAttack 0.3.11's stock builds: BERT-Attack, TextBugger, PWWS and
DeepWordBug.

Each stock recipe is TextAttack's own ``<Recipe>.build(model_wrapper)``, with only its downloads pointed at the local
stand-ins the attack stage reads (tests/support/attack_fixtures.py): the counter-fitted embedding
(``WordEmbedding.counterfitted_GLOVE_embedding``), the masked LM, and the Universal Sentence Encoder, which becomes
TextAttack's ``SBERT`` over the local sentence encoder with USE's own defaults (the substitution our build reports),
and ``nltk.download`` made a no-op (WordNet is read from the local ``nltk_data``). TextAttack 0.3.11's wheel lacks
the file ``WordSwapHomoglyphSwap`` reads for another search (``shared/intentional_homoglyphs.txt``): it is read as
empty, as our build does, so that the stock TextBugger can be built at all. These recipes are the same in
TextAttack 0.3.8 (the authors' release) and 0.3.11 (``git diff v0.3.8 v0.3.11`` of their files changes docstrings
only).

For each recipe: the printed ``Attack(...)`` is the stock one, and the attack stage's records (``attack_examples``)
are the stock attack's, each example seeded as the attack stage seeds it (that the query broker's records equal
one-at-a-time's is ``tests/unit/test_attacks.py::test_recipe_runs_end_to_end``, for every recipe). BERT-Attack keeps the published 48 candidates where 0.3.11 has 8 (ledger row
``bert-attack-candidates``): its stock build is compared with ``max_candidates`` set to 48, and that is the only
difference in its printout.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import unittest.mock

import pytest
from attack_fixtures import attack_env
from conftest import synthetic_reviews

from advtrain.attacks import AttackSettings, attack_examples, build_attack
from advtrain.attacks import resources as res
from advtrain.attacks.run import example_seed, read_records

MAX_LENGTH = 32
BUDGET = 100  # enough for successes on the tiny victim
SEED = 765  # AttackSettings' default `attacks.seed`


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    return attack_env(tmp_path_factory.mktemp("parity_env"), tiny_model, MAX_LENGTH)


@pytest.fixture(scope="module")
def examples():
    return synthetic_reviews(4, seed=28)


@contextlib.contextmanager
def local_downloads(resources: dict, masked_lm_max_length: int | None = None):
    """TextAttack's downloads, served from the local stand-ins (nothing else of a stock build changes)."""
    import nltk
    import textattack.attack_recipes.bert_attack_li_2020 as bert_attack_module
    import textattack.attack_recipes.textbugger_li_2018 as textbugger_module
    from textattack.constraints.semantics.sentence_encoders import SBERT
    from textattack.shared import WordEmbedding
    from textattack.transformations import WordSwapMaskedLM
    from textattack.transformations.word_swaps import word_swap_homoglyph_swap as homoglyph_module

    encoder = str(res.sentence_encoder_path(resources["sentence_encoder"]))

    def use(threshold=0.8, large=False, metric="angular", **kwargs):  # UniversalSentenceEncoder's signature
        return SBERT(model_name=encoder, threshold=threshold, metric=metric, **kwargs)

    model, tokenizer = res.load_masked_lm(resources["masked_lm"])
    masked_lm = functools.partial(WordSwapMaskedLM, masked_language_model=model, tokenizer=tokenizer,
                                  **({"max_length": masked_lm_max_length} if masked_lm_max_length else {}))
    embedding = res.load_word_embedding(resources["word_embedding"])
    def read(path, *args, **kwargs):  # the wheel's missing homoglyph table (see recipes._homoglyph_swap): empty
        missing = str(path).endswith("intentional_homoglyphs.txt") and not os.path.exists(path)
        return io.StringIO("") if missing else open(path, *args, **kwargs)

    with contextlib.ExitStack() as stack:
        stack.enter_context(unittest.mock.patch.object(homoglyph_module, "open", read, create=True))
        stack.enter_context(unittest.mock.patch.object(WordEmbedding, "counterfitted_GLOVE_embedding",
                                                       staticmethod(lambda: embedding)))
        for module in (bert_attack_module, textbugger_module):
            stack.enter_context(unittest.mock.patch.object(module, "UniversalSentenceEncoder", use))
        stack.enter_context(unittest.mock.patch.object(bert_attack_module, "WordSwapMaskedLM", masked_lm))
        stack.enter_context(unittest.mock.patch.object(nltk, "download", lambda *args, **kwargs: True))
        yield


def stock_attack(recipe: str, env, ours):
    from textattack import attack_recipes

    stock = {"bert_attack": attack_recipes.BERTAttackLi2020, "textbugger": attack_recipes.TextBuggerLi2018,
             "pwws": attack_recipes.PWWSRen2019, "deepwordbug": attack_recipes.DeepWordBugGao2018}[recipe]
    max_length = getattr(ours.transformation, "max_length", None)  # the masked LM's positions (recipes.py)
    with local_downloads(env["resources"], max_length):
        return stock.build(env["wrapper"])


def stock_records(attack, examples) -> list[tuple]:
    """TextAttack's Attack.attack per example, seeded as the attack stage seeds it (with fresh caches)."""
    from textattack.shared.utils import set_seed

    out = []
    for text, label in examples:
        attack.clear_cache()
        set_seed(example_seed(SEED, text, label))
        result = attack.attack(text, label)
        perturbed = result.perturbed_result
        out.append((type(result).__name__.replace("AttackResult", ""), perturbed.attacked_text.text,
                    perturbed.num_queries))
    return out


def stage_records(env, examples, recipe, path) -> list[tuple]:
    attack_examples(env["victim"], examples, recipe, env["resources"],
                    AttackSettings(max_length=MAX_LENGTH, query_budget=BUDGET, concurrency=1, seed=SEED), out_path=path)
    return [(r["result_type"], r["perturbed_text"], r["num_queries"]) for r in read_records(path)]


@pytest.mark.parametrize("recipe", ["bert_attack", "textbugger", "pwws", "deepwordbug"])
def test_recipe_is_textattacks_stock_build(env, examples, tmp_path, recipe):
    ours = build_attack(recipe, env["wrapper"], env["resources"]).attack  # unlimited budget, 32 texts: the stock's
    stock = stock_attack(recipe, env, ours)
    if recipe == "bert_attack":  # the published K (ledger row bert-attack-candidates); TextAttack 0.3.11 has 8
        assert stock.transformation.max_candidates == 8
        stock.transformation.max_candidates = 48
    assert str(ours) == str(stock)

    stock.goal_function.query_budget = BUDGET  # what the attack stage's `attacks.query_budget` sets
    expected = stock_records(stock, examples)
    kinds = {kind for kind, *_ in expected}
    assert "Successful" in kinds, f"{recipe}: no success on the tiny victim, the comparison would be thin"
    assert stage_records(env, examples, recipe, tmp_path / f"{recipe}.jsonl") == expected
