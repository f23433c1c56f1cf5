"""TAVAT and InfoBERT as TextDefender's trainers run them (Li et al. 2021, RockyLzy/TextDefender: ``trainer/tavat.py``,
``trainer/infobert.py``, ``utils/info_regularizer.py``). The settings of each kind are
``advtrain.training.embedding_settings.DEFAULTS["tavat"]`` and ``["infobert"]``; docs/fidelity.md cites the lines.

Both are FreeLB-style: K forwards on perturbed word embeddings, each followed by a backward that gives the
perturbation's gradient (the next ascent step) *and* adds to the parameters' gradient, with no clean forward. The
update is the sum of the K steps' gradients (TAVAT: of K mean losses; InfoBERT: of K losses divided by K).

How the K gradients reach Hugging Face's one backward (the project extends the Trainer through ``compute_loss``): each
step takes the gradients of its loss with respect to the perturbation and the parameters in one
``torch.autograd.grad`` (the backward TextDefender runs there, no more), and the loss handed to the Trainer is
:meth:`_Gradients.carried`, a term of value 0 whose gradient is their sum, plus the value TextDefender logs. Cost per
batch: K forwards and K backwards, as TextDefender's; memory: one step's graph at a time and one copy of the
gradients. (FreeLB's accumulation is the same loop: see :class:`_Gradients`.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F


class _Gradients:
    """The parameters' gradients summed over the ascent steps, handed to the Trainer's backward as one term."""

    def __init__(self, model):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.sums: list[torch.Tensor | None] = [None] * len(self.params)

    def add(self, loss: torch.Tensor, extra: tuple = (), retain_graph: bool = False) -> tuple:
        """Add ``loss``'s parameter gradients to the sums; return its gradients with respect to ``extra``."""
        grads = torch.autograd.grad(loss, [*self.params, *extra], retain_graph=retain_graph, allow_unused=True)
        for i, grad in enumerate(grads[:len(self.params)]):
            if grad is not None:
                self.sums[i] = grad if self.sums[i] is None else self.sums[i] + grad
        return grads[len(self.params):]

    def carried(self, device) -> torch.Tensor:
        """A scalar of value 0 whose gradient with respect to each parameter is its summed gradient."""
        terms = [(p * g).sum() for p, g in zip(self.params, self.sums, strict=True) if g is not None]
        if not terms:
            return torch.zeros((), device=device, requires_grad=True)
        total = torch.stack(terms).sum()
        return total - total.detach()


def _forward(model, inputs: Mapping, embeddings: torch.Tensor, hidden_states: bool = False):
    """The model's outputs with its word embeddings' output replaced by ``embeddings`` (TextDefender passes
    ``inputs_embeds``; a hook keeps ``input_ids``, which decoder-only classifiers need to find their last token)."""
    module = getattr(model, "module", model).get_input_embeddings()
    handle = module.register_forward_hook(lambda _module, _args, _output: embeddings)
    kwargs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids") if inputs.get(k) is not None}
    try:
        return model(**kwargs, output_hidden_states=hidden_states)
    finally:
        handle.remove()


def _task_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """TextDefender's ``torch.mean(CrossEntropyLoss(reduction='none')(logits, labels))`` (main.py:695); positions
    labelled -100 (token classification) do not count."""
    if labels is None:
        raise ValueError("adversarial_embedding: TAVAT and InfoBERT need 'labels' in the inputs")
    return F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=-100)


def _uniform_start(embeddings: torch.Tensor, mask: torch.Tensor, magnitude: float) -> torch.Tensor:
    """FreeLB's L2 start (trainer/gradient.py:63-67, tavat.py:65-68, infobert.py:131-135): U(-1, 1) per coordinate
    of the valid tokens, times magnitude / sqrt(valid tokens x hidden) per example."""
    delta = torch.zeros_like(embeddings).uniform_(-1, 1) * mask.unsqueeze(2)
    scale = magnitude / torch.sqrt(mask.sum(1) * embeddings.size(-1))
    return (delta * scale.view(-1, 1, 1)).detach()


def _bound(delta: torch.Tensor, max_norm: float) -> torch.Tensor:
    """The factor [B, 1, 1] that brings each example's L2 norm down to ``max_norm`` (1 inside; 0 = no bound)."""
    if max_norm <= 0:
        return torch.ones_like(delta[:, :1, :1])
    norm = torch.norm(delta.reshape(delta.size(0), -1).float(), p=2, dim=1).detach()
    exceed = (norm > max_norm).to(delta)
    return (max_norm / norm * exceed + (1 - exceed)).view(-1, 1, 1)


def _per_example_step(delta: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
    denorm = torch.norm(grad.reshape(grad.size(0), -1), dim=1).clamp(min=1e-8).view(-1, 1, 1)
    return (delta + step_size * grad / denorm).detach()


def _positive_number(kind: str, key: str, value, minimum: float = 0.0) -> float:
    if isinstance(value, str):  # PyYAML reads "5e-2" (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ValueError(f"adversarial_embedding.{key}: must be a number >= {minimum} ({kind}), got {value!r}")
    return float(value)


def _steps(kind: str, value) -> int:
    # TextDefender's loop takes its parameter gradient from the K forwards: with none there is nothing to train on.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"adversarial_embedding.steps: must be an integer >= 1 ({kind}), got {value!r}")
    return value


@dataclass
class TokenAwareAdversary:
    """TAVAT (trainer/tavat.py): a per-example perturbation ``delta_lb`` plus a per-token one ``delta_tok`` read from a
    vocabulary-sized memory (``token_memory``; off: from the word embedding table itself), each step normalised per
    example and per token, the token part reweighted by each token's norm over the example's largest, the sum
    bounded by ``max_norm`` per example. The last step's ``delta_tok`` is added to the memory rows of its tokens."""

    kind: str = "tavat"
    steps: int = 2
    step_size: float = 5e-2
    init_mag: float = 2e-1
    max_norm: float = 5e-1
    token_memory: bool = True
    #: [vocabulary, hidden]: TextDefender's ``delta_global_embedding``, drawn at the first batch; kept across steps.
    memory: torch.Tensor | None = field(default=None, repr=False)
    #: The loss is the perturbed forwards' alone (``AdvTrainer.compute_loss`` runs no clean forward).
    replaces_loss: ClassVar[bool] = True

    def __post_init__(self):
        self.steps = _steps(self.kind, self.steps)
        for key in ("step_size", "init_mag", "max_norm"):
            setattr(self, key, _positive_number(self.kind, key, getattr(self, key)))
        if not isinstance(self.token_memory, bool):
            raise ValueError(f"adversarial_embedding.token_memory: must be true or false, got {self.token_memory!r}")

    def _memory(self, embedding: torch.nn.Module) -> torch.Tensor:
        """tavat.py:49-58: U(-1, 1) per coordinate times init_mag / sqrt(hidden)."""
        if self.memory is None:
            vocab, hidden = embedding.weight.shape
            table = torch.zeros([vocab, hidden]).uniform_(-1, 1) * (self.init_mag / math.sqrt(hidden))
            self.memory = table.to(embedding.weight.device)
        return self.memory

    def loss(self, model, inputs: Mapping[str, torch.Tensor], clean_logits=None) -> torch.Tensor:
        """The sum over the steps of the mean cross-entropy on the perturbed input (tavat.py:79-158, without its
        clipping and optimiser step, which are the Trainer's)."""
        embedding = getattr(model, "module", model).get_input_embeddings()
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = (torch.ones_like(ids) if mask is None else mask).float()
        embeds = embedding(ids)
        bs, seq_len, hidden = embeds.shape
        ids_flat = ids.contiguous().view(-1)
        # tavat.py:62-76: the token part is the memory's rows of the batch's tokens (padding included), divided by
        # their norm over the whole batch.
        table = self._memory(embedding) if self.token_memory else embedding.weight
        delta_lb = _uniform_start(embeds, mask, self.init_mag)
        delta_tok = torch.index_select(table, 0, ids_flat).view(bs, seq_len, -1).detach()
        delta_tok = delta_tok / torch.norm(delta_tok.reshape(-1, delta_tok.size(-1))).view(-1, 1, 1)
        gradients, value = _Gradients(model), torch.zeros((), device=embeds.device)
        for step in range(self.steps):
            last = step == self.steps - 1
            delta_lb.requires_grad_()
            delta_tok.requires_grad_()
            loss = _task_loss(_forward(model, inputs, embedding(ids) + delta_lb + delta_tok).logits,
                              inputs.get("labels"))
            value = value + loss.detach()
            if last:
                gradients.add(loss)
                if self.token_memory:
                    # TextDefender passes [B, T, H] values for B x T rows; torch 1.8 on CUDA read them flattened
                    # (pytorch/pytorch#39227, shapes checked since #66790): the same rows, summed per token id.
                    self.memory.index_put_((ids_flat,), delta_tok.detach().reshape(-1, hidden), True)
                break
            grad_lb, grad_tok = gradients.add(loss, (delta_lb, delta_tok))
            # tavat.py:129-138: a unit step per example (delta_lb) and per token (delta_tok).
            denorm_lb = torch.norm(grad_lb.reshape(bs, -1), dim=1).clamp(min=1e-8).view(bs, 1, 1)
            denorm_tok = torch.norm(grad_tok, dim=-1).clamp(min=1e-8).view(bs, seq_len, 1)
            delta_lb = (delta_lb + self.step_size * grad_lb / denorm_lb).detach()
            delta_tok = (delta_tok + self.step_size * grad_tok / denorm_tok).detach()
            # tavat.py:141-145: each token's part scaled by its norm over the example's largest.
            norm_tok = torch.norm(delta_tok, p=2, dim=-1).detach()
            delta_tok = delta_tok * (norm_tok / norm_tok.max(dim=-1, keepdim=True).values).view(bs, seq_len, 1)
            # tavat.py:147-155: the sum bounded per example, both parts by the same factor.
            factor = _bound(delta_tok + delta_lb, self.max_norm)
            delta_lb, delta_tok = (delta_lb * factor).detach(), (delta_tok * factor).detach()
        # The logged value is TextDefender's tr_loss: the steps' losses summed.
        return gradients.carried(value.device) + value


def _critic(hidden: int) -> torch.nn.Module:
    """utils/info_regularizer.py:45-52, InfoNCE's F_func on [local; global]."""
    return torch.nn.Sequential(torch.nn.Linear(2 * hidden, 300), torch.nn.ReLU(), torch.nn.Linear(300, 1),
                               torch.nn.Softplus())


def _infonce(critic: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """utils/info_regularizer.py:54-69: the InfoNCE lower bound of I(x; y) over the pairs (x_i, y_i)."""
    n = y.shape[0]
    torch.randint(n, (n,))  # drawn and unused there (line 57): drawn here too, so a seed gives the same CLUB pairs
    joint = critic(torch.cat([x, y], dim=-1))
    every = critic(torch.cat([x.unsqueeze(0).expand(n, n, -1), y.unsqueeze(1).expand(n, n, -1)], dim=-1))
    return joint.mean() - (every.logsumexp(dim=1).mean() - np.log(n))


@dataclass
class InfoBertAdversary:
    """InfoBERT (trainer/infobert.py): FreeLB's ascent (K steps of a per-example unit L2 step, no bound) whose every
    step's loss is ``CE / K + beta * CLUB / K``, where CLUB (utils/info_regularizer.py:13-21) is
    ``mean_i ||e_i - e_r(i)||^2 / 2`` over the valid tokens' embedding-layer outputs e (r: random), and, after the
    step's gradient, ``-alpha * InfoNCE / K`` between the anchored tokens' embedding-layer outputs and their
    sentence's last [CLS] state: the tokens whose gradient norm ranks in [anchor_low, anchor_high) of the sentence's.

    The InfoNCE critic is a fixed random MLP: TextDefender builds it in the trainer, outside the model that the
    optimiser updates (main.py:152-155, 507-518), so it never learns.
    """

    kind: str = "infobert"
    steps: int = 3
    step_size: float = 4e-2
    init_mag: float = 8e-2
    max_norm: float = 0.0
    alpha: float = 5e-3
    beta: float = 5e-3
    anchor_low: float = 0.5
    anchor_high: float = 0.9
    anchor_chunk: int = 32
    anchor_seed: int = 42
    #: InfoNCE's F_func, built (randomly, from torch's generator) at the first batch; never trained.
    critic: torch.nn.Module | None = field(default=None, repr=False)
    replaces_loss: ClassVar[bool] = True

    def __post_init__(self):
        self.steps = _steps(self.kind, self.steps)
        for key in ("step_size", "init_mag", "max_norm", "alpha", "beta", "anchor_low", "anchor_high"):
            setattr(self, key, _positive_number(self.kind, key, getattr(self, key)))
        if not self.anchor_low <= self.anchor_high <= 1:
            raise ValueError(f"adversarial_embedding.anchor_high: must lie in [anchor_low, 1], got {self.anchor_high}")
        for key, minimum in (("anchor_chunk", 1), ("anchor_seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"adversarial_embedding.{key}: must be an integer >= {minimum}, got {value!r}")

    def _anchors(self, grad: torch.Tensor, lengths: list[int]) -> list[list[int]]:
        """infobert.py:53-64 and 101-115: per sentence, its tokens ranked by the norm of delta's gradient, ascending;
        those from ceil(n * anchor_low) up to ceil(n * anchor_high) (exclusive)."""
        chosen = []
        for i, n in enumerate(lengths):
            _, order = torch.sort(torch.norm(grad[i, :n], dim=1))
            chosen.append(order[math.ceil(n * self.anchor_low):math.ceil(n * self.anchor_high)].tolist())
        return chosen

    def _anchored_term(self, hidden_states, anchors: list[list[int]]) -> torch.Tensor | None:
        """infobert.py:81-99: minus the mean InfoNCE over chunks of the (anchor, [CLS]) pairs, shuffled with
        sklearn's ``shuffle(random_state=info_seed)``."""
        embedded, sentences = hidden_states[0], hidden_states[-1][:, 0]
        pairs = [(i, t) for i, tokens in enumerate(anchors) for t in tokens]
        if not pairs:  # sentences of one token have no anchor (TextDefender would fail on an empty stack)
            return None
        order = np.arange(len(pairs))
        np.random.RandomState(self.anchor_seed).shuffle(order)  # sklearn.utils.shuffle -> resample(replace=False)
        rows = torch.tensor([pairs[k][0] for k in order], device=embedded.device)
        tokens = torch.tensor([pairs[k][1] for k in order], device=embedded.device)
        local, global_ = embedded[rows, tokens], sentences[rows]
        if self.critic is None:
            self.critic = _critic(embedded.size(-1)).to(embedded.device).requires_grad_(False)
        bounds = [_infonce(self.critic, local[i:i + self.anchor_chunk], global_[i:i + self.anchor_chunk])
                  for i in range(0, len(pairs), self.anchor_chunk)]
        return -torch.stack(bounds).mean()

    def loss(self, model, inputs: Mapping[str, torch.Tensor], clean_logits=None) -> torch.Tensor:
        """infobert.py:117-208 without its clipping and optimiser step (the Trainer's)."""
        embedding = getattr(model, "module", model).get_input_embeddings()
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = (torch.ones_like(ids) if mask is None else mask).float()
        lengths = [int(n) for n in mask.sum(-1).tolist()]  # infobert.py:67-69: the first `length` tokens
        embeds = embedding(ids)
        delta = _uniform_start(embeds, mask, self.init_mag) if self.init_mag > 0 else torch.zeros_like(embeds)
        gradients, value = _Gradients(model), torch.zeros((), device=embeds.device)
        for step in range(self.steps):
            delta.requires_grad_()
            outputs = _forward(model, inputs, embedding(ids) + delta, hidden_states=True)
            loss = _task_loss(outputs.logits, inputs.get("labels")) / self.steps
            value = value + loss.detach()
            # infobert.py:71-79, 157-160: CLUB over the valid tokens of the embedding layer's output.
            valid = torch.cat([outputs.hidden_states[0][i, :n] for i, n in enumerate(lengths)])
            pick = torch.randint(valid.shape[0], (valid.shape[0],))
            club = ((valid - valid[pick]) ** 2 / 2.0).sum(dim=-1).mean() * self.beta
            loss = loss + club / self.steps
            (grad,) = gradients.add(loss, (delta,), retain_graph=True)
            # infobert.py:165-171: after delta's gradient, which it does not enter.
            term = self._anchored_term(outputs.hidden_states, self._anchors(grad, lengths))
            if term is not None:
                gradients.add(term * self.alpha / self.steps)
            if step == self.steps - 1:
                break
            # infobert.py:178-186 (adv-norm-type l2).
            delta = _per_example_step(delta, grad, self.step_size)
            delta = (delta * _bound(delta, self.max_norm)).detach()
        # The logged value is TextDefender's tr_loss: the task loss, sum of CE / K.
        return gradients.carried(value.device) + value


#: The kinds this module implements: ``adversarial_embedding.kind`` -> class.
KINDS = {"tavat": TokenAwareAdversary, "infobert": InfoBertAdversary}


def build(settings: Mapping) -> TokenAwareAdversary | InfoBertAdversary:
    """The adversary of ``settings`` (its ``kind`` one of :data:`KINDS`); unset keys take the kind's defaults."""
    from dataclasses import fields

    from advtrain.training.embedding_settings import DEFAULTS

    cls = KINDS[settings["kind"]]
    known = {f.name for f in fields(cls)} - {"memory", "critic"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"adversarial_embedding.{unknown[0]}: unknown key for kind {settings['kind']!r} "
                         f"(known: {sorted(known)})")
    return cls(**{**DEFAULTS[settings["kind"]], **{k: v for k, v in settings.items() if v is not None}})
