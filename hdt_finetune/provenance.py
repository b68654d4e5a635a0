"""What a result was made with: package versions, git commit, peak memory, wall time."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PACKAGES = ("hdt-finetune", "torch", "numpy", "pandas", "datasets", "uni2ts", "accelerate",
             "peft", "transformers")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> dict[str, str | bool | None]:
    """The commit of the checkout this package runs from, and whether its tracked files are
    as committed. Benchmark results are left out: a benchmark rewrites its own records."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)benchmarks/results"], cwd=root,
                               capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "clean": None}
    return {"sha": sha, "clean": not dirty}


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where the OS cannot say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine() -> dict[str, str | int | None]:
    import os

    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count()}


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return time.perf_counter() - self.started
