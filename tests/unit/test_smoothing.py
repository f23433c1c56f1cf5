"""RanMASK and SAFER (advtrain.smoothing) against their reference code restated on tiny inputs, and certificates
computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import smoothing_references as ref

from advtrain import smoothing as sm


# ------------------------------------------------------------------------------------------------ noise
@pytest.mark.parametrize("text", ["a b c d e f g h i j", "one two three", "x", "", "it is a fine , fine film ."])
@pytest.mark.parametrize("rate", [0.9, 0.7, 0.3])
def test_masking_is_ranmasks(text, rate):
    np.random.seed(3)
    expected = ref.mask_sentence(text, rate, "[MASK]", nums=5)
    ours = sm.mask_words(text, rate, "[MASK]", 5, np.random.RandomState(3))
    assert ours == expected
    for copy in ours:  # rate of the words masked, at least two kept
        words = copy.split()
        n = len(text.split())
        assert words.count("[MASK]") == (max(n - 2, 0) if n - round(n * rate) < 2 else round(n * rate))


TABLE = {"good": ["good", "fine", "nice"], "fine": ["fine", "good"], "nice": ["nice", "good", "pleasant"],
         "pleasant": ["pleasant", "nice"], "film": ["film", "movie"], "movie": ["movie", "film"]}


@pytest.mark.parametrize("text", ["a good film.", "nice nice movie , fine !", "unknown words only", "good"])
def test_substitution_is_safers(text):
    np.random.seed(11)
    expected = ref.WordSubstitude({w: {"set": s} for w, s in TABLE.items()}).get_perturbed_batch(text, rep=7)
    assert sm.substitute_words(text, TABLE, 7, np.random.RandomState(11)) == expected


def test_overlaps_are_safers_tv_table():
    neighbours = {w: s[1:] for w, s in TABLE.items()}
    expected = ref.calculate_tv_table(neighbours, {w: {"set": s, "isdivide": 1} for w, s in TABLE.items()})
    assert sm.overlaps(TABLE) == pytest.approx(expected)
    # by hand: S_good = {good, fine, nice}; S_fine = {fine, good} shares 2 of 3, S_nice = {nice, good, pleasant} 2
    assert sm.overlaps(TABLE)["good"] == pytest.approx(2 / 3)
    tv = sm.overlaps(TABLE)
    for text in ["a good film.", "nice movie , fine !"]:
        assert sm.text_overlaps(text, tv) == pytest.approx(ref.calculate_tv(tv).get_tv(text).tolist())


def test_perturbation_table_from_vectors():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    words = ["good", "fine", "bad", "awful", "odd"]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    nn = np.argsort(-(unit @ unit.T), axis=1, kind="stable")  # nearest first, the word itself first
    table = sm.perturbation_table(words, vectors, nn, 0.8, 100)
    assert table == {"good": ["good", "fine"], "fine": ["fine", "good"], "bad": ["bad", "awful"],
                     "awful": ["awful", "bad"]}
    assert sm.perturbation_table(words, vectors, nn, 0.8, 1) == {}  # a set of one word changes nothing
    assert sm.neighbour_table({"good": ["fine", "nice"], "odd": []}, 2) == {"good": ["good", "fine"]}


# ------------------------------------------------------------------------------------------------ ensemble
@pytest.mark.parametrize("method", ["logits", "votes"])
def test_aggregate_is_textdefenders(method):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3 * 8, 2))
    assert sm.aggregate(logits, 8, method) == pytest.approx(ref.ensemble_outputs(logits, 3, 8, method))


def test_copies_depend_on_the_text_only():
    s = sm.Smoothing(sm.resolve({"kind": "ranmask", "ensemble_size": 6}), "[MASK]")
    text = "the film is a fine and moving one"
    assert s.copies(text) == s.copies(text)
    assert len(s.copies(text)) == 6
    assert s.expand([text, "another short text here"]) == s.copies(text) + s.copies("another short text here")
    assert s.copies(text) != sm.Smoothing({**s.settings, "seed": 1}, "[MASK]").copies(text)


def test_resolve_names_the_key():
    with pytest.raises(ValueError, match="smoothing.kind"):
        sm.resolve({"kind": "dne"})
    with pytest.raises(ValueError, match="mc_error"):
        sm.resolve({"kind": "ranmask", "mc_error": 0.1})
    assert sm.resolve({"kind": "safer"})["certify_samples"] == 100000


def test_saved_smoothing_loads(tmp_path):
    s = sm.Smoothing(sm.resolve({"kind": "safer", "ensemble_size": 4}), table=TABLE)
    s.save(tmp_path)
    loaded = sm.load(tmp_path)
    assert loaded.settings == s.settings and loaded.table == TABLE
    assert loaded.copies("a good film") == s.copies("a good film")
    assert sm.load(tmp_path / "absent") is None


# ------------------------------------------------------------------------------------------------ certificates
@pytest.mark.parametrize(("k", "n"), [(0, 20), (7, 20), (19, 20), (20, 20), (4800, 5000), (2600, 5000)])
def test_clopper_pearson_is_ranmasks_lc_bound(k, n):
    assert sm.clopper_pearson_lower(k, n, 0.05) == pytest.approx(ref.lc_bound(k, n, 0.05)[0], abs=1e-12)


@pytest.mark.parametrize(("counts", "samples", "length", "rate"),
                         [(4990, 5000, 20, 0.9), (4800, 5000, 20, 0.9), (3000, 5000, 10, 0.7), (2400, 5000, 12, 0.9),
                          (5000, 5000, 40, 0.9), (4999, 5000, 3, 0.3), (100, 100, 8, 0.5)])
def test_ranmask_radius_is_the_references_minus_one(counts, samples, length, rate):
    bound = sm.clopper_pearson_lower(counts, samples, 0.05)
    ours = sm.ranmask_radius(bound, length, sm.kept_words(length, rate), counts / samples)
    assert ours == ref.certify_one(counts, samples, 0.05, length, rate) - 1


def test_ranmask_certificate_by_hand():
    # 10 words, 2 kept (rate 0.8). All 100 of 100 samples vote for the guess: the Clopper-Pearson lower bound at
    # alpha 0.05 solves p^100 = 0.05, p = 0.05 ** (1 / 100) = 0.97049. lambda = 1: certified at r while
    # C(10 - r, 2) / C(10, 2) > 1.5 - p = 0.52951: r = 1: 36/45 = 0.8 yes; r = 2: 28/45 = 0.622 yes;
    # r = 3: 21/45 = 0.467 no. Radius 2.
    p = sm.clopper_pearson_lower(100, 100, 0.05)
    assert p == pytest.approx(0.05 ** (1 / 100))
    assert math.comb(8, 2) / math.comb(10, 2) > 1.5 - p > math.comb(7, 2) / math.comb(10, 2)
    assert sm.ranmask_radius(p, 10, sm.kept_words(10, 0.8), 1.0) == 2
    # p below one half: nothing certified
    assert sm.ranmask_radius(0.49, 10, 2, 0.6) == -1


def test_safer_certificate_by_hand():
    # p = 0.95, mc_error 0.01: certified at R while 0.95 - 1 + prod(R smallest overlaps) >= 0.51, i.e. the product
    # >= 0.56. Overlaps (sorted) 0.8, 0.75, 1, 1: R = 1: 0.8 yes; R = 2: 0.6 yes; R = 3, 4: 0.6 yes. Radius 4 = every
    # word (the reference's certificate, the product of all four, holds).
    tv = [0.8, 0.75, 1.0, 1.0]
    assert sm.safer_radius(0.95, sorted(tv), 0.01) == 4
    assert ref.safer_certified(0.95, np.sort(tv), 0.01)
    # p = 0.9: R = 1: 0.4 + 0.8 = 1.2 - 1 ... 0.9 - 1 + 0.75 = 0.65 >= 0.51 yes; R = 2: -0.1 + 0.6 = 0.5 < 0.51 no.
    assert sm.safer_radius(0.9, sorted(tv), 0.01) == 1
    assert not ref.safer_certified(0.9, np.sort(tv), 0.01)
    assert sm.safer_radius(0.5, sorted(tv), 0.01) == -1


@pytest.mark.parametrize("p", [0.55, 0.7, 0.9, 0.99, 1.0])
def test_safer_radius_at_every_word_is_the_references_certificate(p):
    tv = sm.overlaps(TABLE)
    text = "good nice film , fine movie pleasant"
    sorted_tv = sm.text_overlaps(text, tv)
    radius = sm.safer_radius(p, sorted_tv, 0.01)
    assert (radius == len(sorted_tv)) == bool(ref.safer_certified(p, ref.calculate_tv(tv).get_tv(text), 0.01))


# ------------------------------------------------------------------------------------------------ the victim
class FakeWrapper:
    """Logits from the text (the share of masked words), and the texts of every call."""

    tokenizer = None

    def __init__(self):
        self.calls: list[list[str]] = []
        self.model = object()

    def __call__(self, texts):
        import torch

        self.calls.append(list(texts))
        share = [t.split().count("[MASK]") / max(len(t.split()), 1) for t in texts]
        return torch.tensor([[s, 1 - s + 0.01 * len(t)] for s, t in zip(share, texts, strict=True)])


TEXTS = ["a fine and moving film about two friends", "dull", "the plot goes nowhere at all , sadly"]


@pytest.mark.parametrize("aggregate", ["logits", "votes"])
def test_the_ensemble_victim_predicts_with_the_copies(aggregate):
    from advtrain.attacks.victim import EnsembleVictim

    s = sm.Smoothing(sm.resolve({"kind": "ranmask", "ensemble_size": 5, "aggregate": aggregate}), "[MASK]")
    inner = FakeWrapper()
    out = EnsembleVictim(inner, s, batch_size=4)(TEXTS)
    copies = s.expand(TEXTS)
    assert [t for call in inner.calls for t in call] == copies and max(map(len, inner.calls)) == 4
    assert out.numpy() == pytest.approx(s.combine(FakeWrapper()(copies).numpy()), abs=1e-6)
    assert out.shape == (3, 2)


def test_the_ensemble_victim_sends_its_copies_through_the_broker():
    """Each worker's texts become their copies before the broker; the broker's forwards hold every worker's copies
    and each worker gets its texts' ensemble, as without the broker."""
    import threading

    from advtrain.attacks.broker import QueryBroker
    from advtrain.attacks.concurrent import _BrokeredVictim
    from advtrain.attacks.services import victim_service
    from advtrain.attacks.victim import EnsembleVictim

    s = sm.Smoothing(sm.resolve({"kind": "ranmask", "ensemble_size": 6}), "[MASK]")
    inner = FakeWrapper()
    victim = EnsembleVictim(inner, s, batch_size=2)
    service = victim_service(inner)
    results = {}
    with QueryBroker(10_000) as broker:
        broker.expect(len(TEXTS))

        def work(i):
            broker.acquire()
            try:
                results[i] = victim.over(_BrokeredVictim(inner, broker, service))([TEXTS[i]])
            finally:
                broker.release()
                broker.worker_done()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(TEXTS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    source = {c: i for i, t in enumerate(TEXTS) for c in s.copies(t)}  # each text's copies are fixed
    assert sorted(c for call in inner.calls for c in call) == sorted(set(source))  # every distinct copy once
    assert any(len({source[c] for c in call}) > 1 for call in inner.calls)  # several workers' copies in a forward
    for i, text in enumerate(TEXTS):
        assert results[i].numpy() == pytest.approx(EnsembleVictim(FakeWrapper(), s)([text]).numpy(), abs=1e-6)


# ------------------------------------------------------------------------------------------------ certification
def test_certify_example_and_certified_accuracy():
    from advtrain.certification import certified_accuracy, certified_table, certify_example

    text = "a b c d e f g h i j"
    s = sm.Smoothing(sm.resolve({"kind": "ranmask", "ensemble_size": 10, "certify_samples": 100, "mask_rate": 0.8}),
                     "[MASK]")

    def always(label):
        return lambda texts: np.full(len(texts), label)

    # Every copy votes 1: the by-hand case of test_ranmask_certificate_by_hand (radius 2).
    assert certify_example(always(1), s, text, 1)["radius"] == 2
    assert certify_example(always(0), s, text, 1)["radius"] is None  # a wrong guess is not certified
    safer = sm.Smoothing(sm.resolve({"kind": "safer", "certify_samples": 50}), table=TABLE)
    record = certify_example(always(1), safer, "a good film", 1, sm.overlaps(TABLE))
    # overlaps: good 2/3 (test_overlaps_are_safers_tv_table), film 1 (S_film = S_movie), a 1 (not in the table);
    # p = 1: 1 - 1 + 2/3 >= 0.51 at every radius: all 3 words
    assert record["p"] == 1.0 and record["radius"] == 3
    records = [{"radius": 2}, {"radius": 0}, {"radius": None}, {"radius": -1}]
    assert certified_accuracy(records) == {0: 0.5, 1: 0.25, 2: 0.25}
    table = certified_table([{"dataset": "MR", "method": "RanMASK", "seed": 1, "kind": "ranmask", "examples": 4,
                              "ensemble_accuracy": 0.75, "certified_accuracy": {"0": 0.5, "1": 0.25, "2": 0.25}}],
                            [{"dataset": "MR", "method": "RanMASK", "seed": 1, "attack": "textfooler",
                              "accuracy_under_attack": 0.5}], max_radius=3)
    assert table.iloc[0][["ensemble_accuracy", "under_textfooler", "r0", "r1", "r2", "r3"]].tolist() == \
        [75.0, 50.0, 50.0, 25.0, 25.0, 0.0]
