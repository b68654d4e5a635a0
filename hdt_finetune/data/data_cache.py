"""The local data cache: find a named dataset's file, download and verify it when online."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from platformdirs import user_cache_dir
from tqdm.auto import tqdm

from hdt_finetune.checksums import sha256_of
from hdt_finetune.data.dataset_registry import DatasetSpec

log = logging.getLogger(__name__)

DATA_DIR_ENV = "HDT_DATA_DIR"
CACHE_DIR_ENV = "HDT_CACHE_DIR"


class DatasetUnavailableError(RuntimeError):
    """A dataset file is missing and could not be downloaded, or its checksum is wrong."""


def data_dir() -> Path:
    """The cache folder: $HDT_DATA_DIR, or a folder under the user's cache directory."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(user_cache_dir("hdt_finetune")) / "data"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now: huggingface_hub and datasets read it once, at import, so a
    later setting would otherwise make a hub request fail only after ~20 s of retries."""
    import huggingface_hub.constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return flag.upper() in {"1", "ON", "YES", "TRUE"} or huggingface_hub.constants.HF_HUB_OFFLINE


def cache_root() -> Path:
    """Where derived artefacts (expert buffers) are cached: $HDT_CACHE_DIR or the user cache."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path(user_cache_dir("hdt_finetune"))


def ensure_dataset_file(spec: DatasetSpec, cache: Path | None = None) -> Path:
    """Return the path of `spec`'s file in the cache, downloading it first if it is missing."""
    cache = cache or data_dir()
    path = cache / spec.filename
    if not path.exists():
        _download(spec, path)
    _verify(spec, path)
    return path


def _verify(spec: DatasetSpec, path: Path) -> None:
    digest = sha256_of(path)
    if spec.sha256 is None:
        log.warning("%s has no published checksum here; its sha256 is %s", path, digest)
    elif digest != spec.sha256:
        raise DatasetUnavailableError(
            f"{path} does not match the checksum of {spec.name}: expected sha256 {spec.sha256}, "
            f"got {digest}. Delete the file to download it again, or replace it with the "
            f"original from {spec.url}."
        )


def _download(spec: DatasetSpec, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with urllib.request.urlopen(spec.url, timeout=30) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            desc = f"download {spec.filename}"
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        if spec.sha256 is not None and sha256_of(tmp) != spec.sha256:
            raise DatasetUnavailableError(
                f"the download of {spec.name} from {spec.url} does not match its checksum "
                f"{spec.sha256}; nothing was saved. Try again, or fetch the file by hand."
            )
        shutil.move(tmp, path)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailableError(
            f"{spec.name} is not in the data cache and could not be downloaded ({err}). "
            f"Put {spec.filename} (from {spec.url}) at {path}, or point {DATA_DIR_ENV} at a "
            f"folder that holds it."
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
