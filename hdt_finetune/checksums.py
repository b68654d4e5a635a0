"""Content checksums: of a file, of a folder's files, and of an array's values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_tree(folder: Path) -> str:
    """One digest of every file under `folder`: their relative paths and contents, in order.
    A dataset saved as a folder (Hugging Face `save_to_disk`) is checksummed this way."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()


def sha256_of_values(values: np.ndarray, names: list[str] | tuple[str, ...]) -> str:
    """The content checksum of a training set: its float32 values with their shape and
    channel names. Rewriting the same values gives the same digest, whatever the files."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    header = json.dumps({"shape": list(values.shape), "channels": list(names)})
    return hashlib.sha256(header.encode() + b"\0" + values.tobytes()).hexdigest()
