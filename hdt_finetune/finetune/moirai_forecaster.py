"""Moirai (uni2ts) behind the trainer's ForecastAdapter interface.

`MoiraiAdapter` does the packing, the NLL and the forecasts; this wrapper only passes the
module the trainer prepared (DDP- or peft-wrapped) into each call.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hdt_finetune.finetune.forecast_adapter import ForecastAdapter
from hdt_finetune.finetune.moirai_adapter import (
    MoiraiAdapter,
    MoiraiSpec,
    load_moirai,
    random_moirai,
)

# Samples behind the median point forecast used for validation and test MSE/MAE.
POINT_SAMPLES = 50


class MoiraiForecaster(ForecastAdapter):
    probabilistic = True
    head_keywords = MoiraiAdapter.head_keywords
    ffn_keywords = MoiraiAdapter.ffn_keywords
    lora_targets = MoiraiAdapter.lora_targets

    def __init__(self, inner: MoiraiAdapter) -> None:
        self.inner = inner
        self.module = inner.module
        self.name = inner.name
        self.weights = inner.weights
        self.context_length = inner.context_length
        self.horizon = inner.horizon

    @classmethod
    def create(cls, spec: MoiraiSpec, source: str | None, random_init: bool,
               seed: int) -> MoiraiForecaster:
        """Random init of `spec.size`, or weights from `source` (a folder or hub id; None: the
        published weights of `spec`)."""
        loaded = (random_moirai(spec.size, seed=seed) if random_init
                  else load_moirai(source or spec.hub_id))
        return cls(MoiraiAdapter.from_spec(spec, loaded))

    def loss(self, model: nn.Module, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.inner.loss(self.inner.inputs_from_windows(context, target), module=model)

    def point_forecast(self, model: nn.Module, context: torch.Tensor) -> torch.Tensor:
        return self.inner.point_forecast(context, num_samples=POINT_SAMPLES, module=model)

    def sample_forecast(self, model: nn.Module, context: torch.Tensor,
                        num_samples: int) -> torch.Tensor:
        return self.inner.sample_forecast(context, num_samples, module=model)

    def tokens_per_window(self) -> int:
        return self.inner.tokens_per_window()

    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        self.inner.save_pretrained(folder, module=model)
