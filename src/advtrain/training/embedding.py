"""Adversarial training with perturbations of the word embeddings: PGD-AT, LDS and ALUM.

All three follow Algorithm 1 of Altinisik et al. (2022): draw delta ~ N(0, sigma^2) on the word embeddings, take S
ascent steps ``delta <- Proj_{||delta|| <= eps}(delta + mu * g)`` and return ``weight * l(x + delta)`` to be added
to the clean loss by the trainer. They differ only in the loss ``l``:

- ``pgd``  (PGD-AT): cross-entropy of the perturbed prediction against the labels;
- ``lds``  (local distribution smoothness): KL(softmax f(x) || softmax f(x + delta));
- ``alum`` (Liu et al., 2020; SMART/mt-dnn): symmetric KL, gradient normalised per token by its inf-norm.

Adding a method (e.g. FreeLB) means one divergence function in ``_DIVERGENCES`` and one entry in ``DEFAULTS``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

NORMS = ("l2", "linf")
PROJECTIONS = ("example", "token")
# "none": Algorithm 1 as written (raw gradient times mu); "steepest": standard PGD, a step of length mu in the
# configured norm (l2: g / ||g|| over the projection unit, linf: sign g); "token_inf": ALUM, g / max|g| per token.
GRAD_NORMS = ("none", "steepest", "token_inf")

# The paper states S = 3 and an L2 bound of 0.003 for both PGD-AT and LDS; it gives neither sigma nor mu, so
# these are ours. A raw step mu * g (grad_norm "none") moves delta by mu * ||g||, and ||g|| on BERT's embeddings
# is small and varies with the batch; a normalised step of mu = eps / S reaches the bound in S steps whatever the
# gradient's scale.
_ALGORITHM_1 = {
    "steps": 3,
    "epsilon": 0.003,
    "step_size": 1e-3,
    "init_std": 1e-5,
    "norm": "l2",
    "projection": "example",
    "grad_norm": "steepest",
    "detach_clean": False,
    "ascent_dropout": False,
    "weight": 1.0,
}

DEFAULTS: dict[str, dict] = {
    "pgd": dict(_ALGORITHM_1),
    "lds": dict(_ALGORITHM_1),
    # ALUM fine-tuning: K = 1, eps = 1e-5 (inf-norm), eta = 1e-3, init variance 1e-5, alpha = 1.
    "alum": {
        "steps": 1,
        "epsilon": 1e-5,
        "step_size": 1e-3,
        "init_std": math.sqrt(1e-5),
        "norm": "linf",
        "projection": "token",
        "grad_norm": "token_inf",
        "detach_clean": True,
        "ascent_dropout": False,
        "weight": 1.0,
    },
}


def _cross_entropy(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None:
        raise ValueError("the 'pgd' embedding adversary needs 'labels' in the inputs")
    flat = F.cross_entropy(adv.float().flatten(0, -2), labels.flatten(), reduction="none", ignore_index=-100)
    return flat.view(labels.shape)


def _kl(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    log_p, log_q = F.log_softmax(clean.float(), -1), F.log_softmax(adv.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _symmetric_kl(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    log_p, log_q = F.log_softmax(clean.float(), -1), F.log_softmax(adv.float(), -1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)


# kind -> loss per position ([B] for sequence, [B, T] for token classification), float32.
_DIVERGENCES: dict[str, Callable[..., torch.Tensor]] = {
    "pgd": _cross_entropy,
    "lds": _kl,
    "alum": _symmetric_kl,
}


def project(
    delta: torch.Tensor, mask: torch.Tensor, epsilon: float, norm: str = "l2", projection: str = "example"
) -> torch.Tensor:
    """Project ``delta`` [B, T, H] onto the eps-ball and zero it at padding (``mask`` [B, T] == 0)."""
    delta = delta * mask.unsqueeze(-1).to(delta.dtype)
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    dims = (-2, -1) if projection == "example" else (-1,)
    length = delta.norm(dim=dims, keepdim=True)
    return delta * (epsilon / length.clamp_min(1e-12)).clamp(max=1.0)


def _direction(grad: torch.Tensor, grad_norm: str, norm: str, projection: str) -> torch.Tensor:
    if grad_norm == "none":
        return grad
    if grad_norm == "token_inf":
        return grad / grad.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    if norm == "linf":
        return grad.sign()
    dims = (-2, -1) if projection == "example" else (-1,)
    return grad / grad.norm(dim=dims, keepdim=True).clamp_min(1e-12)


def ascend(
    forward: Callable[[torch.Tensor], torch.Tensor],
    objective: Callable[[torch.Tensor], torch.Tensor],
    mask: torch.Tensor,
    hidden_size: int,
    *,
    steps: int,
    epsilon: float,
    step_size: float,
    init_std: float,
    norm: str = "l2",
    projection: str = "example",
    grad_norm: str = "none",
) -> torch.Tensor:
    """Return the detached float32 perturbation [B, T, H] after ``steps`` projected ascent steps.

    ``forward(delta)`` gives the logits of the perturbed input, ``objective(logits)`` the scalar to maximise.
    Only the gradient with respect to ``delta`` is taken (``torch.autograd.grad``), so no parameter ``.grad`` is
    touched and the backward pass skips the weight gradients.
    """
    shape = (*mask.shape, hidden_size)
    # The random start is projected as well, so the perturbation never leaves the ball (and eps = 0 means none).
    delta = project(torch.randn(shape, device=mask.device) * init_std, mask, epsilon, norm, projection)
    with torch.enable_grad():  # the caller may be under no_grad (e.g. evaluation)
        for _ in range(steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(forward(delta)), delta)
            # An fp16 overflow must not turn the perturbation, and with it the training loss, into NaN.
            grad = torch.nan_to_num(grad.float(), nan=0.0, posinf=0.0, neginf=0.0)
            step = step_size * _direction(grad, grad_norm, norm, projection)
            delta = project(delta.detach() + step, mask, epsilon, norm, projection)
    return delta.detach()


def _reduce(values: torch.Tensor, valid: torch.Tensor, per_example: bool = False) -> torch.Tensor:
    """Mean over valid positions of the batch, or (``per_example``) the sum over examples of their means."""
    valid = valid.to(values.dtype)
    values = values * valid
    if not per_example:
        return values.sum() / valid.sum().clamp_min(1.0)
    if values.dim() == 1:
        return values.sum()
    return (values.sum(-1) / valid.sum(-1).clamp_min(1.0)).sum()


@contextlib.contextmanager
def _dropout(model, enabled: bool):
    """Dropout on or off for the ascent steps; every module's own train/eval flag is restored afterwards."""
    if enabled:
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@dataclass
class EmbeddingAdversary:
    """One embedding-space adversarial method; ``loss`` returns the term the trainer adds to the clean loss.

    Choices beyond the paper (the paper leaves them open):

    - the ascent maximises the *sum over examples* of each example's loss (tokens averaged within an example), so
      every example takes exactly Algorithm 1's per-(x, y) step whatever the batch size; the returned term is the
      batch mean, like the clean loss;
    - ``grad_norm`` (see ``GRAD_NORMS``) defaults to ``"steepest"`` for pgd/lds (see ``_ALGORITHM_1``);
      ``"none"`` is Algorithm 1's raw step;
    - ``ascent_dropout`` (default off): the ascent steps run the network without dropout, so every step climbs
      the same function (with dropout each step would see new masks) and, on CPU, attention can use the fused
      kernel that dropout disables (about 0.3 s of a 1.2 s ascent step for MiniLM, 16 x 128, measured with
      benchmarks/embedding_at_speed.py). The final adversarial forward uses the model's own mode (dropout on in
      training);
    - ``detach_clean``: whether the clean logits get gradient from the final term. LDS keeps it (``False``), as
      Algorithm 1's ``grad_theta l(f(x), f(x + delta))`` and the paper's Table 1 closed form require; ALUM detaches
      the clean side (``True``) like VAT/SMART. During the ascent the clean side is always constant.
    """

    kind: str
    steps: int = 3
    epsilon: float = 0.003
    step_size: float = 1e-3
    init_std: float = 1e-5
    norm: str = "l2"
    projection: str = "example"
    grad_norm: str = "steepest"
    detach_clean: bool = False
    ascent_dropout: bool = False
    weight: float = 1.0

    def __post_init__(self) -> None:
        choices = {
            "kind": tuple(_DIVERGENCES),
            "norm": NORMS,
            "projection": PROJECTIONS,
            "grad_norm": GRAD_NORMS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"adversarial_embedding.{key}: {getattr(self, key)!r} is not one of {allowed}"
                )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"adversarial_embedding.steps: must be an integer >= 0, got {self.steps!r}")
        for key in ("epsilon", "step_size", "init_std", "weight"):
            value = getattr(self, key)
            if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
                try:
                    value = float(value)
                except ValueError:
                    value = None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(
                    f"adversarial_embedding.{key}: must be a number >= 0, got {getattr(self, key)!r}"
                )
            setattr(self, key, float(value))
        for key in ("detach_clean", "ascent_dropout"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"adversarial_embedding.{key}: must be true or false, got {getattr(self, key)!r}"
                )

    def perturbation(
        self, model, inputs: Mapping[str, torch.Tensor], clean_logits: torch.Tensor
    ) -> torch.Tensor:
        """The adversarial delta [B, T, H] (float32, detached) for this batch."""
        return self._perturb(model, inputs, clean_logits, *self._context(model, inputs, clean_logits))

    def loss(self, model, inputs: Mapping[str, torch.Tensor], clean_logits: torch.Tensor) -> torch.Tensor:
        """``weight * l(f(x), f(x + delta), y)`` averaged over the batch (valid tokens for token classification)."""
        context = self._context(model, inputs, clean_logits)
        delta = self._perturb(model, inputs, clean_logits, *context)
        embeds, _, valid, forward = context
        # Non-detached embeddings: the embedding matrix, like every other parameter, learns from this term.
        adv_logits = forward(embeds + delta.to(embeds.dtype))
        clean = clean_logits.detach() if self.detach_clean else clean_logits
        return self.weight * _reduce(_DIVERGENCES[self.kind](clean, adv_logits, inputs.get("labels")), valid)

    def _perturb(self, model, inputs, clean_logits, embeds, mask, valid, forward) -> torch.Tensor:
        divergence, labels, clean = _DIVERGENCES[self.kind], inputs.get("labels"), clean_logits.detach()
        # Detached embeddings: the ascent needs only d loss / d delta.
        fixed = embeds.detach()
        with _dropout(model, self.ascent_dropout):
            return ascend(
                lambda delta: forward(fixed + delta.to(fixed.dtype)),
                lambda logits: _reduce(divergence(clean, logits, labels), valid, per_example=True),
                mask,
                embeds.shape[-1],
                steps=self.steps,
                epsilon=self.epsilon,
                step_size=self.step_size,
                init_std=self.init_std,
                norm=self.norm,
                projection=self.projection,
                grad_norm=self.grad_norm,
            )

    @staticmethod
    def _context(model, inputs, clean_logits):
        input_ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(input_ids) if mask is None else mask
        extra = {k: inputs[k] for k in ("attention_mask", "token_type_ids") if inputs.get(k) is not None}

        def forward(inputs_embeds: torch.Tensor) -> torch.Tensor:
            return model(inputs_embeds=inputs_embeds, **extra).logits

        # Trainer may hand us a DistributedDataParallel wrapper.
        embeds = getattr(model, "module", model).get_input_embeddings()(input_ids)
        # Positions that count: padding never does; neither do labels of -100.
        valid = mask.bool() if clean_logits.dim() == 3 else torch.ones_like(input_ids[:, 0], dtype=torch.bool)
        labels = inputs.get("labels")
        if labels is not None:
            valid = valid & (labels != -100)
        return embeds, mask, valid, forward


def build_embedding_adversary(settings: Mapping | None) -> EmbeddingAdversary | None:
    """Build the adversary from a method's ``adversarial_embedding`` settings; missing keys take ``DEFAULTS``."""
    if settings is None:
        return None
    if not isinstance(settings, Mapping):
        raise ValueError(f"adversarial_embedding: expected a mapping, got {type(settings).__name__}")
    kind = settings.get("kind")
    if kind not in DEFAULTS:
        raise ValueError(f"adversarial_embedding.kind: {kind!r} is not one of {tuple(DEFAULTS)}")
    known = {f.name for f in fields(EmbeddingAdversary)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"adversarial_embedding.{unknown[0]}: unknown key (known: {sorted(known)})")
    return EmbeddingAdversary(**{**DEFAULTS[kind], **settings})
