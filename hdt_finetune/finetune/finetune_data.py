"""Training, validation and test windows for fine-tuning, channel-independent (univariate).

Training windows come from the real train split or from a synthetic-set folder; validation and
test windows always come from the real splits. The synthetic set is read through its storage
format only: the trainer never imports distillation code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdt_finetune.data.prepared_data import prepare_data
from hdt_finetune.data.windows import SlidingWindowDataset
from hdt_finetune.synthetic import check_same_source, read_synthetic_set


@dataclass(frozen=True)
class FinetuneData:
    train: torch.utils.data.TensorDataset  # (context [L], target [H]) pairs
    val: tuple[torch.Tensor, torch.Tensor]  # [n, L], [n, H]
    test: tuple[torch.Tensor, torch.Tensor]
    source: dict[str, Any]  # what the training windows were cut from


def univariate_windows(values: np.ndarray, context_length: int, horizon: int, stride: int,
                       name: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = SlidingWindowDataset(values, context_length, horizon, stride=stride,
                                channel_independent=True, name=name).all_windows()
    return x[..., 0].contiguous(), y[..., 0].contiguous()


def load_finetune_data(dataset: str, train_data: str, context_length: int, horizon: int,
                       val_stride: int = 1, test_stride: int = 1) -> FinetuneData:
    """`train_data`: "full" (the real train split of `dataset`), a synthetic-set folder made
    from `dataset`, or "corpus:A,B,..." (the train splits of other datasets and/or
    "generated" series, for pretraining). Validation and test: `dataset`'s real splits."""
    data = prepare_data(dataset, context_length)
    if train_data.startswith("corpus:"):
        from hdt_finetune.finetune.pretraining_corpus import corpus_windows

        sources = [s for s in train_data.split(":", 1)[1].split(",") if s]
        x, y, points = corpus_windows(sources, context_length, horizon)
        train = (x, y)
        source = {"kind": "corpus", "parts": points, "points": sum(points.values())}
    else:
        if train_data == "full":
            values = data.train
            source = {"kind": "full", "dataset": data.name, "rows": list(data.borders.train),
                      "points": int(data.train.size)}
        else:
            folder = Path(train_data)
            synthetic = read_synthetic_set(folder)
            check_same_source(synthetic.manifest, data, folder)
            values = synthetic.values
            source = {"kind": "synthetic", "path": str(folder),
                      "method": synthetic.manifest.get("method"), "points": int(values.size),
                      "distill_cost": synthetic.manifest.get("cost")}
        train = univariate_windows(values, context_length, horizon, 1, "training series")
    return FinetuneData(
        train=torch.utils.data.TensorDataset(*train),
        val=univariate_windows(data.val, context_length, horizon, val_stride,
                               f"{data.name} validation split"),
        test=univariate_windows(data.test, context_length, horizon, test_stride,
                                f"{data.name} test split"),
        source=source,
    )
