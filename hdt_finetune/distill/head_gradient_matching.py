"""The matching target of `hdt_gm`: the gradients a frozen foundation model's output head
gets from real windows.

Gradient matching at the pretrained weights, on the layer that turns the model's
representations into forecasts: each iteration, the synthetic series is pushed so that the
gradient of the model's forecast loss with respect to its head (`adapter.head_keywords`,
Moirai's distribution head), from `fm.windows` synthetic windows per channel, points where
the real train split's gradient points (one minus cosine similarity per parameter tensor,
averaged). The model stays frozen, so the real gradient is a fixed target, computed once
from `fm.real_windows` windows per channel (drawn afresh from as few windows as the synthetic
side each iteration, it was noisier and cost a third of each iteration). There are no
experts and no inner loop, at the price of a second-order pass.
"""

from __future__ import annotations

import torch

from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.frozen_model import FrozenModel, univariate
from hdt_finetune.distill.settings import DistillSettings


class HeadGradientTarget(FrozenModel):
    def __init__(self, settings: DistillSettings, real: torch.Tensor, seed: int) -> None:
        super().__init__(settings, seed)
        self.head = [p for name, p in self.model.named_parameters()
                     if any(k in name for k in self.adapter.head_keywords)]
        if not self.head:
            raise ValueError(f"{self.adapter.name} has no head parameters "
                             f"({self.adapter.head_keywords}) to match gradients on")
        # The head takes gradients; the model's weights never change (nothing steps them,
        # and the distillation's backward reaches the set's parameters only).
        for parameter in self.head:
            parameter.requires_grad_(True)
        self.n_head = sum(p.numel() for p in self.head)
        self.real_gradient = self._real_gradient(real, seed)

    def _real_gradient(self, real: torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
        """The head gradient of the mean loss over the real windows, chunk by chunk (each
        chunk's mean weighted by its windows: every window is fully observed)."""
        total = [torch.zeros_like(p) for p in self.head]
        count = 0
        for x, y in self.real_windows(real, seed):
            for sum_, gradient in zip(total, self._head_gradients(x, y, create_graph=False),
                                      strict=True):
                sum_.add_(gradient, alpha=x.shape[0])
            count += x.shape[0]
        return tuple(t / count for t in total)

    def _head_gradients(self, x: torch.Tensor, y: torch.Tensor,
                        create_graph: bool) -> tuple[torch.Tensor, ...]:
        loss = self.adapter.horizon_nll(self.model, univariate(x), univariate(y))
        return torch.autograd.grad(loss, self.head, create_graph=create_graph)

    def loss(self, signal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        x, y = windows_of(signal, s.context_length, s.horizon)
        pick = torch.randperm(x.shape[0], generator=generator)[: s.fm.windows]
        synthetic = self._head_gradients(x[pick], y[pick], create_graph=True)
        distance = sum(1 - torch.nn.functional.cosine_similarity(a.reshape(-1), b.reshape(-1),
                                                                 dim=0)
                       for a, b in zip(synthetic, self.real_gradient, strict=True))
        return distance / len(self.head)

    def real_flops(self, channels: int) -> float:
        """The real windows' forward (2 N per token) and head gradient (2 N_head), once."""
        return ((2.0 * self.n_parameters + 2.0 * self.n_head) * self.adapter.tokens_per_window()
                * self.settings.fm.real_windows * channels)

    def iteration_flops(self, channels: int, length: int) -> float:
        """Per token of the synthetic windows: the forward (2 N), the head gradient with its
        graph (2 N_head), and the backward of that graph to the series (about 2 N through the
        whole model for the input gradients, 2 N_head more through the head's)."""
        s = self.settings
        windows = min(s.fm.windows, length - s.context_length - s.horizon + 1)
        return ((4.0 * self.n_parameters + 4.0 * self.n_head) * self.adapter.tokens_per_window()
                * windows * channels)
