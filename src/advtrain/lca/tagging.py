"""Fine-tune the encoder for POS tagging with a method's parts: the sentiment models' trainer, on tokens.

The same ``AdvTrainer`` and ``build_parts`` as sentiment fine-tuning (the embedding adversaries already handle
per-token logits and ignore labels of -100); only the head and the data differ. A word's tag is put on its first
sub-token, the others are ignored by the loss.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
from transformers import DataCollatorForTokenClassification, set_seed

from advtrain import device, models
from advtrain.lca.pos_data import read_sentences
from advtrain.training.finetune import build_parts, optimizer_choice, train_resuming, training_arguments
from advtrain.training.trainer import AdvTrainer

IGNORE = -100


def encode(sentences: list[dict], tokenizer, tag_to_id: dict[str, int], max_length: int) -> datasets.Dataset:
    """Tokenised sentences with labels on each word's first sub-token (the rest and special tokens: -100)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("POS tagging needs a fast tokenizer (word_ids maps sub-tokens to words)")

    def one_batch(batch):
        enc = tokenizer(batch["words"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels = []
        for i, tags in enumerate(batch["tags"]):
            previous, row = None, []
            for word in enc.word_ids(i):
                row.append(IGNORE if word is None or word == previous else tag_to_id.get(tags[word], IGNORE))
                previous = word
            labels.append(row)
        enc["labels"] = labels
        return enc

    ds = datasets.Dataset.from_list(sentences)
    return ds.map(one_batch, batched=True, remove_columns=["words", "tags"], desc="tokenising sentences")


def token_accuracy(eval_pred) -> dict:
    logits, labels = eval_pred
    keep = labels != IGNORE
    return {"accuracy": float((np.argmax(logits, axis=-1)[keep] == labels[keep]).mean())}


def fine_tune_tagger(model_path, train_path, test_path, tags: list[str], output_dir, checkpoint_dir, spec: dict,
                     seed: int) -> dict:
    """Train a token classifier over ``tags``, save it to ``output_dir``, return its metrics (test accuracy)."""
    settings = spec["train"]
    set_seed(seed)
    tag_to_id = {t: i for i, t in enumerate(tags)}
    # Words come split (is_split_into_words): a byte-level BPE tokenizer (GPT-2) takes them with add_prefix_space.
    model, tokenizer = models.load_classifier(model_path, head="token", split_words=True, num_labels=len(tags),
                                              id2label=dict(enumerate(tags)), label2id=tag_to_id)
    train_ds = encode(read_sentences(train_path), tokenizer, tag_to_id, settings["max_length"])
    test_ds = encode(read_sentences(test_path), tokenizer, tag_to_id, settings["max_length"])
    args = training_arguments(settings, checkpoint_dir, seed)
    trainer = AdvTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=test_ds,
                         data_collator=DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer,
                         compute_metrics=token_accuracy, **optimizer_choice(settings),
                         **build_parts(spec.get("parts", {})))
    result, seconds, resume = train_resuming(trainer, checkpoint_dir)
    test = trainer.evaluate()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return {
        "seed": seed, "spec": spec, "device": str(device.device()), "tags": len(tags),
        "train_sentences": len(train_ds), "steps": int(trainer.state.global_step), "wall_seconds": seconds,
        "train_loss": float(result.training_loss), "test_token_accuracy": float(test["eval_accuracy"]),
        "resumed_from": resume,
    }


def save_tags(tags: list[str], path: str | Path) -> None:
    Path(path).write_text("\n".join(tags) + "\n", encoding="utf-8")


def load_tags(path: str | Path) -> list[str]:
    return [t for t in Path(path).read_text(encoding="utf-8").splitlines() if t]
