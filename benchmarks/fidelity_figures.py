"""Before/after figures of issue 16's items 4-9 (the fidelity ledger, docs/fidelity.md), computed in one run.

"Before" is the workflow as it was at commit 6bd20c4 (its values, and its neuron ordering restated below); "after" is
the package and ``config.yaml`` now; "reference" is the reference code's value (advtrain.fidelity). CPU, seconds.

4. AT-IP training settings of A2T (learning rate, warm-up, batch, tokens) and A2T's word window (TextAttack 0.3.11:
   min(1024, tokens, positions - 2)), before / after / the A2T command's.
5. AT-DA: augmented rows added to MR's and IMDB's training splits (one augmented row per source row), before (all)
   and after (A2T's ceil(0.2 n)); and whether our sample equals A2T's train.py restated (random.seed + shuffle) on a
   small input.
6. Back-translation sampling settings before / after / A2T's generate() resolved on FSMT's config.
7. Table 7's top-10 neurons: overlap of the previous ordering and of ours with NeuroX's get_neuron_ordering (restated
   from NeuroX 1.0.9) on synthetic probe weights (45 tags x 13 layers x 768 units, sparse), per seed.
8. LCA pooling before / after / NeuroX's extractor default.
9. Both ASR denominators on a record set (synthetic, or the gathered attack JSONs of a run with ``--attacks``).

Issue 22's items 2-7 (PSO, gradient clipping, AdamW's epsilon, IMDB's split, the LCA probe, ALUM's optimiser) come
from one module each, ``benchmarks/fidelity_i22_<topic>.py`` (``figures(parse_args(argv))``, ``ISSUE_22``'s arguments;
run a module alone for its options). ``--issue 16`` or ``--issue 22`` prints one issue's figures. The optimiser's runs
(items 3, 4, 7) read MR from ``--data`` (default ``../shared/data``) when it is there, as the ledger's figures did, else
synthetic reviews; ``--minilm`` adds PSO's MiniLM figures (item 2) to the tiny victim's.

    python benchmarks/fidelity_figures.py --issue 22 --minilm      # issue 22's ledger figures (CPU minutes)

    python benchmarks/fidelity_figures.py
    python benchmarks/fidelity_figures.py --issue 16 --seeds 10 --attacks results/attacks --json /tmp/fidelity.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from advtrain import config as cfg  # noqa: E402
from advtrain import fidelity  # noqa: E402
from advtrain.augment import BACKTRANSLATION_DEFAULTS, sample_augmented  # noqa: E402
from advtrain.lca import probe as probes  # noqa: E402

#: The values at commit 6bd20c4.
BEFORE = {
    "at_ip_train": {"learning_rate": 2e-5, "warmup": "ratio 0.1", "batch_size": 32, "max_length": 256},
    "at_da_fraction": 1.0,
    "backtranslation": {"do_sample": True, "num_beams": 1, "top_k": 0, "temperature": 0.8},
    "lca_pooling": "first",
}
#: Training-split sizes: MR (rotten_tomatoes) and IMDB after carving A2T's 5,000 validation reviews from its 25,000.
TRAIN_ROWS = {"MR": 8530, "IMDB": 20000}


def word_window(max_length: int, positions: int = 512) -> int:
    """TextAttack 0.3.11's A2T recipe: truncate_words_to = min(1024, tokenizer.model_max_length, positions - 2)."""
    return min(1024, max_length, positions - 2)


def item4(study: dict) -> dict:
    a2t = cfg.train_settings(study, "A2T")
    after = {"learning_rate": a2t["learning_rate"],
             "warmup": f"{a2t['warmup_steps']} steps" if a2t.get("warmup_steps") else f"ratio {a2t['warmup_ratio']}",
             "batch_size": a2t["batch_size"], "max_length": a2t["max_length"]}
    reference = {**fidelity.AT_IP_TRAIN}
    reference["warmup"] = f"{reference.pop('warmup_steps')} steps"
    return {"before": {**BEFORE["at_ip_train"], "a2t_word_window": word_window(BEFORE["at_ip_train"]["max_length"])},
            "after": {**after, "a2t_word_window": word_window(after["max_length"])},
            "reference": {**reference, "a2t_word_window": "all words (TextAttack <= 0.3.8)"}}


def a2t_train_py_sample(n: int, pct: float, seed: int) -> list[int]:
    """TextAttack-A2T's train.py, with the module generator seeded (A2T leaves it unseeded)."""
    random.seed(seed)
    sampled_indices = list(range(n))
    random.shuffle(sampled_indices)
    return sampled_indices[: math.ceil(len(sampled_indices) * pct)]


def item5(study: dict) -> dict:
    fraction = study["methods"]["SSMBA"]["augment"]["fraction"]
    rows = {name: {"train": n, "before": n + round(BEFORE["at_da_fraction"] * n),
                   "after": n + len(sample_augmented(n, fraction, 0))} for name, n in TRAIN_ROWS.items()}
    same = all(sample_augmented(n, 0.2, seed) == a2t_train_py_sample(n, 0.2, seed)
               for n in (7, 50, 1000) for seed in (0, 1, 42))
    return {"fraction": {"before": BEFORE["at_da_fraction"], "after": fraction, "reference": 0.2},
            "training_rows": rows, "sample_equals_a2t_train_py": same}


def item6(study: dict) -> dict:
    settings = {**BACKTRANSLATION_DEFAULTS, **study["augmentation"]["augmenters"]["backtranslation"]}
    reference: dict = dict(fidelity.BT_SAMPLING)
    try:  # A2T's call resolved on FSMT's config, as transformers does it
        from transformers import FSMTConfig, GenerationConfig

        resolved = GenerationConfig.from_model_config(FSMTConfig())
        resolved.update(do_sample=True, temperature=0.8)
        reference = {k: getattr(resolved, k) for k in fidelity.BT_SAMPLING}
    except ImportError:
        pass
    return {"before": BEFORE["backtranslation"], "after": {k: settings[k] for k in fidelity.BT_SAMPLING},
            "reference": reference}


def previous_top_neurons(abs_weights: np.ndarray, percentage: float) -> list[np.ndarray]:
    """advtrain.lca.probe.top_neurons_per_class at commit 6bd20c4."""
    out = []
    for row in abs_weights:
        order = np.argsort(-row, kind="stable")
        mass = np.cumsum(row[order])
        count = int(np.searchsorted(mass, percentage * mass[-1], side="left")) + 1
        out.append(order[: min(count, len(order))])
    return out


def previous_neuron_ordering(abs_weights: np.ndarray, search_stride: int = 100) -> np.ndarray:
    """advtrain.lca.probe.neuron_ordering at commit 6bd20c4: from share 1/stride, each step sorted by weight share."""
    ordering: list[int] = []
    seen: set[int] = set()
    strength = (abs_weights / np.maximum(abs_weights.sum(1, keepdims=True), 1e-12)).max(0)
    for step in range(1, search_stride + 1):
        selected = np.unique(np.concatenate(previous_top_neurons(abs_weights, step / search_stride)))
        new = [int(n) for n in selected if int(n) not in seen]
        new.sort(key=lambda n: -strength[n])
        ordering.extend(new)
        seen.update(new)
    ordering.extend(int(n) for n in np.argsort(-strength, kind="stable") if int(n) not in seen)
    return np.asarray(ordering)


def neurox_neuron_ordering(weights: np.ndarray, search_stride: int = 100) -> list[int]:
    """NeuroX 1.0.9's get_top_neurons + get_neuron_ordering (linear_probe.py) on a weight matrix, classes in index
    order (NeuroX's tok2idx order)."""
    def top(percentage):
        union = set()
        for c in range(weights.shape[0]):
            total_mass = np.sum(weights[c, :])
            sort_idx = np.argsort(weights[c, :])[::-1]
            cum_sums = np.cumsum(weights[c, sort_idx])
            unselected = np.where(cum_sums >= total_mass * percentage)[0]
            selected = np.arange(cum_sums.shape[0]) if unselected.shape[0] == 0 else np.arange(unselected[0] + 1)
            for t_n in sort_idx[selected]:
                union.add(t_n)
        return np.array(list(union))

    considered, ordering = set(), []
    for local in [top(p / search_stride) for p in range(search_stride + 1)]:
        new = set(list(local)).difference(considered)
        ordering = ordering + list(new)
        considered = considered.union(new)
    return [int(n) for n in ordering]


def item7(seeds: int, k: int = 10, tags: int = 45, neurons: int = 13 * 768) -> dict:
    per_seed = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        w = (rng.exponential(1.0, size=(tags, neurons)) * (rng.random((tags, neurons)) < 0.05)).astype(np.float32)
        reference = set(neurox_neuron_ordering(w)[:k])
        per_seed.append({"seed": seed, "before": len(reference & {int(n) for n in previous_neuron_ordering(w)[:k]}),
                         "after": len(reference & {int(n) for n in probes.neuron_ordering(w)[:k]})})
    return {"k": k, "tags": tags, "neurons": neurons, "per_seed": per_seed,
            "before_mean": float(np.mean([s["before"] for s in per_seed])),
            "after_mean": float(np.mean([s["after"] for s in per_seed]))}


def item8(study: dict) -> dict:
    return {"before": BEFORE["lca_pooling"], "after": study["lca"]["pooling"],
            "reference": "last (neurox/data/extraction/transformers_extractor.py: aggregation='last')"}


def item9(attacks: Path | None) -> dict:
    if attacks is None:
        # A synthetic run of 1000 examples: 600 broken, 220 resisted, 180 misclassified before any attack.
        summaries = [{"name": "synthetic", "successful": 600, "failed": 220, "skipped": 180, "total": 1000}]
    else:
        summaries = [{"name": str(p.relative_to(attacks)), **json.loads(p.read_text())}
                     for p in sorted(attacks.rglob("*.json")) if p.parent.name.startswith("seed")]
    out = []
    for s in summaries:
        attacked = s["successful"] + s["failed"]
        out.append({"run": s["name"], "successful": s["successful"], "failed": s["failed"], "skipped": s["skipped"],
                    "textattack_asr_pct": 100 * s["successful"] / attacked if attacked else None,
                    "over_total_pct": 100 * s["successful"] / s["total"] if s["total"] else None})
    return {"runs": out}


#: Issue 22's figures: {item(s): (the module of benchmarks/ that computes them, its arguments here)}. The optimiser's
#: runs use MiniLM's first 2 layers at 32 tokens so that all of them take minutes on 2 cores.
ISSUE_22 = {"2_pso_search": ("fidelity_i22_pso", []),
            "3_4_7_clipping_epsilon_alum_optimiser": ("fidelity_i22_optim", ["--layers", "2", "--max-length", "32",
                                                                            "--steps", "40"]),
            "5_imdb_split": ("fidelity_i22_data", []), "6_lca_probe": ("fidelity_i22_lca", [])}


def issue22(data: Path | None = None, minilm: bool = False) -> dict:
    """Each issue-22 module's figures at its default (CI-sized where it has a choice) arguments; the optimiser's runs
    on MR's sentences from ``data`` (the ledger's figures) when it holds them, else on synthetic reviews; PSO also on
    MiniLM with ``minilm`` (the ledger's second figure)."""
    import importlib

    sys.path.insert(0, str(REPO / "benchmarks"))
    figures = {}
    for item, (name, argv) in ISSUE_22.items():
        if name == "fidelity_i22_optim" and data is not None and (data / "mr" / "rt-polarity.pos").is_file():
            argv = [*argv, "--data", str(data)]
        if name == "fidelity_i22_pso" and minilm:
            argv = [*argv, "--minilm"]
        module = importlib.import_module(name)
        print(f"== issue 22, {item}: benchmarks/{name}.py {' '.join(argv)}", flush=True)
        figures[item] = module.figures(module.parse_args(argv))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issue", choices=["16", "22", "all"], default="all", help="whose items' figures")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="synthetic probes for item 7")
    parser.add_argument("--attacks", type=Path, help="results/attacks of a run (gathered <attack>.json files)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="issue 22's optimiser runs on MR from here when it holds mr/ (default ../shared/data)")
    parser.add_argument("--minilm", action="store_true", help="issue 22's PSO figures on MiniLM too (CPU minutes)")
    args = parser.parse_args()
    study = yaml.safe_load(args.config.read_text())
    figures = {}
    if args.issue in ("16", "all"):
        figures["issue 16"] = {
            "4_at_ip_train": item4(study), "5_at_da_rows": item5(study), "6_backtranslation": item6(study),
            "7_lca_top10_overlap_with_neurox": item7(args.seeds), "8_lca_pooling": item8(study),
            "9_asr_denominators": item9(args.attacks)}
    if args.issue in ("22", "all"):
        figures["issue 22"] = issue22(args.data, args.minilm)
    for name, value in figures.items():
        print(f"== {name}")
        print(json.dumps(value, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    old = copy.deepcopy(study)
    for method in ("A2T", "A2T_MLM", "BERT_Attack", "A2T_PGD-AT"):
        old["methods"][method].pop("train", None)
    print(f"== non-reference values of {args.config.name}: {len(fidelity.non_reference(study))} "
          f"(with the AT-IP methods' previous training settings: {len(fidelity.non_reference(old))})")


if __name__ == "__main__":
    main()
