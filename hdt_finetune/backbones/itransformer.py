"""iTransformer (Liu et al., ICLR 2024): attention across variates, one token per whole series.

Also home of the post-norm Transformer encoder layer that PatchTST reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hdt_finetune.backbones.config_checks import (
    check_input,
    require_bools,
    require_dropouts,
    require_positive_ints,
)
from hdt_finetune.backbones.normalization import RevIN

NormKind = Literal["layer", "batch"]


@dataclass(frozen=True)
class ITransformerConfig:
    """Sizes of an iTransformer. No parameter depends on `n_channels` (tokens are variates)."""

    context_length: int
    horizon: int
    n_channels: int
    d_model: int = 128
    n_heads: int = 8
    e_layers: int = 2
    d_ff: int = 128
    dropout: float = 0.1
    use_norm: bool = True

    def __post_init__(self) -> None:
        require_positive_ints(self, "context_length", "horizon", "n_channels", "d_model",
                              "n_heads", "e_layers", "d_ff")
        require_dropouts(self, "dropout")
        require_bools(self, "use_norm")
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"ITransformerConfig.d_model ({self.d_model}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )


class _TokenBatchNorm(nn.Module):
    """BatchNorm1d over the feature axis of `[batch, tokens, features]` (BatchNorm wants it 2nd)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def _make_norm(kind: NormKind, d_model: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(d_model)
    if kind == "batch":
        return _TokenBatchNorm(d_model)
    raise ValueError(f"norm must be 'layer' or 'batch', got {kind!r}")


class EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer: x = norm(x + attn(x)); x = norm(x + ffn(x)).

    Input and output are `[batch, tokens, d_model]`. `norm="batch"` is PatchTST's variant.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, dropout: float, norm: NormKind = "layer"
    ):
        super().__init__()
        # nn.MultiheadAttention packs the q/k/v projections into one weight, so even with a
        # single token (softmax identically 1) every parameter tensor still gets a gradient.
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = _make_norm(norm, d_model)
        self.norm2 = _make_norm(norm, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(x, x, x, need_weights=False)
        x = self.norm1(x + self.dropout(attended))
        y = self.dropout(F.gelu(self.linear1(x)))
        y = self.dropout(self.linear2(y))
        return self.norm2(x + y)


class ITransformer(nn.Module):
    """Embed each variate's lookback as a token, attend across variates, project to horizon."""

    def __init__(self, config: ITransformerConfig):
        super().__init__()
        self.config = config
        self.revin = RevIN(affine=False) if config.use_norm else None
        self.embedding = nn.Linear(config.context_length, config.d_model)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(config.d_model, config.n_heads, config.d_ff, config.dropout)
            for _ in range(config.e_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        self.projection = nn.Linear(config.d_model, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, context_length, channels]` -> `[batch, horizon, channels]`."""
        check_input("ITransformer", x, self.config.context_length)
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        tokens = self.embedding_dropout(self.embedding(x.transpose(1, 2)))  # [B, C, d_model]
        for layer in self.layers:
            tokens = layer(tokens)
        out = self.projection(self.final_norm(tokens)).transpose(1, 2)  # [B, horizon, C]
        if stats is not None:
            out = self.revin.denormalize(out, stats)
        return out
