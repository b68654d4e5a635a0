"""xPatch (Stitsyuk & Choi, AAAI 2025): EMA seasonal-trend split, a patch-wise CNN stream on the
seasonal part and an MLP stream on the trend, combined by a linear layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hdt_finetune.backbones.config_checks import (
    check_input,
    require_bools,
    require_positive_ints,
)
from hdt_finetune.backbones.normalization import RevIN
from hdt_finetune.backbones.patchtst import make_patches, num_patches


@dataclass(frozen=True)
class XPatchConfig:
    """Sizes of an xPatch model (paper defaults). Parameters depend on `n_channels` only when
    `revin_affine` is on."""

    context_length: int
    horizon: int
    n_channels: int
    patch_len: int = 16
    stride: int = 8
    alpha: float = 0.3
    revin_affine: bool = False

    def __post_init__(self) -> None:
        require_positive_ints(self, "context_length", "horizon", "n_channels", "patch_len",
                              "stride")
        require_bools(self, "revin_affine")
        if self.patch_len > self.context_length:
            raise ValueError(
                f"XPatchConfig.patch_len ({self.patch_len}) must be <= context_length "
                f"({self.context_length})"
            )
        if not isinstance(self.alpha, (int, float)) or not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"XPatchConfig.alpha must be in (0, 1], got {self.alpha!r}")

    @property
    def n_patches(self) -> int:
        return num_patches(self.context_length, self.patch_len, self.stride)


def ema_weights(length: int, alpha: float) -> torch.Tensor:
    """Lower-triangular `[length, length]` matrix W with `trend = W @ x` for the EMA recursion.

    Unrolling trend_t = alpha*x_t + (1-alpha)*trend_{t-1}, trend_0 = x_0 gives
    W[t, j] = alpha*(1-alpha)**(t-j) for 1 <= j <= t and W[t, 0] = (1-alpha)**t. Every entry
    is a power of (1-alpha) <= 1 computed directly (no division by a vanishing power), so
    long contexts only underflow harmless far-past weights to zero.
    """
    t = torch.arange(length, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    decay = 1.0 - alpha
    weights = alpha * torch.pow(torch.full_like(lag, decay), lag.clamp(min=0))
    weights[:, 0] = torch.pow(torch.full_like(t, decay), t)
    return torch.where(lag >= 0, weights, torch.zeros_like(weights)).to(torch.float32)


class EMADecomposition(nn.Module):
    """Split `[..., time]` series into (seasonal, trend) with an exponential moving average."""

    def __init__(self, length: int, alpha: float):
        super().__init__()
        # Not persistent: it is a pure function of the config, rebuilt on construction.
        self.register_buffer("weights", ema_weights(length, alpha), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trend = x @ self.weights.T
        return x - trend, trend


class _SeasonalStream(nn.Module):
    """Non-linear stream: patch embedding, depthwise + pointwise convolutions, flatten head."""

    def __init__(self, config: XPatchConfig):
        super().__init__()
        n, p, h = config.n_patches, config.patch_len, config.horizon
        self.patch_len, self.stride = p, config.stride
        self.embedding = nn.Linear(p, p * p)
        # BatchNorm1d(n) treats each patch position as a channel, normalising over batch and
        # features, which matches the [batch, patches, features] layout used throughout.
        self.embedding_norm = nn.BatchNorm1d(n)
        # Depthwise: each patch's p*p embedding is convolved on its own back down to p values.
        self.depthwise = nn.Conv1d(n, n, kernel_size=p, stride=p, groups=n)
        self.depthwise_norm = nn.BatchNorm1d(n)
        self.residual = nn.Linear(p * p, p)  # brings the embedding to the depthwise output size
        # Pointwise: mixes information across patches at each position.
        self.pointwise = nn.Conv1d(n, n, kernel_size=1)
        self.pointwise_norm = nn.BatchNorm1d(n)
        self.head = nn.Sequential(
            nn.Flatten(start_dim=1), nn.Linear(n * p, 2 * h), nn.GELU(), nn.Linear(2 * h, h)
        )

    def forward(self, seasonal: torch.Tensor) -> torch.Tensor:
        """`[series, context_length]` -> `[series, horizon]`."""
        patches = make_patches(seasonal, self.patch_len, self.stride)  # [S, n, p]
        embedded = self.embedding_norm(F.gelu(self.embedding(patches)))  # [S, n, p*p]
        z = self.depthwise_norm(F.gelu(self.depthwise(embedded)))  # [S, n, p]
        z = z + self.residual(embedded)
        z = self.pointwise_norm(F.gelu(self.pointwise(z)))
        return self.head(z)


class _TrendStream(nn.Module):
    """Linear stream: Linear -> AvgPool -> LayerNorm, twice, then a Linear to the horizon.

    With h = horizon the paper's widths are 4h -> 2h -> h -> h/2 -> h. Here the second linear
    outputs 2*ceil(h/2) so the pooling stays exact and odd (even h = 1) horizons still work;
    for even h the sizes are the paper's.
    """

    def __init__(self, config: XPatchConfig):
        super().__init__()
        h = config.horizon
        half = (h + 1) // 2
        self.layers = nn.Sequential(
            nn.Linear(config.context_length, 4 * h),
            nn.AvgPool1d(kernel_size=2),
            nn.LayerNorm(2 * h),
            nn.Linear(2 * h, 2 * half),
            nn.AvgPool1d(kernel_size=2),
            nn.LayerNorm(half),
            nn.Linear(half, h),
        )

    def forward(self, trend: torch.Tensor) -> torch.Tensor:
        """`[series, context_length]` -> `[series, horizon]`."""
        # AvgPool1d wants a channel axis: [series, 1, features].
        return self.layers(trend.unsqueeze(1)).squeeze(1)


class XPatch(nn.Module):
    """Dual-stream xPatch, channel-independent (every channel is its own series in the batch)."""

    def __init__(self, config: XPatchConfig):
        super().__init__()
        self.config = config
        self.revin = RevIN(config.n_channels, affine=config.revin_affine)
        self.decomposition = EMADecomposition(config.context_length, config.alpha)
        self.seasonal_stream = _SeasonalStream(config)
        self.trend_stream = _TrendStream(config)
        self.combine = nn.Linear(2 * config.horizon, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, context_length, channels]` -> `[batch, horizon, channels]`."""
        cfg = self.config
        check_input("XPatch", x, cfg.context_length)
        batch, _, channels = x.shape
        x, stats = self.revin.normalize(x)
        series = x.transpose(1, 2).reshape(batch * channels, cfg.context_length)
        seasonal, trend = self.decomposition(series)
        out = self.combine(
            torch.cat([self.seasonal_stream(seasonal), self.trend_stream(trend)], dim=-1)
        )
        out = out.reshape(batch, channels, cfg.horizon).transpose(1, 2)
        return self.revin.denormalize(out, stats)
