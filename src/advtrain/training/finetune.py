"""Fine-tune a pretrained encoder for text classification (k classes, as the training split records) with a
method's parts.

Checkpoints go to a folder outside the rule's outputs, one per epoch, so a killed job that is rerun resumes from
the last finished epoch (Snakemake deletes the outputs of a failed job, not this folder).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
from transformers import (
    DataCollatorWithPadding,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from advtrain import device, models
from advtrain.augment import training_frame
from advtrain.data import check_label_space, label_count, read_split
from advtrain.methods import PARTS
from advtrain.training import timing
from advtrain.training.trainer import AdvTrainer


def build_parts(parts: dict, **context) -> dict:
    """Instantiate a method's parts as keyword arguments of ``AdvTrainer``.

    ``context`` is what a part needs from the run (``adversarial_input``: train_path, tokenizer, max_length, epochs,
    store_dir, resources; see ``advtrain.training.input_space.build_input_adversary``).
    """
    kwargs = {}
    for name, part in PARTS.items():
        if part.build and parts.get(name):  # a part without `build` (augment) acts on the data, not the trainer
            kwargs[part.trainer_arg] = part.build(parts[name], **context)
    unknown = set(parts) - set(PARTS)
    if unknown:
        # The schema stops these first; this guards direct calls of the package.
        raise NotImplementedError(f"method parts not implemented: {', '.join(sorted(unknown))}")
    return kwargs


def tokenized(path: str | Path | pd.DataFrame, tokenizer, max_length: int,
              keep_text: bool = False) -> datasets.Dataset:
    """The split tokenised; ``keep_text`` keeps the raw text too (a smoothing method's noise is drawn from it)."""
    df = path if isinstance(path, pd.DataFrame) else read_split(path)
    ds = datasets.Dataset.from_pandas(df, preserve_index=False)
    ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                remove_columns=[] if keep_text else ["text"], desc=f"tokenising {path.attrs.get('name', 'rows') if isinstance(path, pd.DataFrame) else Path(path).name}")
    return ds.rename_column("label", "labels")


def last_complete_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest checkpoint that was completely written; newer partial ones (a kill mid-save) are removed.

    ``Trainer`` writes ``trainer_state.json`` after the weights, optimiser and RNG states, so a readable one
    marks a complete checkpoint.
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return None
    found = [p for p in root.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.rsplit("-", 1)[-1].isdigit()]
    found.sort(key=lambda p: int(p.name.rsplit("-", 1)[-1]), reverse=True)
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            print(f"removing incomplete checkpoint {path}")
            shutil.rmtree(path, ignore_errors=True)
    return None


def train_resuming(trainer, checkpoint_dir: str | Path) -> tuple:
    """``trainer.train()`` from the newest complete checkpoint, if any: (result, training seconds, checkpoint used)."""
    resume = last_complete_checkpoint(checkpoint_dir)
    if resume:
        print(f"resuming from {resume}")
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    return result, time.perf_counter() - start, resume


def accuracy(eval_pred) -> dict:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def fine_tune(
    model_path: str | Path,
    train_path: str | Path,
    validation_path: str | Path,
    output_dir: str | Path,
    checkpoint_dir: str | Path,
    spec: dict,
    seed: int,
    keep_checkpoints: bool = False,
    attack_resources: dict | None = None,
    augmented_paths: list[str | Path] | tuple = (),
) -> dict:
    """Train, save the final model to ``output_dir`` and return the run's metrics.

    ``spec`` is ``advtrain.config.method_spec``: ``{"train": settings, "parts": {...}}``. ``attack_resources``
    ({kind: local path}, as ``attacks.resources``) is what an ``adversarial_input`` part's recipe reads.
    """
    settings = spec["train"]
    set_seed(seed)
    # Seeded before the classifier head is initialised, so a seed fixes the whole run. Decoder-only models (GPT-2,
    # Llama) get their padding token here (advtrain.models.prepare).
    # The head has the dataset's classes (datasets.<name>.num_labels, or the labels' count: advtrain.data); the
    # validation split must have the same ones.
    num_labels = label_count(train_path)
    check_label_space(read_split(validation_path), str(validation_path), num_labels,
                      f"the training split {train_path}")
    model, tokenizer = models.load_classifier(model_path, num_labels=num_labels)
    # AT-DA: the augmenters' rows (generated before training) join the training split.
    train_ds = tokenized(training_frame(train_path, list(augmented_paths), spec.get("parts", {}).get("augment")),
                         tokenizer, settings["max_length"], keep_text=bool(spec.get("parts", {}).get("smoothing")))
    val_ds = tokenized(validation_path, tokenizer, settings["max_length"])

    precision = device.precision(settings.get("precision", "auto"))
    args = training_arguments(settings, checkpoint_dir, seed)
    trainer = AdvTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=accuracy,
        **optimizer_choice(settings),
        **build_parts(spec.get("parts", {}), train_path=train_path, tokenizer=tokenizer,
                      max_length=settings["max_length"], epochs=settings["epochs"], resources=attack_resources,
                      store_dir=Path(checkpoint_dir) / "adversarial_examples"),
    )
    # CPU time, the machine's load and GPU time beside the wall time (Table 3 marks times measured under contention).
    job_timing = timing.attach(trainer)
    result, train_seconds, resume = train_resuming(trainer, checkpoint_dir)
    validation = trainer.evaluate()

    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    if trainer.smoothing is not None:
        # Beside the weights: evaluation and the attacks predict with the ensemble of the model it trained.
        trainer.smoothing.save(output_dir)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    metrics = {
        "seed": seed,
        "spec": spec,
        "device": str(device.device()),
        "precision": precision,
        "train_examples": len(train_ds),
        "num_labels": num_labels,
        "epochs": settings["epochs"],
        "steps": int(trainer.state.global_step),
        "wall_seconds": train_seconds,
        "trainer_runtime_seconds": float(result.metrics.get("train_runtime", train_seconds)),
        "train_loss": float(result.training_loss),
        "final_logged_loss": float(losses[-1]) if losses else None,
        "validation_accuracy": float(validation["eval_accuracy"]),
        "validation_loss": float(validation["eval_loss"]),
        "resumed_from": resume,
        "timing": job_timing.record,
    }
    if trainer.smoothing is not None:
        metrics["smoothing"] = trainer.smoothing.settings
    if trainer.input_adversary is not None:
        # Counts and generation/training seconds per epoch; the examples themselves go next to the final model.
        metrics["adversarial_input"] = trainer.input_adversary.summary(settings["epochs"])
        trainer.input_adversary.export(Path(output_dir) / "adversarial_examples")
    if trainer.flooding is not None:
        metrics["flooding"] = trainer.flooding.summary()  # the level used and, if chosen, the accordance trace
    if not keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def write_metrics(metrics: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, default=str) + "\n")


def optimizer_choice(settings: dict) -> dict:
    """``AdvTrainer``'s keyword arguments for ``train.optimizer`` and ``train.lr_schedule``."""
    return {"optimizer_name": settings.get("optimizer", "adamw_torch"),
            "lr_schedule": settings.get("lr_schedule", "linear")}


def training_arguments(settings: dict, checkpoint_dir: str | Path, seed: int) -> TrainingArguments:
    """The ``TrainingArguments`` every fine-tuning here uses: epoch checkpoints, no evaluation inside the timed loop."""
    precision = device.precision(settings.get("precision", "auto"))
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=settings.get("eval_batch_size", settings["batch_size"]),
        gradient_accumulation_steps=settings.get("gradient_accumulation_steps", 1),
        learning_rate=settings["learning_rate"],
        num_train_epochs=settings["epochs"],
        # A number of warm-up steps (TextAttack's num_warmup_steps, the AT-IP methods' 100) replaces the ratio.
        warmup_steps=settings.get("warmup_steps") or 0,
        warmup_ratio=0.0 if settings.get("warmup_steps") else settings.get("warmup_ratio", 0.0),
        weight_decay=settings.get("weight_decay", 0.0),
        # Hugging Face's defaults unless a method follows a reference trainer: TextAttack's eps 1e-6 and no clipping
        # (AT-IP), mt-dnn's eps 1e-6 and clipping at 1.0 (ALUM); docs/fidelity.md, grad-clipping and adam-epsilon.
        adam_epsilon=settings.get("adam_epsilon", 1e-8),
        max_grad_norm=settings.get("max_grad_norm", 1.0),  # 0: no clipping
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        tf32=True if precision == "tf32" else None,  # None: leave torch's default (fp32 matrix products)
        seed=seed,
        data_seed=seed,
        eval_strategy="no",  # evaluated once after training, so the timed loop is training only
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=0.02,  # a fraction of all steps: ~50 loss records whatever the run length
        report_to=[],
        dataloader_num_workers=settings.get("dataloader_workers", 0),
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
    )
