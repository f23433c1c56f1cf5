"""Attack a fixed sample of a test split: sharded, checkpointed, one JSON line per example, many examples at once.

Sharding: shard ``k`` of ``n`` attacks the examples whose position ``i`` in the sample has ``i % n == k`` (strided,
so shards get a similar mix of lengths). Records carry ``index`` = ``i``; :func:`advtrain.attacks.metrics.gather`
puts the shards back in order.

Attacking: ``concurrency`` examples at a time, each by TextAttack's own ``Attack.attack``, their model queries and
sentence-encoder calls batched together by the query broker (:mod:`advtrain.attacks.concurrent`); ``concurrency`` 1 is
TextAttack's one-at-a-time loop. The victim pads each batch to its longest text (:mod:`advtrain.attacks.victim`).

Determinism: before each example the attack's caches are cleared and TextAttack's ``set_seed`` is called with a seed
made from the settings' ``seed`` (``attacks.seed``) and the example itself (text and label). An example's record therefore does not depend on
which shard it is in, on the examples attacked before or beside it, or on whether the run was resumed.
(TextAttack seeds once per run, so PSO's random draws and A2T's dropout-on gradient would otherwise depend on them.)

Progress: a line in the log every 30 s or 5% of the shard (done, succeeded, failed, skipped, queries, elapsed,
remaining), a bar on a terminal (:mod:`advtrain.progress`).

Resuming: with the shard's ``checkpoint_dir`` set, each finished example's record is appended to ``records.jsonl`` there (made
durable every ``checkpoint_interval`` examples). A rerun keeps the records of this shard's examples, provided
``attack_run.json`` in the same folder shows the same model, recipe, examples and settings, and attacks only the rest;
otherwise the old checkpoint is removed and the shard starts over. Give each (model, recipe, shard) its own folder.
The output lists the records in example order, whatever order the examples finished in. The checkpoint is deleted
once the output is written, unless the shard's ``keep_checkpoints``. (TextAttack's own ``AttackCheckpoint`` assumes results
arrive in order and pickles them all every time: not used.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from advtrain.attacks import protocols
from advtrain.attacks import resources as res
from advtrain.attacks.concurrent import attack_all
from advtrain.attacks.metrics import RESULT_TYPES, summarise
from advtrain.attacks.protocols import paper_sample as select_examples
from advtrain.attacks.protocols import plain as _plain
from advtrain.attacks.recipes import PSO_SEARCH_REFERENCE, build_attack, recipe_name, recipe_settings
from advtrain.attacks.victim import load_model_wrapper
from advtrain.progress import AttackProgress, result_kind

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "records.jsonl"
FINGERPRINT_FILE = "attack_run.json"
STALE_GLOBS = ("*.ta.chkpt",)  # TextAttack checkpoints of earlier versions of this module


@dataclass(frozen=True)
class AttackSettings:
    """How a sample is attacked: the victim's ``model.max_length`` and the ``attacks`` settings a shard reads.

    The defaults are the schema's (workflow/schemas/config.schema.yaml; tests/unit/test_attacks.py checks them), for
    library use; the workflow passes every value from its config.
    """

    #: ``model.max_length``: the victim cuts its inputs there (None: at the tokenizer's ``model_max_length``).
    max_length: int | None
    #: ``attacks.query_budget``: model queries per example (None: unlimited).
    query_budget: int | None = None
    #: ``attacks.model_batch_size``: texts per victim forward when ``concurrency`` is 1.
    model_batch_size: int = 32
    #: ``attacks.seed``: seeds each example (:func:`example_seed`) and draws the sample (:func:`select_examples`).
    seed: int = 765
    #: ``attacks.checkpoint_interval``: examples between two syncs of the checkpoint to disk.
    checkpoint_interval: int = 10
    #: ``attacks.concurrency``: examples in flight through the query broker (1: one after the other).
    concurrency: int = 32
    #: ``attacks.batch_tokens``: padded tokens per forward of the query broker.
    batch_tokens: int = 8192
    #: ``attacks.pso_search`` (PSO only): TextAttack 0.3.8's search or 0.3.11's
    #: (:func:`~advtrain.attacks.recipes.build_attack`).
    pso_search: str = PSO_SEARCH_REFERENCE
    #: ``attacks.protocol``: ``paper``, or ``textdefender``'s constraints and 50 x words budget on top of the recipe
    #: (:mod:`advtrain.attacks.protocols`; its sample is drawn by :func:`advtrain.attacks.protocols.sample`).
    protocol: str = protocols.DEFAULT


@dataclass(frozen=True)
class Shard:
    """Which examples a run attacks (those at positions ``i % count == index``, :func:`shard_indices`) and where it
    keeps its checkpoint (None: none; give each (model, recipe, shard) its own folder)."""

    index: int = 0
    count: int = 1
    checkpoint_dir: str | Path | None = None
    #: Keep the checkpoint once the output is written (otherwise it is deleted).
    keep_checkpoints: bool = False


def shard_count(attacks: dict) -> int:
    """The shards of each attack run: ``attacks.shards``, never more than ``attacks.num_examples``.

    Snakemake needs the number when it builds the DAG, before the test split exists, so the sample's real size
    (``num_examples`` or the split's rows, whichever is smaller) is unknown then. Capping by ``num_examples`` leaves
    no empty shard unless the split is smaller than the shard count too; such a shard writes its empty record at
    once (:func:`attack_examples` loads nothing for it). A checkpoint after the data rule would know the size, at
    the price of a dry run that no longer lists the attack jobs.
    """
    return max(1, min(int(attacks.get("shards", 4)), int(attacks.get("num_examples", 1000))))


def sample_note(requested: int | None, attacked: int, test_rows: int | None) -> str | None:
    """"requested 500, attacked 50 (the test split has 50 rows)" when the split capped the sample; else None."""
    if requested is None or attacked >= requested:
        return None
    rows = f" (the test split has {test_rows} rows)" if test_rows is not None else ""
    return f"requested {requested}, attacked {attacked}{rows}"


def shard_indices(n: int, shard_index: int, num_shards: int) -> list[int]:
    """Positions of shard ``shard_index`` of ``num_shards`` among ``n`` examples (``i % num_shards == shard_index``)."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards); got {shard_index} of {num_shards}")
    return list(range(shard_index, n, num_shards))


def example_seed(random_seed: int, text: str, label: int) -> int:
    return zlib.crc32(f"{random_seed}\0{label}\0{text}".encode())


def _result_type(result) -> str:
    kind = result_kind(result)
    if kind not in RESULT_TYPES:
        raise TypeError(f"unexpected TextAttack result {type(result).__name__}")
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


def _fingerprint(model_dir, recipe, shard_examples, settings: AttackSettings, shard: Shard,
                 own_settings: dict) -> dict:
    digest = hashlib.sha256()
    for example in shard_examples:
        digest.update(f"{example[1]}\t{example[0]}\n".encode())
    return {"model_dir": str(Path(model_dir).resolve()), "recipe": recipe, "examples_sha256": digest.hexdigest(),
            "num_examples": len(shard_examples), "query_budget": settings.query_budget, "random_seed": settings.seed,
            "max_length": settings.max_length, "shard_index": shard.index, "num_shards": shard.count,
            "checkpoint": CHECKPOINT_FILE, **own_settings, **_protocol_entry(settings)}


def _protocol_entry(settings: AttackSettings) -> dict:
    """{"protocol": name} unless it is the paper's: the paper's checkpoints, records and summaries stay as they were."""
    return {} if settings.protocol == protocols.DEFAULT else {"protocol": settings.protocol}


def _remove_checkpoint(folder: Path) -> None:
    for pattern in (CHECKPOINT_FILE, FINGERPRINT_FILE, *STALE_GLOBS):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)


def _checkpointed_records(folder: Path, fingerprint: dict, shard: dict[int, tuple]) -> dict[int, dict]:
    """The records of this very run saved in ``folder`` (by example position); a stale checkpoint is removed."""
    saved = folder / FINGERPRINT_FILE
    if not saved.is_file() or json.loads(saved.read_text()) != fingerprint:
        if (folder / CHECKPOINT_FILE).exists() or any(folder.glob(STALE_GLOBS[0])):
            print(f"[attack] {folder}: the checkpoint belongs to another run; starting over", file=sys.stderr)
        _remove_checkpoint(folder)
        return {}
    done = {}
    try:
        lines = (folder / CHECKPOINT_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:  # the line a kill cut short
            print(f"[attack] {folder / CHECKPOINT_FILE}:{number}: unreadable record ignored", file=sys.stderr)
            continue
        example = shard.get(record.get("index"))
        if example is not None and record.get("original_text") == str(example[0]):
            done[record["index"]] = record
    return done


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


def attack_examples(model_dir: str | Path, examples: list[tuple], recipe: str, resources: dict,
                    settings: AttackSettings, out_path: str | Path | None = None, shard: Shard = Shard()) -> dict:
    """Attack ``shard`` of ``examples`` ((text, label) or (text, label, source index)) with ``recipe``.

    ``settings.concurrency`` examples are attacked at a time through the query broker (``settings.batch_tokens``
    padded tokens per forward); 1 = one after the other, with ``settings.model_batch_size`` texts per forward.
    Writes one JSON line per example to ``out_path`` (see :func:`_record` for the fields) and returns the shard's
    :func:`~advtrain.attacks.metrics.summarise` plus a ``run`` entry (recipe, substitutions, resources used, ...).
    """
    recipe = recipe_name(recipe)
    shard_index, num_shards, checkpoint_dir = shard.index, shard.count, shard.checkpoint_dir
    positions = shard_indices(len(examples), shard_index, num_shards)
    mine = {i: tuple(examples[i]) for i in positions}
    started = time.time()
    if not positions:  # a sample smaller than the shard count (see shard_count): nothing to load, nothing to attack
        print(f"[attack] shard {shard_index + 1} of {num_shards}: no examples (the sample has {len(examples)})",
              file=sys.stderr)
        if out_path:
            _write_jsonl([], Path(out_path))
        summary = summarise([])
        summary["run"] = {"recipe": recipe, "model_dir": str(model_dir), "shard_index": shard_index,
                          "num_shards": num_shards, "examples": 0, "resumed_examples": 0, "substitutions": [],
                          "resources": {}, "seconds": round(time.time() - started, 3)}
        return summary

    res.import_textattack(resources.get("nltk_data"))
    wrapper = load_model_wrapper(model_dir, settings.max_length)
    # Settings only one recipe reads (its registry record's): in its checkpoint fingerprint and run summary, not in
    # the others'.
    own_settings = recipe_settings(recipe, dataclasses.asdict(settings))
    build = build_attack(recipe, wrapper, resources, query_budget=settings.query_budget,
                         model_batch_size=settings.model_batch_size, **own_settings)
    build = protocols.apply(settings.protocol, build, wrapper, resources, settings.model_batch_size)

    done: dict[int, dict] = {}
    checkpoint = None
    if checkpoint_dir:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(model_dir, recipe, list(mine.values()), settings, shard, own_settings)
        done = _checkpointed_records(folder, fingerprint, mine)
        (folder / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=1))
        if done:
            print(f"[attack] resuming from {folder / CHECKPOINT_FILE}: {len(done)} of {len(mine)} examples done",
                  file=sys.stderr)
        checkpoint = open(folder / CHECKPOINT_FILE, "a", encoding="utf-8")  # closed below
    resumed = len(done)
    todo = [(i, str(mine[i][0]), int(mine[i][1])) for i in positions if i not in done]
    progress = AttackProgress(f"[attack] {recipe}, shard {shard_index + 1} of {num_shards}", len(mine), resumed)

    def finished(position, result):
        record = _record(position, mine[position], result, shard_index)
        if settings.protocol != protocols.DEFAULT:  # the example's own budget (50 x its words under textdefender)
            record["query_budget"] = protocols.example_budget(record["words_total"], settings.protocol)
        done[position] = record
        if checkpoint is not None:
            checkpoint.write(json.dumps(record, ensure_ascii=False) + "\n")
            checkpoint.flush()  # survives a killed process; fsync below survives a crashed machine
            if (len(done) - resumed) % settings.checkpoint_interval == 0:
                os.fsync(checkpoint.fileno())
        progress.add(record["result_type"], record["num_queries"])

    broker_stats: dict = {}
    try:
        attack_all(build.attack, todo, lambda text, label: example_seed(settings.seed, text, label),
                   concurrency=settings.concurrency, batch_tokens=settings.batch_tokens, on_result=finished,
                   stats=broker_stats)
    finally:
        progress.close()
        if checkpoint is not None:
            checkpoint.close()
    records = [done[i] for i in positions]
    if out_path:
        _write_jsonl(records, Path(out_path))
    if checkpoint_dir and not shard.keep_checkpoints:
        _remove_checkpoint(Path(checkpoint_dir))

    summary = summarise(records)
    summary["run"] = {
        "recipe": recipe, "model_dir": str(model_dir), "shard_index": shard_index, "num_shards": num_shards,
        "examples": len(mine), "resumed_examples": resumed, "query_budget": settings.query_budget,
        "model_batch_size": settings.model_batch_size, "concurrency": settings.concurrency,
        "batch_tokens": settings.batch_tokens, "random_seed": settings.seed, "max_length": settings.max_length,
        **own_settings, **_protocol_entry(settings), "substitutions": build.substitutions, "resources": build.resources,
        "forwards": broker_stats, "seconds": round(time.time() - started, 3),
    }
    return summary


__all__ = ["AttackSettings", "Shard", "attack_examples", "example_seed", "load_model_wrapper", "read_records", "sample_note", "select_examples",
           "shard_count", "shard_indices"]
