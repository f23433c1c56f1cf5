"""The reference trainers' optimisation steps, restated from their sources (not from advtrain's code) for
tests/unit/test_optim.py and benchmarks/fidelity_i22_optim.py.

- TextAttack 0.3.8 ``textattack/trainer.py``: ``get_optimizer_and_scheduler`` (transformers' ``AdamW`` over two groups,
  ``no_decay = ["bias", "LayerNorm.bias", "LayerNorm.weight"]``, weight decay 0.01, ``get_linear_schedule_with_warmup``)
  and its loop: ``loss.backward()``, ``optimizer.step()``, ``scheduler.step()``, ``optimizer.zero_grad()``, no clipping.
  transformers' ``AdamW`` (``optimization.py``, 3.x-4.4x; TextAttack 0.3.8 requires transformers >= 4.21): eps 1e-6,
  ``correct_bias=True``.
- mt-dnn (namisan/mt-dnn, commit 682b9fb): ``module/bert_optim.py`` ``Adamax`` as ``mt_dnn/model.py`` builds it
  (``_get_param_groups``: no_decay ``['bias', 'gamma', 'beta', 'LayerNorm.bias', 'LayerNorm.weight']`` at 0.01, the
  rest at 0; ``max_grad_norm=--grad_clipping`` 0, ``warmup=0.1``, ``t_total`` the number of updates, ``schedule=
  'warmup_linear'`` of pytorch-pretrained-bert 0.6.0) and ``MTDNNModel.update``: ``loss.backward()``,
  ``clip_grad_norm_(network.parameters(), --global_grad_clipping 1.0)``, ``optimizer.step()``, ``zero_grad()``.
"""

from __future__ import annotations

import math

import torch
from torch.nn.utils import clip_grad_norm_
from torch.optim import Optimizer


# ------------------------------------------------------------------------------------------ TextAttack
class TransformersAdamW(Optimizer):
    """transformers.optimization.AdamW (before its removal), statement by statement."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))


def linear_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int):
    """transformers.get_linear_schedule_with_warmup."""
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step)
                   / float(max(1, num_training_steps - num_warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def textattack_train(model, batches, *, learning_rate, num_warmup_steps, weight_decay=0.01, num_training_steps=None):
    """TextAttack's Trainer on ``batches`` (dicts of model inputs with ``labels``): its optimiser and schedule, then
    one backward and step per batch (gradient accumulation 1). Returns the per-step gradient norms it never clips."""
    param_optimizer = list(model.named_parameters())
    no_decay = ["bias", "LayerNorm.bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in param_optimizer if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in param_optimizer if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = TransformersAdamW(groups, lr=learning_rate)
    scheduler = linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps or len(batches))
    model.train()
    norms = []
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        norms.append(float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return norms


# ------------------------------------------------------------------------------------------ mt-dnn
def warmup_linear(x, warmup=0.002):
    """pytorch-pretrained-bert 0.6.0 optimization.warmup_linear (mt-dnn's schedule_func('warmup_linear'))."""
    if x < warmup:
        return x / warmup
    return 1.0 - x


class MtdnnAdamax(Optimizer):
    """mt-dnn module/bert_optim.py Adamax, statement by statement (``add_(1 - beta1, grad)`` in today's signature)."""

    def __init__(self, params, lr, warmup=-1, t_total=-1, schedule="warmup_linear", betas=(0.9, 0.999), eps=1e-6,
                 weight_decay=0.01, max_grad_norm=1.0):
        super().__init__(params, dict(lr=lr, schedule=schedule, warmup=warmup, t_total=t_total, betas=betas, eps=eps,
                                      weight_decay=weight_decay, max_grad_norm=max_grad_norm))

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_inf"] = torch.zeros_like(p.data)
                exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                beta1, beta2 = group["betas"]
                eps = group["eps"]
                if group["max_grad_norm"] > 0:
                    clip_grad_norm_(p, group["max_grad_norm"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                norm_buf = torch.cat([exp_inf.mul_(beta2).unsqueeze(0), grad.abs().add_(eps).unsqueeze_(0)], 0)
                torch.max(norm_buf, 0, keepdim=False, out=(exp_inf, exp_inf.new().long()))
                update = exp_avg / (exp_inf + eps)
                if group["weight_decay"] > 0.0:
                    update += group["weight_decay"] * p.data
                if group["t_total"] != -1:
                    lr_scheduled = group["lr"] * warmup_linear(state["step"] / group["t_total"], group["warmup"])
                else:
                    lr_scheduled = group["lr"]
                p.data.add_(-(lr_scheduled * update))
                state["step"] += 1


def mtdnn_train(model, batches, *, learning_rate=5e-5, warmup=0.1, grad_clipping=0.0, global_grad_clipping=1.0,
                weight_decay=0.0, t_total=None):
    """mt-dnn's train.py defaults: MTDNNModel's groups and Adamax, then ``update`` per batch (accumulation 1).
    ``weight_decay`` is ``--weight_decay``, Adamax's default for groups without their own (both groups have one)."""
    no_decay = ["bias", "gamma", "beta", "LayerNorm.bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = MtdnnAdamax(groups, learning_rate, warmup=warmup, t_total=t_total or len(batches),
                            max_grad_norm=grad_clipping, schedule="warmup_linear", weight_decay=weight_decay)
    optimizer.zero_grad()
    model.train()
    norms = []
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        if global_grad_clipping > 0:
            norms.append(float(clip_grad_norm_(model.parameters(), global_grad_clipping)))
        optimizer.step()
        optimizer.zero_grad()
    return norms
