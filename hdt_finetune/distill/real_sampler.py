"""Where the real side of a distillation draws its data: one multivariate series, or a pool
of real subsequences gathered from a corpus. The matching engine sees only this interface.

Both give real subsequences of length M as `[M, n_channels]`: a series draws each channel's
start independently; a pool draws `n_channels` subsequences, any of which may stand for any
channel (`channels_interchangeable`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from hdt_finetune.distill.spectral import harmonic_filter, to_spectrum, top_k_mask


class RealSampler(ABC):
    n_channels: int
    channels_interchangeable: bool

    @abstractmethod
    def subsequences(self, length: int, generator: torch.Generator) -> torch.Tensor:
        """One random real subsequence of `length` rows per channel, `[length, n_channels]`."""

    @abstractmethod
    def aligned(self, length: int, generator: torch.Generator) -> torch.Tensor:
        """One real multivariate subsequence (the channels at the same times)."""


class SeriesSampler(RealSampler):
    """The scaled train split of one dataset, `[time, channel]`."""

    channels_interchangeable = False

    def __init__(self, series: torch.Tensor) -> None:
        self.series = series
        self.n_channels = series.shape[1]

    def subsequences(self, length: int, generator: torch.Generator) -> torch.Tensor:
        n_rows, n_channels = self.series.shape
        starts = torch.randint(0, n_rows - length + 1, (n_channels,), generator=generator)
        return torch.stack([self.series[int(s) : int(s) + length, c]
                            for c, s in enumerate(starts)], dim=1)

    def aligned(self, length: int, generator: torch.Generator) -> torch.Tensor:
        start = int(torch.randint(0, self.series.shape[0] - length + 1, (1,),
                                  generator=generator))
        return self.series[start : start + length].clone()


class PoolSampler(RealSampler):
    """Real subsequences of length M gathered from a corpus (`[P, M]`, each standardised)."""

    channels_interchangeable = True

    def __init__(self, subsequences: torch.Tensor, n_channels: int) -> None:
        if subsequences.shape[0] == 0:
            raise ValueError("the corpus gave no real subsequence of the synthetic length; "
                             "use a shorter --length or a corpus with longer series")
        self.pool, self.n_channels = subsequences, n_channels

    def subsequences(self, length: int, generator: torch.Generator) -> torch.Tensor:
        if length != self.pool.shape[1]:
            raise ValueError(f"the pool holds length {self.pool.shape[1]}, asked for {length}")
        rows = torch.randint(0, self.pool.shape[0], (self.n_channels,), generator=generator)
        return self.pool[rows].T.contiguous()

    def aligned(self, length: int, generator: torch.Generator) -> torch.Tensor:
        raise ValueError("init=aligned needs one multivariate series, not a corpus")


def initial_series(sampler: RealSampler, length: int, init: str, generator: torch.Generator,
                   top_k: int) -> torch.Tensor:
    if init == "real":
        return sampler.subsequences(length, generator)
    if init == "harmonic":  # a real subsequence reduced to its own top-k harmonics
        series = sampler.subsequences(length, generator)
        return harmonic_filter(series, top_k_mask(to_spectrum(series), top_k))
    if init == "aligned":
        return sampler.aligned(length, generator)
    return torch.randn(length, sampler.n_channels, generator=generator)


def real_bin_scale(sampler: RealSampler, length: int, seed: int,
                   draws: int = 64) -> torch.Tensor:
    """Mean real amplitude of each rFFT bin over `draws` random subsequences, per channel
    ([M//2 + 1, C]; floored at 1% of the channel's largest). Drawn with a generator of its
    own, so the distillation's random stream is untouched."""
    generator = torch.Generator().manual_seed(seed + 104_729)
    amplitude = torch.stack([to_spectrum(sampler.subsequences(length, generator)).abs()
                             for _ in range(draws)]).mean(dim=0)
    if sampler.channels_interchangeable:
        amplitude = amplitude.mean(dim=1, keepdim=True).expand(-1, sampler.n_channels)
    return torch.maximum(amplitude, 0.01 * amplitude.max(dim=0, keepdim=True).values)
