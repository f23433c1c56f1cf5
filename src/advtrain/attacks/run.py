"""Attack a fixed sample of a test split with ``textattack.Attacker``: sharded, checkpointed, one JSON line per example.

Sharding: shard ``k`` of ``n`` attacks the examples whose position ``i`` in the sample has ``i % n == k`` (strided,
so shards get a similar mix of lengths). Records carry ``index`` = ``i``; :func:`advtrain.attacks.metrics.gather`
puts the shards back in order.

Determinism: before each example the attack's caches are cleared and TextAttack's ``set_seed`` is called with a seed
made from ``random_seed`` and the example itself (text and label). An example's record therefore does not depend on
which shard it is in, on the examples attacked before it, or on whether the run was resumed from a checkpoint.
(TextAttack seeds once per run, so PSO's random draws and A2T's dropout-on gradient would otherwise depend on them.)

Resuming: with ``checkpoint_dir`` set, TextAttack saves an ``AttackCheckpoint`` every ``checkpoint_interval``
examples (``<ms-time>.ta.chkpt``). A rerun loads the newest readable one with ``AttackCheckpoint.load`` and continues
with ``Attacker.from_checkpoint``, provided ``attack_run.json`` in the same folder shows the same model, recipe,
examples and settings; otherwise the old checkpoints are removed and the shard starts over. Give each
(model, recipe, shard) its own folder. Checkpoints are deleted once the output is written, unless
``keep_checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import zlib
from pathlib import Path

from advtrain.attacks import resources as res
from advtrain.attacks.metrics import RESULT_TYPES, summarise
from advtrain.attacks.recipes import build_attack, recipe_name

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "*.ta.chkpt"
FINGERPRINT_FILE = "attack_run.json"


def select_examples(test_df, n: int | None, seed: int, return_index: bool = False) -> list[tuple]:
    """A fixed random sample of ``n`` rows (all rows, shuffled, when ``n`` is None or too large) of a split.

    Depends only on the split's rows and ``seed``, so every model is attacked on the same examples. Tuples are
    ``(text, label)``, or ``(text, label, row index in test_df)`` with ``return_index``.
    """
    n = len(test_df) if n is None else min(int(n), len(test_df))
    sample = test_df.sample(n=n, random_state=seed) if n else test_df.iloc[:0]
    rows = zip(sample["text"].astype(str), sample["label"].astype(int), sample.index, strict=True)
    return [(t, int(y), _plain(i)) if return_index else (t, int(y)) for t, y, i in rows]


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def shard_indices(n: int, shard_index: int, num_shards: int) -> list[int]:
    """Positions of shard ``shard_index`` of ``num_shards`` among ``n`` examples (``i % num_shards == shard_index``)."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards); got {shard_index} of {num_shards}")
    return list(range(shard_index, n, num_shards))


def example_seed(random_seed: int, text: str, label: int) -> int:
    return zlib.crc32(f"{random_seed}\0{label}\0{text}".encode())


def load_model_wrapper(model_dir: str | Path, max_length: int | None = None, nltk_data: str | Path | None = None):
    """TextAttack's HuggingFaceModelWrapper around a fine-tuned classifier folder, on the GPU when there is one.

    The wrapper pads every batch to ``tokenizer.model_max_length``; ``max_length`` (e.g. the length the model was
    fine-tuned with) replaces it, which keeps long reviews from being padded to 512 tokens.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    res.import_textattack(nltk_data)
    from textattack.models.wrappers import HuggingFaceModelWrapper

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a fine-tuned model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    if max_length:
        tokenizer.model_max_length = int(max_length)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return HuggingFaceModelWrapper(model, tokenizer)


def _seed_each_example(attack, random_seed: int) -> None:
    """Make each example's attack a function of the example alone (see the module docstring)."""
    from textattack.shared.utils import set_seed

    attack_one = attack.attack  # bound method of the recipe's class

    def seeded(example, ground_truth_output):
        attack.clear_cache()
        set_seed(example_seed(random_seed, example.text, ground_truth_output))
        return attack_one(example, ground_truth_output)

    attack.attack = seeded


def _result_type(result) -> str:
    name = type(result).__name__
    kind = name[: -len("AttackResult")] if name.endswith("AttackResult") else name
    if kind not in RESULT_TYPES:
        raise TypeError(f"unexpected TextAttack result {name}")
    return kind


def _record(index: int, example: tuple, result, shard_index: int) -> dict:
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    words_total = len(original.words)
    kind = _result_type(result)
    words_changed = 0 if kind == "Skipped" else len(original.all_words_diff(perturbed))
    record = {
        "index": index,
        "original_text": original.text,
        "perturbed_text": perturbed.text,
        "ground_truth": _plain(result.original_result.ground_truth_output),
        "original_output": _plain(result.original_result.output),
        "perturbed_output": _plain(result.perturbed_result.output),
        "result_type": kind,
        "num_queries": int(result.perturbed_result.num_queries),
        "words_changed": words_changed,
        "words_total": words_total,
        "perturbed_word_fraction": words_changed / words_total if words_total else 0.0,
        "original_score": float(result.original_result.score),
        "perturbed_score": float(result.perturbed_result.score),
        "shard_index": shard_index,
    }
    if len(example) > 2:
        record["source_index"] = example[2]
    return record


def _fingerprint(model_dir, recipe, shard_examples, query_budget, random_seed, max_length, shard_index,
                 num_shards) -> dict:
    digest = hashlib.sha256()
    for example in shard_examples:
        digest.update(f"{example[1]}\t{example[0]}\n".encode())
    return {"model_dir": str(Path(model_dir).resolve()), "recipe": recipe, "examples_sha256": digest.hexdigest(),
            "num_examples": len(shard_examples), "query_budget": query_budget, "random_seed": random_seed,
            "max_length": max_length, "shard_index": shard_index, "num_shards": num_shards}


def _checkpoints(folder: Path) -> list[Path]:
    """TextAttack checkpoints in ``folder``, newest first (their names are the save time in ms)."""
    def stamp(p: Path) -> int:
        try:
            return int(p.name.split(".")[0])
        except ValueError:
            return -1

    return sorted(folder.glob(CHECKPOINT_GLOB), key=stamp, reverse=True)


def _remove_checkpoints(folder: Path) -> None:
    for path in _checkpoints(folder):
        path.unlink(missing_ok=True)
    (folder / FINGERPRINT_FILE).unlink(missing_ok=True)


def _latest_checkpoint(folder: Path, fingerprint: dict, texts: list[str]):
    """The newest usable checkpoint of this very run, or None (stale ones are removed)."""
    from textattack.shared import AttackCheckpoint

    saved = folder / FINGERPRINT_FILE
    if not saved.is_file() or json.loads(saved.read_text()) != fingerprint:
        if _checkpoints(folder):
            print(f"[attack] {folder}: checkpoints belong to another run; starting over", file=sys.stderr)
        _remove_checkpoints(folder)
        return None
    for path in _checkpoints(folder):
        try:
            checkpoint = AttackCheckpoint.load(str(path))
        except Exception as exc:  # a checkpoint cut short by a kill: try the one before
            print(f"[attack] {path}: unreadable checkpoint ({exc}); trying an older one", file=sys.stderr)
            continue
        done = [r.original_result.attacked_text.text for r in checkpoint.attack_log_manager.results]
        if checkpoint.attack_args.num_examples == len(texts) and done == texts[: len(done)]:
            return path, checkpoint
        print(f"[attack] {path}: does not match this shard's examples; ignored", file=sys.stderr)
    return None


def _write_jsonl(records: list[dict], out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)


def read_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def attack_examples(
    model_dir: str | Path,
    examples: list[tuple],
    recipe: str,
    resources: dict,
    query_budget: int | None = None,
    model_batch_size: int = 32,
    checkpoint_dir: str | Path | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    out_path: str | Path | None = None,
    *,
    checkpoint_interval: int = 10,
    random_seed: int = 765,
    max_length: int | None = None,
    keep_checkpoints: bool = False,
) -> dict:
    """Attack shard ``shard_index`` of ``examples`` ((text, label) or (text, label, source index)) with ``recipe``.

    Writes one JSON line per example to ``out_path`` (see :func:`_record` for the fields) and returns the shard's
    :func:`~advtrain.attacks.metrics.summarise` plus a ``run`` entry (recipe, substitutions, resources used, ...).
    """
    recipe = recipe_name(recipe)
    positions = shard_indices(len(examples), shard_index, num_shards)
    shard = [tuple(examples[i]) for i in positions]
    started = time.time()

    textattack = res.import_textattack(resources.get("nltk_data"))
    wrapper = load_model_wrapper(model_dir, max_length)
    build = build_attack(recipe, wrapper, resources, query_budget=query_budget, model_batch_size=model_batch_size)
    _seed_each_example(build.attack, random_seed)

    texts = [str(text) for text, *_ in shard]
    dataset = textattack.datasets.Dataset([(text, int(label)) for text, label, *_ in shard])
    args = dict(checkpoint_interval=checkpoint_interval if checkpoint_dir else None,
                checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else "checkpoints",
                disable_stdout=True, silent=True, parallel=False)
    resumed = 0
    attacker = None
    if checkpoint_dir:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(model_dir, recipe, shard, query_budget, random_seed, max_length, shard_index,
                                   num_shards)
        latest = _latest_checkpoint(folder, fingerprint, texts)
        (folder / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=1))
        if latest:
            path, checkpoint = latest
            resumed = checkpoint.results_count
            print(f"[attack] resuming from {path}: {resumed} of {len(texts)} examples done", file=sys.stderr)
            attacker = textattack.Attacker.from_checkpoint(build.attack, dataset, checkpoint)
            for name, value in args.items():  # Attacker.update_attack_args sets an attribute named `k` (0.3.11)
                setattr(attacker.attack_args, name, value)
    if attacker is None:
        attack_args = textattack.AttackArgs(num_examples=len(dataset), random_seed=random_seed,
                                            query_budget=query_budget, **args)
        attacker = textattack.Attacker(build.attack, dataset, attack_args)

    results = attacker.attack_dataset() if len(dataset) else []
    if len(results) != len(shard):
        raise RuntimeError(f"TextAttack returned {len(results)} results for {len(shard)} examples")
    records = []
    for position, example, result in zip(positions, shard, results, strict=True):
        if result.original_result.attacked_text.text != str(example[0]):
            raise RuntimeError(f"result order lost at example {position}")
        records.append(_record(position, example, result, shard_index))
    if out_path:
        _write_jsonl(records, Path(out_path))
    if checkpoint_dir and not keep_checkpoints:
        _remove_checkpoints(Path(checkpoint_dir))

    summary = summarise(records)
    summary["run"] = {
        "recipe": recipe, "model_dir": str(model_dir), "shard_index": shard_index, "num_shards": num_shards,
        "examples": len(shard), "resumed_examples": resumed, "query_budget": query_budget,
        "model_batch_size": model_batch_size, "random_seed": random_seed, "max_length": max_length,
        "substitutions": build.substitutions, "resources": build.resources,
        "seconds": round(time.time() - started, 3),
    }
    return summary


__all__ = ["attack_examples", "example_seed", "load_model_wrapper", "read_records", "select_examples",
           "shard_indices"]
