"""Which Moirai, and where its weights come from: the published sizes and hub ids, a random
init of a published architecture, or a folder written by `save_pretrained` (checked before
it is built: a config with absurd sizes or weights that do not fit it fail with one line)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hdt_finetune.data.data_cache import hub_offline
from hdt_finetune.finetune.model_source import ModelUnavailableError, load_weights
from hdt_finetune.finetune.uni2ts_compat import import_uni2ts

log = logging.getLogger(__name__)

PUBLISHED_SIZES = ("small", "base", "large")
SIZES = ("tiny", *PUBLISHED_SIZES)  # "tiny" is random-init only, for tests
VERSIONS = ("1.0", "1.1")
PATCH_SIZES = (8, 16, 32, 64, 128)
DEFAULT_PATCH_SIZE = 32
RANDOM_INIT_WEIGHTS = "random-init"  # the `weights` label of a random-init model


@dataclass(frozen=True)
class _Architecture:
    d_model: int
    num_layers: int


# Published Moirai 1.0/1.1-R configs (uni2ts cli/conf/*/model/moirai_*.yaml): both versions
# share the architecture; the rest of the constructor arguments are in `_module_kwargs`.
# Heads are d_model // 64, so "tiny" needs d_model 64 (one head).
_ARCHITECTURES = {
    "tiny": _Architecture(d_model=64, num_layers=2),
    "small": _Architecture(d_model=384, num_layers=6),
    "base": _Architecture(d_model=768, num_layers=12),
    "large": _Architecture(d_model=1024, num_layers=24),
}
# What a config.json may ask for before we build it: beyond these it is damaged or hostile
# (large is 1024 x 24; a config of 10^9 layers would exhaust memory before failing).
_CONFIG_LIMITS = {"d_model": (64, 8192), "num_layers": (1, 256), "max_seq_len": (1, 1 << 16)}


@dataclass(frozen=True, kw_only=True)
class MoiraiSpec:
    """Which Moirai and which window shape. ``size="tiny"`` exists for random-init tests only."""

    size: str = "small"
    version: str = "1.1"
    patch_size: int = DEFAULT_PATCH_SIZE
    context_length: int
    horizon: int

    def __post_init__(self) -> None:
        _check_choice("size", self.size, SIZES)
        if isinstance(self.version, str) and self.version.startswith("2"):
            raise ValueError(
                f"MoiraiSpec.version {self.version!r} is not supported: Moirai-2 has no "
                f"fine-tuning objective in uni2ts 2.0.0; use one of {VERSIONS}"
            )
        _check_choice("version", self.version, VERSIONS)
        _check_choice("patch_size", self.patch_size, PATCH_SIZES)
        _check_positive_int("context_length", self.context_length)
        _check_positive_int("horizon", self.horizon)

    @property
    def hub_id(self) -> str:
        if self.size not in PUBLISHED_SIZES:
            raise ValueError(
                f"size {self.size!r} has no published weights (published: {PUBLISHED_SIZES}); "
                "build it with random_moirai()"
            )
        return f"Salesforce/moirai-{self.version}-R-{self.size}"


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"MoiraiSpec.{name} must be one of {choices}, got {value!r}")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"MoiraiSpec.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, eq=False)
class LoadedMoirai:
    """A MoiraiModule plus where its weights came from: ``"random-init"``, a hub id or a folder."""

    module: nn.Module
    weights: str
    size: str | None = None


def _module_kwargs(arch: _Architecture) -> dict[str, Any]:
    uni = import_uni2ts()
    distr_output = uni.MixtureOutput(
        components=[
            uni.StudentTOutput(),
            uni.NormalFixedScaleOutput(),
            uni.NegativeBinomialOutput(),
            uni.LogNormalOutput(),
        ]
    )
    return {
        "distr_output": distr_output,
        "d_model": arch.d_model,
        "num_layers": arch.num_layers,
        "patch_sizes": PATCH_SIZES,
        "max_seq_len": 512,
        "attn_dropout_p": 0.0,
        "dropout_p": 0.0,
        "scaling": True,
    }


def random_moirai(size: str, *, seed: int | None = None) -> LoadedMoirai:
    """A randomly initialised MoiraiModule with the published architecture of ``size``."""
    if size not in _ARCHITECTURES:
        raise ValueError(f"Moirai size must be one of {SIZES}, got {size!r}")
    uni = import_uni2ts()
    kwargs = _module_kwargs(_ARCHITECTURES[size])
    # A seed must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        module = uni.MoiraiModule(**kwargs)
    log.info("built random-init Moirai %s (%d parameters)", size, _num_params(module))
    return LoadedMoirai(module=module, weights=RANDOM_INIT_WEIGHTS, size=size)


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _size_of(module: nn.Module) -> str | None:
    shape = _Architecture(getattr(module, "d_model", -1), getattr(module, "num_layers", -1))
    return next((name for name, arch in _ARCHITECTURES.items() if arch == shape), None)


def load_moirai(source: str | Path, *, strict: bool = True) -> LoadedMoirai:
    """Load a MoiraiModule from a hub id (``Salesforce/moirai-1.1-R-small``) or a local folder.

    Offline (``HF_HUB_OFFLINE=1``) a hub id is only looked up in the local hub cache. Weights
    that cannot be had raise :class:`ModelUnavailableError` saying what to do (the project's
    common policy in ``model_source.load_weights``). ``strict`` refuses a checkpoint whose
    tensors do not match the architecture (huggingface_hub would silently keep random weights).
    """
    uni = import_uni2ts()
    source = str(source)
    folder = Path(source).expanduser()
    if folder.is_dir():
        if not (folder / "model.safetensors").is_file():
            raise ModelUnavailableError(
                f"{folder} has no model.safetensors: give a folder written by "
                "save_pretrained() or a downloaded Moirai checkpoint")
        check_moirai_config(folder / "config.json")

    def from_pretrained(name: str) -> nn.Module:
        try:
            return _quiet_from_pretrained(uni.MoiraiModule, name, strict=strict,
                                          local_files_only=hub_offline())
        except (RuntimeError, TypeError, KeyError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ModelUnavailableError(
                f"{name}: the weights do not fit the Moirai its config.json describes "
                f"({reason}); give an unmodified save_pretrained() folder") from None

    module = load_weights(from_pretrained, source)
    weights = str(folder.resolve()) if folder.is_dir() else source
    log.info("loaded Moirai weights from %s (%d parameters)", weights, _num_params(module))
    return LoadedMoirai(module=module, weights=weights, size=_size_of(module))


def check_moirai_config(path: Path) -> None:
    """A Moirai config.json must be readable and describe a buildable model."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelUnavailableError(f"{path} is not a readable config ({err})") from None
    if not isinstance(config, dict):
        raise ModelUnavailableError(f"{path} must hold a JSON object")
    for key, (low, high) in _CONFIG_LIMITS.items():
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelUnavailableError(f"{path}: {key} must be an integer in [{low}, {high}], "
                                        f"got {value!r}")
    sizes = config.get("patch_sizes")
    if (not isinstance(sizes, list) or not sizes
            or not all(isinstance(p, int) and p in PATCH_SIZES for p in sizes)):
        raise ModelUnavailableError(f"{path}: patch_sizes must be a list drawn from "
                                    f"{PATCH_SIZES}, got {sizes!r}")
    if config["d_model"] % 64:
        raise ModelUnavailableError(f"{path}: d_model must be a multiple of 64 (Moirai's head "
                                    f"size), got {config['d_model']}")


def _quiet_from_pretrained(cls: Any, source: str, **kwargs: Any) -> nn.Module:
    # huggingface_hub print()s "Loading weights from local directory"; keep stdout clean for
    # callers that emit machine-readable output there.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        module = cls.from_pretrained(source, **kwargs)
    if buffer.getvalue().strip():
        log.debug("huggingface_hub: %s", buffer.getvalue().strip())
    return module
