"""Named datasets, the checksummed cache, the protocol's splits and train-only scaling."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import numpy as np
import pytest

from hdt_finetune.data import DATASETS, DatasetUnavailableError, ensure_dataset_file, prepare_data
from hdt_finetune.data.data_cache import data_dir
from hdt_finetune.data.splits import split_borders


def test_registry_names_every_benchmark_dataset():
    assert set(DATASETS) == {"ETTh1", "ETTh2", "ETTm1", "ETTm2", "electricity", "traffic",
                             "weather", "exchange_rate", "illness"}
    for spec in DATASETS.values():
        assert spec.url.startswith("https://") and spec.url.endswith(spec.filename)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HDT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("HDT_DATA_DIR")
    assert "hdt_finetune" in str(data_dir())


def test_etth1_splits_and_scaling_follow_the_protocol(shared_data_dir):
    data = prepare_data("ETTh1", context_length=96)
    assert data.borders.train == (0, 8640)
    assert data.borders.val == (8640 - 96, 8640 + 2880)
    assert data.borders.test == (8640 + 2880 - 96, 8640 + 2 * 2880)
    assert data.train.shape == (8640, 7) and data.test.shape == (2976, 7)
    # Fitted on the train split only: train is standardised, the later splits are not.
    np.testing.assert_allclose(data.train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(data.train.std(axis=0), 1, atol=1e-4)
    assert np.abs(data.test.mean(axis=0)).max() > 0.1


def test_ratio_split_matches_the_70_10_20_rule():
    borders = split_borders("ratio_70_10_20", 7588, 96)
    assert borders.train == (0, 5311)
    assert borders.test == (7588 - 1517 - 96, 7588)
    assert borders.val == (5311 - 96, 7588 - 1517)


def test_checksum_mismatch_is_refused(tmp_path, shared_data_dir):
    (tmp_path / "ETTh1.csv").write_bytes((shared_data_dir / "ETTh1.csv").read_bytes() + b"\n")
    with pytest.raises(DatasetUnavailableError, match=r"does not match the checksum of ETTh1"):
        ensure_dataset_file(DATASETS["ETTh1"], cache=tmp_path)


def test_missing_file_is_downloaded_and_verified(tmp_path, shared_data_dir):
    source = tmp_path / "mirror" / "ETTh1.csv"
    source.parent.mkdir()
    shutil.copy(shared_data_dir / "ETTh1.csv", source)
    spec = dataclasses.replace(DATASETS["ETTh1"], url=source.as_uri())
    cache = tmp_path / "cache"
    path = ensure_dataset_file(spec, cache=cache)
    assert path == cache / "ETTh1.csv"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert [p.name for p in cache.iterdir()] == ["ETTh1.csv"]  # no partial file left behind


def test_download_with_a_wrong_checksum_saves_nothing(tmp_path):
    source = tmp_path / "ETTh1.csv"
    source.write_text("date,a\n2020-01-01,1\n")
    spec = dataclasses.replace(DATASETS["ETTh1"], url=source.as_uri())
    with pytest.raises(DatasetUnavailableError, match="does not match its checksum"):
        ensure_dataset_file(spec, cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_error_says_which_file_to_put_where(tmp_path):
    # Port 9 on loopback refuses at once: the same path as having no network.
    spec = dataclasses.replace(DATASETS["electricity"], url="http://127.0.0.1:9/electricity.csv")
    with pytest.raises(DatasetUnavailableError) as err:
        ensure_dataset_file(spec, cache=tmp_path)
    message = str(err.value)
    assert "Put electricity.csv" in message and str(tmp_path / "electricity.csv") in message
    assert "HDT_DATA_DIR" in message
    assert list(tmp_path.iterdir()) == []
