"""Flooding-X restated from its sources (not from advtrain's code) for tests/unit/test_flooding.py.

- The training loop of qinliu9/Flooding-X ``train/run_flood.py`` (commit 6498878), l. 137-176: transformers' AdamW
  (``correct_bias=True``, eps 1e-8) over two groups (weight decay on all but ``bias`` and ``LayerNorm.weight``), the
  linear schedule with warm-up of l. 77-92 (warm-up ``num_training_steps * warmup_ratio``), no gradient clipping,
  and per batch: ``loss = F.cross_entropy(logits, labels)``; ``flood = abs(loss - args.b) + args.b``;
  ``flood.backward()``. AdvBench4Text's ``run_flooding.py`` l. 565-573 floods the same way.
- The accordance, as the paper defines it in words (no reference code has it): the mean over pairs of different
  steps s != t of one window of cos(g_s, g_t), g the gradient a step applies, computed here from the stored
  gradients pair by pair.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from optim_references import TransformersAdamW  # transformers' former AdamW, restated


def run_flood_loop(model, batch: dict, *, b: float | None, steps: int, lr: float, weight_decay: float = 0.01,
                   warmup_ratio: float = 0.1) -> tuple[dict, list[float], list[torch.Tensor]]:
    """``steps`` steps of run_flood.py's loop on the same batch (b None: no flooding, its baseline run_glue.py).
    Returns the parameters, each step's cross-entropy and each step's flattened gradient."""
    no_decay = ["bias", "LayerNorm.weight"]
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0}]
    optimizer = TransformersAdamW(groups, lr=lr, eps=1e-8, correct_bias=True)
    warmup = steps * warmup_ratio

    def lr_lambda(step):  # run_flood.py l. 85-90
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(steps - step) / float(max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    losses, grads = [], []
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.train()
    for _ in range(steps):
        model.zero_grad()
        logits = model(**inputs).logits
        loss = F.cross_entropy(logits, labels.squeeze(-1))
        objective = abs(loss - b) + b if b is not None else loss
        objective.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for _, p in named if p.grad is not None]).clone())
        optimizer.step()
        scheduler.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}, losses, grads


def accordance(grads: list[torch.Tensor]) -> float:
    """Mean cosine between the gradients of different steps, pair by pair."""
    cosines = [float(F.cosine_similarity(a.double(), b.double(), dim=0))
               for a, b in itertools.permutations(grads, 2)]
    return sum(cosines) / len(cosines)
