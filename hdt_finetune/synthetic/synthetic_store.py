"""Read and write synthetic-set folders.

Layout of a folder:
    manifest.json   method, settings, seed, source and checksum, scaler, versions, cost
    data/           a `datasets.Dataset` saved with save_to_disk, one row per channel with
                    uni2ts's fields: item_id (str), start (timestamp), freq (str),
                    target (list of float32)

Values are in the scaled space of the source's train split (its scaler is in the manifest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hdt_finetune.atomic_files import atomic_directory
from hdt_finetune.data.prepared_data import PreparedData

MANIFEST = "manifest.json"
DATA = "data"
FORMAT_VERSION = 1


class SyntheticSetError(ValueError):
    """A folder is not a readable synthetic set."""


@dataclass(frozen=True)
class SyntheticSet:
    values: np.ndarray  # [time, channel], float32, scaled
    columns: tuple[str, ...]
    freq: str
    start: pd.Timestamp
    manifest: dict[str, Any]


def write_synthetic_set(
    out_dir: str | Path,
    values: np.ndarray,
    columns: tuple[str, ...] | list[str],
    freq: str,
    start: pd.Timestamp,
    manifest: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write `values` ([time, channel]) and `manifest` to `out_dir`, atomically."""
    import datasets

    datasets.disable_progress_bars()
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(
            f"values must be [time, {len(columns)} channels], got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("refusing to write a synthetic set with NaN or infinite values")
    features = datasets.Features({
        "item_id": datasets.Value("string"),
        "start": datasets.Value("timestamp[s]"),
        "freq": datasets.Value("string"),
        "target": datasets.Sequence(datasets.Value("float32")),
    })
    table = datasets.Dataset.from_dict(
        {
            "item_id": [str(c) for c in columns],
            "start": [pd.Timestamp(start).to_pydatetime()] * len(columns),
            "freq": [freq] * len(columns),
            "target": [values[:, c] for c in range(values.shape[1])],
        },
        features=features,
    )
    payload = {"format_version": FORMAT_VERSION, "length": int(values.shape[0]),
               "channels": [str(c) for c in columns], "freq": freq,
               "start": str(pd.Timestamp(start)), **manifest}
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        table.save_to_disk(str(tmp / DATA))
        (tmp / MANIFEST).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return out_dir


def read_synthetic_set(folder: str | Path) -> SyntheticSet:
    import datasets

    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file() or not (folder / DATA).is_dir():
        raise SyntheticSetError(
            f"{folder} is not a synthetic set: it needs {MANIFEST} and a {DATA}/ folder "
            "(make one with `hdt distill`)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SyntheticSetError(f"{manifest_path} is not valid JSON ({err})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SyntheticSetError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r} is not "
            f"{FORMAT_VERSION}, the one this version reads"
        )
    table = datasets.load_from_disk(str(folder / DATA)).with_format("numpy")
    targets = table["target"]
    values = np.stack([np.asarray(t, dtype=np.float32) for t in targets], axis=1)
    if values.shape[0] != manifest["length"]:
        raise SyntheticSetError(
            f"{folder}: data has {values.shape[0]} steps, the manifest says {manifest['length']}"
        )
    return SyntheticSet(
        values=values,
        columns=tuple(str(c) for c in table["item_id"]),
        freq=manifest["freq"],
        start=pd.Timestamp(manifest["start"]),
        manifest=manifest,
    )


def check_same_source(manifest: dict[str, Any], data: PreparedData, folder: Path) -> None:
    """A synthetic set is only comparable on the data (and scaling) it was made from."""
    source = manifest.get("source", {})
    if source.get("sha256") and data.sha256 and source["sha256"] != data.sha256:
        raise SyntheticSetError(
            f"{folder} was made from {source.get('dataset')} (sha256 {source['sha256'][:12]}…), "
            f"not from {data.name} (sha256 {data.sha256[:12]}…)"
        )
    channels = manifest.get("channels", [])
    if len(channels) != data.n_channels:
        raise SyntheticSetError(
            f"{folder} has {len(channels)} channels, {data.name} has {data.n_channels}"
        )
    scaler = manifest.get("scaler")
    if scaler and not (np.allclose(scaler["mean"], data.scaler.mean)
                       and np.allclose(scaler["std"], data.scaler.std)):
        raise SyntheticSetError(
            f"{folder} was scaled with other statistics than {data.name}'s train split; "
            "use it with the dataset and columns it was distilled from"
        )
