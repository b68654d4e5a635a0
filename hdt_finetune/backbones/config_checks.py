"""Validation shared by the backbone configs and forward passes; errors name field and value."""

from __future__ import annotations

import torch


def require_positive_ints(config: object, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive int, "
                             f"got {value!r}")


def require_bools(config: object, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, bool):
            raise ValueError(f"{type(config).__name__}.{name} must be a bool, got {value!r}")


def require_dropouts(config: object, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be in [0, 1), got {value!r}")


def check_input(model: str, x: torch.Tensor, context_length: int) -> None:
    if x.dim() != 3 or x.shape[1] != context_length:
        raise ValueError(
            f"{model} expects [batch, {context_length}, channels], got {tuple(x.shape)}"
        )
