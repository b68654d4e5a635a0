"""The reference points: the whole train split, and a random real subsequence per channel."""

from __future__ import annotations

import numpy as np
import torch

from hdt_finetune.distill.real_sampler import SeriesSampler


def random_subset(train: np.ndarray, length: int, seed: int) -> np.ndarray:
    """For each channel independently, a random contiguous subsequence of `length` rows,
    drawn as the trajectory methods draw their initial series (`init=real`) with the same
    seed: Random is where MTT, CondTSF and HDT start, so comparing them is paired."""
    n_rows, _ = train.shape
    if not 1 <= length <= n_rows:
        raise ValueError(f"length must be in [1, {n_rows}] (the train split's rows), got {length}")
    generator = torch.Generator().manual_seed(seed)
    return SeriesSampler(torch.as_tensor(train)).subsequences(length, generator).numpy()


def full_data(train: np.ndarray, length: int, seed: int) -> np.ndarray:
    """The whole train split (length and seed do not apply)."""
    del length, seed
    return np.array(train, copy=True)
