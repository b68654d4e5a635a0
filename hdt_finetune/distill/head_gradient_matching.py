"""The matching target of `hdt_gm`: the gradients a frozen foundation model's output head
gets from real windows.

Gradient matching at the pretrained weights, on the layer that turns the model's
representations into forecasts: each iteration, the synthetic series is pushed so that the
gradient of the model's forecast loss with respect to its head (`adapter.head_keywords`,
Moirai's distribution head), from `fm.windows` synthetic windows per channel, points where
the gradient from as many fresh real windows points (one minus cosine similarity per
parameter tensor, averaged). The model stays frozen: there are no experts and no inner loop,
at the price of a second-order pass.
"""

from __future__ import annotations

import torch

from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.frozen_model import FrozenModel, univariate
from hdt_finetune.distill.settings import DistillSettings


class HeadGradientTarget(FrozenModel):
    def __init__(self, settings: DistillSettings, real: torch.Tensor, seed: int) -> None:
        super().__init__(settings, seed)
        s = settings
        if real.shape[0] < s.context_length + s.horizon:
            raise ValueError(f"the train split has {real.shape[0]} rows, fewer than one "
                             f"window ({s.context_length} + {s.horizon})")
        self.real_x, self.real_y = windows_of(real, s.context_length, s.horizon)
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

    def _head_gradients(self, x: torch.Tensor, y: torch.Tensor,
                        create_graph: bool) -> tuple[torch.Tensor, ...]:
        loss = self.adapter.horizon_nll(self.model, univariate(x), univariate(y))
        return torch.autograd.grad(loss, self.head, create_graph=create_graph)

    def loss(self, signal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        pick = torch.randint(0, self.real_x.shape[0], (s.fm.windows,), generator=generator)
        real = [g.detach() for g in self._head_gradients(self.real_x[pick], self.real_y[pick],
                                                        create_graph=False)]
        x, y = windows_of(signal, s.context_length, s.horizon)
        pick = torch.randperm(x.shape[0], generator=generator)[: s.fm.windows]
        synthetic = self._head_gradients(x[pick], y[pick], create_graph=True)
        distance = sum(1 - torch.nn.functional.cosine_similarity(a.reshape(-1), b.reshape(-1),
                                                                 dim=0)
                       for a, b in zip(synthetic, real, strict=True))
        return distance / len(self.head)

    def flops(self, channels: int, length: int, value_term: bool) -> float:
        """An estimate in the cost meter's units, per token: the real windows' forward (2 N)
        and head gradient (2 N_head); the synthetic windows' forward (2 N), head gradient
        with its graph (2 N_head), and the backward of that graph to the series (about 2 N
        through the whole model for the input gradients, 2 N_head more through the head's).
        The head's gradient alone stops at the head, the last layer."""
        s = self.settings
        tokens = self.adapter.tokens_per_window()
        n, head = self.n_parameters, self.n_head
        windows = min(s.fm.windows, length - s.context_length - s.horizon + 1)
        per_iteration = (s.fm.windows * (2.0 * n + 2.0 * head)
                         + windows * (4.0 * n + 4.0 * head)) * tokens * channels
        return s.iterations * per_iteration + super().flops(channels, length, value_term)
