"""The one streaming pass: exact statistics, uniform bounded samples, chunking invisible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.corpus import open_corpus
from hdt_finetune.corpus.streaming_pass import Moments, PassSettings, Reservoir, stream_corpus

SMALL = PassSettings(context_length=12, horizon=4, length=32, window_reservoir=10_000,
                     pool_size=10_000)


def write(folder, columns: dict[str, np.ndarray]):
    folder.mkdir(parents=True, exist_ok=True)
    longest = max(v.size for v in columns.values())
    for name, values in columns.items():  # one file per series: lengths may differ
        padded = pd.DataFrame({name: values})
        padded.to_parquet(folder / f"{name}.parquet", row_group_size=64, index=False)
    return longest


def test_moments_merge_exactly():
    rng = np.random.default_rng(0)
    values = rng.normal(3, 2, 10_001)
    moments = Moments()
    for piece in np.array_split(values, 7):
        moments.add(piece)
    assert moments.count == values.size
    assert moments.mean == pytest.approx(values.mean(), rel=1e-12)
    assert moments.std == pytest.approx(values.std(), rel=1e-10)


def test_the_reservoir_is_bounded_and_uniform():
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(200):
        reservoir = Reservoir(capacity=100, width=1)
        for size in (7, 300, 13, 580, 100):  # 1000 items in uneven chunks
            chosen, slots = reservoir.offer(size, rng)
            reservoir.items[slots, 0] = reservoir.seen - size + chosen
        assert reservoir.filled.shape == (100, 1)
        assert np.unique(reservoir.filled).size == 100
        kept.append(reservoir.filled[:, 0])
    counts = np.bincount(np.concatenate(kept).astype(int), minlength=1000)
    # Each item kept with probability 0.1: 20 times in 200 trials, whatever its position.
    first, last = counts[:500].mean(), counts[500:].mean()
    assert 18 < first < 22 and 18 < last < 22


def test_chunking_changes_nothing(tmp_path):
    rng = np.random.default_rng(1)
    write(tmp_path / "c", {"a": rng.standard_normal(500), "b": rng.standard_normal(333)})
    results = [stream_corpus(open_corpus(tmp_path / "c", chunk_rows=rows), SMALL, seed=0,
                             show_progress=False) for rows in (17, 64, 10_000)]
    for result in results[1:]:
        assert result.counts == results[0].counts
        assert result.moments.mean == pytest.approx(results[0].moments.mean, rel=1e-12)
        # The reservoir holds every window (it is larger than the corpus): same set of rows.
        for name in ("windows", "pool"):
            ours = np.sort(getattr(result, name).filled, axis=0)
            np.testing.assert_allclose(ours, np.sort(getattr(results[0], name).filled, axis=0),
                                       atol=1e-5)
    assert results[0].counts["windows"] == (500 - 15) + (333 - 15)
    windows = results[0].windows.filled
    np.testing.assert_allclose(windows[:, :12].mean(axis=1), 0, atol=1e-5)  # context-normed
    np.testing.assert_allclose(windows[:, :12].std(axis=1), 1, atol=1e-4)


def test_bad_points_are_skipped_and_counted(tmp_path):
    rng = np.random.default_rng(2)
    holed = rng.standard_normal(200)
    holed[100] = np.nan
    write(tmp_path / "c", {"holed": holed, "flat": np.full(100, 4.0),
                           "short": rng.standard_normal(10)})
    result = stream_corpus(open_corpus(tmp_path / "c", chunk_rows=50), SMALL, seed=0,
                           show_progress=False)
    assert result.counts["series"] == 3 and result.counts["short_series"] == 1
    assert result.counts["points"] == 310
    assert result.moments.count == 309  # the NaN is not a point of the statistics
    # 16 windows of "holed" touch the NaN; all 85 of "flat" have a constant context.
    assert result.counts["windows"] == (200 - 15 - 16)
    assert result.counts["windows_skipped"] == 16 + 85
    assert np.isfinite(result.windows.filled).all()


def test_memory_is_set_by_the_settings_not_the_corpus(tmp_path):
    rng = np.random.default_rng(3)
    settings = PassSettings(context_length=12, horizon=4, length=32, window_reservoir=64,
                            pool_size=16)
    small = write(tmp_path / "small", {"a": rng.standard_normal(1_000)})
    large = write(tmp_path / "large", {f"s{i}": rng.standard_normal(5_000) for i in range(8)})
    assert large * 8 > 30 * small
    shapes = [(r.windows.items.shape, r.pool.items.shape) for r in (
        stream_corpus(open_corpus(tmp_path / name, chunk_rows=256), settings, seed=0,
                      show_progress=False) for name in ("small", "large"))]
    assert shapes[0] == shapes[1] == ((64, 16), (16, 32))
