"""The folder format where distillation and training meet: one writer, a verified read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.checksums import sha256_of
from hdt_finetune.synthetic import (
    SyntheticSetError,
    check_usable_with,
    per_series_scaling,
    read_synthetic_set,
    write_synthetic_set,
)

START = pd.Timestamp("2016-07-01")
CHANNELS = ["a", "b", "c"]


def values(rows: int = 50, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, channels)).astype(np.float32)


def manifest(data: np.ndarray, **changes) -> dict:
    return {"method": "random", "settings": {"length": len(data)}, "seed": 3,
            "source": {"kind": "corpus", "corpus": "test"}, "scaling": per_series_scaling(data),
            "cost": {"wall_s": 0.1}, "method_info": {}, **changes}


def write(folder, data=None, overwrite=False, **changes):
    data = values() if data is None else data
    return write_synthetic_set(folder, data, CHANNELS, "h", START, manifest(data, **changes),
                               overwrite=overwrite)


def rewrite_manifest(folder, **changes) -> None:
    path = folder / "manifest.json"
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


def test_round_trip_keeps_values_and_manifest(tmp_path):
    data = values()
    loaded = read_synthetic_set(write(tmp_path / "set", data))
    np.testing.assert_array_equal(loaded.values, data)
    assert loaded.channels == ("a", "b", "c") and loaded.method == "random"
    manifest = loaded.manifest
    assert manifest["schema_version"] == 2 and manifest["seed"] == 3
    assert manifest["freq"] == "h" and pd.Timestamp(manifest["start"]) == START
    assert set(manifest["files"]) == {"data/data-00000-of-00001.arrow", "data/state.json",
                                      "data/dataset_info.json"}
    assert {"versions", "git"} <= set(manifest["provenance"])
    # The content checksum follows the values, not the files: rewriting them keeps it.
    again = read_synthetic_set(write(tmp_path / "again", data))
    assert again.content_sha256 == loaded.content_sha256
    assert loaded.describe()["content_sha256"] == loaded.content_sha256


def test_data_is_a_hf_dataset_with_uni2ts_fields(tmp_path):
    import datasets

    write(tmp_path / "set")
    table = datasets.load_from_disk(str(tmp_path / "set" / "data"))
    assert set(table.column_names) == {"item_id", "start", "freq", "target"}
    assert table[1]["item_id"] == "b" and len(table[1]["target"]) == 50
    assert table[0]["start"] == START.to_pydatetime()


def test_only_our_sets_are_replaced_and_nothing_is_left_beside_them(tmp_path):
    write(tmp_path / "set", seed=1)
    with pytest.raises(FileExistsError, match="already exists"):
        write(tmp_path / "set", seed=2)
    write(tmp_path / "set", seed=2, overwrite=True)
    assert read_synthetic_set(tmp_path / "set").manifest["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no .old, no temporary
    # A folder we did not write (here: one holding the input data) is never replaced.
    precious = tmp_path / "inputs"
    precious.mkdir()
    (precious / "data.csv").write_text("date,a\n")
    with pytest.raises(FileExistsError, match="not a set written by hdt"):
        write(precious, overwrite=True)
    assert (precious / "data.csv").read_text() == "date,a\n"


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    bad = values()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write(tmp_path / "set", bad)
    with pytest.raises(ValueError, match="time >= 1"):
        write_synthetic_set(tmp_path / "set", values(0), CHANNELS, "h", START,
                            manifest(values()))
    # A failure inside the atomic folder (here: a manifest missing a key) cleans up too.
    with pytest.raises(SyntheticSetError, match="key 'seed' must be a int"):
        write(tmp_path / "set", seed="three")
    assert list(tmp_path.iterdir()) == []


def test_tampered_or_damaged_sets_are_refused_with_one_line(tmp_path):
    folder = write(tmp_path / "set")
    arrow = folder / "data" / "data-00000-of-00001.arrow"
    original = arrow.read_bytes()
    flipped = bytearray(original)
    flipped[-100] ^= 0xFF
    arrow.write_bytes(bytes(flipped))
    with pytest.raises(SyntheticSetError, match="does not match its checksum"):
        read_synthetic_set(folder)
    arrow.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(SyntheticSetError, match="does not match its checksum"):
        read_synthetic_set(folder)
    arrow.unlink()
    with pytest.raises(SyntheticSetError, match="is missing"):
        read_synthetic_set(folder)
    arrow.write_bytes(original)
    read_synthetic_set(folder)  # whole again


def test_a_path_that_leaves_the_folder_is_refused(tmp_path):
    outside = write(tmp_path / "outside")
    folder = write(tmp_path / "set")
    state = folder / "data" / "state.json"
    payload = json.loads(state.read_text())
    payload["_data_files"] = [{"filename": "../../outside/data/data-00000-of-00001.arrow"}]
    state.write_text(json.dumps(payload))
    files = json.loads((folder / "manifest.json").read_text())["files"]
    files["data/state.json"] = sha256_of(state)  # a consistent forgery
    rewrite_manifest(folder, files=files)
    with pytest.raises(SyntheticSetError, match="not among the set's checksummed files"):
        read_synthetic_set(folder)
    files["data/../../outside/data/data-00000-of-00001.arrow"] = "x"
    rewrite_manifest(folder, files=files)
    with pytest.raises(SyntheticSetError, match="lies outside the set's folder"):
        read_synthetic_set(folder)
    assert outside.exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"content_sha256": None}, "key 'content_sha256' must be a str"),
    ({"files": []}, "key 'files' must be a dict"),
    ({"scaling": {"kind": "dataset_train_split"}}, "scaling.mean must be one finite number"),
    ({"source": {"kind": "moon"}}, "source.kind must be one of"),
    ({"schema_version": 99}, "schema_version 99 is not 2"),
    ({"format_version": 1, "schema_version": None}, "set of the old format"),
])
def test_a_manifest_without_what_a_read_needs_is_refused(tmp_path, change, message):
    folder = write(tmp_path / "set")
    rewrite_manifest(folder, **change)
    with pytest.raises(SyntheticSetError, match=message):
        read_synthetic_set(folder)


def test_a_stripped_or_unreadable_manifest_is_refused(tmp_path):
    folder = write(tmp_path / "set")
    payload = json.loads((folder / "manifest.json").read_text())
    del payload["files"]
    (folder / "manifest.json").write_text(json.dumps(payload))
    with pytest.raises(SyntheticSetError, match="key 'files' is missing"):
        read_synthetic_set(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(SyntheticSetError, match="not readable JSON"):
        read_synthetic_set(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SyntheticSetError, match="has no manifest.json"):
        read_synthetic_set(tmp_path / "empty")


def forge_targets(folder, targets: list) -> None:
    """Replace the set's data with `targets` and update its file checksum to match, as a
    consistent forgery would."""
    import datasets

    forged = folder.parent / "forged"
    datasets.Dataset.from_dict({"item_id": CHANNELS, "target": targets}
                               ).save_to_disk(str(forged))
    arrow = folder / "data" / "data-00000-of-00001.arrow"
    arrow.write_bytes((forged / "data-00000-of-00001.arrow").read_bytes())
    files = json.loads((folder / "manifest.json").read_text())["files"]
    files["data/data-00000-of-00001.arrow"] = sha256_of(arrow)
    rewrite_manifest(folder, files=files)


def test_a_set_holding_nan_is_refused_even_with_matching_checksums(tmp_path):
    folder = write(tmp_path / "set")
    bad = values()
    bad[5, 0] = np.nan
    forge_targets(folder, [bad[:, c] for c in range(3)])
    with pytest.raises(SyntheticSetError, match="NaN or infinite"):
        read_synthetic_set(folder)


def test_a_dataset_scaled_set_needs_its_source_checksum(tmp_path, shared_data_dir):
    from hdt_finetune.data import prepare_data
    from hdt_finetune.synthetic import dataset_scaling, dataset_source

    data = prepare_data("ETTh1")
    source = {**dataset_source(data), "sha256": None}
    folder = write_synthetic_set(tmp_path / "set", data.train[:200], data.columns, "h", START,
                                 {**manifest(data.train[:200]), "source": source,
                                  "scaling": dataset_scaling(data)})
    with pytest.raises(SyntheticSetError, match="records no checksum of the data"):
        check_usable_with(read_synthetic_set(folder), data)


def test_a_malformed_source_or_target_column_is_one_line(tmp_path, shared_data_dir):
    from hdt_finetune.synthetic import source_spec

    folder = write(tmp_path / "set", source={"kind": "dataset", "read": "ETTh1"})
    with pytest.raises(SyntheticSetError, match="source.read does not say how to load"):
        source_spec(read_synthetic_set(folder))
    forge_targets(folder, [["x"] * 50] * 3)
    with pytest.raises(SyntheticSetError, match="the target column is not series of numbers"):
        read_synthetic_set(folder)
