"""Reference algorithms of the embedding-space adversaries, restated from their sources (not from advtrain's code)
for tests/unit/test_embedding.py and benchmarks/fidelity_embedding.py.

- Algorithm 1 of Altinisik et al. (2022), read literally: delta ~ N(0, sigma^2) per coordinate;
- VAT (Miyato et al., ``vat.py``): the start ``xi * get_normalized_vector(d)``, d ~ N(0, I), per example;
- TRADES (Zhang et al. 2019, ``trades.py``): the KL ascent under ``model.eval()`` against ``model(x_natural)``;
- mt-dnn (namisan/mt-dnn, ``mt_dnn/perturbation.py`` SmartPerturbation with ``train.py``'s defaults,
  ``mt_dnn/loss.py`` stable_kl and SymKlCriterion, ``mt_dnn/matcher.py`` embed_encode / embed_forward as of
  commit 682b9fb, before ``y_input_ids`` shifted the positional arguments that SmartPerturbation passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def algorithm1_start(shape, sigma: float) -> torch.Tensor:
    """delta ~ N(0, sigma^2), every coordinate."""
    return torch.randn(shape) * sigma


def vat_start(shape, mask: torch.Tensor, xi: float) -> torch.Tensor:
    """VAT: d = xi * d / ||d|| per example (here over the valid tokens' coordinates)."""
    d = torch.randn(shape) * mask[..., None].float()
    return xi * d / d.flatten(1).norm(dim=-1)[:, None, None]


def trades_l2_ascent(forward, embeddings, mask, start, *, steps, step_size, epsilon):
    """TRADES's ascent with Algorithm 1's steepest L2 steps: the model in eval mode on both sides of the KL
    (``nn.KLDivLoss(size_average=False)``, a sum), delta projected per example. ``forward(embeddings)`` gives the
    logits; the caller puts the model in eval mode."""
    mask = mask[..., None].float()
    with torch.no_grad():
        target = F.softmax(forward(embeddings), -1)
    d = start
    for _ in range(steps):
        d = d.detach().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(forward(embeddings + d), -1), target, reduction="sum")
        (g,) = torch.autograd.grad(kl, d)
        d = d.detach() + step_size * g / g.flatten(1).norm(dim=-1)[:, None, None]
        d = d * mask * (epsilon / d.flatten(1).norm(dim=-1)).clamp(max=1.0)[:, None, None]
    return d.detach()


def stable_kl(logit, target, epsilon=1e-6, reduce=True):
    """mt_dnn/loss.py stable_kl, verbatim."""
    logit = logit.view(-1, logit.size(-1)).float()
    target = target.view(-1, target.size(-1)).float()
    bs = logit.size(0)
    p = F.log_softmax(logit, 1).exp()
    y = F.log_softmax(target, 1).exp()
    rp = -(1.0 / (p + epsilon) - 1 + epsilon).detach().log()
    ry = -(1.0 / (y + epsilon) - 1 + epsilon).detach().log()
    if reduce:
        return (p * (rp - ry) * 2).sum() / bs
    return (p * (rp - ry) * 2).sum()


def sym_kl_criterion(input, target):
    """mt_dnn/loss.py SymKlCriterion.forward (alpha 1, batchmean), verbatim."""
    input, target = input.float(), target.float()
    return F.kl_div(
        F.log_softmax(input, dim=-1, dtype=torch.float32),
        F.softmax(target.detach(), dim=-1, dtype=torch.float32),
        reduction="batchmean",
    ) + F.kl_div(
        F.log_softmax(target, dim=-1, dtype=torch.float32),
        F.softmax(input.detach(), dim=-1, dtype=torch.float32),
        reduction="batchmean",
    )


def mtdnn_norm_grad(delta_grad, epsilon=1e-6):
    """SmartPerturbation._norm_grad, norm_p "inf", token level (norm_level 0)."""
    return delta_grad / (delta_grad.abs().max(-1, keepdim=True)[0] + epsilon)


def mtdnn_smart_perturbation(embed_encode, embed_forward, logits, *, noise_var=1e-5, step_size=1e-5, k=1,
                             epsilon=1e-6):
    """SmartPerturbation.forward for classification with train.py's defaults (adv_noise_var 1e-5, adv_step_size
    1e-5, adv_epsilon 1e-6, adv_k 1, adv_p_norm inf, adv_norm_level 0) and the task's SymKlCriterion.
    Returns (noise, adv_loss)."""
    embed = embed_encode()
    noise = embed.data.new(embed.size()).normal_(0, 1) * noise_var
    noise.requires_grad_()
    for _ in range(k):
        adv_logits = embed_forward(embed + noise)
        adv_loss = stable_kl(adv_logits, logits.detach(), reduce=False)
        (delta_grad,) = torch.autograd.grad(adv_loss, noise, only_inputs=True, retain_graph=False)
        delta_grad = noise + delta_grad * step_size
        noise = mtdnn_norm_grad(delta_grad, epsilon).detach()
        noise.requires_grad_()
    adv_logits = embed_forward(embed + noise)
    return noise.detach(), sym_kl_criterion(logits, adv_logits)


def bert_matcher(model, input_ids, token_type_ids, attention_mask):
    """mt-dnn's embed_encode and embed_forward for a Hugging Face ``BertForSequenceClassification``: the
    embedding layer's output, and the encoder + pooler + classifier on a given embedding output."""
    extended = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0

    def embed_encode():
        return model.bert.embeddings(input_ids, token_type_ids)

    def embed_forward(embed):
        hidden = model.bert.encoder(embed, attention_mask=extended)[0]
        return model.classifier(model.dropout(model.bert.pooler(hidden)))

    return embed_encode, embed_forward
