"""Generated corpora of any size for tests and the scaling benchmark, written as Parquet files.

Each series mixes one to three seasonalities (periods 12 to 168 steps, random amplitudes and
phases, drawn per series), a random linear trend, a random level and scale, and AR(1) noise
of random persistence and strength: the structure of energy, traffic and weather series
without their licences. The AR filter runs in the frequency domain, so 10^8 points take
seconds, not minutes of Python loops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hdt_finetune.atomic_files import atomic_directory

PERIODS = np.array([12, 24, 48, 96, 168])


def generated_block(n_series: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """[length, n_series] float32 series (see the module docstring)."""
    t = np.arange(length, dtype=np.float64)[:, None]
    values = np.zeros((length, n_series))
    for component in range(3):  # the first seasonality always, two more by chance
        present = np.ones(n_series, bool) if component == 0 else rng.random(n_series) < 0.5
        period = rng.choice(PERIODS, n_series)
        amplitude = rng.uniform(0.2, 2.0, n_series) * present
        values += amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi,
                                                                         n_series))
    values += rng.normal(0, 1, n_series) * t / length
    phi = rng.uniform(0.0, 0.9, n_series)
    sigma = rng.uniform(0.05, 0.5, n_series)
    frequencies = np.fft.rfftfreq(length)[:, None]
    response = 1 / (1 - phi * np.exp(-2j * np.pi * frequencies))  # AR(1) transfer function
    white = rng.standard_normal((length, n_series))
    values += sigma * np.fft.irfft(np.fft.rfft(white, axis=0) * response, n=length, axis=0)
    level, scale = rng.normal(0, 10, n_series), rng.lognormal(0, 1, n_series)
    return (level + scale * values).astype(np.float32)


def write_generated_corpus(folder: str | Path, points: int, series_length: int = 100_000,
                           series_per_file: int = 10, seed: int = 0,
                           row_group_rows: int = 20_000) -> Path:
    """Write about `points` points as Parquet files of `series_per_file` columns of
    `series_length` rows (the last file may be shorter), atomically."""
    if points < 1 or series_length < 1 or series_per_file < 1:
        raise ValueError("points, series_length and series_per_file must be >= 1")
    rng = np.random.default_rng(seed)
    per_file = series_length * series_per_file
    with atomic_directory(Path(folder), overwrite=True) as tmp:
        for index, start in enumerate(range(0, points, per_file)):
            rows = min(series_length, -(-(points - start) // series_per_file))
            block = generated_block(series_per_file, rows, rng)
            frame = pd.DataFrame(block, columns=[f"series_{index}_{c}"
                                                 for c in range(series_per_file)])
            frame.to_parquet(tmp / f"part-{index:05d}.parquet", row_group_size=row_group_rows,
                             index=False)
    return Path(folder)
