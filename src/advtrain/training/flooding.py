"""Flooding-X (Liu et al. 2022): flooding, J -> |J - b| + b, with the flood level b chosen by gradient accordance.

Flooding (Ishida et al. 2020) descends the training loss while it is above the level b and ascends it below, so the
loss floats around b instead of going to zero. Both reference repositories flood the mini-batch loss before the
backward pass (qinliu9/Flooding-X ``train/run_flood.py`` l. 170-173; PuReDefence/AdvBench4Text
``scripts/text_classification/run_flooding.py`` l. 565-573) with b fixed by hand per dataset; neither has code for
the accordance criterion, which only the paper describes ("measuring how the gradient steps taken within one epoch
affect the loss of each batch"). Our reading of it (docs/fidelity.md, ``flooding-accordance``):

- a step on batch s moves batch t's loss by -lr * g_s . g_t (first order), so the mean cosine between the step
  gradients of one window (an epoch unless ``window`` says otherwise), over pairs s != t, is the window's
  accordance: positive while the steps help each other's batches, <= 0 when on average they no longer do;
- b is the mean training loss of the first window whose accordance has fallen to ``threshold`` (0) or below from
  above it (an earlier window was above); flooding acts from the next step on. "Fallen from above": at the start
  the step gradients of a model at chance can disagree too (the tests' tiny BERT: -0.02 over its first epoch, loss
  0.696), and a level at the loss of chance stops training altogether. Until then the run is plain fine-tuning, which is what a separate preliminary run with the same
  seed would have been up to that point, so the train job chooses b itself (one job, no second run).

The mean pairwise cosine needs no stored gradients: with u_s = g_s / ||g_s|| and S = sum of the window's u_s,
sum over s != t of u_s . u_t = ||S||^2 - n, so one accumulator the size of the model is enough.
"""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from advtrain.config import schema_defaults

#: How b is chosen: ``fixed`` (the reference scripts: b by hand) or ``accordance`` (the paper's criterion).
SELECTIONS = ("fixed", "accordance")
#: The accordance settings' defaults, the schema's ``x-default`` values (``$defs/flooding``): b at the first window
#: with accordance <= 0, windows of one epoch (the paper's "gradient steps taken within one epoch").
DEFAULTS = schema_defaults("flooding", keyword="x-default")
#: ``state.log_history`` keys of a window's record (saved with each checkpoint, so a resumed run reads them back);
#: prefixed so that no reader of the history's ``loss`` entries mistakes them for the logged training loss.
LOG_KEYS = {"steps": "flooding_window_steps", "accordance": "flooding_accordance", "loss": "flooding_window_loss"}
LEVEL_KEY = "flood_level"


def flood(loss: torch.Tensor, level: float) -> torch.Tensor:
    """|loss - b| + b: the loss unchanged above b; below it, its mirror image (the gradient reversed)."""
    return (loss - level).abs() + level


def mean_pairwise_cosine(sum_sq_norm: float, n: int) -> float:
    """Mean cosine over the n(n-1) ordered pairs s != t of n unit vectors whose sum has squared norm ``sum_sq_norm``."""
    return (sum_sq_norm - n) / (n * (n - 1))


def resolve(settings: dict) -> dict:
    """The part's settings with defaults, or a ValueError naming the part's key (the schema stops these first)."""
    settings = {**DEFAULTS, **(settings or {})}
    select, level = settings.get("select"), settings.get("level")
    if select not in SELECTIONS:
        raise ValueError(f"flooding.select: {select!r} is not one of {', '.join(SELECTIONS)}")
    if select == "fixed" and not (isinstance(level, int | float) and level > 0):
        raise ValueError(f"flooding.level: select: fixed needs a flood level > 0, got {level!r}")
    if select == "accordance" and level is not None:
        raise ValueError("flooding.level: select: accordance chooses the level; set select: fixed to give it")
    window = settings["window"]
    if window is not None and not (isinstance(window, int) and window >= 2):
        raise ValueError(f"flooding.window: a window needs at least 2 optimizer steps, got {window!r}")
    if not -1 <= settings["threshold"] <= 1:
        raise ValueError(f"flooding.threshold: a cosine is in [-1, 1], got {settings['threshold']!r}")
    return settings


class Flooding(TrainerCallback):
    """The flooding part: ``apply`` floods the training loss (AdvTrainer.compute_loss); as a callback (``select:
    accordance``) it measures each window's accordance from the step gradients and sets the level once."""

    def __init__(self, settings: dict):
        self.settings = resolve(settings)
        self.select = self.settings["select"]
        self.level: float | None = self.settings.get("level") if self.select == "fixed" else None
        self.windows: list[dict] = []  # one record per closed window, until the level is chosen
        self.selected_at_step: int | None = None
        self._was_above = False  # a window above the threshold has been seen
        self._reset()

    @property
    def measuring(self) -> bool:
        return self.select == "accordance" and self.level is None

    def _reset(self):
        self._sum: list[torch.Tensor] | None = None
        self._steps = 0
        self._loss_sum = 0.0
        self._loss_count = 0

    def apply(self, loss: torch.Tensor) -> torch.Tensor:
        """The training objective under flooding; while the level is being chosen, the loss unchanged (recorded)."""
        if self.measuring:
            self._loss_sum = loss.detach().float() + self._loss_sum  # a tensor: no device sync per step
            self._loss_count += 1
        return loss if self.level is None else flood(loss, self.level)

    # ------------------------------------------------------------------ the callback (select: accordance)
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # A resumed run reads its closed windows (and the level, if chosen) back from the checkpoint's log history.
        self.windows = [{"step": e["step"], "epoch": e["epoch"], **{k: e[key] for k, key in LOG_KEYS.items()}}
                        for e in state.log_history if LOG_KEYS["accordance"] in e]
        chosen = [e for e in state.log_history if LEVEL_KEY in e]
        if chosen:
            self.level, self.selected_at_step = chosen[0][LEVEL_KEY], chosen[0]["step"]
        self._was_above = any(w["accordance"] > self.settings["threshold"] for w in self.windows)
        self._params = [p for p in model.parameters() if p.requires_grad] if model is not None else []
        self._reset()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        """Adds the step's unit gradient (after the backward passes of all its micro-batches) to the window's sum."""
        if not self.measuring:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        norm = float(torch.linalg.vector_norm(torch.stack([g.detach().float().norm() for g in grads])))
        if not math.isfinite(norm) or norm == 0.0:  # an overflowed (skipped) fp16 step has no direction
            return
        if self._sum is None:
            self._sum = [torch.zeros_like(g, dtype=torch.float32) for g in grads]
        torch._foreach_add_(self._sum, [g.detach().float() for g in grads], alpha=1.0 / norm)
        self._steps += 1

    def on_step_end(self, args, state, control, **kwargs):
        if self.measuring and self.settings["window"] and self._steps >= self.settings["window"]:
            self._close(state)

    def on_epoch_end(self, args, state, control, **kwargs):
        # Windows restart each epoch: an epoch-end checkpoint then holds no half-measured window.
        if self.measuring:
            self._close(state)
        self._reset()

    def _close(self, state):
        n = self._steps
        if n >= 2:
            sum_sq = float(sum(torch.sum(s.double() ** 2) for s in self._sum))
            record = {"step": int(state.global_step), "epoch": float(state.epoch or 0.0), "steps": n,
                      "accordance": mean_pairwise_cosine(sum_sq, n),
                      "loss": float(self._loss_sum) / max(self._loss_count, 1)}
            self.windows.append(record)
            entry = {"step": record["step"], "epoch": record["epoch"], **{key: record[k] for k, key in LOG_KEYS.items()}}
            if record["accordance"] > self.settings["threshold"]:
                self._was_above = True
            elif self._was_above:  # fallen to the threshold from above it
                self.level, self.selected_at_step = record["loss"], record["step"]
                entry[LEVEL_KEY] = self.level
            state.log_history.append(entry)  # saved with the checkpoint's trainer_state.json
        self._reset()

    def summary(self) -> dict:
        """For metrics.json: the level used (None: never chosen, plain fine-tuning) and each window's measurement."""
        out = {"select": self.select, "level": self.level}
        if self.select == "accordance":
            out.update(threshold=self.settings["threshold"], window=self.settings["window"] or "epoch",
                       selected_at_step=self.selected_at_step, windows=self.windows)
        return out


def build_flooding(settings: dict) -> Flooding:
    return Flooding(settings)
