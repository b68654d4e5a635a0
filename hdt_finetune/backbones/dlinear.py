"""DLinear (Zeng et al., AAAI 2023): moving-average decomposition plus two linear maps over time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hdt_finetune.backbones.config_checks import check_input, require_bools, require_positive_ints


@dataclass(frozen=True)
class DLinearConfig:
    """Sizes of a DLinear model.

    `individual=False` shares one pair of linear layers across all channels, so the parameter
    count does not depend on `n_channels` and the model accepts any number of channels.
    """

    context_length: int
    horizon: int
    n_channels: int
    kernel_size: int = 25
    individual: bool = False

    def __post_init__(self) -> None:
        require_positive_ints(self, "context_length", "horizon", "n_channels", "kernel_size")
        require_bools(self, "individual")


class MovingAverageDecomposition(nn.Module):
    """Split `[batch, time, channels]` into (seasonal, trend) with a centred moving average.

    The series is padded at both ends by repeating its first/last value, so the trend has the
    input's length and the window never averages in zeros.
    """

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        front = (self.kernel_size - 1) // 2
        back = self.kernel_size - 1 - front  # asymmetric only for even kernels
        padded = torch.cat(
            [x[:, :1].expand(-1, front, -1), x, x[:, -1:].expand(-1, back, -1)], dim=1
        )
        # avg_pool1d pools over the last axis, so move time there and back.
        trend = F.avg_pool1d(padded.transpose(1, 2), self.kernel_size, stride=1).transpose(1, 2)
        return x - trend, trend


class _ChannelwiseLinear(nn.Module):
    """One independent `Linear(in_features -> out_features)` per channel, applied in one einsum."""

    def __init__(self, n_channels: int, in_features: int, out_features: int):
        super().__init__()
        # Same init as nn.Linear (uniform in +-1/sqrt(fan_in)) so both modes start alike.
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            torch.empty(n_channels, out_features, in_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_channels, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, channels, in_features]` -> `[batch, channels, out_features]`."""
        return torch.einsum("bci,coi->bco", x, self.weight) + self.bias


class DLinear(nn.Module):
    """Trend and seasonal parts each mapped context -> horizon by a linear layer, then summed.

    Pure tensor ops, no in-place updates of parameters, so it works with
    `torch.func.functional_call` and higher-order gradients through training steps.
    """

    def __init__(self, config: DLinearConfig):
        super().__init__()
        self.config = config
        self.decomposition = MovingAverageDecomposition(config.kernel_size)
        if config.individual:
            n, L, H = config.n_channels, config.context_length, config.horizon
            self.trend_linear: nn.Module = _ChannelwiseLinear(n, L, H)
            self.seasonal_linear: nn.Module = _ChannelwiseLinear(n, L, H)
        else:
            self.trend_linear = nn.Linear(config.context_length, config.horizon)
            self.seasonal_linear = nn.Linear(config.context_length, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, context_length, channels]` -> `[batch, horizon, channels]`."""
        check_input("DLinear", x, self.config.context_length)
        seasonal, trend = self.decomposition(x)
        # Linear layers act along time: put time last ([batch, channels, time]).
        out = self.seasonal_linear(seasonal.transpose(1, 2)) + self.trend_linear(
            trend.transpose(1, 2)
        )
        return out.transpose(1, 2)
