"""Checkpoint folders of a fine-tune: `checkpoints/step_N/`, written whole or not at all.

Accelerate's `save_state` writes the model, optimiser, scheduler and random states; we add
`trainer_state.json` with the loop's position, early-stopping state and cost counters, plus
the sha256 of every file. A resume verifies those digests before Accelerate reads anything,
so a damaged or foreign folder is refused with a message instead of being unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is damaged or was not written by this run's configuration."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finalize_checkpoint(tmp: Path, final: Path, state: dict[str, Any], keep: int = 2) -> None:
    """Add the trainer state and digests to `tmp`, rename it to `final`, prune old ones.
    Main process only, after every process has finished `save_state(tmp)`."""
    files = {p.name: _digest(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    (tmp / STATE_FILE).write_text(json.dumps({**state, "files": files}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    older = sorted(checkpoints(final.parent), key=_step)[:-keep]
    for folder in older:
        shutil.rmtree(folder, ignore_errors=True)


def checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")
            and p.name[5:].isdigit()]


def _step(folder: Path) -> int:
    return int(folder.name[5:])


def latest_checkpoint(root: Path) -> Path | None:
    found = sorted(checkpoints(root), key=_step)
    return found[-1] if found else None


def read_verified_state(folder: Path, fingerprint: str) -> dict[str, Any]:
    """The trainer state of `folder`, after checking it belongs to this run and is intact."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder} has no readable {STATE_FILE} ({err}); it is not a "
                              "checkpoint of ours. Delete it to start over.") from None
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{folder} belongs to another run (different model, data or "
                              "settings); use another out= folder or delete it")
    for name, expected in state.get("files", {}).items():
        path = folder / name
        if not path.is_file() or _digest(path) != expected:
            raise CheckpointError(f"{folder}/{name} is missing or damaged (checksum mismatch); "
                                  "delete the folder to resume from an earlier checkpoint")
    return state
