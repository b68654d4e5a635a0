"""PatchTST (Nie et al., ICLR 2023): channel-independent Transformer over patches of each series."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hdt_finetune.backbones.config_checks import (
    check_input,
    require_bools,
    require_dropouts,
    require_positive_ints,
)
from hdt_finetune.backbones.itransformer import EncoderLayer, NormKind
from hdt_finetune.backbones.normalization import RevIN


def num_patches(context_length: int, patch_len: int, stride: int) -> int:
    """Patches formed after padding `stride` copies of the last value at the end (one extra)."""
    return (context_length + stride - patch_len) // stride + 1


def make_patches(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """`[..., time]` -> `[..., n_patches, patch_len]`, padding the end by repeating the last value.

    The padding gives the most recent values their own full patch even when
    `(time - patch_len)` is not a multiple of `stride`.
    """
    padded = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], stride)], dim=-1)
    return padded.unfold(-1, patch_len, stride)


@dataclass(frozen=True)
class PatchTSTConfig:
    """Sizes of a PatchTST model: the paper's setting for small datasets such as ETT
    (d_model 16, 4 heads, d_ff 128, dropout 0.3), which also keeps it quick on a CPU.
    `norm="batch"` is the paper's BatchNorm
    encoder; `"layer"` is the usual LayerNorm. Parameters depend on `n_channels` only when
    `revin_affine` is on."""

    context_length: int
    horizon: int
    n_channels: int
    patch_len: int = 16
    stride: int = 8
    d_model: int = 16
    n_heads: int = 4
    e_layers: int = 3
    d_ff: int = 128
    dropout: float = 0.3
    head_dropout: float = 0.0
    norm: NormKind = "batch"
    revin_affine: bool = False

    def __post_init__(self) -> None:
        require_positive_ints(self, "context_length", "horizon", "n_channels", "patch_len",
                              "stride", "d_model", "n_heads", "e_layers", "d_ff")
        require_dropouts(self, "dropout", "head_dropout")
        require_bools(self, "revin_affine")
        if self.patch_len > self.context_length:
            raise ValueError(
                f"PatchTSTConfig.patch_len ({self.patch_len}) must be <= context_length "
                f"({self.context_length})"
            )
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"PatchTSTConfig.d_model ({self.d_model}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )
        if self.norm not in ("layer", "batch"):
            raise ValueError(f"PatchTSTConfig.norm must be 'layer' or 'batch', got {self.norm!r}")

    @property
    def n_patches(self) -> int:
        return num_patches(self.context_length, self.patch_len, self.stride)


class PatchTST(nn.Module):
    """Each channel is patched, embedded, encoded and mapped to the horizon on its own."""

    def __init__(self, config: PatchTSTConfig):
        super().__init__()
        self.config = config
        self.revin = RevIN(config.n_channels, affine=config.revin_affine)
        self.patch_embedding = nn.Linear(config.patch_len, config.d_model)
        # Learnable positions: attention alone is order-blind.
        self.position = nn.Parameter(torch.empty(config.n_patches, config.d_model))
        nn.init.normal_(self.position, std=0.02)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(config.d_model, config.n_heads, config.d_ff, config.dropout, config.norm)
            for _ in range(config.e_layers)
        )
        self.head_dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(config.n_patches * config.d_model, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, context_length, channels]` -> `[batch, horizon, channels]`."""
        cfg = self.config
        check_input("PatchTST", x, cfg.context_length)
        batch, _, channels = x.shape
        x, stats = self.revin.normalize(x)
        # Channel independence: every channel becomes its own sequence in the batch.
        series = x.transpose(1, 2).reshape(batch * channels, cfg.context_length)
        patches = make_patches(series, cfg.patch_len, cfg.stride)  # [B*C, N, patch_len]
        tokens = self.embedding_dropout(self.patch_embedding(patches) + self.position)
        for layer in self.layers:
            tokens = layer(tokens)
        out = self.head(self.head_dropout(tokens.flatten(start_dim=1)))  # [B*C, horizon]
        out = out.reshape(batch, channels, cfg.horizon).transpose(1, 2)
        return self.revin.denormalize(out, stats)
