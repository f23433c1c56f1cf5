"""NeuroX-style linear probe over all neurons, its neuron rankings, and the ablation probe.

NeuroX 1.0.9 (Dalvi et al.'s toolkit) pins torch 1.8, so its three functions used here are restated on current
torch with their rules unchanged:

- ``train_logistic_regression_probe``: a linear layer trained with cross-entropy + ``l1 * ||W||_1 + l2 * ||W||_2``
  (elastic net), Adam, mini-batches;
- ``get_top_neurons``: for each class, the smallest set of neurons, by |weight| descending, whose |weight| mass
  reaches ``percentage`` of the class's total;
- ``get_neuron_ordering``: an overall ranking, built by raising that percentage in ``search_stride`` steps and
  appending the neurons each step adds.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import trange


def zscore_stats(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron mean and std of the training activations (std 1 where a neuron is constant)."""
    x = train.astype(np.float32)
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 0, std, 1.0).astype(np.float32)


def _tensor(x: np.ndarray, mean=None, std=None) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if mean is not None:
        x = (x - torch.from_numpy(mean)) / torch.from_numpy(std)
    return x


class LinearProbe(torch.nn.Module):
    def __init__(self, neurons: int, classes: int):
        super().__init__()
        self.linear = torch.nn.Linear(neurons, classes)

    def forward(self, x):
        return self.linear(x)


def train_probe(x: np.ndarray, y: np.ndarray, classes: int, l1: float = 1e-3, l2: float = 1e-3, epochs: int = 10,
                batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0, zscore: bool = True) -> dict:
    """Fit the elastic-net probe; returns ``{"probe", "mean", "std"}`` (normalisation is part of the probe)."""
    keep = y >= 0
    x, y = x[keep], y[keep]
    mean, std = zscore_stats(x) if zscore else (None, None)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = LinearProbe(x.shape[1], classes)
    inputs, targets = _tensor(x, mean, std), torch.from_numpy(y.astype(np.int64))
    optimizer = torch.optim.Adam(probe.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in trange(epochs, desc="probe epochs", mininterval=5):
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            weights = probe.linear.weight
            loss = (loss_fn(probe(inputs[idx]), targets[idx]) + l1 * weights.abs().sum()
                    + l2 * torch.sqrt((weights**2).sum()))
            loss.backward()
            optimizer.step()
    return {"probe": probe.eval(), "mean": mean, "std": std}


@torch.no_grad()
def predict(model: dict, x: np.ndarray) -> np.ndarray:
    return model["probe"](_tensor(x, model["mean"], model["std"])).argmax(-1).numpy()


def accuracy(model: dict, x: np.ndarray, y: np.ndarray) -> float:
    keep = y >= 0
    return float((predict(model, x[keep]) == y[keep]).mean())


def weights(model: dict) -> np.ndarray:
    """|W|, classes x neurons."""
    return model["probe"].linear.weight.detach().abs().numpy()


def top_neurons_per_class(abs_weights: np.ndarray, percentage: float) -> list[np.ndarray]:
    """For each class, the neurons by |weight| descending until their mass reaches ``percentage`` of the total."""
    out = []
    for row in abs_weights:
        order = np.argsort(-row, kind="stable")
        mass = np.cumsum(row[order])
        count = int(np.searchsorted(mass, percentage * mass[-1], side="left")) + 1
        out.append(order[: min(count, len(order))])
    return out


def class_rankings(abs_weights: np.ndarray) -> np.ndarray:
    """classes x neurons: each class's neurons by |weight| descending (its top-k are the first k)."""
    return np.argsort(-abs_weights, axis=1, kind="stable")


def neuron_ordering(abs_weights: np.ndarray, search_stride: int = 100) -> np.ndarray:
    """All neurons ranked overall: the ones the per-class top sets take in first, as the share grows."""
    ordering: list[int] = []
    seen: set[int] = set()
    strength = (abs_weights / np.maximum(abs_weights.sum(1, keepdims=True), 1e-12)).max(0)
    for step in range(1, search_stride + 1):
        selected = np.unique(np.concatenate(top_neurons_per_class(abs_weights, step / search_stride)))
        new = [int(n) for n in selected if int(n) not in seen]
        new.sort(key=lambda n: -strength[n])  # within one step, the neuron with the larger share first
        ordering.extend(new)
        seen.update(new)
    ordering.extend(int(n) for n in np.argsort(-strength, kind="stable") if int(n) not in seen)
    return np.asarray(ordering)


def ablation_accuracy(train_x, train_y, test_x, test_y, neurons: np.ndarray, classes: int, **probe_settings) -> float:
    """Accuracy of a probe trained on the given neurons' activations only (NeuroX's keep-neurons filter)."""
    neurons = np.asarray(neurons)
    model = train_probe(train_x[:, neurons], train_y, classes, **probe_settings)
    return accuracy(model, test_x[:, neurons], test_y)
