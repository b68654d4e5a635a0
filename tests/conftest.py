"""Shared fixtures. The data cache points at ../shared/data (the reference files) unless
HDT_DATA_DIR is already set; tests never download anything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("HDT_DATA_DIR", str(SHARED_DATA))
# Two cores: one thread per test process keeps the suite from fighting itself.
torch.set_num_threads(1)


def sine_frame(rows: int = 600, channels: int = 3, seed: int = 0) -> pd.DataFrame:
    """A small hourly multivariate series: daily and weekly-ish sines plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    data = {"date": pd.date_range("2020-01-01", periods=rows, freq="h")}
    for c in range(channels):
        data[f"ch{c}"] = (
            np.sin(2 * np.pi * t / 24 + c)
            + 0.5 * np.sin(2 * np.pi * t / (12 + 5 * c))
            + 0.1 * rng.standard_normal(rows)
            + c
        )
    return pd.DataFrame(data)


@pytest.fixture
def sine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def shared_data_dir() -> Path:
    path = Path(os.environ["HDT_DATA_DIR"])
    if not (path / "ETTh1.csv").exists():
        pytest.skip(f"reference data not found in {path}")
    return path
