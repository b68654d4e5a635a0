"""One call from a dataset name or file to scaled train/validation/test arrays."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hdt_finetune.checksums import sha256_of, sha256_of_tree, sha256_of_values
from hdt_finetune.data.data_cache import ensure_dataset_file
from hdt_finetune.data.dataset_registry import DATASETS, DatasetSpec
from hdt_finetune.data.scaling import StandardScaler
from hdt_finetune.data.splits import SplitBorders, split_borders
from hdt_finetune.data.table_loading import (
    DataValidationError,
    RepairPolicy,
    TimeSeriesTable,
    load_table,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """Which data to load and how: a registry name or the path of a file or folder, the date
    column, the value columns and the opted-in repairs. Recorded in every set's manifest, so
    the set's source can be loaded again exactly."""

    dataset: str
    date_column: str = "date"
    columns: tuple[str, ...] | None = None
    repair: RepairPolicy = field(default_factory=RepairPolicy)

    @property
    def is_registered(self) -> bool:
        return self.dataset in DATASETS

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "date_column": self.date_column,
                "columns": None if self.columns is None else list(self.columns),
                "repair": asdict(self.repair)}

    @classmethod
    def from_dict(cls, payload: dict) -> DataSpec:
        columns = payload.get("columns")
        return cls(dataset=payload["dataset"], date_column=payload.get("date_column", "date"),
                   columns=None if columns is None else tuple(columns),
                   repair=RepairPolicy(**payload.get("repair", {})))


@dataclass(frozen=True)
class PreparedData:
    """A dataset split by the protocol and scaled with statistics of its train split."""

    name: str
    source: str  # the file or folder read, as an absolute path
    sha256: str  # of the file, or of every file of a folder
    spec: DataSpec  # with a user path made absolute
    freq: str
    columns: tuple[str, ...]
    borders: SplitBorders
    scaler: StandardScaler
    train: np.ndarray  # [time, channel], scaled
    val: np.ndarray
    test: np.ndarray
    train_start: pd.Timestamp

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    def train_split_record(self) -> dict:
        """What a record says when the real train split is the training data."""
        return {"kind": "full", "dataset": self.name, "rows": list(self.borders.train),
                "points": int(self.train.size),
                "content_sha256": sha256_of_values(self.train, self.columns)}


def prepare_data(dataset: str | DataSpec, context_length: int = 96) -> PreparedData:
    """Load a registry dataset (by name) or a user file/folder (by path), split and scale it.

    User files split 70/10/20 by time, like the non-ETT benchmarks, and get no repair they
    did not ask for; a registry dataset also gets its file's known repair, logged."""
    spec = dataset if isinstance(dataset, DataSpec) else DataSpec(dataset)
    columns = None if spec.columns is None else list(spec.columns)
    if spec.is_registered:
        entry = DATASETS[spec.dataset]
        path = ensure_dataset_file(entry)
        repair = _with_known_repair(spec.repair, entry)
        name, freq, rule = entry.name, entry.freq, entry.split_rule
        digest = entry.sha256 or sha256_of(path)
    else:
        path = Path(spec.dataset).expanduser().resolve()
        if not path.exists():
            raise DataValidationError(
                f"{spec.dataset!r} is neither a known dataset ({', '.join(DATASETS)}) nor an "
                "existing file or folder"
            )
        spec = replace(spec, dataset=str(path))
        repair, rule, name = spec.repair, "ratio_70_10_20", path.stem
        digest = sha256_of_tree(path) if path.is_dir() else sha256_of(path)
    table = load_table(path, spec.date_column, columns, repair)
    if not spec.is_registered:
        freq = _infer_freq(table)
    try:
        borders = split_borders(rule, len(table.values), context_length)
    except ValueError as err:
        raise DataValidationError(f"{path}: {err}") from None
    return _split_and_scale(table, name, spec, str(path), digest, freq, borders, repair)


def _with_known_repair(repair: RepairPolicy, entry: DatasetSpec) -> RepairPolicy:
    if entry.known_repair is None:
        return repair
    log.warning("%s: applying the known repair of its canonical file (%s): %s", entry.name,
                entry.known_repair_reason, {k: v for k, v in asdict(entry.known_repair).items()
                                            if v})
    known = entry.known_repair
    return RepairPolicy(
        max_gap_fill=max(repair.max_gap_fill, known.max_gap_fill),
        sort_timestamps=repair.sort_timestamps or known.sort_timestamps,
        drop_duplicate_timestamps=(repair.drop_duplicate_timestamps
                                   or known.drop_duplicate_timestamps),
        drop_constant_columns=repair.drop_constant_columns or known.drop_constant_columns,
    )


def _infer_freq(table: TimeSeriesTable) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        freq = pd.infer_freq(table.timestamps[: min(len(table.timestamps), 1000)])
    if freq is None:
        log.warning("%s: could not infer a regular frequency; recording 'h'", table.source)
        return "h"
    return str(getattr(freq, "freqstr", freq))


def _split_and_scale(
    table: TimeSeriesTable,
    name: str,
    spec: DataSpec,
    source: str,
    digest: str,
    freq: str,
    borders: SplitBorders,
    repair: RepairPolicy,
) -> PreparedData:
    values, columns = table.values, table.columns
    scaler = StandardScaler.fit(values[slice(*borders.train)])
    constant = scaler.constant_channels()
    if constant:
        names = [columns[c] for c in constant]
        if not repair.drop_constant_columns:
            raise DataValidationError(
                f"{source}: column(s) {names} are constant over the training split and cannot "
                "be standard-scaled; drop them with --columns or pass --drop-constant-columns"
            )
        log.warning("%s: dropped constant column(s) %s", source, names)
        keep = [c for c in range(len(columns)) if c not in constant]
        values, columns = values[:, keep], tuple(columns[c] for c in keep)
        scaler = StandardScaler.fit(values[slice(*borders.train)])
    scaled = scaler.transform(values)
    return PreparedData(
        name=name,
        source=source,
        sha256=digest,
        spec=spec,
        freq=freq,
        columns=columns,
        borders=borders,
        scaler=scaler,
        train=scaled[slice(*borders.train)],
        val=scaled[slice(*borders.val)],
        test=scaled[slice(*borders.test)],
        train_start=pd.Timestamp(table.timestamps[0]),
    )
