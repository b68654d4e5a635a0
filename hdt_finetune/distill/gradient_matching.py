"""Window-wise gradient matching ("Base" in the HDT paper's ablation).

A time-domain synthetic series is updated so that the gradient a freshly initialised DLinear
gets from its windows points where the gradient from a batch of real windows points
(one minus cosine similarity per parameter tensor). Each outer iteration draws a new network
and trains it a few steps on the synthetic windows between matches, as dataset condensation
by gradient matching does.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from hdt_finetune.backbones import DLinear, DLinearConfig
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.outcome import DistillOutcome, MethodInputs
from hdt_finetune.distill.real_sampler import SeriesSampler, initial_series


def run_gradient_matching(inputs: MethodInputs) -> DistillOutcome:
    s, train, length = inputs.settings, inputs.train, inputs.length
    seed, show_progress = inputs.seed, inputs.show_progress
    generator = torch.Generator().manual_seed(seed)
    real = torch.as_tensor(np.asarray(train, dtype=np.float32))
    real_x, real_y = windows_of(real, s.context_length, s.horizon)
    init = initial_series(SeriesSampler(real), length, s.init, generator, s.top_k)
    series = torch.nn.Parameter(init.clone())
    optimizer = torch.optim.Adam([series], lr=s.data_lr)
    config = DLinearConfig(s.context_length, s.horizon, real.shape[1])
    curve: list[dict[str, float]] = []
    for _ in tqdm(range(s.iterations), desc="distill base", disable=not show_progress):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        net = DLinear(config)
        params = list(net.parameters())
        for _inner in range(s.gm_inner_steps):
            index = torch.randint(0, real_x.shape[0], (s.student_batch,), generator=generator)
            real_loss = torch.nn.functional.mse_loss(net(real_x[index]), real_y[index])
            real_grads = [g.detach() for g in torch.autograd.grad(real_loss, params)]
            syn_x, syn_y = windows_of(series, s.context_length, s.horizon)
            syn_loss = torch.nn.functional.mse_loss(net(syn_x), syn_y)
            syn_grads = torch.autograd.grad(syn_loss, params, create_graph=True)
            distance = sum(
                1 - torch.nn.functional.cosine_similarity(g_s.reshape(1, -1), g_r.reshape(1, -1))
                for g_s, g_r in zip(syn_grads, real_grads, strict=True)
            ).sum()
            optimizer.zero_grad(set_to_none=True)
            distance.backward()
            optimizer.step()
            # Move the network along the synthetic data, so later matches see trained weights.
            with torch.no_grad():
                syn_x, syn_y = windows_of(series, s.context_length, s.horizon)
            net_loss = torch.nn.functional.mse_loss(net(syn_x), syn_y)
            for p, g in zip(params, torch.autograd.grad(net_loss, params), strict=True):
                p.data.sub_(s.experts.learning_rate * g)
        curve.append({"match": float(distance.detach())})
    info = {"loss_curve": curve}
    return DistillOutcome(values=series.detach().numpy().astype(np.float32), info=info)
