"""The reference points: the whole train split, and a random real subsequence per channel."""

from __future__ import annotations

import numpy as np


def random_subset(train: np.ndarray, length: int, seed: int) -> np.ndarray:
    """For each channel independently, a random contiguous subsequence of `length` rows."""
    n_rows, n_channels = train.shape
    if not 1 <= length <= n_rows:
        raise ValueError(f"length must be in [1, {n_rows}] (the train split's rows), got {length}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_rows - length + 1, size=n_channels)
    return np.stack([train[s : s + length, c] for c, s in enumerate(starts)], axis=1)


def full_data(train: np.ndarray, length: int, seed: int) -> np.ndarray:
    """The whole train split (length and seed do not apply)."""
    del length, seed
    return np.array(train, copy=True)
