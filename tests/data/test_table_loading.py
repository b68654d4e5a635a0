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


def test_a_value_beyond_float32_is_refused_naming_column_and_row(tmp_path):
    frame = sine_frame()
    frame["ch2"] = frame["ch2"].astype(float)
    frame.loc[42, "ch2"] = 1e39  # finite in float64, infinite once cast for training
    with pytest.raises(DataValidationError,
                       match=r"bad\.csv: column 'ch2' holds 1e\+39 at row 42, outside the float32"):
        load_table(write(frame, tmp_path))


@pytest.mark.parametrize(("content", "message"), [
    (b"date,a,b\n", "holds a header but no data rows"),
    (b"", "is empty: it holds no header and no rows"),
    (bytes(range(256)) * 4, "cannot be read as CSV"),
])
def test_unreadable_csv_files_are_named(tmp_path, content, message):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=message) as raised:
        prepare_data(str(path))
    assert str(path) in str(raised.value)


def test_a_dataset_folder_is_checksummed_by_its_contents(tmp_path):
    import datasets

    frame = sine_frame()
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "hf"))
    first = prepare_data(str(tmp_path / "hf"), context_length=24)
    assert first.sha256 and first.sha256 == prepare_data(str(tmp_path / "hf"), 24).sha256
    frame.loc[10, "ch0"] += 1.0  # new contents, same folder: the expert cache must notice
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "hf2"))
    (tmp_path / "hf").rename(tmp_path / "old")
    (tmp_path / "hf2").rename(tmp_path / "hf")
    assert prepare_data(str(tmp_path / "hf"), context_length=24).sha256 != first.sha256


def test_a_registry_dataset_gets_its_files_known_repair_logged_a_user_file_does_not(
        tmp_path, monkeypatch, caplog):
    from hdt_finetune.data import dataset_registry
    from hdt_finetune.data.dataset_registry import DatasetSpec

    frame = sine_frame(rows=300)
    frame = pd.concat([frame.iloc[:120], frame.iloc[119:120], frame.iloc[120:]])
    frame.to_csv(tmp_path / "toy_weather.csv", index=False)  # one repeated timestamp
    spec = DatasetSpec("toy_weather", "toy_weather.csv", "https://example.org/toy_weather.csv",
                       None, "h", "ratio_70_10_20", 301, 3,
                       known_repair=RepairPolicy(drop_duplicate_timestamps=True),
                       known_repair_reason="the canonical file repeats one timestamp")
    monkeypatch.setitem(dataset_registry.DATASETS, "toy_weather", spec)
    monkeypatch.setenv("HDT_DATA_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        data = prepare_data("toy_weather", context_length=24)
    assert len(data.train) + len(data.val) + len(data.test) - 48 == 300
    assert "known repair of its canonical file (the canonical file repeats" in caplog.text
    assert "dropped 1 rows with duplicated timestamps" in caplog.text
    with pytest.raises(DataValidationError, match="appears more than once"):
        prepare_data(str(tmp_path / "toy_weather.csv"), context_length=24)
    assert dataset_registry.DATASETS["weather"].known_repair.drop_duplicate_timestamps
