"""Adversarial training with perturbations in the embedding space: PGD-AT, LDS, ALUM, FreeLB and FreeLB++.

All three run one loop (Algorithm 1 of Altinisik et al. 2022; Algorithm 1 of Liu et al. 2020): draw a start
delta_0, take S ascent steps ``delta <- C(delta + mu * d(g))`` on ``ascent_divergence``, and return
``weight * divergence(f(x), f(x + delta))`` for the trainer to add to the clean loss. A method is a set of
settings (``DEFAULTS`` per ``kind``):

- ``perturb``: where delta is added: the word embeddings (``word_embeddings``: the paper's ``x + delta``, FreeLB)
  or the embedding layer's output, after position/type embeddings, LayerNorm and dropout (``embedding_output``:
  mt-dnn's ``embed_encode``). Either way a forward hook replaces that module's output, so any Hugging Face
  encoder with ``get_input_embeddings()`` (and, for ``embedding_output``, ``base_model.embeddings``) works;
- the start (``init``, ``init_std``): ``coordinate``: N(0, sigma^2) per coordinate (Algorithm 1 and mt-dnn read
  literally; the start's norm then grows with the square root of the number of tokens); ``sphere``: a random
  direction of norm sigma over each projection unit (VAT's start), the same whatever the sequence length;
- the step and the constraint C (``grad_norm``, ``step_size``, ``bound``, ``norm``, ``projection``, ``epsilon``):
  ``bound: ball`` projects onto ``||delta|| <= epsilon`` (the papers' Pi); ``bound: sphere`` rescales each unit to
  norm epsilon (mt-dnn's ``_norm_grad``: ``v / (||v|| + 1e-6)``, no clamp);
- the ascent (``ascent_divergence``, ``ascent_target``, ``ascent_dropout``) and the final term (``divergence``,
  ``detach_clean``, ``weight``);
- ``accumulate`` (FreeLB): the term is the mean of the divergence over the K perturbed forwards of the ascent
  itself (:func:`accumulate_ascent`), not one final forward; ``clean_weight`` scales the clean loss the trainer
  adds (FreeLB: 0, no clean term; the trainer then skips the clean forward when nothing reads its logits).

Adding a method (e.g. FreeLB) means one divergence function in ``_DIVERGENCES`` and one entry in ``DEFAULTS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
import torch.nn.functional as F

from advtrain.training.embedding_settings import (  # noqa: F401  (re-exported: the settings of a kind)
    ALUM_PAPER,
    ASCENT_TARGETS,
    BOUNDS,
    DEFAULTS,
    GRAD_NORMS,
    INITS,
    NORMS,
    PERTURB_SITES,
    PROJECTIONS,
)

# mt-dnn's `adv_epsilon` (train.py's default): in `_norm_grad` it only keeps the division finite.
_SPHERE_GUARD = 1e-6


def _cross_entropy(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None:
        raise ValueError("adversarial_embedding: the 'cross_entropy' divergence needs 'labels' in the inputs")
    flat = F.cross_entropy(adv.float().flatten(0, -2), labels.flatten(), reduction="none", ignore_index=-100)
    return flat.view(labels.shape)


def _kl(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """KL(softmax clean || softmax adv)."""
    log_p, log_q = F.log_softmax(clean.float(), -1), F.log_softmax(adv.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _symmetric_kl(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """KL(p || q) + KL(q || p), gradient through every term."""
    log_p, log_q = F.log_softmax(clean.float(), -1), F.log_softmax(adv.float(), -1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)


def _symmetric_kl_mtdnn(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """mt-dnn's SymKlCriterion: KL(sg(q) || p) + KL(sg(p) || q): each KL's weights are constants, so its gradient
    reaches only the distribution inside its log (the clean side through the first term, the adversarial side
    through the second). The value is the symmetric KL."""
    log_p, log_q = F.log_softmax(clean.float(), -1), F.log_softmax(adv.float(), -1)
    sg_p, sg_q = log_p.detach(), log_q.detach()
    return (sg_q.exp() * (sg_q - log_p)).sum(-1) + (sg_p.exp() * (sg_p - log_q)).sum(-1)


def _stable_kl(clean: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """mt-dnn's ``stable_kl(adv, clean)`` (loss.py): ``2 sum p (logit p - logit y)`` with p = softmax(adv),
    y = softmax(clean) and the log-odds detached; the gradient reaches adv through the weights p only."""
    p = F.log_softmax(adv.float(), -1).exp()
    y = F.log_softmax(clean.float(), -1).exp()
    rp = -(1.0 / (p + 1e-6) - 1 + 1e-6).detach().log()
    ry = -(1.0 / (y + 1e-6) - 1 + 1e-6).detach().log()
    return (p * (rp - ry) * 2).sum(-1)


# name -> loss per position ([B] for sequence, [B, T] for token classification), float32.
_DIVERGENCES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": _cross_entropy,
    "kl": _kl,
    "symmetric_kl": _symmetric_kl,
    "symmetric_kl_mtdnn": _symmetric_kl_mtdnn,
    "stable_kl": _stable_kl,
}


def _unit_dims(projection: str) -> tuple[int, ...]:
    return (-2, -1) if projection == "example" else (-1,)


def project(
    delta: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    norm: str = "l2",
    projection: str = "example",
    bound: str = "ball",
) -> torch.Tensor:
    """Constrain ``delta`` [B, T, H] and zero it at padding (``mask`` [B, T] == 0).

    ``bound="ball"``: project onto ``||delta|| <= epsilon`` (unchanged inside); ``"sphere"``: rescale each unit
    to ``epsilon * delta / (||delta|| + 1e-6)`` (mt-dnn's normalisation); ``"none"``: no constraint (FreeLB's
    ``adv-max-norm 0``).
    """
    delta = delta * mask.unsqueeze(-1).to(delta.dtype)
    dims = _unit_dims(projection)
    if bound == "sphere":
        size = delta.abs().amax(dim=dims, keepdim=True) if norm == "linf" else delta.norm(dim=dims, keepdim=True)
        return delta * (epsilon / (size + _SPHERE_GUARD))
    if bound == "none":
        return delta
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    length = delta.norm(dim=dims, keepdim=True)
    return delta * (epsilon / length.clamp_min(1e-12)).clamp(max=1.0)


def random_start(
    shape: tuple[int, ...], mask: torch.Tensor, init_std: float, init: str = "coordinate", projection: str = "example"
) -> torch.Tensor:
    """delta_0 [B, T, H], zero at padding: N(0, init_std^2) per coordinate (``coordinate``), a uniformly random
    direction of L2 norm ``init_std`` over each projection unit's valid coordinates (``sphere``), or FreeLB's
    U(-1, 1) per valid coordinate times ``init_std / sqrt(valid coordinates of the unit)`` (``uniform``)."""
    valid = mask.unsqueeze(-1).to(torch.float32)
    if init == "uniform":
        # TextDefender's delta_initial: the one draw is zeros_like(embedding).uniform_(-1, 1), so the random stream
        # (and, on CPU, every later dropout mask) is the reference's.
        noise = torch.zeros(shape, device=mask.device).uniform_(-1, 1) * valid
        dims = valid.expand(shape).sum(dim=_unit_dims(projection), keepdim=True)
        return noise * (init_std / dims.sqrt().clamp_min(1e-12))
    noise = torch.randn(shape, device=mask.device) * valid
    if init == "coordinate":
        return noise * init_std
    return noise * (init_std / noise.norm(dim=_unit_dims(projection), keepdim=True).clamp_min(1e-12))


def _direction(grad: torch.Tensor, grad_norm: str, norm: str, projection: str) -> torch.Tensor:
    if grad_norm == "none":
        return grad
    if grad_norm == "token_inf":
        return grad / grad.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    if norm == "linf":
        return grad.sign()
    return grad / grad.norm(dim=_unit_dims(projection), keepdim=True).clamp_min(1e-12)


def _step(delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, *, epsilon: float, step_size: float,
          norm: str, projection: str, grad_norm: str, bound: str) -> torch.Tensor:
    """One constrained ascent step of ``delta`` along ``grad`` (PGD's, LDS's, ALUM's and FreeLB's alike)."""
    # An fp16 overflow must not turn the perturbation, and with it the training loss, into NaN.
    grad = torch.nan_to_num(grad.float(), nan=0.0, posinf=0.0, neginf=0.0)
    step = step_size * _direction(grad, grad_norm, norm, projection)
    return project(delta.detach() + step, mask, epsilon, norm, projection, bound)


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
    init: str = "coordinate",
    bound: str = "ball",
) -> torch.Tensor:
    """Return the detached float32 perturbation [B, T, H] after ``steps`` constrained ascent steps.

    ``forward(delta)`` gives the logits of the perturbed input, ``objective(logits)`` the scalar to maximise.
    Only the gradient with respect to ``delta`` is taken (``torch.autograd.grad``), so no parameter ``.grad`` is
    touched and the backward pass skips the weight gradients.
    """
    delta = random_start((*mask.shape, hidden_size), mask, init_std, init, projection)
    if bound == "ball":
        # The start is projected as well, so the perturbation never leaves the ball (and eps = 0 means none).
        # mt-dnn's sphere leaves its start as drawn: only the steps are normalised.
        delta = project(delta, mask, epsilon, norm, projection)
    with torch.enable_grad():  # the caller may be under no_grad (e.g. evaluation)
        for _ in range(steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(forward(delta)), delta)
            delta = _step(delta, grad, mask, epsilon=epsilon, step_size=step_size, norm=norm, projection=projection,
                          grad_norm=grad_norm, bound=bound)
    return delta.detach()


def accumulate_ascent(
    loss_at: Callable[[torch.Tensor], torch.Tensor],
    mask: torch.Tensor,
    hidden_size: int,
    *,
    steps: int,
    epsilon: float,
    step_size: float,
    init_std: float,
    norm: str = "l2",
    projection: str = "example",
    grad_norm: str = "steepest",
    init: str = "uniform",
    bound: str = "none",
) -> torch.Tensor:
    """FreeLB's K = ``steps`` ascent steps as one loss: ``(1/K) sum_k loss_at(delta_k)``, every delta_k detached.

    ``loss_at(delta)`` is the batch loss of the perturbed input, with gradient to the parameters. The reference
    (TextDefender ``trainer/freelb.py``; zhuchen03/FreeLB ``run_glue_freelb.py``) backpropagates ``loss_k / K`` at
    each step, so the parameters' gradients accumulate, and moves delta along the same backward's gradient. Here
    each step takes only ``d loss_k / d delta`` (``retain_graph``) and the caller's one backward of the returned mean
    gives every parameter the same accumulated gradient: the trainer's ``compute_loss`` stays the one place a loss
    is made. The cost: the K graphs live until that backward (K forwards' activations at once), and each of the
    K - 1 delta gradients is an input-only backward beyond the reference's K full ones.
    """
    # FreeLB projects only the steps: its start (norm <= init_std) is used as drawn, whatever the bound.
    delta = random_start((*mask.shape, hidden_size), mask, init_std, init, projection)
    total = None
    with torch.enable_grad():
        for step in range(steps):
            delta.requires_grad_(True)
            loss = loss_at(delta)
            total = loss if total is None else total + loss
            if step == steps - 1:
                break  # the reference stops before the K-th update: no forward would use it
            (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
            delta = _step(delta, grad, mask, epsilon=epsilon, step_size=step_size, norm=norm, projection=projection,
                          grad_norm=grad_norm, bound=bound)
    return total / steps


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


class _Captured(Exception):
    """Stops a forward pass once the perturbed module has run: its output is all that is needed."""


class _Site(NamedTuple):
    """Where delta enters: the clean output of the perturbed module and a forward that replaces it."""

    base: torch.Tensor  # [B, T, H], with gradient to the embedding parameters
    mask: torch.Tensor  # [B, T], 0 at padding
    valid: torch.Tensor  # positions that count in the loss
    forward: Callable[[torch.Tensor], torch.Tensor]  # replacement output [B, T, H] -> logits


def _perturbed_module(model, perturb: str):
    inner = getattr(model, "module", model)  # Trainer may hand us a DistributedDataParallel wrapper
    if perturb == "word_embeddings":
        return inner, inner.get_input_embeddings()
    embeddings = getattr(getattr(inner, "base_model", inner), "embeddings", None)
    if not isinstance(embeddings, torch.nn.Module):
        raise ValueError(
            f"adversarial_embedding.perturb: 'embedding_output' needs a model whose base model has an "
            f"`embeddings` module (BERT, RoBERTa, MiniLM, ...); {type(inner).__name__} has none: use "
            f"'word_embeddings'"
        )
    return inner, embeddings


def _module_output(inner, module, kwargs) -> torch.Tensor:
    """The model's forward up to ``module``, stopped there; its output (mt-dnn's ``embed_encode``)."""
    seen = []

    def stop(_module, _args, output):
        seen.append(output)
        raise _Captured

    handle = module.register_forward_hook(stop)
    try:
        inner(**kwargs)
    except _Captured:
        pass
    finally:
        handle.remove()
    output = seen[0] if seen else None
    if not isinstance(output, torch.Tensor) or output.dim() != 3:
        raise ValueError(
            f"adversarial_embedding.perturb: {type(module).__name__} did not give one [batch, tokens, hidden] "
            f"tensor"
        )
    return output


@dataclass
class EmbeddingAdversary:
    """One embedding-space adversarial method; ``loss`` returns the term the trainer adds to the clean loss.

    Unset settings (``None``) take ``DEFAULTS[kind]``. Choices beyond the papers:

    - the ascent maximises the *sum over examples* of each example's loss (tokens averaged within an example), so
      every example takes exactly Algorithm 1's per-(x, y) step whatever the batch size; the returned term is the
      batch mean, like the clean loss;
    - ``grad_norm`` (see ``GRAD_NORMS``) defaults to ``"steepest"`` for pgd/lds (see ``_ALGORITHM_1``);
      ``"none"`` is Algorithm 1's raw step;
    - ``init``: pgd/lds start on the sphere of radius ``init_std`` (1e-3) per example, so the start's norm does
      not grow with the sequence length; ``coordinate`` is N(0, init_std^2) per coordinate;
    - ``ascent_dropout`` (default off for pgd/lds): the ascent steps run the network without dropout, so every
      step climbs the same function (with dropout each step would see new masks) and, on CPU, attention can use
      the fused kernel that dropout disables (about 0.3 s of a 1.2 s ascent step for MiniLM, 16 x 128, measured
      with benchmarks/embedding_at_speed.py). The final adversarial forward uses the model's own mode (dropout on
      in training). ALUM follows mt-dnn: dropout on in every forward;
    - ``ascent_target``: what the ascent's divergence compares the perturbed output with. LDS uses ``"ascent"``
      (the clean input run again in the ascent's mode, one forward without gradient: both sides of the ascent's
      KL come from the same function, as TRADES's ``model.eval()`` ascent does, so delta does not follow the
      training forward's dropout draw); ``"training"`` is the training forward's clean logits (mt-dnn, whose
      ascent runs with dropout too). The final term always compares with the training forward's clean logits;
    - ``detach_clean``: whether the clean logits get gradient from the final term. LDS keeps it (``False``);
      ALUM keeps it too, through mt-dnn's split symmetric KL (``symmetric_kl_mtdnn``). During the ascent the
      clean side is always constant;
    - ``accumulate`` (FreeLB): the ascent's K forwards are the term (:func:`accumulate_ascent`), with the
      model's dropout (``ascent_dropout`` true: TextDefender draws new masks at every step; zhuchen03/FreeLB
      reuses the first step's) and ``divergence`` for both the ascent and the term; ``clean_weight`` (FreeLB:
      0) scales the trainer's clean loss.
    """

    kind: str
    perturb: str | None = None
    steps: int | None = None
    epsilon: float | None = None
    step_size: float | None = None
    init: str | None = None
    init_std: float | None = None
    norm: str | None = None
    projection: str | None = None
    bound: str | None = None
    grad_norm: str | None = None
    divergence: str | None = None
    ascent_divergence: str | None = None
    ascent_target: str | None = None
    ascent_dropout: bool | None = None
    detach_clean: bool | None = None
    weight: float | None = None
    accumulate: bool | None = None
    clean_weight: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEFAULTS:
            raise ValueError(f"adversarial_embedding.kind: {self.kind!r} is not one of {tuple(DEFAULTS)}")
        for key, value in DEFAULTS[self.kind].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        choices = {
            "perturb": PERTURB_SITES,
            "init": INITS,
            "norm": NORMS,
            "projection": PROJECTIONS,
            "bound": BOUNDS,
            "grad_norm": GRAD_NORMS,
            "divergence": tuple(_DIVERGENCES),
            "ascent_divergence": tuple(_DIVERGENCES),
            "ascent_target": ASCENT_TARGETS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"adversarial_embedding.{key}: {getattr(self, key)!r} is not one of {allowed}"
                )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"adversarial_embedding.steps: must be an integer >= 0, got {self.steps!r}")
        for key in ("epsilon", "step_size", "init_std", "weight", "clean_weight"):
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
        for key in ("detach_clean", "ascent_dropout", "accumulate"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"adversarial_embedding.{key}: must be true or false, got {getattr(self, key)!r}"
                )
        if self.accumulate and self.steps < 1:
            raise ValueError("adversarial_embedding.steps: accumulate (FreeLB) averages the losses of `steps` "
                             "perturbed forwards, so it needs at least 1")
        if self.accumulate and self.ascent_divergence != self.divergence:
            raise ValueError(f"adversarial_embedding.ascent_divergence: with accumulate (FreeLB) each forward serves "
                             f"the ascent and the term, so it must be the divergence {self.divergence!r}, got "
                             f"{self.ascent_divergence!r}")

    @property
    def needs_clean_forward(self) -> bool:
        """Whether the trainer's clean forward is used: for the clean loss, or for a divergence that compares with
        the clean logits. FreeLB (cross-entropy, clean weight 0) does not need it."""
        return self.clean_weight > 0 or "cross_entropy" != self.divergence or (
            not self.accumulate and self.ascent_divergence != "cross_entropy")

    def perturbation(
        self, model, inputs: Mapping[str, torch.Tensor], clean_logits: torch.Tensor
    ) -> torch.Tensor:
        """The adversarial delta [B, T, H] (float32, detached) for this batch."""
        return self._perturb(model, inputs, clean_logits, self._site(model, inputs, clean_logits))

    def perturbed_logits(self, model, inputs: Mapping[str, torch.Tensor], delta: torch.Tensor) -> torch.Tensor:
        """The logits of the input with ``delta`` added where this method perturbs (the model in its current mode)."""
        site = self._site(model, inputs, torch.empty(inputs["input_ids"].shape[0], 0))
        return site.forward(site.base + delta.to(site.base.dtype))

    def loss(self, model, inputs: Mapping[str, torch.Tensor], clean_logits: torch.Tensor | None) -> torch.Tensor:
        """``weight * l(f(x), f(x + delta), y)`` averaged over the batch (valid tokens for token classification);
        with ``accumulate``, its mean over the ascent's K forwards. ``clean_logits`` may be None when
        :attr:`needs_clean_forward` is false."""
        site = self._site(model, inputs, clean_logits)
        if self.accumulate:
            return self.weight * self._accumulated(model, inputs, clean_logits, site)
        delta = self._perturb(model, inputs, clean_logits, site)
        # Non-detached base: the embedding parameters, like every other parameter, learn from this term.
        adv_logits = site.forward(site.base + delta.to(site.base.dtype))
        clean = clean_logits.detach() if self.detach_clean and clean_logits is not None else clean_logits
        divergence = _DIVERGENCES[self.divergence](clean, adv_logits, inputs.get("labels"))
        return self.weight * _reduce(divergence, site.valid)

    def _accumulated(self, model, inputs, clean_logits, site: _Site) -> torch.Tensor:
        divergence, labels = _DIVERGENCES[self.divergence], inputs.get("labels")
        clean = clean_logits.detach() if self.detach_clean and clean_logits is not None else clean_logits

        def loss_at(delta: torch.Tensor) -> torch.Tensor:
            # Non-detached base: as in the reference, every step's loss reaches the word embeddings' weights.
            logits = site.forward(site.base + delta.to(site.base.dtype))
            return _reduce(divergence(clean, logits, labels), site.valid)

        with _dropout(model, self.ascent_dropout):
            return accumulate_ascent(
                loss_at,
                site.mask,
                site.base.shape[-1],
                steps=self.steps,
                epsilon=self.epsilon,
                step_size=self.step_size,
                init_std=self.init_std,
                norm=self.norm,
                projection=self.projection,
                grad_norm=self.grad_norm,
                init=self.init,
                bound=self.bound,
            )

    def _perturb(self, model, inputs, clean_logits, site: _Site) -> torch.Tensor:
        divergence, labels = _DIVERGENCES[self.ascent_divergence], inputs.get("labels")
        # Detached base: the ascent needs only d loss / d delta.
        fixed = site.base.detach()
        with _dropout(model, self.ascent_dropout):
            target = None if clean_logits is None else clean_logits.detach()
            if self.ascent_target == "ascent" and self.ascent_divergence != "cross_entropy" and self.steps > 0:
                with torch.no_grad():
                    target = site.forward(fixed)
            return ascend(
                lambda delta: site.forward(fixed + delta.to(fixed.dtype)),
                lambda logits: _reduce(divergence(target, logits, labels), site.valid, per_example=True),
                site.mask,
                fixed.shape[-1],
                steps=self.steps,
                epsilon=self.epsilon,
                step_size=self.step_size,
                init_std=self.init_std,
                norm=self.norm,
                projection=self.projection,
                grad_norm=self.grad_norm,
                init=self.init,
                bound=self.bound,
            )

    def _site(self, model, inputs, clean_logits) -> _Site:
        input_ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(input_ids) if mask is None else mask
        kwargs = {"input_ids": input_ids}
        kwargs.update({k: inputs[k] for k in ("attention_mask", "token_type_ids") if inputs.get(k) is not None})
        inner, module = _perturbed_module(model, self.perturb)

        def forward(replacement: torch.Tensor) -> torch.Tensor:
            handle = module.register_forward_hook(lambda _module, _args, _output: replacement)
            try:
                return model(**kwargs).logits
            finally:
                handle.remove()

        # Positions that count: padding never does; neither do labels of -100. Token classification is told by
        # its [B, T, C] logits or, without a clean forward (FreeLB), by its [B, T] labels.
        labels = inputs.get("labels")
        per_token = clean_logits.dim() == 3 if clean_logits is not None else labels is not None and labels.dim() == 2
        valid = mask.bool() if per_token else torch.ones_like(input_ids[:, 0], dtype=torch.bool)
        if labels is not None:
            valid = valid & (labels != -100)
        return _Site(_module_output(inner, module, kwargs), mask, valid, forward)


def build_embedding_adversary(settings: Mapping | None) -> EmbeddingAdversary | None:
    """Build the adversary from a method's ``adversarial_embedding`` settings; missing keys take ``DEFAULTS``."""
    if settings is None:
        return None
    if not isinstance(settings, Mapping):
        raise ValueError(f"adversarial_embedding: expected a mapping, got {type(settings).__name__}")
    kind = settings.get("kind")
    if kind not in DEFAULTS:
        raise ValueError(f"adversarial_embedding.kind: {kind!r} is not one of {tuple(DEFAULTS)}")
    from advtrain.training import textdefender

    if kind in textdefender.KINDS:  # TAVAT, InfoBERT: TextDefender's trainers, their own settings
        return textdefender.build(settings)
    known = {f.name for f in fields(EmbeddingAdversary)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"adversarial_embedding.{unknown[0]}: unknown key (known: {sorted(known)})")
    return EmbeddingAdversary(**settings)
