"""The named benchmark datasets: where each comes from, its checksum, frequency and split rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hdt_finetune.data.table_loading import RepairPolicy

SplitRule = Literal["ett_hourly", "ett_minutely", "ratio_70_10_20"]

_ETT_BASE = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small"
# The Time-Series-Library collection on the Hugging Face hub holds the Autoformer-format CSVs.
_TSLIB_BASE = "https://huggingface.co/datasets/thuml/Time-Series-Library/resolve/main"


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset.

    `sha256` is None where we have never held the file: the first download then logs the
    digest it computed (trust on first use) instead of verifying it. `known_repair` is what
    the canonical file is known to need, applied (and logged) whenever it is loaded by name;
    a user's file gets no such allowance.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    freq: str
    split_rule: SplitRule
    n_rows: int
    n_columns: int
    known_repair: RepairPolicy | None = None
    known_repair_reason: str = ""
    # Datasets of one family share their data: ETTh1 is the hourly subsample of ETTm1 (13,145
    # of its 17,420 rows appear in ETTm1), ETTh2 of ETTm2. A model that must not have seen a
    # dataset must not have seen its family.
    family: str = ""

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "ETTh1", "ETTh1.csv", f"{_ETT_BASE}/ETTh1.csv",
            "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
            "h", "ett_hourly", 17420, 7,
            family="ETT transformer 1",
        ),
        DatasetSpec(
            "ETTh2", "ETTh2.csv", f"{_ETT_BASE}/ETTh2.csv",
            "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
            "h", "ett_hourly", 17420, 7,
            family="ETT transformer 2",
        ),
        DatasetSpec(
            "ETTm1", "ETTm1.csv", f"{_ETT_BASE}/ETTm1.csv",
            "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e",
            "15min", "ett_minutely", 69680, 7,
            family="ETT transformer 1",
        ),
        DatasetSpec(
            "ETTm2", "ETTm2.csv", f"{_ETT_BASE}/ETTm2.csv",
            "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd",
            "15min", "ett_minutely", 69680, 7,
            family="ETT transformer 2",
        ),
        DatasetSpec(
            "exchange_rate", "exchange_rate.csv",
            f"{_TSLIB_BASE}/exchange_rate/exchange_rate.csv",
            "d55e7aa2641009814a18ba3279431b13f6d413b0eab195b9ff21988d8cf94e97",
            "D", "ratio_70_10_20", 7588, 8,
        ),
        DatasetSpec(
            "electricity", "electricity.csv", f"{_TSLIB_BASE}/electricity/electricity.csv",
            None, "h", "ratio_70_10_20", 26304, 321,
        ),
        DatasetSpec(
            "traffic", "traffic.csv", f"{_TSLIB_BASE}/traffic/traffic.csv",
            None, "h", "ratio_70_10_20", 17544, 862,
        ),
        DatasetSpec(
            "weather", "weather.csv", f"{_TSLIB_BASE}/weather/weather.csv",
            None, "10min", "ratio_70_10_20", 52696, 21,
            known_repair=RepairPolicy(drop_duplicate_timestamps=True),
            known_repair_reason="the canonical file repeats 2020-05-12 06:00:00 once",
        ),
        DatasetSpec(
            "illness", "national_illness.csv", f"{_TSLIB_BASE}/illness/national_illness.csv",
            None, "W", "ratio_70_10_20", 966, 7,
        ),
    ]
}


def family_of(name: str) -> str:
    """The family of a registered dataset; any other dataset (a user's file) is its own."""
    spec = DATASETS.get(name)
    return spec.family if spec is not None else name
