"""`hdt distill`: make a training set from one dataset with a method and write it with its
manifest."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hdt_finetune.data.data_cache import cache_root
from hdt_finetune.data.prepared_data import DataSpec, PreparedData, prepare_data
from hdt_finetune.distill.settings import DistillSettings, method_settings
from hdt_finetune.methods import METHODS, MethodInputs
from hdt_finetune.provenance import Stopwatch, peak_rss_mb
from hdt_finetune.synthetic import (
    check_replaceable,
    dataset_scaling,
    dataset_source,
    write_synthetic_set,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    data: DataSpec
    method: str
    out: Path
    length: int = 384
    seed: int = 0
    overwrite: bool = False
    settings: DistillSettings | None = None  # None: the method's own (method_settings)
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.settings is None:
            object.__setattr__(self, "settings", method_settings(self.method))
        window = self.settings.context_length + self.settings.horizon
        # Every method but `full` (the whole split) makes a set to cut training windows from.
        if self.method != "full" and self.length < window:
            raise ValueError(f"length {self.length} is shorter than one training window "
                             f"(context_length {self.settings.context_length} + horizon "
                             f"{self.settings.horizon} = {window}); choose --length >= {window}")
        check_replaceable(Path(self.out), self.overwrite)

    @property
    def checkpoint_dir(self) -> Path:
        """Beside the output; removed once the output is written."""
        return self.out.parent / f".{self.out.name}.checkpoint"


def run_distillation(config: DistillConfig, data: PreparedData | None = None) -> Path:
    """Distil `config.data` (or the already prepared `data`) and write the set."""
    clock = Stopwatch()
    settings = config.settings
    data = data or prepare_data(config.data, settings.context_length)
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
        "settings": {"length": config.length, **asdict(settings)},
        "seed": config.seed,
        "source": dataset_source(data),
        "scaling": dataset_scaling(data),
        "method_info": outcome.info,
        # A cached expert buffer still cost what it cost to build: count it.
        "cost": {"wall_s": wall_s + (buffer["wall_s"] if buffer and buffer["cached"] else 0.0),
                 "run_wall_s": wall_s, "peak_rss_mb": peak_rss_mb(),
                 "threads": torch.get_num_threads()},
    }
    out = write_synthetic_set(config.out, outcome.values, data.columns, data.freq,
                              data.train_start, manifest, overwrite=config.overwrite)
    shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    log.info("wrote %s (%s, %d steps x %d channels)", out, config.method, *outcome.values.shape)
    return out
