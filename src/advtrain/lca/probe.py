"""NeuroX-style linear probe over all neurons, its neuron rankings, and the ablation probe.

NeuroX 1.0.9 (Dalvi et al.'s toolkit) pins torch 1.8, so its three functions used here are restated on current
torch with their rules unchanged:

- ``train_logistic_regression_probe``: a linear layer trained with cross-entropy + ``l1 * ||W||_1 + l2 * ||W||_2``
  (elastic net), Adam, mini-batches of 32 taken in the data's order (NeuroX's ``batch_generator`` neither shuffles
  nor drops the last short batch), over float32 activations; with ``zscore=False`` and ``shuffle=False`` the
  weights equal NeuroX's code restated (``tests/references/neurox_references.py``);
- ``get_top_neurons``: for each class, the smallest set of neurons, by |weight| descending, whose |weight| mass
  reaches ``percentage`` of the class's total;
- ``get_neuron_ordering``: an overall ranking, built by raising that percentage from 0 (each class's top neuron) to
  1 in ``search_stride`` steps and appending the neurons each step adds, in the order NeuroX's Python sets give them
  (NeuroX calls the order within a step arbitrary; restating its set operations keeps the same order, so Table 7's
  top-k neurons are the ones NeuroX would pick).

``top_neurons_per_class`` and ``neuron_ordering`` restate NeuroX 1.0.9's code (``neurox/interpretation/
linear_probe.py``) statement by statement: the same sort (``np.argsort`` reversed), the same threshold on
``np.sum``, the same set operations.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import trange


def zscore_stats(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron mean and std of the training activations (std 1 where a neuron is constant)."""
    x = np.asarray(train, dtype=np.float32)  # no copy of float32 activations (3.4 GB on the treebank's training words)
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
                batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0, zscore: bool = False,
                shuffle: bool = False) -> dict:
    """Fit the elastic-net probe; returns ``{"probe", "mean", "std"}`` (normalisation is part of the probe).

    ``shuffle=False`` takes the batches in the words' order, as NeuroX does (sentence by sentence); ``True`` draws a
    seeded permutation every epoch. ``seed`` also sets the initial weights.
    """
    keep = y >= 0
    if not keep.all():  # words of tags the tagger does not know; a copy only then
        x, y = x[keep], y[keep]
    mean, std = zscore_stats(x) if zscore else (None, None)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = LinearProbe(x.shape[1], classes)
    inputs, targets = _tensor(x, mean, std), torch.from_numpy(y.astype(np.int64))
    optimizer = torch.optim.Adam(probe.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in trange(epochs, desc="probe epochs", mininterval=5):
        order = torch.randperm(len(targets), generator=generator) if shuffle else torch.arange(len(targets))
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
    """For each class, the neurons by |weight| descending until their mass reaches ``percentage`` of the total
    (NeuroX's ``get_top_neurons``: the first neuron whose cumulative mass reaches the share is included)."""
    out = []
    for row in abs_weights:
        total_mass = np.sum(row)
        sort_idx = np.argsort(row)[::-1]
        cum_sums = np.cumsum(row[sort_idx])
        unselected = np.where(cum_sums >= total_mass * percentage)[0]
        count = cum_sums.shape[0] if unselected.shape[0] == 0 else unselected[0] + 1
        out.append(sort_idx[:count])
    return out


def top_neurons_union(abs_weights: np.ndarray, percentage: float) -> np.ndarray:
    """NeuroX's overall top neurons at ``percentage``: the union of the classes' sets, as an array of NeuroX's
    set order (classes in index order, each class's neurons by weight)."""
    union: set[int] = set()
    for neurons in top_neurons_per_class(abs_weights, percentage):
        for neuron in neurons:
            union.add(int(neuron))
    return np.array(list(union))


def class_rankings(abs_weights: np.ndarray) -> np.ndarray:
    """classes x neurons: each class's neurons by |weight| descending (its top-k are the first k)."""
    return np.argsort(-abs_weights, axis=1, kind="stable")


def neuron_ordering(abs_weights: np.ndarray, search_stride: int = 100) -> np.ndarray:
    """All neurons ranked overall, as NeuroX's ``get_neuron_ordering``: the top neurons at shares 0, 1/stride, ...,
    1 of the weight mass, each step's new neurons appended in the order of NeuroX's set difference."""
    considered: set[int] = set()
    ordering: list[int] = []
    for p in range(search_stride + 1):
        local_ordering = list(top_neurons_union(abs_weights, p / search_stride))
        new_neurons = set(local_ordering).difference(considered)
        ordering = ordering + list(new_neurons)
        considered = considered.union(new_neurons)
    return np.asarray(ordering, dtype=np.int64)


def ablation_accuracy(train_x, train_y, test_x, test_y, neurons: np.ndarray, classes: int, **probe_settings) -> float:
    """Accuracy of a probe trained on the given neurons' activations only (NeuroX's keep-neurons filter)."""
    neurons = np.asarray(neurons)
    model = train_probe(train_x[:, neurons], train_y, classes, **probe_settings)
    return accuracy(model, test_x[:, neurons], test_y)
