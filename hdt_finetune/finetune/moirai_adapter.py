"""Moirai 1.x (Salesforce uni2ts) as a univariate, channel-independent forecaster.

Windows come in as plain tensors (`context [B, L]`, `target [B, H]`); the adapter packs them into
the token layout `MoiraiModule.forward` expects, with one fixed patch size:

- each window is one sample (``sample_id`` 1; uni2ts reserves 0 for padding tokens) and one
  variate (``variate_id`` 0), so rows never attend to each other;
- the context is left-padded to whole patches with ``observed_mask`` False, the horizon is
  rounded up to whole patches (the extra steps are unobserved, so they carry no loss) and
  forecasts are trimmed back to ``horizon`` steps;
- tokens are padded along the patch axis to the module's largest patch size, as uni2ts does.

Scaling: nothing is done here. Moirai's ``PackedStdScaler`` standardises every (sample, variate)
with the mean/std of its observed *context* points (horizon tokens excluded), and the predictive
distribution is mapped back through the same affine transform. Inputs, targets, losses and
forecasts are therefore all in the caller's units; the NLL includes the ``log(scale)`` term of
that transform, which does not depend on the model's parameters.

Non-finite values in context or target are treated as missing (``observed_mask`` False).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hdt_finetune.finetune.model_source import ModelUnavailableError, load_weights
from hdt_finetune.finetune.uni2ts_compat import import_uni2ts

logger = logging.getLogger(__name__)

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


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"MoiraiSpec.{name} must be one of {choices}, got {value!r}")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"MoiraiSpec.{name} must be a positive integer, got {value!r}")


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


@dataclass(frozen=True, eq=False)
class LoadedMoirai:
    """A MoiraiModule plus where its weights came from: ``"random-init"``, a hub id or a folder."""

    module: nn.Module
    weights: str
    size: str | None = None

    @property
    def is_random_init(self) -> bool:
        return self.weights == RANDOM_INIT_WEIGHTS


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
    logger.info("built random-init Moirai %s (%d parameters)", size, _num_params(module))
    return LoadedMoirai(module=module, weights=RANDOM_INIT_WEIGHTS, size=size)


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _size_of(module: nn.Module) -> str | None:
    shape = _Architecture(getattr(module, "d_model", -1), getattr(module, "num_layers", -1))
    return next((name for name, arch in _ARCHITECTURES.items() if arch == shape), None)


def _hub_offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; honour a later setting too, so an
    # offline hub id fails at once from the local cache instead of after ~20 s of retries.
    import huggingface_hub.constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return flag.upper() in {"1", "ON", "YES", "TRUE"} or huggingface_hub.constants.HF_HUB_OFFLINE


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
    if folder.is_dir() and not (folder / "model.safetensors").is_file():
        raise ModelUnavailableError(
            f"{folder} has no model.safetensors: give a folder written by save_pretrained() "
            "or a downloaded Moirai checkpoint"
        )

    def from_pretrained(name: str) -> nn.Module:
        return _quiet_from_pretrained(
            uni.MoiraiModule, name, strict=strict, local_files_only=_hub_offline()
        )

    module = load_weights(from_pretrained, source)
    weights = str(folder.resolve()) if folder.is_dir() else source
    logger.info("loaded Moirai weights from %s (%d parameters)", weights, _num_params(module))
    return LoadedMoirai(module=module, weights=weights, size=_size_of(module))


def _quiet_from_pretrained(cls: Any, source: str, **kwargs: Any) -> nn.Module:
    # huggingface_hub print()s "Loading weights from local directory"; keep stdout clean for
    # callers that emit machine-readable output there.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        module = cls.from_pretrained(source, **kwargs)
    if buffer.getvalue().strip():
        logger.debug("huggingface_hub: %s", buffer.getvalue().strip())
    return module


@dataclass
class MoiraiBatch:
    """Packed Moirai inputs: ``S`` tokens per window, each padded to the largest patch size."""

    target: Tensor  # [B, S, max_patch] float
    observed_mask: Tensor  # [B, S, max_patch] bool
    sample_id: Tensor  # [B, S] long
    time_id: Tensor  # [B, S] long
    variate_id: Tensor  # [B, S] long
    prediction_mask: Tensor  # [B, S] bool
    patch_size: Tensor  # [B, S] long

    def module_inputs(self) -> dict[str, Tensor]:
        return {
            "target": self.target,
            "observed_mask": self.observed_mask,
            "sample_id": self.sample_id,
            "time_id": self.time_id,
            "variate_id": self.variate_id,
            "prediction_mask": self.prediction_mask,
            "patch_size": self.patch_size,
        }


def _as_univariate(x: Tensor, name: str) -> Tensor:
    if x.ndim == 3 and x.shape[-1] == 1:
        return x[..., 0]
    if x.ndim != 2:
        raise ValueError(f"{name} must be [batch, time] or [batch, time, 1], got {tuple(x.shape)}")
    return x


def _unwrap(module: nn.Module) -> nn.Module:
    # DDP hides the MoiraiModule's submodules; peft forwards attribute access by itself.
    if isinstance(module, nn.parallel.DistributedDataParallel):
        return module.module
    return module


def _map_tensors(fn: Callable[[Tensor], Tensor], tree: Any) -> Any:
    """Apply ``fn`` to every tensor of uni2ts's nested dict/list distribution parameters."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {key: _map_tensors(fn, value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_map_tensors(fn, value) for value in tree)
    return tree


def _patchify(
    values: Tensor, observed: Tensor, patch: int, *, pad_front: bool
) -> tuple[Tensor, Tensor]:
    """[B, T] -> [B, ceil(T / patch), patch]; padding is unobserved."""
    pad = -values.shape[-1] % patch
    widths = (pad, 0) if pad_front else (0, pad)
    values = F.pad(values, widths).unflatten(-1, (-1, patch))
    observed = F.pad(observed, widths, value=False).unflatten(-1, (-1, patch))
    return values, observed


class MoiraiAdapter(nn.Module):
    """Fixed-patch-size, channel-independent Moirai forecaster over ``[B, L] -> [B, H]`` windows.

    ``forward(context, target)`` returns the training loss, so the adapter itself can be handed
    to Accelerate/DDP. Alternatively pass ``module=`` (e.g. the prepared or peft-wrapped
    MoiraiModule) to ``distribution``/``loss``/forecasts: its forward is then the one called.
    Forecasts run under ``torch.no_grad`` and leave train/eval mode to the caller (published
    Moirai has no dropout, so the mode rarely matters).
    """

    probabilistic = True
    # Parameter-name pieces for the fine-tuning modes (see finetune_modes / ForecastAdapter).
    head_keywords = ("param_proj",)
    ffn_keywords = ("ffn.",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")

    def __init__(
        self,
        model: LoadedMoirai,
        *,
        context_length: int,
        horizon: int,
        patch_size: int = DEFAULT_PATCH_SIZE,
    ) -> None:
        super().__init__()
        module_patch_sizes = tuple(int(p) for p in model.module.patch_sizes)
        if patch_size not in module_patch_sizes:
            raise ValueError(
                f"patch_size {patch_size} is not one of the module's {module_patch_sizes}"
            )
        if context_length < 1 or horizon < 1:
            raise ValueError(
                f"context_length and horizon must be >= 1, got {context_length}, {horizon}"
            )
        self.module = model.module
        self.weights = model.weights
        self.size = model.size
        self.context_length = context_length
        self.horizon = horizon
        self.patch_size = patch_size
        self.max_patch = max(module_patch_sizes)
        self.context_tokens = math.ceil(context_length / patch_size)
        self.horizon_tokens = math.ceil(horizon / patch_size)
        self._nll = import_uni2ts().PackedNLLLoss()

    @classmethod
    def from_spec(cls, spec: MoiraiSpec, model: LoadedMoirai) -> MoiraiAdapter:
        return cls(
            model,
            context_length=spec.context_length,
            horizon=spec.horizon,
            patch_size=spec.patch_size,
        )

    @property
    def name(self) -> str:
        return f"moirai-{self.size or 'custom'}"

    def tokens_per_window(self) -> int:
        return self.context_tokens + self.horizon_tokens

    def inputs_from_windows(self, context: Tensor, target: Tensor | None = None) -> MoiraiBatch:
        """Pack ``context [B, L(, 1)]`` and optional ``target [B, H(, 1)]`` into Moirai inputs.

        Without a target (forecasting) the horizon tokens are zeros; Moirai replaces them with its
        mask embedding and its scaler ignores them, so their values never matter.
        """
        ref = self.module.mask_encoding.weight  # inputs follow the module's device and dtype
        context = _as_univariate(context, "context").to(device=ref.device, dtype=ref.dtype)
        batch = context.shape[0]
        if context.shape[1] != self.context_length:
            raise ValueError(
                f"context has {context.shape[1]} steps, the adapter expects {self.context_length}"
            )
        if target is None:
            target = torch.zeros(batch, self.horizon, device=ref.device, dtype=ref.dtype)
        target = _as_univariate(target, "target").to(device=ref.device, dtype=ref.dtype)
        if tuple(target.shape) != (batch, self.horizon):
            raise ValueError(f"target must be [{batch}, {self.horizon}], got {tuple(target.shape)}")

        past, past_obs = _patchify(
            torch.nan_to_num(context), context.isfinite(), self.patch_size, pad_front=True
        )
        future, future_obs = _patchify(
            torch.nan_to_num(target), target.isfinite(), self.patch_size, pad_front=False
        )
        widen = (0, self.max_patch - self.patch_size)  # uni2ts pads tokens to its largest patch
        values = F.pad(torch.cat([past, future], dim=1), widen)
        observed = F.pad(torch.cat([past_obs, future_obs], dim=1), widen, value=False)

        shape = (batch, self.tokens_per_window())
        time_id = torch.arange(shape[1], device=ref.device).expand(shape).contiguous()
        return MoiraiBatch(
            target=values,
            observed_mask=observed,
            sample_id=torch.ones(shape, dtype=torch.long, device=ref.device),
            time_id=time_id,
            variate_id=torch.zeros(shape, dtype=torch.long, device=ref.device),
            prediction_mask=time_id >= self.context_tokens,
            patch_size=torch.full(shape, self.patch_size, dtype=torch.long, device=ref.device),
        )

    def distribution(
        self, batch: MoiraiBatch, module: nn.Module | None = None
    ) -> torch.distributions.Distribution:
        """Moirai's predictive distribution over every token, batch shape ``[B, S, max_patch]``."""
        return (module or self.module)(**batch.module_inputs())

    def loss(self, batch: MoiraiBatch, module: nn.Module | None = None) -> Tensor:
        """uni2ts's packed NLL on the observed horizon points (mean per window, then batch)."""
        return self._nll(
            pred=self.distribution(batch, module),
            target=batch.target,
            prediction_mask=batch.prediction_mask,
            observed_mask=batch.observed_mask,
            sample_id=batch.sample_id,
            variate_id=batch.variate_id,
        )

    def forward(self, context: Tensor, target: Tensor) -> Tensor:
        return self.loss(self.inputs_from_windows(context, target))

    def forecast_distribution(
        self, batch: MoiraiBatch, module: nn.Module | None = None
    ) -> torch.distributions.Distribution:
        """The predictive distribution of the horizon only, batch shape ``[B, Nh, patch_size]``.

        Same computation as ``MoiraiModule.forward`` (uni2ts 2.0.0), but the distribution head
        runs on the horizon tokens and their first ``patch_size`` columns alone: sampling the
        full ``[B, S, max_patch]`` distribution costs ~20x more and dominates forecasting.
        """
        uni = import_uni2ts()
        m = _unwrap(module or self.module)
        loc, scale = m.scaler(
            batch.target,
            batch.observed_mask * ~batch.prediction_mask.unsqueeze(-1),
            batch.sample_id,
            batch.variate_id,
        )
        reprs = m.in_proj((batch.target - loc) / scale, batch.patch_size)
        reprs = uni.mask_fill(reprs, batch.prediction_mask, m.mask_encoding.weight)
        reprs = m.encoder(
            reprs,
            uni.packed_attention_mask(batch.sample_id),
            time_id=batch.time_id,
            var_id=batch.variate_id,
        )
        horizon = slice(self.context_tokens, None)
        params = m.param_proj(reprs[:, horizon], batch.patch_size[:, horizon])
        params = _map_tensors(lambda t: t[:, :, : self.patch_size], params)
        return m.distr_output.distribution(params, loc=loc[:, horizon], scale=scale[:, horizon])

    def _trim(self, horizon_values: Tensor) -> Tensor:
        """[..., Nh, patch_size] -> [..., H]."""
        return horizon_values.flatten(-2)[..., : self.horizon]

    @torch.no_grad()
    def sample_forecast(
        self, context: Tensor, num_samples: int = 100, module: nn.Module | None = None
    ) -> Tensor:
        """Samples of the predictive distribution, ``[num_samples, B, H]`` (torch's RNG)."""
        distr = self.forecast_distribution(self.inputs_from_windows(context), module)
        return self._trim(distr.sample(torch.Size((num_samples,))))

    @torch.no_grad()
    def point_forecast(
        self,
        context: Tensor,
        method: Literal["median", "mean"] = "median",
        num_samples: int = 100,
        module: nn.Module | None = None,
    ) -> Tensor:
        """``[B, H]``: the median of ``num_samples`` samples (how Moirai is evaluated; uses
        torch's RNG, so seed it for reproducibility) or the analytic mixture mean
        (deterministic, but the log-normal component can make it extreme)."""
        if method == "median":
            return self.sample_forecast(context, num_samples, module).median(dim=0).values
        if method == "mean":
            distr = self.forecast_distribution(self.inputs_from_windows(context), module)
            return self._trim(distr.mean)
        raise ValueError(f"method must be 'median' or 'mean', got {method!r}")

    def save_pretrained(self, folder: str | Path, module: nn.Module | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors``, readable by :func:`load_moirai`."""
        folder = Path(folder)
        (module or self.module).save_pretrained(folder)
        logger.info("saved Moirai weights to %s", folder)
        return folder
