"""`hdt distill`: make a synthetic set with a method and write it with its manifest."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hdt_finetune.data.data_cache import cache_root
from hdt_finetune.data.prepared_data import prepare_data
from hdt_finetune.data.table_loading import RepairPolicy
from hdt_finetune.distill.settings import DistillSettings
from hdt_finetune.methods import METHODS, MethodInputs
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
    overwrite: bool = False
    settings: DistillSettings = field(default_factory=DistillSettings)
    repair: RepairPolicy = field(default_factory=RepairPolicy)
    date_column: str = "date"
    columns: list[str] | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if self.out.exists() and not self.overwrite:
            raise FileExistsError(f"{self.out} already exists; choose another --out or pass "
                                  "--overwrite")

    @property
    def checkpoint_dir(self) -> Path:
        """Beside the output; removed once the output is written."""
        return self.out.parent / f".{self.out.name}.checkpoint"


def run_distillation(config: DistillConfig) -> Path:
    clock = Stopwatch()
    settings = config.settings
    data = prepare_data(config.dataset, settings.context_length, config.repair,
                        config.date_column, config.columns)
    source_id = {"dataset": data.name, "sha256": data.sha256, "rows": list(data.borders.train),
                 "columns": list(data.columns)}
    outcome = METHODS[config.method](MethodInputs(
        train=data.train, length=config.length, seed=config.seed, settings=settings,
        source_id=source_id, expert_cache=cache_root() / "experts",
        checkpoint_dir=config.checkpoint_dir, show_progress=config.show_progress))
    wall_s = clock.seconds()
    buffer = outcome.info.get("expert_buffer")
    manifest = {
        "method": config.method,
        "settings": {"length": config.length, **asdict(settings),
                     "repair": asdict(config.repair), "date_column": config.date_column},
        "seed": config.seed,
        "source": {"dataset": data.name, "path": data.source, "sha256": data.sha256,
                   "split": "train", "rows": list(data.borders.train)},
        "scaler": data.scaler.to_dict(),
        "method_info": outcome.info,
        "versions": package_versions(),
        "git": git_commit(),
        # A cached expert buffer still cost what it cost to build: count it.
        "cost": {"wall_s": wall_s + (buffer["wall_s"] if buffer and buffer["cached"] else 0.0),
                 "run_wall_s": wall_s, "peak_rss_mb": peak_rss_mb()},
    }
    out = write_synthetic_set(config.out, outcome.values, data.columns, data.freq,
                              data.train_start, manifest, overwrite=config.overwrite)
    shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    log.info("wrote %s (%s, %d steps x %d channels)", out, config.method, *outcome.values.shape)
    return out
