"""Where model weights come from: a local folder, a hub id, or an explicit random init.

Offline, a hub id must fail with a message that says what to do, never with a traceback from
deep inside huggingface_hub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)


T = TypeVar("T")
# The weights file of a save_pretrained folder: whole, or sharded with an index.
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


class ModelUnavailableError(RuntimeError):
    """Weights were asked for that cannot be had here."""


def load_weights(loader: Callable[[str], T], source: str) -> T:
    """Call `loader(source)` for a local folder or a hub id, translating hub failures."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        _refuse_pickled_weights(folder)
        return loader(str(folder))
    if Path(source).expanduser().exists():
        raise ModelUnavailableError(f"{source} is a file; give the folder written by "
                                    "save_pretrained")
    try:
        return loader(source)
    except (OSError, ValueError) as err:
        # huggingface_hub raises OSError subclasses (LocalEntryNotFoundError, HTTP errors,
        # repository not found) and transformers ValueError/OSError for unreachable hubs.
        raise ModelUnavailableError(
            f"could not load {source!r} from the Hugging Face hub ({type(err).__name__}). "
            "Without network access: download it on a machine that has one "
            f"(`huggingface-cli download {source} --local-dir DIR`) and pass that folder, or "
            "set model.init=random to fine-tune a randomly initialised model (labelled "
            "as such in every output). HF_HUB_OFFLINE=1 makes this fail at once instead of "
            "after the hub's retries."
        ) from None


def _refuse_pickled_weights(folder: Path) -> None:
    """Only safetensors weights are read: a pickle handed to us could run code when loaded.
    The loaders then ask for safetensors explicitly, so a stray `*.safetensors` file beside
    a `pytorch_model.bin` cannot make them fall back to the pickle."""
    if any((folder / name).is_file() for name in SAFETENSORS_WEIGHTS):
        return
    pickled = [p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl",
                                                                 ".ckpt"}]
    detail = f" (found {', '.join(sorted(pickled))})" if pickled else ""
    raise ModelUnavailableError(
        f"{folder} holds no {' or '.join(SAFETENSORS_WEIGHTS)}{detail}. Only safetensors "
        "weights are loaded, because a pickled checkpoint can run code; convert it on a "
        "trusted machine with save_pretrained(..., safe_serialization=True)."
    )
