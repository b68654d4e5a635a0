"""A pretraining corpus of univariate windows from several datasets plus generated series.

The offline stand-in for published foundation-model weights is pretrained on such a corpus,
which must leave out the dataset it will be evaluated on. Each dataset contributes the
windows of its own train split, scaled with its own train statistics. Generated series add
structure no real dataset here has enough of: seasonal mixtures with trend and AR noise,
draws from Gaussian processes whose kernels are random sums and products of periodic,
smooth, linear, rational-quadratic and white-noise kernels, and random convex combinations
of stretches of the corpus' own real series (the two kinds of synthetic data that pretrained
Chronos: kernel compositions and mixup).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from hdt_finetune.checksums import sha256_of_values
from hdt_finetune.data.prepared_data import prepare_data

GENERATED = "generated"
# What `generated` holds; part of a stand-in's cache name, so a new mix is never served from
# a stand-in pretrained on the old one (2: Gaussian-process draws added; 3: four times as
# many generated series, and mixtures of the real series).
CORPUS_VERSION = 3
GENERATED_SERIES = 64  # seasonal mixtures of GENERATED_LENGTH steps; as many points of the rest
GENERATED_LENGTH = 4096


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


def mixup_series(blocks: list[np.ndarray], n_series: int, length: int,
                 seed: int) -> np.ndarray:
    """[length, n_series] standardised convex combinations (Dirichlet weights) of 1-3 random
    stretches of `length` steps from the columns of `blocks` ([time, series] each), every
    stretch standardised first so that no series' scale dominates. Blocks shorter than
    `length` are not drawn from; none long enough gives no columns."""
    rng = np.random.default_rng(seed)
    usable = [block for block in blocks if block.shape[0] >= length]
    if not usable:
        return np.zeros((length, 0), dtype=np.float32)
    columns = []
    for _ in range(n_series):
        series = np.zeros(length)
        for weight in rng.dirichlet(np.ones(rng.integers(1, 4))):
            block = usable[rng.integers(len(usable))]
            start = rng.integers(block.shape[0] - length + 1)
            piece = block[start:start + length, rng.integers(block.shape[1])]
            series += weight * (piece - piece.mean()) / max(float(piece.std()), 1e-8)
        columns.append((series - series.mean()) / max(float(series.std()), 1e-8))
    return np.stack(columns, axis=1).astype(np.float32)


def corpus_windows(sources: list[str], context_length: int, horizon: int,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict[str, dict]]:
    """Univariate (context, target) windows from every source's train split; the source
    `generated` stands for GENERATED_SERIES seasonal mixtures of GENERATED_LENGTH steps and
    as many points each of Gaussian-process draws and of mixtures of the other sources' real
    series (pieces of GP_LENGTH steps). Also returns each part's points and content
    checksum."""
    from hdt_finetune.finetune.finetune_data import univariate_windows

    blocks = {source: _real_block(source, context_length)
              for source in sources if source != GENERATED}
    if GENERATED in sources:
        blocks[GENERATED] = _generated_blocks([values for values, _ in blocks.values()], seed)
    xs, ys, parts = [], [], {}
    for source in sources:  # in the order asked for
        source_blocks = blocks[source] if source == GENERATED else [blocks[source]]
        for values, _ in source_blocks:
            x, y = univariate_windows(values, context_length, horizon, 1,
                                      f"corpus part {source}")
            xs.append(x)
            ys.append(y)
        digests = [sha256_of_values(values, names) for values, names in source_blocks]
        parts[source] = {"points": sum(int(values.size) for values, _ in source_blocks),
                         "content_sha256": digests[0] if len(digests) == 1 else
                         hashlib.sha256("".join(digests).encode()).hexdigest()}
    return torch.cat(xs), torch.cat(ys), parts


def _real_block(source: str, context_length: int) -> tuple[np.ndarray, list[str]]:
    prepared = prepare_data(source, context_length)
    return prepared.train, list(prepared.columns)


def _generated_blocks(real: list[np.ndarray], seed: int) -> list[tuple[np.ndarray, list[str]]]:
    """The generated part's series in blocks of one length each."""
    mixtures = generated_series(GENERATED_SERIES, GENERATED_LENGTH, seed)
    # As many points of GP draws and of real mixtures, in pieces short enough for a cheap
    # Cholesky factor.
    pieces = GENERATED_SERIES * GENERATED_LENGTH // GP_LENGTH
    draws = kernel_series(pieces, GP_LENGTH, seed)
    blocks = [(mixtures, [f"{GENERATED}_{i}" for i in range(mixtures.shape[1])]),
              (draws, [f"{GENERATED}_gp_{i}" for i in range(draws.shape[1])])]
    mixed = mixup_series(real, pieces, GP_LENGTH, seed)
    if mixed.shape[1]:
        blocks.append((mixed, [f"{GENERATED}_mix_{i}" for i in range(mixed.shape[1])]))
    return blocks
