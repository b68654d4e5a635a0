"""The typed configuration of one fine-tuning run, built from `key=value` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Mode = Literal["full", "head", "freeze_ffn", "lora"]
ModelFamily = Literal["moirai", "patchtst"]
Precision = Literal["auto", "no", "bf16", "fp16"]


@dataclass(frozen=True)
class FinetuneConfig:
    out: Path = Path("runs/finetune")
    # model
    model: ModelFamily = "moirai"
    model_size: str = "small"  # moirai: small|base|large (|tiny for tests); patchtst: tiny|base
    model_version: str = "1.1"  # moirai 1.0 or 1.1
    model_init: Literal["pretrained", "random"] = "pretrained"
    model_source: str | None = None  # a folder or hub id; None: the family's hub id
    patch_size: int = 32  # moirai's fixed patch size; patchtst's patch length
    # data: validation and test always come from the real splits of `dataset`
    dataset: str = "ETTh1"
    # "full" (the real train split), a synthetic-set folder, or "corpus:A,B,generated"
    train_data: str = "full"
    context_length: int = 96
    horizon: int = 96
    # Every n-th window (1: all of them). Validation runs many times per fine-tune, for early
    # stopping; the test split once, at the end.
    val_stride: int = 1
    test_stride: int = 1
    # optimisation
    mode: Mode = "full"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 10
    max_steps: int = 200  # 0: no training, only the test evaluation (zero-shot)
    batch_size: int = 32
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: Precision = "auto"  # auto: bf16 on a GPU that has it, else fp32
    # evaluation, early stopping, checkpoints
    eval_every: int = 50
    patience: int = 3
    save_every: int = 50
    num_samples: int = 100  # forecast samples for CRPS (probabilistic models)
    seed: int = 0
    trackers: str = ""  # comma-separated Accelerate trackers (tensorboard, wandb, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        for name in ("patch_size", "context_length", "horizon", "val_stride", "test_stride",
                     "lora_rank",
                     "lora_alpha", "batch_size", "grad_accum", "eval_every",
                     "patience", "save_every", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0 (0: evaluate only), got {self.max_steps}")
        for name in ("learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or not 0 <= self.lora_dropout < 1:
            raise ValueError("warmup_steps and weight_decay must be >= 0, lora_dropout in [0, 1)")
        for name, kind in (("model", ModelFamily), ("mode", Mode),
                           ("mixed_precision", Precision)):
            if getattr(self, name) not in get_args(kind):
                raise ValueError(f"{name} must be one of {get_args(kind)}, "
                                 f"got {getattr(self, name)!r}")
        if self.model_init not in ("pretrained", "random"):
            raise ValueError(f"model_init must be 'pretrained' or 'random', "
                             f"got {self.model_init!r}")

    @classmethod
    def from_overrides(cls, pairs: list[str], **defaults: object) -> FinetuneConfig:
        """`key=value` strings over `defaults`; an unknown key or a bad value names itself.
        `model.init=random` is accepted as a spelling of `model_init=random`."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = dict(defaults)
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.replace(".", "_")
            if not sep or key not in fields:
                raise ValueError(f"unknown setting {pair!r}; known: {', '.join(fields)}")
            values[key] = _parse(key, raw, fields[key].type)
        return cls(**values)


def _parse(key: str, raw: str, annotation: object) -> object:
    text = str(annotation)
    try:
        if key == "out":
            return Path(raw)
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if "None" in text and raw.lower() == "none":
            return None
        return raw
    except ValueError:
        raise ValueError(f"bad value for {key}: {raw!r}") from None
