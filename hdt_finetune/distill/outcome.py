"""What every distillation method takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdt_finetune.distill.settings import DistillSettings


@dataclass(frozen=True)
class MethodInputs:
    train: np.ndarray  # the scaled train split, [time, channel]
    length: int  # M
    seed: int
    settings: DistillSettings
    source_id: dict[str, Any]  # identifies the data, for the expert-buffer cache key
    expert_cache: Path
    checkpoint_dir: Path | None = None
    show_progress: bool = True


@dataclass(frozen=True)
class DistillOutcome:
    values: np.ndarray  # [M, channel]
    info: dict[str, Any]
