"""Before/after figures of issue 22's item 5: IMDB's validation split carved as A2T's 5,000 reviews (was 10 %).

"Before" is ``carve: {validation: 0.1}`` (the workflow before issue 22); "after" is ``config.yaml``'s
``datasets.IMDB`` now; "reference" is TextAttack-A2T's README (5,000 reviews sampled at random from the 25,000).
Printed: IMDB's train / validation rows; the rows AT-DA adds per augmenter (A2T's ceil(0.2 n), ledger row
``at-da-fraction``, ``advtrain.augment.sample_augmented``); the examples AT-IP attacks per adversarial epoch and in
all (ceil(0.2 N), ``at-ip-fixed-share``, ``advtrain.training.input_schedule``); and, where the real IMDB is in
``--imdb`` (train.csv.gz, 25,000 reviews, negatives first), the label balance of each carved validation split,
prepared by ``advtrain.data.prepare_dataset`` as the workflow does, next to a slice of the file (what an unshuffled
split would give). CPU, seconds.

    python benchmarks/fidelity_i22_data.py
    python benchmarks/fidelity_i22_data.py --imdb /work/shared/data/imdb --json /tmp/i22_data.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from advtrain import config as cfg  # noqa: E402
from advtrain import fidelity  # noqa: E402
from advtrain.augment import PART_DEFAULTS, sample_augmented  # noqa: E402
from advtrain.data import _take, prepare_dataset  # noqa: E402
from advtrain.training.input_schedule import attack_epoch, resolve, sample_indices  # noqa: E402

#: datasets.IMDB.carve before issue 22.
BEFORE_CARVE = {"validation": 0.1}
SPLITS = ["train", "validation", "test"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--imdb", type=Path, default=REPO.parent / "shared" / "data" / "imdb",
                        help="folder with the real IMDB's train.csv.gz and test.csv.gz (label balance; skipped "
                             "without it)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def split_rows(carve: dict, total: int = fidelity.IMDB_TRAIN_REVIEWS) -> dict:
    """Train / validation rows the carve leaves from ``total`` training reviews (carve_splits' arithmetic)."""
    validation = _take(carve["validation"], total)
    return {"train": total - validation, "validation": validation}


def at_da_rows(study: dict, n: int) -> dict:
    """Rows each AT-DA method adds per augmenter (one augmented row per training row, ceil(fraction n) kept)."""
    out = {}
    for method in [m for m in study["methods"] if cfg.method_parts(study, m).get("augment")]:
        part = {**PART_DEFAULTS, **cfg.method_parts(study, method)["augment"]}
        out[method] = len(sample_augmented(n, part["fraction"], part["seed"]))
    return out


def at_ip_attacked(study: dict, n: int, seed: int = 1) -> dict:
    """Examples each AT-IP method attacks per adversarial epoch (the input_space schedule) and over its run."""
    out = {}
    for method in [m for m in study["methods"] if cfg.method_parts(study, m).get("adversarial_input")]:
        part = resolve(cfg.method_parts(study, method)["adversarial_input"])
        epochs = math.ceil(cfg.train_settings(study, method)["epochs"])
        per_epoch = {e: len(sample_indices(n, part["fraction"], seed, e)) for e in range(1, epochs + 1)
                     if attack_epoch(e, part["clean_epochs"], part["interval"])}
        out[method] = {"per_adversarial_epoch": sorted(set(per_epoch.values())),
                       "adversarial_epochs": len(per_epoch), "total": sum(per_epoch.values())}
    return out


def label_balance(ds_config: dict, imdb: Path) -> dict:
    """The workflow's split of the real IMDB (local copy) for ``ds_config``'s carve: rows and labels per split."""
    local = {"source": {"local": {"format": "csv", "files": {"train": str(imdb / "train.csv.gz"),
                                                            "test": str(imdb / "test.csv.gz")}}}}
    frames = prepare_dataset("IMDB", {**copy.deepcopy(ds_config), **local}, None, SPLITS)
    return {split: {"rows": len(df), "negative": int((df["label"] == 0).sum()),
                    "positive": int((df["label"] == 1).sum()), "positive_fraction": round(float(df["label"].mean()), 4)}
            for split, df in frames.items() if split != "test"}


def slice_balance(imdb: Path, n: int) -> dict:
    """Labels of the first and of the last ``n`` rows of the file: what a slice instead of a sample would hold."""
    import pandas as pd

    labels = pd.read_csv(imdb / "train.csv.gz", usecols=["label"])["label"]
    return {where: {"negative": int((part == 0).sum()), "positive": int((part == 1).sum())}
            for where, part in (("first", labels.iloc[:n]), ("last", labels.iloc[-n:]))}


def figures(args: argparse.Namespace) -> dict:
    study = yaml.safe_load(Path(args.config).read_text())
    after_ds = study["datasets"]["IMDB"]
    before_ds = {**copy.deepcopy(after_ds), "carve": BEFORE_CARVE}
    out: dict = {"carve": {"before": BEFORE_CARVE, "after": after_ds["carve"],
                           "reference": {"validation": fidelity.IMDB_VALIDATION}},
                 "split_seed": after_ds.get("split_seed", 42)}
    for when, ds in (("before", before_ds), ("after", after_ds)):
        rows = split_rows(ds["carve"])
        out[when] = {"rows": rows, "at_da_added": at_da_rows(study, rows["train"]),
                     "at_ip_attacked": at_ip_attacked(study, rows["train"])}
    reference_rows = split_rows({"validation": fidelity.IMDB_VALIDATION})
    out["reference"] = {"rows": reference_rows, "at_da_added": math.ceil(0.2 * reference_rows["train"]),
                        "at_ip_attacked_per_epoch": f"until ceil(0.2 * {reference_rows['train']:,}) = "
                                                    f"{math.ceil(0.2 * reference_rows['train']):,} succeed"}
    imdb = Path(args.imdb) if args.imdb else None
    if imdb is not None and (imdb / "train.csv.gz").exists() and (imdb / "test.csv.gz").exists():
        out["label_balance"] = {"source": str(imdb), "before": label_balance(before_ds, imdb),
                                "after": label_balance(after_ds, imdb),
                                "slice_of_the_file": slice_balance(imdb, out["after"]["rows"]["validation"])}
    else:
        out["label_balance"] = f"skipped: no train.csv.gz / test.csv.gz in {imdb}"
    return out


def report(result: dict) -> list[str]:
    """The figures as lines: before / after / A2T."""
    def rows(when):
        r = result[when]["rows"]
        return f"{r['train']:,} / {r['validation']:,}"

    def one(values: dict) -> str:  # every method has the same count: say it once, with the methods
        counts = sorted({f"{v:,}" if isinstance(v, int) else str(v) for v in values.values()})
        return f"{counts[0]} ({', '.join(values)})" if len(counts) == 1 else str(values)

    lines = [f"IMDB train / validation rows: before {rows('before')}, after {rows('after')}, A2T {rows('reference')}",
             f"AT-DA rows added per augmenter: before {one(result['before']['at_da_added'])}, after "
             f"{one(result['after']['at_da_added'])}, A2T {result['reference']['at_da_added']:,}"]
    attacked = {when: {m: f"{v['per_adversarial_epoch'][0]:,} x {v['adversarial_epochs']} = {v['total']:,}"
                       for m, v in result[when]["at_ip_attacked"].items()} for when in ("before", "after")}
    lines.append(f"AT-IP attacked per adversarial epoch: before {one(attacked['before'])}, after "
                 f"{one(attacked['after'])}, A2T {result['reference']['at_ip_attacked_per_epoch']}")
    balance = result["label_balance"]
    if isinstance(balance, str):
        lines.append(f"validation label balance: {balance}")
    else:
        for when in ("before", "after"):
            v = balance[when]["validation"]
            lines.append(f"validation labels {when} (neg / pos, {balance['source']}): {v['negative']:,} / "
                         f"{v['positive']:,} (positive {v['positive_fraction']:.4f})")
        for where, v in balance["slice_of_the_file"].items():
            lines.append(f"a slice instead ({where} {result['after']['rows']['validation']:,} rows of the file): "
                         f"{v['negative']:,} / {v['positive']:,}")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = figures(args)
    print("\n".join(report(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
