"""One call from a dataset name or file to scaled train/validation/test arrays."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hdt_finetune.data.data_cache import ensure_dataset_file, sha256_of
from hdt_finetune.data.dataset_registry import DATASETS, SplitRule
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
class PreparedData:
    """A dataset split by the protocol and scaled with statistics of its train split."""

    name: str
    source: str
    sha256: str | None
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


def prepare_data(
    dataset: str,
    context_length: int = 96,
    repair: RepairPolicy | None = None,
    date_column: str = "date",
    columns: list[str] | None = None,
) -> PreparedData:
    """Load a registry dataset (by name) or a user file/folder (by path) and split and scale it.

    User files split 70/10/20 by time, like the non-ETT benchmarks.
    """
    repair = repair or RepairPolicy()
    if dataset in DATASETS:
        spec = DATASETS[dataset]
        path = ensure_dataset_file(spec)
        name, freq, rule, digest = spec.name, spec.freq, spec.split_rule, spec.sha256
        table = load_table(path, date_column, columns, repair)
    else:
        path = Path(dataset)
        if not path.exists():
            raise DataValidationError(
                f"{dataset!r} is neither a known dataset ({', '.join(DATASETS)}) nor an "
                "existing file or folder"
            )
        table = load_table(path, date_column, columns, repair)
        name, freq, rule = path.stem, _infer_freq(table), "ratio_70_10_20"
        digest = sha256_of(path) if path.is_file() else None
    return _split_and_scale(table, name, str(path), digest, freq, rule, context_length, repair)


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
    source: str,
    digest: str | None,
    freq: str,
    rule: SplitRule,
    context_length: int,
    repair: RepairPolicy,
) -> PreparedData:
    borders = split_borders(rule, len(table.values), context_length)
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
        freq=freq,
        columns=columns,
        borders=borders,
        scaler=scaler,
        train=scaled[slice(*borders.train)],
        val=scaled[slice(*borders.val)],
        test=scaled[slice(*borders.test)],
        train_start=pd.Timestamp(table.timestamps[0]),
    )
