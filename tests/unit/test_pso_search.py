"""PSO's search (``attacks.pso_search``): TextAttack 0.3.8's, restored on 0.3.11's class, against 0.3.8's code
restated (tests/references/pso_reference.py); and the key's way from the config to the recipe.

On the tests' tiny victim and stand-in HowNet bank / flair tagger (tests/support/attack_fixtures.py).
"""

from __future__ import annotations

import hashlib

import pytest
from attack_fixtures import attack_env, build_flair_tagger, build_hownet
from conftest import shared_data, synthetic_reviews

from advtrain.attacks import AttackSettings, attack_examples, build_attack
from advtrain.attacks.recipes import PSO_SEARCH_REFERENCE, PSO_SEARCHES
from advtrain.attacks.run import example_seed, read_records

MAX_LENGTH = 32
BUDGET = 400  # enough for the searches to run iterations, and for some examples to fail


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("pso_env")
    resources = {"hownet": str(build_hownet(root / "hownet" / "word_candidates_sense.pkl")),
                 "flair_pos": str(build_flair_tagger(root / "flair" / "pytorch_model.bin")),
                 "nltk_data": str(shared_data("nltk_data"))}
    return attack_env(root, tiny_model, MAX_LENGTH, resources)


@pytest.fixture(scope="module")
def examples():
    return synthetic_reviews(8, seed=22)


def attack_each(attack, examples) -> list[tuple]:
    """TextAttack's Attack.attack, each example seeded as the attack stage seeds it: each result (kind, text, queries,
    score) and NumPy's generator afterwards (a search that draws differently ends elsewhere in the stream, even where
    the result is the same)."""
    import numpy as np
    from textattack.shared.utils import set_seed

    out = []
    for text, label in examples:
        set_seed(example_seed(765, text, label))
        result = attack.attack(text, label)
        perturbed = result.perturbed_result
        _, keys, position, *_ = np.random.get_state()
        out.append((type(result).__name__, perturbed.attacked_text.text, perturbed.num_queries, perturbed.score,
                    hashlib.sha256(keys.tobytes()).hexdigest(), position))
    return out


def with_search(attack, search_method):
    """The same goal function, constraints and transformation around another search method."""
    from textattack import Attack

    return Attack(attack.goal_function, attack.pre_transformation_constraints + attack.constraints,
                  attack.transformation, search_method)


def test_change_ratio_is_the_list_comparison(env):
    """0.3.8's words_diff_ratio compared two lists: 1/n whatever the number of differing words (0.3.11 counts)."""
    from pso_reference import words_diff_ratio
    from textattack.shared import AttackedText

    from advtrain.attacks.pso_search import list_diff_ratio

    original = AttackedText("the movie was good and the cast was great")
    for changed, fixed in ((original, 0.0), (AttackedText("the film was good and the cast was great"), 1 / 9),
                           (AttackedText("the film was fine and the ensemble was terrific"), 4 / 9)):
        assert list_diff_ratio(original, changed) == words_diff_ratio(original, changed)
        assert words_diff_ratio(original, changed) == (1 / 9 if fixed else 0.0)
        assert original.words_diff_ratio(changed) == pytest.approx(fixed)  # TextAttack 0.3.11


def test_pso_038_equals_textattack_038_restated(env, examples):
    """Ours (0.3.11's class + the 0.3.8 overrides) and 0.3.8's perform_search/_turn/words_diff_ratio restated give
    the same result, adversarial text, query count, score and random draws on every example. On these inputs
    0.3.11's search, and 0.3.11's with 0.3.8's change ratio alone, differ from the reference."""
    from pso_reference import ReferencePSO
    from textattack.search_methods import ParticleSwarmOptimization

    from advtrain.attacks.pso_search import ParticleSwarmOptimization038, list_diff_ratio

    class RatioOnly(ParticleSwarmOptimization):  # 0.3.8's change ratio, 0.3.11's copies
        def _compute_change_ratio(self, pop_member, local_elite, initial_result):
            return list_diff_ratio(initial_result.attacked_text, pop_member.attacked_text)

    class ElitesOnly(ParticleSwarmOptimization038):  # 0.3.8's elites by reference, 0.3.11's change ratio
        _compute_change_ratio = ParticleSwarmOptimization._compute_change_ratio

    ours = build_attack("pso", env["wrapper"], env["resources"], query_budget=BUDGET).attack
    assert type(ours.search_method) is ParticleSwarmOptimization038  # the default: the reference code's
    fixed = build_attack("pso", env["wrapper"], env["resources"], query_budget=BUDGET,
                         pso_search="textattack-0.3.11").attack
    assert type(fixed.search_method) is ParticleSwarmOptimization  # TextAttack 0.3.11's, unchanged

    expected = attack_each(with_search(ours, ReferencePSO(pop_size=60, max_iters=20)), examples)
    assert attack_each(ours, examples) == expected
    assert "FailedAttackResult" in {kind for kind, *_ in expected}, "some example should use the whole budget"
    for partial in (fixed, with_search(ours, RatioOnly())):
        assert attack_each(partial, examples) != expected
    # Whether the elites' aliasing alone changes an outcome on these inputs depends on the process's string-hash
    # order (TextAttack iterates sets of candidate words): with PYTHONHASHSEED 0, 1 and 2 it does, with some random
    # seeds it does not. It runs here so that its search completes; the equality above is what pins it.
    assert len(attack_each(with_search(ours, ElitesOnly()), examples)) == len(examples)


def test_pso_search_reaches_the_recipe(env, examples, tmp_path):
    """attack_examples with AttackSettings(pso_search=...) (the attack stage's entry, fed from attacks.pso_search)
    attacks with that search: its records are build_attack's with the same search (which differ between the two),
    and the run summary names it. Without the setting: the reference code's search."""
    records, searched = {}, {}
    for search in PSO_SEARCHES:
        out = tmp_path / f"{search}.jsonl"
        summary = attack_examples(env["victim"], examples, "pso", env["resources"],
                                  AttackSettings(max_length=MAX_LENGTH, query_budget=BUDGET, concurrency=1,
                                                 pso_search=search), out_path=out)
        assert summary["run"]["pso_search"] == search
        attack = build_attack("pso", env["wrapper"], env["resources"], query_budget=BUDGET, pso_search=search).attack
        searched[search] = attack_each(attack, examples)
        records[search] = [(r["perturbed_text"], r["num_queries"]) for r in read_records(out)]
        assert records[search] == [(text, queries) for _, text, queries, *_ in searched[search]]
    # The two searches differ on these inputs, but whether the difference reaches an adversarial text or a query
    # count depends on the process's string-hash order (TextAttack iterates sets of candidate words; CI's xdist
    # worker once drew a seed where all eight texts agree). The random draws differ under every seed tried
    # (PYTHONHASHSEED 0-7), so the comparison is on the whole search: result, text, queries, score and draws.
    assert searched["textattack-0.3.8"] != searched["textattack-0.3.11"]
    default = tmp_path / "default.jsonl"
    summary = attack_examples(env["victim"], examples, "pso", env["resources"],
                              AttackSettings(max_length=MAX_LENGTH, query_budget=BUDGET, concurrency=1), out_path=default)
    assert summary["run"]["pso_search"] == PSO_SEARCH_REFERENCE
    assert [(r["perturbed_text"], r["num_queries"]) for r in read_records(default)] == records[PSO_SEARCH_REFERENCE]


def test_every_pso_search_name_has_its_class():
    """The search classes (pso_search.SEARCHES) are keyed by the config's names (recipes.PSO_SEARCHES, torch-free
    for the start-up checks), kept apart so that pso_search need not import the recipes that import it."""
    from advtrain.attacks.resources import import_textattack

    import_textattack(shared_data("nltk_data"))
    from textattack.search_methods import ParticleSwarmOptimization

    from advtrain.attacks.pso_search import SEARCHES, ParticleSwarmOptimization038

    assert tuple(SEARCHES) == PSO_SEARCHES
    assert SEARCHES[PSO_SEARCH_REFERENCE] is ParticleSwarmOptimization038
    assert SEARCHES["textattack-0.3.11"] is ParticleSwarmOptimization


def test_unknown_pso_search_names_the_key(env):
    with pytest.raises(ValueError, match=r"attacks\.pso_search"):
        build_attack("pso", env["wrapper"], env["resources"], pso_search="textattack-0.3.9")
