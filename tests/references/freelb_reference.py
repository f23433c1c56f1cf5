"""FreeLB's training step as TextDefender runs it, restated from its source (not from advtrain's code) for
tests/unit/test_freelb.py and benchmarks/freelb_step_cost.py.

RockyLzy/TextDefender (HEAD 06a5068): ``trainer/freelb.py`` ``FreeLBTrainer.train`` (lines 41-80),
``trainer/gradient.py`` ``EmbeddingLevelGradientTrainer.delta_initial`` (58-73) and ``delta_update`` (75-96),
``trainer/base.py`` ``BaseTrainer.train_batch`` (80-90: gradients zeroed before each batch) and ``forward`` with
``utils/my_utils.py`` ``convert_batch_to_bert_input_dict`` (a 3-d first tensor goes in as ``inputs_embeds``), and
``main.py``'s loss ``CrossEntropyLoss(reduction='none')`` (line 695). The settings are the trainer's arguments
(``freelb.py`` lines 28-37): ``adv_steps`` K, ``adv_learning_rate``, ``adv_init_mag``, ``adv_max_norm`` (0: no
bound), ``adv_norm_type`` ("l2" here). zhuchen03/FreeLB ``huggingface-transformers/examples/run_glue_freelb.py``
(lines 223-304) is the same step except that it reuses the first step's dropout masks (``dp_masks``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def delta_initial(embedding: torch.Tensor, attention_mask: torch.Tensor, init_mag: float) -> torch.Tensor:
    """L2 start: U(-1, 1) on the valid tokens, times init_mag / sqrt(length x hidden) per example."""
    if init_mag <= 0:
        return torch.zeros_like(embedding)
    mask = attention_mask.to(embedding)
    delta = torch.zeros_like(embedding).uniform_(-1, 1) * mask.unsqueeze(2)
    magnitude = init_mag / torch.sqrt(mask.sum(1) * embedding.size(-1))
    return delta * magnitude.view(-1, 1, 1).detach()


def delta_update(delta: torch.Tensor, grad: torch.Tensor, adv_lr: float, max_norm: float) -> torch.Tensor:
    """L2 step: delta + adv_lr * g / ||g|| per example (||g|| at least 1e-8); then, if max_norm > 0, each example
    whose delta is longer than max_norm is rescaled to max_norm."""
    length = torch.clamp(torch.norm(grad.view(grad.size(0), -1), dim=1).view(-1, 1, 1), min=1e-8)
    delta = (delta + adv_lr * grad / length).detach()
    if max_norm > 0:
        norm = torch.norm(delta.view(delta.size(0), -1).float(), p=2, dim=1).detach()
        exceed = (norm > max_norm).to(delta)
        delta = (delta * (max_norm / norm * exceed + (1 - exceed)).view(-1, 1, 1)).detach()
    return delta


def freelb_step(model, input_ids, attention_mask, token_type_ids, labels, *, adv_steps: int, adv_lr: float,
                init_mag: float, max_norm: float):
    """One FreeLB batch up to (not including) clipping and the optimiser step: gradients zeroed, then K forwards of
    word embeddings + delta, each ``mean(CE) / K`` backpropagated (into the parameters and delta), delta moved after
    every step but the last. Returns (the summed loss, the K deltas used). The caller puts the model in train
    mode (TextDefender trains with dropout on)."""
    model.zero_grad()
    embeddings = model.get_input_embeddings()
    embedding_init = embeddings(input_ids)
    delta = delta_initial(embedding_init, attention_mask, init_mag)
    total, used = 0.0, []
    for step in range(adv_steps):
        delta.requires_grad_()
        used.append(delta.detach().clone())
        logits = model(inputs_embeds=delta + embedding_init, attention_mask=attention_mask,
                       token_type_ids=token_type_ids)[0]
        loss = torch.mean(F.cross_entropy(logits, labels.view(-1), reduction="none")) / adv_steps
        total += loss.item()
        loss.backward()
        if step == adv_steps - 1:
            break
        delta = delta_update(delta, delta.grad.clone().detach(), adv_lr, max_norm)
        embedding_init = embeddings(input_ids)  # the graph of the last one was freed by backward
    return total, used
