"""Examples attacked per minute with 1 shard and with K shards running side by side, same model and examples.

What the workflow's ``attack_shard`` jobs do, in one run, on the same fixed sample of the test split:

1. one shard: one process with ``attacks.threads`` torch threads (the rule's ``threads:``), as one job;
2. K shards: K processes at the same time, each with ``attacks.threads`` threads, as K Snakemake jobs would run;
3. for reference, one shard given every core as torch threads (intra-op parallelism instead of shards).

Examples per minute = examples / wall seconds * 60, process start (imports, model load) included; the speed-up is
run 2 over run 1 (target >= 1.8 for K = 2 on 2 cores), and run 2 over run 3 is printed too. The sharded records,
gathered, are checked against the single-shard ones.

Settings come from the workflow's config files (``attacks.resources``, ``attacks.query_budget``, ``concurrency``,
``batch_tokens``, ``model_batch_size``, ``seed``, ``model.max_length``) and its outputs (a trained model, the
prepared test split), e.g. after the quick preset:

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
    parser.add_argument("--threads", type=int, default=None, help="torch threads per shard (default attacks.threads)")
    parser.add_argument("--no-reference", action="store_true", help="skip run 3 (one shard on all cores)")
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
    from advtrain.attacks import AttackSettings, Shard, attack_examples

    start = time.perf_counter()
    settings = AttackSettings(max_length=job["max_length"], query_budget=job["query_budget"],
                              model_batch_size=job["model_batch_size"], seed=job["random_seed"],
                              concurrency=job["concurrency"], batch_tokens=job["batch_tokens"])
    summary = attack_examples(job["model"], job["examples"], job["recipe"], job["resources"], settings,
                              out_path=job["out"], shard=Shard(index=job["shard"], count=job["num_shards"]))
    return time.perf_counter() - start, summary


def schema_default(key):
    """The workflow's default for ``attacks.<key>`` (the schema's)."""
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    return schema["properties"]["attacks"]["properties"][key]["default"]


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
                  random_seed=attacks.get("seed", 765), max_length=config["model"]["max_length"],
                  **{key: attacks.get(key, schema_default(key)) for key in ("concurrency", "batch_tokens")})

    with tempfile.TemporaryDirectory() as tmp:
        figures = {}
        records = {}
        threads = args.threads or int(attacks.get("threads", 1))
        plan = {"one_shard": (1, threads), "sharded": (args.shards, threads)}
        if not args.no_reference:
            plan["one_shard_all_cores"] = (1, args.cores)
        for name, (num_shards, per_shard) in plan.items():
            jobs = [dict(common, shard=k, num_shards=num_shards, threads=per_shard,
                         out=f"{tmp}/{name}_{k}.jsonl") for k in range(num_shards)]
            wall, results = run(jobs)
            records[name] = gather([read_records(job["out"]) for job in jobs])
            figures[name] = {"run": name, "shards": num_shards, "torch_threads_per_shard": per_shard,
                             "wall_s": round(wall, 1), "shard_s": [round(s, 1) for s, _ in results],
                             "examples_per_min": round(len(examples) / wall * 60, 2)}
            print(json.dumps(figures[name]), flush=True)
        same = all(comparable(records["one_shard"]) == comparable(records[n]) for n in records)
        summary = summarise(records["one_shard"])
        speedup = figures["sharded"]["examples_per_min"] / figures["one_shard"]["examples_per_min"]
        versus_threads = (figures["sharded"]["examples_per_min"] / figures["one_shard_all_cores"]["examples_per_min"]
                          if "one_shard_all_cores" in figures else float("nan"))
        report = {"recipe": args.recipe, "model": str(model), "examples": len(examples), "cores": args.cores,
                  "query_budget": common["query_budget"], "runs": list(figures.values()),
                  "speedup": round(speedup, 3), "target": TARGET, "pass": speedup >= TARGET,
                  "sharded_over_one_shard_all_cores": round(versus_threads, 3),
                  "sharded_records_equal_single": same, "attack_success_rate": summary.get("attack_success_rate"),
                  "load_average": os.getloadavg()}
        print(json.dumps(report, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"{args.shards} shards / 1 shard ({threads} thread(s) each): {speedup:.2f}x (target >= {TARGET}); "
              f"{args.shards} shards / 1 shard on all {args.cores} cores: {versus_threads:.2f}x; records identical: {same}")


if __name__ == "__main__":
    main()
