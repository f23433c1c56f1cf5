"""The optimisers and learning-rate schedule of the reference trainers, for ``AdvTrainer.create_optimizer``.

``train.optimizer`` picks one (docs/fidelity.md, rows ``adam-epsilon`` and ``alum-optimizer``):

- ``adamw_torch``: ``torch.optim.AdamW``, Hugging Face ``Trainer``'s default (the baseline's);
- ``adamw_hf``: transformers' own ``AdamW`` (removed in transformers 4.5x), which TextAttack's trainer builds: its
  epsilon is added to sqrt(v) before the bias correction, and the weight decay follows the step;
- ``adamax_mtdnn``: mt-dnn's ``Adamax`` (``module/bert_optim.py``): no bias correction, epsilon in the infinity
  norm and again in the denominator, the weight decay added to the update.

``train.lr_schedule: mtdnn`` is the schedule mt-dnn's ``Adamax`` computes from its step count (pytorch-pretrained-bert
0.6.0's ``warmup_linear``); ``linear`` is Hugging Face's (and TextAttack's) ``get_linear_schedule_with_warmup``.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

OPTIMIZERS = ("adamw_torch", "adamw_hf", "adamax_mtdnn")


class _Restated(Optimizer):
    """A reference optimiser restated: its defaults and a loop over the parameters with gradients, each with its
    state (step count and two moments, zero at the first step)."""

    second_moment = "exp_avg_sq"

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def _parameters(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), **{self.second_moment: torch.zeros_like(p)})
                yield group, p, state


class LegacyAdamW(_Restated):
    """transformers' ``AdamW`` (3.x-4.4x, ``correct_bias=True``), which TextAttack's ``Trainer`` builds with its
    default eps 1e-6. Differs from ``torch.optim.AdamW`` in two places: eps is added to sqrt(v) before the bias
    correction (at step t it acts as eps / sqrt(1 - beta2^t) in torch's form: 32x larger at the first step), and the
    decay ``p -= lr * wd * p`` comes after the step instead of before."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group, p, state in self._parameters():
            beta1, beta2 = group["betas"]
            state["step"] += 1
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
            denom = exp_avg_sq.sqrt().add_(group["eps"])
            step_size = group["lr"] * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
            p.addcdiv_(exp_avg, denom, value=-step_size)
            if group["weight_decay"] > 0.0:
                p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


class MtdnnAdamax(_Restated):
    """mt-dnn's ``Adamax`` (module/bert_optim.py, commit 682b9fb) with the learning rate its caller's schedule sets
    (``group["lr"]``, as :func:`mtdnn_schedule` computes it) and without its per-parameter clipping, which
    ``train.py`` leaves off (``--grad_clipping 0``; the global clipping is the Trainer's ``max_grad_norm``)."""

    second_moment = "exp_inf"

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group, p, state in self._parameters():
            beta1, beta2 = group["betas"]
            eps = group["eps"]
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
            torch.maximum(exp_inf.mul_(beta2), p.grad.abs().add_(eps), out=exp_inf)
            update = exp_avg / (exp_inf + eps)
            if group["weight_decay"] > 0.0:
                update += group["weight_decay"] * p
            p.add_(update, alpha=-group["lr"])
            state["step"] += 1
        return loss


def build_optimizer(name: str, groups: list[dict], lr: float, eps: float, betas=(0.9, 0.999)) -> Optimizer:
    """``name`` (one of :data:`OPTIMIZERS`) over parameter groups that carry their own weight decay."""
    if name == "adamw_torch":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    if name == "adamw_hf":
        return LegacyAdamW(groups, lr=lr, betas=betas, eps=eps)
    if name == "adamax_mtdnn":
        return MtdnnAdamax(groups, lr=lr, betas=betas, eps=eps)
    raise ValueError(f"train.optimizer: unknown optimizer {name!r} (one of {', '.join(OPTIMIZERS)})")


def mtdnn_schedule(total_steps: int, warmup_steps: float):
    """The factor mt-dnn's ``Adamax`` gives the learning rate before its step ``s`` (counted from 0):
    pytorch-pretrained-bert 0.6.0's ``warmup_linear(s / total, warmup)`` = s / (warmup * total) during the warm-up,
    then 1 - s / total (a drop to 1 - warmup after it; Hugging Face's linear schedule goes from 1 to 0 instead).
    ``warmup_steps`` may be a fraction of a step: mt-dnn's warm-up is a share of the steps, not rounded."""
    warmup = warmup_steps / max(1, total_steps)

    def factor(step: int) -> float:
        x = step / max(1, total_steps)
        return x / warmup if x < warmup else 1.0 - x

    return factor
