"""Moirai 1.x (Salesforce uni2ts) behind the trainer's `ForecastAdapter` interface: loading,
packing, the training loss and forecasts, for channel-independent ``[B, L] -> [B, H]``
windows.

Scaling: nothing is done here. Moirai's ``PackedStdScaler`` standardises every window with
the mean/std of its observed context points, and the predictive distribution is mapped back
through the same affine transform, so inputs, targets, losses and forecasts are all in the
caller's units; the NLL includes the ``log(scale)`` term of that transform, which does not
depend on the model's parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hdt_finetune.finetune.forecast_adapter import ForecastAdapter, ModelChoice
from hdt_finetune.finetune.moirai.moirai_packing import MoiraiBatch, WindowLayout
from hdt_finetune.finetune.moirai.moirai_weights import (
    LoadedMoirai,
    MoiraiSpec,
    load_moirai,
    random_moirai,
)
from hdt_finetune.finetune.uni2ts_compat import import_uni2ts, window_loc_scale

log = logging.getLogger(__name__)

# Samples behind the median point forecast used for validation and test MSE/MAE.
POINT_SAMPLES = 50


class MoiraiAdapter(ForecastAdapter):
    probabilistic = True
    head_keywords = ("param_proj",)
    ffn_keywords = ("ffn.",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")

    def __init__(self, model: LoadedMoirai, *, context_length: int, horizon: int,
                 patch_size: int) -> None:
        module_patch_sizes = tuple(int(p) for p in model.module.patch_sizes)
        if patch_size not in module_patch_sizes:
            raise ValueError(f"patch_size {patch_size} is not one of the module's "
                             f"{module_patch_sizes}")
        self.module = model.module
        self.weights = model.weights
        self.name = f"moirai-{model.size or 'custom'}"
        self.context_length, self.horizon = context_length, horizon
        self.layout = WindowLayout(context_length, horizon, patch_size, max(module_patch_sizes))
        self._nll = import_uni2ts().PackedNLLLoss()

    @classmethod
    def from_choice(cls, choice: ModelChoice, context_length: int, horizon: int,
                    seed: int) -> MoiraiAdapter:
        """A random init of the chosen size, or weights from `choice.source` (a folder or
        hub id; None: the published weights of that size and version)."""
        spec = MoiraiSpec(size=choice.size, version=choice.version,
                          patch_size=choice.patch_size, context_length=context_length,
                          horizon=horizon)
        loaded = (random_moirai(spec.size, seed=seed) if choice.init == "random"
                  else load_moirai(choice.source or spec.hub_id))
        return cls(loaded, context_length=context_length, horizon=horizon,
                   patch_size=spec.patch_size)

    def tokens_per_window(self) -> int:
        return self.layout.tokens

    def pack(self, context: Tensor, target: Tensor | None = None) -> MoiraiBatch:
        return self.layout.pack(context, target, like=self.module.mask_encoding.weight)

    def loss(self, model: nn.Module, context: Tensor, target: Tensor) -> Tensor:
        """uni2ts's packed NLL on the observed horizon points (mean per window, then batch)."""
        batch = self.pack(context, target)
        return self._nll(pred=model(**batch.module_inputs()), target=batch.target,
                         prediction_mask=batch.prediction_mask,
                         observed_mask=batch.observed_mask, sample_id=batch.sample_id,
                         variate_id=batch.variate_id)

    def forecast_distribution(self, model: nn.Module,
                              batch: MoiraiBatch) -> torch.distributions.Distribution:
        """The predictive distribution of the horizon only, batch shape ``[B, Nh, patch]``.

        Same computation as ``MoiraiModule.forward`` (uni2ts 2.0.0), but the distribution head
        runs on the horizon tokens and their first ``patch_size`` columns alone: sampling the
        full ``[B, S, max_patch]`` distribution costs ~20x more and dominates forecasting.
        """
        m = _unwrap(model)
        loc, scale = m.scaler(batch.target,
                              batch.observed_mask * ~batch.prediction_mask.unsqueeze(-1),
                              batch.sample_id, batch.variate_id)
        return self._horizon_distribution(m, batch, loc, scale)

    def horizon_nll(self, model: nn.Module, context: Tensor, target: Tensor) -> Tensor:
        """The mean negative log-likelihood of the observed horizon points, differentiable
        in the windows as well as in the weights (`hdt_gm` matches its gradients): the
        scaler is `window_loc_scale`, uni2ts's without its in-place edits."""
        m = _unwrap(model)
        batch = self.pack(context, target)
        loc, scale = window_loc_scale(m.scaler, batch.target,
                                      batch.observed_mask * ~batch.prediction_mask.unsqueeze(-1))
        # One loc and scale a window, shaped as uni2ts's scaler returns them: [B, S, 1].
        tokens = batch.target.shape[1]
        distr = self._horizon_distribution(m, batch, loc[..., :1].expand(-1, tokens, 1),
                                           scale[..., :1].expand(-1, tokens, 1))
        horizon, patch = slice(self.layout.context_tokens, None), self.layout.patch_size
        values = batch.target[:, horizon, :patch]
        observed = batch.observed_mask[:, horizon, :patch].to(values.dtype)
        return -(distr.log_prob(values) * observed).sum() / observed.sum().clamp_min(1.0)

    def _horizon_distribution(self, m: nn.Module, batch: MoiraiBatch, loc: Tensor,
                              scale: Tensor) -> torch.distributions.Distribution:
        uni = import_uni2ts()
        reprs = m.in_proj((batch.target - loc) / scale, batch.patch_size)
        reprs = uni.mask_fill(reprs, batch.prediction_mask, m.mask_encoding.weight)
        reprs = m.encoder(reprs, uni.packed_attention_mask(batch.sample_id),
                          time_id=batch.time_id, var_id=batch.variate_id)
        horizon = slice(self.layout.context_tokens, None)
        params = m.param_proj(reprs[:, horizon], batch.patch_size[:, horizon])
        params = _map_tensors(lambda t: t[:, :, : self.layout.patch_size], params)
        return m.distr_output.distribution(params, loc=loc[:, horizon], scale=scale[:, horizon])

    def embed(self, model: nn.Module, context: Tensor, target: Tensor) -> Tensor:
        """``[B, 3 d_model]``, differentiable in the windows: the encoder's mean
        representation of the context tokens and of the (masked) horizon tokens, what the
        model makes of the window and expects next, and the input embedding of the actual
        target. All in the model's scaled units (its scaler standardises each window)."""
        uni = import_uni2ts()
        m = _unwrap(model)
        batch = self.pack(context, target)
        loc, scale = window_loc_scale(m.scaler, batch.target,
                                      batch.observed_mask * ~batch.prediction_mask.unsqueeze(-1))
        reprs = m.in_proj((batch.target - loc) / scale, batch.patch_size)
        past, future = slice(None, self.layout.context_tokens), slice(self.layout.context_tokens,
                                                                      None)
        target_tokens = reprs[:, future].mean(dim=1)
        reprs = uni.mask_fill(reprs, batch.prediction_mask, m.mask_encoding.weight)
        reprs = m.encoder(reprs, uni.packed_attention_mask(batch.sample_id),
                          time_id=batch.time_id, var_id=batch.variate_id)
        return torch.cat([reprs[:, past].mean(dim=1), reprs[:, future].mean(dim=1),
                          target_tokens], dim=-1)

    @torch.no_grad()
    def sample_forecast(self, model: nn.Module, context: Tensor, num_samples: int) -> Tensor:
        """Samples of the predictive distribution, ``[num_samples, B, H]`` (torch's RNG)."""
        distr = self.forecast_distribution(model, self.pack(context))
        return self.layout.trim(distr.sample(torch.Size((num_samples,))))

    @torch.no_grad()
    def point_forecast(self, model: nn.Module, context: Tensor) -> Tensor:
        """``[B, H]``: the median of POINT_SAMPLES samples, how Moirai is evaluated (torch's
        RNG: seed it for reproducibility)."""
        return self.sample_forecast(model, context, POINT_SAMPLES).median(dim=0).values

    def save_pretrained(self, model: nn.Module, folder: Path) -> None:
        """``config.json`` + ``model.safetensors``, readable by `load_moirai`."""
        model.save_pretrained(Path(folder))


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
