"""Where models run and at which precision: the GPU with bf16/fp16 when present, else the CPU in fp32."""

from __future__ import annotations

import contextlib

import torch

from advtrain.config import resolve_precision


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision(setting: str = "auto") -> str:
    cuda = torch.cuda.is_available()
    return resolve_precision(setting, cuda, cuda and torch.cuda.is_bf16_supported())


def autocast(setting: str = "auto"):
    """An autocast context for inference at the resolved precision (a no-op in fp32)."""
    resolved = precision(setting)
    if resolved == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
