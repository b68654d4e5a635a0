"""Sliding (context, horizon) windows over a series, as a torch Dataset."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class SeriesTooShortError(ValueError):
    """A series has fewer rows than one window needs."""


class SlidingWindowDataset(Dataset):
    """Windows `x = values[s : s+context]`, `y = values[s+context : s+context+horizon]`
    for s = 0, stride, 2*stride, ...

    With `channel_independent=True` every channel of every window is its own sample of one
    channel (index = window * n_channels + channel), as univariate models and
    channel-independent training want.
    """

    def __init__(
        self,
        values: np.ndarray | torch.Tensor,
        context_length: int,
        horizon: int,
        stride: int = 1,
        channel_independent: bool = False,
        name: str = "series",
    ) -> None:
        for field, value in (("context_length", context_length), ("horizon", horizon),
                             ("stride", stride)):
            if value < 1:
                raise ValueError(f"{field} must be >= 1, got {value}")
        self.values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        if self.values.ndim != 2:
            shape = tuple(self.values.shape)
            raise ValueError(f"values must be [time, channel], got shape {shape}")
        window = context_length + horizon
        length = self.values.shape[0]
        if length < window:
            raise SeriesTooShortError(
                f"{name} has {length} rows, fewer than one window of context_length "
                f"{context_length} + horizon {horizon} = {window}; use a longer series or "
                "shorter windows"
            )
        self.context_length, self.horizon, self.stride = context_length, horizon, stride
        self.channel_independent = channel_independent
        self.n_windows = (length - window) // stride + 1
        self.n_channels = self.values.shape[1]

    def __len__(self) -> int:
        return self.n_windows * (self.n_channels if self.channel_independent else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channel_independent:
            index, channel = divmod(index, self.n_channels)
            series = self.values[:, channel : channel + 1]
        else:
            series = self.values
        start = index * self.stride
        mid = start + self.context_length
        return series[start:mid], series[mid : mid + self.horizon]

    def all_windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window at once as [n, context, c] and [n, horizon, c] views (no copy)."""
        window = self.context_length + self.horizon
        unfolded = self.values.unfold(0, window, self.stride)  # [n, channel, window]
        unfolded = unfolded.permute(0, 2, 1)
        x, y = unfolded[:, : self.context_length], unfolded[:, self.context_length :]
        if self.channel_independent:
            n, _, c = x.shape
            x = x.permute(0, 2, 1).reshape(n * c, self.context_length, 1)
            y = y.permute(0, 2, 1).reshape(n * c, self.horizon, 1)
        return x, y
