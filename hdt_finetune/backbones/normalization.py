"""Per-instance normalisation shared by the backbones (RevIN-style, Kim et al., ICLR 2022).

Each channel of each input window is shifted by its lookback mean and scaled by its lookback
standard deviation; the model forecasts in that normalised space and the statistics are put
back on the output. This removes the level/scale shift between windows (and between real and
distilled data), which is what makes the forecasters robust to non-stationarity.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class InstanceStats(NamedTuple):
    """Lookback statistics of one batch, each of shape [batch, 1, n_channels]."""

    mean: torch.Tensor
    std: torch.Tensor


class RevIN(nn.Module):
    """Reversible instance normalisation over the time axis of `[batch, time, channels]` inputs.

    The statistics are returned to the caller instead of being stored on the module, so the
    module stays stateless between calls (safe under `torch.func.functional_call` and when one
    module serves several batches at once). They are not detached: a distillation method
    differentiating with respect to the input series needs the gradient through them too.
    """

    def __init__(self, n_channels: int | None = None, affine: bool = False, eps: float = 1e-5):
        super().__init__()
        if affine and (n_channels is None or n_channels <= 0):
            raise ValueError(f"RevIN with affine=True needs n_channels > 0, got {n_channels!r}")
        self.affine = affine
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(n_channels))
            self.bias = nn.Parameter(torch.zeros(n_channels))

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, InstanceStats]:
        """Return the normalised `x` and the statistics needed to undo it."""
        mean = x.mean(dim=1, keepdim=True)
        # sqrt(var + eps) rather than std + eps: same role (never divide by zero) but its
        # gradient stays finite for a constant window, where d(std)/d(var) is infinite.
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        x = (x - mean) / std
        if self.affine:
            x = x * self.weight + self.bias
        return x, InstanceStats(mean, std)

    def denormalize(self, y: torch.Tensor, stats: InstanceStats) -> torch.Tensor:
        """Map a forecast `[batch, horizon, channels]` back to the input's level and scale."""
        if self.affine:
            # eps**2 keeps the division defined if a learnt weight reaches exactly zero.
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * stats.std + stats.mean
