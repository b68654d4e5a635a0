"""PatchTST from `transformers` (`PatchTSTForPrediction`) behind the ForecastAdapter interface.

Univariate (one input channel): the trainer feeds channel-independent windows. Point model,
trained on MSE.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from hdt_finetune.data.data_cache import hub_offline
from hdt_finetune.finetune.forecast_adapter import ForecastAdapter, ModelChoice
from hdt_finetune.finetune.model_source import ModelUnavailableError, load_weights

# Sizes for a random init: "tiny" for tests, "base" close to the IBM granite release. Random
# inits use LayerNorm: batch statistics would make a data-parallel run differ from a
# single-process one and are not carried by a LoRA adapter.
PATCHTST_SIZES = {
    "tiny": {"d_model": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 64},
    "base": {"d_model": 128, "num_hidden_layers": 3, "num_attention_heads": 16, "ffn_dim": 256},
}
# What a config.json may ask for before we build it (beyond: damaged or hostile).
_CONFIG_LIMITS = {"d_model": (1, 8192), "num_hidden_layers": (1, 256),
                  "num_attention_heads": (1, 256), "ffn_dim": (1, 65536),
                  "context_length": (1, 1 << 16), "prediction_length": (1, 1 << 16),
                  "patch_length": (1, 1 << 16), "patch_stride": (1, 1 << 16),
                  "num_input_channels": (1, 1)}


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
    def from_choice(cls, choice: ModelChoice, context_length: int, horizon: int,
                    seed: int) -> PatchTSTAdapter:
        """A random init of `choice.size` (drawn from torch's global RNG, which the trainer
        seeds), or weights from `choice.source` (a folder or hub id)."""
        from transformers import PatchTSTConfig, PatchTSTForPrediction

        if choice.init == "random":
            if choice.size not in PATCHTST_SIZES:
                raise ValueError(f"unknown PatchTST size {choice.size!r}; known: "
                                 f"{', '.join(PATCHTST_SIZES)}")
            config = PatchTSTConfig(
                num_input_channels=1, context_length=context_length, prediction_length=horizon,
                patch_length=choice.patch_size, patch_stride=choice.patch_size, loss="mse",
                norm_type="layernorm", **PATCHTST_SIZES[choice.size])
            return cls(PatchTSTForPrediction(config), weights="random-init")
        if choice.source is None:
            raise ValueError("PatchTST has no default weights: pass model.source=FOLDER_OR_HUB_ID "
                             "or model.init=random")
        module = load_weights(_strict_loader(PatchTSTForPrediction), choice.source)
        if module.config.context_length != context_length:
            raise ValueError(f"{choice.source} was built for context_length "
                             f"{module.config.context_length}, not {context_length}")
        if module.config.prediction_length != horizon:
            raise ValueError(f"{choice.source} forecasts {module.config.prediction_length} "
                             f"steps, not horizon {horizon}")
        return cls(module, weights=choice.source)

    def loss(self, model: nn.Module, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return model(past_values=context.unsqueeze(-1), future_values=target.unsqueeze(-1)).loss

    def point_forecast(self, model: nn.Module, context: torch.Tensor) -> torch.Tensor:
        return model(past_values=context.unsqueeze(-1)).prediction_outputs[..., 0]

    def tokens_per_window(self) -> int:
        config = self.module.config
        return math.ceil(config.context_length / config.patch_stride)

    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        model.save_pretrained(str(folder), safe_serialization=True)


def _strict_loader(cls):
    """`from_pretrained` that reads safetensors only, checks the config's sizes first, and
    refuses weights that leave parameters missing, unused or of the wrong shape (transformers
    would only warn and keep random values)."""
    def load(source: str) -> nn.Module:
        if not Path(source).is_dir():  # a hub id: load_weights explains hub failures
            module, info = cls.from_pretrained(source, use_safetensors=True,
                                               output_loading_info=True,
                                               local_files_only=hub_offline())
        else:
            _check_config(Path(source) / "config.json")
            try:
                module, info = cls.from_pretrained(source, use_safetensors=True,
                                                   output_loading_info=True)
            except (RuntimeError, TypeError, KeyError, ValueError, OSError) as err:
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
                raise ModelUnavailableError(f"{source}: cannot build PatchTST from it "
                                            f"({reason})") from None
        wrong = {k: v for k, v in info.items() if k != "error_msgs" and v}
        if wrong:
            raise ModelUnavailableError(f"{source}: the weights do not fit the PatchTST its "
                                        f"config describes ({wrong}); give an unmodified "
                                        "save_pretrained() folder")
        return module
    return load


def _check_config(path: Path) -> None:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelUnavailableError(f"{path} is not a readable config ({err})") from None
    for key, (low, high) in _CONFIG_LIMITS.items():
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelUnavailableError(f"{path}: {key} must be an integer in [{low}, {high}], "
                                        f"got {value!r}")
    if config["d_model"] % config["num_attention_heads"]:
        raise ModelUnavailableError(f"{path}: d_model {config['d_model']} is not a multiple "
                                    f"of num_attention_heads {config['num_attention_heads']}")
