"""The folder format where distillation and training meet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.synthetic import SyntheticSetError, read_synthetic_set, write_synthetic_set

START = pd.Timestamp("2016-07-01")


def values(rows: int = 50, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, channels)).astype(np.float32)


def test_round_trip_keeps_values_and_manifest(tmp_path):
    data = values()
    write_synthetic_set(tmp_path / "set", data, ["a", "b", "c"], "h", START,
                        {"method": "random", "seed": 3})
    loaded = read_synthetic_set(tmp_path / "set")
    np.testing.assert_array_equal(loaded.values, data)
    assert loaded.columns == ("a", "b", "c") and loaded.freq == "h" and loaded.start == START
    assert loaded.manifest["method"] == "random" and loaded.manifest["seed"] == 3


def test_data_is_a_hf_dataset_with_uni2ts_fields(tmp_path):
    import datasets

    write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START, {})
    table = datasets.load_from_disk(str(tmp_path / "set" / "data"))
    assert set(table.column_names) == {"item_id", "start", "freq", "target"}
    assert table[1]["item_id"] == "b" and len(table[1]["target"]) == 50
    assert table[0]["start"] == START.to_pydatetime()


def test_existing_folder_is_kept_unless_overwrite(tmp_path):
    write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START, {"v": 1})
    with pytest.raises(FileExistsError, match="already exists"):
        write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START, {"v": 2})
    write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START, {"v": 2},
                        overwrite=True)
    assert read_synthetic_set(tmp_path / "set").manifest["v"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    bad = values()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_synthetic_set(tmp_path / "set", bad, ["a", "b", "c"], "h", START, {})
    # A failure inside the atomic folder (here: a manifest that is not JSON) cleans up too.
    with pytest.raises(TypeError):
        write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START,
                            {"oops": object()})
    assert list(tmp_path.iterdir()) == []


def test_foreign_or_damaged_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SyntheticSetError, match="needs manifest.json"):
        read_synthetic_set(tmp_path / "empty")
    write_synthetic_set(tmp_path / "set", values(), ["a", "b", "c"], "h", START, {})
    manifest = tmp_path / "set" / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(SyntheticSetError, match="not valid JSON"):
        read_synthetic_set(tmp_path / "set")
    manifest.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(SyntheticSetError, match="format_version 99"):
        read_synthetic_set(tmp_path / "set")


def test_shape_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\[time, 2 channels\]"):
        write_synthetic_set(tmp_path / "set", values(), ["a", "b"], "h", START, {})
