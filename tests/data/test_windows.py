from __future__ import annotations

import numpy as np
import pytest
import torch

from hdt_finetune.data import SlidingWindowDataset


def test_windows_cover_every_start_and_split_context_from_horizon():
    values = np.arange(30, dtype=np.float32).reshape(15, 2)
    windows = SlidingWindowDataset(values, context_length=4, horizon=3)
    assert len(windows) == 15 - 7 + 1
    x, y = windows[2]
    np.testing.assert_array_equal(x.numpy(), values[2:6])
    np.testing.assert_array_equal(y.numpy(), values[6:9])
    x_all, y_all = windows.all_windows()
    assert torch.equal(x_all[2], x) and torch.equal(y_all[2], y)


def test_stride_skips_starts():
    windows = SlidingWindowDataset(np.zeros((20, 1)), 4, 2, stride=5)
    assert len(windows) == 3  # starts 0, 5, 10 (15 + 6 > 20)


def test_channel_independent_mode_yields_one_channel_per_sample():
    values = np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32)
    windows = SlidingWindowDataset(values, 4, 2, channel_independent=True)
    assert len(windows) == 7 * 3
    x, y = windows[3 * 2 + 1]  # window 2, channel 1
    np.testing.assert_array_equal(x[:, 0].numpy(), values[2:6, 1])
    np.testing.assert_array_equal(y[:, 0].numpy(), values[6:8, 1])
    x_all, y_all = windows.all_windows()
    assert torch.equal(x_all[7], x) and torch.equal(y_all[7], y)


@pytest.mark.parametrize("field", ["context_length", "horizon", "stride"])
def test_non_positive_sizes_are_refused(field):
    sizes = {"context_length": 4, "horizon": 2, "stride": 1, field: 0}
    with pytest.raises(ValueError, match=field):
        SlidingWindowDataset(np.zeros((20, 1)), **sizes)
