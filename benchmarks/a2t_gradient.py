"""A2T's gradient word ranking at the text's own length against TextAttack's padded gradient (fidelity ledger
``victim-padding``, issue 26).

On the victim of ``attack_broker.py`` (MiniLM fine-tuned on MR, or ``--model``) and held-out MR sentences:

- seconds per ``get_grad`` call, TextAttack's ``HuggingFaceModelWrapper`` (one text padded to ``--max-length``)
  against the project's wrapper (the text's own tokens), with the gradients' largest difference at the text's tokens
  with dropout off (the model in eval mode through the same code path);
- A2T's records, one example at a time: the project's wrapper against TextAttack's with the same seeds, and, as the
  yardstick, TextAttack's against itself with other seeds (TextAttack's ``get_grad`` runs in train mode: its dropout
  masks depend on the seed, and on the number of positions they are drawn over).

    python benchmarks/a2t_gradient.py --examples 100 --max-length 512 --json /tmp/a2t_gradient.json
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from attack_broker import SHARED, _asr, minilm, prepare, stock_wrapper  # noqa: E402

PARITY = ("result_type", "perturbed_text", "num_queries")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a fine-tuned classifier folder (default: build MiniLM-MR)")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--cache", default=str(Path("/tmp") / "advtrain-bench-minilm-mr"))
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--mr", default=str(SHARED / "mr"))
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=512, help="A2T's training max_length (config.yaml)")
    parser.add_argument("--query-budget", type=int, default=500)
    parser.add_argument("--word-neighbours", default=str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"))
    parser.add_argument("--nltk-data", default=str(SHARED / "nltk_data"))
    parser.add_argument("--seed", type=int, default=765)
    parser.add_argument("--other-seed", type=int, default=766)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--gradient-only", action="store_true", help="only the get_grad timing and difference")
    return parser.parse_args()


def gradient_timing(ours, stock, texts) -> dict:
    """Seconds per get_grad (median) for each wrapper, and the largest gradient difference at the text's tokens
    with dropout off."""
    seconds = {"textattack": [], "ours": []}
    for text in texts:
        for name, wrapper in (("textattack", stock), ("ours", ours)):
            start = time.perf_counter()
            wrapper.get_grad(text)
            seconds[name].append(time.perf_counter() - start)
    # Dropout off: both get_grad put the model in train mode, and attention dropout is no module of its own in
    # Hugging Face's SDPA attention, so keep the model in eval mode instead.
    model = ours.model
    assert model is stock.model
    model.train = lambda mode=True: model
    worst = 0.0
    try:
        for text in texts:
            short = ours.get_grad(text)["gradient"]
            padded = stock.get_grad(text)["gradient"][: len(short)]
            worst = max(worst, float(np.abs(short - padded).max() / (np.abs(padded).max() + 1e-12)))
    finally:
        del model.train  # the class's method again
    return {"texts": len(texts), "median_seconds": {k: statistics.median(v) for k, v in seconds.items()},
            "ratio": statistics.median(seconds["textattack"]) / statistics.median(seconds["ours"]),
            "max_relative_difference_without_dropout": worst}


def records(wrapper, resources, examples, seed, query_budget) -> dict:
    from advtrain.attacks import build_attack
    from advtrain.attacks.concurrent import attack_all
    from advtrain.attacks.run import _record, example_seed

    attack = build_attack("a2t", wrapper, resources, query_budget=query_budget or None).attack
    jobs = [(i, text, label) for i, (text, label) in enumerate(examples)]
    start = time.perf_counter()
    results = attack_all(attack, jobs, lambda t, y: example_seed(seed, t, y), concurrency=1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": {i: _record(i, examples[i], r, 0) for i, r in results.items()}}


def identical_pct(a: dict, b: dict) -> float:
    same = sum(all(a[i][k] == b[i][k] for k in PARITY) for i in a)
    return 100.0 * same / len(a)


def main():
    args = parse_args()
    sentences, model_dir, description = prepare(args)
    from advtrain.attacks import load_model_wrapper
    from advtrain.memory import peak_rss_mib

    examples = sentences[args.train_examples + 200:][: args.examples]
    resources = {"sentence_encoder": minilm(), "nltk_data": args.nltk_data, "word_neighbours": args.word_neighbours}
    ours = load_model_wrapper(model_dir, args.max_length, args.nltk_data)
    stock = stock_wrapper(ours)
    figures = {"victim": description, "device": "cuda" if torch.cuda.is_available() else "cpu",
               "threads": torch.get_num_threads(), "load_average_start": os.getloadavg(),
               "max_length": args.max_length, "examples": len(examples)}
    figures["gradient"] = gradient_timing(ours, stock, [t for t, _ in examples[:20]])
    if args.gradient_only:
        print(json.dumps(figures["gradient"], indent=2))
        return
    runs = {"ours": records(ours, resources, examples, args.seed, args.query_budget),
            "textattack": records(stock, resources, examples, args.seed, args.query_budget),
            "textattack_other_seed": records(stock, resources, examples, args.other_seed, args.query_budget)}
    figures["a2t"] = {
        "seconds": {k: r["seconds"] for k, r in runs.items()},
        "asr": {k: _asr(r["records"].values())["asr"] for k, r in runs.items()},
        "identical_pct": {
            "ours_vs_textattack": identical_pct(runs["ours"]["records"], runs["textattack"]["records"]),
            "textattack_vs_textattack_other_seed": identical_pct(runs["textattack"]["records"],
                                                                 runs["textattack_other_seed"]["records"]),
            "ours_vs_textattack_other_seed": identical_pct(runs["ours"]["records"],
                                                           runs["textattack_other_seed"]["records"]),
        },
    }
    figures["load_average_end"] = os.getloadavg()
    figures["peak_rss_mb"] = peak_rss_mib()
    g, a = figures["gradient"], figures["a2t"]
    print(f"victim: {description}; {figures['device']}, {figures['threads']} thread(s), load "
          f"{figures['load_average_start']} -> {figures['load_average_end']}, peak RSS {figures['peak_rss_mb']:.0f} MB")
    print(f"get_grad at max_length {args.max_length}: TextAttack {g['median_seconds']['textattack'] * 1e3:.1f} ms, "
          f"own length {g['median_seconds']['ours'] * 1e3:.1f} ms (median of {g['texts']}; {g['ratio']:.1f}x); largest "
          f"relative difference without dropout {g['max_relative_difference_without_dropout']:.2e}")
    print(f"A2T on {len(examples)} MR sentences, one at a time: seconds {a['seconds']}; ASR {a['asr']}")
    print(f"records identical (result, text, queries): {a['identical_pct']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
