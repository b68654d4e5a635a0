"""Atomic writes flush what they wrote before the rename makes it visible."""

from __future__ import annotations

import os

import pytest

import hdt_finetune.atomic_files as atomic_files
from hdt_finetune.atomic_files import atomic_directory


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fds through /proc")
def test_every_file_is_flushed_before_the_folder_is_renamed(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    monkeypatch.setattr(atomic_files.os, "replace", replace)
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "weights.bin").write_bytes(b"1234")
        (tmp / "manifest.json").write_text("{}")
    renamed = events.index(("replace", str(tmp_path / "out")))
    flushed = {os.path.basename(path) for kind, path in events[:renamed] if kind == "fsync"}
    assert {"weights.bin", "manifest.json", "sub", tmp.name} <= flushed
    assert events[renamed + 1:] == [("fsync", str(tmp_path))]  # the rename itself
    assert (tmp_path / "out" / "sub" / "weights.bin").read_bytes() == b"1234"
