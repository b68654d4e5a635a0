"""Train/validation/test borders, following the protocol in PROTOCOL.md."""

from __future__ import annotations

from dataclasses import dataclass

from hdt_finetune.data.dataset_registry import SplitRule

_ETT_MONTH_ROWS = {"ett_hourly": 30 * 24, "ett_minutely": 30 * 24 * 4}


@dataclass(frozen=True)
class SplitBorders:
    """Row ranges [start, end) of each split. Validation and test start `context_length`
    rows before their border so their first window forecasts the border's first row."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]


def split_borders(rule: SplitRule, n_rows: int, context_length: int) -> SplitBorders:
    if rule in _ETT_MONTH_ROWS:
        month = _ETT_MONTH_ROWS[rule]
        train_end, val_end, test_end = 12 * month, 16 * month, 20 * month
        if n_rows < test_end:
            raise ValueError(
                f"split rule {rule} needs {test_end} rows (20 months), the data has {n_rows}"
            )
    elif rule == "ratio_70_10_20":
        train_end = int(n_rows * 0.7)
        test_len = int(n_rows * 0.2)
        val_end = n_rows - test_len
        test_end = n_rows
    else:
        raise ValueError(f"unknown split rule {rule!r}")
    if train_end < context_length:
        raise ValueError(
            f"the train split has {train_end} rows, fewer than context_length={context_length}"
        )
    return SplitBorders(
        train=(0, train_end),
        val=(train_end - context_length, val_end),
        test=(val_end - context_length, test_end),
    )
