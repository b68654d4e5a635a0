"""The frequency-domain pieces: parameterisation, harmonic selection, loss, filter."""

from __future__ import annotations

import torch

from hdt_finetune.distill.spectral import (
    filter_in_segments,
    harmonic_filter,
    harmonic_loss,
    to_series,
    to_spectrum,
    top_k_mask,
)


def planted(length: int = 384, periods=(24, 96, 12), channels: int = 2) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float32)
    columns = []
    for c in range(channels):
        columns.append(sum((3 - i) * torch.sin(2 * torch.pi * t / p + c)
                           for i, p in enumerate(periods)))
    return torch.stack(columns, dim=1)


def test_fft_parameterisation_round_trips():
    series = torch.randn(384, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(to_series(to_spectrum(series), 384), series, atol=1e-5)
    odd = torch.randn(101, 2)
    assert torch.allclose(to_series(to_spectrum(odd), 101), odd, atol=1e-5)
    assert to_spectrum(series).shape == (193, 3)


def test_harmonic_selection_finds_the_planted_frequencies():
    series = planted() + 0.05 * torch.randn(384, 2, generator=torch.Generator().manual_seed(1))
    mask = top_k_mask(to_spectrum(series), k=3)
    expected = {384 // 24, 384 // 96, 384 // 12}  # bin index = length / period
    for c in range(2):
        assert set(torch.nonzero(mask[:, c]).flatten().tolist()) == expected


def test_filter_keeps_the_planted_signal_and_drops_noise():
    clean = planted()
    noisy = clean + 0.3 * torch.randn(384, 2, generator=torch.Generator().manual_seed(2))
    filtered = harmonic_filter(noisy, top_k_mask(to_spectrum(noisy), k=3))
    assert (filtered - clean).pow(2).mean() < 0.1 * (noisy - clean).pow(2).mean()
    segmented = filter_in_segments(noisy.repeat(3, 1), segment=384, k=3)
    assert segmented.shape == (3 * 384, 2)
    assert torch.allclose(segmented[384:768], filtered, atol=1e-4)


def test_harmonic_loss_compares_amplitudes_only_on_selected_bins():
    series = planted()
    spectrum = to_spectrum(series)
    mask = top_k_mask(spectrum, k=3)
    shifted = to_spectrum(torch.roll(series, 5, dims=0))  # same amplitudes, other phases
    assert harmonic_loss(spectrum, shifted, mask, p=2.0) < 1e-3
    assert harmonic_loss(spectrum, 0.5 * spectrum, mask, p=2.0) > 1.0
    outside = spectrum.clone()
    outside[100] += 10.0  # bin 100 is not among the planted harmonics
    assert harmonic_loss(spectrum, outside, mask, p=1.0) < 1e-5
