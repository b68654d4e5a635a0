"""Per-channel standard scaling, fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StandardScaler:
    mean: np.ndarray  # [channel]
    std: np.ndarray  # [channel]

    @classmethod
    def fit(cls, train_values: np.ndarray) -> StandardScaler:
        train_values = np.asarray(train_values, dtype=np.float64)
        return cls(mean=train_values.mean(axis=0), std=train_values.std(axis=0))

    def constant_channels(self, tolerance: float = 1e-8) -> list[int]:
        """Channels whose training values do not vary: they cannot be scaled."""
        scale = np.maximum(np.abs(self.mean), 1.0)
        return [int(c) for c in np.flatnonzero(self.std <= tolerance * scale)]

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)
