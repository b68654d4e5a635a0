"""Training, validation and test windows for fine-tuning, channel-independent (univariate).

Training windows come from the real train split, a training-set folder (distilled from the
dataset or from a corpus; read through its verified format, never through distillation
code) or a corpus of other datasets; validation and test windows always come from the real
splits of the config's dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hdt_finetune.data.prepared_data import PreparedData
from hdt_finetune.data.windows import SlidingWindowDataset
from hdt_finetune.finetune.train_data import TrainData
from hdt_finetune.synthetic import check_usable_with, read_synthetic_set


@dataclass(frozen=True)
class FinetuneData:
    train: torch.utils.data.TensorDataset  # (context [L], target [H]) pairs
    val: tuple[torch.Tensor, torch.Tensor]  # [n, L], [n, H]
    test: tuple[torch.Tensor, torch.Tensor] | None  # None: a validation-only run
    source: dict[str, Any]  # what the training windows were cut from, with its checksum
    # The learning curve's test probes: every n-th of all test windows, whatever the final
    # test's stride (a resumed curve must probe the same windows); None: no probes.
    probe: tuple[torch.Tensor, torch.Tensor] | None = None


def univariate_windows(values: np.ndarray, context_length: int, horizon: int, stride: int,
                       name: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = SlidingWindowDataset(values, context_length, horizon, stride=stride,
                                channel_independent=True, name=name).all_windows()
    return x[..., 0].contiguous(), y[..., 0].contiguous()


def training_windows(train_data: TrainData, data: PreparedData, context_length: int,
                     horizon: int) -> tuple[tuple[torch.Tensor, torch.Tensor], dict[str, Any]]:
    """The training windows of `train_data` and what a record says about them."""
    if train_data.kind == "corpus":
        from hdt_finetune.finetune.pretraining_corpus import corpus_windows

        x, y, parts = corpus_windows(list(train_data.parts), context_length, horizon)
        return (x, y), {"kind": "corpus", "parts": {p: v["points"] for p, v in parts.items()},
                        "points": sum(v["points"] for v in parts.values()),
                        "content_sha256": {p: v["content_sha256"] for p, v in parts.items()}}
    if train_data.kind == "full":
        values, source = data.train, data.train_split_record()
        return univariate_windows(values, context_length, horizon, 1, "training series"), source
    if train_data.kind != "set":
        raise ValueError(f"train_data {train_data} must be made before the fine-tune "
                         "(hdt finetune distils it on demand)")
    windows, members = [], []
    for path in train_data.paths:
        synthetic = read_synthetic_set(path)
        check_usable_with(synthetic, data)
        windows.append(univariate_windows(synthetic.values, context_length, horizon, 1,
                                          f"training set {path}"))
        members.append({"kind": "synthetic", **synthetic.describe()})
    if len(members) == 1:
        return windows[0], members[0]
    x, y = (torch.cat(parts) for parts in zip(*windows, strict=True))
    return (x, y), {"kind": "mix", "members": members,
                    "points": sum(m["points"] for m in members),
                    "content_sha256": [m["content_sha256"] for m in members],
                    "distill_cost": {"wall_s": sum(m["distill_cost"]["wall_s"]
                                                   for m in members)}}


def load_finetune_data(train_data: TrainData, data: PreparedData, context_length: int,
                       horizon: int, val_stride: int = 1, test_stride: int = 1,
                       probe_stride: int = 0) -> FinetuneData:
    """`test_stride` 0: no test windows (a validation-only run); `probe_stride` n > 0: every
    n-th test window for the curve's probes."""
    train, source = training_windows(train_data, data, context_length, horizon)
    name = f"{data.name} test split"
    probe = None
    if probe_stride:
        x, y = univariate_windows(data.test, context_length, horizon, 1, name)
        probe = (x[::probe_stride].clone(), y[::probe_stride].clone())
    return FinetuneData(
        train=torch.utils.data.TensorDataset(*train),
        val=univariate_windows(data.val, context_length, horizon, val_stride,
                               f"{data.name} validation split"),
        test=(univariate_windows(data.test, context_length, horizon, test_stride, name)
              if test_stride else None),
        source=source,
        probe=probe,
    )
