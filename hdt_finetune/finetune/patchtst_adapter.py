"""PatchTST from `transformers` (`PatchTSTForPrediction`) behind the ForecastAdapter interface.

Univariate (one input channel): the trainer feeds channel-independent windows. Point model,
trained on MSE.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from hdt_finetune.finetune.forecast_adapter import ForecastAdapter
from hdt_finetune.finetune.model_source import RANDOM_INIT, load_weights

# Sizes for a random init: "tiny" for tests, "base" close to the IBM granite release. Random
# inits use LayerNorm: batch statistics would make a data-parallel run differ from a
# single-process one and are not carried by a LoRA adapter.
PATCHTST_SIZES = {
    "tiny": {"d_model": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 64},
    "base": {"d_model": 128, "num_hidden_layers": 3, "num_attention_heads": 16, "ffn_dim": 256},
}


class PatchTSTAdapter(ForecastAdapter):
    probabilistic = False
    head_keywords = ("head.",)
    ffn_keywords = (".ff.",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")

    def __init__(self, module: nn.Module, weights: str) -> None:
        self.name = "patchtst"
        self.module = module
        self.weights = weights
        self.context_length = module.config.context_length
        self.horizon = module.config.prediction_length

    @classmethod
    def create(cls, source: str, context_length: int, horizon: int, size: str = "tiny",
               patch_length: int = 16) -> PatchTSTAdapter:
        """`source`: a folder or hub id, or "random" for a random init of `size`."""
        from transformers import PatchTSTConfig, PatchTSTForPrediction

        if source == RANDOM_INIT:
            if size not in PATCHTST_SIZES:
                raise ValueError(f"unknown PatchTST size {size!r}; known: "
                                 f"{', '.join(PATCHTST_SIZES)}")
            config = PatchTSTConfig(
                num_input_channels=1, context_length=context_length, prediction_length=horizon,
                patch_length=patch_length, patch_stride=patch_length, loss="mse",
                norm_type="layernorm",
                **PATCHTST_SIZES[size])
            return cls(PatchTSTForPrediction(config), weights="random-init")
        module = load_weights(PatchTSTForPrediction.from_pretrained, source)
        if module.config.context_length != context_length:
            raise ValueError(f"{source} was built for context_length "
                             f"{module.config.context_length}, not {context_length}")
        if module.config.prediction_length != horizon:
            raise ValueError(f"{source} forecasts {module.config.prediction_length} steps, "
                             f"not horizon {horizon}")
        return cls(module, weights=source)

    def loss(self, model: nn.Module, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return model(past_values=context.unsqueeze(-1), future_values=target.unsqueeze(-1)).loss

    def point_forecast(self, model: nn.Module, context: torch.Tensor) -> torch.Tensor:
        return model(past_values=context.unsqueeze(-1)).prediction_outputs[..., 0]

    def tokens_per_window(self) -> int:
        config = self.module.config
        return math.ceil(config.context_length / config.patch_stride)

    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        model.save_pretrained(str(folder), safe_serialization=True)
