"""Channel-independent windows packed into the token layout `MoiraiModule.forward` expects,
with one fixed patch size:

- each window is one sample (``sample_id`` 1; uni2ts reserves 0 for padding tokens) and one
  variate (``variate_id`` 0), so rows never attend to each other;
- the context is left-padded to whole patches with ``observed_mask`` False, the horizon is
  rounded up to whole patches (the extra steps are unobserved, so they carry no loss);
- tokens are padded along the patch axis to the module's largest patch size, as uni2ts does.

Non-finite values in context or target are treated as missing (``observed_mask`` False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F


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
        return {"target": self.target, "observed_mask": self.observed_mask,
                "sample_id": self.sample_id, "time_id": self.time_id,
                "variate_id": self.variate_id, "prediction_mask": self.prediction_mask,
                "patch_size": self.patch_size}


@dataclass(frozen=True)
class WindowLayout:
    """How windows of `context_length` -> `horizon` become tokens of `patch_size`."""

    context_length: int
    horizon: int
    patch_size: int
    max_patch: int

    @property
    def context_tokens(self) -> int:
        return math.ceil(self.context_length / self.patch_size)

    @property
    def horizon_tokens(self) -> int:
        return math.ceil(self.horizon / self.patch_size)

    @property
    def tokens(self) -> int:
        return self.context_tokens + self.horizon_tokens

    def pack(self, context: Tensor, target: Tensor | None, like: Tensor) -> MoiraiBatch:
        """Pack ``context [B, L(, 1)]`` and optional ``target [B, H(, 1)]`` on the device and
        dtype of `like`. Without a target (forecasting) the horizon tokens are zeros; Moirai
        replaces them with its mask embedding and its scaler ignores them."""
        context = _as_univariate(context, "context").to(device=like.device, dtype=like.dtype)
        batch = context.shape[0]
        if context.shape[1] != self.context_length:
            raise ValueError(f"context has {context.shape[1]} steps, the model expects "
                             f"{self.context_length}")
        if target is None:
            target = torch.zeros(batch, self.horizon, device=like.device, dtype=like.dtype)
        target = _as_univariate(target, "target").to(device=like.device, dtype=like.dtype)
        if tuple(target.shape) != (batch, self.horizon):
            raise ValueError(f"target must be [{batch}, {self.horizon}], got {tuple(target.shape)}")
        past, past_obs = _patchify(torch.nan_to_num(context), context.isfinite(),
                                   self.patch_size, pad_front=True)
        future, future_obs = _patchify(torch.nan_to_num(target), target.isfinite(),
                                       self.patch_size, pad_front=False)
        widen = (0, self.max_patch - self.patch_size)  # uni2ts pads tokens to its largest patch
        values = F.pad(torch.cat([past, future], dim=1), widen)
        observed = F.pad(torch.cat([past_obs, future_obs], dim=1), widen, value=False)
        shape = (batch, self.tokens)
        time_id = torch.arange(shape[1], device=like.device).expand(shape).contiguous()
        return MoiraiBatch(
            target=values,
            observed_mask=observed,
            sample_id=torch.ones(shape, dtype=torch.long, device=like.device),
            time_id=time_id,
            variate_id=torch.zeros(shape, dtype=torch.long, device=like.device),
            prediction_mask=time_id >= self.context_tokens,
            patch_size=torch.full(shape, self.patch_size, dtype=torch.long, device=like.device),
        )

    def trim(self, horizon_values: Tensor) -> Tensor:
        """[..., Nh, patch_size] -> [..., H]."""
        return horizon_values.flatten(-2)[..., : self.horizon]


def _as_univariate(x: Tensor, name: str) -> Tensor:
    if x.ndim == 3 and x.shape[-1] == 1:
        return x[..., 0]
    if x.ndim != 2:
        raise ValueError(f"{name} must be [batch, time] or [batch, time, 1], got {tuple(x.shape)}")
    return x


def _patchify(values: Tensor, observed: Tensor, patch: int, *,
              pad_front: bool) -> tuple[Tensor, Tensor]:
    """[B, T] -> [B, ceil(T / patch), patch]; padding is unobserved."""
    pad = -values.shape[-1] % patch
    widths = (pad, 0) if pad_front else (0, pad)
    values = F.pad(values, widths).unflatten(-1, (-1, patch))
    observed = F.pad(observed, widths, value=False).unflatten(-1, (-1, patch))
    return values, observed
