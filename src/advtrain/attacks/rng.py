"""The state of the global random generators TextAttack draws from (Python's, NumPy's, torch's CPU and CUDA ones):
saved by a worker that hands the baton on (:meth:`advtrain.attacks.broker.QueryBroker.query`) and put back when it
holds the baton again, so each example draws exactly the stream of a one-at-a-time run."""

from __future__ import annotations

import random

import numpy as np


def rng_state():
    import torch

    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def set_rng_state(state) -> None:
    import torch

    python, numpy, cpu, cuda = state
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)
