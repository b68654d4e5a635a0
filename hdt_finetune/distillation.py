"""`hdt distill`: make a synthetic set with a method and write it with its manifest."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hdt_finetune.data.prepared_data import prepare_data
from hdt_finetune.data.table_loading import RepairPolicy
from hdt_finetune.methods import METHODS
from hdt_finetune.provenance import Stopwatch, git_commit, package_versions, peak_rss_mb
from hdt_finetune.synthetic import write_synthetic_set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    dataset: str
    method: str
    out: Path
    length: int = 384
    seed: int = 0
    context_length: int = 96
    overwrite: bool = False
    repair: RepairPolicy = field(default_factory=RepairPolicy)
    date_column: str = "date"
    columns: list[str] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")


def run_distillation(config: DistillConfig) -> Path:
    clock = Stopwatch()
    data = prepare_data(config.dataset, config.context_length, config.repair,
                        config.date_column, config.columns)
    values = METHODS[config.method](data.train, config.length, config.seed)
    manifest = {
        "method": config.method,
        "settings": {"length": config.length, "context_length": config.context_length,
                     "repair": asdict(config.repair), "date_column": config.date_column,
                     "columns": list(data.columns)},
        "seed": config.seed,
        "source": {"dataset": data.name, "path": data.source, "sha256": data.sha256,
                   "split": "train", "rows": list(data.borders.train)},
        "scaler": data.scaler.to_dict(),
        "versions": package_versions(),
        "git": git_commit(),
        "cost": {"wall_s": clock.seconds(), "peak_rss_mb": peak_rss_mb()},
    }
    out = write_synthetic_set(config.out, values, data.columns, data.freq, data.train_start,
                              manifest, overwrite=config.overwrite)
    log.info("wrote %s (%s, %d steps x %d channels)", out, config.method, *values.shape)
    return out
