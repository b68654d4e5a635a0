"""A model's parameters as one flat vector, and a functional forward pass from such a vector.

Trajectory matching compares and differentiates whole parameter vectors; keeping them flat
makes the distance and the unrolled student steps one tensor op each.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


class FlatModel:
    """Run `module` with parameters taken from a flat vector (the module's own are unused)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.names = [name for name, _ in module.named_parameters()]
        self.shapes = [p.shape for _, p in module.named_parameters()]
        self.sizes = [p.numel() for _, p in module.named_parameters()]

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def initial_vector(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(flat, self.sizes)
        params = {n: p.view(s) for n, p, s in zip(self.names, pieces, self.shapes, strict=True)}
        return functional_call(self.module, params, (x,))


def windows_of(series: torch.Tensor, context_length: int, horizon: int) -> tuple[torch.Tensor,
                                                                                  torch.Tensor]:
    """Differentiable sliding windows of a [time, channel] series: ([n, L, C], [n, H, C])."""
    unfolded = series.unfold(0, context_length + horizon, 1).permute(0, 2, 1)
    return unfolded[:, :context_length], unfolded[:, context_length:]


def normalise_windows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each window (context and target) by its context's mean and std, differentiably."""
    mean = x.mean(dim=1, keepdim=True)
    std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-8).sqrt()
    return (x - mean) / std, (y - mean) / std
