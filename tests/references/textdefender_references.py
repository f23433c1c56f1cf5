"""TextDefender's TAVAT and InfoBERT training steps, restated from its code (RockyLzy/TextDefender, HEAD 06a5068:
``trainer/tavat.py``, ``trainer/infobert.py``, ``utils/info_regularizer.py``, ``trainer/base.py``), not from advtrain's,
for tests/unit/test_textdefender.py.

Kept as written, with these changes only: ``self.forward(args, batch)`` is ``model(inputs_embeds=..., attention_mask=...,
token_type_ids=...)`` (trainer/base.py:104-109 with utils/my_utils.py:110-133) on a model whose config has
``output_hidden_states=True`` (main.py:588-596); the clipping and optimiser step at the end are left out (the caller
reads the parameters' ``.grad``); TAVAT's memory update reshapes its values to [B x T, H] (torch 1.8 on CUDA read the
[B, T, H] tensor so; current torch rejects the shape).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
from sklearn.utils import shuffle

TAVAT_ARGS = SimpleNamespace(adv_steps=2, adv_learning_rate=5e-2, adv_init_mag=2e-1, adv_max_norm=5e-1,
                             use_global_embedding=True)
INFOBERT_ARGS = SimpleNamespace(adv_steps=3, adv_learning_rate=4e-2, adv_init_mag=8e-2, adv_max_norm=0,
                                adv_norm_type="l2", alpha=5e-3, beta=5e-3, cl=0.5, ch=0.9, info_seed=42,
                                batch_size=32)


def _forward(model, batch):
    return model(inputs_embeds=batch[0], attention_mask=batch[1], token_type_ids=batch[2])


def _loss_function(logits, labels):
    return nn.CrossEntropyLoss(reduction="none")(logits, labels)


# ------------------------------------------------------------------------------------------ TAVAT
def tavat_memory(args, model):
    """TokenAwareVirtualAdversarialTrainer.delta_embedding_init (tavat.py:49-58)."""
    vocab_size = model.config.vocab_size
    hidden_size = model.config.hidden_size
    delta_global_embedding = torch.zeros([vocab_size, hidden_size]).uniform_(-1, 1)
    dims = torch.tensor([hidden_size]).float()
    mag = args.adv_init_mag / torch.sqrt(dims)
    return delta_global_embedding * mag.view(1, 1)


def _delta_lb_token(args, input_lengths, embeds_init, input_mask, delta_global_embedding, input_ids_flat, bs, seq_len):
    """tavat.py:61-76."""
    dims = input_lengths * embeds_init.size(-1)
    mag = args.adv_init_mag / torch.sqrt(dims)
    delta_lb = torch.zeros_like(embeds_init).uniform_(-1, 1) * input_mask.unsqueeze(2)
    delta_lb = (delta_lb * mag.view(-1, 1, 1)).detach()
    gathered = torch.index_select(delta_global_embedding, 0, input_ids_flat)
    delta_tok = gathered.view(bs, seq_len, -1).detach()
    denorm = torch.norm(delta_tok.view(-1, delta_tok.size(-1))).view(-1, 1, 1)
    delta_tok = delta_tok / denorm
    return delta_lb, delta_tok


def tavat_train(args, model, batch, memory):
    """TokenAwareVirtualAdversarialTrainer.train (tavat.py:79-160) up to its clipping; returns (tr_loss, memory)."""
    word_embedding_layer = model.get_input_embeddings()
    input_ids, attention_mask, labels = batch[0], batch[1], batch[3]
    embeds_init = word_embedding_layer(input_ids)
    input_ids_flat = input_ids.contiguous().view(-1)
    input_mask = attention_mask.float()
    input_lengths = torch.sum(input_mask, 1)
    tr_loss = 0
    bs, seq_len = embeds_init.size(0), embeds_init.size(1)
    table = memory if args.use_global_embedding else word_embedding_layer.weight
    delta_lb, delta_tok = _delta_lb_token(args, input_lengths, embeds_init, input_mask, table, input_ids_flat, bs,
                                          seq_len)
    for astep in range(args.adv_steps):
        delta_lb.requires_grad_()
        delta_tok.requires_grad_()
        inputs_embeds = embeds_init + delta_lb + delta_tok
        batch = (inputs_embeds, batch[1], batch[2])
        logits = _forward(model, batch)[0]
        losses = _loss_function(logits, labels.view(-1))
        loss = torch.mean(losses)
        tr_loss += loss.item()
        loss.backward(retain_graph=True)
        if astep == args.adv_steps - 1:
            delta_tok = delta_tok.detach()
            if args.use_global_embedding:
                memory = memory.index_put_((input_ids_flat,), delta_tok.view(-1, delta_tok.size(-1)), True)
            break
        delta_lb_grad = delta_lb.grad.clone().detach()
        delta_tok_grad = delta_tok.grad.clone().detach()
        denorm_lb = torch.norm(delta_lb_grad.view(bs, -1), dim=1).view(-1, 1, 1)
        denorm_lb = torch.clamp(denorm_lb, min=1e-8)
        denorm_lb = denorm_lb.view(bs, 1, 1)
        denorm_tok = torch.norm(delta_tok_grad, dim=-1)
        denorm_tok = torch.clamp(denorm_tok, min=1e-8)
        denorm_tok = denorm_tok.view(bs, seq_len, 1)
        delta_lb = (delta_lb + args.adv_learning_rate * delta_lb_grad / denorm_lb).detach()
        delta_tok = (delta_tok + args.adv_learning_rate * delta_tok_grad / denorm_tok).detach()
        delta_norm_tok = torch.norm(delta_tok, p=2, dim=-1).detach()
        mean_norm_tok, _ = torch.max(delta_norm_tok, dim=-1, keepdim=True)
        reweights_tok = (delta_norm_tok / mean_norm_tok).view(bs, seq_len, 1)
        delta_tok = delta_tok * reweights_tok
        total_delta = delta_tok + delta_lb
        if args.adv_max_norm > 0:
            delta_norm = torch.norm(total_delta.view(bs, -1).float(), p=2, dim=1).detach()
            exceed_mask = (delta_norm > args.adv_max_norm).to(embeds_init)
            reweights = (args.adv_max_norm / delta_norm * exceed_mask + (1 - exceed_mask)).view(-1, 1, 1)
            delta_lb = (delta_lb * reweights).detach()
            delta_tok = (delta_tok * reweights).detach()
    return tr_loss, memory


# ------------------------------------------------------------------------------------------ InfoBERT
class CLUB(nn.Module):
    """utils/info_regularizer.py:6-42 (the parts InfoBertTrainer calls)."""

    def __init__(self, x_dim, y_dim, lr=1e-3, beta=0):
        super().__init__()
        self.beta = beta

    def mi_est_sample(self, x_samples, y_samples):
        sample_size = y_samples.shape[0]
        random_index = torch.randint(sample_size, (sample_size,)).long()
        positive = torch.zeros_like(y_samples)
        negative = - (y_samples - y_samples[random_index]) ** 2 / 2.
        return (positive.sum(dim=-1) - negative.sum(dim=-1)).mean()

    def update(self, x_samples, y_samples, steps=None):
        return self.mi_est_sample(x_samples, y_samples) * self.beta


class InfoNCE(nn.Module):
    """utils/info_regularizer.py:45-69."""

    def __init__(self, x_dim, y_dim):
        super().__init__()
        self.lower_size = 300
        self.F_func = nn.Sequential(nn.Linear(x_dim + y_dim, self.lower_size), nn.ReLU(),
                                    nn.Linear(self.lower_size, 1), nn.Softplus())

    def forward(self, x_samples, y_samples):
        sample_size = y_samples.shape[0]
        random_index = torch.randint(sample_size, (sample_size,)).long()  # noqa: F841  (drawn, unused, as there)
        x_tile = x_samples.unsqueeze(0).repeat((sample_size, 1, 1))
        y_tile = y_samples.unsqueeze(1).repeat((1, sample_size, 1))
        T0 = self.F_func(torch.cat([x_samples, y_samples], dim=-1))
        T1 = self.F_func(torch.cat([x_tile, y_tile], dim=-1))
        return T0.mean() - (T1.logsumexp(dim=1).mean() - np.log(sample_size))


class InfoBert:
    """InfoBertTrainer (infobert.py:13-208) without BaseTrainer's loop; ``train`` stops before the clipping."""

    def __init__(self, args, model):
        hidden_size = model.config.hidden_size
        self.model = model
        self.mi_upper_estimator = CLUB(hidden_size, hidden_size, beta=args.beta)
        self.mi_estimator = InfoNCE(hidden_size, hidden_size)

    @staticmethod
    def feature_ranking(grad, cl=0.5, ch=0.9):
        n = len(grad)
        lower = math.ceil(n * cl)
        upper = math.ceil(n * ch)
        norm = torch.norm(grad, dim=1)
        _, ind = torch.sort(norm)
        res = []
        for i in range(lower, upper):
            res += ind[i].item(),
        return res

    @staticmethod
    def get_seq_len(batch):
        lengths = torch.sum(batch[1], dim=-1)
        return lengths.detach().cpu().numpy()

    def _train_mi_upper_estimator(self, outputs, batch=None):
        hidden_states = outputs[1]
        last_hidden, embedding_layer = hidden_states[-1], hidden_states[0]  # noqa: F841  (as written there)
        embeddings = []
        lengths = self.get_seq_len(batch)
        for i, length in enumerate(lengths):
            embeddings.append(embedding_layer[i, :length])
        embeddings = torch.cat(embeddings)
        return self.mi_upper_estimator.update(embedding_layer, embeddings)

    def _get_local_robust_feature_regularizer(self, args, outputs, local_robust_features):
        hidden_states = outputs[1]
        last_hidden, embedding_layer = hidden_states[-1], hidden_states[0]
        sentence_embeddings = last_hidden[:, 0]
        local_embeddings = []
        global_embeddings = []
        for i, local_robust_feature in enumerate(local_robust_features):
            for local in local_robust_feature:
                local_embeddings.append(embedding_layer[i, local])
                global_embeddings.append(sentence_embeddings[i])
        lower_bounds = []
        local_embeddings, global_embeddings = shuffle(local_embeddings, global_embeddings, random_state=args.info_seed)
        for i in range(0, len(local_embeddings), args.batch_size):
            local_batch = torch.stack(local_embeddings[i: i + args.batch_size])
            global_batch = torch.stack(global_embeddings[i: i + args.batch_size])
            lower_bounds += self.mi_estimator(local_batch, global_batch),
        return -torch.stack(lower_bounds).mean()

    def local_robust_feature_selection(self, args, batch, grad):
        grads = []
        lengths = self.get_seq_len(batch)
        for i, length in enumerate(lengths):
            grads.append(grad[i, :length])
        indices = []
        nonrobust_indices = []
        for i, grad in enumerate(grads):
            indices.append(self.feature_ranking(grad, args.cl, args.ch))
            nonrobust_indices.append([x for x in range(lengths[i]) if x not in indices])
        return indices, nonrobust_indices

    def train(self, args, batch):
        word_embedding_layer = self.model.get_input_embeddings()
        tr_loss, upperbound_loss, lowerbound_loss = 0.0, 0.0, 0.0
        input_ids, attention_mask, labels = batch[0], batch[1], batch[3]
        embeds_init = word_embedding_layer(input_ids)
        input_mask = attention_mask.float()
        input_lengths = torch.sum(input_mask, 1)
        if args.adv_init_mag > 0:
            delta = torch.zeros_like(embeds_init).uniform_(-1, 1) * input_mask.unsqueeze(2)
            dims = input_lengths * embeds_init.size(-1)
            mag = args.adv_init_mag / torch.sqrt(dims)
            delta = (delta * mag.view(-1, 1, 1)).detach()
        else:
            delta = torch.zeros_like(embeds_init)
        for astep in range(args.adv_steps):
            delta.requires_grad_()
            batch = (embeds_init + delta, batch[1], batch[2])
            outputs = _forward(self.model, batch)
            logits = outputs[0]
            losses = _loss_function(logits, labels.view(-1))
            loss = torch.mean(losses)
            loss = loss / args.adv_steps
            tr_loss += loss.item()
            if self.mi_upper_estimator:
                upper_bound = self._train_mi_upper_estimator(outputs, batch) / args.adv_steps
                loss += upper_bound
                upperbound_loss += upper_bound.item()
            loss.backward(retain_graph=True)
            delta_grad = delta.grad.clone().detach()
            if self.mi_estimator:
                local_robust_features, _ = self.local_robust_feature_selection(args, batch, delta_grad)
                lower_bound = self._get_local_robust_feature_regularizer(args, outputs, local_robust_features) * \
                    args.alpha / args.adv_steps
                lower_bound.backward()
                lowerbound_loss += lower_bound.item()
            if astep == args.adv_steps - 1:
                break
            denorm = torch.norm(delta_grad.view(delta_grad.size(0), -1), dim=1).view(-1, 1, 1)
            denorm = torch.clamp(denorm, min=1e-8)
            delta = (delta + args.adv_learning_rate * delta_grad / denorm).detach()
            if args.adv_max_norm > 0:
                delta_norm = torch.norm(delta.view(delta.size(0), -1).float(), p=2, dim=1).detach()
                exceed_mask = (delta_norm > args.adv_max_norm).to(embeds_init)
                reweights = (args.adv_max_norm / delta_norm * exceed_mask + (1 - exceed_mask)).view(-1, 1, 1)
                delta = (delta * reweights).detach()
            embeds_init = word_embedding_layer(input_ids)
        return tr_loss
