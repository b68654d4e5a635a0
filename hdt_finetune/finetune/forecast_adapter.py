"""One interface for every foundation model the trainer fine-tunes.

The trainer works on channel-independent windows: `context` [batch, context_length] and
`target` [batch, horizon]. An adapter turns them into its model's inputs, computes the
training loss and forecasts. Methods take the model explicitly because the trainer passes
the module Accelerate prepared (possibly wrapped for data parallelism), whose forward is the
one that synchronises gradients.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn


class ForecastAdapter(ABC):
    name: str  # e.g. "moirai-small", "patchtst"
    module: nn.Module
    weights: str  # where the weights came from: a hub id, a folder, or "random-init"
    context_length: int
    horizon: int
    probabilistic: bool
    # Parameter-name pieces that pick the parts each fine-tuning mode trains or freezes.
    head_keywords: tuple[str, ...]
    ffn_keywords: tuple[str, ...]
    lora_targets: tuple[str, ...]  # names of the attention projections LoRA wraps

    @abstractmethod
    def loss(self, model: nn.Module, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The model's own training loss on a batch."""

    @abstractmethod
    def point_forecast(self, model: nn.Module, context: torch.Tensor) -> torch.Tensor:
        """[batch, horizon] point forecast."""

    def sample_forecast(self, model: nn.Module, context: torch.Tensor,
                        num_samples: int) -> torch.Tensor | None:
        """[num_samples, batch, horizon] samples, or None for a point model."""
        return None

    @abstractmethod
    def tokens_per_window(self) -> int:
        """Tokens (patches) the model processes for one window: the unit of the cost meter."""

    @abstractmethod
    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        """Write `model` (unwrapped) so that the adapter's loader reads it back."""

    def n_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.module.parameters()
                   if p.requires_grad or not trainable_only)
