"""The matching target of `hdt_fm`: a frozen foundation model's embeddings of real windows.

Distribution matching: the synthetic series is pushed so that, channel by channel, the mean
and per-dimension std of its windows' embeddings equal those of the real train split's. The
real statistics are computed once (the model is frozen), so an iteration costs one forward
and one input-gradient pass over `fm.windows` windows per channel, and no inner loop runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hdt_finetune.checksums import sha256_of_tree
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.settings import DistillSettings

REAL_CHUNK = 256  # real windows embedded at a time


class EmbeddingTarget:
    def __init__(self, settings: DistillSettings, real: torch.Tensor, seed: int) -> None:
        from hdt_finetune.finetune.forecast_adapter import ModelChoice, build_adapter

        fm = settings.fm
        if not fm.source:
            raise ValueError("hdt_fm needs the frozen model: set fm.source=FOLDER (or a hub "
                             "id, or random for a random init)")
        random_init = fm.source == "random"
        choice = ModelChoice(family=fm.family, size=fm.size, patch_size=fm.patch_size,
                             init="random" if random_init else "pretrained",
                             source=None if random_init else fm.source)
        self.adapter = build_adapter(choice, settings.context_length, settings.horizon, seed)
        self.model = self.adapter.module.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.settings = settings
        # The weights' contents: a set is made for these bits, not for a path.
        self.weights_sha256 = (sha256_of_tree(Path(fm.source)) if Path(fm.source).is_dir()
                               else "")
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.real_mean, self.real_std = self._real_statistics(real, seed)
        scale = self.real_mean.pow(2).sum() + fm.std_weight * self.real_std.pow(2).sum()
        self.scale = float(scale.clamp_min(1e-12))

    @property
    def weights(self) -> str:
        return self.adapter.weights

    def _embed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[n, L, C], [n, H, C] -> [n, C, D], every channel a univariate window."""
        n, _, channels = x.shape
        flat = self.adapter.embed(self.model, x.permute(0, 2, 1).reshape(n * channels, -1),
                                  y.permute(0, 2, 1).reshape(n * channels, -1))
        return flat.reshape(n, channels, -1)

    @torch.no_grad()
    def _real_statistics(self, real: torch.Tensor, seed: int) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
        s = self.settings
        generator = torch.Generator().manual_seed(seed)
        n_windows = real.shape[0] - s.context_length - s.horizon + 1
        if n_windows < 1:
            raise ValueError(f"the train split has {real.shape[0]} rows, fewer than one "
                             f"window ({s.context_length} + {s.horizon})")
        starts = torch.randint(0, n_windows, (s.fm.real_windows,), generator=generator)
        parts = []
        for chunk in starts.split(REAL_CHUNK):
            windows = torch.stack([real[int(t) : int(t) + s.context_length + s.horizon]
                                   for t in chunk])
            parts.append(self._embed(windows[:, : s.context_length],
                                     windows[:, s.context_length :]))
        embedded = torch.cat(parts)  # [n, C, D]
        return embedded.mean(dim=0), embedded.std(dim=0, unbiased=False)

    def loss(self, signal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The distance of `signal`'s window statistics from the real ones, relative to the
        real statistics' size (1 means as far as zero embeddings)."""
        s = self.settings
        x, y = windows_of(signal, s.context_length, s.horizon)
        pick = torch.randperm(x.shape[0], generator=generator)[: s.fm.windows]
        embedded = self._embed(x[pick], y[pick])
        mean_gap = (embedded.mean(dim=0) - self.real_mean).pow(2).sum()
        std = (embedded.var(dim=0, unbiased=False) + 1e-8).sqrt()
        std_gap = (std - self.real_std).pow(2).sum()
        return (mean_gap + s.fm.std_weight * std_gap) / self.scale

    @torch.no_grad()
    def forecast(self, x: torch.Tensor) -> torch.Tensor:
        """[n, L, C] -> [n, H, C]: the frozen model's forecast (its predictive mean) of every
        channel's window, the value term's expert when the set is made for this model."""
        n, _, channels = x.shape
        batch = self.adapter.pack(x.permute(0, 2, 1).reshape(n * channels, -1))
        mean = self.adapter.forecast_distribution(self.model, batch).mean
        return self.adapter.layout.trim(mean).reshape(n, channels, -1).permute(0, 2, 1)

    def flops(self, channels: int, length: int, value_term: bool) -> float:
        """Forward passes (2 N per token) over the real windows once, forward and
        input-gradient passes (4 N per token) over every iteration's synthetic windows, as
        the fine-tune's cost meter counts, and the value term's forecasts of every window."""
        s = self.settings
        per_window = self.n_parameters * self.adapter.tokens_per_window()
        windows = length - s.context_length - s.horizon + 1
        flops = 2.0 * per_window * s.fm.real_windows * channels + \
            4.0 * per_window * s.iterations * min(s.fm.windows, windows) * channels
        if value_term:
            flops += 2.0 * per_window * (s.iterations // s.value_every) * windows * channels
        return flops
