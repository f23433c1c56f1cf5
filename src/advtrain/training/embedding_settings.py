"""The settings of an ``adversarial_embedding`` part (PGD-AT, LDS, ALUM, FreeLB): each kind's defaults and the choices,
free of torch so that the start-up checks and the fidelity ledger (:mod:`advtrain.fidelity`) can read them. The
algorithm is :mod:`advtrain.training.embedding`.

The kinds are the keys of :data:`DEFAULTS`: adding one (e.g. FreeLB) is one entry there, its settings, plus a
divergence in ``advtrain.training.embedding._DIVERGENCES`` if it needs a new one.
"""

from __future__ import annotations

import math

NORMS = ("l2", "linf")
PROJECTIONS = ("example", "token")
# "none": Algorithm 1 as written (raw gradient times mu); "steepest": standard PGD, a step of length mu in the
# configured norm (l2: g / ||g|| over the projection unit, linf: sign g); "token_inf": ALUM, g / max|g| per token.
GRAD_NORMS = ("none", "steepest", "token_inf")
PERTURB_SITES = ("word_embeddings", "embedding_output")
# "uniform": FreeLB's start, U(-1, 1) per valid coordinate times init_std / sqrt(valid coordinates) per unit.
INITS = ("coordinate", "sphere", "uniform")
# "none": no constraint, only padding is kept at zero (FreeLB's `adv-max-norm 0`).
BOUNDS = ("ball", "sphere", "none")
# "training": the clean logits of the training forward (dropout on), the same tensor the final term compares with;
# "ascent": the clean input run again, without gradient, in the ascent's own mode (no dropout unless
# ascent_dropout), so that both sides of the ascent's divergence come from the same function (TRADES).
ASCENT_TARGETS = ("training", "ascent")

# The paper states S = 3 and an L2 bound of 0.003 for both PGD-AT and LDS; it gives neither sigma nor mu, so
# these are ours. A raw step mu * g (grad_norm "none") moves delta by mu * ||g||, and ||g|| on BERT's embeddings
# is small and varies with the batch; a normalised step of mu = eps / S reaches the bound in S steps whatever the
# gradient's scale. The start is a random direction of norm sigma = mu = eps / 3 per example: with N(0, sigma^2)
# per coordinate its norm would be sigma * sqrt(tokens * hidden), which at 256 x 768 with sigma = 1e-5 is 0.0044,
# already outside the ball, while at 16 tokens it is 0.0011.
_ALGORITHM_1 = {
    "perturb": "word_embeddings",
    "steps": 3,
    "epsilon": 0.003,
    "step_size": 1e-3,
    "init": "sphere",
    "init_std": 1e-3,
    "norm": "l2",
    "projection": "example",
    "bound": "ball",
    "grad_norm": "steepest",
    "ascent_target": "ascent",
    "ascent_dropout": False,
    "detach_clean": False,
    "weight": 1.0,
    "accumulate": False,
    "clean_weight": 1.0,
}

DEFAULTS: dict[str, dict] = {
    "pgd": {**_ALGORITHM_1, "divergence": "cross_entropy", "ascent_divergence": "cross_entropy"},
    # LDS keeps the clean side's gradient, as Algorithm 1's grad_theta l(f(x), f(x + delta)) and the paper's
    # Table 1 closed form require (TRADES does the same).
    "lds": {**_ALGORITHM_1, "divergence": "kl", "ascent_divergence": "kl"},
    # ALUM as mt-dnn's fine-tuning code runs it (mt_dnn/perturbation.py SmartPerturbation with train.py's
    # defaults, loss.py, matcher.py's embed_encode/embed_forward, model.py's update): delta ~ N(0, 1e-5^2) per
    # coordinate on the embedding layer's output; K = 1 step on stable_kl(f(x + delta), f(x)) (one-sided, its
    # log-odds detached) against the training forward's clean logits; delta <- v / (max_h |v| + 1e-6) per token
    # with v = delta + 1e-5 * g (no clamp: every token's perturbation has inf-norm ~1); dropout on throughout
    # (network.train()); final SymKlCriterion(clean, adv) = KL(sg(adv) || clean) + KL(sg(clean) || adv), alpha 1.
    "alum": {
        "perturb": "embedding_output",
        "steps": 1,
        "epsilon": 1.0,
        "step_size": 1e-5,
        "init": "coordinate",
        "init_std": 1e-5,
        "norm": "linf",
        "projection": "token",
        "bound": "sphere",
        "grad_norm": "none",
        "divergence": "symmetric_kl_mtdnn",
        "ascent_divergence": "stable_kl",
        "ascent_target": "training",
        "ascent_dropout": True,
        "detach_clean": False,
        "weight": 1.0,
        "accumulate": False,
        "clean_weight": 1.0,
    },
    # FreeLB (Zhu et al. 2020) as TextDefender runs it (RockyLzy/TextDefender trainer/freelb.py FreeLBTrainer.train,
    # trainer/gradient.py delta_initial / delta_update, defaults at freelb.py:28-37): delta_0 = U(-1, 1) on the valid
    # tokens' word embeddings times 0.05 / sqrt(tokens x hidden) per example; K = 5 forwards of x + delta_k with
    # dropout on, each loss / K backpropagated into the parameters (no clean term), delta_{k+1} = delta_k + 0.03 *
    # g / ||g|| per example, no norm bound (adv-max-norm 0). `steps` is K; the reference breaks before the K-th
    # update, which no forward would use.
    "freelb": {
        "perturb": "word_embeddings",
        "steps": 5,
        "epsilon": 0.0,
        "step_size": 0.03,
        "init": "uniform",
        "init_std": 0.05,
        "norm": "l2",
        "projection": "example",
        "bound": "none",
        "grad_norm": "steepest",
        "divergence": "cross_entropy",
        "ascent_divergence": "cross_entropy",
        "ascent_target": "training",
        "ascent_dropout": True,
        "detach_clean": False,
        "weight": 1.0,
        "accumulate": True,
        "clean_weight": 0.0,
    },
    # TextDefender's trainers (RockyLzy/TextDefender, advtrain.training.textdefender; docs/fidelity.md rows `tavat`,
    # `infobert`): their own keys. TAVAT: trainer/tavat.py:32-44 (--adv-steps 2, --adv-learning-rate 5e-2,
    # --adv-init-mag 2e-1, --adv-max-norm 5e-1, --use-global-embedding True).
    "tavat": {"steps": 2, "step_size": 5e-2, "init_mag": 2e-1, "max_norm": 5e-1, "token_memory": True},
    # InfoBERT: trainer/infobert.py:32-51 (--adv-steps 3, --adv-learning-rate 4e-2, --adv-init-mag 8e-2,
    # --adv-max-norm 0 = no bound, --alpha 5e-3, --beta 5e-3, --cl 0.5, --ch 0.9, --info-seed 42); the InfoNCE chunk is
    # its args.batch_size (args.py:71, 32).
    "infobert": {"steps": 3, "step_size": 4e-2, "init_mag": 8e-2, "max_norm": 0.0, "alpha": 5e-3, "beta": 5e-3,
                 "anchor_low": 0.5, "anchor_high": 0.9, "anchor_chunk": 32, "anchor_seed": 42},
}
# FreeLB++ (Li et al. 2021, TextDefender): FreeLB without the norm bound and with K = 10 steps.
DEFAULTS["freelb_plus"] = {**DEFAULTS["freelb"], "steps": 10}
#: The ``adversarial_embedding.kind`` values (the schema's enum; tests/repository/test_registries.py keeps them equal).
KINDS = tuple(DEFAULTS)

# ALUM as the paper's text reads (Liu et al. 2020, Algorithm 1 and section 4: K = 1, eps = 1e-5 in inf-norm,
# eta = 1e-3, sigma^2 = 1e-5, symmetric KL in the ascent and the final term) on the word embeddings, with the
# clean side detached as VAT/SMART's text does and the ascent without dropout: the `alum` default before
# mt-dnn's code was followed. Overrides of DEFAULTS["alum"]: `{kind: alum, **ALUM_PAPER}` in a method.
ALUM_PAPER: dict = {
    "perturb": "word_embeddings",
    "epsilon": 1e-5,
    "step_size": 1e-3,
    "init": "coordinate",
    "init_std": math.sqrt(1e-5),
    "bound": "ball",
    "grad_norm": "token_inf",
    "divergence": "symmetric_kl",
    "ascent_divergence": "symmetric_kl",
    "ascent_target": "training",
    "ascent_dropout": False,
    "detach_clean": True,
}
