"""A fine-tune's `out=` folder: one run's, held by one process at a time.

`run.json` says which run the folder holds (the fingerprint of its result-shaping settings,
and the settings). A folder of the same run resumes; one of other settings is refused.
`overwrite=true` starts afresh, removing only the files a fine-tune writes; a folder holding
anything else is never touched. A lock (`.lock`, flock) keeps two fine-tunes out of one
folder and names the process that holds it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hdt_finetune.atomic_files import atomic_write_json, check_writable
from hdt_finetune.run_identity import changed_keys

log = logging.getLogger(__name__)

MARKER = "run.json"
LOCK = ".lock"
# Everything a fine-tune writes into its folder (what overwrite may remove): our files, the
# trackers' folder (Accelerate names it after the project), and a temporary `.NAME...tmp`
# of any of them left by a kill.
OWN_ENTRIES = (MARKER, LOCK, "checkpoints", "best_model.safetensors", "metrics.jsonl",
               "model", "lora_adapter", "record.json", "hdt_finetune")


class RunFolderError(RuntimeError):
    """The out= folder is busy, holds another run, or holds files that are not ours."""


@contextmanager
def claimed_run_folder(out: Path, fingerprint: str, settings: dict[str, str],
                       overwrite: bool) -> Iterator[None]:
    """Hold `out` for this run (main process only): lock it, then make sure it holds this
    run or nothing, replacing another run's files only with `overwrite`."""
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    with held_lock(out / LOCK, f"{out} is in use by {{holder}}; wait for that fine-tune to "
                   "end or choose another out="):
        _adopt(out, fingerprint, settings, overwrite)
        yield


def _adopt(out: Path, fingerprint: str, settings: dict[str, str], overwrite: bool) -> None:
    marker = out / MARKER
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    saved = _read_marker(marker) if marker.exists() else None
    if saved is not None and saved.get("fingerprint") == fingerprint and not overwrite:
        return  # this run: resume
    foreign = [name for name in entries if not _is_own(name)]
    if foreign:
        raise RunFolderError(f"{out} holds files hdt finetune did not write ({', '.join(foreign)}"
                             "); choose another out=")
    if entries and not overwrite:
        if saved is None:
            detail = "a fine-tune of unknown settings"
        else:
            changed = changed_keys(saved.get("settings", {}), settings)
            detail = f"a fine-tune with other settings ({', '.join(changed) or 'unknown'})"
        raise RunFolderError(f"{out} holds {detail}; pass overwrite=true to replace it, or "
                             "choose another out=")
    for name in entries:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if entries:
        log.info("overwrite: removed the previous run's files from %s", out)
    atomic_write_json(marker, {"fingerprint": fingerprint, "settings": settings})


def _is_own(name: str) -> bool:
    """One of ours, or the temporary (`.NAME.*.tmp`) or set-aside (`.NAME.*.old`) copy of one
    that a kill left behind."""
    if name.startswith(".") and name.endswith((".tmp", ".old")):
        return any(name[1:].startswith(f"{own}.") for own in OWN_ENTRIES)
    return name in OWN_ENTRIES


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


@contextmanager
def held_lock(path: Path, busy: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (flock: released when the process ends, even
    by a kill). If another process holds it: wait for it (`wait`, logging `busy`), or raise
    RunFolderError with `busy`; its `{holder}` names that process."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run without the guard
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            message = busy.format(holder=handle.read().strip() or "another process")
            if not wait:
                raise RunFolderError(message) from None
            log.info("%s; waiting", message)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
