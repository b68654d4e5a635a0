"""One interface for every foundation model the trainer fine-tunes, and the model choice of
a fine-tuning config.

The trainer works on channel-independent windows: `context` [batch, context_length] and
`target` [batch, horizon]. An adapter loads its model, turns windows into the model's inputs,
computes the training loss and forecasts. Methods take the model explicitly because the
trainer passes the module Accelerate prepared (possibly wrapped for data parallelism or by
peft), whose forward is the one that synchronises gradients.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn

Family = Literal["moirai", "patchtst"]


@dataclass(frozen=True)
class ModelChoice:
    """Which model and which weights (`model.*` keys of a fine-tuning config)."""

    family: Family = "moirai"
    size: str = "small"  # moirai: small|base|large (tiny: tests); patchtst: tiny|base
    version: str = "1.1"  # moirai 1.0 or 1.1
    init: Literal["pretrained", "random"] = "pretrained"
    source: str | None = None  # a folder or hub id; None: the family's published weights
    patch_size: int = 32  # moirai's fixed patch size; patchtst's patch length

    def __post_init__(self) -> None:
        if self.family not in get_args(Family):
            raise ValueError(f"model.family must be one of {get_args(Family)}, "
                             f"got {self.family!r}")
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"model.init must be pretrained or random, got {self.init!r}")
        if self.patch_size < 1:
            raise ValueError(f"model.patch_size must be >= 1, got {self.patch_size}")


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

    @classmethod
    @abstractmethod
    def from_choice(cls, choice: ModelChoice, context_length: int, horizon: int,
                    seed: int) -> ForecastAdapter:
        """Load (or randomly initialise, seeded) the chosen model for these windows."""

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

    def embed(self, model: nn.Module, context: torch.Tensor,
              target: torch.Tensor) -> torch.Tensor:
        """[batch, D] window embeddings, differentiable in the windows (`hdt_fm` matches
        their statistics)."""
        raise NotImplementedError(f"{self.name} has no window embedding; hdt_fm needs "
                                  "fm.family=moirai")

    def horizon_nll(self, model: nn.Module, context: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
        """The forecast loss, differentiable in the windows as well as the weights (`hdt_gm`
        matches its gradients)."""
        raise NotImplementedError(f"{self.name} has no window-differentiable loss; hdt_gm "
                                  "needs fm.family=moirai")

    @abstractmethod
    def tokens_per_window(self) -> int:
        """Tokens (patches) the model processes for one window: the unit of the cost meter."""

    @abstractmethod
    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        """Write `model` (unwrapped) so that the adapter's loader reads it back."""


def build_adapter(choice: ModelChoice, context_length: int, horizon: int,
                  seed: int) -> ForecastAdapter:
    if choice.family == "patchtst":
        from hdt_finetune.finetune.patchtst_adapter import PatchTSTAdapter

        return PatchTSTAdapter.from_choice(choice, context_length, horizon, seed)
    from hdt_finetune.finetune.moirai.moirai_adapter import MoiraiAdapter

    return MoiraiAdapter.from_choice(choice, context_length, horizon, seed)
