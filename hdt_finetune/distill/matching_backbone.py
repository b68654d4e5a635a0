"""The model a distillation matches through: the experts train it on real data and the
student on the synthetic set. DLinear today (the paper's choice); the engine only needs a
flat-parameter forward pass and, optionally, a bound on a stable student step, so a
foundation model's trainable subset can take its place."""

from __future__ import annotations

import math

import torch

from hdt_finetune.backbones import DLinear, DLinearConfig
from hdt_finetune.distill.flat_params import FlatModel


class MatchingBackbone(FlatModel):
    def max_student_lr(self, x: torch.Tensor) -> float:
        """The largest student learning rate that keeps SGD on these windows stable."""
        return math.inf


class DLinearMatching(MatchingBackbone):
    def __init__(self, config: DLinearConfig) -> None:
        super().__init__(DLinear(config))
        self.horizon = config.horizon

    def max_student_lr(self, x: torch.Tensor) -> float:
        return stable_student_lr(x, self.horizon)


def stable_student_lr(x: torch.Tensor, horizon: int) -> float:
    """Half the largest stable SGD step of a linear map from these contexts ([n, L, C]) to
    `horizon` outputs under the mean squared error: the loss' Hessian for each output row is
    (2 / horizon) E[x x^T], and gradient descent is stable below 2 / its largest eigenvalue.
    DLinear is two such maps (seasonal and trend parts), hence the margin of a half."""
    contexts = x.permute(0, 2, 1).reshape(-1, x.shape[1])
    second_moment = contexts.T @ contexts / contexts.shape[0]
    if not torch.isfinite(second_moment).all():
        return math.inf  # the data itself diverged; the loss check reports it
    largest = float(torch.linalg.eigvalsh(second_moment.double())[-1])
    return horizon / (2 * max(largest, 1e-12))
