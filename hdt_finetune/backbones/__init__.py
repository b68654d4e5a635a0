"""Forecasting backbones: `[batch, context_length, channels]` -> `[batch, horizon, channels]`."""

from hdt_finetune.backbones.backbone_registry import (
    BACKBONE_NAMES,
    build_backbone,
    config_class,
    override_keys,
)
from hdt_finetune.backbones.dlinear import DLinear, DLinearConfig
from hdt_finetune.backbones.itransformer import ITransformer, ITransformerConfig
from hdt_finetune.backbones.normalization import RevIN
from hdt_finetune.backbones.patchtst import PatchTST, PatchTSTConfig
from hdt_finetune.backbones.xpatch import XPatch, XPatchConfig

__all__ = [
    "BACKBONE_NAMES",
    "DLinear",
    "DLinearConfig",
    "ITransformer",
    "ITransformerConfig",
    "PatchTST",
    "PatchTSTConfig",
    "RevIN",
    "XPatch",
    "XPatchConfig",
    "build_backbone",
    "config_class",
    "override_keys",
]
