"""A pretraining corpus of univariate windows from several datasets plus generated series.

The offline stand-in for published foundation-model weights is pretrained on such a corpus,
which must leave out the dataset it will be evaluated on. Each dataset contributes the
windows of its own train split, scaled with its own train statistics; generated series add
clean periodic structure no real dataset here has enough of.
"""

from __future__ import annotations

import numpy as np
import torch

from hdt_finetune.checksums import sha256_of_values
from hdt_finetune.data.prepared_data import prepare_data

GENERATED = "generated"


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


def corpus_windows(sources: list[str], context_length: int, horizon: int,
                   generated: int = 16, generated_length: int = 4096,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict[str, dict]]:
    """Univariate (context, target) windows from every source's train split; the source
    `generated` stands for `generated` series of `generated_length` steps. Also returns each
    part's points and content checksum."""
    from hdt_finetune.finetune.finetune_data import univariate_windows

    xs, ys, parts = [], [], {}
    for source in sources:
        if source == GENERATED:
            values = generated_series(generated, generated_length, seed)
            names = [f"{GENERATED}_{i}" for i in range(values.shape[1])]
        else:
            prepared = prepare_data(source, context_length)
            values, names = prepared.train, prepared.columns
        x, y = univariate_windows(values, context_length, horizon, 1, f"corpus part {source}")
        xs.append(x)
        ys.append(y)
        parts[source] = {"points": int(values.size),
                         "content_sha256": sha256_of_values(values, names)}
    return torch.cat(xs), torch.cat(ys), parts
