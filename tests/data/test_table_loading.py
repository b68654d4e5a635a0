"""Every kind of bad input gets a clear error naming file and column, or a logged repair."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.data import DataSpec, DataValidationError, RepairPolicy, prepare_data
from hdt_finetune.data.table_loading import load_table
from hdt_finetune.data.windows import SeriesTooShortError, SlidingWindowDataset
from tests.conftest import sine_frame


def write(frame: pd.DataFrame, tmp_path: Path, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_clean_csv_loads(tmp_path):
    table = load_table(write(sine_frame(), tmp_path))
    assert table.values.shape == (600, 3)
    assert table.values.dtype == np.float32
    assert table.columns == ("ch0", "ch1", "ch2")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_values_fail_naming_the_column(tmp_path, bad):
    frame = sine_frame()
    frame.loc[100, "ch1"] = bad
    path = write(frame, tmp_path)
    with pytest.raises(DataValidationError, match=r"bad\.csv.*'ch1'.*row 100.*--max-gap-fill"):
        load_table(path)


def test_short_gaps_are_interpolated_when_asked_and_logged(tmp_path, caplog):
    frame = sine_frame()
    frame.loc[100:101, "ch1"] = np.nan
    expected = (frame.loc[99, "ch1"] * 2 + frame.loc[102, "ch1"]) / 3
    with caplog.at_level(logging.WARNING):
        table = load_table(write(frame, tmp_path), repair=RepairPolicy(max_gap_fill=2))
    assert np.isfinite(table.values).all()
    assert table.values[100, 1] == pytest.approx(expected, rel=1e-5)
    assert "interpolated 2 missing values" in caplog.text


def test_gap_longer_than_the_allowed_fill_still_fails(tmp_path):
    frame = sine_frame()
    frame.loc[100:104, "ch0"] = np.nan
    with pytest.raises(DataValidationError, match=r"longest gap \(5\) exceeds --max-gap-fill 2"):
        load_table(write(frame, tmp_path), repair=RepairPolicy(max_gap_fill=2))


def test_constant_column_fails_then_can_be_dropped(tmp_path, caplog):
    frame = sine_frame()
    frame["flat"] = 3.0
    path = write(frame, tmp_path)
    with pytest.raises(DataValidationError, match=r"\['flat'\] are constant.*--drop-constant"):
        prepare_data(str(path), context_length=24)
    with caplog.at_level(logging.WARNING):
        data = prepare_data(DataSpec(str(path), repair=RepairPolicy(drop_constant_columns=True)),
                            context_length=24)
    assert data.columns == ("ch0", "ch1", "ch2")
    assert "dropped constant column(s) ['flat']" in caplog.text


def test_non_numeric_column_fails_naming_it(tmp_path):
    frame = sine_frame()
    frame["label"] = "x"
    with pytest.raises(DataValidationError, match=r"column 'label' is not numeric"):
        load_table(write(frame, tmp_path))


def test_unsorted_timestamps_fail_then_can_be_sorted(tmp_path, caplog):
    frame = sine_frame()
    swapped = frame.iloc[[1, 0] + list(range(2, len(frame)))].reset_index(drop=True)
    path = write(swapped, tmp_path)
    with pytest.raises(DataValidationError, match=r"not sorted \(row 1.*--sort-timestamps"):
        load_table(path)
    with caplog.at_level(logging.WARNING):
        table = load_table(path, repair=RepairPolicy(sort_timestamps=True))
    assert table.timestamps.is_monotonic_increasing
    np.testing.assert_allclose(table.values[0], frame.iloc[0, 1:].to_numpy(float), rtol=1e-6)
    assert "rows sorted" in caplog.text


def test_duplicated_timestamps_fail_then_can_be_dropped(tmp_path):
    frame = sine_frame()
    frame.loc[10, "date"] = frame.loc[9, "date"]
    path = write(frame, tmp_path)
    with pytest.raises(DataValidationError, match=r"appears more than once \(first repeat at "
                       r"row 10.*--drop-duplicate-timestamps"):
        load_table(path)
    table = load_table(path, repair=RepairPolicy(drop_duplicate_timestamps=True))
    assert len(table.values) == 599
    assert table.timestamps.is_unique


def test_missing_date_column_names_the_columns_present(tmp_path):
    path = write(sine_frame().rename(columns={"date": "when"}), tmp_path)
    with pytest.raises(DataValidationError, match=r"no date column 'date'.*'when'.*--date-column"):
        load_table(path)
    assert load_table(path, date_column="when").values.shape == (600, 3)


def test_wrong_column_name_lists_the_available_ones(tmp_path):
    path = write(sine_frame(), tmp_path)
    with pytest.raises(DataValidationError, match=r"\['OT'\] not found; available: \['ch0'"):
        load_table(path, columns=["OT"])
    assert load_table(path, columns=["ch2"]).columns == ("ch2",)


def test_series_shorter_than_one_window_fails_with_its_length():
    with pytest.raises(SeriesTooShortError, match=r"has 100 rows, fewer than one window of "
                       r"context_length 96 \+ horizon 96 = 192"):
        SlidingWindowDataset(np.zeros((100, 2)), 96, 96)


def test_unparseable_dates_fail(tmp_path):
    frame = sine_frame()
    frame["date"] = frame["date"].astype(str)
    frame.loc[5, "date"] = "not a date"
    with pytest.raises(DataValidationError, match=r"column 'date' holds values that are not dates"):
        load_table(write(frame, tmp_path))


def test_missing_file_and_unknown_dataset(tmp_path):
    with pytest.raises(DataValidationError, match="no such file"):
        load_table(tmp_path / "absent.csv")
    with pytest.raises(DataValidationError, match="neither a known dataset"):
        prepare_data("ETTh7")


def test_parquet_and_hf_folder_load_like_csv(tmp_path):
    import datasets

    frame = sine_frame()
    csv = load_table(write(frame, tmp_path))
    frame.to_parquet(tmp_path / "s.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "hf"))
    for path in (tmp_path / "s.parquet", tmp_path / "hf"):
        table = load_table(path)
        np.testing.assert_array_equal(table.values, csv.values)
        assert table.columns == csv.columns


def test_uni2ts_style_hf_folder_becomes_one_column_per_item(tmp_path):
    import datasets

    targets = np.random.default_rng(0).standard_normal((2, 50)).astype(np.float32)
    datasets.Dataset.from_dict({
        "item_id": ["a", "b"], "start": ["2021-01-01", "2021-01-01"], "freq": ["h", "h"],
        "target": [targets[0], targets[1]],
    }).save_to_disk(str(tmp_path / "items"))
    table = load_table(tmp_path / "items")
    assert table.columns == ("a", "b")
    np.testing.assert_allclose(table.values, targets.T)
    assert table.timestamps[1] - table.timestamps[0] == pd.Timedelta(hours=1)
