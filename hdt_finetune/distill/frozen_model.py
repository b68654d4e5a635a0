"""The frozen foundation model a set is made for (`fm.*` settings): the value term's expert
of `hdt_fm_soft` and `condtsf_fm`, and the base of what `hdt_fm` and `hdt_gm` match against
(embedding_matching.py, head_gradient_matching.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from hdt_finetune.checksums import sha256_of_tree
from hdt_finetune.distill.settings import DistillSettings

REAL_CHUNK = 256  # real windows through the model at a time


class FrozenModel:
    def __init__(self, settings: DistillSettings, seed: int) -> None:
        from hdt_finetune.finetune.forecast_adapter import ModelChoice, build_adapter

        fm = settings.fm
        if not fm.source:
            raise ValueError("a set made for a foundation model needs it: set fm.source=FOLDER "
                             "(or a hub id, or random for a random init)")
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

    @property
    def weights(self) -> str:
        return self.adapter.weights

    def real_windows(self, real: torch.Tensor, seed: int
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`fm.real_windows` windows of the train split `real` [T, C], drawn once with
        `seed`, as (context [n, L, C], horizon [n, H, C]) chunks of at most REAL_CHUNK: the
        model is frozen, so what it makes of real data is computed once, before the
        iterations, from more windows than an iteration could afford."""
        s = self.settings
        n_windows = real.shape[0] - s.context_length - s.horizon + 1
        if n_windows < 1:
            raise ValueError(f"the train split has {real.shape[0]} rows, fewer than one "
                             f"window ({s.context_length} + {s.horizon})")
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, n_windows, (s.fm.real_windows,), generator=generator)
        for chunk in starts.split(REAL_CHUNK):
            windows = torch.stack([real[int(t) : int(t) + s.context_length + s.horizon]
                                   for t in chunk])
            yield windows[:, : s.context_length], windows[:, s.context_length :]

    def flops(self, channels: int, length: int, value_term: bool) -> float:
        """The distillation's FLOPs through the model, as the fine-tune's cost meter counts:
        a matching target's pass over real windows and its iterations, and the value term's
        forecasts of every window (2 N per token)."""
        s = self.settings
        flops = self.real_flops(channels) + s.iterations * self.iteration_flops(channels,
                                                                                 length)
        if value_term:
            windows = length - s.context_length - s.horizon + 1
            flops += (2.0 * self.n_parameters * self.adapter.tokens_per_window()
                      * (s.iterations // s.value_every) * windows * channels)
        return flops

    def real_flops(self, channels: int) -> float:
        """A matching target's one pass over `real_windows` (none as a value expert only)."""
        return 0.0

    def iteration_flops(self, channels: int, length: int) -> float:
        """A matching target's cost per iteration (none as a value expert only)."""
        return 0.0

    @torch.no_grad()
    def forecast(self, x: torch.Tensor) -> torch.Tensor:
        """[n, L, C] -> [n, H, C]: the frozen model's forecast (its predictive mean) of every
        channel's window, the value term's expert when the set is made for this model."""
        n, _, channels = x.shape
        batch = self.adapter.pack(univariate(x))
        mean = self.adapter.forecast_distribution(self.model, batch).mean
        return self.adapter.layout.trim(mean).reshape(n, channels, -1).permute(0, 2, 1)


def univariate(x: torch.Tensor) -> torch.Tensor:
    """[n, T, C] -> [n C, T]: every channel a univariate window, as Moirai reads them here."""
    return x.permute(0, 2, 1).reshape(x.shape[0] * x.shape[2], -1)
