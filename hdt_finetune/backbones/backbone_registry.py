"""Build any forecasting backbone by name, its config's fields set by the one override parser
(`typed_overrides`): `key=value` strings or a mapping, each checked against its field."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

from hdt_finetune.backbones.dlinear import DLinear, DLinearConfig
from hdt_finetune.backbones.itransformer import ITransformer, ITransformerConfig
from hdt_finetune.backbones.patchtst import PatchTST, PatchTSTConfig
from hdt_finetune.backbones.xpatch import XPatch, XPatchConfig
from hdt_finetune.typed_overrides import ConfigError, apply_overrides, split_pair

BACKBONE_NAMES: tuple[str, ...] = ("dlinear", "itransformer", "xpatch", "patchtst")

_REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {
    "dlinear": (DLinearConfig, DLinear),
    "itransformer": (ITransformerConfig, ITransformer),
    "xpatch": (XPatchConfig, XPatch),
    "patchtst": (PatchTSTConfig, PatchTST),
}

# The shape fields are positional arguments of build_backbone, not overrides.
_SHAPE_FIELDS = frozenset({"context_length", "horizon", "n_channels"})


def config_class(name: str) -> type:
    """The config dataclass of backbone `name` (raises ValueError for an unknown name)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; valid names are: {', '.join(BACKBONE_NAMES)}")
    return _REGISTRY[name][0]


def override_keys(name: str) -> tuple[str, ...]:
    """The hyper-parameters of backbone `name` that `build_backbone` accepts as overrides."""
    return tuple(
        f.name for f in dataclasses.fields(config_class(name)) if f.name not in _SHAPE_FIELDS
    )


def build_backbone(
    name: str, context_length: int, horizon: int, n_channels: int,
    overrides: Mapping[str, Any] | Iterable[str] = (),
) -> nn.Module:
    """Instantiate backbone `name` mapping `[B, context_length, n_channels]` to
    `[B, horizon, n_channels]`; `overrides` set other fields of its config dataclass."""
    config = config_class(name)(context_length=context_length, horizon=horizon,
                                n_channels=n_channels)
    keys = overrides if isinstance(overrides, Mapping) else [split_pair(o)[0] for o in overrides]
    unknown = sorted(set(keys) - set(override_keys(name)))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(map(repr, unknown))} for backbone {name!r}; "
            f"known: {', '.join(override_keys(name))}"
        )
    return _REGISTRY[name][1](apply_overrides(config, overrides))
