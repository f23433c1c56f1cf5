"""Rows per second of the augmenters (SSMBA, back-translation) and of nlpaug's BackTranslationAug on the same
MarianMT pair, on the tiny test models (built here, offline) or on real ones given by path.

    python benchmarks/augment_speed.py                       # tiny models, MR-like rows and IMDB-like reviews
    python benchmarks/augment_speed.py --mlm PATH --forward PATH --backward PATH --device-note "A100"

Each figure is one run after a warm-up; the machine's load average is printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support"), str(REPO / "tests/references")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def frames(n: int) -> dict[str, pd.DataFrame]:
    from conftest import synthetic_reviews

    from advtrain.augment.shards import shard_rows

    short = pd.DataFrame(synthetic_reviews(n, seed=11), columns=["text", "label"])
    # IMDB-like: a review of ~15 sentences (several chunks / windows each).
    sentences = [t for t, _ in synthetic_reviews(15 * n // 4, seed=12)]
    long = pd.DataFrame({"text": [". ".join(sentences[i:i + 15]) + "." for i in range(0, len(sentences), 15)],
                         "label": [i % 2 for i in range(len(sentences[::15]))]})
    return {"short": shard_rows(short, 0, 1), "long": shard_rows(long, 0, 1)}


def timed(fn, data):
    fn(data.head(4))  # warm-up: first-call allocations, lazy imports
    start = time.perf_counter()
    out = fn(data)
    seconds = time.perf_counter() - start
    return len(out), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlm", help="masked LM folder (default: the tiny test BERT)")
    parser.add_argument("--forward", help="MarianMT source->pivot folder (default: a tiny random Marian)")
    parser.add_argument("--backward", help="MarianMT pivot->source folder (default: a tiny random Marian)")
    parser.add_argument("--rows", type=int, default=64, help="short rows (long reviews: a quarter as many)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-nlpaug", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    import torch

    from advtrain.augment.backtranslation import BackTranslation
    from advtrain.augment.ssmba import SSMBA

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    if not args.mlm:
        from conftest import build_tiny_bert

        args.mlm = str(build_tiny_bert(tmp / "mlm"))
    if not (args.forward and args.backward):
        from conftest import build_tiny_marian

        args.forward = str(build_tiny_marian(tmp / "en-de", seed=1))
        args.backward = str(build_tiny_marian(tmp / "de-en", seed=2))

    results = []
    data = frames(args.rows)
    ssmba = SSMBA(args.mlm, {})
    bt = BackTranslation(args.forward, args.backward, {"max_new_tokens": args.max_new_tokens})
    runs = [("ssmba", ssmba.augment), ("backtranslation", bt.augment)]
    if not args.no_nlpaug:
        import nlpaug.augmenter.word as naw

        nl = naw.BackTranslationAug(from_model_name=args.forward, to_model_name=args.backward, device="cpu",
                                    batch_size=32, max_length=min(args.max_new_tokens, bt.forward.max_new_tokens))
        runs.append(("nlpaug BackTranslationAug", lambda d: nl.augment(list(d["text"]))))
    for name, fn in runs:
        for kind, frame in data.items():
            rows, seconds = timed(fn, frame)
            results.append({"augmenter": name, "inputs": kind, "rows": rows, "seconds": round(seconds, 3),
                            "rows_per_second": round(rows / seconds, 1), "load": os.getloadavg()[0]})
            print(f"{name:28s} {kind:5s} rows {rows:4d}  {seconds:7.2f} s  {rows / seconds:8.1f} rows/s  "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
