"""What makes a checkpoint or a cached artefact belong to a run: one fingerprint of the
settings that shape its result, and one error for checkpoints that are damaged or foreign.

Distillation, corpus distillation, the expert cache, the distil-on-demand cache and the
fine-tuning loop all key their state with `fingerprint` and refuse with `CheckpointError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any


class CheckpointError(RuntimeError):
    """A checkpoint is damaged, or was not written by a run with these settings."""


class ForeignCheckpointError(CheckpointError):
    """A checkpoint was written by a run with other settings."""


def fingerprint(payload: Any, length: int = 64) -> str:
    """sha256 of the canonical JSON of `payload` (dataclasses, paths and tuples included),
    as hex, cut to `length` characters."""
    text = json.dumps(_plain(payload), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def changed_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two flat settings dicts (for error messages)."""
    return sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
