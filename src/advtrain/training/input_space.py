"""Input-space adversarial training (the paper's AT-IP family: A2T, A2T_MLM, BERT-Attack) inside the one ``Trainer``.

The schedule is TextAttack's adversarial training (``textattack/trainer.py``, 0.3.11):

- epochs ``1 .. clean_epochs`` train on the clean data only;
- from epoch ``clean_epochs + 1`` on, every ``interval``-th epoch starts by attacking training examples with the
  current model (eval mode, the recipe built by :func:`advtrain.attacks.build_attack` from local resources, TextAttack's
  ``Attack.attack`` per example, ``query_budget`` queries each, ``concurrency`` examples at a time through the query
  broker of :mod:`advtrain.attacks.concurrent`) and adds the successful adversarial examples, with their
  original's label and loss weight ``weight`` (TextAttack's ``alpha``), to that epoch's training data. Epochs in
  between (``interval > 1``) are clean, as in TextAttack.

Two departures, each for a reason:

- Which examples: a seeded sample of ``ceil(fraction * N)`` training examples is attacked per epoch. TextAttack's
  float ``num_train_adv_examples`` instead attacks shuffled examples until that many *succeed*, so an epoch's cost grows
  without bound (up to the whole training set) as the model gets robust.
- Where the adversarial examples go: each joins the batch of its original (a batch grows by the number of its attacked
  originals) instead of being shuffled into extra batches. The epoch trains on the same examples with the same weights,
  and the loss is TextAttack's (the batch mean of per-example cross-entropy, adversarial ones times ``weight``), while
  Hugging Face ``Trainer``'s step count, learning-rate schedule, epoch checkpoints and resumption stay those of the
  clean run.

Every epoch's generated examples are written to ``<checkpoint_dir>/adversarial_examples/epoch<N>.jsonl`` (+ ``.json``:
counts, seconds, and a fingerprint holding the global step they were generated at). A job killed after generating
epoch N resumes from the checkpoint of epoch N - 1 and reads them back instead of attacking again; attacks never leave
a trace on the random number generators (their state is restored after generation), so the resumed run trains exactly
like an uninterrupted one.

Generation reports its progress (examples done, succeeded, failed, skipped, queries, elapsed, remaining) in the log
every 30 s or 5% of the examples, and as a bar on a terminal (:mod:`advtrain.progress`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from advtrain.training.input_schedule import (  # noqa: F401  (re-exported: the part's settings and schedule)
    DEFAULTS,
    RECIPES,
    attack_epoch,
    check_schedule,
    resolve,
    sample_indices,
)

#: Column added to the training set so a batch knows which examples it holds.
INDEX_COLUMN = "example_index"
STORE = "adversarial_examples"


# ---------------------------------------------------------------------------------------------------- attacking
@contextlib.contextmanager
def preserved_rng():
    """Restore Python's, NumPy's and torch's generators afterwards: TextAttack reseeds them for every example."""
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            torch.cuda.set_rng_state_all(state[3])


def model_wrapper(model, tokenizer, max_length: int):
    """TextAttack's HuggingFaceModelWrapper padding each query batch to its longest text (not to max_length)."""
    from advtrain.attacks.victim import padded_wrapper

    return padded_wrapper(model, tokenizer, max_length)


def attack_records(attack, examples: list[tuple], seed_of, concurrency: int = 1, batch_tokens: int = 8192,
                   progress: str | None = None, bar: bool | None = None) -> list[dict]:
    """Attack ``examples`` ((text, label, training-set index)), each seeded by ``seed_of(text, label)`` with fresh
    caches, ``concurrency`` at a time through the query broker; one record per example (see attacks.run._record).

    The caches hold the goal function's and constraints' results for texts; the model changes between epochs.
    ``progress``: report progress under this label (:class:`~advtrain.progress.AttackProgress`; ``bar`` as there).
    """
    from advtrain.attacks.concurrent import attack_all
    from advtrain.attacks.run import _record
    from advtrain.progress import AttackProgress

    jobs = [(pos, text, label) for pos, (text, label, _) in enumerate(examples)]
    with contextlib.ExitStack() as stack:
        watch = stack.enter_context(AttackProgress(progress, len(jobs), bar=bar)) if progress else None
        results = attack_all(attack, jobs, seed_of, concurrency=concurrency, batch_tokens=batch_tokens,
                             on_result=watch.on_result if watch else None)
    return [_record(ex[2], ex, results[pos], 0) for pos, ex in enumerate(examples)]


def _epoch_seed(seed: int, epoch: int):
    from advtrain.attacks.run import example_seed

    return lambda text, label: example_seed(seed * 1000 + epoch, text, label)


# Worker processes (settings.workers > 1): each holds its own copy of the model and of the attack for the whole run;
# per epoch it loads the current weights and attacks its share of the examples.
_WORKER: dict = {}


def _worker_init(config, tokenizer, max_length, recipe, resources, settings, threads):
    from transformers import AutoModelForSequenceClassification

    from advtrain.attacks.recipes import build_attack

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_config(config)
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu")).eval()
    build = build_attack(recipe, model_wrapper(model, tokenizer, max_length), resources,
                         query_budget=settings["query_budget"], model_batch_size=settings["model_batch_size"])
    _WORKER.update(model=model, attack=build.attack, settings=settings)


def _worker_attack(weights_path: str, examples: list[tuple], seed: int, epoch: int) -> list[dict]:
    model, settings = _WORKER["model"], _WORKER["settings"]
    model.load_state_dict(torch.load(weights_path, map_location=next(model.parameters()).device))
    model.eval()
    with preserved_rng():
        # Plain lines (no bars): the workers share the parent's terminal.
        return attack_records(_WORKER["attack"], examples, _epoch_seed(seed, epoch), settings["concurrency"],
                              settings["batch_tokens"], f"[adversarial_input] epoch {epoch}, worker {os.getpid()}",
                              bar=False)


@contextlib.contextmanager
def _no_main_reimport():
    """Spawned children re-import ``__main__`` by path; a Snakemake script has no ``__main__`` guard and would train
    again in every worker. While the workers start, ``__main__`` is a bare module."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------- adversary
class InputAdversary:
    """Generates an epoch's adversarial examples and appends them to the batches of their originals."""

    def __init__(self, part: dict, resources: dict, texts: list[str], labels: list[int], tokenizer, max_length: int,
                 store_dir: str | Path):
        from advtrain.attacks.recipes import required_resources
        from advtrain.attacks.resources import require

        self.settings = resolve(part)
        self.recipe = self.settings["recipe"]
        self.resources = {k: str(v) for k, v in (resources or {}).items() if v}
        for kind in required_resources(self.recipe, self.resources):  # fail before training, naming the key
            if kind != "nltk_data" or self.resources.get(kind):
                require(self.resources, kind)
        self.texts = [str(t) for t in texts]
        self.labels = [int(y) for y in labels]
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.store = Path(store_dir)
        self.pool: dict[int, dict] = {}  # training-set index -> encoded adversarial example of this epoch
        self.epoch = 0
        self.trained = 0
        self._stats: dict = {}
        self._build = None
        self._workers = None
        self._train_start = None

    # -- the epoch's examples
    def begin_epoch(self, model, epoch: int, global_step: int) -> dict:
        self.epoch, self.pool, self.trained = epoch, {}, 0
        s = self.settings
        stats = {"epoch": epoch, "kind": "clean", "attacked": 0, "succeeded": 0, "failed": 0, "skipped": 0,
                 "added": 0, "generation_seconds": 0.0, "source": None}
        if attack_epoch(epoch, s["clean_epochs"], s["interval"]):
            stats = self._adversarial_epoch(model, epoch, global_step)
            print(f"[adversarial_input] epoch {epoch}: {stats['attacked']} attacked, {stats['succeeded']} succeeded, "
                  f"{stats['failed']} failed, {stats['skipped']} skipped ({stats['source']}, "
                  f"{stats['generation_seconds']:.1f} s)", flush=True)
        self._stats = stats
        self._train_start = time.perf_counter()
        return stats

    def _fingerprint(self, indices: list[int], global_step: int) -> dict:
        digest = hashlib.sha256()
        for i in indices:
            digest.update(f"{i}\t{self.labels[i]}\t{self.texts[i]}\n".encode())
        keys = ("recipe", "fraction", "query_budget", "seed", "clean_epochs", "interval")
        return {**{k: self.settings[k] for k in keys}, "global_step": int(global_step),
                "examples_sha256": digest.hexdigest(), "max_length": self.max_length}

    def _adversarial_epoch(self, model, epoch: int, global_step: int) -> dict:
        indices = sample_indices(len(self.texts), self.settings["fraction"], self.settings["seed"], epoch)
        fingerprint = self._fingerprint(indices, global_step)
        records, stats = self._load(epoch, fingerprint)
        if records is None:
            start = time.perf_counter()
            examples = [(self.texts[i], self.labels[i], i) for i in indices]
            records = self._generate(model, epoch, examples)
            kinds = [r["result_type"] for r in records]
            stats = {"epoch": epoch, "kind": "adversarial", "attacked": len(records),
                     "succeeded": kinds.count("Successful"), "failed": kinds.count("Failed"),
                     "skipped": kinds.count("Skipped"), "generation_seconds": time.perf_counter() - start,
                     "source": "generated", "fingerprint": fingerprint}
            self.store.mkdir(parents=True, exist_ok=True)
            # Records first, then the stats that vouch for them: a kill in between leaves no usable epoch file.
            _write_atomic(self._path(epoch, "jsonl"),
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            _write_atomic(self._path(epoch, "json"), json.dumps(stats, indent=1))
        else:
            stats = {**stats, "source": "reused"}
        for r in records:
            if r["result_type"] == "Successful" and r["perturbed_text"] != r["original_text"]:
                self.pool[int(r["source_index"])] = self.tokenizer(r["perturbed_text"], truncation=True,
                                                                   max_length=self.max_length)
        stats["added"] = len(self.pool)
        return stats

    def _path(self, epoch: int, ext: str) -> Path:
        return self.store / f"epoch{epoch}.{ext}"

    def _load(self, epoch: int, fingerprint: dict):
        """This epoch's records from an earlier attempt of the same run at the same step, else (None, None)."""
        try:
            stats = json.loads(self._path(epoch, "json").read_text())
            lines = self._path(epoch, "jsonl").read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError):
            return None, None
        if stats.get("fingerprint") != fingerprint or len(records) != stats.get("attacked"):
            print(f"[adversarial_input] epoch {epoch}: stored examples belong to another run; generating anew",
                  file=sys.stderr)
            return None, None
        print(f"[adversarial_input] epoch {epoch}: reusing the examples generated before the interruption",
              flush=True)
        return records, stats

    def _generate(self, model, epoch: int, examples: list[tuple]) -> list[dict]:
        was_training = model.training
        with preserved_rng():
            model.eval()
            try:
                if self.settings["workers"] > 1:
                    return self._generate_in_workers(model, epoch, examples)
                return attack_records(self._attack(model), examples, _epoch_seed(self.settings["seed"], epoch),
                                      self.settings["concurrency"], self.settings["batch_tokens"],
                                      f"[adversarial_input] epoch {epoch}, generating")
            finally:
                # A2T's gradient word ranking backpropagates through the model: drop those gradients.
                model.zero_grad(set_to_none=True)
                model.train(was_training)

    def _attack(self, model):
        if self._build is None:
            from advtrain.attacks.recipes import build_attack
            from advtrain.attacks.resources import configure_nltk

            configure_nltk(self.resources.get("nltk_data"))  # TextAttack reads NLTK's stopwords when imported
            self._build = build_attack(self.recipe, model_wrapper(model, self.tokenizer, self.max_length),
                                       self.resources, query_budget=self.settings["query_budget"],
                                       model_batch_size=self.settings["model_batch_size"])
        return self._build.attack

    def _generate_in_workers(self, model, epoch: int, examples: list[tuple]) -> list[dict]:
        import multiprocessing

        n = self.settings["workers"]
        if self._workers is None:
            threads = max(1, torch.get_num_threads() // n)
            args = (model.config, self.tokenizer, self.max_length, self.recipe, self.resources, self.settings, threads)
            with _no_main_reimport():
                self._workers = multiprocessing.get_context("spawn").Pool(n, initializer=_worker_init, initargs=args)
        self.store.mkdir(parents=True, exist_ok=True)
        weights = self.store / f"weights-epoch{epoch}.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        try:
            shards = [examples[k::n] for k in range(n)]
            parts = self._workers.starmap(_worker_attack,
                                          [(str(weights), shard, self.settings["seed"], epoch) for shard in shards])
        finally:
            weights.unlink(missing_ok=True)
        order = {ex[2]: pos for pos, ex in enumerate(examples)}
        return sorted((r for part in parts for r in part), key=lambda r: order[r["source_index"]])

    # -- the batches
    def extend(self, inputs: dict, indices: torch.Tensor) -> tuple[dict, torch.Tensor | None]:
        """Append the adversarial examples of the batch's originals; (inputs, per-example weights or None)."""
        rows = [row for row, i in enumerate(indices.tolist()) if i in self.pool]
        if not rows:
            return inputs, None
        feats = [self.pool[int(indices[row])] for row in rows]
        width = max(inputs["input_ids"].shape[1], *(len(f["input_ids"]) for f in feats))
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        out = {}
        for key, value in inputs.items():
            if key == "labels":
                out[key] = torch.cat([value, value[rows]])
                continue
            if key not in feats[0]:
                raise KeyError(f"adversarial_input: batch field {key!r} has no counterpart in the encoded examples")
            pad = self.tokenizer.pad_token_id if key == "input_ids" else 0
            grow = width - value.shape[1]
            clean = torch.nn.functional.pad(value, (grow, 0) if left else (0, grow), value=pad)
            adv = [[pad] * (width - len(f[key])) + list(f[key]) if left else list(f[key]) + [pad] * (width - len(f[key]))
                   for f in feats]
            out[key] = torch.cat([clean, torch.tensor(adv, dtype=value.dtype, device=value.device)])
        weights = torch.ones(len(out["labels"]), device=inputs["labels"].device)
        weights[len(indices):] = self.settings["weight"]
        self.trained += len(rows)
        return out, weights

    def end_epoch(self) -> None:
        stats = {**self._stats, "trained_on": self.trained,
                 "training_seconds": time.perf_counter() - (self._train_start or time.perf_counter())}
        self.store.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._path(self.epoch, "json"), json.dumps(stats, indent=1))

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
            self._workers.join()
            self._workers = None

    # -- reporting
    def summary(self, epochs: float) -> dict:
        """Per-epoch counts and seconds (epochs finished before a resume included) and their totals."""
        per_epoch = []
        for epoch in range(1, math.ceil(epochs) + 1):
            try:
                stats = json.loads(self._path(epoch, "json").read_text())
            except (OSError, ValueError):
                continue
            stats.pop("fingerprint", None)
            per_epoch.append(stats)
        totals = {k: sum(e.get(k) or 0 for e in per_epoch)
                  for k in ("attacked", "succeeded", "failed", "skipped", "added", "trained_on",
                            "generation_seconds", "training_seconds")}
        build = self._build
        return {"settings": self.settings, "epochs": per_epoch, "totals": totals,
                "substitutions": list(build.substitutions) if build else [],
                "resources": dict(build.resources) if build else dict(self.resources)}

    def export(self, dest: str | Path) -> list[Path]:
        """Copy the epochs' adversarial examples (jsonl) next to the final model."""
        dest = Path(dest)
        written = []
        for path in sorted(self.store.glob("epoch*.jsonl")):
            dest.mkdir(parents=True, exist_ok=True)
            (dest / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
            written.append(dest / path.name)
        return written


class InputAdversaryCallback(TrainerCallback):
    """Runs the adversary at epoch boundaries: generate at the start, record the training time at the end."""

    def __init__(self, adversary: InputAdversary):
        self.adversary = adversary

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        # state.epoch is the number of finished epochs here, also right after resuming from a checkpoint.
        self.adversary.begin_epoch(model, int(round(state.epoch or 0)) + 1, state.global_step)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.adversary.end_epoch()

    def on_train_end(self, args, state, control, **kwargs):
        self.adversary.close()


def build_input_adversary(part: dict, *, train_path, tokenizer, max_length: int, epochs: float, store_dir,
                          resources: dict | None = None) -> InputAdversary:
    """An :class:`InputAdversary` over the training split at ``train_path`` (its rows, in order)."""
    from advtrain.data import read_split

    check_schedule(part, epochs)
    frame = read_split(train_path)
    return InputAdversary(part, resources or {}, frame["text"].astype(str).tolist(),
                          frame["label"].astype(int).tolist(), tokenizer, max_length, store_dir)
