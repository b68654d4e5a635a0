"""The training-set folder where distillation and training meet: one writer, one manifest
schema, verified on every read.

Layout of a folder:
    manifest.json   schema_version, producer, method, settings, seed, source, scaling,
                    channels, length, freq, start, method_info, cost, provenance, the sha256
                    of every data file and the content checksum of the values
    data/           a `datasets.Dataset` saved with save_to_disk, one row per channel with
                    uni2ts's fields: item_id (str), start (timestamp), freq (str),
                    target (list of float32), so uni2ts's own tools read it too

Source: `{"kind": "dataset", ...}` (a named dataset or a file, with its sha256 and how it was
read) or `{"kind": "corpus", ...}` (a corpus description, with its checksum where one exists).
Scaling: `{"kind": "dataset_train_split", "mean", "std"}`, the per-channel statistics of the
source's train split the values are scaled with, or `{"kind": "per_series", "mean", "std"}`,
statistics of the set's own series, whose values carry no outside scale (a corpus mixes
series of every scale; its windows are normalised by their own context).

A read checks the schema, refuses any file path that leaves the folder, verifies every
file's sha256 and the values' content checksum, and gives one line saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from hdt_finetune.atomic_files import atomic_directory, check_writable
from hdt_finetune.checksums import sha256_of, sha256_of_values
from hdt_finetune.data.prepared_data import DataSpec, PreparedData
from hdt_finetune.provenance import git_commit, package_versions

MANIFEST = "manifest.json"
DATA = "data"
SCHEMA_VERSION = 2
PRODUCER = "hdt_finetune"
SCALING_KINDS = ("dataset_train_split", "per_series")
SOURCE_KINDS = ("dataset", "corpus")
# What each producer must say (the writer adds the rest), and the type of every key.
_GIVEN = {"method": str, "settings": dict, "seed": int, "source": dict, "scaling": dict,
          "cost": dict, "method_info": dict}
_WRITTEN = {"schema_version": int, "producer": str, "channels": list, "length": int,
            "freq": str, "start": str, "files": dict, "content_sha256": str,
            "provenance": dict}


class SyntheticSetError(ValueError):
    """A folder is not a readable training set, or not one this use can take."""


@dataclass(frozen=True)
class SyntheticSet:
    folder: Path
    values: np.ndarray  # [time, channel], float32, in the units `scaling` says
    channels: tuple[str, ...]
    manifest: dict[str, Any]

    @property
    def content_sha256(self) -> str:
        return self.manifest["content_sha256"]

    @property
    def method(self) -> str:
        return self.manifest["method"]

    @property
    def scaling_kind(self) -> str:
        return self.manifest["scaling"]["kind"]

    def describe(self) -> dict[str, Any]:
        """What a record says about the set it trained on."""
        return {"path": str(self.folder), "method": self.method,
                "content_sha256": self.content_sha256, "source": self.manifest["source"],
                "scaling": self.scaling_kind, "points": int(self.values.size),
                "distill_cost": self.manifest["cost"]}


def dataset_source(data: PreparedData) -> dict[str, Any]:
    return {"kind": "dataset", "dataset": data.name, "path": data.source,
            "sha256": data.sha256, "split": "train", "rows": list(data.borders.train),
            "columns": list(data.columns), "read": data.spec.to_dict()}


def dataset_scaling(data: PreparedData) -> dict[str, Any]:
    return {"kind": "dataset_train_split", "dataset": data.name,
            "mean": data.scaler.mean.tolist(), "std": data.scaler.std.tolist()}


def per_series_scaling(values: np.ndarray) -> dict[str, Any]:
    return {"kind": "per_series", "mean": values.mean(axis=0).astype(float).tolist(),
            "std": values.std(axis=0).astype(float).tolist()}


def write_synthetic_set(
    out_dir: str | Path,
    values: np.ndarray,
    channels: tuple[str, ...] | list[str],
    freq: str,
    start: pd.Timestamp,
    manifest: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write `values` ([time, channel]) and the manifest to `out_dir`, atomically. Every
    producer writes through here; `manifest` gives the keys of `_GIVEN`. An existing
    `out_dir` is replaced only with `overwrite` and only if it is a set we wrote."""
    import datasets

    datasets.disable_progress_bars()
    out_dir = Path(out_dir)
    values = np.asarray(values, dtype=np.float32)
    channels = [str(c) for c in channels]
    if values.ndim != 2 or values.shape[1] != len(channels) or values.shape[0] < 1:
        raise ValueError(
            f"values must be [time >= 1, {len(channels)} channels], got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("refusing to write a synthetic set with NaN or infinite values")
    check_replaceable(out_dir, overwrite)
    features = datasets.Features({
        "item_id": datasets.Value("string"),
        "start": datasets.Value("timestamp[s]"),
        "freq": datasets.Value("string"),
        "target": datasets.Sequence(datasets.Value("float32")),
    })
    table = datasets.Dataset.from_dict(
        {"item_id": channels, "start": [pd.Timestamp(start).to_pydatetime()] * len(channels),
         "freq": [freq] * len(channels), "target": [values[:, c] for c in range(len(channels))]},
        features=features,
    )
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        table.save_to_disk(str(tmp / DATA))
        files = {p.relative_to(tmp).as_posix(): sha256_of(p)
                 for p in sorted((tmp / DATA).rglob("*")) if p.is_file()}
        payload = {"schema_version": SCHEMA_VERSION, "producer": PRODUCER, **manifest,
                   "channels": channels, "length": int(values.shape[0]), "freq": freq,
                   "start": str(pd.Timestamp(start)), "files": files,
                   "content_sha256": sha256_of_values(values, channels),
                   "provenance": {"versions": package_versions(), "git": git_commit()}}
        _check_manifest(payload, tmp / MANIFEST)
        (tmp / MANIFEST).write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n",
                                    encoding="utf-8")
    return out_dir


def check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """Before any work: `out_dir` must be new, or a set of ours that `overwrite` replaces;
    and its folder must be writable."""
    if out_dir.exists():
        if not overwrite:
            raise FileExistsError(f"{out_dir} already exists; choose another --out or pass "
                                  "--overwrite")
        if not is_our_set(out_dir):
            raise FileExistsError(f"{out_dir} exists and is not a set written by hdt; "
                                  "--overwrite only replaces those. Choose another --out")
    check_writable(out_dir)


def is_our_set(folder: Path) -> bool:
    """A folder with a manifest this tool wrote (of any schema version)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and (manifest.get("producer") == PRODUCER
                                           or manifest.get("format_version") == 1)


def read_synthetic_set(folder: str | Path) -> SyntheticSet:
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise SyntheticSetError(f"{folder} is not a training set: it has no {MANIFEST} (make "
                                "one with `hdt distill`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SyntheticSetError(f"{manifest_path} is not readable JSON ({err})") from None
    if isinstance(manifest, dict) and manifest.get("format_version") == 1:
        raise SyntheticSetError(
            f"{folder} is a set of the old format (version 1, without checksums); make it "
            "again with `hdt distill` (its manifest.json lists the method, settings and seed)")
    _check_manifest(manifest, manifest_path)
    for name, expected in manifest["files"].items():
        path = _inside(folder, name, manifest_path)
        if not path.is_file():
            raise SyntheticSetError(f"{path} is missing; the set is incomplete. Make it again")
        if sha256_of(path) != expected:
            raise SyntheticSetError(f"{path} does not match its checksum in {MANIFEST}: the "
                                    "file is damaged or was changed. Make the set again")
    values = _read_values(folder, manifest)
    channels = tuple(manifest["channels"])
    if sha256_of_values(values, channels) != manifest["content_sha256"]:
        raise SyntheticSetError(f"{folder}: the values do not match content_sha256 in "
                                f"{MANIFEST}; the set was changed. Make it again")
    return SyntheticSet(folder=folder, values=values, channels=channels, manifest=manifest)


def _check_manifest(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict):
        raise SyntheticSetError(f"{path} must hold a JSON object")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise SyntheticSetError(f"{path}: schema_version {manifest.get('schema_version')!r} is "
                                f"not {SCHEMA_VERSION}, the one this version reads")
    for key, kind in {**_GIVEN, **_WRITTEN}.items():
        if key not in manifest:
            raise SyntheticSetError(f"{path}: key {key!r} is missing")
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise SyntheticSetError(f"{path}: key {key!r} must be a {kind.__name__}, got "
                                    f"{type(manifest[key]).__name__}")
    source, scaling = manifest["source"], manifest["scaling"]
    if source.get("kind") not in SOURCE_KINDS:
        raise SyntheticSetError(f"{path}: source.kind must be one of {SOURCE_KINDS}, got "
                                f"{source.get('kind')!r}")
    if scaling.get("kind") not in SCALING_KINDS:
        raise SyntheticSetError(f"{path}: scaling.kind must be one of {SCALING_KINDS}, got "
                                f"{scaling.get('kind')!r}")
    for key in ("mean", "std"):
        stats = scaling.get(key)
        if (not isinstance(stats, list) or len(stats) != len(manifest["channels"])
                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in stats)):
            raise SyntheticSetError(f"{path}: scaling.{key} must be one finite number per "
                                    "channel")
    if manifest["length"] < 1 or not manifest["files"]:
        raise SyntheticSetError(f"{path}: a set needs length >= 1 and its data files")


def _inside(folder: Path, name: str, manifest_path: Path) -> Path:
    """`folder / name`, refused if `name` leaves the folder (absolute, `..`, or a link)."""
    relative = PurePosixPath(name)
    path = folder / relative
    if (relative.is_absolute() or ".." in relative.parts
            or not path.resolve().is_relative_to(folder.resolve())):
        raise SyntheticSetError(f"{manifest_path}: file {name!r} lies outside the set's "
                                "folder; refusing to read it")
    return path


def _read_values(folder: Path, manifest: dict[str, Any]) -> np.ndarray:
    """The `target` column of the data files that data/state.json lists, each of which must
    be one of the checksummed files, as [time, channel]."""
    import pyarrow as pa

    state_path = folder / DATA / "state.json"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        names = [f"{DATA}/{entry['filename']}" for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SyntheticSetError(f"{state_path} is not a readable datasets state "
                                f"({type(err).__name__})") from None
    unlisted = [n for n in names if n not in manifest["files"]]
    if unlisted or not names:
        raise SyntheticSetError(f"{state_path} names data files that are not among the set's "
                                f"checksummed files ({unlisted}); refusing to read them")
    targets = []
    try:
        for name in names:
            path = _inside(folder, name, state_path)
            table = pa.ipc.open_stream(path.read_bytes()).read_all()
            targets += table.column("target").to_pylist()
    except (OSError, KeyError, pa.ArrowException) as err:
        raise SyntheticSetError(f"{folder}/{DATA} cannot be read ({type(err).__name__}: "
                                f"{err}); make the set again") from None
    lengths = {len(t) if isinstance(t, list) else -1 for t in targets}
    if len(targets) != len(manifest["channels"]) or lengths != {manifest["length"]}:
        raise SyntheticSetError(f"{folder}: the data holds {len(targets)} series of lengths "
                                f"{sorted(lengths)}; the manifest says "
                                f"{len(manifest['channels'])} of {manifest['length']}")
    try:
        values = np.asarray(targets, dtype=np.float32).T.copy()
    except (TypeError, ValueError) as err:
        raise SyntheticSetError(f"{folder}/{DATA}: the target column is not series of "
                                f"numbers ({err})") from None
    if not np.isfinite(values).all():
        raise SyntheticSetError(f"{folder}: the data holds NaN or infinite values")
    return values


def check_usable_with(synthetic: SyntheticSet, data: PreparedData) -> None:
    """A set scaled with a dataset's train-split statistics trains only against that
    dataset's validation and test splits, scaled the same way; a per-series set against any."""
    if synthetic.scaling_kind == "per_series":
        return
    folder, source = synthetic.folder, synthetic.manifest["source"]
    if not source.get("sha256"):
        raise SyntheticSetError(f"{folder} records no checksum of the data it was made from, "
                                f"so it cannot be checked against {data.name}; make it again")
    if source["sha256"] != data.sha256:
        raise SyntheticSetError(
            f"{folder} was made from {source.get('dataset')} (sha256 {source['sha256'][:12]}…), "
            f"not from {data.name} (sha256 {data.sha256[:12]}…)")
    if len(synthetic.channels) != data.n_channels:
        raise SyntheticSetError(
            f"{folder} has {len(synthetic.channels)} channels, {data.name} has "
            f"{data.n_channels}")
    scaling = synthetic.manifest["scaling"]
    if not (np.allclose(scaling["mean"], data.scaler.mean)
            and np.allclose(scaling["std"], data.scaler.std)):
        raise SyntheticSetError(
            f"{folder} was scaled with other statistics than {data.name}'s train split; "
            "use it with the dataset and columns it was distilled from")


def source_spec(synthetic: SyntheticSet) -> DataSpec:
    """How to load the data a set was made from again (validation and test come from it)."""
    source = synthetic.manifest["source"]
    if source["kind"] != "dataset" or "read" not in source:
        raise SyntheticSetError(f"{synthetic.folder} was made from a corpus, not one dataset; "
                                "name the dataset to validate and test on (--dataset)")
    try:
        return DataSpec.from_dict(source["read"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SyntheticSetError(f"{synthetic.folder}/{MANIFEST}: source.read does not say how "
                                f"to load the source ({type(err).__name__}: {err}); give "
                                "--dataset") from None
