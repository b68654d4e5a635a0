"""The matching target of `hdt_fm`: a frozen foundation model's embeddings of real windows.

Distribution matching: the synthetic series is pushed so that, channel by channel, the mean
and per-dimension std of its windows' embeddings equal those of the real train split's. The
real statistics are computed once (the model is frozen), so an iteration costs one forward
and one input-gradient pass over `fm.windows` windows per channel, and no inner loop runs.
"""

from __future__ import annotations

import torch

from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.frozen_model import FrozenModel, univariate
from hdt_finetune.distill.settings import DistillSettings


class EmbeddingTarget(FrozenModel):
    def __init__(self, settings: DistillSettings, real: torch.Tensor, seed: int) -> None:
        super().__init__(settings, seed)
        self.real_mean, self.real_std = self._real_statistics(real, seed)
        fm = settings.fm
        scale = self.real_mean.pow(2).sum() + fm.std_weight * self.real_std.pow(2).sum()
        self.scale = float(scale.clamp_min(1e-12))

    def _embed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[n, L, C], [n, H, C] -> [n, C, D], every channel a univariate window."""
        n, _, channels = x.shape
        return self.adapter.embed(self.model, univariate(x), univariate(y)).reshape(
            n, channels, -1)

    @torch.no_grad()
    def _real_statistics(self, real: torch.Tensor, seed: int) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
        embedded = torch.cat([self._embed(x, y) for x, y in self.real_windows(real, seed)])
        return embedded.mean(dim=0), embedded.std(dim=0, unbiased=False)  # over [n, C, D]

    def loss(self, signal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The distance of `signal`'s window statistics from the real ones, relative to the
        real statistics' size (1 means as far as zero embeddings)."""
        s = self.settings
        x, y = windows_of(signal, s.context_length, s.horizon)
        pick = torch.randperm(x.shape[0], generator=generator)[: s.fm.windows]
        embedded = self._embed(x[pick], y[pick])
        mean_gap = (embedded.mean(dim=0) - self.real_mean).pow(2).sum()
        std = (embedded.var(dim=0, unbiased=False) + 1e-8).sqrt()
        std_gap = (std - self.real_std).pow(2).sum()
        return (mean_gap + s.fm.std_weight * std_gap) / self.scale

    def real_flops(self, channels: int) -> float:
        """Forward passes (2 N per token) over the real windows, once."""
        per_window = self.n_parameters * self.adapter.tokens_per_window()
        return 2.0 * per_window * self.settings.fm.real_windows * channels

    def iteration_flops(self, channels: int, length: int) -> float:
        """Forward and input-gradient passes (4 N per token) over the synthetic windows."""
        s = self.settings
        per_window = self.n_parameters * self.adapter.tokens_per_window()
        windows = length - s.context_length - s.horizon + 1
        return 4.0 * per_window * min(s.fm.windows, windows) * channels
