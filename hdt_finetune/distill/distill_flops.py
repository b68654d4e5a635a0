"""Analytic FLOPs of a trajectory-matching distillation with DLinear, as the reference
algorithm does them: the experts' SGD and the student's steps through autograd (the generic
path of `matching_backbone.py`), counted the way torch's FlopCounterMode counts (matmuls,
2 FLOPs per multiply-add). The moving average (about 3% of the matmuls' FLOPs), FFTs and
elementwise work are left out. This count is the yardstick (a floor for the reference
algorithm on a given machine); `fast_path_flops` counts what DLinear's closed form does.

One "map" is a linear layer over r rows (window x channel): 2 r L H FLOPs. A DLinear forward
is two maps. An expert step is the forward and the weight gradient: 4 maps. A student step
is the forward, the weight gradient (create_graph) and, in the matching loss' backward, the
gradients of both of those in their two inputs each: 12 maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdt_finetune.distill.settings import SWITCHES, DistillSettings

EXPERT_MAPS_PER_STEP = 4
STUDENT_MAPS_PER_STEP = 12


@dataclass(frozen=True)
class DistillFlops:
    experts: float
    matching: float

    @property
    def total(self) -> float:
        return self.experts + self.matching


def expert_rows(n_windows: int, batch_size: int, steps: int) -> int:
    """Windows seen by `steps` SGD steps over epochs of `n_windows` (each epoch's last batch
    holds the rest), as `expert_buffer._epoch_batches` draws them."""
    per_epoch = math.ceil(n_windows / batch_size)
    epochs, rest = divmod(steps, per_epoch)
    return epochs * n_windows + rest * batch_size  # rest < per_epoch: all full batches


def reference_flops(method: str, settings: DistillSettings, length: int, n_channels: int,
                    train_rows: int) -> DistillFlops:
    """FLOPs of distilling `length` rows of `n_channels` from a train split of `train_rows`."""
    switches = SWITCHES[method]
    L, H, C = settings.context_length, settings.horizon, n_channels
    experts = 0.0
    if switches.trajectory_matching or (switches.value_term and not switches.model_expert):
        e = settings.experts
        rows = expert_rows(train_rows - L - H + 1, e.batch_size,
                           e.snapshots * e.snapshot_steps) * C
        experts = e.n_experts * EXPERT_MAPS_PER_STEP * 2.0 * rows * L * H
    windows = length - L - H + 1
    matching = 0.0
    if switches.trajectory_matching:
        rows = min(settings.student_batch, windows) * C
        per_iteration = settings.student_steps * STUDENT_MAPS_PER_STEP * 2.0 * rows * L * H
        per_iteration += 2.0 * windows * C * L * L  # the stable-step bound's second moment
        matching += settings.iterations * per_iteration
    if switches.value_term and not switches.model_expert:  # a forecast of every window
        matching += settings.iterations // settings.value_every * 2 * 2.0 * windows * C * L * H
    return DistillFlops(experts=experts, matching=matching)


def fast_path_flops(method: str, settings: DistillSettings, length: int, n_channels: int,
                    train_rows: int) -> DistillFlops:
    """FLOPs of the same distillation through `DLinearMatching`'s closed form, counted the
    same way. Features are rows of F = 2L (+1 for the bias column of the sufficient
    statistics); the trend is one [L, L] matmul per row."""
    switches = SWITCHES[method]
    L, H, C = settings.context_length, settings.horizon, n_channels
    F, K = 2 * L, settings.student_steps
    experts = 0.0
    if switches.trajectory_matching or (switches.value_term and not switches.model_expert):
        e = settings.experts
        windows = train_rows - L - H + 1
        rows = expert_rows(windows, e.batch_size, e.snapshots * e.snapshot_steps) * C
        # Forward and weight gradient, all experts batched; the split's trend features once.
        experts = e.n_experts * 2 * 2.0 * rows * F * H + 2.0 * windows * C * L * L
    windows = length - L - H + 1
    r = windows * C
    matching = 0.0
    if switches.trajectory_matching:
        batch = min(settings.student_batch, windows)
        # Trend features and their backward, and the stable-step bound.
        per_iteration = 3 * 2.0 * r * L * L
        if batch >= windows:  # sufficient statistics: Gram and cross products, then the steps
            per_iteration += 3 * 2.0 * r * (F + 1) ** 2 + 3 * 2.0 * r * H * (F + 1)
            # The first step's weights need no gradient; later ones do, as does the Gram.
            per_iteration += (3 * K - 1) * 2.0 * H * (F + 1) ** 2
        else:  # per step: forward and gradient, each backward in both operands but the first
            rb = batch * C
            per_iteration += (6 * K - 1) * 2.0 * rb * F * H
        matching = settings.iterations * per_iteration
    if switches.value_term and not switches.model_expert:
        matching += settings.iterations // settings.value_every * 2 * 2.0 * windows * C * L * H
    return DistillFlops(experts=experts, matching=matching)


def set_flops(manifest: dict) -> DistillFlops:
    """The FLOPs that made a set, from its manifest: the closed form's count for a
    trajectory method on a dataset's train split (its expert buffer included, cached or
    not, as its wall time is), nothing for Random or the full split."""
    from hdt_finetune.typed_overrides import apply_overrides, flatten

    method = manifest["method"]
    if method in ("random", "full"):
        return DistillFlops(experts=0.0, matching=0.0)
    source = manifest["source"]
    if method not in SWITCHES or source.get("kind") != "dataset":
        raise ValueError(f"no FLOP count for a {method!r} set from a {source.get('kind')!r} "
                         "source (trajectory methods on a dataset only)")
    # The frozen model's share is counted by the run (the model's size is there).
    model = float(manifest["method_info"]["flops"]) if SWITCHES[method].needs_model else 0.0
    if SWITCHES[method].model_matching:
        return DistillFlops(experts=0.0, matching=model)
    settings = {k: v for k, v in manifest["settings"].items() if k != "length"}
    first, last = source["rows"]
    counted = fast_path_flops(method, apply_overrides(DistillSettings(), flatten(settings)),
                              manifest["length"], len(manifest["channels"]), last - first)
    return DistillFlops(experts=counted.experts, matching=counted.matching + model)
