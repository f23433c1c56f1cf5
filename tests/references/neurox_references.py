"""NeuroX 1.0.9's probe training, restated on current torch for reference tests and benchmarks.

``neurox/interpretation/linear_probe.py`` (tag v1.0.9): ``train_logistic_regression_probe`` calls ``_train_probe``
with ``task_type="classification"``; ``neurox/interpretation/utils.py``: ``batch_generator``. The statements are
NeuroX's; only what current torch or a test needs differs: no GPU branch (CPU here), no progress bar or prints,
``Variable`` (a no-op since torch 0.4) dropped. NeuroX's ``create_tensors`` builds ``X`` as float32 and its extractor
writes float32 activations, so ``X_train`` must be float32 here too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class LinearProbe(nn.Module):
    """Torch model for linear probe"""

    def __init__(self, input_size, num_classes):
        super().__init__()
        self.linear = nn.Linear(input_size, num_classes)

    def forward(self, x):
        return self.linear(x)


def l1_penalty(var):
    return torch.abs(var).sum()


def l2_penalty(var):
    return torch.sqrt(torch.pow(var, 2).sum())


def batch_generator(X, y, batch_size=32):
    start_idx = 0
    while start_idx < X.shape[0]:
        yield X[start_idx : start_idx + batch_size], y[start_idx : start_idx + batch_size]
        start_idx = start_idx + batch_size


def _train_probe(X_train, y_train, task_type, lambda_l1=0, lambda_l2=0, num_epochs=10, batch_size=32,
                 learning_rate=0.001):
    if lambda_l1 is None or lambda_l2 is None:
        raise ValueError("Regularization weights cannot be None")
    if task_type == "classification":
        num_classes = len(set(y_train))
        if num_classes <= 1:
            raise ValueError("Classification problem must have more than one target class")
    else:
        num_classes = 1
    probe = LinearProbe(X_train.shape[1], num_classes)
    if task_type == "classification":
        criterion = nn.CrossEntropyLoss()
    elif task_type == "regression":
        criterion = nn.MSELoss()
    else:
        raise ValueError("Invalid `task_type`")
    optimizer = torch.optim.Adam(probe.parameters(), lr=learning_rate)
    X_tensor = torch.from_numpy(X_train)
    y_tensor = torch.from_numpy(y_train)
    for _epoch in range(num_epochs):
        for inputs, labels in batch_generator(X_tensor, y_tensor, batch_size=batch_size):
            optimizer.zero_grad()
            outputs = probe(inputs)
            if task_type == "regression":
                outputs = outputs.squeeze()
            weights = list(probe.parameters())[0]
            loss = criterion(outputs, labels) + lambda_l1 * l1_penalty(weights) + lambda_l2 * l2_penalty(weights)
            loss.backward()
            optimizer.step()
    return probe


def train_logistic_regression_probe(X_train, y_train, lambda_l1=0, lambda_l2=0, num_epochs=10, batch_size=32,
                                    learning_rate=0.001):
    if X_train.dtype != np.float32:
        raise TypeError(f"NeuroX expects float32 activations, got {X_train.dtype}")
    return _train_probe(X_train, y_train, task_type="classification", lambda_l1=lambda_l1, lambda_l2=lambda_l2,
                        num_epochs=num_epochs, batch_size=batch_size, learning_rate=learning_rate)
