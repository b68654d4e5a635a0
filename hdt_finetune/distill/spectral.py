"""Frequency-domain pieces of HDT: the rFFT parameterisation, top-k harmonic selection,
harmonic filtering and the amplitude harmonic loss.

Shapes: a series is [time, channel]; its spectrum is [bins, channel] with bins = time // 2 + 1.
"""

from __future__ import annotations

import torch


def to_spectrum(series: torch.Tensor) -> torch.Tensor:
    """Real series [M, C] -> complex rFFT coefficients [M//2 + 1, C] (orthonormal scaling,
    so amplitudes do not grow with M)."""
    return torch.fft.rfft(series, dim=0, norm="ortho")


def to_series(spectrum: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of `to_spectrum`: complex [M//2 + 1, C] -> real [length, C]."""
    return torch.fft.irfft(spectrum, n=length, dim=0, norm="ortho")


def top_k_mask(spectrum: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean [bins, C]: per channel, the k bins of largest amplitude (all bins if k >= bins)."""
    bins = spectrum.shape[0]
    if k >= bins:
        return torch.ones(spectrum.shape, dtype=torch.bool, device=spectrum.device)
    indices = spectrum.abs().topk(k, dim=0).indices  # [k, C]
    mask = torch.zeros(spectrum.shape, dtype=torch.bool, device=spectrum.device)
    return mask.scatter(0, indices, True)


def harmonic_loss(
    real_spectrum: torch.Tensor, synthetic_spectrum: torch.Tensor, mask: torch.Tensor, p: float
) -> torch.Tensor:
    """|| |F~_X| - |F~_S| ||_p over the selected bins, averaged over channels.

    Only amplitudes are compared: phase is left free.
    """
    difference = (real_spectrum.abs() - synthetic_spectrum.abs()) * mask
    return torch.linalg.vector_norm(difference, ord=p, dim=0).mean()


def harmonic_filter(series: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep only the masked bins of `series`' spectrum: iFFT(F * mask)."""
    return to_series(to_spectrum(series) * mask, series.shape[0])


def filter_in_segments(series: torch.Tensor, segment: int, k: int) -> torch.Tensor:
    """Harmonic-filter a long series [T, C] segment by segment.

    Each non-overlapping segment of `segment` rows keeps its own top-k harmonics per channel,
    the same filter HDT applies to a sampled real subsequence of length M. A shorter tail
    segment is filtered with its own spectrum.
    """
    pieces = []
    for start in range(0, series.shape[0], segment):
        piece = series[start : start + segment]
        pieces.append(harmonic_filter(piece, top_k_mask(to_spectrum(piece), k)))
    return torch.cat(pieces, dim=0)
