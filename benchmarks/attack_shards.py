"""Examples attacked per minute with 1 shard and with K shards running side by side, same model and examples.

What the workflow's ``attack_shard`` jobs do, in one run: the fixed sample of the test split is attacked once by a
single process (all cores to torch), then again by K processes at the same time, each attacking its strided shard
with cores / K torch threads (as K Snakemake jobs on the same machine would). Examples per minute = examples / wall
seconds * 60; the speed-up is their ratio. The K-shard records, gathered, are checked against the single-shard ones.

Settings come from the workflow's config files (``attacks.resources``, ``attacks.query_budget``, ``model_batch_size``,
``seed``, ``model.max_length``) and its outputs (a trained model, the prepared test split), e.g. after the quick
preset:

    python benchmarks/attack_shards.py --configfile config/quick.yaml local.yaml --directory . \\
        --dataset MR --method BERT --recipe textfooler --examples 40 --shards 2
"""

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

TARGET = 1.8  # K=2 shards vs 1 on a 2-core machine


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", nargs="+", required=True, help="config files, later ones override")
    parser.add_argument("--directory", default=".", help="the workflow's working directory (holds results/)")
    parser.add_argument("--dataset", default="MR")
    parser.add_argument("--method", default="BERT")
    parser.add_argument("--seed", type=int, default=1, help="the model's training seed (results/models/.../seedN)")
    parser.add_argument("--recipe", default="textfooler")
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args()


def merged_config(files):
    config = {}

    def merge(into, new):
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    for file in files:
        merge(config, yaml.safe_load(Path(file).read_text()) or {})
    return config


def attack_shard(job):
    """One shard in its own process: torch threads set first, then the same call the workflow's script makes."""
    import torch

    torch.set_num_threads(job["threads"])
    from advtrain.attacks import attack_examples

    start = time.perf_counter()
    summary = attack_examples(job["model"], job["examples"], job["recipe"], job["resources"],
                              query_budget=job["query_budget"], model_batch_size=job["model_batch_size"],
                              shard_index=job["shard"], num_shards=job["num_shards"], out_path=job["out"],
                              random_seed=job["random_seed"], max_length=job["max_length"])
    return time.perf_counter() - start, summary


def comparable(records):
    """Records without the shard number; scores rounded, since a different torch thread count may move the last bits."""
    return [{k: round(v, 4) if k.endswith("_score") else v for k, v in r.items() if k != "shard_index"}
            for r in records]


def run(jobs):
    """Wall seconds for all ``jobs`` running at once (one process each, started together) and their results."""
    ctx = mp.get_context("spawn")  # fresh interpreters, like separate Snakemake jobs
    start = time.perf_counter()
    with ctx.Pool(len(jobs)) as pool:
        results = pool.map(attack_shard, jobs)
    return time.perf_counter() - start, results


def main():
    args = parse_args()
    import pandas as pd

    from advtrain.attacks import select_examples
    from advtrain.attacks.metrics import gather, summarise
    from advtrain.attacks.run import read_records

    config = merged_config(args.configfile)
    attacks = config.get("attacks") or {}
    workdir = Path(args.directory)
    model = workdir / f"results/models/{args.dataset}/{args.method}/seed{args.seed}/model"
    test_file = workdir / f"results/data/{args.dataset}/test.parquet"
    for path in (model, test_file):
        if not path.exists():
            sys.exit(f"{path} not found: run the workflow for {args.dataset}/{args.method} first "
                     f"(snakemake --configfile {' '.join(args.configfile)} {model.parent}/model).")
    test = pd.read_parquet(test_file)
    examples = select_examples(test, args.examples, attacks.get("seed", 765), return_index=True)
    resources = {k: v for k, v in (attacks.get("resources") or {}).items() if v}
    common = dict(model=str(model), examples=examples, recipe=args.recipe, resources=resources,
                  query_budget=attacks.get("query_budget"), model_batch_size=attacks.get("model_batch_size", 32),
                  random_seed=attacks.get("seed", 765), max_length=config["model"]["max_length"])

    with tempfile.TemporaryDirectory() as tmp:
        figures = {}
        records = {}
        for num_shards in (1, args.shards):
            threads = max(1, args.cores // num_shards)
            jobs = [dict(common, shard=k, num_shards=num_shards, threads=threads,
                         out=f"{tmp}/{num_shards}_{k}.jsonl") for k in range(num_shards)]
            wall, results = run(jobs)
            records[num_shards] = gather([read_records(job["out"]) for job in jobs])
            figures[num_shards] = {"shards": num_shards, "torch_threads_per_shard": threads, "wall_s": round(wall, 1),
                                   "shard_s": [round(s, 1) for s, _ in results],
                                   "examples_per_min": round(len(examples) / wall * 60, 2)}
            print(json.dumps(figures[num_shards]), flush=True)
        same = comparable(records[1]) == comparable(records[args.shards])
        summary = summarise(records[1])
        speedup = figures[args.shards]["examples_per_min"] / figures[1]["examples_per_min"]
        report = {"recipe": args.recipe, "model": str(model), "examples": len(examples), "cores": args.cores,
                  "query_budget": common["query_budget"], "runs": list(figures.values()),
                  "speedup": round(speedup, 3), "target": TARGET, "pass": speedup >= TARGET,
                  "sharded_records_equal_single": same, "attack_success_rate": summary.get("attack_success_rate"),
                  "load_average": os.getloadavg()}
        print(json.dumps(report, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"{args.shards} shards / 1 shard: {speedup:.2f}x (target >= {TARGET}); "
              f"records identical: {same}")


if __name__ == "__main__":
    main()
