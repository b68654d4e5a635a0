"""The matching target of `hdt_gm`: the gradients a frozen foundation model's output head
gets from real windows.

Gradient matching on the part a cheap fine-tune trains: each iteration, the synthetic series
is pushed so that the gradient of the model's forecast loss with respect to its head
(`adapter.head_keywords`, Moirai's distribution head), from `fm.windows` synthetic windows
per channel, points where the gradient from as many fresh real windows points (one minus
cosine similarity per parameter tensor, averaged). The model is the pretrained one and stays
frozen: there are no experts and no inner loop, at the price of a second-order pass.
"""

from __future__ import annotations

import torch

from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.frozen_model import FrozenModelTarget, univariate
from hdt_finetune.distill.settings import DistillSettings


class HeadGradientTarget(FrozenModelTarget):
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
        # The head takes gradients; the model's weights never change (nothing steps them).
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
        """An estimate in the cost meter's units: per iteration, the real windows' forward
        and head gradient (about 2 N per token, the head's share being small), and the
        synthetic windows' forward, gradient with its graph, and the backward through that
        graph to the series (about 8 N per token: a forward and two backward passes through
        the whole model, the second twice the first)."""
        s = self.settings
        per_window = self.n_parameters * self.adapter.tokens_per_window()
        windows = length - s.context_length - s.horizon + 1
        flops = (2.0 * s.fm.windows + 8.0 * min(s.fm.windows, windows)) * per_window \
            * s.iterations * channels
        return flops + (self.value_term_flops(channels, length) if value_term else 0.0)
