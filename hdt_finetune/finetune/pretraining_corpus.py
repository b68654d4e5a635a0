"""A pretraining corpus of univariate windows from several datasets plus generated series.

The offline stand-in for published foundation-model weights is pretrained on such a corpus,
which must leave out the dataset it will be evaluated on. Each dataset contributes the
windows of its own train split, scaled with its own train statistics. Generated series add
structure no real dataset here has enough of: seasonal mixtures with trend and AR noise, and
draws from Gaussian processes whose kernels are random sums and products of periodic,
smooth, linear, rational-quadratic and white-noise kernels (the kind of synthetic data
that pretrained Chronos).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from hdt_finetune.checksums import sha256_of_values
from hdt_finetune.data.prepared_data import prepare_data

GENERATED = "generated"
# What `generated` holds; part of a stand-in's cache name, so a new mix is never served from
# a stand-in pretrained on the old one (2: Gaussian-process draws added).
CORPUS_VERSION = 2


def generated_series(n_series: int, length: int, seed: int) -> np.ndarray:
    """[length, n_series] standardised mixtures of daily/weekly-like seasonality, a random
    trend and AR(1) noise, with random periods, amplitudes and phases."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    columns = []
    for _ in range(n_series):
        series = np.zeros(length)
        for period in rng.choice([12, 24, 48, 96, 168], size=rng.integers(1, 4), replace=False):
            series += rng.uniform(0.2, 2.0) * np.sin(2 * np.pi * t / period
                                                     + rng.uniform(0, 2 * np.pi))
        series += rng.normal(0, 1) * t / length
        noise = np.zeros(length)
        phi, sigma = rng.uniform(0, 0.9), rng.uniform(0.05, 0.5)
        for i in range(1, length):
            noise[i] = phi * noise[i - 1] + sigma * rng.standard_normal()
        series += noise
        columns.append((series - series.mean()) / series.std())
    return np.stack(columns, axis=1).astype(np.float32)


GP_LENGTH = 1024
PERIODS = (4, 7, 12, 24, 48, 96, 168, 336)  # hours, days, weeks, at several sampling rates


def _kernel(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """One random base kernel on times `t` (scaled to [0, 1]) as a matrix."""
    d = t[:, None] - t[None, :]
    kind = rng.integers(5)
    if kind == 0:  # periodic: a period from PERIODS steps
        period = rng.choice(PERIODS) / len(t)
        return np.exp(-2 * np.sin(np.pi * np.abs(d) / period) ** 2 / rng.uniform(0.5, 2) ** 2)
    if kind == 1:  # smooth (RBF)
        return np.exp(-(d**2) / (2 * rng.uniform(0.01, 0.5) ** 2))
    if kind == 2:  # linear: trends
        return np.outer(t, t) + rng.uniform(0, 1)
    if kind == 3:  # rational quadratic: several length scales at once
        alpha = rng.uniform(0.1, 2)
        return (1 + d**2 / (2 * alpha * rng.uniform(0.01, 0.5) ** 2)) ** -alpha
    return np.eye(len(t)) * rng.uniform(0.01, 0.1)  # white noise


def kernel_series(n_series: int, length: int, seed: int, max_kernels: int = 5) -> np.ndarray:
    """[length, n_series] standardised draws from zero-mean Gaussian processes, each with a
    kernel made of 1..max_kernels random base kernels joined by random sums and products."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    columns = []
    for _ in range(n_series):
        kernel = _kernel(rng, t)
        for _ in range(rng.integers(0, max_kernels)):
            other = _kernel(rng, t)
            kernel = kernel + other if rng.random() < 0.5 else kernel * other
        # Jitter for the Cholesky factor: products of kernels can be numerically singular.
        factor = np.linalg.cholesky(kernel + 1e-6 * np.trace(kernel) / length * np.eye(length))
        series = factor @ rng.standard_normal(length)
        columns.append((series - series.mean()) / max(series.std(), 1e-8))
    return np.stack(columns, axis=1).astype(np.float32)


def corpus_windows(sources: list[str], context_length: int, horizon: int,
                   generated: int = 16, generated_length: int = 4096,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict[str, dict]]:
    """Univariate (context, target) windows from every source's train split; the source
    `generated` stands for `generated` seasonal mixtures of `generated_length` steps and as
    many points of Gaussian-process draws (pieces of GP_LENGTH steps). Also returns each
    part's points and content checksum."""
    from hdt_finetune.finetune.finetune_data import univariate_windows

    xs, ys, parts = [], [], {}
    for source in sources:
        blocks = _blocks(source, context_length, generated, generated_length, seed)
        for values, _ in blocks:
            x, y = univariate_windows(values, context_length, horizon, 1,
                                      f"corpus part {source}")
            xs.append(x)
            ys.append(y)
        digests = [sha256_of_values(values, names) for values, names in blocks]
        parts[source] = {"points": sum(int(values.size) for values, _ in blocks),
                         "content_sha256": digests[0] if len(digests) == 1 else
                         hashlib.sha256("".join(digests).encode()).hexdigest()}
    return torch.cat(xs), torch.cat(ys), parts


def _blocks(source: str, context_length: int, generated: int, generated_length: int,
            seed: int) -> list[tuple[np.ndarray, list[str]]]:
    """A source's series ([time, series]) and their names, in blocks of one length."""
    if source != GENERATED:
        prepared = prepare_data(source, context_length)
        return [(prepared.train, list(prepared.columns))]
    mixtures = generated_series(generated, generated_length, seed)
    # As many points of GP draws, in pieces short enough for a cheap Cholesky factor.
    piece = min(generated_length, GP_LENGTH)
    draws = kernel_series(generated * generated_length // piece, piece, seed)
    return [(mixtures, [f"{GENERATED}_{i}" for i in range(mixtures.shape[1])]),
            (draws, [f"{GENERATED}_gp_{i}" for i in range(draws.shape[1])])]
