"""The model a distillation matches through: the experts train it on real data and the
student on the synthetic set. DLinear today (the paper's choice).

`MatchingBackbone` is generic: any flat-parameter forward pass, trained by autograd (the
student's steps with `create_graph`, so the matching loss differentiates through them). A
foundation model's trainable subset can take its place. `DLinearMatching` is DLinear's fast
path: DLinear is linear in fixed features of its input (the moving-average trend and the
seasonal rest), so its SGD steps, their gradient and the update are a few matmuls written
out, and the experts train side by side in batched matmuls. It gives the generic path's
result up to float rounding (tests/distill/test_matching_backbone.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from hdt_finetune.backbones import DLinear, DLinearConfig
from hdt_finetune.distill.flat_params import FlatModel


class MatchingBackbone(FlatModel):
    def max_student_lr(self, x: torch.Tensor) -> float:
        """The largest student learning rate that keeps SGD on these windows stable."""
        return math.inf

    def unrolled_sgd(self, start: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     lr: torch.Tensor, steps: int, batch: int,
                     generator: torch.Generator) -> torch.Tensor:
        """The parameters after `steps` SGD steps from `start` on windows ([n, L, C],
        [n, H, C]), each step on `batch` windows drawn without replacement by `generator`.
        Differentiable in x, y and lr: the matching loss' gradient flows through the steps."""
        flat = start.clone().requires_grad_(True)
        for _ in range(steps):
            index = torch.randperm(x.shape[0], generator=generator)[:batch]
            loss = torch.nn.functional.mse_loss(self(flat, x[index]), y[index])
            (grad,) = torch.autograd.grad(loss, flat, create_graph=True)
            flat = flat - lr * grad
        return flat

    def sgd_snapshots(self, starts: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      batches: list[torch.Tensor], learning_rate: float,
                      snapshot_steps: int,
                      on_snapshot: Callable[[], object] | None = None) -> torch.Tensor:
        """Experts: plain SGD from each row of `starts` ([E, P]); step t trains expert e on
        the windows `batches[t][e]`. Returns the parameters at the start and after every
        `snapshot_steps` steps, [E, len(batches) // snapshot_steps + 1, P]; calls
        `on_snapshot` after each snapshot step (of every expert)."""
        flats, snapshots = list(starts), [starts.clone()]
        for t, index in enumerate(batches):
            for e, flat in enumerate(flats):
                flat = flat.detach().requires_grad_(True)
                loss = torch.nn.functional.mse_loss(self(flat, x[index[e]]), y[index[e]])
                (grad,) = torch.autograd.grad(loss, flat)
                flats[e] = flat.detach() - learning_rate * grad
            if (t + 1) % snapshot_steps == 0:
                snapshots.append(torch.stack(flats))
                if on_snapshot is not None:
                    on_snapshot()
        return torch.stack(snapshots, dim=1)


class DLinearMatching(MatchingBackbone):
    """DLinear with shared layers: forecast = W [trend(x); x - trend(x)] + b_trend + b_seasonal
    for each window and channel, where trend(x) = x M (the moving average as an [L, L]
    matrix) and W = [W_trend, W_seasonal]. With features Z (one row per window and channel)
    the MSE gradient is closed-form: dW = c R^T Z, db = c R^T 1 for each bias, with the
    residual R = Z W^T + b - Y and c = 2 / (rows x H)."""

    LAYOUT = ["trend_linear.weight", "trend_linear.bias", "seasonal_linear.weight",
              "seasonal_linear.bias"]
    feature_bytes = 512 * 2**20  # the experts' precomputed features may take this much

    def __init__(self, config: DLinearConfig) -> None:
        super().__init__(DLinear(config))
        self.horizon, self.context = config.horizon, config.context_length
        # Per-channel layers are not a shared linear map: they take the generic path.
        self.fast = not config.individual and self.names == self.LAYOUT
        with torch.no_grad():  # row b of the identity's trend is trend(e_b): the matrix M
            basis = torch.eye(config.context_length).unsqueeze(-1)
            self.trend_matrix = self.module.decomposition(basis)[1][..., 0]

    def max_student_lr(self, x: torch.Tensor) -> float:
        return stable_student_lr(x, self.horizon)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[..., L, C] -> [..., C, 2L]: each window and channel's (trend, seasonal) row."""
        rows = x.transpose(-1, -2)
        trend = rows @ self.trend_matrix.to(rows)
        return torch.cat([trend, rows - trend], dim=-1)

    def split(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat parameters [..., P] -> (W [..., H, 2L], b_trend [..., H], b_seasonal)."""
        h, width = self.horizon, self.horizon * self.context
        w_trend, b_trend, w_seasonal, b_seasonal = torch.split(flat, [width, h, width, h], -1)
        shape = (*flat.shape[:-1], h, self.context)
        weight = torch.cat([w_trend.reshape(shape), w_seasonal.reshape(shape)], dim=-1)
        return weight, b_trend, b_seasonal

    def join(self, weight: torch.Tensor, b_trend: torch.Tensor,
             b_seasonal: torch.Tensor) -> torch.Tensor:
        w_trend, w_seasonal = weight.split(self.context, dim=-1)
        return torch.cat([w_trend.flatten(-2), b_trend, w_seasonal.flatten(-2), b_seasonal],
                         dim=-1)

    def unrolled_sgd(self, start, x, y, lr, steps, batch, generator):
        if not self.fast:
            return super().unrolled_sgd(start, x, y, lr, steps, batch, generator)
        z, target = self.features(x), y.transpose(1, 2)  # [n, C, 2L], [n, C, H]
        n = x.shape[0]
        weight, b_trend, b_seasonal = self.split(start)
        if batch < n:
            for _ in range(steps):
                index = torch.randperm(n, generator=generator)[:batch]
                rows, goal = z[index].flatten(0, 1), target[index].flatten(0, 1)
                residual = torch.addmm(b_trend + b_seasonal, rows, weight.T) - goal
                scale = lr * (2 / goal.numel())
                weight = weight - scale * (residual.T @ rows)
                step = scale * residual.sum(0)
                b_trend, b_seasonal = b_trend - step, b_seasonal - step
            return self.join(weight, b_trend, b_seasonal)
        # Every step sees all windows (only their order differs): the gradient needs only
        # the sufficient statistics of [Z, 1], and a step is one [H, 2L+1] x [2L+1, 2L+1]
        # matmul. The bias column counts twice: both biases take the same step.
        rows = torch.cat([z.flatten(0, 1), z.new_ones(z.shape[0] * z.shape[1], 1)], dim=1)
        goal = target.flatten(0, 1)
        column = z.new_ones(rows.shape[1])
        column[-1] = 2.0
        scale = (2 / goal.numel()) * column
        gram, cross = (rows.T @ rows) * scale, (goal.T @ rows) * scale
        augmented = torch.cat([weight, (b_trend + b_seasonal).unsqueeze(1)], dim=1)
        for _ in range(steps):
            torch.randperm(n, generator=generator)  # the draw of the other paths: same stream
            augmented = augmented - lr * (augmented @ gram - cross)
        half_shift = (augmented[:, -1] - (b_trend + b_seasonal)) / 2
        return self.join(augmented[:, :-1], b_trend + half_shift, b_seasonal + half_shift)

    def sgd_snapshots(self, starts, x, y, batches, learning_rate, snapshot_steps,
                      on_snapshot=None):
        if not self.fast:
            return super().sgd_snapshots(starts, x, y, batches, learning_rate, snapshot_steps,
                                         on_snapshot)
        with torch.no_grad():
            return self._batched_sgd(starts, x, y, batches, learning_rate, snapshot_steps,
                                     on_snapshot)

    def _batched_sgd(self, starts, x, y, batches, learning_rate, snapshot_steps, on_snapshot):
        weight, b_trend, b_seasonal = self.split(starts)  # [E, H, 2L], [E, H], [E, H]
        snapshots = [starts.clone()]
        # The whole split's features once when they fit the budget (ETT: under 200 MB), else
        # per batch: for many channels (electricity, traffic) they would take gigabytes.
        fits = x.shape[0] * x.shape[2] * 2 * self.context * x.element_size()
        z = self.features(x) if fits <= self.feature_bytes else None
        target = y.transpose(1, 2)
        for t, index in enumerate(batches):  # index [E, b]: every expert's batch of step t
            rows = (self.features(x[index]) if z is None else z[index]).flatten(1, 2)
            goal = target[index].flatten(1, 2)
            residual = torch.baddbmm((b_trend + b_seasonal).unsqueeze(1), rows,
                                     weight.transpose(1, 2)).sub_(goal)
            scale = learning_rate * 2 / goal[0].numel()
            weight = torch.baddbmm(weight, residual.transpose(1, 2), rows, alpha=-scale)
            step = residual.sum(1).mul_(scale)
            b_trend, b_seasonal = b_trend - step, b_seasonal - step
            if (t + 1) % snapshot_steps == 0:
                snapshots.append(self.join(weight, b_trend, b_seasonal))
                if on_snapshot is not None:
                    on_snapshot()
        return torch.stack(snapshots, dim=1)


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
