"""Which parameters a fine-tune trains: all, the head, all but the feed-forward blocks, or
LoRA adapters on the attention projections (via peft)."""

from __future__ import annotations

import logging

from torch import nn

from hdt_finetune.finetune.forecast_adapter import ForecastAdapter

log = logging.getLogger(__name__)


def apply_mode(adapter: ForecastAdapter, mode: str, lora_rank: int = 8, lora_alpha: int = 16,
               lora_dropout: float = 0.0) -> nn.Module:
    """Set `requires_grad` for `mode` and return the module to train (a peft model for LoRA)."""
    module = adapter.module
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                            target_modules=list(adapter.lora_targets))
        module = get_peft_model(module, config)
    else:
        for name, parameter in module.named_parameters():
            if mode == "full":
                parameter.requires_grad_(True)
            elif mode == "head":
                parameter.requires_grad_(any(k in name for k in adapter.head_keywords))
            elif mode == "freeze_ffn":
                parameter.requires_grad_(not any(k in name for k in adapter.ffn_keywords))
            else:
                raise ValueError(f"unknown mode {mode!r}; choose full, head, freeze_ffn or lora")
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    if trainable == 0:
        raise ValueError(f"mode {mode!r} leaves nothing to train in {adapter.name}")
    log.info("%s, mode %s: %d of %d parameters trainable", adapter.name, mode, trainable, total)
    return module


def train_mode(module: nn.Module) -> None:
    """`module.train()`, except batch-norm layers whose parameters are frozen: their running
    statistics are part of what the mode keeps fixed (a LoRA adapter does not carry them)."""
    module.train()
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in layer.parameters()
        ):
            layer.eval()


def export_module(module: nn.Module, mode: str) -> nn.Module:
    """The plain model to export: LoRA adapters merged into the base weights."""
    if mode == "lora":
        return module.merge_and_unload()
    return module
