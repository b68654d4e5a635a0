"""Checkpoint folders of a fine-tune: `checkpoints/step_N/`, written whole or not at all.

Accelerate's `save_state` writes the model, optimiser, scheduler and random states; we add
`trainer_state.json` with the loop's position, early-stopping state and cost counters, plus
the sha256 of every file. A resume verifies those digests before Accelerate reads anything,
so a foreign folder is refused with a message instead of being unpickled, and a damaged one
(e.g. emptied by a power loss) is skipped, with a warning, for the newest intact one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from hdt_finetune.atomic_files import fsync_path, fsync_tree
from hdt_finetune.checksums import sha256_of
from hdt_finetune.run_identity import CheckpointError, ForeignCheckpointError

STATE_FILE = "trainer_state.json"
log = logging.getLogger(__name__)


def finalize_checkpoint(tmp: Path, final: Path, state: dict[str, Any], keep: int = 2) -> None:
    """Add the trainer state and digests to `tmp`, rename it to `final`, prune old ones.
    Main process only, after every process has finished `save_state(tmp)`."""
    files = {p.name: sha256_of(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    (tmp / STATE_FILE).write_text(json.dumps({**state, "files": files}, indent=2))
    fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(final.parent)
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


def resumable_checkpoint(root: Path, fingerprint: str) -> tuple[Path, dict[str, Any]] | None:
    """The newest intact checkpoint of this run under `root` and its state, or None if
    there is none. Damaged newer ones are skipped with a warning; if every one is damaged,
    or one belongs to another run, the error is raised."""
    first_error = None
    for folder in sorted(checkpoints(root), key=_step, reverse=True):
        try:
            return folder, read_verified_state(folder, fingerprint)
        except ForeignCheckpointError:
            raise
        except CheckpointError as err:
            log.warning("skipping damaged checkpoint: %s", err)
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    return None


def read_verified_state(folder: Path, fingerprint: str) -> dict[str, Any]:
    """The trainer state of `folder`, after checking it belongs to this run and is intact."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder} has no readable {STATE_FILE} ({err}); it is "
                              "incomplete or not a checkpoint of ours. Delete it to start "
                              "over.") from None
    if state.get("fingerprint") != fingerprint:
        raise ForeignCheckpointError(f"{folder} belongs to another run (different model, data "
                                     "or settings); use another out= folder or delete it")
    files = state.get("files")
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{folder}/{STATE_FILE} lists no file checksums; it is not a "
                              "checkpoint of ours. Delete the folder to start over")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != expected:
            raise CheckpointError(f"{folder}/{name} is missing or damaged (checksum mismatch); "
                                  "delete the folder to start over")
    return state
