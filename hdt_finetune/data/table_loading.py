"""Load a time-series table (CSV, Parquet or a Hugging Face `datasets` folder) and validate it.

Every problem either raises `DataValidationError` naming the file, the column and the fix, or,
where the user opted in through `RepairPolicy`, is repaired and the repair is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The input data cannot be used as it is; the message says where and how to fix it."""


@dataclass(frozen=True)
class RepairPolicy:
    """Opt-in repairs of bad input. Off by default: bad data fails loudly.

    max_gap_fill: interpolate runs of at most this many missing (NaN or infinite) values per
        column; longer runs still fail.
    sort_timestamps: sort rows by time instead of failing on unsorted timestamps.
    drop_duplicate_timestamps: keep the first row of each duplicated timestamp.
    drop_constant_columns: drop columns whose training values are constant (they cannot be
        standard-scaled) instead of failing.
    """

    max_gap_fill: int = 0
    sort_timestamps: bool = False
    drop_duplicate_timestamps: bool = False
    drop_constant_columns: bool = False

    def __post_init__(self) -> None:
        if self.max_gap_fill < 0:
            raise ValueError(f"max_gap_fill must be >= 0, got {self.max_gap_fill}")


@dataclass(frozen=True)
class TimeSeriesTable:
    """A validated multivariate series: `values[t, c]` at `timestamps[t]` for `columns[c]`."""

    source: str
    timestamps: pd.DatetimeIndex
    values: np.ndarray  # float32, [time, channel]
    columns: tuple[str, ...]


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV, a Parquet file or a folder saved by Hugging Face `datasets`."""
    if path.is_dir():
        return _read_hf_folder(path)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        reader, kind = pd.read_parquet, "Parquet"
    elif suffix in {".csv", ".txt"} or path.name.endswith(".csv.gz"):
        reader, kind = pd.read_csv, "CSV"
    else:
        raise DataValidationError(
            f"{path}: unsupported file type {suffix!r}; give a .csv, .parquet or a folder "
            "saved with datasets.Dataset.save_to_disk"
        )
    try:
        return reader(path)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path} is empty: it holds no header and no rows") from None
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as err:
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise DataValidationError(f"{path} cannot be read as {kind} ({reason}); is it a "
                                  f"{kind} file?") from None


def _read_hf_folder(path: Path) -> pd.DataFrame:
    import datasets  # imported here: loading an HF folder is the only use in this module

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataValidationError(
            f"{path} is a folder but not one saved by datasets.save_to_disk ({err})"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise DataValidationError(f"{path}: a DatasetDict needs a 'train' split")
        ds = ds["train"]
    if {"target", "start"}.issubset(ds.column_names):
        return _long_items_to_frame(path, ds)
    return ds.to_pandas()


def _long_items_to_frame(path: Path, ds) -> pd.DataFrame:
    """uni2ts-style rows (item_id, start, freq, target) become one column per item."""
    rows = ds.with_format("numpy")
    columns: dict[str, np.ndarray] = {}
    starts, freqs, lengths = set(), set(), set()
    for i in range(len(rows)):
        row = rows[i]
        target = np.asarray(row["target"], dtype=np.float64)
        name = str(row["item_id"]) if "item_id" in row else str(i)
        if target.ndim == 1:
            columns[name] = target
        else:  # multivariate item: [channel, time]
            for c, series in enumerate(target):
                columns[f"{name}_{c}"] = series
        starts.add(str(row["start"]))
        freqs.add(str(row.get("freq", "h")))
        lengths.add(target.shape[-1])
    if len(starts) != 1 or len(lengths) != 1 or len(freqs) != 1:
        raise DataValidationError(
            f"{path}: items must share one start, length and freq to form one table; "
            f"found starts {sorted(starts)[:3]}, lengths {sorted(lengths)[:3]}, "
            f"freqs {sorted(freqs)}"
        )
    (start,), (length,), (freq,) = starts, lengths, freqs
    frame = pd.DataFrame(columns)
    frame.insert(0, "date", pd.date_range(pd.Timestamp(start), periods=length, freq=freq))
    return frame


def table_from_frame(
    frame: pd.DataFrame,
    source: str,
    date_column: str = "date",
    columns: list[str] | None = None,
    repair: RepairPolicy | None = None,
) -> TimeSeriesTable:
    """Validate a frame (a date column plus numeric columns) and apply the opted-in repairs."""
    repair = repair or RepairPolicy()
    if len(frame) == 0:
        raise DataValidationError(f"{source} holds a header but no data rows")
    if date_column not in frame.columns:
        raise DataValidationError(
            f"{source}: no date column {date_column!r}; columns are {list(frame.columns)}. "
            "Name the date column with --date-column."
        )
    value_columns = [c for c in frame.columns if c != date_column] if columns is None else columns
    missing = [c for c in value_columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{source}: column(s) {missing} not found; available: "
            f"{[c for c in frame.columns if c != date_column]}"
        )
    if not value_columns:
        raise DataValidationError(f"{source}: no value columns besides {date_column!r}")
    for name in value_columns:
        if not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(
            frame[name]
        ):
            raise DataValidationError(
                f"{source}: column {name!r} is not numeric (dtype {frame[name].dtype}); "
                "select numeric columns with --columns"
            )

    timestamps = _parse_timestamps(frame[date_column], source, date_column)
    frame = frame.assign(**{date_column: timestamps})
    frame = _check_order(frame, source, date_column, repair)
    values = frame[value_columns].to_numpy(dtype=np.float64)
    values = _check_finite(values, value_columns, source, repair)
    _check_float32_range(values, value_columns, source)
    return TimeSeriesTable(
        source=source,
        timestamps=pd.DatetimeIndex(frame[date_column]),
        values=values.astype(np.float32),
        columns=tuple(str(c) for c in value_columns),
    )


def load_table(
    path: str | Path,
    date_column: str = "date",
    columns: list[str] | None = None,
    repair: RepairPolicy | None = None,
) -> TimeSeriesTable:
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: no such file or folder")
    return table_from_frame(read_frame(path), str(path), date_column, columns, repair)


def _parse_timestamps(raw: pd.Series, source: str, date_column: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(raw, format="mixed")
    except (ValueError, TypeError) as err:
        raise DataValidationError(
            f"{source}: column {date_column!r} holds values that are not dates ({err})"
        ) from None
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataValidationError(f"{source}: column {date_column!r} is empty at row {row}")
    return parsed


def _check_order(
    frame: pd.DataFrame, source: str, date_column: str, repair: RepairPolicy
) -> pd.DataFrame:
    times = frame[date_column]
    if not times.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(times.to_numpy()) < np.timedelta64(0))[0]) + 1
        if not repair.sort_timestamps:
            raise DataValidationError(
                f"{source}: timestamps are not sorted (row {row}: {times.iloc[row]} comes after "
                f"{times.iloc[row - 1]}); sort the file or pass --sort-timestamps"
            )
        log.warning("%s: timestamps were not sorted; rows sorted by %s", source, date_column)
        frame = frame.sort_values(date_column, kind="stable").reset_index(drop=True)
    duplicated = frame[date_column].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        if not repair.drop_duplicate_timestamps:
            raise DataValidationError(
                f"{source}: timestamp {frame[date_column].iloc[row]} appears more than once "
                f"(first repeat at row {row}, {int(duplicated.sum())} repeats in all); "
                "remove them or pass --drop-duplicate-timestamps"
            )
        log.warning(
            "%s: dropped %d rows with duplicated timestamps (kept the first of each)",
            source, int(duplicated.sum()),
        )
        frame = frame.loc[~duplicated].reset_index(drop=True)
    return frame


def _check_finite(
    values: np.ndarray, columns: list[str], source: str, repair: RepairPolicy
) -> np.ndarray:
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    values = values.copy()
    for c in np.flatnonzero(bad.any(axis=0)):
        name, column_bad = columns[c], bad[:, c]
        longest = _longest_run(column_bad)
        first = int(np.flatnonzero(column_bad)[0])
        kind = "NaN" if np.isnan(values[first, c]) else "infinite"
        if longest > repair.max_gap_fill:
            hint = (
                f"fill or drop them, or pass --max-gap-fill {longest} to interpolate"
                if repair.max_gap_fill == 0
                else f"the longest gap ({longest}) exceeds --max-gap-fill {repair.max_gap_fill}"
            )
            raise DataValidationError(
                f"{source}: column {name!r} has {int(column_bad.sum())} NaN or infinite values "
                f"(first {kind} at row {first}, longest run {longest}); {hint}"
            )
        good = np.flatnonzero(~column_bad)
        if good.size == 0:
            raise DataValidationError(f"{source}: column {name!r} has no finite value at all")
        values[column_bad, c] = np.interp(np.flatnonzero(column_bad), good, values[good, c])
        log.warning(
            "%s: column %r: interpolated %d missing values (longest gap %d)",
            source, name, int(column_bad.sum()), longest,
        )
    return values


def _check_float32_range(values: np.ndarray, columns: list[str], source: str) -> None:
    """Training runs in float32: a finite value beyond its range would become infinite."""
    limit = float(np.finfo(np.float32).max)
    outside = np.abs(values) > limit
    if outside.any():
        row, c = (int(i) for i in np.argwhere(outside)[0])
        raise DataValidationError(
            f"{source}: column {columns[c]!r} holds {values[row, c]:.3g} at row {row}, outside "
            f"the float32 range (±{limit:.3g}) that training uses; fix the value or rescale "
            "the column")


def _longest_run(mask: np.ndarray) -> int:
    longest = current = 0
    for flag in mask:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest
